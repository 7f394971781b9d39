"""The 2-D lab's learned denoiser: a small MLP epsilon-network and its training generator.

:class:`EpsMLP` maps ``(x [B, 2], i LongTensor [B])`` to eps ``[B, 2]`` (``i = t - 1``, the
paper's step ``t = i + 1``), so it is a *model* for the core samplers as it is. Its time
embedding is sinusoidal in ``t / T``; a few residual blocks each add a projection of it.

:func:`train_steps` is the training loop as a generator (DDPM's simple loss,
``||eps - eps_theta(x_t, t)||^2`` with ``t`` uniform; L_hybrid for a learned variance), yielding a :class:`TrainMetrics` every
``report_every`` steps; whoever iterates it pauses by not asking for the next item and stops by
dropping it. Tiny networks run fastest on one thread (with two busy cores a small MLP fell from
293 to 1.5 steps/s), so every chunk of steps runs under :func:`one_thread`, which restores the
caller's thread count before yielding.
"""
from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from .bound_estimators import vb_rows_nats
from .diffusion import GaussianDiffusion
from .vlb import hybrid_loss, hybrid_terms

BUCKETS = 10       # loss per t bucket: bucket b holds t in (b T / 10, (b + 1) T / 10]


@contextmanager
def one_thread():
    """Run the block with one intra-op torch thread in the calling thread; restore its previous
    count after. Other threads keep theirs (:func:`~diffusion_gui.core.threads.limit_this_thread`);
    where that cannot be done, the process-wide count is changed for the block instead."""
    from .threads import limit_this_thread

    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    local = limit_this_thread(1)
    if not local:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if local:
            limit_this_thread(before)
        else:
            torch.set_num_threads(before)


class _Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1, self.fc2, self.time = nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, h, temb, inverse=None):
        """``temb`` ``[U, W]`` of the batch's distinct timesteps; ``inverse`` ``[B]`` picks each
        row's (None: one row of temb a row of h)."""
        tt = self.time(temb)
        return h + self.fc2(torch.nn.functional.silu(self.fc1(self.norm(h)) + (tt if inverse is None else tt[inverse])))


class EpsMLP(nn.Module):
    """eps_theta(x_t, t) for 2-D points: ``width`` hidden units, ``depth`` residual blocks.
    ``timesteps``: T of the schedule it is trained on (the embedding sees ``t / T``).
    ``learned_variance``: 4 outputs, ``(eps [2], v [2])``, for a ``learned_range`` diffusion."""

    def __init__(self, timesteps: int = 1000, width: int = 128, depth: int = 3, emb: int = 32,
                 learned_variance: bool = False):
        super().__init__()
        self.timesteps, self.emb = int(timesteps), int(emb)
        self.learned_variance = bool(learned_variance)
        half = emb // 2
        self.register_buffer("freqs", torch.exp(-math.log(1000.0) * torch.arange(half) / half) * 1000.0,
                             persistent=False)
        self.temb = nn.Sequential(nn.Linear(emb, width), nn.SiLU(), nn.Linear(width, width))
        self.inp = nn.Linear(2, width)
        self.blocks = nn.ModuleList(_Block(width) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, 4 if learned_variance else 2))

    def forward(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, 2]``, ``i`` ``[B]`` (``i = t - 1``) -> eps ``[B, 2]`` (``[B, 4]`` with a
        learned variance: eps, then v). The time embedding
        and its projections are computed once per distinct timestep of the batch (a sampler's
        batch has one: 10,000 points cost 40 % less than with one embedding a point)."""
        ii = torch.as_tensor(i, device=x.device).reshape(-1)
        if ii.numel() == 1 and x.shape[0] > 1:
            ii = ii.expand(x.shape[0])
        uniq, inverse = torch.unique(ii, return_inverse=True)
        t = (uniq.to(x.dtype) + 1) / self.timesteps
        ang = t[:, None] * self.freqs.to(x.dtype)[None, :]
        temb = self.temb(torch.cat([ang.sin(), ang.cos()], 1))
        h = self.inp(x)
        for b in self.blocks:
            h = b(h, temb, inverse)
        return self.out(h)


class Sampled:
    """An MLP wrapped for the samplers: eval mode, no grad, one thread, x's dtype."""

    def __init__(self, net: nn.Module):
        self.net = net

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, i) -> torch.Tensor:
        with one_thread():
            return self.net(x.to(torch.float32), i).to(x.dtype)


@dataclass
class TrainMetrics:
    """One report of :func:`train_steps`. step: steps done in all (1-based); loss: mean loss over
    the steps since the last report (L_hybrid for a learned variance); bucket_loss: float
    ``[BUCKETS]``, a running (EMA) eps MSE per t bucket (NaN until a bucket is seen); elapsed_s / steps_per_s: of this call."""

    step: int
    loss: float
    bucket_loss: np.ndarray
    elapsed_s: float
    steps_per_s: float


