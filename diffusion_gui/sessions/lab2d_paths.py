"""Particle paths of the 2-D lab (Qt-free): recorded reverse runs, traced particles, forward paths.

- :class:`Trajectory`: a preallocated float32 ``[S, N, 2]`` record of one sampler run, filled
  row by row in a worker thread while the GUI thread reads the rows already written (``count``);
  ``ts[k]`` is the paper step of row ``k`` (``ts[0]`` the start, near ``T``; ``ts[-1] = 0``).
- :class:`ReverseRun` and :func:`reverse_run`: DDPM and DDIM (eta = 0) from the **same** x_T,
  stepped in lockstep (the core samplers, one step of each per item), optionally with the
  points of a regular grid carried along by DDIM (the warped grid: the ODE's flow map).
- :func:`trace_particle`: one particle launched from any point at any paper step ``t``.
- :func:`forward_paths`: a few particles' forward chains ``x_t = sqrt(1 - beta_t) x_{t-1} +
  sqrt(beta_t) eps`` (``q_step``), ``[T + 1, K, 2]``.
- :class:`ForwardCloud`: a snapshot of the data and its fixed noise: the cloud at any t.

Timesteps: the paper's ``t`` (``t = 0`` data, ``t = T`` noise) everywhere.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ..core.sampling import sampler
from ..core.toy2d_mlp import Sampled, one_thread
from ..errors import InvalidParameter

__all__ = ["Trajectory", "ReverseRun", "reverse_run", "trace_particle", "forward_paths",
           "ForwardCloud", "grid_points", "GRID_LINES", "GRID_POINTS_PER_LINE", "run_ts"]

GRID_LINES = 15             # lines each way of the warped grid
GRID_POINTS_PER_LINE = 61
GRID_HALF = 3.0             # the regular grid covers [-3, 3]^2 at t = T


def run_ts(timesteps: int, steps: int) -> list[int]:
    """The paper steps a run of ``steps`` network calls visits, then 0 (the rows of a
    :class:`Trajectory`): every t for ``steps = T``, else the strided ones."""
    from ..core.sampling import strided_indices
    return [i + 1 for i in sorted(strided_indices(timesteps, steps), reverse=True)] + [0]


class Trajectory:
    """Rows ``[S, N, 2]`` float32 written by :meth:`add` (worker) and read up to :attr:`count`
    (GUI). One writer; a row is complete before ``count`` counts it."""

    def __init__(self, ts, n: int):
        self.ts = np.asarray(ts, dtype=np.int64)
        self.xs = np.zeros((len(self.ts), int(n), 2), np.float32)
        self.count = 0

    @property
    def n(self) -> int:
        return self.xs.shape[1]

    def add(self, x) -> None:
        """Write the next row (``x`` ``[N, 2]``, a tensor or an array)."""
        if self.count >= len(self.ts):
            raise IndexError("the trajectory is full")
        self.xs[self.count] = x.detach().numpy() if torch.is_tensor(x) else np.asarray(x)
        self.count += 1

    @property
    def complete(self) -> bool:
        return self.count == len(self.ts)

    def row_of(self, t: int) -> int:
        """The recorded row nearest to paper step ``t`` (among those written)."""
        k = max(self.count, 1)
        return int(np.argmin(np.abs(self.ts[:k] - int(t))))

    def snapshot(self) -> "Trajectory":
        """A copy of the rows written so far (for an export worker)."""
        c = Trajectory(self.ts[: self.count], self.n)
        c.xs = self.xs[: self.count].copy()
        c.count = self.count
        return c


@dataclass
class ReverseRun:
    """One reverse run: ``ddpm`` and ``ddim`` from the same ``x_T`` with one row per ``ts``;
    ``grid``: the DDIM trajectory of :func:`grid_points` (or None); ``kind``: the denoiser."""

    kind: str
    steps: int
    seed: int
    ddpm: Trajectory
    ddim: Trajectory
    grid: Trajectory | None = None

    @property
    def ts(self) -> np.ndarray:
        return self.ddpm.ts

    @property
    def count(self) -> int:
        """Rows complete in every trajectory of the run."""
        c = min(self.ddpm.count, self.ddim.count)
        return c if self.grid is None else min(c, self.grid.count)

    @property
    def complete(self) -> bool:
        return self.count == len(self.ts)


def grid_points(lines: int = GRID_LINES, per_line: int = GRID_POINTS_PER_LINE,
                half: float = GRID_HALF) -> np.ndarray:
    """A regular grid as polylines: float32 ``[2 lines, per_line, 2]`` (horizontal lines, then
    vertical), covering ``[-half, half]^2``. Flatten to ``[2 lines per_line, 2]`` to sample."""
    a = np.linspace(-half, half, lines)
    s = np.linspace(-half, half, per_line)
    horiz = np.stack([np.broadcast_to(s, (lines, per_line)), np.broadcast_to(a[:, None], (lines, per_line))], -1)
    vert = horiz[..., ::-1]
    return np.concatenate([horiz, vert]).astype(np.float32)


def frozen(model):
    """A sampler model that a concurrent training run cannot change midway: the MLP's EMA
    network copied; other models (closed forms of fixed data) as they are."""
    if isinstance(model, Sampled):
        return Sampled(copy.deepcopy(model.net))
    return model


def reverse_run(session, kind: str | None = None, *, n: int | None = None, steps: int | None = None,
                seed: int = 0, grid: bool = False):
    """``(run, items)``: a :class:`ReverseRun` (empty) and the generator that fills it, one step
    of DDPM and of DDIM (eta = 0) per item (it yields the row just written). The two samplers are
    the core ones, started from the same ``x_T ~ N(0, I)`` (``seed``) and visiting the same
    steps (``steps`` network calls each; default the settings')."""
    s = session.settings
    kind = kind or s.model
    steps = int(s.steps if steps is None else steps)
    n = int(n or s.n)
    T = session.timesteps
    if not 1 <= steps <= T:
        raise InvalidParameter("steps", f"must be in 1..{T}")
    model = frozen(session.denoiser(kind))
    ts = run_ts(T, steps)
    x_T = torch.randn((n, 2), generator=torch.Generator().manual_seed(seed))
    g_pts = torch.from_numpy(grid_points().reshape(-1, 2)) if grid else None
    run = ReverseRun(kind, steps, seed, Trajectory(ts, n), Trajectory(ts, n),
                     Trajectory(ts, len(g_pts)) if grid else None)

    def items():
        gen = torch.Generator().manual_seed(seed + 1)
        d = session.diffusion_for(kind)
        a = sampler("ddpm", model, d, (n, 2), steps=steps, generator=gen, x_start=x_T)
        x0 = x_T if g_pts is None else torch.cat([x_T, g_pts])
        b = sampler("ddim", model, d, tuple(x0.shape), steps=steps, eta=0.0, x_start=x0)
        with one_thread():          # a worker's tiny tensors: one intra-op thread
            for k, (oa, ob) in enumerate(zip(a, b)):
                run.ddpm.add(oa.x_t)
                if run.grid is not None:
                    run.grid.add(ob.x_t[n:])
                run.ddim.add(ob.x_t[:n])
                yield k
    return run, items()


def trace_particle(session, xy, t: int, kind: str | None = None, sampler_kind: str = "ddim",
                   steps: int | None = None, seed: int = 0) -> np.ndarray:
    """The path of one particle put at ``xy`` ``[2]`` at paper step ``t`` and run down to 0 with
    ``sampler_kind`` (DDPM or DDIM eta = 0; ``steps`` the run's steps, the remaining ones are
    taken). Float32 ``[L, 2]``, ``path[0] = xy``, ``path[-1]`` the sample; ``t = 0``: ``[1, 2]``."""
    xy = np.asarray(xy, np.float32).reshape(1, 2)
    t = int(t)
    if t == 0:
        return xy.copy()
    model = frozen(session.denoiser(kind))
    gen = sampler(sampler_kind, model, session.diffusion_for(kind), (1, 2), steps=steps or session.settings.steps,
                  eta=0.0, x_start=torch.from_numpy(xy), start_t=_check_t(session, t),
                  generator=torch.Generator().manual_seed(seed))
    return np.stack([o.x_t[0].numpy() for o in gen]).astype(np.float32)


def _check_t(session, t: int) -> int:
    if not 1 <= t <= session.timesteps:
        raise InvalidParameter("t", f"must be in 0..{session.timesteps}")
    return t


def forward_paths(data: np.ndarray, diffusion, k: int = 6, seed: int = 0) -> np.ndarray:
    """The forward chains of ``k`` data points (the first ``k`` of a seeded permutation of
    ``data`` ``[N, 2]``): float32 ``[T + 1, k, 2]``, row ``t`` the paper step ``t``
    (``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)``)."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(data))[: min(k, len(data))]
    betas = diffusion.schedule.betas.numpy()
    eps = rng.standard_normal((len(betas), len(pick), 2))
    out = np.empty((len(betas) + 1, len(pick), 2))
    out[0] = data[pick]
    for i, b in enumerate(betas):
        out[i + 1] = np.sqrt(1 - b) * out[i] + np.sqrt(b) * eps[i]
    return out.astype(np.float32)


class ForwardCloud:
    """A snapshot of the data ``[N, 2]``, its fixed noise and the schedule's alpha_bar: the cloud
    ``sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` at any paper step (:meth:`at`), thread-safe
    (copies only). The same points as :meth:`Lab2DSession.forward` with this ``seed``."""

    def __init__(self, data, alpha_bars, seed: int = 0):
        self.data = np.array(data, dtype=np.float32)
        self.eps = np.random.default_rng(seed).standard_normal(self.data.shape)
        self.abar = np.concatenate([[1.0], np.asarray(alpha_bars, np.float64)])
        self.T = len(self.abar) - 1

    def at(self, t: int) -> np.ndarray:
        a = self.abar[int(t)]
        return (np.sqrt(a) * self.data + np.sqrt(1 - a) * self.eps).astype(np.float32)
