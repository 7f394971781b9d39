"""The Forward panel's controls: the bar on top (working size, schedule, T, seed, new noise)
and the time row (play, the t slider, the t spin box). Timesteps are the paper's ``t``."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, QStyle, QWidget

from ....sessions.forward import DEFAULT_SIZE, DEFAULT_T, MAX_T, SCHEDULES, SIZES

PLAY_INTERVAL_MS = 33


def add_action(widget: QWidget, text: str, keys, slot, tip: str = "") -> QAction:
    """An action of ``widget`` (shortcuts active in it and its children) calling ``slot``."""
    a = QAction(text, widget)
    a.setShortcuts([QKeySequence(k) for k in keys])
    a.setShortcutContext(Qt.WidgetWithChildrenShortcut)
    a.triggered.connect(slot)
    if tip:
        a.setStatusTip(tip)
    widget.addAction(a)
    return a


class ControlBar(QWidget):
    """``size_combo`` (working size, px), ``schedule_combo``, ``T_spin``, ``seed_spin``,
    ``new_noise_button`` and ``info_label`` (x_0's numbers), left to right."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.size_combo = QComboBox()
        for s in SIZES:
            self.size_combo.addItem(f"{s} px", s)
        self.size_combo.setCurrentIndex(SIZES.index(DEFAULT_SIZE))
        self.size_combo.setToolTip("Working size: the long side of the image, in pixels")
        self.schedule_combo = QComboBox()
        self.schedule_combo.addItems(SCHEDULES)
        self.schedule_combo.setToolTip("Beta schedule")
        self.T_spin = QSpinBox(minimum=10, maximum=MAX_T, value=DEFAULT_T, singleStep=50)
        self.T_spin.setToolTip("T, the number of diffusion steps")
        self.T_spin.setKeyboardTracking(False)
        self.seed_spin = QSpinBox(minimum=0, maximum=2 ** 31 - 1, value=0)
        self.seed_spin.setToolTip("Seed of the noise draw eps (one draw per seed)")
        self.seed_spin.setKeyboardTracking(False)
        self.new_noise_button = QPushButton("New noise")
        self.new_noise_button.setToolTip("Draw a new eps (next seed)  [N]")
        bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(8)
        for lab, w in (("Image size", self.size_combo), ("Schedule", self.schedule_combo),
                       ("T", self.T_spin), ("Seed", self.seed_spin)):
            q = QLabel(lab)
            q.setBuddy(w)
            bar.addWidget(q)
            bar.addWidget(w)
            bar.addSpacing(10)
        bar.addWidget(self.new_noise_button)
        bar.addStretch(1)
        self.info_label = QLabel("")
        self.info_label.setStyleSheet("color: #666;")
        bar.addWidget(self.info_label)


class TimeRow(QWidget):
    """``play_button``, ``slider`` and ``t_spin`` (both ``0..T``) and ``T_label`` (``/ T``).
    While the play button is down, ``tick`` is emitted every ``PLAY_INTERVAL_MS``."""

    tick = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.play_timer = QTimer(self, interval=PLAY_INTERVAL_MS)
        self.play_timer.timeout.connect(self.tick)
        self.play_button = QPushButton()
        self.play_button.setCheckable(True)
        self.play_button.setIcon(self.style().standardIcon(QStyle.SP_MediaPlay))
        self.play_button.setText("Play")
        self.play_button.setToolTip("Play / pause the noising  [Space]")
        self.slider = QSlider(Qt.Horizontal, minimum=0, maximum=DEFAULT_T)
        self.slider.setPageStep(max(1, DEFAULT_T // 10))
        self.slider.setToolTip("t: Left/Right step, PageUp/PageDown jump, Home/End")
        self.t_spin = QSpinBox(minimum=0, maximum=DEFAULT_T)
        self.t_spin.setPrefix("t = ")
        self.t_spin.setMinimumWidth(110)
        self.T_label = QLabel(f"/ {DEFAULT_T}")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.play_button)
        row.addWidget(self.slider, 1)
        row.addWidget(self.t_spin)
        row.addWidget(self.T_label)

    def show_t(self, t: int):
        """Move the slider and the spin box to ``t`` without emitting their signals."""
        for w in (self.slider, self.t_spin):
            if w.value() != t:
                w.blockSignals(True)
                w.setValue(t)
                w.blockSignals(False)

    def set_T(self, T: int):
        """The range ``0..T`` (silently: the panel maps t onto the new range itself)."""
        for w in (self.slider, self.t_spin):
            w.blockSignals(True)
            w.setMaximum(T)
            w.blockSignals(False)
        self.slider.setPageStep(max(1, T // 10))
        self.T_label.setText(f"/ {T}")

    def is_playing(self) -> bool:
        return self.play_timer.isActive()

    def show_playing(self, on: bool):
        """Start or stop the ticks, and show Play or Pause."""
        (self.play_timer.start if on else self.play_timer.stop)()
        icon = QStyle.SP_MediaPause if on else QStyle.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setText("Pause" if on else "Play")
