"""The forward panel: scrub the noising q(x_t | x_0) of an image and see the numbers behind it.

Timesteps are the **paper's** ``t``: ``t = 0`` is the clean image, ``t = T`` (nearly) pure
noise; the schedule's arrays are indexed ``i = t - 1``.

Noise conventions (so that a test or the CLI can reproduce exactly what is shown):

* closed form: one draw ``eps = torch.randn((C, H, W), generator=torch.Generator().manual_seed(seed))``
  per image / seed / working size; ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``, i.e.
  ``GaussianDiffusion.q_sample(x0, t - 1, eps)``. Scrubbing changes only ``t``.
* step by step: ``x_t = q_step(x_{t-1}, t - 1, z_t)`` chained from ``x_0``, with its own noise
  ``z_1, z_2, ...`` drawn in order from ``torch.Generator().manual_seed(chain_seed(seed))``.

Speed: ``x_0`` and ``eps`` are kept as float32 numpy ``[H, W, C]``; a new ``t`` costs two
multiplies, an add and :func:`~diffusion_gui.core.images.to_uint8_inplace` (the uint8
conversion of ``to_uint8``, done in place): about 1 ms at 512 x 512 RGB. The x_t view is
repainted synchronously; the plots' cursors, the histogram and the filmstrip highlight follow
at most every ``PLOT_INTERVAL_MS`` (50 ms) while the slider moves, and the plots keep pixmap
caches (``plots.cache_items``) so that a moving cursor is a blit.

Layout: the closed-form x_t and the step-by-step x_t side by side (x_0 is the filmstrip's first
frame), the t slider and the formula read-out under them, the filmstrip below; on the right the
schedule plots (beta_t, abar_t, SNR) with overlays and the pixel histogram.

The chain (1000 sequential ``q_step`` calls, ~10 s at 512 px on a laptop core) runs **once per
image / seed / schedule / T / size in a background job**, with a progress bar, and is cached:
every ``x_t`` is kept as uint8 when the frames fit in ``CHAIN_BUDGET_BYTES`` (all of them up to
256 x 256 RGB at T = 1000), otherwise every ``stride``-th one (the view then shows the nearest
kept step at or below ``t`` and says so). The chain's mean, std and histogram are recorded for
*every* t from the full float tensor. Frames appear as they are computed, so scrubbing never
waits for the job.
"""
from __future__ import annotations

import math
import sys
import threading
from typing import Callable

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from ..image_view import ImageView, Thumbnail
from ..style import heading
from ..workers import Job, call_in_background, run_job

#: The schedule names of :data:`diffusion_gui.core.schedule.SCHEDULE_NAMES`, repeated here so that
#: building the panel does not import torch (checked against core once it is loaded).
SCHEDULES = ("linear", "scaled_linear", "quadratic", "cosine", "sigmoid")
SCHEDULE_COLORS = {"linear": "#0072B2", "scaled_linear": "#E69F00", "quadratic": "#009E73",
                   "cosine": "#CC79A7", "sigmoid": "#56B4E9"}
SIZES = (64, 128, 256, 512)
DEFAULT_SIZE = 256
DEFAULT_T = 1000
MAX_T = 2000
FILM_FRAMES = 8
HIST_BINS = 97
HIST_RANGE = 4.0
HIST_SAMPLE = 65536
HIST_Y_MAX = 1.0
CHAIN_BUDGET_BYTES = 200 * 2 ** 20
PLOT_INTERVAL_MS = 50
PLAY_INTERVAL_MS = 33
PLAY_SECONDS = 8.0
CURSOR_COLOR = "#D55E00"

# ----------------------------------------------------------------------------- backend (torch)
_backend_ready = threading.Event()
_backend_waiters: list[Callable[[], None]] = []
_backend_job: Job | None = None


def _import_backend():
    import torch  # noqa: F401

    from ...core import (  # noqa: F401
        GaussianDiffusion,
        NoiseSchedule,
        images,  # noqa: F401
    )
    from ...export import timeline  # noqa: F401
    return True


def backend_ready() -> bool:
    """True once torch and the core maths are imported (see :func:`ensure_backend`)."""
    return _backend_ready.is_set()


def ensure_backend(callback: Callable[[], None] | None = None) -> None:
    """Import torch and ``diffusion_gui.core`` off the GUI thread (once), then call ``callback``
    in the GUI thread. Right away if they are already imported."""
    global _backend_job
    if _backend_ready.is_set():
        if callback:
            callback()
        return
    if callback:
        _backend_waiters.append(callback)
    if _backend_job is not None:
        return

    def done(_):
        global _backend_job
        _backend_ready.set()
        _backend_job = None
        waiters = list(_backend_waiters)
        _backend_waiters.clear()
        for cb in waiters:
            try:
                cb()
            except RuntimeError:         # its widget was deleted meanwhile
                pass

    def failed(msg):
        global _backend_job
        _backend_job = None
        print(f"diffusion-gui: cannot import torch: {msg}", file=sys.stderr)

    _backend_job = call_in_background(_import_backend, on_done=done, on_failed=failed,
                                      abandonable=True)   # an import: not awaited at quit


def stop_backend_job():
    """Join the import thread if it is still running (called on shutdown)."""
    global _backend_job
    if _backend_job is not None:
        _backend_job.stop(60000)
        _backend_job = None


# ----------------------------------------------------------------------------- maths, Qt-free
def chain_seed(seed: int) -> int:
    """The seed of the step-by-step chain's own noise, derived from the panel's seed."""
    return (int(seed) * 1_000_003 + 7919) % (2 ** 63)