@dataclass
class TrainState:
    """What training carries between calls of :func:`train_steps`: the net, its EMA copy (what
    is sampled), the optimizer, the step count and the running loss per bucket."""

    net: EpsMLP
    ema: EpsMLP
    opt: torch.optim.Optimizer
    step: int = 0
    bucket_loss: np.ndarray | None = None

    @classmethod
    def new(cls, timesteps: int, *, width: int = 128, depth: int = 3, lr: float = 1e-3,
            seed: int = 0, learned_variance: bool = False) -> "TrainState":
        torch.manual_seed(seed)
        net = EpsMLP(timesteps, width, depth, learned_variance=learned_variance)
        ema = copy.deepcopy(net).requires_grad_(False).eval()
        return cls(net, ema, torch.optim.Adam(net.parameters(), lr=lr), 0, np.full(BUCKETS, np.nan))


def point_loss(diffusion: GaussianDiffusion, out: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor,
               i: torch.Tensor, eps: torch.Tensor, weight=None) -> torch.Tensor:
    """The training loss per point ``[B]`` of a network output ``out`` (``[B, D]``, or ``[B, 2D]``
    with a learned variance) for points ``x0``/``x_t``/``eps`` ``[B, D]`` at indices ``i`` ``[B]``:
    the eps MSE per coordinate (times ``weight`` ``[B]`` if given: L_simple is all ones) and, for
    a ``learned_range`` diffusion, L_hybrid's ``0.001 T L_{t-1}`` with the term in nats/dim
    (:func:`~diffusion_gui.core.bound_estimators.vb_rows_nats`) seeing the eps half detached, so
    that it trains the variance only (improved DDPM)."""
    if diffusion.learned_variance:
        mse, vb = hybrid_terms(diffusion, out, x0, x_t, i, eps, vb_term=vb_rows_nats)
        return hybrid_loss(mse if weight is None else weight * mse, vb, diffusion.num_timesteps)
    loss = ((out - eps) ** 2).mean(1)
    return loss if weight is None else weight * loss


def train_steps(state: TrainState, diffusion: GaussianDiffusion, data: Callable[[], torch.Tensor],
                *, max_steps: int | None = None, seconds: float | None = None, batch: int = 256,
                ema_decay: float = 0.995, report_every: int = 10,
                generator: torch.Generator | None = None) -> Iterator[TrainMetrics]:
    """Train ``state`` on batches ``data()`` (float32 ``[batch, 2]``, called each step, so the data
    may change between reports) for ``max_steps`` more steps and/or ``seconds`` (neither: until
    the consumer stops iterating). Yields :class:`TrainMetrics` every ``report_every`` steps and at
    the end. A ``learned_range`` ``diffusion`` trains a 4-output net with L_hybrid
    (:func:`point_loss`)."""
    T = diffusion.num_timesteps
    sab = diffusion.schedule.sqrt_alpha_bars.to(torch.float32)
    s1m = diffusion.schedule.sqrt_one_minus_alpha_bars.to(torch.float32)
    ema_params = list(state.ema.parameters())
    net_params = list(state.net.parameters())
    t0, done, acc, n_acc = time.perf_counter(), 0, 0.0, 0
    state.net.train()
    while True:
        with one_thread():
            for _ in range(report_every):
                if (max_steps is not None and done >= max_steps) or (
                        seconds is not None and time.perf_counter() - t0 >= seconds):
                    break
                x0 = data()
                i = torch.randint(0, T, (x0.shape[0],), generator=generator)
                eps = torch.randn(x0.shape, generator=generator)
                x_t = sab[i, None] * x0 + s1m[i, None] * eps
                out = state.net(x_t, i)
                per = point_loss(diffusion, out, x0, x_t, i, eps)
                loss = per.mean()
                state.opt.zero_grad(set_to_none=True)
                loss.backward()
                state.opt.step()
                with torch.no_grad():
                    decay = min(ema_decay, (1 + state.step) / (10 + state.step))
                    torch._foreach_lerp_(ema_params, net_params, 1.0 - decay)
                # per t: the eps MSE (comparable with the floor E||eps - eps*||^2, also for L_hybrid)
                _update_buckets(state, i, ((out[:, :x0.shape[1]].detach() - eps) ** 2).mean(1), T)
                state.step += 1
                done += 1
                acc += float(loss.detach())
                n_acc += 1
        finished = (max_steps is not None and done >= max_steps) or (
            seconds is not None and time.perf_counter() - t0 >= seconds)
        if n_acc:
            el = time.perf_counter() - t0
            yield TrainMetrics(state.step, acc / n_acc, state.bucket_loss.copy(), el, done / max(el, 1e-9))
            acc, n_acc = 0.0, 0
        if finished:
            return


def _update_buckets(state: TrainState, i: torch.Tensor, per: torch.Tensor, T: int, beta: float = 0.98):
    b = (i * BUCKETS // T).numpy()
    sums = np.bincount(b, weights=per.numpy().astype(np.float64), minlength=BUCKETS)
    counts = np.bincount(b, minlength=BUCKETS)
    seen = counts > 0
    mean = np.where(seen, sums / np.maximum(counts, 1), np.nan)
    old = state.bucket_loss
    state.bucket_loss = np.where(seen, np.where(np.isnan(old), mean, beta * old + (1 - beta) * mean), old)
