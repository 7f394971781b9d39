"""The Train panel's session: one training run, its history, and the files it writes.

A :class:`TrainRun` wraps :func:`diffusion_gui.models.train.train`, the generator
``diffusion-gui train`` drives, and turns the panel's requests into the generator's
``send("checkpoint")`` / ``send("sample")`` protocol. It is driven by a worker thread:

- ``observe`` (every step) records the loss of every step, the sample grids the generator draws
  every K steps (DDIM from the EMA weights, one fixed seed, so that the grids are comparable) and
  the first steps' timings; ``convert`` hands what accumulated since the last emission over as
  plain numpy (no tensor leaves the worker);
- a request (save, use, sample now, stop) is taken at the next step boundary; while the worker
  is paused it takes exactly one more item, the generator's answer, without training a step;
- Stop saves the state at the current step, draws a last grid of those weights and ends the run.

:class:`TrainSession` holds what the panel shows between payloads: the loss history
(:class:`LossHistory`, raw and smoothed), the loss per timestep bucket, the seconds per step
measured for each preset / size / channels / batch, and which step was saved where.

Every run trains into its own folder under the runs folder (:func:`runs_dir`): a diffusers
pipeline folder plus ``checkpoint/state.pt``, so ``diffusion-gui train -o RUN --resume`` can
continue it. :func:`runs_usage` says how much they take; the session removes its runs when the
user discards them (:meth:`TrainSession.discard_runs`) or cleans the folder up
(:meth:`TrainSession.clean_runs`).

The live rate and ETA are measured over the last :data:`RATE_WINDOW` steps
(:class:`RateMeter`), not over the last second, which held one step or none. Buckets are of the paper's ``t``: bucket ``k`` holds ``t`` in ``(kT/10, (k+1)T/10]``.

A run whose step would not fit in memory is refused before it starts (:func:`memory_refusal`,
:func:`check_step_memory`): a torch step cannot be interrupted, so Stop could not end it.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..core.images import tile
from ..errors import ExportError, UserError, user_message
from ..models.card import write_card
from ..models.train import BUCKETS, VARIANCES, TrainConfig, spare_core_threads
from .settings import setting
from .train_history import RATE_WINDOW, SMOOTH_BETA, Growing, LossHistory, RateMeter

__all__ = ["SMOOTH_BETA", "RATE_WINDOW", "SIZES", "GRID_SIZES", "PRESET_NOTES", "TrainSettings", "TrainRun", "TrainSession",
           "LossHistory", "Growing", "export_model", "write_card", "data_preview", "runs_dir",
           "new_run_dir", "parse_timings", "format_timings", "timing_key", "RateMeter",
           "runs_usage", "is_run_dir", "remove_run", "MEMORY_SHARE", "memory_refusal",
           "check_step_memory"]

SIZES = [8, 16, 24, 32, 48, 64]
GRID_SIZES = [4, 9, 16, 25, 36]
PRESET_NOTES = {"tiny": "16/32/32 channels, no attention", "small": "32/64/64 channels, attention",
                "medium": "64/128/128 channels, 2 layers a block, attention"}
TIMING_STEPS = 10        # clean steps timed for the seconds-per-step estimate
CHECKPOINT_EVERY = 1000  # the panel's runs save their state this often (and on every request)
PIPELINE_ITEMS = ("model_index.json", "unet", "scheduler", "model_card.md")
#: a run is refused when one step's estimated peak memory is over this share of the available
#: memory (the rest: the app, the data set, the system, and the estimate's own error)
MEMORY_SHARE = 0.8


# ------------------------------------------------------------------------------ settings
@dataclass
class TrainSettings:
    """The panel's settings (QSettings keys = field names). ``timings`` is the stored form of
    :attr:`TrainSession.timings` (:func:`format_timings`)."""

    source: str = setting("digits", choices=("digits", "folder"))
    folder: str = setting("")
    size: int = setting(16, choices=tuple(SIZES))
    channels: int = setting(1, choices=(1, 3))
    augment: bool = setting(True)
    conditional: bool = setting(False)           # digits only: class labels, for guidance
    label_dropout: float = setting(0.15, lo=0.0, hi=0.9)
    preset: str = setting("small", choices=tuple(PRESET_NOTES))
    variance: str = setting("fixed_small", choices=VARIANCES)    # learned_range: trained by L_hybrid
    batch: int = setting(128, lo=1, hi=1024)
    lr: float = setting(2e-3, lo=1e-5, hi=1e-1)
    steps: int = setting(10000, lo=1, hi=10_000_000)
    ema: float = setting(0.999, lo=0.0, hi=0.9999)
    seed: int = setting(0, lo=0, hi=2 ** 31 - 1)
    sample_every: int = setting(250, lo=1, hi=1_000_000)
    sample_steps: int = setting(25, lo=2, hi=1000)
    sample_n: int = setting(16, choices=tuple(GRID_SIZES))
    sample_seed: int = setting(0, lo=0, hi=2 ** 31 - 1)
    timings: str = setting("")

    def usable(self) -> "TrainSettings":
        """These settings with a folder that is no longer there dropped (source: the digits)."""
        if self.folder and Path(self.folder).is_dir():
            return self
        return replace(self, folder="", source="digits")

    @property
    def data(self) -> str:
        """``"digits"`` or the folder of images (``""`` while none is chosen)."""
        return "digits" if self.source == "digits" else self.folder

    def timing_key(self) -> str:
        return timing_key(self.preset, self.size, self.channels, self.batch)

    def config(self, out_dir="") -> TrainConfig:
        """The :class:`TrainConfig` of a run of these settings into ``out_dir``."""
        return TrainConfig(out_dir=str(out_dir or ""), data=self.data, size=self.size,
                           channels=self.channels, preset=self.preset, steps=self.steps,
                           batch_size=self.batch, lr=self.lr, ema_decay=self.ema,
                           augment=self.augment, checkpoint_every=CHECKPOINT_EVERY, seed=self.seed,
                           sample_every=self.sample_every, sample_steps=self.sample_steps,
                           sample_batch=self.sample_n, sample_seed=self.sample_seed,
                           threads=spare_core_threads(),
                           conditional=self.conditional and self.source == "digits",
                           label_dropout=self.label_dropout, variance=self.variance)


def timing_key(preset: str, size: int, channels: int, batch: int) -> str:
    """``"preset/size/channels/batch"``: what a seconds-per-step figure was measured for."""
    return f"{preset}/{size}/{channels}/{batch}"


def parse_timings(text) -> dict[str, float]:
    """``"key=seconds;key=seconds"`` -> dict; malformed or non-positive entries are skipped."""
    out = {}
    for part in str(text or "").split(";"):
        k, _, v = part.partition("=")
        try:
            if k and float(v) > 0:
                out[k] = float(v)
        except ValueError:
            continue
    return out


def format_timings(timings: dict[str, float]) -> str:
    return ";".join(f"{k}={v:.6g}" for k, v in timings.items())


# ------------------------------------------------------------------------------ folders and files
def runs_dir(app_data: str | os.PathLike | None) -> Path:
    """Where the panel's runs train: ``$DIFFUSION_GUI_RUNS``, else ``app_data/runs`` (the app's
    data folder, which the GUI looks up), else ``~/.diffusion-gui/runs``."""
    env = os.environ.get("DIFFUSION_GUI_RUNS")
    if env:
        return Path(env).expanduser()
    return Path(app_data or Path.home() / ".diffusion-gui") / "runs"


def is_run_dir(path) -> bool:
    """A folder a run made: it holds ``checkpoint/`` or a pipeline, or nothing (a run that
    never started). Only such folders are ever removed."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return False
    return ((path / "checkpoint").is_dir() or (path / "model_index.json").is_file()
            or not any(path.iterdir()))


