"""The 2-D lab's control column: data, forward process, the MLP, the reverse run, the numbers.
:func:`build_controls` sets the widgets on the panel; :func:`read_settings` /
:func:`apply_settings` move them to and from :class:`~diffusion_gui.sessions.lab2d.Lab2DSettings`."""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from ....core.names import SCHEDULE_NAMES
from ....sessions.lab2d_settings import MAX_POINTS, MAX_STD, MIN_STD, Lab2DSettings
from ...style import control_column

#: the data combo: (label, key): a data set's name, or the source of custom data
DATA_ITEMS = [("Two moons", "moons"), ("Swiss roll", "swissroll"),
              ("8 Gaussians (ring)", "gaussians8"), ("Checkerboard", "checkerboard"),
              ("Spiral", "spiral"), ("Gaussian mixture (drag it)", "gmm"),
              ("Draw your own", "draw"), ("From the Forward panel's image", "image"),
              ("From text", "text")]
MODEL_ITEMS = [("MLP (trained live)", "mlp"), ("Exact (mixtures only)", "exact"),
               ("Empirical (memorises)", "empirical")]
FIELD_ITEMS = [("x̂₀ − x_t (to the predicted x₀)", "x0"), ("score ∇ log q_t", "score")]
VIEW_ITEMS = [("DDPM and DDIM side by side", "both"), ("DDPM only", "ddpm"), ("DDIM only", "ddim")]
VARIANCE_ITEMS = [("σ² fixed (β̃ₜ), trained with L_simple", "fixed_small"),
                  ("σ² learned, trained with L_hybrid", "learned_range")]


def _spin(lo, hi, value, tip, step=1):
    s = QSpinBox(minimum=lo, maximum=hi, value=value, singleStep=step)
    s.setKeyboardTracking(False)
    s.setToolTip(tip)
    return s


def _combo(items, tip):
    c = QComboBox()
    for label, data in items:
        c.addItem(label, data)
    c.setToolTip(tip)
    return c


def _data_box(p) -> QGroupBox:
    box = QGroupBox("Data")
    form = QFormLayout(box)
    p.data_combo = _combo(DATA_ITEMS, "The training data: about unit variance per coordinate")
    p.n_spin = _spin(10, MAX_POINTS, 2000, "Number of data points", 500)
    p.seed_spin = _spin(0, 2 ** 31 - 1, 0, "Seed of the data draw (and of the MLP's start)")
    p.text_edit = QLineEdit("DDPM")
    p.text_edit.setToolTip("The text whose dark pixels become the data (Enter)")
    p.clear_btn = QPushButton("Clear the drawing")
    p.clear_btn.setToolTip("Start a new drawing: the next stroke replaces the data")
    p.std_spin = QDoubleSpinBox(minimum=MIN_STD, maximum=MAX_STD, singleStep=0.05, decimals=2)
    p.std_spin.setKeyboardTracking(False)
    p.std_spin.setToolTip("Width of the selected component (or the mouse wheel over it)")
    p.data_hint = QLabel("")
    p.data_hint.setWordWrap(True)
    p.data_hint.setStyleSheet("color: #555")
    form.addRow(p.data_combo)
    form.addRow("Points", p.n_spin)
    form.addRow("Seed", p.seed_spin)
    form.addRow("Text", p.text_edit)
    form.addRow("Component std", p.std_spin)
    form.addRow(p.clear_btn)
    form.addRow(p.data_hint)
    return box


def _forward_box(p) -> QGroupBox:
    box = QGroupBox("Forward process")
    form = QFormLayout(box)
    p.schedule_combo = QComboBox()
    p.schedule_combo.addItems(SCHEDULE_NAMES)
    p.schedule_combo.setToolTip("Beta schedule (the Forward panel's)")
    p.T_spin = _spin(10, 1000, 1000, "T, the number of diffusion steps (a new T resets the MLP)", 50)
    form.addRow("Schedule", p.schedule_combo)
    form.addRow("T", p.T_spin)
    return box


def _train_box(p) -> QGroupBox:
    box = QGroupBox("MLP ε-network")
    lay = QVBoxLayout(box)
    row = QHBoxLayout()
    p.train_btn = QPushButton("Train")
    p.train_btn.setToolTip("Train in the background; change the data and it goes on")
    p.pause_btn = QPushButton("Pause")
    p.reset_btn = QPushButton("Reset")
    p.reset_btn.setToolTip("A fresh network and loss history")
    for b in (p.train_btn, p.pause_btn, p.reset_btn):
        row.addWidget(b)
    lay.addLayout(row)
    p.variance_combo = _combo(VARIANCE_ITEMS, "The reverse step's variance: fixed (DDPM), or learned by a "
                              "second pair of outputs (improved DDPM's learned_range, L_hybrid = "
                              "L_simple + 0.001 L_vlb). A change resets the network")
    lay.addWidget(p.variance_combo)
    p.train_label = QLabel("not trained")
    p.train_label.setWordWrap(True)
    lay.addWidget(p.train_label)
    return box


