"""The reverse panel's widgets, built onto the panel: the controls (left), the views (right) and
the menu actions. Only construction and layout here; the panel wires the behaviour."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QFont, QFontMetrics, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ....sessions.reverse import C_XT, MAX_BATCH, ReverseSettings
from ...format import ABAR
from ...image_view import Thumbnail
from ...model_picker import ModelPicker
from ...style import control_column, heading
from .widgets import Line, TopView

#: Thumbnails in the trajectory strip.
FILM_FRAMES = 10

SAMPLERS = [("ddpm", "DDPM ancestral (all T steps)"), ("ddpm_strided", "DDPM over N strided steps"),
            ("ddim", "DDIM over N strided steps")]
VARIANCES = [("", "model's"), ("fixed_small", "fixed_small  (posterior σ²)"),
             ("fixed_large", "fixed_large  (σ² = β_t)")]
CLIPS = [("", "model's"), ("on", "on  [-1, 1]"), ("off", "off")]


def _combo(items, tip: str) -> QComboBox:
    c = QComboBox()
    for data, label in items:
        c.addItem(label, data)
    c.setToolTip(tip)
    return c


def _spin(cls, lo, hi, value, tip: str):
    s = cls()
    s.setRange(lo, hi)
    s.setValue(value)
    s.setToolTip(tip)
    return s


# ------------------------------------------------------------------------------ controls (left)
def sampler_box(p) -> QGroupBox:
    d = ReverseSettings()
    p.sampler = _combo(SAMPLERS, "DDPM ancestral: x_{t-1} = μ_θ(x_t) + σ_t z over every t.\n"
                                 "Strided: the same over N evenly spaced steps (respaced schedule).\n"
                                 "DDIM: the non-Markovian sampler of Song et al.; η = 0 is deterministic.")
    p.steps = _spin(QSpinBox, 1, 1000, d.steps, "Network evaluations of a strided run")
    p.eta = _spin(QDoubleSpinBox, 0.0, 1.0, d.eta,
                  "DDIM noise scale: 0 deterministic, 1 like DDPM's posterior variance")
    p.eta.setSingleStep(0.1)
    p.eta.setDecimals(2)
    p.variance = _combo(VARIANCES, "σ_t² of the DDPM reverse step: the posterior variance "
                                   "(1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t ('fixed_small') or β_t "
                                   "('fixed_large'); \"model's\" uses the scheduler config")
    p.clip = _combo(CLIPS, "Clamp the predicted clean image x₀ to [-1, 1] before each step")
    p.seed = _spin(QSpinBox, 0, 2 ** 31 - 1, d.seed,
                   "Seeds x_T and every step's noise: the same seed gives the same images as "
                   "`diffusion-gui sample --seed`")
    p.dice = QPushButton("Random")
    p.dice.setToolTip("A new random seed")
    seed_row = QHBoxLayout()
    seed_row.setContentsMargins(0, 0, 0, 0)
    seed_row.addWidget(p.seed, 1)
    seed_row.addWidget(p.dice)
    p.batch = _spin(QSpinBox, 1, MAX_BATCH, d.batch, "Images sampled at once, shown as a grid")
    p.record_mb = _spin(QSpinBox, 16, 65536, d.record_mb,
                        "Most memory the recorded trajectory may take. A run with more frames "
                        "keeps an even subset of them and every frame of the last steps; the "
                        "panel says what it kept. The export of a trajectory uses what was kept.")
    p.record_mb.setSuffix(" MB")
    p.record_mb.setSingleStep(128)
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    for label, w in (("Sampler", p.sampler), ("Steps N", p.steps), ("η (DDIM)", p.eta),
                     ("Variance", p.variance), ("Clip x₀ pred.", p.clip), ("Seed", seed_row),
                     ("Batch", p.batch), ("Record up to", p.record_mb)):
        form.addRow(label, w)
    box = QGroupBox("Sampler")
    box.setLayout(form)
    return box


def run_box(p) -> QGroupBox:
    p.generate_btn = QPushButton("Generate")
    p.generate_btn.setDefault(True)
    p.generate_btn.setToolTip("Sample a batch from pure noise x_T")
    p.stop_btn = QPushButton("Stop")
    p.stop_btn.setToolTip("Stop before the next network call")
    p.step_btn = QPushButton("Step")
    p.step_btn.setToolTip("One reverse step at a time (pauses a running sampler)")
    p.continue_btn = QPushButton("Continue")
    p.continue_btn.setToolTip("Run to the end from where it paused")
    for b in (p.generate_btn, p.stop_btn, p.step_btn, p.continue_btn):
        b.setMinimumHeight(30)
    f = p.generate_btn.font()
    f.setBold(True)
    p.generate_btn.setFont(f)
    buttons = QVBoxLayout()
    for pair in ((p.generate_btn, p.stop_btn), (p.step_btn, p.continue_btn)):
        row = QHBoxLayout()
        for b in pair:
            row.addWidget(b)
        buttons.addLayout(row)
    p.progress = QProgressBar()
    p.progress.setRange(0, 1)
    p.progress.setValue(0)
    # no text in the bar: a QProgressBar repaints synchronously whenever its text changes,
    # i.e. on every frame; the step count is in the line under it
    p.progress.setTextVisible(False)
    p.progress.setFixedHeight(12)
    p.progress_text = Line(2)          # "step k / n · t · rate · ETA" wraps in a narrow column
    p.cost_text = Line(3)              # the run as set up: "≈ 3 min on cpu (0.2 s a call)"
    p.cost_text.setToolTip("The run's duration as set up, from one network call timed at this "
                           "batch on this device when the model loaded")
    buttons.addWidget(p.cost_text)
    buttons.addWidget(p.progress)
    buttons.addWidget(p.progress_text)
    box = QGroupBox("Run")
    box.setLayout(buttons)
    return box


def denoise_box(p) -> QGroupBox:
    p.denoise_t = _spin(QSpinBox, 1, 1000, 1,
                        "The paper's t the image is noised to (follows the forward panel)")
    p.denoise_t.setPrefix("t = ")
    p.denoise_source = QComboBox()
    p.denoise_source.addItem("a held-out example", "example")
    p.denoise_source.addItem("the forward panel's image", "image")
    p.denoise_source.setToolTip("What to noise and denoise: a picture of the model's own kind of "
                                "data that it never saw in training, or the forward panel's image")
    p.denoise_example = _spin(QSpinBox, 1, 1000, 1, "Which held-out example")
    p.denoise_example.setPrefix("# ")
    p.denoise_btn = QPushButton("Denoise")
    p.denoise_btn.setToolTip("Noise the picture to t (at the model's size and channels) and run "
                             "the reverse process from there")
    p.denoise_note = QLabel("")
    p.denoise_note.setWordWrap(True)
    p.denoise_note.setEnabled(False)
    src = QHBoxLayout()
    src.addWidget(p.denoise_source, 1)
    src.addWidget(p.denoise_example)
    row = QHBoxLayout()
    row.addWidget(p.denoise_t, 1)
    row.addWidget(p.denoise_btn)
    lay = QVBoxLayout()
    lay.addLayout(src)
    lay.addLayout(row)
    lay.addWidget(p.denoise_note)
    box = QGroupBox("Denoise a picture")
    box.setLayout(lay)
    return box


def controls(p) -> QScrollArea:
    """The left column: model, sampler, run, denoise."""
    p.picker = ModelPicker(p.ctx)
    model_box = QGroupBox("Model")
    QVBoxLayout(model_box).addWidget(p.picker)
    from .guidance import GuidanceBox
    p.guidance_box = GuidanceBox(p.ctx)
    scroll, left = control_column((model_box, sampler_box(p), p.guidance_box, run_box(p), denoise_box(p)))
    scroll.setMinimumWidth(left.sizeHint().width() + 16)
    return scroll


# ------------------------------------------------------------------------------ views (right)
def header(p) -> QHBoxLayout:
    big = QFont(p.font())
    big.setPointSizeF(big.pointSizeF() * 1.6)
    big.setBold(True)
    p.t_label = Line(1, font=big)
    p.t_label.setFixedWidth(QFontMetrics(big).horizontalAdvance("t = 8888 / 8888") + 8)
    p.t_label.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
    mono = QFont("monospace")
    mono.setStyleHint(QFont.Monospace)
    mono.setPointSizeF(p.font().pointSizeF() * 1.1)
    p.numbers = Line(1, font=mono)
    p.numbers.setToolTip("β_t: the step's noise variance in the (respaced) schedule; σ_t: the "
                         "std of the noise added on leaving x_t; ᾱ_t: the signal fraction "
                         "of x_t (x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε)")
    head = QHBoxLayout()
    head.addWidget(p.t_label)
    head.addSpacing(24)
    head.addWidget(p.numbers, 1)
    return head


def image_views(p) -> QWidget:
    """The original (denoise runs only), x_t and predicted x_0, each under its heading, and the
    power spectrum of the two."""
    p.orig_view, p.xt_view, p.x0_view = TopView(caption=" "), TopView(caption=" "), TopView(caption=" ")
    p.xt_view.set_placeholder("Generate to watch x_T turn into images")
    p.x0_view.set_placeholder("")
    p.xt_view.setToolTip("x_t, the batch as a grid. Click a sample to follow it in the "
                         "trajectory strip below.")
    p.x0_view.setToolTip("What the network thinks the clean images are, seen from x_t: "
                         "x0 = (x_t − √(1−ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t")
    p.orig_head = heading("<b>original</b>")
    p.xt_head = heading("<b>x<sub>t</sub></b> &nbsp;<span style='color:#555'>the samples at "
                        "step t</span>")
    p.x0_head = heading(f"<b>pred x<sub>0</sub></b> &nbsp;<span style='color:#555'>"
                        f"(x<sub>t</sub> &minus; √(1&minus;{ABAR}<sub>t</sub>)&thinsp;"
                        f"ε<sub>θ</sub>) / √{ABAR}<sub>t</sub></span>")
    p.views_box = QWidget()
    grid = QGridLayout(p.views_box)
    grid.setContentsMargins(0, 0, 0, 0)
    grid.setHorizontalSpacing(14)
    grid.setVerticalSpacing(2)
    for col, (h, v, stretch) in enumerate(((p.orig_head, p.orig_view, 2), (p.xt_head, p.xt_view, 3),
                                           (p.x0_head, p.x0_view, 3))):
        grid.addWidget(h, 0, col)
        grid.addWidget(v, 1, col)
        grid.setColumnStretch(col, stretch)
    from .spectrum import ReverseSpectrumView
    p.spectrum = ReverseSpectrumView()
    grid.addWidget(p.spectrum, 0, 3, 2, 1)       # the spectra of the two pictures, beside them
    grid.setColumnStretch(3, 3)
    grid.setRowStretch(1, 1)
    p._views_grid = grid
    return p.views_box


def scrubber(p) -> QHBoxLayout:
    p.slider = QSlider(Qt.Horizontal)
    p.slider.setEnabled(False)
    p.slider.setRange(0, 0)
    p.slider.setToolTip("Scrub the recorded trajectory (after a run, a stop or a pause)")
    p.slider_label = Line(1)
    p.slider_label.setText("no run yet")
    p.traj_note = QLabel("")
    p.traj_note.setEnabled(False)
    row = QHBoxLayout()
    row.addWidget(QLabel("<b>Trajectory</b>"))
    row.addWidget(p.slider, 1)
    return row


def film_strip(p) -> QWidget:
    """:data:`FILM_FRAMES` thumbnails of one sample's x_t along the run."""
    p.film = []
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(6)
    for _ in range(FILM_FRAMES):
        fr = Thumbnail(key=-1, outline=C_XT, size_hint=(96, 110), min_size=56)  # key: frame
        fr.shown = None        # (Frame, sample) on show, so that a refill repaints only news
        p.film.append(fr)
        row.addWidget(fr, 1)
    box = QWidget()
    box.setLayout(row)
    box.setMinimumHeight(72)
    box.setMaximumHeight(104)
    p.film_head = QLabel("<b>Trajectory of one sample</b> &nbsp;<span style='color:#555'>"
                         "filled in after a run, a stop or a pause</span>")
    p.film_head.setTextFormat(Qt.RichText)
    return box