def _folder_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                continue
    return total


def runs_usage(root, exclude=()) -> tuple[int, int]:
    """``(number of run folders, bytes they take)`` under ``root`` (0, 0 if it is missing),
    not counting the folders in ``exclude``."""
    root, skip = Path(root), {Path(d).resolve() for d in exclude}
    try:
        runs = [d for d in root.iterdir() if is_run_dir(d) and d.resolve() not in skip]
    except OSError:
        return 0, 0
    return len(runs), sum(_folder_bytes(d) for d in runs)


def remove_run(path) -> int:
    """Delete the run folder ``path`` (nothing else: see :func:`is_run_dir`); the bytes freed."""
    path = Path(path)
    if not is_run_dir(path):
        return 0
    size = _folder_bytes(path)
    shutil.rmtree(path, ignore_errors=True)
    return size if not path.exists() else 0


def _data_name(cfg: TrainConfig) -> str:
    return "digits" if cfg.data == "digits" else Path(cfg.data).name or "images"


def new_run_dir(root, cfg: TrainConfig) -> Path:
    """A folder name under ``root`` that does not exist yet: date, data, size, preset."""
    root = Path(root)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{_data_name(cfg)}-{cfg.size}px-{cfg.preset}"
    d, k = root / name, 1
    while d.exists():
        k += 1
        d = root / f"{name}-{k}"
    return d


