"""The reverse panel's session: one sampling run, its recorded trajectory, and what is shown of it.

The sampler is :func:`~diffusion_gui.sessions.sampling.make_sampler`, the very generator
``diffusion-gui sample`` iterates, so the GUI and the CLI compute the same images for the same
model, sampler and seed; a trajectory is exported through the same frame selection
(:func:`~diffusion_gui.export.timeline.pick_frames`) and the same composer
(:func:`~diffusion_gui.export.frames.trajectory_frame`) as ``sample --gif``.

A :class:`ReverseRun` is driven by a worker thread (``make_gen``, ``observe`` for every item,
``convert`` for an item that is shown) and read by the GUI thread (``traj``, ``kind``,
``original``):

- every item is checked for NaN / infinity (:class:`~diffusion_gui.errors.NonFiniteError`
  stops the run); the steps the trajectory plan keeps are converted to uint8 and recorded
  :data:`RECORD_BATCH` at a time (and whenever a frame is shown, the run pauses or ends);
- a shown item is converted to uint8 grids in the worker thread.

**Trajectory memory.** Frames are stored as uint8 ``[B, H, W, C]`` (x_t and x0_pred), at most
:data:`TRAJECTORY_BUDGET_MB` MB per run. When a run has more frames than fit, the plan (fixed at
the first step, when the frame size is known) keeps an even subset of the early frames plus
*every* one of the last quarter of the budget (the end of a run, where the picture settles, is
never decimated); the first and the final frame are always kept. :func:`keep_plan` is the rule.

Timesteps are the paper's ``t``: ``t = T`` noise ... ``t = 0`` the sample; arrays ``i = t - 1``.
"""
from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..core.images import to_uint8
from ..errors import NonFiniteError
from ..export.frames import trajectory_frame
from .finite_watch import FiniteWatch
from .sampling import SamplingParams, make_sampler
from .settings import setting
from .symbols import ABAR

__all__ = ["TRAJECTORY_BUDGET_MB", "RECORD_BATCH", "SAMPLER_KEYS", "MAX_BATCH", "ReverseSettings",
           "NonFiniteError", "keep_plan", "Frame", "Trajectory", "ReverseRun", "convert_steps",
           "model_alpha_bars", "prepare_original", "psnr", "film_slots", "nearest_slot",
           "update_formula", "guidance_text", "steps_done", "plural", "where_text", "run_text", "original_labels"]

#: Most memory one run's recorded trajectory may take (uint8 x_t and x0_pred frames), by default;
#: the panel's "Record up to" setting (``ReverseSettings.record_mb``) changes it.
TRAJECTORY_BUDGET_MB = 512
#: Kept steps are checked per step but recorded (statistics, uint8 frames) this many at a time.
RECORD_BATCH = 8
#: ... or fewer, so that the float steps waiting (and their stacked copy) stay under this many
#: bytes: 8 steps of a 256 px batch of 16 would hold 200 MB beside the budget
RECORD_BYTES = 32 * 2 ** 20
#: Most images one panel run samples at once.
MAX_BATCH = 64
#: The panel's sampler choices -> the sampler kind of :func:`make_sampler`.
SAMPLER_KEYS = {"ddpm": "ddpm", "ddpm_strided": "ddpm", "ddim": "ddim"}
_CLIP = {"": None, "on": True, "off": False}


@dataclass
class ReverseSettings:
    """The panel's controls, as stored (QSettings keys = field names).

    sampler: a key of :data:`SAMPLER_KEYS` (``'ddpm'`` runs all T steps; ``'ddpm_strided'`` and
    ``'ddim'`` run ``steps``). variance / clip: ``''`` for the model's own choice. class_label /
    guidance: a class-conditional model's class choice (``"any"``, ``"all"`` or an index) and
    guidance scale, used when ``sampling_params(conditional=True)``.
    """

    sampler: str = setting("ddpm", choices=tuple(SAMPLER_KEYS))
    steps: int = setting(50, lo=1, hi=1000)
    eta: float = setting(0.0, lo=0.0, hi=1.0)
    variance: str = setting("", choices=("", "fixed_small", "fixed_large"))
    clip: str = setting("", choices=tuple(_CLIP))
    seed: int = setting(0, lo=0, hi=2 ** 31 - 1)
    batch: int = setting(16, lo=1, hi=MAX_BATCH)
    class_label: str = setting("rows")      # class-conditional models: "any", "rows", "all", an index
    guidance: float = setting(2.0, lo=0.0, hi=20.0)
    record_mb: int = setting(TRAJECTORY_BUDGET_MB, lo=16, hi=65536)   # the trajectory's budget

    def sampling_params(self, conditional: bool = False, device: str = "auto",
                        dtype: str = "float32") -> SamplingParams:
        """The :func:`make_sampler` parameters these controls describe (what does not apply to
        the sampler chosen is left at its neutral value), run on ``device`` in ``dtype``."""
        kind = SAMPLER_KEYS[self.sampler]
        return SamplingParams(sampler=kind, steps=None if self.sampler == "ddpm" else int(self.steps),
                              eta=float(self.eta) if kind == "ddim" else 0.0, batch=int(self.batch),
                              seed=int(self.seed), clip=_CLIP[self.clip],
                              variance=(self.variance or None) if kind == "ddpm" else None,
                              class_label=self.class_label if conditional else "any",
                              guidance=float(self.guidance) if conditional else 1.0,
                              device=device, dtype=dtype)


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

    def grids(self) -> tuple[np.ndarray, np.ndarray]:
        """The x_t and x0_pred batch grids shown side by side (uint8 ``[H', W', C]``)."""
        return trajectory_frame(self.xt, None, "xt"), trajectory_frame(None, self.x0, "x0")


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
        return f"{plural(n, 'frame')} recorded, {mb:.1f} MB"


