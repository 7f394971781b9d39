"""Train panel: train a small DDPM on the digits or a folder of images, and watch it learn.

The worker iterates :func:`diffusion_gui.models.train.train`, the generator ``diffusion-gui
train`` drives, wrapped by :class:`TrainRun` (which turns the panel's requests into the
generator's ``send("checkpoint")`` / ``send("sample")`` protocol):

- ``observe`` (worker thread, every step) records the loss of every step, the sample grids the
  generator draws every K steps (DDIM from the EMA weights, one fixed seed, so that the grids are
  comparable) and the first steps' timings; ``convert`` hands what accumulated since the last
  emission to the GUI as plain numpy (no tensor crosses a signal);
- Pause / Resume are the worker's; a request made while paused (save, use, sample now) lets the
  worker take exactly one more item, the generator's answer, without training a step;
- Stop saves the state at the current step, draws a last grid of those weights and ends the
  run; *Save model* copies the run folder's pipeline (diffusers layout, with
  ``model_card.md``) to a folder of the user's choice.

Every run trains into its own folder under :func:`default_runs_dir` (a diffusers pipeline folder
plus ``checkpoint/state.pt``, so ``diffusion-gui train -o RUN --resume`` can continue it).
"""
from __future__ import annotations

import math
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, QSize, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...core.images import enlarge, tile
from ..image_view import ImageView, qimage_from_array
from ..plots import COLORS, LogAxis, add_legend, make_plot, pen, style_plot
from ..workers import call_in_background, run_job

SIZES = [8, 16, 24, 32, 48, 64]
GRID_SIZES = [4, 9, 16, 25, 36]
PRESET_NOTES = {"tiny": "16/32/32 channels, no attention", "small": "32/64/64 channels, attention",
                "medium": "64/128/128 channels, 2 layers a block, attention"}
THUMB = 64               # thumbnail size in the strip, px
MAX_GRIDS = 400          # grids kept in the strip; beyond, every other older grid is dropped
SMOOTH_BETA = 0.98       # smoothing of the loss curve (geometric, ~50 steps)
TIMING_STEPS = 10        # clean steps timed for the seconds-per-step estimate
LIVE_RATE = 10.0         # GUI updates per second, at most
BUCKETS_T = 1000
BUCKET_HEADROOM = 1.3    # y range of the bucket plot over its tallest bar (the legend sits above)
MIN_X_STEPS = 10         # the loss plot shows at least steps 0..10


def default_runs_dir() -> Path:
    """Where the panel's runs train: ``$DIFFUSION_GUI_RUNS`` or the app's data folder + ``runs``."""
    env = os.environ.get("DIFFUSION_GUI_RUNS")
    if env:
        return Path(env).expanduser()
    base = QStandardPaths.writableLocation(QStandardPaths.AppLocalDataLocation)
    return Path(base or Path.home() / ".diffusion-gui") / "runs"


def _error_text(e: BaseException):
    from ...models.errors import ModelLoadError
    try:
        from ...core.images import ImageLoadError
    except ImportError:  # pragma: no cover
        ImageLoadError = ModelLoadError
    if isinstance(e, (ValueError, OSError, ModelLoadError, ImageLoadError)):
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, MemoryError):
        return "not enough memory: try a smaller batch, size or model"
    return None


def _fmt_s(s) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def _fmt_rate(s_per_step: float) -> str:
    return f"{s_per_step * 1000:.0f} ms/step" if s_per_step < 1 else f"{s_per_step:.2f} s/step"


# ------------------------------------------------------------------------------ model files
PIPELINE_ITEMS = ("model_index.json", "unet", "scheduler", "model_card.md")