def views(p) -> QWidget:
    """The right side: t and the step's numbers, the images, the formula, the scrubber and the
    trajectory strip; the slack goes above and below the whole group."""
    right = QWidget()
    p.views_panel = right          # holds the focus while the run buttons are disabled
    right.setFocusPolicy(Qt.ClickFocus)
    lay = QVBoxLayout(right)
    lay.setContentsMargins(8, 6, 8, 6)
    lay.addStretch(1)
    lay.addLayout(header(p))
    lay.addWidget(image_views(p), 100)
    ff = QFont(p.font())
    ff.setPointSizeF(ff.pointSizeF() * 1.1)
    p.formula = Line(2, font=ff, box=True)
    p.formula.setToolTip("The reverse step that leaves x_t, with this step's coefficients")
    lay.addWidget(p.formula)
    lay.addSpacing(4)
    lay.addLayout(scrubber(p))
    info = QHBoxLayout()
    info.addWidget(p.slider_label, 1)
    info.addWidget(p.traj_note)
    lay.addLayout(info)
    p.result_label = Line(2)        # a denoise run's PSNR; its room is kept when hidden, so
    sp = p.result_label.sizePolicy()   # that showing it moves nothing
    sp.setRetainSizeWhenHidden(True)
    p.result_label.setSizePolicy(sp)
    p.result_label.setVisible(False)
    lay.addWidget(p.result_label)
    lay.addSpacing(6)
    strip = film_strip(p)
    lay.addWidget(p.film_head)
    lay.addWidget(strip)
    lay.addStretch(1)
    return right


