"""Reverse panel: watch a DDPM model denoise, live, and scrub the trajectory afterwards.

The sampler is :func:`diffusion_gui.commands.make_sampler`, the very generator ``diffusion-gui
sample`` iterates, so the GUI and the CLI compute the same images for the same model, sampler and
seed. A :class:`~diffusion_gui.gui.workers.GeneratorWorker` iterates it on a QThread:

- every item is checked for NaN / infinity (the run stops with a message, nothing garbled is
  shown); the steps the trajectory plan keeps are converted to uint8 and recorded
  :data:`RECORD_BATCH` at a time (and whenever a frame is shown, the run pauses or ends);
- the display is fed latest-wins at most :data:`LIVE_RATE` frames per second; x_t and x0_pred are
  converted to uint8 (``to_uint8`` + ``tile``) only for a frame that is recorded or shown. A
  :class:`~..frame_pacer.FramePacer` lowers the rate so that live frames take at most
  :data:`~..frame_pacer.GUI_SHARE` of the GUI thread's time (the GUI thread's work holds the GIL
  the sampler needs, and on a small machine a core too); the numbers beside the pictures change
  at most :data:`TEXT_RATE` times a second.

**Trajectory memory.** Frames are stored as uint8 ``[B, H, W, C]`` (x_t and x0_pred), at most
:data:`TRAJECTORY_BUDGET_MB` MB per run. When a run has more frames than fit, the plan (fixed at
the first step, when the frame size is known) keeps an even subset of the early frames plus
*every* one of the last quarter of the budget (the end of a run, where the picture settles, is
never decimated); the first and the final frame are always kept. :func:`keep_plan` is the rule.
"""
from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QRectF, QSettings, Qt, Signal
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QAction,
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPalette,
    QPen,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
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
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...core.images import tile, to_uint8
from ..frame_pacer import GUI_SHARE, FramePacer
from ..image_view import ImageView, Thumbnail
from ..model_picker import ModelPicker
from ..style import heading
from ..workers import run_job

#: Most memory one run's recorded trajectory may take (uint8 x_t and x0_pred frames).
TRAJECTORY_BUDGET_MB = 256
#: Live frames per second, at most.
LIVE_RATE = 30.0
#: During a run, the numbers around the pictures (t, captions, β/σ/ᾱ, the update formula, the
#: progress line and bar) change at most this often: nobody reads numbers that change 30 times a
#: second, and laying out and painting their rich text costs the GUI thread about as much as a
#: live picture (whose rate the pacer lowers to pay for them). A paused, stopped, finished or
#: scrubbed frame always shows all of them.
TEXT_RATE = 3.0
#: Kept steps are checked per step but recorded (statistics, uint8 frames) this many at a time.
RECORD_BATCH = 8
MAX_BATCH = 64
#: Thumbnails in the trajectory strip.
FILM_FRAMES = 10

SAMPLERS = [  # (key, label, make_sampler kind)
    ("ddpm", "DDPM ancestral (all T steps)", "ddpm"),
    ("ddpm_strided", "DDPM over N strided steps", "ddpm"),
    ("ddim", "DDIM over N strided steps", "ddim"),
]
VARIANCES = [(None, "model's"), ("fixed_small", "fixed_small  (posterior σ²)"),
             ("fixed_large", "fixed_large  (σ² = β_t)")]
CLIPS = [(None, "model's"), (True, "on  [-1, 1]"), (False, "off")]


class NonFiniteError(ValueError):
    """NaN or infinity appeared in x_t or x0_pred during sampling."""


def _error_text(e: BaseException):
    from ...cli import UsageError
    from ...models.errors import ModelLoadError
    if isinstance(e, (NonFiniteError, UsageError, ModelLoadError)):
        return str(e)
    if isinstance(e, MemoryError):
        return "not enough memory for this batch; try a smaller batch"
    return None


