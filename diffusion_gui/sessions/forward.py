"""The forward process session: what the Forward panel computes, without Qt.

Timesteps are the **paper's** ``t``: ``t = 0`` is the clean image, ``t = T`` (nearly) pure
noise; the schedule's arrays are indexed ``i = t - 1``. Tables here indexed "by t" have ``T + 1``
entries, entry 0 being the clean image (``abar_0 = 1``).

Noise conventions (so that a test or the CLI can reproduce exactly what is shown):

* closed form: one draw ``eps = torch.randn((C, H, W), generator=torch.Generator().manual_seed(seed))``
  per image / seed / working size; ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``, i.e.
  ``GaussianDiffusion.q_sample(x0, t - 1, eps)``, computed by
  :func:`diffusion_gui.export.timeline.forward_xt`. Scrubbing changes only ``t``.
* step by step: ``x_t = q_step(x_{t-1}, t - 1, z_t)`` chained from ``x_0``, with its own noise
  ``z_1, z_2, ...`` drawn in order from ``torch.Generator().manual_seed(chain_seed(seed))``.

The chain is run once per image / seed / schedule / T / size by :func:`chain_generator` (in a
worker) into a :class:`ChainCache`: every ``x_t`` is kept as uint8 when the frames fit in
``CHAIN_BUDGET_BYTES`` (all of them up to 256 x 256 RGB at T = 1000), otherwise every
``stride``-th one. Its mean, std and histogram are recorded for *every* t from the float tensor.

torch is imported only inside the functions that need it (building the panel must not pay for it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..export.timeline import forward_coefficients, forward_xt
from .settings import setting

__all__ = ["SCHEDULES", "SIZES", "DEFAULT_SIZE", "DEFAULT_T", "MAX_T", "FILM_FRAMES",
           "HIST_BINS", "HIST_RANGE", "HIST_SAMPLE", "CHAIN_BUDGET_BYTES", "import_backend",
           "chain_seed", "draw_noise", "working_image", "hist_edges", "hist_density",
           "ForwardMath", "ChainCache", "chain_generator", "Names", "ForwardSettings", "noise_schedule"]

#: The schedule names of :data:`diffusion_gui.core.schedule.SCHEDULE_NAMES`, repeated here so
#: that building the panel does not import torch (checked against core once it is loaded).
SCHEDULES = ("linear", "scaled_linear", "quadratic", "cosine", "sigmoid")
SIZES = (64, 128, 256, 512)          # working sizes: the long side, px
DEFAULT_SIZE = 256
DEFAULT_T = 1000
MAX_T = 2000
FILM_FRAMES = 8
HIST_BINS = 97
HIST_RANGE = 4.0
HIST_SAMPLE = 65536                  # pixels sampled for the closed-form histogram
CHAIN_BUDGET_BYTES = 200 * 2 ** 20


def import_backend() -> bool:
    """Import torch and the maths the panel needs (slow: run it off the GUI thread)."""
    import torch  # noqa: F401

    from ..core import GaussianDiffusion, NoiseSchedule, images  # noqa: F401
    from ..core.schedule import SCHEDULE_NAMES
    assert tuple(SCHEDULE_NAMES) == SCHEDULES, "sessions.forward.SCHEDULES is out of date"
    return True


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

    from ..core.images import resize_image
    a = np.asarray(image, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if max(a.shape[:2]) <= size:
        return a
    im = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
    out = np.asarray(resize_image(im, max_side=int(size)), dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out


def hist_edges() -> np.ndarray:
    """The ``HIST_BINS + 1`` bin edges of the pixel histogram, ``-HIST_RANGE .. HIST_RANGE``."""
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
    ``x0``, ``eps``: float32 ``[H, W, C]``; ``a64``/``b64`` (float64) and ``a32``/``b32``
    (float32): ``sqrt(abar_t)`` and ``sqrt(1 - abar_t)`` indexed by the paper's t (``T + 1``).
    """

    def __init__(self, image: np.ndarray, seed: int, schedule):
        from ..core.images import to_float_array
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
        self.a64, self.b64 = forward_coefficients(schedule.alpha_bars.numpy())
        self.a32, self.b32 = self.a64.astype(np.float32), self.b64.astype(np.float32)

    def frame(self, t: int) -> np.ndarray:
        """uint8 ``[H, W, C]`` of ``x_t`` (bit-identical to ``to_uint8(q_sample(x0, t - 1, eps))``),
        computed in this object's scratch buffers (one call at a time)."""
        t = int(t)
        return forward_xt(self.x0, self.eps, self.a32[t], self.b32[t], out=self._buf,
                          scratch=self._tmp)

    def hist(self, t: int) -> np.ndarray:
        """Density over :func:`hist_edges` of a fixed sample of the float ``x_t``'s pixels."""
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

    def readout(self, t: int) -> dict:
        """The numbers of the formula read-out at the paper's ``t``: ``a`` = sqrt(abar_t),
        ``b`` = sqrt(1 - abar_t), ``beta``, ``alpha`` (NaN at t = 0), ``abar``, ``snr_db``."""
        t = int(t)
        out = {"a": float(self.a64[t]), "b": float(self.b64[t])}
        if t == 0:
            out.update(beta=math.nan, alpha=math.nan, abar=1.0, snr_db=math.inf)
        else:
            r = self.schedule.row(t)
            out.update(beta=r["betas"], alpha=r["alphas"], abar=r["alpha_bars"],
                       snr_db=r["snr_db"])
        return out


