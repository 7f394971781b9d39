"""The Derivation panel: the steps of the DDPM bound, each as an equation, a plot and numbers.

A view over :class:`diffusion_gui.sessions.derivation.DerivationSession`: the list of steps on
the left; for the selected step its equation (rendered by matplotlib's mathtext in a worker, then
cached), one plot, its live numbers and a verdict, and a button that asks the main window
(``ctx.show_panel``) for the panel that shows the same thing at full size. A step computes when
first selected (in a worker through one ``JobSlot``); "Recompute" draws new noise.
"""
from __future__ import annotations

from html import escape

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ....sessions.derivation import DerivationSession, DerivationSettings, Progress, StepResult
from ... import settings_io
from ...workers import JobSlot
from .plot import draw, new_plot

__all__ = ["DerivationPanel"]


def _pixmap(rgba: np.ndarray) -> QPixmap:
    a = np.ascontiguousarray(rgba)
    img = QImage(a.data, a.shape[1], a.shape[0], 4 * a.shape[1], QImage.Format_RGBA8888)
    return QPixmap.fromImage(img.copy())


def numbers_html(rows) -> str:
    """The numbers of a step as a two-column HTML table; a row whose value is ``""`` is a
    heading over the rows after it."""
    cells = "".join(
        f'<tr><td colspan="2" style="padding:8px 0 2px 0; font-weight:700; color:#0b4f7a;">{escape(a)}</td></tr>'
        if b == "" else
        f'<tr><td style="padding:2px 10px 2px 0; color:#444;">{escape(a)}</td>'
        f'<td style="padding:2px 0; font-weight:600;" align="right">{escape(b)}</td></tr>'
        for a, b in rows)
    return f'<table width="100%" style="font-size:12pt;" cellspacing="0">{cells}</table>'