def draw_noise(shape_chw, seed: int) -> np.ndarray:
    """``eps`` ~ N(0, I) float32 ``[C, H, W]``: ``torch.randn`` on a CPU generator seeded ``seed``."""
    import torch
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(tuple(shape_chw), generator=g, dtype=torch.float32).numpy()


def working_image(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` uint8 ``[H, W, C]`` shrunk (Lanczos, never enlarged) so the long side is at
    most ``size`` px, with :func:`diffusion_gui.core.images.resize_image`. uint8 ``[h, w, C]``."""
    from PIL import Image

    from ...core.images import resize_image
    a = np.asarray(image, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if max(a.shape[:2]) <= size:
        return a
    im = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
    out = np.asarray(resize_image(im, max_side=int(size)), dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out


def hist_edges() -> np.ndarray:
    return np.linspace(-HIST_RANGE, HIST_RANGE, HIST_BINS + 1)


def hist_density(values: np.ndarray) -> np.ndarray:
    """Density histogram of ``values`` over :func:`hist_edges` (out-of-range values still count
    in the normalisation, so the area shown is the probability inside the range)."""
    k = np.floor((values + HIST_RANGE) * (HIST_BINS / (2 * HIST_RANGE)))
    k = k[(k >= 0) & (k < HIST_BINS)].astype(np.intp)
    counts = np.bincount(k, minlength=HIST_BINS)
    return counts / (max(values.size, 1) * (2 * HIST_RANGE / HIST_BINS))


class ForwardMath:
    """``x_0`` and one ``eps`` for a working image and seed, and everything cheap per ``t``.

    ``image``: uint8 ``[H, W, C]``. ``schedule``: a :class:`~diffusion_gui.core.NoiseSchedule`.
    """

    def __init__(self, image: np.ndarray, seed: int, schedule):
        from ...core.images import to_float_array
        self.image = np.asarray(image, dtype=np.uint8)
        self.x0_chw = to_float_array(self.image)                  # float32 [C, H, W] in [-1, 1]
        self.x0 = np.ascontiguousarray(self.x0_chw.transpose(1, 2, 0))
        n = self.x0_chw.size
        rng = np.random.default_rng(12345)
        self.sample_idx = (np.arange(n) if n <= HIST_SAMPLE
                           else np.sort(rng.choice(n, HIST_SAMPLE, replace=False)))
        self._buf = np.empty_like(self.x0)
        self._tmp = np.empty_like(self.x0)
        self.set_seed(seed)
        self.set_schedule(schedule)

    @property
    def shape_chw(self):
        return self.x0_chw.shape

    def set_seed(self, seed: int):
        self.seed = int(seed)
        eps_chw = draw_noise(self.x0_chw.shape, self.seed)
        self.eps = np.ascontiguousarray(eps_chw.transpose(1, 2, 0))
        self.x0_s = self.x0_chw.reshape(-1)[self.sample_idx]
        self.eps_s = eps_chw.reshape(-1)[self.sample_idx]
        x0, e = self.x0.astype(np.float64), self.eps.astype(np.float64)
        # moments for the exact mean / std of x_t = a x0 + b eps, for any t, in O(1)
        self._m = (x0.mean(), e.mean(), (x0 * x0).mean(), (e * e).mean(), (x0 * e).mean())

    def set_schedule(self, schedule):
        self.schedule = schedule
        self.T = schedule.timesteps
        one, zero = np.ones(1), np.zeros(1)
        a64 = np.concatenate([one, schedule.sqrt_alpha_bars.numpy()])          # index = paper t
        b64 = np.concatenate([zero, schedule.sqrt_one_minus_alpha_bars.numpy()])
        self.a64, self.b64 = a64, b64
        self.a32, self.b32 = a64.astype(np.float32), b64.astype(np.float32)

    def frame(self, t: int) -> np.ndarray:
        """uint8 ``[H, W, C]`` of ``x_t`` (bit-identical to ``to_uint8(q_sample(x0, t - 1, eps))``)."""
        from ...core.images import to_uint8_inplace  # loaded by __init__ already
        t = int(t)
        buf = self._buf
        if t == 0:
            np.copyto(buf, self.x0)
        else:
            np.multiply(self.x0, self.a32[t], out=buf)
            np.multiply(self.eps, self.b32[t], out=self._tmp)
            np.add(buf, self._tmp, out=buf)
        return to_uint8_inplace(buf)

    def hist(self, t: int) -> np.ndarray:
        v = self.a32[t] * self.x0_s + self.b32[t] * self.eps_s
        return hist_density(v)

    def stats(self, t: int) -> tuple[float, float]:
        """Exact mean and std over all pixels of the float ``x_t`` (before clipping)."""
        a, b = self.a64[t], self.b64[t]
        m0, me, m00, mee, m0e = self._m
        mean = a * m0 + b * me
        second = a * a * m00 + 2 * a * b * m0e + b * b * mee
        return float(mean), float(math.sqrt(max(second - mean * mean, 0.0)))

    def theory(self, t: int) -> tuple[float, float]:
        """Mean and std of x_t under q(x_t | x_0) averaged over the image: eps independent of x_0."""
        a, b = self.a64[t], self.b64[t]
        m0, _, m00, _, _ = self._m
        var0 = max(m00 - m0 * m0, 0.0)
        return float(a * m0), float(math.sqrt(a * a * var0 + b * b))


class ChainCache:
    """The step-by-step chain x_0 -> x_1 -> ... -> x_T of one image / seed / schedule.

    Filled by :func:`chain_generator` in a worker thread; the GUI thread reads entries
    ``t <= done`` only. ``frames[k]`` is ``x_{ts[k]}`` as uint8 ``[H, W, C]``.
    """

    def __init__(self, key, shape_chw, T: int, budget: int = CHAIN_BUDGET_BYTES):
        C, H, W = shape_chw
        self.key, self.T = key, int(T)
        per = C * H * W
        self.stride = max(1, math.ceil((self.T + 1) * per / budget))
        ts = list(range(0, self.T + 1, self.stride))
        if ts[-1] != self.T:
            ts.append(self.T)
        self.ts = ts
        self.frames = np.empty((len(ts), H, W, C), dtype=np.uint8)
        self.mean = np.full(self.T + 1, np.nan)
        self.std = np.full(self.T + 1, np.nan)
        self.hist = np.zeros((self.T + 1, HIST_BINS))
        self.done = -1                     # highest t recorded

    def slot(self, t: int) -> int:
        """Index into ``frames`` of the kept step at or below ``t``."""
        return len(self.ts) - 1 if t >= self.T else t // self.stride

    def frame_for(self, t: int):
        """``(t_shown, uint8 frame)`` for the kept step nearest at or below ``min(t, done)``,
        or None before anything is computed."""
        t = min(int(t), self.done)
        if t < 0:
            return None
        k = self.slot(t)
        return self.ts[k], self.frames[k]

    def nbytes(self) -> int:
        return self.frames.nbytes


def chain_generator(cache: ChainCache, x0_chw: np.ndarray, schedule, seed: int, sample_idx):
    """Run the chain, recording into ``cache``; yields each ``t`` done. Runs in a worker."""
    import torch

    from ...core import GaussianDiffusion
    from ...core.images import to_uint8

    d = GaussianDiffusion(schedule)
    g = torch.Generator().manual_seed(chain_seed(seed))
    x = torch.from_numpy(np.ascontiguousarray(x0_chw))[None].clone()
    idx = torch.from_numpy(np.asarray(sample_idx, dtype=np.int64))
    keep = set(cache.ts)

    def record(t, x):
        flat = x.reshape(-1)
        cache.mean[t] = float(flat.double().mean())
        cache.std[t] = float(flat.double().std(unbiased=False))
        cache.hist[t] = hist_density(flat[idx].numpy())
        if t in keep:
            cache.frames[cache.slot(t)] = to_uint8(x[0])
        cache.done = t

    with torch.no_grad():
        record(0, x)
        yield 0
        for i in range(cache.T):
            noise = torch.randn(x.shape, generator=g, dtype=x.dtype)
            x = d.q_step(x, i, noise)
            record(i + 1, x)
            yield i + 1


# ----------------------------------------------------------------------------- widgets
def _small(text: str = "") -> QLabel:
    lab = QLabel(text)
    lab.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
    lab.setTextFormat(Qt.RichText)
    lab.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    lab.setFixedHeight(lab.fontMetrics().height() + 4)   # new text never re-lays out the panel
    return lab


ABAR = '<span style="text-decoration: overline">&alpha;</span>'
EPS = "&epsilon;"


def _num(v: float, digits: int = 4) -> str:
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return "&infin;" if v > 0 else "&minus;&infin;"
    if abs(v) < 10 ** -(digits - 1) or abs(v) >= 1e5:
        m, e = f"{v:.2e}".split("e")
        return f"{m}&middot;10<sup>{int(e)}</sup>"
    return f"{v:.{digits}f}".replace("-", "&minus;")


class ForwardPanel(QWidget):
    """Forward process explorer (see the module docstring)."""

    title = "Forward"

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.setFocusPolicy(Qt.StrongFocus)
        self._t = 0
        self._math: ForwardMath | None = None
        self._work_image: np.ndarray | None = None
        self._schedules: dict = {}
        self._chain: ChainCache | None = None
        self._chain_job: Job | None = None
        self._film_ts: list[int] = []
        self._closed = False

        self._plot_timer = QTimer(self, singleShot=True, interval=PLOT_INTERVAL_MS)
        self._plot_timer.timeout.connect(self._refresh_slow)
        self._chain_timer = QTimer(self, singleShot=True, interval=250)
        self._chain_timer.timeout.connect(self._start_chain)
        self._play_timer = QTimer(self, interval=PLAY_INTERVAL_MS)
        self._play_timer.timeout.connect(self._play_tick)

        self._build()
        self._make_actions()
        self._set_controls_enabled(False)

        ctx.image_changed.connect(self._on_image_changed)
        ctx.forward_t_changed.connect(self._on_ctx_t)
        self._backend_requested = False
        if ctx.image is not None:
            self.preview(ctx.image)

    def showEvent(self, ev):
        super().showEvent(ev)
        if not self._splitter_set:          # first show without a saved layout: 62% / 38%
            self._splitter_set = True
            w = max(self.splitter.width(), 900)
            self.splitter.setSizes([int(w * 0.62), w - int(w * 0.62)])
        if not self._backend_requested:
            # torch is imported in the background once the window has had time to paint
            self._backend_requested = True
            QTimer.singleShot(0 if backend_ready() else 250, self._request_backend)

    def _request_backend(self):
        if not self._closed:
            ensure_backend(self._on_backend)

    # ================================================================== layout
    def _build(self):
        from .. import plots

        # ---- controls bar
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

        bar = QHBoxLayout()
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

        # ---- the two x_t images (x_0 is the filmstrip's first frame)
        # crisp integer zoom for small images at large zoom factors (a 16 px digit stays sharp
        # squares), smooth fractional scaling for photos that an integer zoom would leave small
        self.view_xt = ImageView(min_size=160, smooth="auto", fit_height=True)
        self.view_chain = ImageView(min_size=160, smooth="auto", fit_height=True)
        self.view_x0 = None  # set below: the filmstrip's t = 0 frame
        self.view_xt.set_placeholder("Open an image (Ctrl+O) or drop one here")
        self.head_xt = heading(f"<b>x<sub>t</sub></b> in closed form &nbsp;<span style='color:#555'>"
                               f"&radic;{ABAR}<sub>t</sub>&thinsp;x<sub>0</sub> + "
                               f"&radic;(1&minus;{ABAR}<sub>t</sub>)&thinsp;{EPS}</span>")
        self.head_chain = heading("<b>x<sub>t</sub></b> step by step &nbsp;<span style='color:#555'>"
                                  "t draws of q(x<sub>s</sub> | x<sub>s&minus;1</sub>)</span>")
        self.stats_xt = _small()
        self.stats_chain = _small()
        self.chain_progress = QProgressBar()
        self.chain_progress.setTextVisible(True)
        self.chain_progress.setFormat("chaining q_step: %v / %m")
        self.chain_progress.setFixedHeight(16)
        sp = self.chain_progress.sizePolicy()
        sp.setRetainSizeWhenHidden(True)          # both image columns keep the same height
        self.chain_progress.setSizePolicy(sp)
        self.chain_progress.setVisible(False)

        images = QHBoxLayout()
        images.setSpacing(14)
        for h, v, st in ((self.head_xt, self.view_xt, self.stats_xt),
                         (self.head_chain, self.view_chain, self.stats_chain)):
            h.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
            col = QVBoxLayout()
            col.setSpacing(2)
            col.addStretch(1)
            col.addWidget(h)
            col.addWidget(v, 40)
            col.addWidget(st)
            if v is self.view_chain:
                col.addWidget(self.chain_progress)
            else:
                col.addSpacing(16)
            col.addStretch(1)
            images.addLayout(col, 1)

        # ---- timestep row
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
        trow = QHBoxLayout()
        trow.addWidget(self.play_button)
        trow.addWidget(self.slider, 1)
        trow.addWidget(self.t_spin)
        trow.addWidget(self.T_label)

        # ---- formula read-out
        self.formula = QLabel()
        self.formula.setTextFormat(Qt.RichText)
        self.formula.setAlignment(Qt.AlignLeft | Qt.AlignVCenter)
        self.formula.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        f = self.formula.font()
        f.setPointSizeF(f.pointSizeF() * 1.35)
        self.formula.setFont(f)
        # fixed heights: a new text must never re-layout the window (that repaints all of it)
        self.formula.setFixedHeight(int(self.formula.fontMetrics().height() * 3.4))
        self.formula.setStyleSheet("QLabel { background: #f7f7f4; border: 1px solid #ddd; "
                                   "border-radius: 6px; padding: 6px 12px; }")

        # ---- filmstrip
        self.film: list[Thumbnail] = []
        film_row = QHBoxLayout()
        film_row.setSpacing(6)
        for _ in range(FILM_FRAMES):
            fr = Thumbnail(key=0, outline=CURSOR_COLOR, size_hint=(110, 120), min_size=64,
                           smooth="auto", fill=True)          # fr.key: its t
            fr.clicked.connect(self.set_t)
            self.film.append(fr)
            film_row.addWidget(fr, 1)
        film_box = QFrame()
        film_box.setLayout(film_row)
        film_row.setContentsMargins(0, 0, 0, 0)
        film_box.setMinimumHeight(96)
        film_box.setMaximumHeight(190)
        self.view_x0 = self.film[0]

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addLayout(images, 1)
        lv.addLayout(trow)
        lv.addWidget(self.formula)
        film_head = QLabel("<b>Filmstrip</b> &nbsp;<span style='color:#555'>x<sub>0</sub> and x<sub>t</sub> "
                           "at evenly spaced t; click a frame to jump there</span>")
        film_head.setStyleSheet("color: #444;")
        lv.addWidget(film_head)
        lv.addWidget(film_box)

        # ---- plots
        self.overlay_checks: dict[str, QCheckBox] = {}
        orow = QGridLayout()
        orow.setHorizontalSpacing(10)
        orow.setVerticalSpacing(0)
        orow.addWidget(QLabel("Compare:"), 0, 0)
        for k, name in enumerate(SCHEDULES):
            cb = QCheckBox(name)
            cb.setStyleSheet(f"QCheckBox {{ color: {SCHEDULE_COLORS[name]}; font-weight: 600; }}")
            cb.setToolTip(f"Overlay the {name} schedule (dashed)")
            cb.toggled.connect(self._update_overlays)
            self.overlay_checks[name] = cb
            orow.addWidget(cb, k // 3, 1 + k % 3)
        orow.setColumnStretch(4, 1)

        self.plots = {
            "beta": plots.make_plot("", "t", "β<sub>t</sub> (log)", log_y=True),
            "abar": plots.make_plot("", "t", f"{ABAR}<sub>t</sub>"),
            "snr": plots.make_plot("", "t", "SNR (dB)"),
        }
        self.plots["beta"].getPlotItem().setLabel("left", "β<sub>t</sub> (log)")
        self.plots["snr"].getPlotItem().setLabel("left", "SNR<sub>t</sub> (dB)")
        self.plots["abar"].setYRange(0, 1.02, padding=0)
        for p in self.plots.values():
            p.getPlotItem().setLabel("bottom", "")
        self.plots["snr"].getPlotItem().setLabel("bottom", "t", color="#222", **{"font-size": "12pt"})
        self.plots["abar"].setXLink(self.plots["snr"])
        self.plots["beta"].setXLink(self.plots["snr"])
        self.cursors = {}
        for k, p in self.plots.items():
            c = plots.TCursor(p, 0, DEFAULT_T, color=CURSOR_COLOR)
            c.t_picked.connect(self.set_t)
            self.cursors[k] = c
        self.curves: dict[tuple[str, str], object] = {}
        for name in SCHEDULES:
            for k, p in self.plots.items():
                item = p.plot([], [], pen=plots.pen(SCHEDULE_COLORS[name], 2.5), connect="finite")
                item.setVisible(False)
                self.curves[(k, name)] = item

        self.hist_plot = plots.make_plot("", "pixel value of x<sub>t</sub>", "density")
        hp = self.hist_plot
        hp.setXRange(-HIST_RANGE, HIST_RANGE, padding=0)
        hp.setYRange(0, HIST_Y_MAX, padding=0)
        self._hist_ymax = HIST_Y_MAX
        e = hist_edges()
        self.hist_xt = hp.plot(e, np.zeros(HIST_BINS), stepMode="center", fillLevel=0,
                               brush=(0, 114, 178, 90), pen=plots.pen("#0072B2", 1.5),
                               name="closed form")
        self.hist_chain = hp.plot(e, np.zeros(HIST_BINS), stepMode="center",
                                  pen=plots.pen("#E69F00", 2.0), name="step by step")
        xs = np.linspace(-HIST_RANGE, HIST_RANGE, 400)
        hp.plot(xs, np.exp(-0.5 * xs ** 2) / math.sqrt(2 * math.pi),
                pen=plots.pen("#222222", 2.0, dashed=True), name="N(0, 1)")

        for p in (*self.plots.values(), hp):
            plots.cache_items(p)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.setSpacing(4)
        sched_head = QLabel("<b>Noise schedule</b> &nbsp;<span style='color:#666'>"
                            "click or drag a plot to set t</span>")
        rv.addWidget(sched_head)
        rv.addLayout(orow)
        rv.addWidget(self.plots["beta"], 2)
        rv.addWidget(self.plots["abar"], 2)
        rv.addWidget(self.plots["snr"], 2)
        hist_head = QLabel("<b>Pixel histogram of x<sub>t</sub></b> &nbsp; "
                           "<span style='color:#0072B2'>&#9632; closed form</span> &nbsp; "
                           "<span style='color:#E69F00'><b>&mdash;</b> step by step</span> &nbsp; "
                           "<span style='color:#222'><b>- -</b> N(0, 1) density</span>")
        hist_head.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        rv.addWidget(hist_head)
        rv.addWidget(hp, 3)

        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        left.setMinimumWidth(520)
        right.setMinimumWidth(380)
        self._splitter_set = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.addLayout(bar)
        outer.addWidget(self.splitter, 1)

        # ---- wiring
        self.slider.valueChanged.connect(self.set_t)
        self.t_spin.valueChanged.connect(self.set_t)
        self.play_button.toggled.connect(self._on_play_toggled)
        self.seed_spin.valueChanged.connect(self._on_seed)
        self.new_noise_button.clicked.connect(self.new_noise)
        self.schedule_combo.currentTextChanged.connect(self._on_schedule)
        self.T_spin.valueChanged.connect(self._on_schedule)
        self.size_combo.currentIndexChanged.connect(self._on_size)

    def _make_actions(self):
        def act(text, keys, slot, tip=""):
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            a.triggered.connect(slot)
            if tip:
                a.setStatusTip(tip)
            self.addAction(a)
            return a

        self.act_play = act("Play / Pause", ["Space"], self.toggle_play, "Animate t from 0 to T")
        self.act_next = act("Next step", ["Right"], lambda: self.step(1))
        self.act_prev = act("Previous step", ["Left"], lambda: self.step(-1))
        self.act_page_up = act("Jump forward (T/10)", ["PgUp"], lambda: self.step(self._page()))
        self.act_page_down = act("Jump back (T/10)", ["PgDown"], lambda: self.step(-self._page()))
        self.act_home = act("First step (t = 0)", ["Home"], lambda: self.set_t(0))
        self.act_end = act("Last step (t = T)", ["End"], lambda: self.set_t(self.T))
        self.act_noise = act("New noise", ["N"], self.new_noise, "Draw a new eps")

    def actions(self):
        return [self.act_play, self.act_prev, self.act_next, self.act_page_down,
                self.act_page_up, self.act_home, self.act_end, self.act_noise]

    # ================================================================== public API
    @property
    def t(self) -> int:
        return self._t

    @property
    def T(self) -> int:
        return int(self.T_spin.value())

    @property
    def seed(self) -> int:
        return int(self.seed_spin.value())

    @property
    def schedule_name(self) -> str:
        return self.schedule_combo.currentText()

    @property
    def working_size(self) -> int:
        return int(self.size_combo.currentData())

    def is_ready(self) -> bool:
        """True when an image is loaded and x_t is computed from it."""
        return self._math is not None

    def chain_done(self) -> bool:
        c = self._chain
        return c is not None and c.done >= c.T

    def x0_uint8(self) -> np.ndarray | None:
        """The working image (uint8 ``[H, W, C]``) that x_0 comes from."""
        return self._work_image

    def schedule(self, name: str | None = None, T: int | None = None):
        from ...core import NoiseSchedule
        key = (name or self.schedule_name, int(T or self.T))
        s = self._schedules.get(key)
        if s is None:
            s = self._schedules[key] = NoiseSchedule.from_name(key[0], key[1])
        return s

    def set_t(self, t: int):
        """Show the paper's step ``t`` (clamped to 0..T)."""
        t = int(min(max(int(t), 0), self.T))
        if self.slider.value() != t:
            self.slider.blockSignals(True)
            self.slider.setValue(t)
            self.slider.blockSignals(False)
        if self.t_spin.value() != t:
            self.t_spin.blockSignals(True)
            self.t_spin.setValue(t)
            self.t_spin.blockSignals(False)
        changed = t != self._t
        self._t = t
        self.ctx.set_forward_t(t)
        if changed or self._math is not None:
            self._refresh_fast()
            if not self._plot_timer.isActive():
                self._plot_timer.start()

    def step(self, dt: int):
        self.set_t(self._t + int(dt))

    def new_noise(self):
        self.seed_spin.setValue((self.seed + 1) % (2 ** 31))

    def toggle_play(self):
        self.play_button.setChecked(not self.play_button.isChecked())

    def is_playing(self) -> bool:
        return self._play_timer.isActive()

    def _page(self) -> int:
        return max(1, self.T // 10)

    # ================================================================== events
    def _on_backend(self):
        if self._closed:
            return
        from ...core.schedule import SCHEDULE_NAMES
        assert tuple(SCHEDULE_NAMES) == SCHEDULES, "forward.SCHEDULES is out of date"
        self._set_controls_enabled(True)
        self._update_schedule_plots()
        self._rebuild_math()

    def _on_image_changed(self):
        if not backend_ready():
            self.preview(self.ctx.image)
            return
        self._rebuild_math()

    def _on_ctx_t(self, t: int):
        if t != self._t:
            self.set_t(t)

    def _on_seed(self, _=None):
        if self._math is not None:
            self._math.set_seed(self.seed)
            self._after_source_change()

    def _on_schedule(self, _=None):
        T = self.T
        old_T = self.slider.maximum()
        for w in (self.slider, self.t_spin):
            w.blockSignals(True)
            w.setMaximum(T)
            w.blockSignals(False)
        self.slider.setPageStep(self._page())
        self.T_label.setText(f"/ {T}")
        if old_T != T:
            self._t = int(round(self._t * T / max(old_T, 1)))
        for c in self.cursors.values():
            c.set_range(0, T)
        for name, cb in self.overlay_checks.items():
            cb.setEnabled(name != self.schedule_name)
        if not backend_ready():
            return
        if self._math is not None:
            self._math.set_schedule(self.schedule())
        self._update_schedule_plots()
        self._after_source_change()

    def _on_size(self, _=None):
        self._rebuild_math()

    def _on_play_toggled(self, on: bool):
        if on:
            if self._t >= self.T:
                self.set_t(0)
            self._play_timer.start()
            self.play_button.setIcon(self.style().standardIcon(QStyle.SP_MediaPause))
            self.play_button.setText("Pause")
        else:
            self._play_timer.stop()
            self.play_button.setIcon(self.style().standardIcon(QStyle.SP_MediaPlay))
            self.play_button.setText("Play")

    def _play_tick(self):
        dt = max(1, round(self.T * PLAY_INTERVAL_MS / 1000.0 / PLAY_SECONDS))
        if self._t >= self.T:
            self.play_button.setChecked(False)
            return
        self.set_t(min(self.T, self._t + dt))
        if self._t >= self.T:
            self.play_button.setChecked(False)

    # ================================================================== state
    def _set_controls_enabled(self, on: bool):
        for w in (self.slider, self.t_spin, self.play_button, self.seed_spin, self.new_noise_button,
                  self.schedule_combo, self.T_spin, self.size_combo):
            w.setEnabled(on)

    def preview(self, image: np.ndarray | None, note: str = "loading torch\u2026"):
        """Show a uint8 image as x_0 before torch is imported (start-up), without the maths."""
        if image is None:
            return
        self.view_x0.set_image(image)
        self.view_x0.set_caption("x\u2080")
        self.view_xt.set_image(image)
        self.stats_xt.setText(f"<span style='color:#888'>{note}</span>")

    def _rebuild_math(self):
        img = self.ctx.image
        if img is None or not backend_ready():
            return
        self._work_image = working_image(img, self.working_size)
        self._math = ForwardMath(self._work_image, self.seed, self.schedule())
        h, w, c = self._work_image.shape
        m0, s0 = self._math.stats(0)
        self.info_label.setText(f"x<sub>0</sub>: {w}\u00d7{h} px, {'RGB' if c == 3 else 'grey'}, "
                                f"mean {_num(m0, 3)}, std {_num(s0, 3)}")
        self._after_source_change()

    def _after_source_change(self):
        """x_0, eps or the schedule changed: recompute what depends on them."""
        if self._math is None:
            return
        self._t = min(self._t, self.T)
        self._update_film()
        self._cancel_chain()
        self._chain = None
        self._chain_timer.start()
        self.set_t(self._t)
        self._refresh_slow()

    # ================================================================== drawing
    def _refresh_fast(self):
        """What must follow the slider at once: x_t, the chain's x_t, the numbers."""
        m = self._math
        if m is None:
            return
        t = self._t
        self.view_xt.set_image(m.frame(t))
        if self.view_xt.isVisible():
            self.view_xt.repaint()       # on screen now, before the throttled plots can run
        mean, std = m.stats(t)
        tm, ts = m.theory(t)
        self.stats_xt.setText(f"mean {_num(mean, 3)} &nbsp; std {_num(std, 3)} &nbsp; "
                              f"<span style='color:#777'>(theory {_num(tm, 3)}, {_num(ts, 3)})</span>")
        self._refresh_chain_view()
        self._update_formula()

    def _refresh_chain_view(self):
        c = self._chain
        t = self._t
        if c is None or c.done < 0:
            self.view_chain.set_image(None)
            self.view_chain.set_placeholder("chaining q_step\u2026")
            self.stats_chain.setText("")
            return
        shown, frame = c.frame_for(t)
        self.view_chain.set_image(frame)
        if t <= c.done:
            mean, std = c.mean[t], c.std[t]
            note = ""
            if shown != t:
                note = (f" &nbsp;<span style='color:#a60'>(shows t = {shown}; every {c.stride}th "
                        f"step kept at this size)</span>")
            self.stats_chain.setText(f"mean {_num(mean, 3)} &nbsp; std {_num(std, 3)}{note}")
        else:
            self.stats_chain.setText(f"<span style='color:#a60'>computed up to t = {c.done} "
                                     f"so far</span>")

    def _update_formula(self):
        m = self._math
        t, T = self._t, self.T
        if m is None:
            return
        a, b = float(m.a64[t]), float(m.b64[t])
        if t == 0:
            beta = alpha = float("nan")
            abar, snr_db = 1.0, float("inf")
        else:
            r = self.schedule().row(t)
            beta, alpha, abar, snr_db = r["betas"], r["alphas"], r["alpha_bars"], r["snr_db"]

        def nz(v, d=4):
            return "&mdash;" if isinstance(v, float) and math.isnan(v) else _num(v, d)

        snr_txt = "+&infin;" if math.isinf(snr_db) else f"{snr_db:+.1f}".replace("-", "&minus;")
        line1 = (f"<b>x<sub>{t}</sub></b> = <b style='color:#0072B2'>{a:.3f}</b>&middot;x<sub>0</sub>"
                 f" + <b style='color:#D55E00'>{b:.3f}</b>&middot;{EPS}"
                 f"&nbsp;&nbsp;&nbsp;<span style='color:#555'>(t = {t} of T = {T}, "
                 f"{self.schedule_name})</span>")
        line2 = (f"&beta;<sub>t</sub> = {nz(beta)} &nbsp;&nbsp; &alpha;<sub>t</sub> = {nz(alpha)} "
                 f"&nbsp;&nbsp; {ABAR}<sub>t</sub> = {nz(abar)} &nbsp;&nbsp; "
                 f"&radic;{ABAR}<sub>t</sub> = {a:.4f} &nbsp;&nbsp; "
                 f"&radic;(1&minus;{ABAR}<sub>t</sub>) = {b:.4f} &nbsp;&nbsp; "
                 f"SNR = {snr_txt} dB")
        self.formula.setText(f"{line1}<br><span style='font-size:small'>{line2}</span>")

    def _refresh_slow(self):
        """Throttled: cursors, histogram, filmstrip highlight."""
        t = self._t
        for c in self.cursors.values():
            c.set_t(t)
        m = self._math
        if m is not None:
            h = m.hist(t)
            self.hist_xt.setData(hist_edges(), h, stepMode="center", fillLevel=0)
            c = self._chain
            hc = c.hist[t] if c is not None and t <= c.done else np.zeros(HIST_BINS)
            self.hist_chain.setData(hist_edges(), hc, stepMode="center")
            self._fit_hist_y(max(float(h.max()), float(hc.max())))
        if self._film_ts:
            k = int(np.argmin([abs(ft - t) for ft in self._film_ts]))
            for j, fr in enumerate(self.film):
                fr.set_current(j == k)

    def _fit_hist_y(self, peak: float):
        """Rescale the histogram's y axis only on a large change (no jitter while scrubbing)."""
        target = min(max(1.12 * peak, 0.45), 4.0)
        if abs(target - self._hist_ymax) / self._hist_ymax > 0.25:
            self._hist_ymax = target
            self.hist_plot.setYRange(0, target, padding=0)

    def _update_film(self):
        from ...export.timeline import timeline_steps
        m = self._math
        if m is None:
            return
        self._film_ts = timeline_steps(self.T, FILM_FRAMES, "even")
        for fr, ft in zip(self.film, self._film_ts):
            fr.key = ft
            fr.set_image(m.frame(ft))
            fr.set_caption("t = 0  (x\u2080)" if ft == 0 else f"t = {ft}")

    def _update_schedule_plots(self):
        if not backend_ready():
            return
        from .. import plots
        T = self.T
        cur = self.schedule_name
        ts = np.arange(1, T + 1)
        for name in SCHEDULES:
            show = name == cur or self.overlay_checks[name].isChecked()
            for k in self.plots:
                item = self.curves[(k, name)]
                item.setVisible(show)
                if not show:
                    continue
                s = self.schedule(name, T)
                if k == "beta":
                    y = s.betas.numpy()
                elif k == "abar":
                    y = s.alpha_bars.numpy()
                else:
                    y = s.snr_db.numpy().copy()
                    y[~np.isfinite(y)] = np.nan
                item.setData(ts, y, connect="finite")
                if name == cur:
                    item.setPen(plots.pen(SCHEDULE_COLORS[name], 3.0))
                    item.setZValue(10)
                else:
                    item.setPen(plots.pen(SCHEDULE_COLORS[name], 2.0, dashed=True, alpha=170))
                    item.setZValue(1)
        for p in self.plots.values():
            p.setXRange(0, T, padding=0.02)
            p.enableAutoRange(axis="y")
        self.plots["abar"].setYRange(0, 1.02, padding=0)
        for name, cb in self.overlay_checks.items():
            cb.setEnabled(name != cur)
        for c in self.cursors.values():
            c.set_range(0, T)
            c.set_t(self._t)

    def _update_overlays(self, _=None):
        self._update_schedule_plots()

    # ================================================================== the chain
    def _start_chain(self):
        m = self._math
        if m is None or self._closed:
            return
        self._cancel_chain()
        key = (id(m), m.seed, self.schedule_name, self.T)
        cache = ChainCache(key, m.shape_chw, self.T)
        self._chain = cache
        self.chain_progress.setRange(0, cache.T)
        self.chain_progress.setValue(0)
        self.chain_progress.setVisible(True)
        schedule, seed, x0, idx = self.schedule(), m.seed, m.x0_chw, m.sample_idx

        def progress(t):
            if self._chain is not cache:
                return
            self.chain_progress.setValue(t)
            if t >= self._t - cache.stride or self.view_chain.image() is None:
                self._refresh_chain_view()

        def finished(_):
            if self._chain is not cache:
                return
            self.chain_progress.setVisible(False)
            self._refresh_chain_view()
            self._refresh_slow()
            self.ctx.status.emit(f"Step-by-step chain ready ({cache.T} q_step calls, "
                                 f"{cache.nbytes() / 2 ** 20:.0f} MB cached)")

        def failed(msg):
            if self._chain is cache:
                self.chain_progress.setVisible(False)
                self.ctx.error.emit("Step-by-step chain failed", msg)

        self._chain_job = run_job(lambda: chain_generator(cache, x0, schedule, seed, idx),
                                  on_progress=progress, on_finished=finished, on_failed=failed,
                                  max_rate=20)

    def _cancel_chain(self):
        self._chain_timer.stop()
        if self._chain_job is not None:
            self._chain_job.stop()
            self._chain_job = None

    def wait_for_chain(self, timeout_ms: int = 60000) -> bool:
        """Block until the chain job is done (for tests and benchmarks)."""
        if self._chain_timer.isActive():
            self._chain_timer.stop()
            self._start_chain()
        job = self._chain_job
        return job is None or job.thread.wait(timeout_ms)

    # ================================================================== export
    def export_sources(self):
        """For the Export dialog (see :mod:`diffusion_gui.gui.export_sources`): x_t now, the
        filmstrip, the timeline t = 0..T (computed in the export worker from copies of x_0, eps
        and the schedule taken here), the step-by-step chain once it is complete, and the plots.
        Frames are bit-identical to what the panel shows."""
        from ...export.timeline import forward_caption
        from ..export_sources import ForwardTimelineSource, FramesSource, PlotSource, TimelineSource
        out = []
        m = self._math
        if m is not None:
            t = self._t
            abar = m.a64 ** 2
            out.append(FramesSource("Forward: x_t at the current t", [m.frame(t)],
                                    [forward_caption(t, float(abar[t]))]))
            fts = list(self._film_ts)
            if fts:
                out.append(FramesSource(f"Forward: filmstrip ({len(fts)} frames)",
                                        [m.frame(ft) for ft in fts],
                                        [forward_caption(ft, float(abar[ft])) for ft in fts]))
            out.append(ForwardTimelineSource(
                f"Forward: timeline t = 0..T ({self.schedule_name}, T = {self.T})",
                m.x0, m.eps, self.schedule().alpha_bars.numpy(), n_frames=60,
                name=f"forward-{self.schedule_name}-seed{m.seed}"))
            c = self._chain
            if c is not None and c.done >= c.T:
                frames, slot = c.frames, c.slot         # complete: never written again

                def chain_frame(tt, frames=frames, slot=slot):
                    return frames[slot(tt)]

                def chain_caption(tt, abar=abar, ts=list(c.ts), slot=slot):
                    shown = ts[slot(tt)]       # the kept step at or below tt
                    return forward_caption(shown, float(abar[shown])) + "   (step by step)"

                out.append(TimelineSource("Forward: step-by-step chain t = 0..T", c.T,
                                          chain_frame, chain_caption, n_frames=60,
                                          name=f"forward-chain-seed{m.seed}"))
        out += [PlotSource("Forward: beta_t plot", self.plots["beta"], name="forward-beta"),
                PlotSource("Forward: abar_t plot", self.plots["abar"], name="forward-abar"),
                PlotSource("Forward: SNR plot", self.plots["snr"], name="forward-snr"),
                PlotSource("Forward: pixel histogram of x_t", self.hist_plot,
                           name="forward-histogram")]
        return out

    # ================================================================== settings
    def save_settings(self, settings: QSettings):
        settings.setValue("schedule", self.schedule_name)
        settings.setValue("T", self.T)
        settings.setValue("seed", self.seed)
        settings.setValue("size", self.working_size)
        settings.setValue("t", self._t)
        settings.setValue("overlays", [n for n, cb in self.overlay_checks.items() if cb.isChecked()])
        settings.setValue("splitter", self.splitter.saveState())

    def restore_settings(self, settings: QSettings):
        def get(key, typ, default):
            v = settings.value(key, default)
            try:
                return default if v is None else typ(v)
            except (TypeError, ValueError):
                return default

        name = get("schedule", str, "linear")
        if name in SCHEDULES:
            self.schedule_combo.setCurrentText(name)
        self.T_spin.setValue(min(max(get("T", int, DEFAULT_T), 10), MAX_T))
        self.seed_spin.setValue(min(max(get("seed", int, 0), 0), 2 ** 31 - 1))
        size = get("size", int, DEFAULT_SIZE)
        if size in SIZES:
            self.size_combo.setCurrentIndex(SIZES.index(size))
        ov = settings.value("overlays", [])
        ov = [ov] if isinstance(ov, str) else (list(ov) if isinstance(ov, (list, tuple)) else [])
        for n, cb in self.overlay_checks.items():
            cb.setChecked(n in ov)
        st = settings.value("splitter")
        if st is not None:
            try:
                self._splitter_set = bool(self.splitter.restoreState(st))
            except TypeError:
                pass
        self.set_t(get("t", int, 0))

    # ================================================================== shutdown
    def shutdown(self):
        if self._closed:
            return
        self._closed = True
        for tm in (self._play_timer, self._plot_timer, self._chain_timer):
            tm.stop()
        self._cancel_chain()