def model_name(cfg: TrainConfig) -> str:
    """A default folder name for the saved model."""
    data = "digits" if cfg.data == "digits" else Path(cfg.data).name
    return f"ddpm-{data}-{cfg.size}px-{cfg.preset}"


def export_model(run_dir, dest) -> Path:
    """Copy the pipeline of ``run_dir`` (``model_index.json``, ``unet/``, ``scheduler/``,
    ``model_card.md``; not the training state) to the folder ``dest``, atomically: a complete
    copy is written next to it and renamed. An existing *model* folder at ``dest`` is replaced;
    any other non-empty folder is refused (:class:`~diffusion_gui.errors.ExportError`)."""
    run_dir, dest = Path(run_dir), Path(dest).expanduser()
    if not (run_dir / "model_index.json").is_file():
        raise ExportError(f"{run_dir}: nothing saved yet")
    if dest.resolve() == run_dir.resolve():
        return dest
    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir())
                                                and not (dest / "model_index.json").is_file())):
        raise ExportError(f"{dest}: exists and is not a model folder; choose a new or empty folder")
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


def data_preview(cfg: TrainConfig, n: int = 64):
    """``(uint8 grid, number of images)``: ``n`` images of the training set picked with a fixed
    seed, at the training size and channels, shifted like the training batches when
    ``cfg.augment``. A folder without images raises a :class:`~diffusion_gui.errors.UserError`."""
    import torch

    from ..core.images import to_uint8
    from ..models.train import load_dataset, random_shift, shift_edge
    data = load_dataset(cfg)
    g = torch.Generator().manual_seed(1234)
    k = min(n, len(data))
    idx = torch.randperm(len(data), generator=g)[:k]
    x = torch.from_numpy(data)[idx]
    if cfg.augment:
        x = random_shift(x, g, shift_edge(cfg))
    return tile(to_uint8(x), pad=1), len(data)


# ------------------------------------------------------------------------------ memory
def memory_refusal(cfg: TrainConfig, estimate_bytes: int, available_bytes: int) -> str | None:
    """None when one training step of ``cfg``, estimated to peak at ``estimate_bytes``
    (:func:`~diffusion_gui.models.step_memory.step_memory_bytes`), fits in :data:`MEMORY_SHARE`
    of ``available_bytes``; else the one-line reason, naming what to lower."""
    from ..models.step_memory import format_bytes
    if estimate_bytes <= MEMORY_SHARE * available_bytes:
        return None
    return (f"a training step would need about {format_bytes(estimate_bytes)} of memory, more "
            f"than {MEMORY_SHARE:.0%} of the {format_bytes(available_bytes)} available; lower the "
            f"batch ({cfg.batch_size}), the size ({cfg.size} px) or the preset ({cfg.preset})")


def check_step_memory(cfg: TrainConfig, available_bytes: int | None = None) -> int:
    """The estimated peak bytes of one step of ``cfg``; raises a
    :class:`~diffusion_gui.errors.UserError` when it does not fit (:func:`memory_refusal`) in
    ``available_bytes`` (default: what the system has available now). Builds the network once
    at batch 1 when it is not cached: a fraction of a second."""
    from ..models.step_memory import available_memory_bytes, step_memory_of
    estimate = step_memory_of(cfg)
    available = available_memory_bytes() if available_bytes is None else available_bytes
    reason = memory_refusal(cfg, estimate, available)
    if reason is not None:
        raise UserError(reason)
    return estimate