def export_model(run_dir, dest) -> Path:
    """Copy the pipeline of ``run_dir`` (``model_index.json``, ``unet/``, ``scheduler/``,
    ``model_card.md``; not the training state) to the folder ``dest``, atomically: a complete
    copy is written next to it and renamed. An existing *model* folder at ``dest`` is replaced;
    any other non-empty folder is refused."""
    run_dir, dest = Path(run_dir), Path(dest).expanduser()
    if not (run_dir / "model_index.json").is_file():
        raise ValueError(f"{run_dir}: nothing saved yet")
    if dest.resolve() == run_dir.resolve():
        return dest
    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not (dest / "model_index.json").is_file())):
        raise ValueError(f"{dest}: exists and is not a model folder; choose a new or empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for name in PIPELINE_ITEMS:
            src = run_dir / name
            if src.is_dir():
                shutil.copytree(src, tmp / name)
            elif src.is_file():
                shutil.copy2(src, tmp / name)
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{time.monotonic_ns()}")
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def write_card(cfg, last) -> None:
    """``model_card.md`` in the run folder, for the state at ``last`` (a TrainMetrics)."""
    from dataclasses import asdict

    from ...models.card import write_model_card
    from ...models.unet import build_unet, count_parameters
    params = count_parameters(build_unet(cfg.preset, cfg.size, cfg.channels))
    write_model_card(cfg.out_dir, asdict(cfg), params, last.step, last.elapsed_s, last.loss)


# ------------------------------------------------------------------------------ one run
class TrainRun:
    """One training run. ``make_gen``, ``observe`` and ``convert`` run in the worker thread;
    :meth:`request` is called from the GUI thread. Shared lists are guarded by a lock."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.run_dir = Path(cfg.out_dir)
        self._lock = threading.Lock()
        self._requests: deque = deque()
        self._hist: list = []              # (step, loss) not yet handed over
        self._grids: list = []             # (step, tiled uint8 grid, bucket profile)
        self._events: list = []            # dicts for the GUI: saved / use / error / timing
        self._last_step = 0
        self._last_grid_step = -1
        self._times: list = []             # (step, perf_counter) of the first steps
        self._clean = True
        self.s_per_step: float | None = None
        self.last = None                   # the latest TrainMetrics (worker thread)

    # ---- GUI thread
    def request(self, *actions):
        """Actions, done together at the next step boundary: ``("checkpoint",)`` save the state
        and the model card; ``("export", dest)`` then copy the model to ``dest``; ``("use",)``
        then tell the GUI the run folder is current; ``("stop",)`` then end the run;
        ``("sample",)`` a fresh sample grid (alone)."""
        with self._lock:
            self._requests.append(tuple(actions))

    def pending_requests(self) -> int:
        with self._lock:
            return len(self._requests)

    # ---- worker thread
    def _pop(self):
        with self._lock:
            return self._requests.popleft() if self._requests else None

    def _event(self, **e):
        with self._lock:
            self._events.append(e)

    def make_gen(self):
        from ...models.train import train
        gen = train(self.cfg)
        try:
            m = next(gen)
            while True:
                yield m
                req = self._pop()
                if req is None:
                    m = next(gen)
                    continue
                self._clean = False       # answers are no training steps: keep them out of timing
                kinds = [a[0] for a in req]
                if kinds == ["sample"]:
                    m = gen.send("sample")
                    continue
                m = gen.send("checkpoint")
                self._after_save(m, req)
                if "stop" in kinds:
                    if self.cfg.sample_every > 0 and self._last_grid_step != m.step:
                        m = gen.send("sample")    # the strip ends with the final weights
                    yield m
                    return
        except StopIteration:
            return
        finally:
            gen.close()
            if self.last is not None and self.last.event == "done":
                self._card(self.last)

    def _card(self, m):
        try:
            write_card(self.cfg, m)
        except OSError as e:
            self._event(kind="error", title="Cannot write the model card", message=str(e))

    def _after_save(self, m, req):
        self._card(m)
        self._event(kind="checkpoint", step=m.step)
        for a in req:
            try:
                if a[0] == "export":
                    dest = export_model(self.run_dir, a[1])
                    self._event(kind="saved", path=str(dest), step=m.step)
                elif a[0] == "use":
                    self._event(kind="use", path=str(self.run_dir), step=m.step)
            except (OSError, ValueError) as e:
                self._event(kind="error", title="Cannot save the model", message=str(e))

    def observe(self, m):
        """Every item: the loss history, sample grids, the first steps' timing."""
        now = time.perf_counter()
        with self._lock:
            if m.step > self._last_step:
                self._hist.append((m.step, m.loss))
                self._last_step = m.step
                if self.s_per_step is None:
                    if self._clean and m.step >= 2 and self._times and self._times[-1][0] == m.step - 1:
                        self._times.append((m.step, now))
                    else:
                        self._times = [(m.step, now)]
                    self._clean = m.event == "step" and m.samples is None
                    if len(self._times) > TIMING_STEPS:
                        dts = [b[1] - a[1] for a, b in zip(self._times, self._times[1:])]
                        self.s_per_step = statistics.median(dts)
                        self._events.append({"kind": "timing", "s_per_step": self.s_per_step})
            if m.samples is not None:
                self._last_grid_step = m.step
                self._grids.append((m.step, tile(m.samples), np.asarray(m.bucket_loss, float)))
            self.last = m

    def convert(self, m) -> dict:
        """The GUI's payload: the latest figures plus everything recorded since the last one."""
        with self._lock:
            hist, self._hist = self._hist, []
            grids, self._grids = self._grids, []
            events, self._events = self._events, []
        steps = np.array([h[0] for h in hist], dtype=np.int64)
        losses = np.array([h[1] for h in hist], dtype=np.float64)
        return {"step": m.step, "total": m.total_steps, "loss": m.loss, "lr": m.lr,
                "rate": m.steps_per_s, "elapsed": m.elapsed_s, "event": m.event,
                "bucket": np.asarray(m.bucket_loss, dtype=np.float64),
                "hist": (steps, losses), "grids": grids, "events": events}

    def drain_events(self) -> list:
        with self._lock:
            ev, self._events = self._events, []
        return ev


class _Growing:
    """An append-only float array with amortised growth (the loss curves)."""

    def __init__(self, dtype=np.float64):
        self.a = np.empty(1024, dtype=dtype)
        self.n = 0

    def extend(self, values):
        values = np.asarray(values, dtype=self.a.dtype)
        need = self.n + len(values)
        if need > len(self.a):
            b = np.empty(max(need, 2 * len(self.a)), dtype=self.a.dtype)
            b[:self.n] = self.a[:self.n]
            self.a = b
        self.a[self.n:need] = values
        self.n = need

    @property
    def data(self) -> np.ndarray:
        return self.a[:self.n]

    def clear(self):
        self.n = 0


# ------------------------------------------------------------------------------ the sample strip
class SampleStrip(QWidget):
    """The sample grids of a run: the selected one large, a slider and a strip of thumbnails to
    scrub them. ``selected(int)`` carries the training step of the grid shown."""

    selected = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grids: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.view = ImageView(caption="", min_size=150)
        self.view.set_placeholder("Sample grids appear here every K steps while training")
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.slider.setToolTip("Scrub through the sample grids of this run")
        self.slider.valueChanged.connect(self._show)
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.IconMode)
        self.thumbs.setFlow(QListView.LeftToRight)
        self.thumbs.setWrapping(False)
        self.thumbs.setMovement(QListView.Static)
        self.thumbs.setIconSize(QSize(THUMB, THUMB))
        self.thumbs.setSpacing(2)
        self.thumbs.setFixedHeight(THUMB + self.fontMetrics().height() + 30)
        self.thumbs.setHorizontalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.thumbs.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.thumbs.setSelectionMode(QAbstractItemView.SingleSelection)
        self.thumbs.currentRowChanged.connect(self._thumb_picked)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.slider)
        lay.addWidget(self.thumbs)
        self.caption_extra = ""

    def clear(self):
        self.grids.clear()
        self.thumbs.clear()
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.view.set_image(None)
        self.view.set_caption("")

    def add(self, step: int, grid: np.ndarray, buckets: np.ndarray):
        follow = not self.grids or self.slider.value() == len(self.grids) - 1
        if len(self.grids) >= MAX_GRIDS:   # thin out the older half, keep the newest grids all
            keep = list(range(0, MAX_GRIDS // 2, 2)) + list(range(MAX_GRIDS // 2, len(self.grids)))
            self.grids = [self.grids[k] for k in keep]
            self.thumbs.blockSignals(True)
            self.thumbs.clear()
            for s, g, _ in self.grids:
                self._add_thumb(s, g)
            self.thumbs.blockSignals(False)
        self.grids.append((int(step), grid, buckets))
        self._add_thumb(step, grid)
        n = len(self.grids)
        self.slider.blockSignals(True)
        self.slider.setRange(0, n - 1)
        self.slider.setEnabled(n > 1)
        self.slider.blockSignals(False)
        if follow:
            self.slider.setValue(n - 1)
            self._show(n - 1)

    def _add_thumb(self, step, grid):
        h, w = grid.shape[:2]
        f = max(1, round(THUMB / max(h, w)))    # crisp: whole-pixel enlargement
        pm = QPixmap.fromImage(qimage_from_array(enlarge(grid, f)))
        if max(h, w) * f > 1.25 * THUMB:        # a big grid: shrink it smoothly
            pm = pm.scaled(THUMB, THUMB, Qt.KeepAspectRatio, Qt.SmoothTransformation)
        if self.thumbs.count() == 0:
            self.thumbs.setIconSize(pm.size())
            self.thumbs.setFixedHeight(pm.height() + self.fontMetrics().height() + 30)
        item = QListWidgetItem(QIcon(pm), f"{step:,}")
        item.setTextAlignment(Qt.AlignHCenter)
        item.setToolTip(f"samples at step {step:,}")
        self.thumbs.addItem(item)

    def index(self) -> int:
        return self.slider.value() if self.grids else -1

    def current(self):
        k = self.index()
        return self.grids[k] if 0 <= k < len(self.grids) else None

    def select(self, k: int):
        self.slider.setValue(k)

    def _thumb_picked(self, row):
        if 0 <= row < len(self.grids) and row != self.slider.value():
            self.slider.setValue(row)

    def _show(self, k):
        if not 0 <= k < len(self.grids):
            return
        step, grid, _ = self.grids[k]
        self.view.set_image(grid)
        self.view.set_caption(f"step {step:,}  ·  grid {k + 1} of {len(self.grids)}{self.caption_extra}")
        if self.thumbs.currentRow() != k:
            self.thumbs.blockSignals(True)
            self.thumbs.setCurrentRow(k)
            self.thumbs.blockSignals(False)
        self.thumbs.scrollToItem(self.thumbs.item(k))
        self.selected.emit(step)


# ------------------------------------------------------------------------------ the panel
class TrainPanel(QWidget):
    """Train a DDPM from the GUI; live loss curves and sample grids; save and use the model."""

    title = "Train"

    state_changed = Signal(str)     # idle | running | pausing | paused | stopping
    run_ended = Signal(str)         # finished | stopped | failed
    model_saved = Signal(str)       # the folder a model was saved to

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.runs_dir: Path = default_runs_dir()
        self._state = "idle"
        self._run: TrainRun | None = None
        self._job = None
        self._side_jobs: list = []
        self._preview_job = None
        self._params_cache: dict = {}
        self._timings: dict = {}          # "preset/size/channels/batch" -> s/step measured here
        self._step = 0
        self._total = 0
        self._last_rate = 0.0
        self._elapsed = 0.0
        self._saved_path: str | None = None
        self._saved_step = -1
        self._status_main = ""
        self._x_forced = False
        self._smooth = None
        self._smooth_n = 0
        self._steps = _Growing(np.int64)
        self._loss = _Growing()
        self._loss_s = _Growing()
        self._bucket = np.full(10, np.nan)
        self._data_n: int | None = None
        self._data_dir = ""
        self._build()
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(200)
        self._preview_timer.timeout.connect(self._refresh_preview)
        # (the source combo reaches _config_changed through _update_source)
        self.size.currentIndexChanged.connect(self._config_changed)
        self.channels.currentIndexChanged.connect(self._config_changed)
        self.augment.toggled.connect(self._config_changed)
        self.preset.currentIndexChanged.connect(self._model_changed)
        self.batch.valueChanged.connect(self._model_changed)
        self.steps.valueChanged.connect(self._update_estimate)
        self._update_source()
        self._update_buttons()

    # ================================================================ widgets
    def _build(self):
        # ---- data
        self.source = QComboBox()
        self.source.addItem("Built-in digits (scikit-learn)", "digits")
        self.source.addItem("Folder of images…", "folder")
        self.source.setToolTip("The 1,597 training digits of scikit-learn's 8x8 set (200 held "
                               "out), or every image below a folder (centre-cropped, resized)")
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("no folder chosen")
        self.folder.setReadOnly(True)
        self.browse_btn = QPushButton("Browse…")
        self.browse_btn.clicked.connect(self._browse)
        frow = QHBoxLayout()
        frow.setContentsMargins(0, 0, 0, 0)
        frow.addWidget(self.folder, 1)
        frow.addWidget(self.browse_btn)
        self.folder_row = QWidget()
        self.folder_row.setLayout(frow)
        self.size = QComboBox()
        for s in SIZES:
            self.size.addItem(f"{s} × {s} px", s)
        self.size.setCurrentIndex(SIZES.index(16))
        self.size.setToolTip("Resolution the model is trained at (images are centre-cropped and resized)")
        self.channels = QComboBox()
        self.channels.addItem("Grayscale", 1)
        self.channels.addItem("RGB", 3)
        self.augment = QCheckBox("Random ±1 px shifts")
        self.augment.setChecked(True)
        self.augment.setToolTip("Augmentation: every training image is shifted by -1, 0 or +1 px")
        self.data_info = QLabel("")
        self.data_info.setWordWrap(True)
        self.data_info.setEnabled(False)
        dform = QFormLayout()
        dform.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        dform.addRow("Source", self.source)
        dform.addRow("", self.folder_row)
        dform.addRow("Size", self.size)
        dform.addRow("Colour", self.channels)
        dform.addRow("", self.augment)
        dform.addRow(self.data_info)
        data_box = QGroupBox("Data")
        data_box.setLayout(dform)
        self.source.currentIndexChanged.connect(self._update_source)

        # ---- model
        self.preset = QComboBox()
        for name, note in PRESET_NOTES.items():
            self.preset.addItem(name, name)
            self.preset.setItemData(self.preset.count() - 1, note, Qt.ToolTipRole)
        self.preset.setCurrentIndex(1)
        self.params_label = QLabel("")
        self.params_label.setWordWrap(True)
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.measure_btn = QPushButton("Measure")
        self.measure_btn.setToolTip("Time a few training steps of this preset, size and batch now")
        self.measure_btn.clicked.connect(self.measure)
        erow = QHBoxLayout()
        erow.setContentsMargins(0, 0, 0, 0)
        erow.addWidget(self.estimate_label, 1)
        erow.addWidget(self.measure_btn, 0, Qt.AlignTop)
        mform = QFormLayout()
        mform.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        mform.addRow("Preset", self.preset)
        mform.addRow("Parameters", self.params_label)
        mform.addRow("Speed", erow)
        model_box = QGroupBox("Model (diffusers UNet2DModel)")
        model_box.setLayout(mform)

        # ---- optimisation
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setValue(128)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1e-1)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(2e-3)
        self.lr.setToolTip("AdamW learning rate (after a 200-step linear warm-up)")
        self.steps = QSpinBox()
        self.steps.setRange(1, 10_000_000)
        self.steps.setSingleStep(1000)
        self.steps.setGroupSeparatorShown(True)
        self.steps.setValue(10000)
        self.ema = QDoubleSpinBox()
        self.ema.setDecimals(4)
        self.ema.setRange(0.0, 0.9999)
        self.ema.setSingleStep(0.001)
        self.ema.setValue(0.999)
        self.ema.setToolTip("Decay of the exponential moving average of the weights; the EMA "
                            "weights are the ones sampled and saved")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("Seeds the initial weights, the batches and the noise")
        oform = QFormLayout()
        oform.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        oform.addRow("Batch", self.batch)
        oform.addRow("Learning rate", self.lr)
        oform.addRow("Steps", self.steps)
        oform.addRow("EMA decay", self.ema)
        oform.addRow("Seed", self.seed)
        opt_box = QGroupBox("Optimisation")
        opt_box.setLayout(oform)

        # ---- sample grids
        self.sample_every = QSpinBox()
        self.sample_every.setRange(1, 1_000_000)
        self.sample_every.setValue(250)
        self.sample_every.setPrefix("every ")
        self.sample_every.setSuffix(" steps")
        self.sample_steps = QSpinBox()
        self.sample_steps.setRange(2, 1000)
        self.sample_steps.setValue(25)
        self.sample_steps.setSuffix(" DDIM steps")
        self.sample_n = QComboBox()
        for n in GRID_SIZES:
            self.sample_n.addItem(f"{n} images", n)
        self.sample_n.setCurrentIndex(GRID_SIZES.index(16))
        self.sample_seed = QSpinBox()
        self.sample_seed.setRange(0, 2 ** 31 - 1)
        self.sample_seed.setToolTip("The same x_T every time, so that the grids are comparable")
        self.sample_every.setToolTip("Draw a grid of samples from the EMA weights every K steps")
        self.sample_steps.setToolTip("Fast DDIM (η = 0) sampling for the grids")

        # ---- run
        self.start_btn = QPushButton("Start")
        self.start_btn.setToolTip("Train a new model with these settings")
        f = self.start_btn.font()
        f.setBold(True)
        self.start_btn.setFont(f)
        self.pause_btn = QPushButton("Pause")
        self.resume_btn = QPushButton("Resume")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Save the state at the current step and end the run")
        for b in (self.start_btn, self.pause_btn, self.resume_btn, self.stop_btn):
            b.setMinimumHeight(30)
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.pause)
        self.resume_btn.clicked.connect(self.resume)
        self.stop_btn.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m steps")
        self.status_label = QLabel("Ready.")
        self.status_label.setWordWrap(True)
        self.status_label.setMinimumHeight(self.fontMetrics().height() * 3)
        grid = QGridLayout()
        grid.addWidget(self.start_btn, 0, 0)
        grid.addWidget(self.stop_btn, 0, 1)
        grid.addWidget(self.pause_btn, 1, 0)
        grid.addWidget(self.resume_btn, 1, 1)
        grid.addWidget(self.progress, 2, 0, 1, 2)
        grid.addWidget(self.status_label, 3, 0, 1, 2)
        run_box = QGroupBox("Run")
        run_box.setLayout(grid)

        # ---- output
        self.save_btn = QPushButton("Save model…")
        self.save_btn.setToolTip("Write a diffusers pipeline folder (EMA weights, scheduler, "
                                 "model_card.md) of the current state")
        self.save_btn.clicked.connect(self.save_model)
        self.use_btn = QPushButton("Use in Reverse panel")
        self.use_btn.setToolTip("Make this model the app's model: the Reverse and Loss panels switch to it")
        self.use_btn.clicked.connect(self.use_model)
        self.output_label = QLabel("")
        self.output_label.setWordWrap(True)
        self.output_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        grid.addWidget(self.save_btn, 4, 0)
        grid.addWidget(self.use_btn, 4, 1)
        grid.addWidget(self.output_label, 5, 0, 1, 2)

        left = QWidget()
        llay = QVBoxLayout(left)
        llay.setContentsMargins(6, 6, 6, 6)
        for b in (data_box, model_box, opt_box, run_box):
            llay.addWidget(b)
        llay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        left.setMaximumWidth(360)
        scroll.setFixedWidth(372)

        # ---- right: data preview, sample strip, plots
        self.preview = ImageView(min_size=150)
        self.preview.set_placeholder("loading the data…")
        prev_box = QGroupBox("Data, as the model sees it")
        QVBoxLayout(prev_box).addWidget(self.preview)
        self.strip = SampleStrip()
        self.sample_now_btn = QPushButton("Sample now")
        self.sample_now_btn.setToolTip("Draw a grid from the current EMA weights (e.g. while paused)")
        self.sample_now_btn.clicked.connect(self.sample_now)
        strip_box = QGroupBox("Samples during training (fixed seed)")
        slay = QVBoxLayout(strip_box)
        slay.addWidget(self.strip, 1)
        srow = QHBoxLayout()
        srow.setSpacing(4)
        srow.addWidget(QLabel("Grid"))
        srow.addWidget(self.sample_every)
        srow.addWidget(self.sample_steps)
        srow.addWidget(self.sample_n)
        srow.addWidget(QLabel("seed"))
        srow.addWidget(self.sample_seed)
        srow.addStretch(1)
        srow.addWidget(self.sample_now_btn)
        slay.addLayout(srow)
        top = QSplitter(Qt.Horizontal)
        top.addWidget(prev_box)
        top.addWidget(strip_box)
        top.setStretchFactor(0, 2)
        top.setStretchFactor(1, 3)
        top.setSizes([400, 600])
        top.setChildrenCollapsible(False)

        self.loss_plot = make_plot("Training loss", "step", "ε-MSE", min_height=180)
        self.loss_plot.setAxisItems({"left": LogAxis("left")})
        style_plot(self.loss_plot, "Training loss", "step", "ε-MSE", log_y=True)
        left_axis = self.loss_plot.getPlotItem().getAxis("left")
        left_axis.setLogMode(True)
        left_axis.setGrid(int(0.18 * 255))
        self.loss_plot.setMouseEnabled(x=True, y=False)
        add_legend(self.loss_plot)
        self.raw_curve = self.loss_plot.plot([], [], pen=pen("sky", 1.0, alpha=110), name="raw (one batch)")
        self.smooth_curve = self.loss_plot.plot([], [], pen=pen("blue", 2.5), name="smoothed")
        for c in (self.raw_curve, self.smooth_curve):
            c.setClipToView(True)
            c.setDownsampling(auto=True, method="mean")
        self.step_line = pg.InfiniteLine(pos=0, angle=90, movable=False, pen=pen("orange", 1.5, dashed=True))
        self.step_line.setVisible(False)
        self.loss_plot.addItem(self.step_line, ignoreBounds=True)

        self.bucket_plot = make_plot("Loss per timestep bucket", "t  (0 = clean image, T = noise)",
                                     "ε-MSE", min_height=180)
        centres = (np.arange(10) + 0.5) * BUCKETS_T / 10
        self.bars = pg.BarGraphItem(x=centres, height=np.zeros(10), width=BUCKETS_T / 10 * 0.82,
                                    brush=pg.mkBrush(COLORS["blue"]), pen=pg.mkPen(None), name="now")
        self.bucket_plot.addItem(self.bars)
        self.bucket_ref = self.bucket_plot.plot([], [], pen=pen("orange", 2.5, dashed=True),
                                                symbol="o", symbolSize=7,
                                                symbolBrush=pg.mkBrush(COLORS["orange"]),
                                                symbolPen=pg.mkPen(None))
        self.bucket_leg = add_legend(self.bucket_plot)
        self.bucket_leg.setColumnCount(2)          # one row: room above the bars
        self.bucket_leg.addItem(self.bars, "now")
        self.bucket_leg.addItem(self.bucket_ref, "at the grid's step")
        self.bucket_plot.setXRange(0, BUCKETS_T, padding=0.02)
        self.bucket_plot.setMouseEnabled(x=False, y=False)
        plots = QSplitter(Qt.Horizontal)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.bucket_plot)
        plots.setStretchFactor(0, 3)
        plots.setStretchFactor(1, 2)
        plots.setSizes([600, 400])
        plots.setChildrenCollapsible(False)

        right = QSplitter(Qt.Vertical)
        right.addWidget(top)
        right.addWidget(plots)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        right.setChildrenCollapsible(False)
        self.strip.selected.connect(self._grid_selected)

        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(scroll)
        lay.addWidget(right, 1)

    # ================================================================ configuration
    def config(self, out_dir=None):
        """The :class:`TrainConfig` of the current settings."""
        from ...models.train import TrainConfig
        data = "digits" if self.source.currentData() == "digits" else self._data_dir
        return TrainConfig(out_dir=str(out_dir or ""), data=data, size=int(self.size.currentData()),
                           channels=int(self.channels.currentData()), preset=self.preset.currentData(),
                           steps=self.steps.value(), batch_size=self.batch.value(), lr=self.lr.value(),
                           ema_decay=self.ema.value(), augment=self.augment.isChecked(),
                           checkpoint_every=1000, seed=self.seed.value(),
                           sample_every=self.sample_every.value(), sample_steps=self.sample_steps.value(),
                           sample_batch=int(self.sample_n.currentData()),
                           sample_seed=self.sample_seed.value())

    def _update_source(self):
        digits = self.source.currentData() == "digits"
        self.folder_row.setVisible(not digits)
        if digits:
            self.channels.setCurrentIndex(0)
        self.channels.setEnabled(not digits and self._state == "idle")
        self._config_changed()

    def _browse(self):
        path = self.choose_data_dir()
        if path:
            self.set_data_folder(path)

    def choose_data_dir(self) -> str | None:
        """Ask for a folder of images (patched in tests)."""
        start = self._data_dir or self.ctx.settings.value("last_folder", str(Path.home()))
        return QFileDialog.getExistingDirectory(self, "Folder of training images", str(start)) or None

    def set_data_folder(self, path: str):
        self._data_dir = str(path)
        self.folder.setText(self._data_dir)
        self.folder.setToolTip(self._data_dir)
        self.source.setCurrentIndex(1)
        self._config_changed()

    def _config_changed(self, *_):
        self._preview_timer.start()
        self._model_changed()

    def _model_changed(self, *_):
        self._update_params()
        self._update_estimate()

    def _timing_key(self) -> str:
        return (f"{self.preset.currentData()}/{self.size.currentData()}/"
                f"{self.channels.currentData()}/{self.batch.value()}")

    def _update_params(self):
        key = (self.preset.currentData(), int(self.channels.currentData()), int(self.size.currentData()))
        if key in self._params_cache:
            n = self._params_cache[key]
            self.params_label.setText(f"{n:,}  ·  {PRESET_NOTES[key[0]]}")
            return
        self.params_label.setText("counting…")

        preset, channels, size = key

        def count():
            from ...models.unet import build_unet, count_parameters
            return count_parameters(build_unet(preset, size, channels))

        def done(n):
            self._params_cache[key] = int(n)
            self._update_params()

        self._side(call_in_background(count, on_done=done, on_failed=lambda m: self.params_label.setText("–"),
                                      error_text=_error_text, abandonable=True))   # read-only

    def _update_estimate(self, *_):
        s = self._timings.get(self._timing_key())
        if s is None:
            self.estimate_label.setText("not measured for this size and batch yet: press Measure, "
                                        "or start (the first steps are timed)")
            return
        total = s * self.steps.value()
        self.estimate_label.setText(f"≈ {_fmt_rate(s)} on this machine (measured)\n"
                                    f"{self.steps.value():,} steps ≈ {_fmt_s(total)}")

    def measure(self):
        """Time a few training steps of the current preset/size/batch in the background."""
        key = self._timing_key()
        preset, size, ch, batch = (self.preset.currentData(), int(self.size.currentData()),
                                   int(self.channels.currentData()), self.batch.value())
        self.measure_btn.setEnabled(False)
        self.estimate_label.setText("measuring…")

        def fn():
            from ...models.train import time_steps
            return time_steps(preset, size, ch, batch, steps=3)

        def done(s):
            self._timings[key] = float(s)
            self.measure_btn.setEnabled(self._state == "idle")
            self._update_estimate()

        def failed(msg):
            self.measure_btn.setEnabled(self._state == "idle")
            self.ctx.error.emit("Cannot measure", msg)
            self._update_estimate()

        self._side(call_in_background(fn, on_done=done, on_failed=failed, error_text=_error_text,
                                      abandonable=True))   # in memory only, writes nothing

    def _side(self, job):
        self._side_jobs = [j for j in self._side_jobs if j.is_running()] + [job]

    # ---- data preview
    def _refresh_preview(self):
        if self._preview_job is not None:
            self._preview_job.detach()
        if self.source.currentData() == "folder" and not self._data_dir:
            self.preview.set_image(None)
            self.preview.set_placeholder("choose a folder of images")
            self.data_info.setText("")
            return
        cfg = self.config()
        self.preview.set_placeholder("loading the data…")

        def load():
            return data_preview(cfg)

        def done(res):
            grid, n = res
            self._data_n = n
            self.preview.set_image(grid)
            k = min(n, 64)
            shift = " · ±1 px shifts" if cfg.augment else ""
            colour = "grey" if cfg.channels == 1 else "RGB"
            self.preview.set_caption(f"{k} of {n:,} · {cfg.size}×{cfg.size} {colour}{shift}")
            self.data_info.setText(f"{n:,} training images")

        def failed(msg):
            self._data_n = None
            self.preview.set_image(None)
            self.preview.set_caption("")
            self.preview.set_placeholder(msg)
            self.data_info.setText(msg)

        self._preview_job = call_in_background(load, on_done=done, on_failed=failed, error_text=_error_text,
                                               abandonable=True)   # reads the data only

    # ================================================================ running
    def _set_state(self, state: str):
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)
        self._update_buttons()

    @property
    def state(self) -> str:
        return self._state

    def _update_buttons(self):
        s = self._state
        idle = s == "idle"
        has_model = self._run is not None and (self._run.run_dir / "model_index.json").is_file()
        self.start_btn.setEnabled(idle)
        self.pause_btn.setEnabled(s == "running")
        self.resume_btn.setEnabled(s == "paused")
        self.stop_btn.setEnabled(s in ("running", "pausing", "paused"))
        self.save_btn.setEnabled(s in ("running", "paused") or (idle and has_model))
        self.use_btn.setEnabled(s in ("running", "paused") or (idle and has_model))
        self.sample_now_btn.setEnabled(s in ("running", "paused"))
        self.measure_btn.setEnabled(idle)
        for w in (self.source, self.browse_btn, self.size, self.augment, self.preset, self.batch,
                  self.lr, self.steps, self.ema, self.seed, self.sample_every, self.sample_steps,
                  self.sample_n, self.sample_seed):
            w.setEnabled(idle)
        self.channels.setEnabled(idle and self.source.currentData() != "digits")

    def new_run_dir(self) -> Path:
        cfg = self.config()
        data = "digits" if cfg.data == "digits" else Path(cfg.data).name or "images"
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{data}-{cfg.size}px-{cfg.preset}"
        d = self.runs_dir / name
        k = 1
        while d.exists():
            k += 1
            d = self.runs_dir / f"{name}-{k}"
        return d

    def start(self):
        """Train a new model with the current settings, in a background worker."""
        if self._state != "idle":
            return
        if self.source.currentData() == "folder" and not self._data_dir:
            self.ctx.error.emit("Cannot start training", "choose a folder of images first")
            return
        try:
            run_dir = self.new_run_dir()
            run_dir.mkdir(parents=True)
        except OSError as e:
            self.ctx.error.emit("Cannot start training", f"{self.runs_dir}: {e}")
            return
        cfg = self.config(run_dir)
        run = TrainRun(cfg)
        self._run = run
        self._reset_plots()
        self._total = cfg.steps
        self._saved_path, self._saved_step = None, -1
        self._status_main = ""
        self.progress.setRange(0, cfg.steps)
        self.progress.setValue(0)
        self.status_label.setText("Starting: loading the data, building the model…")
        self.output_label.setText(f"Run folder: {run_dir}")
        self.output_label.setToolTip(str(run_dir))
        self.strip.caption_extra = f"  ·  DDIM {cfg.sample_steps} steps, seed {cfg.sample_seed}"
        self._set_state("running")
        self._job = run_job(run.make_gen, run.convert, observe=run.observe,
                            on_progress=lambda p, r=run: self._on_progress(r, p),
                            on_finished=lambda p, r=run: self._on_finished(r),
                            on_failed=lambda m, r=run: self._on_failed(r, m),
                            on_cancelled=lambda r=run: self._on_cancelled(r),
                            on_paused=lambda r=run: self._on_paused(r),
                            max_rate=LIVE_RATE, error_text=_error_text)

    def pause(self):
        if self._state == "running" and self._job is not None:
            self._job.worker.pause()
            self._set_state("pausing")
            self._refresh_status()

    def resume(self):
        if self._state == "paused" and self._job is not None:
            self._set_state("running")
            self._refresh_status()
            self._job.worker.resume()

    def stop(self):
        """Save the state at the current step and end the run (the worker finishes the step)."""
        if self._state not in ("running", "pausing", "paused") or self._job is None:
            return
        self._run.request(("checkpoint",), ("stop",))
        self._set_state("stopping")
        self._refresh_status()
        self._job.worker.resume()

    def _ask(self, *actions):
        """A request to the run at the next step boundary; while paused, let the worker take just
        the generator's answer and pause again."""
        self._run.request(*actions)
        if self._state == "paused":
            self._job.worker.resume(steps=1)

    def sample_now(self):
        if self._state in ("running", "paused"):
            self._ask(("sample",))

    def choose_save_dir(self) -> str | None:
        """Ask where to save the model (patched in tests). None: cancelled."""
        last = self.ctx.settings.value("train/last_save_parent", str(Path.home()))
        cfg = self._run.cfg if self._run is not None else self.config()
        name = f"ddpm-{'digits' if cfg.data == 'digits' else Path(cfg.data).name}-{cfg.size}px-{cfg.preset}"
        path, _ = QFileDialog.getSaveFileName(self, "Save the model as a folder", str(Path(last) / name),
                                              "Model folder (*)", options=QFileDialog.DontConfirmOverwrite)
        return path or None

    def save_model(self, dest: str | None = None):
        """Write the model (a diffusers pipeline folder with its model card) to ``dest`` (asked
        when None). While training this saves the state at the current step first."""
        if self._run is None or self._state not in ("running", "paused", "idle"):
            return
        dest = dest or self.choose_save_dir()
        if not dest:
            return
        self.ctx.settings.setValue("train/last_save_parent", str(Path(dest).expanduser().parent))
        if self._state in ("running", "paused"):
            self._ask(("checkpoint",), ("export", dest))
            self._refresh_status(f"Saving to {dest} after this step…")
            return
        run_dir = self._run.run_dir

        def done(path):
            self._on_saved(str(path), self._step)

        self._side(call_in_background(lambda: export_model(run_dir, dest), on_done=done,
                                      on_failed=lambda m: self.ctx.error.emit("Cannot save the model", m),
                                      error_text=_error_text))

    def use_model(self):
        """Switch the app's model (Reverse and Loss panels) to this run's current weights."""
        if self._run is None:
            return
        if self._state in ("running", "paused"):
            self._ask(("checkpoint",), ("use",))
            return
        if self._state == "idle":
            path = self._saved_path if self._saved_step == self._step and self._saved_path else None
            self.ctx.load_model(path or str(self._run.run_dir))

    # ---- worker callbacks (GUI thread)
    def _on_progress(self, run, p):
        if run is not self._run:
            return
        self._step = p["step"]
        self._last_rate = p["rate"]
        self._elapsed = p["elapsed"]
        steps, losses = p["hist"]
        if len(steps):
            self._append_loss(steps, losses)
        self._bucket = p["bucket"]
        self._draw_buckets()
        for step, grid, buckets in p["grids"]:
            self.strip.add(step, grid, buckets)
        for e in p["events"]:
            self._on_event(e)
        self.progress.setValue(min(p["step"], self.progress.maximum()))
        self._update_status(p)

    def _on_event(self, e):
        kind = e["kind"]
        if kind == "timing":
            self._timings[f"{self._run.cfg.preset}/{self._run.cfg.size}/{self._run.cfg.channels}/"
                          f"{self._run.cfg.batch_size}"] = e["s_per_step"]
            self._update_estimate()
        elif kind == "saved":
            self._on_saved(e["path"], e["step"])
        elif kind == "use":
            self.ctx.load_model(e["path"])
            self.ctx.status.emit(f"Using the training run's model at step {e['step']:,}")
        elif kind == "error":
            self.ctx.error.emit(e["title"], e["message"])
        self._update_buttons()

    def _on_saved(self, path: str, step: int):
        self._saved_path, self._saved_step = path, step
        self.output_label.setText(f"Saved (step {step:,}) to {path}")
        self.output_label.setToolTip(path)
        self.ctx.status.emit(f"Model saved to {path}")
        self.model_saved.emit(path)

    def _update_status(self, p):
        rate = p["rate"]
        left = (p["total"] - p["step"]) / rate if rate > 0 else None
        smooth = f" (smoothed {self._loss_s.data[-1]:.4f})" if self._loss_s.n else ""
        self._status_main = (f"step {p['step']:,} of {p['total']:,}  ·  loss {p['loss']:.4f}{smooth}\n"
                             f"{rate:.1f} steps/s  ·  {_fmt_s(p['elapsed'])} elapsed  ·  "
                             f"{'done' if p['step'] >= p['total'] else 'ETA ' + _fmt_s(left)}")
        self._refresh_status()

    def _refresh_status(self, note: str = ""):
        note = note or {"pausing": "Pausing after this step…", "paused": "Paused.",
                        "stopping": "Stopping: saving this step…"}.get(self._state, "")
        self.status_label.setText("\n".join(x for x in (self._status_main, note) if x))

    def _on_paused(self, run):
        if run is not self._run:
            return
        if self._state in ("pausing", "running", "paused"):
            self._set_state("paused")
            self._refresh_status()
            if run.pending_requests():   # asked for while pausing: take just the answer
                self._job.worker.resume(steps=1)

    def _end(self, run, how: str):
        if run is not self._run:
            return
        for e in run.drain_events():
            self._on_event(e)
        self._job = None
        self._set_state("idle")
        self.run_ended.emit(how)

    def _on_finished(self, run):
        if run is not self._run:
            return
        done = self._step >= self._total
        self.status_label.setText(
            f"{'Finished' if done else 'Stopped'} at step {self._step:,} after {_fmt_s(self._elapsed)}; "
            f"loss {self._loss_s.data[-1] if self._loss_s.n else float('nan'):.4f} (smoothed).")
        self._end(run, "finished" if done else "stopped")

    def _on_failed(self, run, msg):
        if run is not self._run:
            return
        self.status_label.setText(f"Failed: {msg}")
        self.ctx.error.emit("Training failed", msg)
        self._end(run, "failed")

    def _on_cancelled(self, run):
        if run is not self._run:
            return
        self.status_label.setText(f"Cancelled at step {self._step:,}.")
        self._end(run, "stopped")

    # ================================================================ plots
    def _reset_plots(self):
        self._steps.clear()
        self._loss.clear()
        self._loss_s.clear()
        self._smooth, self._smooth_n = None, 0
        self._x_forced = False
        self._step = 0
        self._bucket = np.full(10, np.nan)
        self.raw_curve.setData([], [])
        self.smooth_curve.setData([], [])
        self.bucket_ref.setData([], [])
        self.step_line.setVisible(False)
        self._draw_buckets()
        self.strip.clear()

    def _append_loss(self, steps, losses):
        logs = np.log(np.maximum(losses, 1e-12))
        out = np.empty_like(logs)
        s, n = self._smooth or 0.0, self._smooth_n
        for k, v in enumerate(logs):     # bias-corrected EMA of log loss (a geometric mean)
            s = SMOOTH_BETA * s + (1 - SMOOTH_BETA) * v
            n += 1
            out[k] = math.exp(s / (1 - SMOOTH_BETA ** n))
        self._smooth, self._smooth_n = s, n
        self._steps.extend(steps)
        self._loss.extend(losses)
        self._loss_s.extend(out)
        x = self._steps.data
        self.raw_curve.setData(x, self._loss.data)
        self.smooth_curve.setData(x, self._loss_s.data)
        vb = self.loss_plot.getPlotItem().getViewBox()
        if x[-1] < MIN_X_STEPS:                  # a point or two: a sensible axis, not 0.6..1.4
            vb.setXRange(0, MIN_X_STEPS, padding=0.02)
        elif not vb.autoRangeEnabled()[0] and self._x_forced:
            vb.enableAutoRange(x=True)
        self._x_forced = x[-1] < MIN_X_STEPS

    def _draw_buckets(self):
        h = np.nan_to_num(np.asarray(self._bucket, float), nan=0.0)
        self.bars.setOpts(height=h)
        cur = self.strip.current()
        top = float(np.max(h)) if h.size else 0.0
        if cur is not None and np.isfinite(cur[2]).any():
            top = max(top, float(np.nanmax(cur[2])))
        if top > 0:
            self.bucket_plot.setYRange(0, top * BUCKET_HEADROOM, padding=0)

    def _grid_selected(self, step: int):
        cur = self.strip.current()
        self.step_line.setValue(step)
        self.step_line.setVisible(True)
        if cur is not None:
            centres = (np.arange(len(cur[2])) + 0.5) * BUCKETS_T / len(cur[2])
            ok = np.isfinite(cur[2])
            self.bucket_ref.setData(centres[ok], cur[2][ok])
            self.bucket_leg.items[-1][1].setText(f"at step {step:,}")
        self._draw_buckets()

    # ================================================================ app contract
    def ask_save_on_close(self) -> str:
        """"save", "discard" or "cancel" (patched in tests)."""
        running = self._state != "idle"
        text = ("Training is running. Save the model before closing?" if running else
                "The trained model has not been saved. Save it before closing?")
        box = QMessageBox(QMessageBox.Question, "Save the trained model?", text,
                          QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, self)
        box.setDefaultButton(QMessageBox.Save)
        r = box.exec()
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(r, "cancel")

    def is_unsaved(self) -> bool:
        """Training is running, or a run has trained steps that were not saved by the user."""
        if self._state != "idle":
            return True
        return self._run is not None and self._step > 0 and self._saved_step != self._step

    def maybe_close(self) -> bool:
        """Asked before the window closes: offers to save a running or unsaved model. False
        keeps the window open."""
        if not self.is_unsaved():
            return True
        answer = self.ask_save_on_close()
        if answer == "cancel":
            return False
        if answer == "discard":
            return True
        dest = self.choose_save_dir()
        if not dest:
            return False
        try:
            self.save_now(dest)
        except (OSError, ValueError) as e:
            QMessageBox.warning(self, "Cannot save the model", str(e))
            return False
        return True

    def save_now(self, dest: str) -> str:
        """Save synchronously (at close): stop a running run at its current step, then copy."""
        if self._job is not None and self._state != "idle":
            job, run = self._job, self._run
            run.request(("checkpoint",), ("export", dest), ("stop",))
            job.worker.resume()
            job.thread.wait()
            errors = [e for e in run.drain_events() if e["kind"] == "error"]
            for e in errors:
                raise ValueError(e["message"])
            if not (Path(dest) / "model_index.json").is_file():
                raise ValueError(f"{dest}: the model was not written")
        else:
            export_model(self._run.run_dir, dest)
        self._on_saved(str(dest), self._step)
        return str(dest)

    def shutdown(self):
        """Stop (without saving) and join every thread of the panel. Idempotent."""
        self._preview_timer.stop()
        jobs = [j for j in (self._job, self._preview_job, *self._side_jobs) if j is not None]
        for j in jobs:
            j.detach()
        for j in jobs:
            j.stop(timeout_ms=None)
        self._job, self._preview_job, self._side_jobs = None, None, []
        if self._state != "idle":
            self._state = "idle"

    def save_settings(self, s: QSettings):
        s.setValue("source", self.source.currentData())
        s.setValue("folder", self._data_dir)
        s.setValue("size", int(self.size.currentData()))
        s.setValue("channels", int(self.channels.currentData()))
        s.setValue("augment", bool(self.augment.isChecked()))
        s.setValue("preset", self.preset.currentData())
        s.setValue("batch", self.batch.value())
        s.setValue("lr", self.lr.value())
        s.setValue("steps", self.steps.value())
        s.setValue("ema", self.ema.value())
        s.setValue("seed", self.seed.value())
        s.setValue("sample_every", self.sample_every.value())
        s.setValue("sample_steps", self.sample_steps.value())
        s.setValue("sample_n", int(self.sample_n.currentData()))
        s.setValue("sample_seed", self.sample_seed.value())
        s.setValue("timings", ";".join(f"{k}={v:.6g}" for k, v in self._timings.items()))

    def restore_settings(self, s: QSettings):
        def get(key, kind, default):
            try:
                v = s.value(key, default)
                if kind is bool:
                    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
                return kind(v)
            except (TypeError, ValueError):
                return default

        def pick(combo, value):
            k = combo.findData(value)
            if k >= 0:
                combo.setCurrentIndex(k)

        folder = get("folder", str, "")
        if folder and Path(folder).is_dir():
            self._data_dir = folder
            self.folder.setText(folder)
            self.folder.setToolTip(folder)
        pick(self.source, get("source", str, "digits") if (folder and Path(folder).is_dir()) else "digits")
        pick(self.size, get("size", int, 16))
        pick(self.channels, get("channels", int, 1))
        self.augment.setChecked(get("augment", bool, True))
        pick(self.preset, get("preset", str, "small"))
        self.batch.setValue(get("batch", int, 128))
        self.lr.setValue(get("lr", float, 2e-3))
        self.steps.setValue(get("steps", int, 10000))
        self.ema.setValue(get("ema", float, 0.999))
        self.seed.setValue(get("seed", int, 0))
        self.sample_every.setValue(get("sample_every", int, 250))
        self.sample_steps.setValue(get("sample_steps", int, 25))
        pick(self.sample_n, get("sample_n", int, 16))
        self.sample_seed.setValue(get("sample_seed", int, 0))
        for part in str(s.value("timings", "") or "").split(";"):
            k, _, v = part.partition("=")
            try:
                if k and float(v) > 0:
                    self._timings[k] = float(v)
            except ValueError:
                continue
        self._update_source()
        self._update_estimate()

    def export_sources(self):
        """For the Export dialog: the sample grids of the run (a GIF of the model learning), the
        data preview, and the two plots (PNG / SVG / CSV)."""
        from ..export_sources import FramesSource, PlotSource

        def strip():
            if not self.strip.grids:
                return [], []
            return ([g for _, g, _ in self.strip.grids],
                    [f"step {s:,}" for s, _, _ in self.strip.grids])

        def preview():
            img = self.preview.image()
            return [] if img is None else [img]

        return [FramesSource("Training samples (every grid of the run)", fn=strip,
                             name="training-samples"),
                FramesSource("Training data preview", fn=preview, name="training-data"),
                PlotSource("Training loss plot", self.loss_plot, name="training-loss"),
                PlotSource("Training loss per timestep bucket", self.bucket_plot,
                           name="training-buckets")]


def data_preview(cfg, n: int = 64):
    """``(uint8 grid, number of images)``: ``n`` images of the training set picked with a fixed
    seed, at the training size and channels, shifted like the training batches when
    ``cfg.augment``."""
    import torch

    from ...core.images import to_uint8
    from ...models.train import load_dataset, random_shift
    data = load_dataset(cfg)
    g = torch.Generator().manual_seed(1234)
    k = min(n, len(data))
    idx = torch.randperm(len(data), generator=g)[:k]
    x = torch.from_numpy(data)[idx]
    if cfg.augment:
        x = random_shift(x, g)
    return tile(to_uint8(x), pad=1), len(data)