# ------------------------------------------------------------------------------ trajectory
def keep_plan(n_frames: int, frame_bytes: int, budget_bytes: int) -> list[int]:
    """Which frames ``0..n_frames-1`` of a run to record within ``budget_bytes``.

    All of them if they fit. Otherwise ``cap = budget // frame_bytes`` frames (at least 2): the
    last ``cap // 4`` frames all, and an even subset of the rest that includes frame 0.
    """
    if n_frames <= 0:
        return []
    cap = max(2, int(budget_bytes // max(1, frame_bytes)))
    if n_frames <= cap:
        return list(range(n_frames))
    tail = max(1, cap // 4)
    start_tail = n_frames - tail
    head = np.round(np.linspace(0, start_tail - 1, cap - tail)).astype(int)
    return sorted(set(head.tolist()) | set(range(start_tail, n_frames)))


@dataclass
class Frame:
    """One recorded step. ``t``: the paper's step (T = noise ... 0 = clean); images uint8 [B,H,W,C]."""

    step: int
    t: int
    beta: float
    sigma: float
    alpha_bar: float
    xt: np.ndarray
    x0: np.ndarray
    stats: tuple = (0.0, 0.0, 0.0, 0.0)   # mean and std of x_t, then of x0_pred (floats)


class Trajectory:
    """The recorded frames of one run. Appended by the worker thread, read by the GUI thread."""

    def __init__(self, budget_bytes: int = TRAJECTORY_BUDGET_MB * 2 ** 20):
        self.budget_bytes = int(budget_bytes)
        self.frames: list[Frame] = []
        self.keep: set[int] | None = None
        self.n_total = 0
        self.nbytes = 0
        self._lock = threading.Lock()

    def plan(self, num_steps: int, shape):
        """Fix the plan at the first item: ``num_steps + 1`` frames of ``shape = (B, C, H, W)``."""
        per_frame = 2 * int(np.prod(shape))  # x_t and x0_pred, uint8
        self.n_total = num_steps + 1
        self.keep = set(keep_plan(self.n_total, per_frame, self.budget_bytes))

    def wants(self, step: int) -> bool:
        return self.keep is not None and step in self.keep

    def add(self, f: Frame):
        with self._lock:
            self.frames.append(f)
            self.nbytes += f.xt.nbytes + (0 if f.x0 is f.xt else f.x0.nbytes)

    def snapshot(self) -> list[Frame]:
        with self._lock:
            return list(self.frames)

    def __len__(self):
        with self._lock:
            return len(self.frames)

    def describe(self) -> str:
        n = len(self)
        mb = self.nbytes / 2 ** 20
        if self.keep is not None and len(self.keep) < self.n_total:
            return (f"kept {len(self.keep)} of {self.n_total} frames (even subset, then every "
                    f"frame at the end): {mb:.1f} MB, budget {self.budget_bytes / 2 ** 20:.0f} MB")
        return f"{n} frames recorded, {mb:.1f} MB"


# ------------------------------------------------------------------------------ one run
class ReverseRun:
    """Everything one run needs, used by the worker thread (``make_gen``, ``observe``, ``convert``)
    and read by the GUI thread (``traj``, ``kind``, ``original``)."""

    def __init__(self, model, params: dict, *, kind: str = "generate", original=None, start_t=None,
                 budget_bytes: int = TRAJECTORY_BUDGET_MB * 2 ** 20):
        self.model = model
        self.params = dict(params)
        self.kind = kind
        self.original = original      # uint8 [S, S, C] for a denoise run
        self.start_t = start_t
        self.traj = Trajectory(budget_bytes)
        self.job = None
        self.T = int(model.num_timesteps)
        self._times: deque = deque(maxlen=32)
        self._reset_rate = False
        self._last = (None, None, None, None)   # (item, stats, xt, x0) last converted
        self._pending: list = []        # kept steps not yet recorded (flush)
        self._flush_lock = threading.Lock()
        self._abar = None

    # ---- worker thread
    def make_gen(self):
        from ...commands import make_sampler
        p = self.params
        self._abar = model_alpha_bars(self.model)
        x_start = None
        if self.kind == "denoise":
            x_start = self._noised_start()
        gen, shape = make_sampler(self.model, sampler=p["sampler"], steps=p["steps"], eta=p["eta"],
                                  batch=p["batch"], seed=p["seed"], clip=p["clip"],
                                  variance=p["variance"], x_start=x_start, start_t=self.start_t)
        self.shape = shape
        return gen

    def _noised_start(self):
        """The original, noised to ``start_t`` with the run's seed (a stream apart from the
        sampler's): ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``."""
        import torch

        from ...core.images import to_float_array
        b = self.params["batch"]
        x0 = torch.from_numpy(to_float_array(self.original))[None].repeat(b, 1, 1, 1)
        g = torch.Generator().manual_seed(int(self.params["seed"]) + 7919)
        noise = torch.randn(x0.shape, generator=g)
        i = torch.full((b,), self.start_t - 1, dtype=torch.long)
        return self.model.diffusion.q_sample(x0, i, noise).float()

    def reset_rate(self):
        self._reset_rate = True

    def observe(self, so):
        """Every item: NaN check and timing; the steps the plan keeps are recorded in batches of
        :data:`RECORD_BATCH` (:meth:`flush`)."""
        if not self._finite(so):
            raise NonFiniteError(
                f"NaN or infinity appeared at t = {so.t} (step {so.step + 1} of {so.num_steps}); "
                f"the run was stopped. Try clipping x₀, another sampler, or check the model.")
        if self._reset_rate:
            self._times.clear()
            self._reset_rate = False
        self._times.append(time.perf_counter())
        if self.traj.keep is None:
            self.traj.plan(so.num_steps, so.x_t.shape)
        if self.traj.wants(so.step):
            self._pending.append(so)
            if len(self._pending) >= RECORD_BATCH or so.t == 0:
                self.flush()

    @staticmethod
    def _finite(so) -> bool:
        """No NaN or infinity in x_t or x0_pred: one float64 sum each (NaN and inf survive it)."""
        import torch
        return math.isfinite(float(so.x_t.sum(dtype=torch.float64))
                             + float(so.x0_pred.sum(dtype=torch.float64)))

    def flush(self):
        """Record the steps observed since the last flush, converted in one pass
        (:func:`convert_steps`). The worker calls it every :data:`RECORD_BATCH` kept steps, at
        the last step and before a shown frame is converted; the GUI thread when the worker is
        idle (paused, or the run over). Many small conversions, one per step, slowed sampling by
        several per cent on 2 cores (``benchmarks/reverse_variants.py``), far more than their CPU
        time."""
        with self._flush_lock:
            items, self._pending = self._pending, []
            if not items:
                return
            for so, (stats, xt, x0) in zip(items, convert_steps(items)):
                self.traj.add(Frame(so.step, so.t, so.beta, so.sigma, self.alpha_bar(so.t), xt, x0,
                                    stats))
            self._last = (so, stats, xt, x0)    # the last one, which a shown frame usually is

    def alpha_bar(self, t: int) -> float:
        return 1.0 if t <= 0 or self._abar is None else float(self._abar[t - 1])

    def rate(self) -> float:
        ts = self._times
        if len(ts) < 2 or ts[-1] <= ts[0]:
            return 0.0
        return (len(ts) - 1) / (ts[-1] - ts[0])

    def convert(self, so) -> dict:
        """A displayed item -> plain numpy (runs in the worker thread)."""
        self.flush()
        if self._last[0] is not so:             # a step the plan does not keep
            self._last = (so, *convert_steps([so])[0])
        _, stats, xt, x0 = self._last
        rate = self.rate()
        left = max(0, so.num_steps - so.step - 1)
        return {"frame": Frame(so.step, so.t, so.beta, so.sigma, self.alpha_bar(so.t), xt, x0,
                               stats),
                "num_steps": so.num_steps, "xt": tile(xt), "x0": tile(x0), "rate": rate,
                "eta_s": left / rate if rate > 0 else None}


def convert_steps(items) -> list[tuple]:
    """Sampler items -> ``[(stats, xt, x0)]``: stats = (mean, std) of x_t, then of x0_pred; xt,
    x0 uint8 ``[B, H, W, C]``. One stacked copy of all of them, one pass for the statistics and
    one for the uint8 conversion (done in place in that copy when everything is finite)."""
    import torch
    b = items[0].x_t.shape[0]
    xs = torch.stack([t for so in items for t in (so.x_t, so.x0_pred)]).detach()
    xs = xs.to("cpu").float()                                       # [2k, B, C, H, W]
    a = xs.numpy().reshape(len(items) * 2, -1)
    with np.errstate(invalid="ignore", over="ignore"):   # a NaN or inf shows in the statistics
        m, sd = a.mean(1), a.std(1, ddof=1)
    finite = bool(np.isfinite(m).all() and np.isfinite(sd).all())
    u8 = to_uint8(xs.reshape(-1, *xs.shape[2:]).numpy(), scratch=finite)   # [2kB, H, W, C]
    return [((float(m[2 * j]), float(sd[2 * j]), float(m[2 * j + 1]), float(sd[2 * j + 1])),
             u8[2 * j * b:(2 * j + 1) * b], u8[(2 * j + 1) * b:(2 * j + 2) * b])
            for j in range(len(items))]


def model_alpha_bars(model) -> np.ndarray:
    ab = model.diffusion.schedule.alpha_bars
    return np.asarray(ab.detach().cpu().numpy() if hasattr(ab, "detach") else ab, dtype=np.float64)


def prepare_original(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """The forward panel's image at the model's resolution and channels: centre crop + resize
    (:func:`~diffusion_gui.core.images.resize_image`), grey for 1-channel models. uint8 [S, S, C]."""
    from PIL import Image

    from ...core.images import resize_image
    a = np.asarray(image, dtype=np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    img = Image.fromarray(a)
    img = img.convert("L" if channels == 1 else "RGB")
    out = np.asarray(resize_image(img, size=int(size)), dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out


def psnr(result: np.ndarray, original: np.ndarray) -> np.ndarray:
    """PSNR in dB of each image of ``result`` [B, H, W, C] against ``original`` [H, W, C]."""
    d = result.astype(np.float64) - original[None].astype(np.float64)
    mse = (d ** 2).reshape(len(result), -1).mean(axis=1)
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12))


ABAR = '<span style="text-decoration: overline">&alpha;</span>'
C_X0, C_XT, C_Z = "#0072B2", "#D55E00", "#555555"


def _c(v: float, color: str) -> str:
    return f"<b style='color:{color}'>{v:.4f}</b>"


def update_formula(f: Frame, kind: str, abar=None) -> str:
    """The step that leaves ``x_t``, with this frame's numbers (rich text).

    DDPM: ``x_{t'} = c0 x0_pred + ct x_t + sigma z`` (the posterior mean of q(x_{t'} | x_t, x_0) with
    x_0 predicted); DDIM: ``x_{t'} = sqrt(abar_{t'}) x0_pred + sqrt(1 - abar_{t'} - sigma^2) eps + sigma z``.
    ``t'`` is the next visited step (``t - 1`` over all T steps); ``abar``: the schedule's alpha_bars.
    """
    if f.t <= 0:
        return ("<b>x<sub>0</sub></b> is the final sample: the last step returned the mean, "
                "without noise.")
    ab_t = f.alpha_bar
    alpha = 1.0 - f.beta
    ab_prev = min(1.0, ab_t / alpha) if alpha > 0 else 1.0
    t_next = 0
    if abar is not None and ab_prev < 1.0 - 1e-12:
        t_next = int(np.argmin(np.abs(np.asarray(abar) - ab_prev))) + 1
    xn = f"x<sub>{t_next}</sub>"
    xt = f"x<sub>{f.t}</sub>"
    x0 = "pred x<sub>0</sub>"
    if kind == "ddim":
        c0 = math.sqrt(ab_prev)
        ce = math.sqrt(max(0.0, 1.0 - ab_prev - f.sigma ** 2))
        eq = (f"<b>{xn}</b> = {_c(c0, C_X0)}&middot;{x0} + {_c(ce, C_XT)}&middot;&epsilon;<sub>&theta;</sub>"
              f" + {_c(f.sigma, C_Z)}&middot;z")
        note = (f"DDIM: √{ABAR}<sub>{t_next}</sub>&thinsp;x<sub>0</sub> plus the predicted noise "
                f"direction{'' if f.sigma > 0 else ', deterministic (η = 0)'}")
    else:
        den = 1.0 - ab_t
        c0 = math.sqrt(ab_prev) * f.beta / den if den > 0 else 1.0
        ct = math.sqrt(alpha) * (1.0 - ab_prev) / den if den > 0 else 0.0
        eq = (f"<b>{xn}</b> = {_c(c0, C_X0)}&middot;{x0} + {_c(ct, C_XT)}&middot;{xt}"
              f" + {_c(f.sigma, C_Z)}&middot;z")
        note = ("DDPM: the mean of q(x<sub>t&minus;1</sub> | x<sub>t</sub>, x<sub>0</sub>) with "
                "x<sub>0</sub> predicted, plus σ<sub>t</sub>&thinsp;z, z ~ N(0, I)")
    return f"{eq}<br><span style='color:#555'>{note}</span>"


class _Line(QWidget):
    """A one- (or few-) line rich-text label that never re-lays out the panel: ``setText`` only
    repaints (a QLabel asks its parent layout to recompute on every new text, which at 30 frames
    a second costs the GUI thread more than the pictures). ``box``: drawn as a formula box."""

    def __init__(self, lines: int = 1, *, font: QFont | None = None, box: bool = False,
                 align=Qt.AlignLeft):
        super().__init__()
        if font is not None:
            self.setFont(font)
        self._box = box
        self._pad = (12, 5) if box else (0, 1)
        self._doc = QTextDocument(self)
        self._doc.setDocumentMargin(0)
        self._doc.setDefaultFont(self.font())
        opt = self._doc.defaultTextOption()
        opt.setAlignment(align)
        self._doc.setDefaultTextOption(opt)
        self._text = ""
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.set_lines(lines)
        # it paints its whole rect (the window colour first), so a new text repaints only this
        # widget, not the panel, splitter and window beneath it as well
        self.setAttribute(Qt.WA_OpaquePaintEvent, True)

    def set_lines(self, n: int):
        self.setFixedHeight(self.fontMetrics().lineSpacing() * n + 2 * self._pad[1] + 2)

    def setText(self, text: str):
        if text != self._text:
            self._text = text
            self._doc.setHtml(text)
            self.update()

    def text(self) -> str:
        """The plain text shown."""
        return self._doc.toPlainText()

    def paintEvent(self, ev):
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(QPalette.Window))
        p.setRenderHint(QPainter.Antialiasing, True)
        if self._box:
            p.setPen(QPen(QColor("#dddddd"), 1))
            p.setBrush(QColor("#f7f7f4"))
            p.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        px, py = self._pad
        self._doc.setTextWidth(max(10, self.width() - 2 * px))
        p.translate(px, py)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.palette.setColor(QPalette.Text, self.palette().color(QPalette.WindowText))
        self._doc.documentLayout().draw(p, ctx)
        p.end()


class _TopView(ImageView):
    """An ImageView whose picture hangs from the top, right under its heading (the slack of an
    integer zoom goes below the caption, not between the heading and the picture)."""

    def image_rect(self):
        r = super().image_rect()
        if r.isEmpty():
            return r
        return QRectF(r.x(), 0.0, r.width(), r.height())


def _select_data(combo: QComboBox, value):
    """Select the item whose data is ``value`` (None included); the first item otherwise."""
    for k in range(combo.count()):
        if combo.itemData(k) == value and (value is not None or combo.itemData(k) is None):
            combo.setCurrentIndex(k)
            return
    combo.setCurrentIndex(0)


def _fmt_s(s) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


# ------------------------------------------------------------------------------ the panel
class ReversePanel(QWidget):
    """Sample from the current model, live; Step through it; scrub the recorded trajectory."""

    title = "Reverse"

    run_started = Signal(int)          # run id
    run_ended = Signal(int, str)       # run id, "finished" | "stopped" | "failed"
    frame_shown = Signal(int)          # step of the frame just displayed (live)

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self._run: ReverseRun | None = None
        self._state = "idle"            # idle | running | pausing | paused | stepping | stopping
        self._retired: list = []        # cancelled jobs whose thread may still be finishing
        self._shown_step = None
        self._text_at = -1e9            # when the live numbers were last updated (TEXT_RATE)
        self.pacer = FramePacer(LIVE_RATE, share=GUI_SHARE)
        self._last_message = ""
        #: trajectory memory bound of one run, in bytes (see the module docstring)
        self.budget_bytes = TRAJECTORY_BUDGET_MB * 2 ** 20
        self._build()
        ctx.model_changed.connect(self._on_model_changed)
        ctx.image_changed.connect(self._update_buttons)
        ctx.forward_t_changed.connect(self._on_forward_t)
        self._on_model_changed()

    # ================================================================ widgets
    def _build(self):
        # ---- left column: controls
        self.picker = ModelPicker(self.ctx)
        model_box = QGroupBox("Model")
        QVBoxLayout(model_box).addWidget(self.picker)

        self.sampler = QComboBox()
        for key, label, _ in SAMPLERS:
            self.sampler.addItem(label, key)
        self.sampler.setToolTip("DDPM ancestral: x_{t-1} = μ_θ(x_t) + σ_t z over every t.\n"
                                "Strided: the same over N evenly spaced steps (respaced schedule).\n"
                                "DDIM: the non-Markovian sampler of Song et al.; η = 0 is deterministic.")
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(50)
        self.steps.setToolTip("Network evaluations of a strided run")
        self.eta = QDoubleSpinBox()
        self.eta.setRange(0.0, 1.0)
        self.eta.setSingleStep(0.1)
        self.eta.setDecimals(2)
        self.eta.setToolTip("DDIM noise scale: 0 deterministic, 1 like DDPM's posterior variance")
        self.variance = QComboBox()
        for v, label in VARIANCES:
            self.variance.addItem(label, v)
        self.variance.setToolTip("σ_t² of the DDPM reverse step: the posterior variance "
                                 "(1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t ('fixed_small') or β_t "
                                 "('fixed_large'); \"model's\" uses the scheduler config")
        self.clip = QComboBox()
        for v, label in CLIPS:
            self.clip.addItem(label, v)
        self.clip.setToolTip("Clamp the predicted clean image x₀ to [-1, 1] before each step")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("Seeds x_T and every step's noise: the same seed gives the same "
                             "images as `diffusion-gui sample --seed`")
        self.dice = QPushButton("Random")
        self.dice.setToolTip("A new random seed")
        self.dice.clicked.connect(self._random_seed)
        seed_row = QHBoxLayout()
        seed_row.setContentsMargins(0, 0, 0, 0)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        self.batch = QSpinBox()
        self.batch.setRange(1, MAX_BATCH)
        self.batch.setValue(16)
        self.batch.setToolTip("Images sampled at once, shown as a grid")

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        form.addRow("Sampler", self.sampler)
        form.addRow("Steps N", self.steps)
        form.addRow("η (DDIM)", self.eta)
        form.addRow("Variance", self.variance)
        form.addRow("Clip x₀ pred.", self.clip)
        form.addRow("Seed", seed_row)
        form.addRow("Batch", self.batch)
        sampler_box = QGroupBox("Sampler")
        sampler_box.setLayout(form)
        self.sampler.currentIndexChanged.connect(self._update_buttons)

        self.generate_btn = QPushButton("Generate")
        self.generate_btn.setDefault(True)
        self.generate_btn.setToolTip("Sample a batch from pure noise x_T")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Stop before the next network call")
        self.step_btn = QPushButton("Step")
        self.step_btn.setToolTip("One reverse step at a time (pauses a running sampler)")
        self.continue_btn = QPushButton("Continue")
        self.continue_btn.setToolTip("Run to the end from where it paused")
        for b in (self.generate_btn, self.stop_btn, self.step_btn, self.continue_btn):
            b.setMinimumHeight(30)
        f = self.generate_btn.font()
        f.setBold(True)
        self.generate_btn.setFont(f)
        self.generate_btn.clicked.connect(self.generate)
        self.stop_btn.clicked.connect(self.stop)
        self.step_btn.clicked.connect(self.step)
        self.continue_btn.clicked.connect(self.resume)
        buttons = QVBoxLayout()
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        row1.addWidget(self.generate_btn)
        row1.addWidget(self.stop_btn)
        row2.addWidget(self.step_btn)
        row2.addWidget(self.continue_btn)
        buttons.addLayout(row1)
        buttons.addLayout(row2)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        # no text in the bar: a QProgressBar repaints synchronously whenever its text changes,
        # i.e. on every frame; the step count is in the line under it
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(12)
        self.progress_text = _Line(1)
        buttons.addWidget(self.progress)
        buttons.addWidget(self.progress_text)
        run_box = QGroupBox("Run")
        run_box.setLayout(buttons)

        self.denoise_t = QSpinBox()
        self.denoise_t.setRange(1, 1000)
        self.denoise_t.setValue(1)
        self.denoise_t.setPrefix("t = ")
        self.denoise_t.setToolTip("The paper's t the image is noised to (follows the forward panel)")
        self.denoise_btn = QPushButton("Denoise")
        self.denoise_btn.setToolTip("Noise the forward panel's image to t (at the model's size and "
                                    "channels) and run the reverse process from there")
        self.denoise_btn.clicked.connect(self.denoise)
        self.denoise_note = QLabel("")
        self.denoise_note.setWordWrap(True)
        self.denoise_note.setEnabled(False)
        drow = QHBoxLayout()
        drow.addWidget(self.denoise_t, 1)
        drow.addWidget(self.denoise_btn)
        dlay = QVBoxLayout()
        dlay.addLayout(drow)
        dlay.addWidget(self.denoise_note)
        denoise_box = QGroupBox("Denoise the forward panel's image")
        denoise_box.setLayout(dlay)

        left = QWidget()
        llay = QVBoxLayout(left)
        llay.setContentsMargins(6, 6, 6, 6)
        llay.addWidget(model_box)
        llay.addWidget(sampler_box)
        llay.addWidget(run_box)
        llay.addWidget(denoise_box)
        llay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(left.sizeHint().width() + 16)

        # ---- right: the images
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 1.6)
        big.setBold(True)
        self.t_label = _Line(1, font=big)
        self.t_label.setFixedWidth(QFontMetrics(big).horizontalAdvance("t = 8888 / 8888") + 8)
        self.t_label.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.Monospace)
        mono.setPointSizeF(self.font().pointSizeF() * 1.1)
        self.numbers = _Line(1, font=mono)
        self.numbers.setToolTip("β_t: the step's noise variance in the (respaced) schedule; σ_t: the "
                                "std of the noise added on leaving x_t; ᾱ_t: the signal fraction "
                                "of x_t (x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε)")
        head = QHBoxLayout()
        head.addWidget(self.t_label)
        head.addSpacing(24)
        head.addWidget(self.numbers, 1)

        self.orig_view = _TopView(caption=" ")
        self.xt_view = _TopView(caption=" ")
        self.x0_view = _TopView(caption=" ")
        self.xt_view.set_placeholder("Generate to watch x_T turn into images")
        self.x0_view.set_placeholder("")
        self.xt_view.setToolTip("x_t, the batch as a grid. Click a sample to follow it in the "
                                "trajectory strip below.")
        self.x0_view.setToolTip("What the network thinks the clean images are, seen from x_t: "
                                "x0 = (x_t − √(1−ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t")
        self.orig_head = heading("<b>original</b>")
        self.xt_head = heading("<b>x<sub>t</sub></b> &nbsp;<span style='color:#555'>the samples at "
                               "step t</span>")
        self.x0_head = heading(f"<b>pred x<sub>0</sub></b> &nbsp;<span style='color:#555'>"
                               f"(x<sub>t</sub> &minus; √(1&minus;{ABAR}<sub>t</sub>)&thinsp;"
                               f"ε<sub>θ</sub>) / √{ABAR}<sub>t</sub></span>")
        self.views_box = QWidget()
        views = QGridLayout(self.views_box)
        views.setContentsMargins(0, 0, 0, 0)
        views.setHorizontalSpacing(14)
        views.setVerticalSpacing(2)
        for col, (h, v, stretch) in enumerate(((self.orig_head, self.orig_view, 2),
                                               (self.xt_head, self.xt_view, 3),
                                               (self.x0_head, self.x0_view, 3))):
            views.addWidget(h, 0, col)
            views.addWidget(v, 1, col)
            views.setColumnStretch(col, stretch)
        views.setRowStretch(1, 1)
        self._views_grid = views
        self._show_original(False)
        self.xt_view.installEventFilter(self)   # keep the views as tall as their images need

        ff = QFont(self.font())
        ff.setPointSizeF(ff.pointSizeF() * 1.1)
        self.formula = _Line(2, font=ff, box=True)
        self.formula.setToolTip("The reverse step that leaves x_t, with this step's coefficients")

        self.slider = QSlider(Qt.Horizontal)
        self.slider.setEnabled(False)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Scrub the recorded trajectory (after a run, a stop or a pause)")
        self.slider.valueChanged.connect(self._show_recorded)
        self.slider_label = _Line(1)
        self.slider_label.setText("no run yet")
        self.traj_note = QLabel("")
        self.traj_note.setEnabled(False)
        srow = QHBoxLayout()
        srow.addWidget(QLabel("<b>Trajectory</b>"))
        srow.addWidget(self.slider, 1)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setVisible(False)

        self._film_sample = 0
        self._film_next = None      # the step at which the live strip gets its next frame
        self.film: list[Thumbnail] = []
        film_row = QHBoxLayout()
        film_row.setContentsMargins(0, 0, 0, 0)
        film_row.setSpacing(6)
        for _ in range(FILM_FRAMES):
            fr = Thumbnail(key=-1, outline=C_XT, size_hint=(96, 110), min_size=56)  # key: frame
            fr.shown = None        # (Frame, sample) on show, so that a refill repaints only news
            fr.clicked.connect(self._film_clicked)
            self.film.append(fr)
            film_row.addWidget(fr, 1)
        film_box = QWidget()
        film_box.setLayout(film_row)
        film_box.setMinimumHeight(72)
        film_box.setMaximumHeight(104)
        self.film_head = QLabel("<b>Trajectory of one sample</b> &nbsp;<span style='color:#555'>"
                                "filled in after a run, a stop or a pause</span>")
        self.film_head.setTextFormat(Qt.RichText)

        right = QWidget()
        rlay = QVBoxLayout(right)
        rlay.setContentsMargins(8, 6, 8, 6)
        rlay.addStretch(1)
        rlay.addLayout(head)
        rlay.addWidget(self.views_box, 100)
        rlay.addWidget(self.formula)
        rlay.addSpacing(4)
        rlay.addLayout(srow)
        info = QHBoxLayout()
        info.addWidget(self.slider_label, 1)
        info.addWidget(self.traj_note)
        rlay.addLayout(info)
        rlay.addWidget(self.result_label)
        rlay.addSpacing(6)
        rlay.addWidget(self.film_head)
        rlay.addWidget(film_box)
        rlay.addStretch(1)

        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.splitter)

        self._actions = []
        for text, slot, btn in (("Generate", self.generate, self.generate_btn),
                                ("Stop", self.stop, self.stop_btn),
                                ("Step", self.step, self.step_btn),
                                ("Continue", self.resume, self.continue_btn)):
            a = QAction(f"Reverse: {text}", self)
            a.triggered.connect(slot)
            self._actions.append((a, btn))

    def _show_original(self, on: bool):
        """The original's column (denoise runs only) takes no room when hidden."""
        self.orig_view.setVisible(on)
        self.orig_head.setVisible(on)
        self._views_grid.setColumnStretch(0, 2 if on else 0)

    def eventFilter(self, obj, event):
        if obj is self.xt_view:
            if event.type() == QEvent.Resize:
                self._fit_views()
            elif event.type() == QEvent.MouseButtonPress:
                self._pick_sample(event.position())
        return super().eventFilter(obj, event)

    def _fit_views(self):
        """No taller than the images need at the views' width: the slack goes above and below
        the whole group (header, images, trajectory), which stays together."""
        img = self.xt_view.image()
        extra = self.fontMetrics().height() + 10 + self.xt_head.sizeHint().height() + 2
        if img is None:
            h = self.xt_view.width()
        else:
            h = math.ceil(self.xt_view.zoom_for_width() * img.shape[0])
        self.views_box.setMaximumHeight(max(180, h + extra))

    # ================================================================ parameters
    def params(self) -> dict:
        """The make_sampler arguments the controls describe."""
        key = self.sampler.currentData()
        kind = dict((k, kd) for k, _, kd in SAMPLERS)[key]
        return {"sampler": kind, "steps": None if key == "ddpm" else int(self.steps.value()),
                "eta": float(self.eta.value()) if key == "ddim" else 0.0,
                "batch": int(self.batch.value()), "seed": int(self.seed.value()),
                "clip": self.clip.currentData(),
                "variance": self.variance.currentData() if kind == "ddpm" else None}

    def _random_seed(self):
        import random
        self.seed.setValue(random.randrange(0, 2 ** 31 - 1))

    # ================================================================ run control
    def is_active(self) -> bool:
        return self._state != "idle"

    def generate(self):
        """Sample a batch from pure noise (stopping any active run first)."""
        self._start("generate")

    def denoise(self):
        """Noise the forward panel's image to the chosen t and run the reverse process from there."""
        m = self.ctx.model
        if m is None or self.ctx.image is None:
            return
        t = max(1, min(int(self.denoise_t.value()), m.num_timesteps))
        original = prepare_original(self.ctx.image, m.sample_size, m.in_channels)
        self._start("denoise", original=original, start_t=t)

    def step(self):
        """Idle: start a run and take one step. Paused: one more step. Running: pause."""
        if self._state in ("idle",):
            self._start("generate", steps=1)
        elif self._state == "paused" and self._run is not None:
            self._run.reset_rate()
            self._state = "stepping"
            self._run.job.worker.resume(1)
        elif self._state == "running" and self._run is not None:
            self._state = "pausing"
            self._run.job.worker.pause()
        self._update_buttons()

    def resume(self):
        """Continue a paused run to its end."""
        if self._state in ("paused", "stepping", "pausing") and self._run is not None:
            self._run.reset_rate()
            self._state = "running"
            self.slider.setEnabled(False)
            self._run.job.worker.set_max_rate(self.pacer.start())   # a pause is no frame time
            self._run.job.worker.resume(None)
            self._update_buttons()

    def stop(self):
        """Stop the active run before its next network call; the trajectory stays scrubbable."""
        if self._run is not None and self._state != "idle" and self._state != "stopping":
            self._state = "stopping"
            self._run.job.cancel()
            self._update_buttons()

    def _retire(self):
        """Cancel the active run without waiting; its callbacks are disconnected."""
        run = self._run
        if run is not None and run.job is not None and run.job.is_running():
            run.job.detach()
            run.job.cancel()
            self._retired.append(run.job)
        self._retired = [j for j in self._retired if j.is_running()]

    def _start(self, kind, *, original=None, start_t=None, steps=None):
        model = self.ctx.model
        if model is None:
            return
        self._retire()
        run = ReverseRun(model, self.params(), kind=kind, original=original, start_t=start_t,
                         budget_bytes=self.budget_bytes)
        self._run = run
        self._state = "stepping" if steps else "running"
        self._shown_step = None
        run.job = run_job(run.make_gen, run.convert, observe=run.observe, max_rate=self.pacer.start(),
                          error_text=_error_text, steps=steps,
                          on_progress=lambda p, r=run: self._on_progress(r, p),
                          on_finished=lambda p, r=run: self._on_ended(r, "finished"),
                          on_failed=lambda msg, r=run: self._on_ended(r, "failed", msg),
                          on_cancelled=lambda r=run: self._on_ended(r, "stopped"),
                          on_paused=lambda r=run: self._on_paused(r))
        # the display of the previous run is replaced
        self._show_original(kind == "denoise")
        if kind == "denoise":
            self.orig_view.set_image(original)
            self.orig_head.setText(f"<b>original</b> &nbsp;<span style='color:#555'>"
                                   f"{model.sample_size} px, noised to t = {start_t}</span>")
            self.orig_view.set_caption("x₀, the clean image")
        self._fill_film([])
        self._film_next = 0
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self.slider.setEnabled(False)
        self.slider_label.setText("recording… (scrub after the run, a stop or a pause)")
        self.traj_note.setText("")
        self.result_label.setText("")
        self.result_label.setVisible(False)
        self._set_progress(0, 1)
        self._text_at = -1e9
        self.progress_text.set_lines(1)
        self.progress_text.setText("starting…")
        self._update_buttons()
        self.run_started.emit(run.job.run_id)

    # ================================================================ worker callbacks (GUI thread)
    def _on_progress(self, run, p):
        if run is not self._run or self._state == "stopping":
            return
        f = p["frame"]
        n = p["num_steps"]
        now = time.monotonic()
        text = f.step >= n or now - self._text_at >= 1.0 / TEXT_RATE
        self._show(f, p["xt"], p["x0"], text=text)
        if text:
            self._text_at = now
            self._set_progress(min(f.step + 1, n), n)   # network calls done
            rate = p["rate"]
            if f.step >= n:
                self.progress_text.setText(f"done: {n} steps")
            else:
                self.progress_text.setText(f"step {f.step + 1} / {n}   ·   "
                                           f"{rate:.1f} steps/s   ·   ETA {_fmt_s(p['eta_s'])}"
                                           if rate > 0 else f"step {f.step + 1} / {n}")
        self._shown_step = f.step
        # the strip catches up with the run at the numbers' rate, not with every picture
        if text and self._film_next is not None and f.step >= self._film_next:
            self._fill_film(run.traj.snapshot(), live=True)
        self.frame_shown.emit(f.step)
        run.job.worker.set_max_rate(self.pacer.shown())

    def _set_progress(self, value: int, maximum: int):
        """Set the bar without painting it at once: ``QProgressBar.setValue`` repaints
        synchronously whenever the bar moves by a pixel, a second paint of the window per frame;
        with updates off it only schedules one, painted with the rest of the frame."""
        bar = self.progress
        bar.setUpdatesEnabled(False)
        bar.setRange(0, maximum)
        bar.setValue(value)
        bar.setUpdatesEnabled(True)

    def _on_paused(self, run):
        if run is not self._run or self._state in ("stopping", "idle"):
            return
        if not run.job.worker.is_paused:   # Continue was pressed before this signal arrived
            return
        self._state = "paused"
        run.flush()                      # the worker waits: record what it observed last
        n = run.traj.n_total - 1
        step = self._shown_step
        if step is not None:
            self._set_progress(min(step + 1, n), n)
        self.progress_text.setText(f"paused after step {step + 1} / {n}   ·   Step or Continue"
                                   if step is not None else "paused")
        self._enable_scrub(run)
        self._update_buttons()

    def _on_ended(self, run, how: str, msg: str = ""):
        if run is not self._run:
            return
        self._state = "idle"
        run.flush()                      # the worker has ended: record its last steps
        frames = self._enable_scrub(run)
        if how == "failed":
            self._last_message = msg
            self.progress_text.set_lines(5)
            self.progress_text.setText(f"<span style='color:#c0392b'>Stopped: {msg}</span>")
            self.ctx.error.emit("Sampling stopped", msg)
        elif how == "stopped":
            k = frames[-1].step if frames else 0
            if frames:
                self._set_progress(k + 1, run.traj.n_total - 1)
            self.progress_text.setText(f"stopped after step {k + 1} / {run.traj.n_total - 1}"
                                       if frames else "stopped")
        if how == "finished" and run.kind == "denoise" and frames and frames[-1].t == 0:
            v = psnr(frames[-1].xt, run.original)
            self.result_label.setText(
                f"<b>How much survives:</b> denoised from t = {run.start_t} of {run.T}, the "
                f"results are {v.mean():.1f} dB PSNR from the original on average "
                f"(best {v.max():.1f}, worst {v.min():.1f}; higher is closer).")
            self.result_label.setVisible(True)
        self._update_buttons()
        self.run_ended.emit(run.job.run_id, how)

    def _enable_scrub(self, run) -> list[Frame]:
        frames = run.traj.snapshot()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(frames) - 1))
        self.slider.setValue(max(0, len(frames) - 1))
        self.slider.blockSignals(False)
        self.slider.setEnabled(len(frames) > 1)
        self.traj_note.setText(run.traj.describe())
        self._fill_film(frames)
        if frames:
            self._show_recorded(len(frames) - 1)
        return frames

    # ================================================================ display
    def _show(self, f: Frame, xt, x0, text: bool = True):
        """Display one frame: the grids; with ``text``, also t and the step's numbers (captions,
        β, σ, ᾱ) and the update formula."""
        old = self.xt_view.image()
        self.xt_view.set_image(xt)
        if old is None or old.shape[:2] != xt.shape[:2]:
            self._fit_views()
        self.x0_view.set_image(x0)
        if not text:
            return
        run = self._run
        T = run.T if run is not None else 0
        self.t_label.setText(f"t = {f.t}" + (f" / {T}" if T else ""))
        m_t, s_t, m_0, s_0 = f.stats
        self.xt_view.set_caption(f"mean {m_t:+.3f}   std {s_t:.3f}")
        self.x0_view.set_caption(f"mean {m_0:+.3f}   std {s_0:.3f}")
        if f.t > 0:
            sp = "&nbsp;" * 4
            self.numbers.setText(f"β<sub>t</sub> = {f.beta:.5f}{sp}σ<sub>t</sub> = {f.sigma:.4f}{sp}"
                                 f"{ABAR}<sub>t</sub> = {f.alpha_bar:.4f}")
        else:
            self.numbers.setText("x<sub>0</sub>: the final sample")
        kind = run.params.get("sampler", "ddpm") if run is not None else "ddpm"
        self.formula.setText(update_formula(f, kind, run._abar if run is not None else None))

    def _show_recorded(self, k: int):
        run = self._run
        if run is None:
            return
        frames = run.traj.snapshot()
        if not 0 <= k < len(frames):
            return
        f = frames[k]
        self._show(f, tile(f.xt), tile(f.x0))
        self.slider_label.setText(f"frame {k + 1} of {len(frames)}  ·  step {f.step}  ·  t = {f.t}")
        self._mark_film(k)

    def _mark_film(self, k: int):
        """Outline the strip's frame at or just before recorded frame ``k``."""
        ks = [fr.key for fr in self.film if 0 <= fr.key <= k]
        near = max(ks) if ks else -1
        for fr in self.film:
            fr.set_current(fr.key == near and near >= 0)

    # ---- filmstrip: one sample's x_t at evenly spaced recorded frames
    def _fill_film(self, frames: list[Frame], live: bool = False):
        """The strip: sample ``_film_sample``'s x_t at :data:`FILM_FRAMES` evenly spaced steps of
        the run (the recorded frame at or just before each). ``live``: during a run, only the
        steps already passed are filled in."""
        self._film_next = None
        run = self._run
        if not frames or run is None:
            for fr in self.film:
                fr.key = -1
                fr.shown = None
                fr.set_image(None)
                fr.set_caption("")
            return
        b = min(self._film_sample, frames[0].xt.shape[0] - 1)
        steps = [f.step for f in frames]
        # live: the whole run's span (frames appear as it gets there); afterwards: what was
        # recorded (a stopped or failed run ends early)
        n_steps = max(run.traj.n_total - 1, steps[-1]) if live else steps[-1]
        first = steps[0]
        targets = np.unique(np.round(np.linspace(first, n_steps, len(self.film))).astype(int))
        targets = list(targets) + [None] * (len(self.film) - len(targets))
        for fr, target in zip(self.film, targets):
            k = -1 if target is None else bisect.bisect_right(steps, target) - 1
            if k < 0 or (live and steps[-1] < target):
                if live and target is not None and self._film_next is None:
                    self._film_next = target      # fill again once the run gets there
                fr.key = -1
                if fr.shown is not None:
                    fr.shown = None
                    fr.set_image(None)
                    fr.set_caption("")
                continue
            fr.key = k
            if fr.shown != (frames[k], b):   # a live strip gains one frame at a time: repaint only it
                fr.shown = (frames[k], b)
                fr.set_image(frames[k].xt[b])
                fr.set_caption(f"t = {frames[k].t}")
        self._mark_film(self.slider.value() if not live else -1)
        self.film_head.setText(f"<b>Trajectory of sample {b + 1}</b> &nbsp;<span style='color:#555'>"
                               f"x<sub>t</sub> at evenly spaced steps; click a frame to jump "
                               f"there, click a sample in the x<sub>t</sub> grid to follow it</span>")

    def _film_clicked(self, k: int):
        if k >= 0 and self.slider.isEnabled():
            self.slider.setValue(k)

    def _pick_sample(self, pos):
        """A click on the x_t grid chooses the sample the filmstrip follows."""
        run = self._run
        img = self.xt_view.image()
        frames = run.traj.snapshot() if run is not None else []
        if img is None or not frames:
            return
        b, h, w = frames[0].xt.shape[:3]
        r = self.xt_view.image_rect()
        if not r.contains(pos):
            return
        x = (pos.x() - r.left()) / r.width() * img.shape[1]
        y = (pos.y() - r.top()) / r.height() * img.shape[0]
        ncols = max(1, min(math.ceil(math.sqrt(b)), b))
        k = int(y // (h + 1)) * ncols + int(x // (w + 1))
        if 0 <= k < b:
            self._film_sample = k
            if self.slider.isEnabled():
                self._fill_film(frames)

    def recorded_frames(self) -> list[Frame]:
        """The frames recorded by the current (or last) run."""
        return self._run.traj.snapshot() if self._run is not None else []

    def final_images(self) -> np.ndarray | None:
        """uint8 [B, H, W, C] of the last finished run (the t = 0 frame), else None."""
        frames = self.recorded_frames()
        return frames[-1].xt if frames and frames[-1].t == 0 else None

    # ================================================================ context
    def _on_model_changed(self):
        m = self.ctx.model
        if self._run is not None and self._state != "idle" and self._run.model is not m:
            self.stop()
        if m is not None:
            T = m.num_timesteps
            self.steps.setMaximum(T)
            self.denoise_t.setMaximum(T)
            self._on_forward_t(self.ctx.forward_t)
            self.xt_view.set_placeholder(f"Generate to watch x_{T} turn into "
                                         f"{m.sample_size} px images")
        else:
            self.xt_view.set_placeholder("No model loaded: choose one on the left")
        self._update_buttons()

    def _on_forward_t(self, t: int):
        m = self.ctx.model
        T = m.num_timesteps if m is not None else self.denoise_t.maximum()
        if t and t > 0:
            self.denoise_t.setValue(max(1, min(int(t), T)))
        self._update_buttons()

    def _update_buttons(self, *_):
        has_model = self.ctx.model is not None
        s = self._state
        key = self.sampler.currentData()
        self.steps.setEnabled(key != "ddpm")
        self.eta.setEnabled(key == "ddim")
        self.variance.setEnabled(key != "ddim")
        self.generate_btn.setEnabled(has_model)
        self.stop_btn.setEnabled(s not in ("idle", "stopping"))
        self.step_btn.setEnabled(has_model and s in ("idle", "paused", "running"))
        self.step_btn.setText("Pause" if s == "running" else "Step")
        self.continue_btn.setEnabled(s in ("paused", "stepping", "pausing"))
        img = self.ctx.image is not None
        self.denoise_btn.setEnabled(has_model and img)
        if not img:
            self.denoise_note.setText("Open an image in the forward panel first.")
        elif has_model:
            m = self.ctx.model
            ft = self.ctx.forward_t
            extra = (f" The forward panel is at t = {ft}." if ft else "")
            self.denoise_note.setText(f"Centre-cropped to {m.sample_size} px"
                                      f"{', grey' if m.in_channels == 1 else ''}; noised with the "
                                      f"model's schedule (T = {m.num_timesteps}).{extra}")
        else:
            self.denoise_note.setText("")
        for a, btn in self._actions:
            a.setEnabled(btn.isEnabled())

    # ================================================================ panel contract
    def actions(self) -> list[QAction]:
        return [a for a, _ in self._actions]

    def export_sources(self):
        """Final samples and the recorded trajectory (x_t, predicted x₀, or both side by side)."""
        frames = self.recorded_frames()
        if not frames:
            return []
        out = []
        if frames[-1].t == 0:
            out.append(("Reverse: final samples (grid)", lambda: [tile(frames[-1].xt)]))
            run = self._run
            if run is not None and run.kind == "denoise" and run.original is not None:
                def orig_and_result(f=frames[-1], o=run.original):
                    return ([o, tile(f.xt)], ["original", f"denoised from t = {run.start_t}"])
                out.append(("Reverse: original and denoised", orig_and_result))

        def traj(which):
            from ...export import reverse_frames
            steps = [{"t": f.t, "x_t": f.xt, "x0_pred": f.x0} for f in frames]
            got = list(reverse_frames(steps, which))
            return [g[1] for g in got], [g[2] for g in got]

        out.append(("Reverse: trajectory of x_t", lambda: traj("xt")))
        out.append(("Reverse: trajectory of predicted x₀", lambda: traj("x0")))
        out.append(("Reverse: trajectory, x_t and predicted x₀ side by side", lambda: traj("both")))
        return out

    def save_settings(self, settings: QSettings):
        settings.setValue("sampler", self.sampler.currentData())
        settings.setValue("steps", int(self.steps.value()))
        settings.setValue("eta", float(self.eta.value()))
        settings.setValue("variance", self.variance.currentData() or "")
        clip = self.clip.currentData()
        settings.setValue("clip", "" if clip is None else ("on" if clip else "off"))
        settings.setValue("seed", int(self.seed.value()))
        settings.setValue("batch", int(self.batch.value()))
        settings.setValue("splitter", self.splitter.saveState())

    def restore_settings(self, settings: QSettings):
        def get(key, typ, default):
            try:
                v = settings.value(key, default)
                return default if v is None or v == "" else typ(v)
            except (TypeError, ValueError):
                return default

        k = self.sampler.findData(get("sampler", str, "ddpm"))
        self.sampler.setCurrentIndex(max(0, k))
        self.steps.setValue(get("steps", int, 50))
        self.eta.setValue(get("eta", float, 0.0))
        _select_data(self.variance, get("variance", str, None))
        _select_data(self.clip, {"on": True, "off": False}.get(get("clip", str, "")))
        self.seed.setValue(get("seed", int, 0))
        self.batch.setValue(get("batch", int, 16))
        state = settings.value("splitter")
        if state is not None:
            try:
                self.splitter.restoreState(state)
            except TypeError:
                pass
        self._update_buttons()

    def shutdown(self):
        """Stop and join every run of the panel (idempotent, never raises)."""
        try:
            jobs = list(self._retired)
            if self._run is not None and self._run.job is not None:
                self._run.job.detach()
                jobs.append(self._run.job)
            for j in jobs:
                j.detach()
                j.stop(timeout_ms=None)
            self._retired.clear()
            self._state = "idle"
            self.picker.shutdown()
        except Exception:  # noqa: BLE001 - shutdown must not raise
            import traceback
            traceback.print_exc()