# ------------------------------------------------------------------------------ one run
class TrainRun:
    """One training run. ``make_gen``, ``observe`` and ``convert`` run in the worker thread;
    :meth:`request` is called from the GUI thread. Shared lists are guarded by a lock."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.run_dir = Path(cfg.out_dir)
        self._lock = threading.Lock()
        self._abort = threading.Event()    # abandon a sample grid being drawn (quit, a second Stop)
        self._requests: deque = deque()
        self._hist: list = []              # (step, loss) not yet handed over
        self._grids: list = []             # (step, tiled uint8 grid, bucket profile)
        self._events: list = []            # dicts for the GUI: checkpoint / saved / use / error / timing
        self._last_step = 0
        self._last_grid_step = -1
        self._times: list = []             # (step, perf_counter) of the first steps
        self._clean = True
        self.s_per_step: float | None = None
        self.last = None                   # the latest TrainMetrics (worker thread)
        self._stage: tuple[str | None, float] = ("waiting for the worker", time.perf_counter())

    def stage(self) -> tuple[str | None, float]:
        """``(what the start-up is doing, seconds since the run was asked for)``; the text is
        None once the first step is in (:func:`~diffusion_gui.models.train.train`'s stages)."""
        text, t0 = self._stage
        return text, time.perf_counter() - t0

    def _set_stage(self, text: str | None):
        self._stage = (text, self._stage[1])

    # ---- GUI thread
    def request(self, *actions):
        """Actions, done together at the next step boundary: ``("checkpoint",)`` save the state
        and the model card; ``("export", dest)`` then copy the model to ``dest``; ``("use",)``
        then tell the GUI the run folder is current; ``("stop",)`` then end the run;
        ``("sample",)`` a fresh sample grid (alone)."""
        with self._lock:
            self._requests.append(tuple(actions))

    def abort(self):
        """Abandon the sample grid being drawn, if any (any thread): quitting, or Stop pressed
        again while a big final grid is drawn, does not wait for it."""
        self._abort.set()

    def pending_requests(self) -> int:
        with self._lock:
            return len(self._requests)

    def drain_events(self) -> list:
        with self._lock:
            ev, self._events = self._events, []
        return ev

    def has_model(self) -> bool:
        return (self.run_dir / "model_index.json").is_file()

    # ---- worker thread
    def _pop(self):
        with self._lock:
            return self._requests.popleft() if self._requests else None

    def _event(self, **e):
        with self._lock:
            self._events.append(e)

    def make_gen(self):
        from ..models.train import train
        self._set_stage("starting")
        gen = train(self.cfg, on_stage=self._set_stage, cancelled=self._abort.is_set)
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
                self._attempt("Cannot write the model card", write_card, self.cfg, self.last)

    def _attempt(self, title: str, fn, *args):
        """``fn(*args)``; an error the user can act on becomes an ``error`` event (a bug raises)."""
        try:
            return fn(*args)
        except Exception as e:
            msg = user_message(e)
            if msg is None:
                raise
            self._event(kind="error", title=title, message=msg)
            return None

    def _after_save(self, m, req):
        self._attempt("Cannot write the model card", write_card, self.cfg, m)
        self._event(kind="checkpoint", step=m.step)
        for a in req:
            if a[0] == "export":
                dest = self._attempt("Cannot save the model", export_model, self.run_dir, a[1])
                if dest is not None:
                    self._event(kind="saved", path=str(dest), step=m.step)
            elif a[0] == "use":
                self._event(kind="use", path=str(self.run_dir), step=m.step)

    def observe(self, m):
        """Every item: the loss history, sample grids, the first steps' timing."""
        with self._lock:
            if m.step > self._last_step:
                self._hist.append((m.step, m.loss, m.elapsed_s))
                self._last_step = m.step
                if self.s_per_step is None:
                    self._time(m)
            if m.samples is not None:
                self._last_grid_step = m.step
                self._grids.append((m.step, tile(m.samples), np.asarray(m.bucket_loss, float)))
            self.last = m

    def _time(self, m):
        """The median seconds per step of the first :data:`TIMING_STEPS` undisturbed steps
        (no request answered, no grid drawn in between). Under the lock."""
        now = time.perf_counter()
        if self._clean and m.step >= 2 and self._times and self._times[-1][0] == m.step - 1:
            self._times.append((m.step, now))
        else:
            self._times = [(m.step, now)]
        self._clean = m.event == "step" and m.samples is None
        if len(self._times) > TIMING_STEPS:
            dts = [b[1] - a[1] for a, b in zip(self._times, self._times[1:])]
            self.s_per_step = statistics.median(dts)
            self._events.append({"kind": "timing", "s_per_step": self.s_per_step})

    def convert(self, m) -> dict:
        """The GUI's payload: the latest figures plus everything recorded since the last one."""
        with self._lock:
            hist, self._hist = self._hist, []
            grids, self._grids = self._grids, []
            events, self._events = self._events, []
        steps = np.array([h[0] for h in hist], dtype=np.int64)
        losses = np.array([h[1] for h in hist], dtype=np.float64)
        times = np.array([h[2] for h in hist], dtype=np.float64)
        return {"step": m.step, "total": m.total_steps, "loss": m.loss, "lr": m.lr,
                "rate": m.steps_per_s, "elapsed": m.elapsed_s, "event": m.event,
                "bucket": np.asarray(m.bucket_loss, dtype=np.float64),
                "hist": (steps, losses), "times": times, "grids": grids, "events": events}


class TrainSession:
    """What the Train panel does, without widgets: the current :class:`TrainRun`, the figures of
    its latest payload (``step``, ``total``, ``rate`` steps/s, ``elapsed`` s, ``bucket``: loss
    per timestep bucket, NaN where unseen), its :class:`LossHistory`, the seconds per step
    measured on this machine (``timings``), and the step last saved by the user, and where."""

    def __init__(self, root: Path):
        self.runs_dir = Path(root)
        self.run: TrainRun | None = None
        self.history = LossHistory()
        self.meter = RateMeter()
        self.timings: dict[str, float] = {}
        self.created: list[Path] = []     # the run folders this session made
        self._reset()

    def _reset(self):
        self.step, self.total, self.rate, self.elapsed = 0, 0, 0.0, 0.0
        self.meter.restart()
        self.bucket = np.full(BUCKETS, np.nan)
        self.saved_path: str | None = None
        self.saved_step = -1
        self.history.clear()

    def memory_check(self, settings: TrainSettings, estimate_bytes: int,
                     available_bytes: int) -> str | None:
        """Why a run of ``settings`` must not start (its step does not fit in memory), or None."""
        return memory_refusal(settings.config(), estimate_bytes, available_bytes)

    def begin(self, settings: TrainSettings) -> TrainRun:
        """A new run of ``settings`` in a new folder under ``runs_dir`` (``OSError`` if it
        cannot be made); the history starts again."""
        run_dir = new_run_dir(self.runs_dir, settings.config())
        run_dir.mkdir(parents=True)
        self.created.append(run_dir)
        self._reset()
        self.run = TrainRun(settings.config(run_dir))
        self.total = self.run.cfg.steps
        return self.run

    def update(self, p: dict) -> None:
        """Take in a payload of :meth:`TrainRun.convert` (its grids and events are the caller's)."""
        self.step, self.elapsed = p["step"], p["elapsed"]
        steps, losses = p["hist"]
        if len(steps):
            self.history.extend(steps, losses)
            self.meter.add(steps, p.get("times", ()))
        smoothed = self.meter.rate()
        self.rate = smoothed if smoothed is not None else p["rate"]
        self.bucket = p["bucket"]

    def eta(self) -> float | None:
        """Seconds left at the smoothed :attr:`rate`; None while unknown."""
        return max(self.total - self.step, 0) / self.rate if self.rate > 0 else None

    def resumed(self) -> None:
        """After a pause: the rate is measured afresh (the pause is no training time)."""
        self.meter.restart()

    # ---- the runs folder
    def usage(self, exclude=()) -> tuple[int, int]:
        """``(run folders, bytes)`` under :attr:`runs_dir` but ``exclude`` (:func:`runs_usage`)."""
        return runs_usage(self.runs_dir, exclude)

    def discard_runs(self) -> int:
        """Remove every run folder this session made (the user discarded them); bytes freed.
        Call it once no run is training."""
        freed = sum(remove_run(d) for d in self.created)
        self.created = [d for d in self.created if d.exists()]
        return freed

    def clean_runs(self, keep=()) -> int:
        """Remove every run folder under :attr:`runs_dir` but those in ``keep``; bytes freed."""
        keep = {Path(k).resolve() for k in keep}
        try:
            dirs = [d for d in self.runs_dir.iterdir() if d.resolve() not in keep]
        except OSError:
            return 0
        freed = sum(remove_run(d) for d in dirs)
        self.created = [d for d in self.created if d.exists()]
        return freed

    def drop_failed(self) -> None:
        """Remove the current run's folder if the run failed before saving anything."""
        if self.run is not None and not (self.run.run_dir / "checkpoint" / "state.pt").exists():
            remove_run(self.run.run_dir)

    def record_timing(self, s_per_step: float) -> None:
        """The measured seconds per step of the current run's preset / size / channels / batch."""
        c = self.run.cfg
        self.timings[timing_key(c.preset, c.size, c.channels, c.batch_size)] = float(s_per_step)

    def estimate(self, settings: TrainSettings) -> tuple[float, float] | None:
        """``(seconds per step, seconds for all steps)`` as measured here, or None."""
        s = self.timings.get(settings.timing_key())
        return None if s is None else (s, s * settings.steps)

    def mark_saved(self, path: str, step: int) -> None:
        self.saved_path, self.saved_step = path, step

    def has_model(self) -> bool:
        return self.run is not None and self.run.has_model()

    def is_unsaved(self, running: bool) -> bool:
        """Training is running, or the run has trained steps the user has not saved."""
        if running:
            return True
        return self.run is not None and self.step > 0 and self.saved_step != self.step

    def model_path(self) -> str:
        """The folder holding the run's current weights: the user's copy of this step, if any,
        else the run folder."""
        if self.saved_path and self.saved_step == self.step:
            return self.saved_path
        return str(self.run.run_dir)