def _reverse_box(p) -> QGroupBox:
    box = QGroupBox("Reverse process")
    form = QFormLayout(box)
    p.model_combo = _combo(MODEL_ITEMS, "The denoiser the samplers use")
    p.particles_spin = _spin(10, MAX_POINTS, 2000, "Particles of the reverse run", 1000)
    p.steps_spin = _spin(1, 1000, 1000, "Network calls of each sampler (the same steps for both)", 50)
    p.rseed_spin = _spin(0, 2 ** 31 - 1, 0, "Seed of x_T (the same for DDPM and DDIM)")
    p.view_combo = _combo(VIEW_ITEMS, "Show DDPM and DDIM side by side, or one of them")
    p.sample_btn = QPushButton("Sample")
    p.sample_btn.setToolTip("Run DDPM and DDIM from one x_T; click a view to launch a traced particle")
    p.stop_btn = QPushButton("Stop")
    p.clear_paths_btn = QPushButton("Clear traced particles")
    p.field_check = QCheckBox("Field arrows")
    p.field_combo = _combo(FIELD_ITEMS, "What the arrows show at the current t")
    p.grid_check = QCheckBox("Warped grid (DDIM flow map)")
    row = QHBoxLayout()
    row.addWidget(p.sample_btn)
    row.addWidget(p.stop_btn)
    form.addRow(p.model_combo)
    form.addRow("Particles", p.particles_spin)
    form.addRow("Steps", p.steps_spin)
    form.addRow("Seed", p.rseed_spin)
    form.addRow(p.view_combo)
    form.addRow(row)
    form.addRow(p.clear_paths_btn)
    form.addRow(p.field_check)
    form.addRow(p.field_combo)
    form.addRow(p.grid_check)
    return box


def _numbers_box(p) -> QGroupBox:
    box = QGroupBox("Numbers")
    lay = QVBoxLayout(box)
    p.compare_btn = QPushButton("Compare the denoisers")
    p.compare_btn.setToolTip("Sample each denoiser (1,000 points, 100 steps): energy distance, "
                             "nearest training point; the MLP's loss per t against the floor")
    lay.addWidget(p.compare_btn)
    return box


def build_controls(p):
    """The scroll area of the control column (its boxes set their widgets on ``p``)."""
    scroll, _ = control_column([_data_box(p), _forward_box(p), _train_box(p), _reverse_box(p),
                                _numbers_box(p)])
    scroll.setMinimumWidth(300)
    scroll.setMaximumWidth(340)
    return scroll


def _select(combo, value):
    i = combo.findData(value)
    if i >= 0:
        combo.setCurrentIndex(i)


def read_settings(p, base: Lab2DSettings) -> Lab2DSettings:
    """``base`` (the session's) with the view choices the widgets show."""
    return replace(base, particles=p.particles_spin.value(), steps=min(p.steps_spin.value(), base.timesteps),
                   model=p.model_combo.currentData(), view=p.view_combo.currentData(),
                   field=p.field_combo.currentData(), show_field=p.field_check.isChecked(),
                   show_grid=p.grid_check.isChecked(), text=p.text_edit.text() or base.text)


def apply_settings(p, s: Lab2DSettings):
    """Show ``s`` in the widgets (signals blocked: the panel applies the data itself)."""
    widgets = (p.data_combo, p.n_spin, p.seed_spin, p.schedule_combo, p.T_spin, p.variance_combo, p.model_combo,
               p.particles_spin, p.steps_spin, p.view_combo, p.field_combo, p.field_check,
               p.grid_check, p.text_edit)
    for w in widgets:
        w.blockSignals(True)
    try:
        _select(p.data_combo, s.source if s.data == "custom" else s.data)
        p.n_spin.setValue(s.n)
        p.seed_spin.setValue(s.seed)
        p.schedule_combo.setCurrentText(s.schedule)
        p.T_spin.setValue(s.timesteps)
        _select(p.variance_combo, s.variance)
        _select(p.model_combo, s.model)
        p.particles_spin.setValue(s.particles)
        p.steps_spin.setValue(s.steps)
        _select(p.view_combo, s.view)
        _select(p.field_combo, s.field)
        p.field_check.setChecked(s.show_field)
        p.grid_check.setChecked(s.show_grid)
        p.text_edit.setText(s.text)
    finally:
        for w in widgets:
            w.blockSignals(False)