# ------------------------------------------------------------------------------ actions
def _scrub(p, to):
    """Move the scrubber to ``to(value, maximum)`` (a recorded frame's index)."""
    return lambda: p.slider.setValue(max(0, min(to(p.slider.value(), p.slider.maximum()),
                                                p.slider.maximum())))


def actions(p) -> list[tuple[QAction, object]]:
    """The panel's actions with their shortcuts (active while the focus is in the panel; F1
    lists them), each with the test of when it is enabled: the run buttons' state, or a
    scrubbable trajectory for the scrub keys."""
    scrub = p.slider.isEnabled
    specs = (("Generate", ["Ctrl+G", "Ctrl+Return"], p.generate, p.generate_btn.isEnabled),
             ("Stop", ["Esc"], p.stop, p.stop_btn.isEnabled),
             ("Step / Pause", ["S"], p.step, p.step_btn.isEnabled),
             ("Continue", ["C"], p.resume, p.continue_btn.isEnabled),
             ("Previous frame", ["Left"], _scrub(p, lambda v, m: v - 1), scrub),
             ("Next frame", ["Right"], _scrub(p, lambda v, m: v + 1), scrub),
             ("First frame (t = T)", ["Home"], _scrub(p, lambda v, m: 0), scrub),
             ("Last frame", ["End"], _scrub(p, lambda v, m: m), scrub))
    out = []
    for text, keys, slot, enabled in specs:
        a = QAction(f"Reverse: {text}", p)
        a.setShortcuts([QKeySequence(k) for k in keys])
        a.setShortcutContext(Qt.WidgetWithChildrenShortcut)
        a.triggered.connect(slot)
        p.addAction(a)
        out.append((a, enabled))
    return out
