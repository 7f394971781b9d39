"""DDIM inversion (Song et al. 2021, sec. 4.3; Dhariwal & Nichol 2021, app. F) and the spherical
path between two latents.

DDIM with ``eta = 0`` is the Euler discretisation of an ODE, so it can be run the other way:
from a clean ``x_0`` up the *same* strided steps the sampler visits
(:func:`~diffusion_gui.core.sampling.strided_indices`), each step

    eps   = eps_theta(x_cur, i_next)                       (the network, told the next step)
    x0^   = (x_cur - sqrt(1 - abar_cur) eps) / sqrt(abar_cur)     (:meth:`predict_x0`; x_cur at t = 0)
    x_next = sqrt(abar_next) x0^ + sqrt(1 - abar_next) eps        (:meth:`q_sample` with that eps)

which is the DDIM update (:meth:`GaussianDiffusion.ddim_update`, eta = 0) with the roles of the two
steps swapped; the one approximation is that eps is evaluated at ``x_cur`` rather than at the
unknown ``x_next`` (diffusers' ``DDIMInverseScheduler`` and null-text inversion do the same). The
error it makes shrinks with the step size, so the reconstruction of
:func:`~diffusion_gui.core.sampling.ddim_sample` started from the inverted ``x_T`` comes closer to
``x_0`` the more steps are used.

Timesteps are the paper's ``t`` (0 = clean, T = noise); arrays are indexed ``i = t - 1``.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch

from .diffusion import GaussianDiffusion
from .sampling import Model, StepOutput, strided_indices

__all__ = ["ddim_invert", "invert", "slerp"]


@torch.no_grad()
def ddim_invert(model: Model, diffusion: GaussianDiffusion, x0: torch.Tensor, *, num_steps: int = 50,
                device="cpu", dtype=torch.float32) -> Iterator[StepOutput]:
    """Deterministic DDIM (eta = 0) run forward from ``x0`` ``[B, C, H, W]`` to the highest step
    of ``strided_indices(T, num_steps)``: the ``x_T`` from which :func:`ddim_sample` with the same
    ``num_steps`` (``x_start=x_T``, eta = 0, no clipping) comes back to about ``x0``.

    Yields a :class:`StepOutput` per network call, before stepping (``t`` ascending from 0, with
    ``x0_pred`` the clean image implied by ``x_t``), then a last one at the top step
    (``step == num_steps``) holding the inverted latent.
    """
    T = diffusion.num_timesteps
    keep = strided_indices(T, num_steps)
    x = x0.to(device=device, dtype=dtype)
    b = x.shape[0]
    n = len(keep)
    i_cur = -1
    x0p = x
    for k, i_next in enumerate(keep):
        out = model(x, torch.full((b,), i_next, dtype=torch.long, device=device))
        _, eps = diffusion.x0_and_eps(out, x, i_next)
        x0p = x if i_cur < 0 else diffusion.predict_x0(x, i_cur, eps)
        a_cur = 1.0 if i_cur < 0 else float(diffusion.schedule.alpha_bars[i_cur])
        yield StepOutput(i_cur + 1, x, x0p, k, n, 1.0 - float(diffusion.schedule.alpha_bars[i_next]) / a_cur)
        x = diffusion.q_sample(x0p, i_next, eps).to(dtype)
        i_cur = i_next
    yield StepOutput(i_cur + 1, x, x0p, n, n)


def invert(model: Model, diffusion: GaussianDiffusion, x0: torch.Tensor, *, num_steps: int = 50,
           **kw) -> torch.Tensor:
    """The inverted latent of :func:`ddim_invert`, ``[B, C, H, W]``."""
    last = None
    for last in ddim_invert(model, diffusion, x0, num_steps=num_steps, **kw):
        pass
    return last.x_t


def slerp(a: torch.Tensor, b: torch.Tensor, w: float) -> torch.Tensor:
    """Spherical interpolation of two latents ``[B, ...]`` (each batch element on its own):
    ``sin((1 - w) th) / sin th * a + sin(w th) / sin th * b`` with ``th`` the angle between them
    (Shoemake 1985; White 2016 for Gaussian latents, whose norm a straight line would shrink).
    ``w = 0`` gives ``a``, ``w = 1`` gives ``b``; nearly parallel latents fall back to a line."""
    if a.shape != b.shape:
        raise ValueError(f"latents differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    fa, fb = a.reshape(a.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()
    cos = (fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1)).clamp_min(1e-12)
    th = torch.arccos(cos.clamp(-1.0, 1.0))
    out = torch.empty_like(fa)
    for j in range(fa.shape[0]):
        t = float(th[j])
        if t < 1e-4:
            out[j] = (1 - w) * fa[j] + w * fb[j]
        else:
            s = math.sin(t)
            out[j] = math.sin((1 - w) * t) / s * fa[j] + math.sin(w * t) / s * fb[j]
    return out.reshape(a.shape).to(a.dtype)
