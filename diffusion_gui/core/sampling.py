"""Reverse-process samplers as generators.

Each sampler yields one :class:`StepOutput` per network evaluation, *before* stepping: ``x_t`` at
the paper's step ``t`` together with ``x0_pred``, the clean image predicted from it; then a last
``StepOutput`` with ``t = 0`` and ``x_t = x0_pred = x_0``. A consumer that stops iterating stops
before the next network call. :func:`run` exhausts a sampler and returns ``x_0``.

A *model* is any callable ``model(x [B, C, H, W], i LongTensor [B]) -> output [B, C, H, W]``
where ``i = t - 1`` is the index of the original (training) schedule. ``device`` is where
``x_t`` lives and the model is called; the noise comes from ``generator`` (a CPU one: the same
images on every device, :mod:`.devices`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from .diffusion import GaussianDiffusion

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class StepOutput:
    """One frame of a reverse trajectory.

    t: the paper's step of ``x_t`` (``T`` = noise ... ``0`` = clean). x_t, x0_pred: ``[B, C, H, W]``.
    step: 0-based position in this run; num_steps: network calls in the run (frames = num_steps + 1).
    beta, sigma: the schedule's ``beta_t`` and the std of the noise added when leaving ``x_t``.
    """

    t: int
    x_t: torch.Tensor
    x0_pred: torch.Tensor
    step: int
    num_steps: int
    beta: float = 0.0
    sigma: float = 0.0


def strided_indices(timesteps: int, num_steps: int) -> list[int]:
    """Evenly spaced indices ``0 <= i < T``, increasing (diffusers' "leading" spacing, which is
    improved-diffusion's ``space_timesteps(T, "ddimN")`` when N divides T)."""
    if not 1 <= num_steps <= timesteps:
        raise ValueError(f"steps must be in 1..{timesteps}")
    if timesteps % num_steps == 0:
        return list(range(0, timesteps, timesteps // num_steps))
    return sorted({round(k * (timesteps - 1) / max(num_steps - 1, 1)) for k in range(num_steps)})


def _start(indices: Sequence[int], start_t: int | None, timesteps: int) -> list[int]:
    """Indices to visit, highest first, beginning at paper step ``start_t`` when given."""
    desc = sorted(indices, reverse=True)
    if start_t is None:
        return desc
    if not 1 <= start_t <= timesteps:
        raise ValueError(f"start_t must be in 1..{timesteps}, not {start_t}")
    i0 = start_t - 1
    return [i0] + [k for k in desc if k < i0]


def _noise(shape, generator, device, dtype):
    """Noise drawn on the generator's device (the CPU for every caller of ours) and moved to
    ``device``: the same seed gives the same noise whichever device the network runs on."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)


def _init(shape, x_start, generator, device, dtype):
    if x_start is not None:
        return x_start.to(device=device, dtype=dtype)
    return _noise(shape, generator, device, dtype)


def _sigma(log_variance) -> float:
    """The step's noise std for display: ``exp(log_variance / 2)``, averaged over the pixels of a
    learned (per-pixel) variance."""
    if torch.is_tensor(log_variance):
        return float(torch.exp(0.5 * log_variance).mean())
    return math.exp(0.5 * log_variance)


@torch.no_grad()
def ddpm_sample(model: Model, diffusion: GaussianDiffusion, shape, *, num_steps: int | None = None,
                generator: torch.Generator | None = None, x_start: torch.Tensor | None = None,
                start_t: int | None = None, clip_x0: bool = False, device="cpu",
                dtype=torch.float32) -> Iterator[StepOutput]:
    """Ancestral DDPM sampling over all T steps, or over ``num_steps`` strided (respaced) steps.

    shape: ``(B, C, H, W)``. ``x_start`` at paper step ``start_t`` (default: fresh noise at T)
    starts the chain from an intermediate ``x_t``, e.g. a noised real image.
    """
    T = diffusion.num_timesteps
    if num_steps is None or num_steps >= T:
        visit = _start(range(T), start_t, T)
        d, to_model = diffusion, None
    else:
        keep = strided_indices(T, num_steps)
        if start_t is not None:
            _start(keep, start_t, T)  # validates start_t
            keep = sorted(set(k for k in keep if k < start_t - 1) | {start_t - 1})
        d = diffusion.respace(keep)
        to_model = d.index_map
        visit = list(range(len(keep) - 1, -1, -1))
    x = _init(shape, x_start, generator, device, dtype)
    n = len(visit)
    for k, j in enumerate(visit):
        i_orig = int(to_model[j]) if to_model is not None else j
        out = model(x, torch.full((shape[0],), i_orig, dtype=torch.long, device=device))
        # j: an int, so the step's coefficients are Python floats (diffusion.py)
        mean, _, logvar, x0 = d.p_mean_variance(out, x, j, clip_x0)
        sigma = _sigma(logvar) if j > 0 else 0.0
        yield StepOutput(i_orig + 1, x, x0, k, n, float(d.schedule.betas[j]), sigma)
        x = d.p_sample_step(mean, logvar, j, _noise(x.shape, generator, device, dtype) if j > 0 else None)
    yield StepOutput(0, x, x, n, n)


@torch.no_grad()
def ddim_sample(model: Model, diffusion: GaussianDiffusion, shape, *, num_steps: int = 50,
                eta: float = 0.0, generator: torch.Generator | None = None,
                x_start: torch.Tensor | None = None, start_t: int | None = None,
                clip_x0: bool = False, clip_eps: str = "clipped", device="cpu",
                dtype=torch.float32) -> Iterator[StepOutput]:
    """DDIM sampling over ``num_steps`` strided steps with noise scale ``eta`` (0 = deterministic).

    ``clip_eps``: with ``clip_x0``, whether the update uses eps re-derived from the clipped x_0
    (``"clipped"``, the default) or the network's raw eps (``"raw"``, a stock diffusers
    ``DDIMPipeline``); see :meth:`GaussianDiffusion.x0_and_eps`."""
    T = diffusion.num_timesteps
    visit = _start(strided_indices(T, num_steps), start_t, T)
    x = _init(shape, x_start, generator, device, dtype)
    n = len(visit)
    for k, i in enumerate(visit):
        i_prev = visit[k + 1] if k + 1 < n else -1
        out = model(x, torch.full((shape[0],), i, dtype=torch.long, device=device))
        x0, eps = diffusion.x0_and_eps(out, x, i, clip_x0, clip_eps)   # i: an int (diffusion.py)
        a_t, a_prev = diffusion.ddim_alpha_bars(i, i_prev, x)
        sigma = diffusion.ddim_sigma(i, i_prev, eta, x)
        yield StepOutput(i + 1, x, x0, k, n, 1 - a_t / a_prev, sigma)
        noise = _noise(x.shape, generator, device, dtype) if eta > 0 else None
        x = diffusion.ddim_update(x0, eps, i, i_prev, eta, noise)
    yield StepOutput(0, x, x, n, n)


def sampler(kind: str, model: Model, diffusion: GaussianDiffusion, shape, *, steps: int | None = None,
            eta: float = 0.0, clip_eps: str = "clipped", **kw) -> Iterator[StepOutput]:
    """``kind``: ``ddpm`` (all T steps unless ``steps``) or ``ddim`` (``steps`` default 50).
    ``clip_eps`` applies to DDIM only (DDPM's step does not use eps after clipping)."""
    if kind == "ddpm":
        return ddpm_sample(model, diffusion, shape, num_steps=steps, **kw)
    if kind == "ddim":
        return ddim_sample(model, diffusion, shape, num_steps=steps or 50, eta=eta, clip_eps=clip_eps,
                           **kw)
    raise ValueError(f"unknown sampler {kind!r}; choose ddpm or ddim")


def run(steps: Iterator[StepOutput]) -> torch.Tensor:
    """Exhaust a sampler generator; return the final ``x_0`` ``[B, C, H, W]``."""
    last = None
    for last in steps:
        pass
    return last.x_t