# ------------------------------------------------------------------------------ one run
class ReverseRun:
    """Everything one run needs, used by the worker thread (``make_gen``, ``observe``, ``convert``)
    and read by the GUI thread (``traj``, ``kind``, ``original``, ``params``).

    params: :class:`SamplingParams` (or a mapping of its fields). kind: ``'generate'`` (from
    x_T) or ``'denoise'`` (``original`` uint8 ``[S, S, C]`` noised to paper step ``start_t``).
    """

    def __init__(self, model, params, *, kind: str = "generate", original=None, start_t=None,
                 budget_bytes: int = TRAJECTORY_BUDGET_MB * 2 ** 20):
        self.model = model
        self.params = SamplingParams.of(params)
        self.kind = kind
        self.original = original
        self.start_t = start_t
        self.traj = Trajectory(budget_bytes)
        self.job = None                 # the GUI's job, when a panel runs it
        self.T = int(model.num_timesteps)
        self.alpha_bars: np.ndarray | None = None   # the schedule's [T], index t - 1
        self.shape = None
        self._times: deque = deque(maxlen=32)
        self._reset_rate = False
        self._last = (None, None, None, None)   # (item, stats, xt, x0) last converted
        self._pending: list = []        # kept steps not yet recorded (flush)
        self._flush_lock = threading.Lock()
        self._watch = FiniteWatch()     # NaN / infinity: raised in the worker, never recorded

    # ---- worker thread
    def make_gen(self):
        self.alpha_bars = model_alpha_bars(self.model)
        x_start = self._noised_start() if self.kind == "denoise" else None
        gen, self.shape = make_sampler(self.model, self.params, x_start=x_start,
                                       start_t=self.start_t)
        return gen

    def _noised_start(self):
        """The original, noised to ``start_t`` with the run's seed (a stream apart from the
        sampler's): ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``."""
        import torch

        from ..core.images import to_float_array
        b = self.params.batch
        x0 = torch.from_numpy(to_float_array(self.original))[None].repeat(b, 1, 1, 1)
        g = torch.Generator().manual_seed(int(self.params.seed) + 7919)
        noise = torch.randn(x0.shape, generator=g)
        i = torch.full((b,), self.start_t - 1, dtype=torch.long)
        return self.model.diffusion.q_sample(x0, i, noise).float()

    def reset_rate(self):
        self._reset_rate = True

    def observe(self, so):
        """Every item: NaN check and timing; the steps the plan keeps are recorded in batches of
        :data:`RECORD_BATCH` (or :data:`RECORD_BYTES` of float steps; :meth:`flush`)."""
        self._watch.observe(so)
        if self._reset_rate:
            self._times.clear()
            self._reset_rate = False
        self._times.append(time.perf_counter())
        if self.traj.keep is None:
            self.traj.plan(so.num_steps, so.x_t.shape)
        if self.traj.wants(so.step):
            self._pending.append(so)
            waiting = len(self._pending) * 2 * so.x_t.numel() * so.x_t.element_size()
            if len(self._pending) >= RECORD_BATCH or waiting >= RECORD_BYTES or so.t == 0:
                self._watch.check()         # before any step of it is copied to the CPU
                self.flush()

    def flush(self):
        """Record the steps observed since the last flush, converted in one pass
        (:func:`convert_steps`). The worker calls it every :data:`RECORD_BATCH` kept steps, at
        the last step and before a shown frame is converted; the GUI thread when the worker is
        idle (paused, or the run over). Many small conversions, one per step, slowed sampling by
        several per cent on 2 cores (docs/performance.md), far more than their CPU time."""
        with self._flush_lock:
            items, self._pending = self._pending, []
            if not items:
                return
            for so, (stats, xt, x0) in zip(items, convert_steps(items)):
                self.traj.add(self._frame(so, stats, xt, x0))
            self._last = (so, stats, xt, x0)    # the last one, which a shown frame usually is

    def _frame(self, so, stats, xt, x0) -> Frame:
        return Frame(so.step, so.t, so.beta, so.sigma, self.alpha_bar(so.t), xt, x0, stats)

    def alpha_bar(self, t: int) -> float:
        """abar_t of the model's schedule at paper step ``t`` (1 at t = 0)."""
        return 1.0 if t <= 0 or self.alpha_bars is None else float(self.alpha_bars[t - 1])

    def rate(self) -> float:
        ts = self._times
        if len(ts) < 2 or ts[-1] <= ts[0]:
            return 0.0
        return (len(ts) - 1) / (ts[-1] - ts[0])

    def convert(self, so) -> dict:
        """A displayed item -> plain numpy (runs in the worker thread): the frame, its x_t and
        x0_pred grids, the rate (steps/s) and the time left (s, or None)."""
        self._watch.check()
        self.flush()
        if self._last[0] is not so:             # a step the plan does not keep
            self._last = (so, *convert_steps([so])[0])
        _, stats, xt, x0 = self._last
        rate = self.rate()
        left = max(0, so.num_steps - so.step - 1)
        f = self._frame(so, stats, xt, x0)
        gxt, gx0 = f.grids()
        return {"frame": f, "num_steps": so.num_steps, "xt": gxt, "x0": gx0, "rate": rate,
                "eta_s": left / rate if rate > 0 else None}

    # ---- GUI thread
    def final_images(self) -> np.ndarray | None:
        """uint8 [B, H, W, C] of a finished run (the t = 0 frame), else None."""
        frames = self.traj.snapshot()
        return frames[-1].xt if frames and frames[-1].t == 0 else None

    def export_sources(self) -> list:
        """What the Export dialog offers after this run: the final samples (and, for a denoise
        run, the original beside them), and the recorded trajectory as x_t, predicted x_0, or
        both side by side (:class:`~diffusion_gui.sessions.export_sources.TrajectorySource`)."""
        from .export_sources import FramesSource, TrajectorySource
        frames = self.traj.snapshot()
        if not frames:
            return []
        out = []
        last = frames[-1]
        if last.t == 0:
            grid = last.grids()[0]
            out.append(FramesSource("Reverse: final samples (grid)", [grid]))
            if self.kind == "denoise" and self.original is not None:
                out.append(FramesSource("Reverse: original and denoised", [self.original, grid],
                                        ["original", f"denoised from t = {self.start_t}"]))
        steps = [(f.t, f.xt, f.x0) for f in frames]
        for label, which in (("Reverse: trajectory of x_t", "xt"),
                             ("Reverse: trajectory of predicted x₀", "x0"),
                             ("Reverse: trajectory, x_t and predicted x₀ side by side", "both")):
            out.append(TrajectorySource(label, steps, T=self.T, alpha_bars=self.alpha_bars,
                                        which=which, n_frames=EXPORT_FRAMES))
        return out


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
    """The model's schedule's abar, float64 ``[T]`` (index ``t - 1``)."""
    ab = model.diffusion.schedule.alpha_bars
    return np.asarray(ab.detach().cpu().numpy() if hasattr(ab, "detach") else ab, dtype=np.float64)


