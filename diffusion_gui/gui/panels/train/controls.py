"""The Train panel's controls, built onto the panel (as a Designer ``setupUi`` would): the left
column (data, model, optimisation, run and output) and the row of sample-grid settings, plus
the one mapping between these widgets and :class:`~diffusion_gui.sessions.training.TrainSettings`.

Widgets set on the panel ``p``: ``source``, ``folder``, ``browse_btn``, ``folder_row``, ``size``,
``channels``, ``augment``, ``data_info``; ``preset``, ``params_label``, ``estimate_label``,
``measure_btn``; ``batch``, ``lr``, ``steps``, ``ema``, ``seed``; ``start_btn``, ``pause_btn``,
``resume_btn``, ``stop_btn``, ``progress``, ``status_label``, ``save_btn``, ``use_btn``,
``output_label``, ``runs_folder`` (:class:`~.runs_folder.RunsFolder`); ``sample_every``,
``sample_steps``, ``sample_n``, ``sample_seed``, ``sample_now_btn``. Signals are connected by the panel.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ....sessions.training import GRID_SIZES, PRESET_NOTES, SIZES, TrainSettings
from ...style import control_column
from .runs_folder import RunsFolder

#: the widgets that only change while no run is going on (``channels`` also needs a folder)
EDITABLE_WHEN_IDLE = ("source", "browse_btn", "size", "augment", "preset", "variance", "batch", "lr", "steps",
                      "ema", "seed", "sample_every", "sample_steps", "sample_n", "sample_seed")
_D = TrainSettings()   # the defaults, written once (sessions/training.py)


def _form(*rows) -> QFormLayout:
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    for row in rows:
        form.addRow(*row)
    return form


def _combo(items, current) -> QComboBox:
    c = QComboBox()
    for text, data in items:
        c.addItem(text, data)
    c.setCurrentIndex(max(0, c.findData(current)))
    return c


def _spin(lo, hi, value, tip="", *, step=None, decimals=None) -> QSpinBox | QDoubleSpinBox:
    w = QDoubleSpinBox() if decimals is not None else QSpinBox()
    if decimals is not None:
        w.setDecimals(decimals)
    w.setRange(lo, hi)
    if step is not None:
        w.setSingleStep(step)
    w.setValue(value)
    if tip:
        w.setToolTip(tip)
    return w


def _data_box(p) -> QGroupBox:
    p.source = _combo([("Built-in digits (scikit-learn)", "digits"), ("Folder of images…", "folder")],
                      _D.source)
    p.source.setToolTip("The 1,597 training digits of scikit-learn's 8x8 set (200 held "
                        "out), or every image below a folder (centre-cropped, resized)")
    p.folder = QLineEdit()
    p.folder.setPlaceholderText("no folder chosen")
    p.folder.setReadOnly(True)
    p.browse_btn = QPushButton("Browse…")
    frow = QHBoxLayout()
    frow.setContentsMargins(0, 0, 0, 0)
    frow.addWidget(p.folder, 1)
    frow.addWidget(p.browse_btn)
    p.folder_row = QWidget()
    p.folder_row.setLayout(frow)
    p.size = _combo([(f"{s} × {s} px", s) for s in SIZES], _D.size)
    p.size.setToolTip("Resolution the model is trained at (images are centre-cropped and resized)")
    p.channels = _combo([("Grayscale", 1), ("RGB", 3)], _D.channels)
    p.augment = QCheckBox("Random ±1 px shifts")
    p.augment.setChecked(_D.augment)
    p.augment.setToolTip("Augmentation: every training image is shifted by -1, 0 or +1 px")
    p.conditional = QCheckBox("Class-conditional (guidance)")
    p.conditional.setChecked(_D.conditional)
    p.conditional.setToolTip("Digits only: give the network each image's label, replaced by a "
                             "'no class' label at the rate below, so that one network predicts "
                             "ε(x_t, t, y) and ε(x_t, t): classifier-free guidance (Reverse panel)")
    p.label_dropout = _spin(0.0, 0.9, _D.label_dropout, "Share of labels dropped to 'no class' "
                            "in training (Ho & Salimans: 10-20 %)", step=0.05, decimals=2)
    crow = QHBoxLayout()
    crow.setContentsMargins(0, 0, 0, 0)
    crow.addWidget(p.conditional, 1)
    crow.addWidget(QLabel("drop"))
    crow.addWidget(p.label_dropout)
    p.conditional_row = QWidget()
    p.conditional_row.setLayout(crow)
    p.conditional.toggled.connect(lambda on: p.label_dropout.setEnabled(on and p.conditional.isEnabled()))
    p.data_info = QLabel("")
    p.data_info.setWordWrap(True)
    p.data_info.setEnabled(False)
    box = QGroupBox("Data")
    box.setLayout(_form(("Source", p.source), ("", p.folder_row), ("Size", p.size),
                        ("Colour", p.channels), ("", p.augment), ("", p.conditional_row), (p.data_info,)))
    return box


def _model_box(p) -> QGroupBox:
    p.preset = _combo([(name, name) for name in PRESET_NOTES], _D.preset)
    for k, note in enumerate(PRESET_NOTES.values()):
        p.preset.setItemData(k, note, Qt.ToolTipRole)
    p.params_label = QLabel("")
    p.params_label.setWordWrap(True)
    p.estimate_label = QLabel("")
    p.estimate_label.setWordWrap(True)
    p.measure_btn = QPushButton("Measure")
    p.measure_btn.setToolTip("Time a few training steps of this preset, size and batch now")
    erow = QHBoxLayout()
    erow.setContentsMargins(0, 0, 0, 0)
    erow.addWidget(p.estimate_label, 1)
    erow.addWidget(p.measure_btn, 0, Qt.AlignTop)
    p.variance = _combo([("fixed σ² = β̃ₜ  · L_simple", "fixed_small"),
                         ("fixed σ² = βₜ  · L_simple", "fixed_large"),
                         ("learned σ²  · L_hybrid", "learned_range")], _D.variance)
    p.variance.setToolTip("The reverse step's variance. Fixed (DDPM): the network predicts ε only, "
                          "trained with L_simple. Learned (improved DDPM, learned_range): a second "
                          "output per channel interpolates log σ² between log β̃ₜ and log βₜ, trained "
                          "with L_hybrid = L_simple + 0.001·L_vlb (the mean's gradient stopped in L_vlb)")
    box = QGroupBox("Model (diffusers UNet2DModel)")
    box.setLayout(_form(("Preset", p.preset), ("Variance", p.variance), ("Parameters", p.params_label),
                        ("Speed", erow)))
    return box


def _optim_box(p) -> QGroupBox:
    p.batch = _spin(1, 1024, _D.batch)
    p.lr = _spin(1e-5, 1e-1, _D.lr, "AdamW learning rate (after a 200-step linear warm-up)",
                 step=1e-4, decimals=5)
    p.steps = _spin(1, 10_000_000, _D.steps, step=1000)
    p.steps.setGroupSeparatorShown(True)
    p.ema = _spin(0.0, 0.9999, _D.ema, "Decay of the exponential moving average of the weights; "
                  "the EMA weights are the ones sampled and saved", step=0.001, decimals=4)
    p.seed = _spin(0, 2 ** 31 - 1, _D.seed, "Seeds the initial weights, the batches and the noise")
    box = QGroupBox("Optimisation")
    box.setLayout(_form(("Batch", p.batch), ("Learning rate", p.lr), ("Steps", p.steps),
                        ("EMA decay", p.ema), ("Seed", p.seed)))
    return box


def _run_box(p) -> QGroupBox:
    p.start_btn = QPushButton("Start")
    p.start_btn.setToolTip("Train a new model with these settings")
    f = p.start_btn.font()
    f.setBold(True)
    p.start_btn.setFont(f)
    p.pause_btn = QPushButton("Pause")
    p.resume_btn = QPushButton("Resume")
    p.stop_btn = QPushButton("Stop")
    p.stop_btn.setToolTip("Save the state at the current step and end the run")
    for b in (p.start_btn, p.pause_btn, p.resume_btn, p.stop_btn):
        b.setMinimumHeight(30)
    p.progress = _progress_bar(_D.steps)
    p.status_label = QLabel("Ready.")
    p.status_label.setWordWrap(True)
    p.status_label.setMinimumHeight(p.fontMetrics().height() * 3)
    p.save_btn = QPushButton("Save model…")
    p.save_btn.setToolTip("Write a diffusers pipeline folder (EMA weights, scheduler, "
                          "model_card.md) of the current state")
    p.use_btn = QPushButton("Use in Reverse panel")
    p.use_btn.setToolTip("Make this model the app's model: the Reverse and Loss panels switch to it")
    p.output_label = QLabel("")
    p.output_label.setWordWrap(True)
    p.output_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    p.runs_folder = RunsFolder(p)
    grid = QGridLayout()
    for row, widgets in enumerate([(p.start_btn, p.stop_btn), (p.pause_btn, p.resume_btn),
                                   (p.progress,), (p.status_label,), (p.save_btn, p.use_btn),
                                   (p.output_label,), (p.runs_folder,)]):
        if len(widgets) == 2:
            grid.addWidget(widgets[0], row, 0)
            grid.addWidget(widgets[1], row, 1)
        else:
            grid.addWidget(widgets[0], row, 0, 1, 2)
    box = QGroupBox("Run")
    box.setLayout(grid)
    return box


def _progress_bar(steps: int) -> QProgressBar:
    """A progress bar reading ``step / total steps`` (before a run: ``0 / Steps``)."""
    bar = QProgressBar()
    bar.setRange(0, steps)
    bar.setValue(0)
    bar.setFormat("%v / %m steps")
    return bar


def build_controls(p) -> QWidget:
    """The left column, in a scroll area of fixed width."""
    scroll, left = control_column((_data_box(p), _model_box(p), _optim_box(p), _run_box(p)))
    scroll.setFrameShape(QFrame.StyledPanel)      # as before: the train column keeps its frame
    left.setMaximumWidth(360)
    scroll.setFixedWidth(372)
    return scroll


def build_grid_row(p) -> QHBoxLayout:
    """The sample-grid settings under the strip: every K steps, DDIM steps, images, seed."""
    p.sample_every = _spin(1, 1_000_000, _D.sample_every,
                           "Draw a grid of samples from the EMA weights every K steps")
    p.sample_every.setPrefix("every ")
    p.sample_every.setSuffix(" steps")
    p.sample_steps = _spin(2, 1000, _D.sample_steps, "Fast DDIM (η = 0) sampling for the grids")
    p.sample_steps.setSuffix(" DDIM steps")
    p.sample_n = _combo([(f"{n} images", n) for n in GRID_SIZES], _D.sample_n)
    p.sample_seed = _spin(0, 2 ** 31 - 1, _D.sample_seed,
                          "The same x_T every time, so that the grids are comparable")
    p.sample_now_btn = QPushButton("Sample now")
    p.sample_now_btn.setToolTip("Draw a grid from the current EMA weights (e.g. while paused)")
    row = QHBoxLayout()
    row.setSpacing(4)
    for w in (QLabel("Grid"), p.sample_every, p.sample_steps, p.sample_n, QLabel("seed"),
              p.sample_seed):
        row.addWidget(w)
    row.addStretch(1)
    row.addWidget(p.sample_now_btn)
    return row


# ------------------------------------------------------------------------------ widgets <-> settings
def read_settings(p, folder: str, timings: str = "") -> TrainSettings:
    """The settings the widgets show (``folder``: the chosen data folder)."""
    return TrainSettings(
        source=p.source.currentData(), folder=folder, size=int(p.size.currentData()),
        channels=int(p.channels.currentData()), augment=p.augment.isChecked(),
        conditional=p.conditional.isChecked(), label_dropout=float(p.label_dropout.value()),
        preset=p.preset.currentData(), variance=p.variance.currentData(), batch=p.batch.value(), lr=p.lr.value(),
        steps=p.steps.value(), ema=p.ema.value(), seed=p.seed.value(),
        sample_every=p.sample_every.value(), sample_steps=p.sample_steps.value(),
        sample_n=int(p.sample_n.currentData()), sample_seed=p.sample_seed.value(),
        timings=timings)


def _pick(combo: QComboBox, value):
    k = combo.findData(value)
    if k >= 0:
        combo.setCurrentIndex(k)


def apply_settings(p, s: TrainSettings) -> None:
    """Show ``s`` in the widgets (the data folder is the panel's, :meth:`set_data_folder`)."""
    _pick(p.source, s.source)
    _pick(p.size, s.size)
    _pick(p.channels, s.channels)
    p.augment.setChecked(s.augment)
    p.conditional.setChecked(s.conditional)
    p.label_dropout.setValue(s.label_dropout)
    _pick(p.preset, s.preset)
    _pick(p.variance, s.variance)
    for name in ("batch", "lr", "steps", "ema", "seed", "sample_every", "sample_steps",
                 "sample_seed"):
        getattr(p, name).setValue(getattr(s, name))
    _pick(p.sample_n, s.sample_n)


def set_editable(p, idle: bool) -> None:
    """The settings are editable only while idle (colour only for a folder of images)."""
    for name in EDITABLE_WHEN_IDLE:
        getattr(p, name).setEnabled(idle)
    p.channels.setEnabled(idle and p.source.currentData() != "digits")
    digits = p.source.currentData() == "digits"
    p.conditional.setEnabled(idle and digits)
    p.label_dropout.setEnabled(idle and digits and p.conditional.isChecked())


def show_source(p, idle: bool) -> None:
    """The data source changed: the folder row for a folder; grey and the class labels for the
    digits (colour is a folder's choice, labels the digits' only)."""
    digits = p.source.currentData() == "digits"
    p.folder_row.setVisible(not digits)
    if digits:
        p.channels.setCurrentIndex(0)
    p.channels.setEnabled(not digits and idle)
    p.conditional_row.setVisible(digits)