class DerivationPanel(QWidget):
    title = "Derivation"

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.session = DerivationSession()
        self.session.set_model(getattr(ctx, "model", None))
        self._job = JobSlot(memory_hint="try fewer trajectories")
        self._eq_job = JobSlot()
        self._eq_key = None
        self._build()
        ctx.model_changed.connect(self._model_changed)
        self.steps.setCurrentRow(0)

    # ------------------------------------------------------------ building
    def _build(self):
        root = QHBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        split = QSplitter(Qt.Horizontal)
        split.setChildrenCollapsible(False)
        root.addWidget(split)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.steps = QListWidget()
        self.steps.setStyleSheet("QListWidget { font-size: 12pt; } QListWidget::item { padding: 6px 4px; }")
        for s in self.session.steps:
            self.steps.addItem(s.title)
        self.steps.currentRowChanged.connect(self._selected)
        ll.addWidget(self.steps, 1)
        box = QGroupBox("Noise and sizes")
        form = QFormLayout(box)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.trajectories = QSpinBox()
        self.trajectories.setRange(2, 256)
        self.trajectories.setToolTip("Forward trajectories of the image in step 3 (each costs T network calls)")
        self.lab_steps = QSpinBox()
        self.lab_steps.setRange(100, 20000)
        self.lab_steps.setSingleStep(500)
        self.lab_steps.setToolTip("Training steps of each 2-D MLP in step 8")
        form.addRow("seed", self.seed)
        form.addRow("image trajectories", self.trajectories)
        form.addRow("2-D training steps", self.lab_steps)
        self.recompute = QPushButton("Recompute")
        self.recompute.clicked.connect(lambda: self._start(self._key(), force=True))
        form.addRow(self.recompute)
        ll.addWidget(box)
        split.addWidget(left)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(8, 0, 0, 0)
        self.heading = QLabel()
        self.heading.setStyleSheet("font-size: 16pt; font-weight: bold;")
        self.blurb = QLabel()
        self.blurb.setWordWrap(True)
        self.blurb.setStyleSheet("font-size: 12pt; color: #333;")
        self.equation = QLabel("rendering the equation\u2026")
        self.equation.setAlignment(Qt.AlignCenter)
        self.equation.setMinimumHeight(90)
        self.equation.setStyleSheet("background: white; border: 1px solid #ddd; padding: 6px;")
        rl.addWidget(self.heading)
        rl.addWidget(self.blurb)
        rl.addWidget(self.equation)
        mid = QSplitter(Qt.Horizontal)
        self.plot = new_plot()
        mid.addWidget(self.plot)
        self.numbers = QLabel()
        self.numbers.setTextFormat(Qt.RichText)
        self.numbers.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.numbers.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.numbers.setMargin(6)
        self.numbers.setWordWrap(True)
        scroll = QScrollArea()
        scroll.setWidget(self.numbers)
        scroll.setWidgetResizable(True)
        scroll.setStyleSheet("QScrollArea { background: white; border: 1px solid #ddd; }")
        self.numbers.setStyleSheet("background: white;")
        mid.addWidget(scroll)
        mid.setStretchFactor(0, 3)
        mid.setStretchFactor(1, 2)
        mid.setSizes([760, 560])
        rl.addWidget(mid, 1)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.verdict.setStyleSheet("font-size: 12pt; font-weight: 600; color: #0b4f7a;")
        rl.addWidget(self.verdict)
        bottom = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.link = QPushButton()
        self.link.setStyleSheet("font-size: 11pt; padding: 4px 12px;")
        self.link.clicked.connect(self._open_link)
        bottom.addWidget(self.progress, 1)
        bottom.addStretch(0)
        bottom.addWidget(self.link)
        rl.addLayout(bottom)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([330, 1230])
        self._set_controls(self.session.settings)

    # ------------------------------------------------------------ state
    def _key(self) -> str:
        row = max(0, self.steps.currentRow())
        return self.session.steps[row].key

    def _read_settings(self):
        s = self.session.settings
        s.seed, s.trajectories, s.lab_steps = self.seed.value(), self.trajectories.value(), self.lab_steps.value()

    def _selected(self, row: int):
        if row < 0:
            return
        step = self.session.steps[row]
        self.session.settings.step = step.key
        self.heading.setText(step.title)
        self.blurb.setText(step.blurb)
        self.link.setText(f"Show it in the {step.link_label} \u2192" if step.link else "")
        self.link.setVisible(bool(step.link))
        self._show_equation(step.key)
        got = self.session.results.get(step.key)
        if got is not None:
            self._show_result(got)
        else:
            self._start(step.key)

    def _show_equation(self, key: str):
        cached = self.session._equations.get((key, 110))
        if cached is not None:
            self.equation.setPixmap(_pixmap(cached))
            return
        self.equation.setPixmap(QPixmap())
        self.equation.setText("rendering the equation\u2026")
        self._eq_key = key

        def done(rgba, key=key):
            if self._eq_key == key:
                self.equation.setPixmap(_pixmap(rgba))
        self._eq_job.start(lambda: self.session.equation(key), background=True, on_done=done,
                           on_failed=lambda m: self.equation.setText(f"(equation: {m})"))

    def _start(self, key: str, force: bool = False):
        self._read_settings()
        if force:
            self.session.results.pop(key, None)
        self.numbers.setText("")
        self.verdict.setText("computing\u2026")
        self.progress.setValue(0)
        self.progress.setFormat("starting\u2026")
        self.progress.show()
        self.plot.getPlotItem().clear()

        def progress(item):
            if isinstance(item, Progress):
                self.progress.setValue(int(1000 * item.fraction))
                self.progress.setFormat(item.text)

        def finished(result):
            self.progress.hide()
            if isinstance(result, StepResult) and result.key == self._key():
                self._show_result(result)

        def failed(msg):
            self.progress.hide()
            self.verdict.setText(f"Could not compute: {msg}")
            self.ctx.error.emit("Derivation", msg)

        self._job.start(lambda: self.session.run(key), on_progress=progress, on_finished=finished,
                        on_failed=failed, max_rate=10)

    def _show_result(self, r: StepResult):
        draw(self.plot, r.plot)
        self.numbers.setText(numbers_html(r.numbers))
        self.verdict.setText(r.verdict)
        self.progress.hide()

    def _open_link(self):
        step = self.session.step(self._key())
        if step.link and hasattr(self.ctx, "show_panel"):
            self.ctx.show_panel.emit(step.link)

    def _model_changed(self):
        self.session.set_model(getattr(self.ctx, "model", None))
        step = self.session.step(self._key())
        if step.uses_image_model and step.key not in self.session.results:
            self._start(step.key)

    def show_step(self, key: str):
        """Select step ``key`` (computing it if it has not been)."""
        self.steps.setCurrentRow(self.session.keys.index(key))

    def is_ready(self) -> bool:
        """The selected step's result and equation are on screen (scripts, screenshots)."""
        key = self._key()
        pm = self.equation.pixmap()
        return (key in self.session.results and not self._job.is_running()
                and pm is not None and not pm.isNull())

    # ------------------------------------------------------------ contract
    def shutdown(self):
        self._job.shutdown()
        self._eq_job.shutdown()

    def save_settings(self, settings):
        self._read_settings()
        settings_io.save(settings, self.session.settings)

    def _set_controls(self, s: DerivationSettings):
        self.seed.setValue(s.seed)
        self.trajectories.setValue(s.trajectories)
        self.lab_steps.setValue(s.lab_steps)

    def restore_settings(self, settings):
        s = settings_io.load(settings, DerivationSettings)
        self._set_controls(s)
        self.session.settings = s
        keys = self.session.keys
        if s.step in keys and keys.index(s.step) != self.steps.currentRow():
            self.steps.setCurrentRow(keys.index(s.step))