class ChainCache:
    """The step-by-step chain x_0 -> x_1 -> ... -> x_T of one image / seed / schedule.

    Filled by :func:`chain_generator` in a worker thread; the GUI thread reads entries
    ``t <= done`` only. ``frames[k]`` is ``x_{ts[k]}`` as uint8 ``[H, W, C]``; ``mean``, ``std``
    ``[T + 1]`` and ``hist`` ``[T + 1, HIST_BINS]`` are indexed by the paper's t.
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

    def is_complete(self) -> bool:
        return self.done >= self.T

    def nbytes(self) -> int:
        return self.frames.nbytes

    def memory_note(self) -> tuple[str, str]:
        """``(short, detail)`` about the memory the kept frames take (allocated up front), e.g.
        ``("chain cache: 188 MB", "1001 frames of 256x256x3 uint8: every x_t, t = 0..1000, ...")``."""
        _, H, W, C = self.frames.shape
        mb = self.nbytes() / 2 ** 20
        which = "every x_t" if self.stride == 1 else f"every {self.stride}th x_t (and x_T)"
        return (f"chain cache: {mb:.0f} MB",
                f"{len(self.ts)} frames of {W}\u00d7{H}\u00d7{C} uint8 kept for scrubbing: {which}, "
                f"t = 0..{self.T}, at most {CHAIN_BUDGET_BYTES / 2 ** 20:.0f} MB (a smaller "
                f"working size keeps less)")


def chain_generator(cache: ChainCache, x0_chw: np.ndarray, schedule, seed: int, sample_idx):
    """Run the chain from ``x0_chw`` (float32 ``[C, H, W]``), recording into ``cache``; yields
    each paper ``t`` done (0, 1, ..., T). Runs in a worker; ``sample_idx``: the flat pixel
    indices of the histogram."""
    import torch

    from ..core import GaussianDiffusion
    from ..core.images import to_uint8

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


class Names(tuple):
    """A tuple of names read from any stored form: one string is one name, a list or tuple
    gives its items; anything else is refused (TypeError, so the setting takes its default)."""

    def __new__(cls, raw=()):
        if isinstance(raw, str):
            raw = (raw,) if raw else ()
        elif not hasattr(raw, "__iter__"):
            raise TypeError(f"not a list of names: {raw!r}")
        return super().__new__(cls, tuple(str(x) for x in raw))


@dataclass
class ForwardSettings:
    """The Forward panel's stored choices (QSettings group ``forward``)."""

    schedule: str = setting("linear", choices=SCHEDULES)
    T: int = setting(DEFAULT_T, lo=10, hi=MAX_T)
    seed: int = setting(0, lo=0, hi=2 ** 31 - 1)
    size: int = setting(DEFAULT_SIZE, choices=SIZES)
    t: int = setting(0, lo=0, hi=MAX_T)          # clamped to 0..T when applied
    overlays: Names = setting(Names())           # schedules overlaid (dashed) on the plots


@lru_cache(maxsize=32)
def noise_schedule(name: str, T: int):
    """The :class:`~diffusion_gui.core.NoiseSchedule` ``name`` with ``T`` steps (cached; the
    panel asks for the current one and the overlays at every redraw)."""
    from ..core import NoiseSchedule
    return NoiseSchedule.from_name(name, int(T))