def prepare_original(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """The forward panel's image at the model's resolution and channels: centre crop + resize
    (:func:`~diffusion_gui.core.images.resize_image`), grey for 1-channel models. uint8 [S, S, C]."""
    from PIL import Image

    from ..core.images import resize_image
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


def film_slots(steps: list[int], n_total: int, n_slots: int, live: bool = False
               ) -> tuple[list[int], int | None]:
    """The trajectory strip: for each of ``n_slots`` evenly spaced steps of the run, the index
    of the recorded frame at or just before it (-1: none yet), and, ``live`` (during a run, only
    the steps already passed are filled in), the step at which the strip gets its next frame.

    steps: the recorded frames' ``step`` (ascending); n_total: the run's frames (steps + 1).
    Afterwards (not ``live``) the strip spans what was recorded (a stopped run ends early).
    """
    if not steps:
        return [-1] * n_slots, None
    last = max(n_total - 1, steps[-1]) if live else steps[-1]
    targets = np.unique(np.round(np.linspace(steps[0], last, n_slots)).astype(int)).tolist()
    keys, upcoming = [], None
    for target in targets + [None] * (n_slots - len(targets)):
        k = -1 if target is None else bisect.bisect_right(steps, target) - 1
        if k < 0 or (live and steps[-1] < target):
            if live and target is not None and upcoming is None:
                upcoming = target
            k = -1
        keys.append(k)
    return keys, upcoming


def nearest_slot(keys: list[int], ts: list[int], k: int) -> int:
    """The strip's frame to outline for recorded frame ``k``: of the strip's ``keys`` (indices
    into the recorded frames, -1: empty), the one whose paper ``t`` (``ts[key]``) is nearest to
    ``ts[k]``; on a tie the earlier one. -1 when none (or ``k`` is not a recorded frame)."""
    if not 0 <= k < len(ts):
        return -1
    best = -1
    for key in keys:
        if 0 <= key < len(ts) and (best < 0 or abs(ts[key] - ts[k]) < abs(ts[best] - ts[k])
                                    or (abs(ts[key] - ts[k]) == abs(ts[best] - ts[k]) and key < best)):
            best = key
    return best


# ------------------------------------------------------------------------------ the words
def plural(n: int, word: str) -> str:
    """``'1 frame'``, ``'2 frames'`` (:func:`~diffusion_gui.models.examples.counted`)."""
    from ..models.examples import counted
    return counted(n, word)


def steps_done(step: int, num_steps: int) -> int:
    """Network steps done when the frame at sampler position ``step`` (0-based) is shown: its
    x0_pred came from the ``step + 1``-th network call; the final frame (``step == num_steps``,
    t = 0) needed none more. This is the one count the panel shows (run box, scrubber, bar)."""
    return max(0, min(int(step) + 1, int(num_steps)))


def where_text(t: int, step: int, num_steps: int) -> str:
    """A frame named by its paper ``t`` and the network steps done: ``'step 143 / 1000 · t = 858'``."""
    return f"step {steps_done(step, num_steps)} / {num_steps} · t = {t}"


def run_text(state: str, t: int, step: int, num_steps: int) -> str:
    """The run box's line for ``state`` in running | paused | stopped | done, at the frame of
    paper step ``t`` and sampler position ``step`` (the same words as :func:`where_text`)."""
    where = where_text(t, step, num_steps)
    if state == "running":
        return where
    if state == "paused":
        return f"paused after {where} · Step or Continue"
    if state == "stopped":
        return f"stopped after {where}"
    if state == "done":
        return f"done after {where}"
    raise ValueError(f"unknown run state {state!r}")


def original_labels(size: int, start_t: int) -> tuple[str, str]:
    """The title (rich text) and caption of a denoise run's left picture, the clean original
    (uint8 ``[S, S, C]``) the run noises to paper step ``start_t``: both say it is x_0, clean."""
    title = (f"<b>original x<sub>0</sub></b> &nbsp;<span style='color:#555'>the clean image, "
             f"{size} px</span>")
    return title, f"clean x₀ · the run starts at t = {start_t}"


#: frames a trajectory export offers by default (a 1000-step run records up to 1001: a GIF of
#: all of them is some 14 MB and 50 s long); the dialog lets the user choose more
EXPORT_FRAMES = 100


# ------------------------------------------------------------------------------ the update formula
C_X0, C_XT, C_Z = "#0072B2", "#D55E00", "#555555"


def _c(v: float, color: str) -> str:
    return f"<b style='color:{color}'>{v:.4f}</b>"


def guidance_text(params, classes) -> str:
    """How a class-conditional run's epsilon is made (rich text), or ``""`` for an unconditional
    model: ``eps_theta = eps_u + w (eps_c - eps_u)`` with the run's w and class."""
    if classes is None:
        return ""
    label = params.class_label
    what = ("no class (unconditional)" if label == "any" else
            "class k mod N in sample k" if label == "all" else "one class a row" if label == "rows"
            else f"class {classes.names[int(label)]}")
    w = float(params.guidance) if label != "any" else 0.0
    return (f"&epsilon;<sub>&theta;</sub> = &epsilon;<sub>u</sub> + <b>{w:g}</b>&thinsp;(&epsilon;<sub>c</sub>"
            f" &minus; &epsilon;<sub>u</sub>), {what}")


def update_formula(f: Frame, kind: str, abar=None, guided: str = "") -> str:
    """The step that leaves ``x_t``, with this frame's numbers (rich text).

    DDPM: ``x_{t'} = c0 x0_pred + ct x_t + sigma z`` (the posterior mean of q(x_{t'} | x_t, x_0) with
    x_0 predicted); DDIM: ``x_{t'} = sqrt(abar_{t'}) x0_pred + sqrt(1 - abar_{t'} - sigma^2) eps + sigma z``.
    ``t'`` is the next visited step (``t - 1`` over all T steps); ``abar``: the schedule's alpha_bars;
    ``guided``: :func:`guidance_text` of a class-conditional run, added to the note.
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
    if guided:
        note += f"; {guided}"
    return f"{eq}<br><span style='color:#555'>{note}</span>"
