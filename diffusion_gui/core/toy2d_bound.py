"""The variational bound of a model of continuous points (2-D lab, 1-D), in nats per dimension,
and the 2-D MLP trained with either objective (L_simple or the bound's weighted MSE).

For continuous data the decoder ``L_0 = -log p_theta(x_0 | x_1)`` is a Gaussian *density*
(``N(x_0; mu_theta(x_1, 1), sigma_1^2 I)``), not the 8-bit discretised Gaussian of images, so the
figures are nats per dimension of a density and may be negative (a sharp density beats 1)::

    L = L_T + sum_{t=2}^T KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) + L_0  >=  -log p_theta(x_0)

Each term is estimated with its own ``x_t ~ q(x_t | x_0)`` (as :func:`diffusion_gui.core.vlb.vlb_terms`
does for images). Timesteps: arrays indexed ``i = t - 1`` (paper's ``t``: 0 data, T noise).
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch

from .bound_estimators import Model, lambda_weights, prior_kl, step_terms
from .diffusion import GaussianDiffusion
from .toy2d_mlp import EpsMLP, TrainState, one_thread, point_loss


@torch.no_grad()
def bound_terms_nats(diffusion: GaussianDiffusion, model: Model, x0, *, seed: int = 0,
                     rows: int = 65536, model_dtype=torch.float32, decoder: str = "gaussian") -> dict:
    """The bound of the points ``x0`` (``[B, D]``, numpy or tensor) under ``model`` (``(x [rows, D],
    i LongTensor [rows]) -> eps [rows, D]``, ``i = t - 1``), per dimension and averaged over the
    points, in nats. Noise from ``torch.Generator().manual_seed(seed)``, one ``[B, D]`` draw per t
    in increasing t; about ``rows`` network rows per call. ``decoder="discretized"`` scores
    8-bit images (``[B, C, H, W]``) with the discretised decoder instead.

    Returns ``{"t": int [T] (1..T), "terms": float [T]`` (index ``i``: ``t = 1`` the Gaussian
    decoder NLL, ``t >= 2`` the KL), ``"prior"`` (L_T), ``"decoder"`` (L_0), ``"kl_sum"``,
    ``"total"`` (L_T + sum of terms), ``"per_point"`` float ``[B]`` (each point's total),
    ``"dims"`` D, ``"timesteps"`` T}``: all nats per dimension.
    """
    x0 = torch.as_tensor(np.asarray(x0, dtype=np.float64) if not torch.is_tensor(x0) else x0).to(torch.float64)
    B, D = x0.shape[0], int(np.prod(x0.shape[1:]))
    T = diffusion.num_timesteps
    gen = torch.Generator().manual_seed(int(seed))
    index_map = getattr(diffusion, "index_map", None)
    k = max(1, int(rows) // max(B, 1))
    per = torch.zeros(T, B, dtype=torch.float64)
    for start in range(0, T, k):
        idx = list(range(start, min(start + k, T)))
        noise = torch.cat([torch.randn(x0.shape, generator=gen, dtype=torch.float64) for _ in idx])
        i = torch.as_tensor(idx, dtype=torch.long).repeat_interleave(B)
        x0r = x0.repeat(len(idx), *([1] * (x0.ndim - 1)))
        x_t = diffusion.q_sample(x0r, i, noise)
        out = model(x_t.to(model_dtype), index_map[i] if index_map is not None else i).to(torch.float64)
        for m, j in enumerate(idx):
            sl = slice(m * B, (m + 1) * B)
            # x_prev only enters the plain term, which is not used here
            _, term = step_terms(diffusion, out[sl], x0, x0, x_t[sl], j, decoder)
            per[j] = term / D
    prior = prior_kl(diffusion, x0) / D
    terms = per.mean(1).numpy()
    return {"t": np.arange(1, T + 1), "terms": terms, "prior": float(prior.mean()),
            "decoder": float(terms[0]), "kl_sum": float(terms[1:].sum()),
            "total": float(prior.mean() + terms.sum()),
            "per_point": (prior + per.sum(0)).numpy(), "dims": D, "timesteps": T}


# ---------------------------------------------------------------- training with either objective
#: simple: L_simple; vlb: the eps MSE weighted by lambda_t (fixed variance); hybrid: a learned
#: variance (learned_range) with L_hybrid = L_simple + 0.001 L_vlb, the mean's gradient stopped
OBJECTIVES = ("simple", "vlb", "hybrid")


def objective_weights(diffusion: GaussianDiffusion, objective: str) -> np.ndarray:
    """Per-t weights ``[T]`` of the eps MSE, mean 1: ``simple`` (and ``hybrid``'s MSE part) all
    ones (L_simple), ``vlb`` ``lambda_t / mean(lambda)`` (the bound's own weighting, up to a
    constant factor)."""
    if objective in ("simple", "hybrid"):
        return np.ones(diffusion.num_timesteps)
    if objective == "vlb":
        lam = lambda_weights(diffusion)
        return lam / lam.mean()
    raise ValueError(f"objective must be one of {OBJECTIVES}")


def train_objective(diffusion: GaussianDiffusion, data: Callable[[], torch.Tensor], objective: str, *,
                    steps: int, width: int = 64, depth: int = 2, lr: float = 2e-3, seed: int = 0,
                    ema_decay: float = 0.99, report_every: int = 50):
    """Train a fresh :class:`EpsMLP` for ``steps`` steps on batches ``data()`` (float32 ``[b, 2]``)
    with loss ``mean_b w_t ||eps - eps_theta(x_t, t)||^2 / D`` (t uniform, ``w`` of
    :func:`objective_weights`); ``hybrid``: a 4-output MLP (eps, v) on a ``learned_range``
    ``diffusion``, loss ``||eps - eps_theta||^2 / D + 0.001 T L_{t-1}`` (:func:`point_loss`). A generator: yields
    ``(steps_done, loss)`` every ``report_every`` steps and finally the :class:`TrainState` (its
    ``ema`` is the model to evaluate)."""
    hybrid = objective == "hybrid"
    if hybrid != diffusion.learned_variance:
        raise ValueError("the hybrid objective goes with a learned_range diffusion, and only it")
    w = torch.as_tensor(objective_weights(diffusion, objective), dtype=torch.float32)
    gen = torch.Generator().manual_seed(int(seed))
    state = TrainState.new(diffusion.num_timesteps, width=width, depth=depth, lr=lr, seed=seed,
                           learned_variance=hybrid)
    state.ema = copy.deepcopy(state.net).requires_grad_(False).eval()
    sab = diffusion.schedule.sqrt_alpha_bars.to(torch.float32)
    s1m = diffusion.schedule.sqrt_one_minus_alpha_bars.to(torch.float32)
    T = diffusion.num_timesteps
    acc = 0.0
    with one_thread():
        for step in range(1, steps + 1):
            x0 = data()
            i = torch.randint(0, T, (x0.shape[0],), generator=gen)
            eps = torch.randn(x0.shape, generator=gen)
            x_t = sab[i, None] * x0 + s1m[i, None] * eps
            loss = point_loss(diffusion, state.net(x_t, i), x0, x_t, i, eps, w[i]).mean()
            state.opt.zero_grad(set_to_none=True)
            loss.backward()
            state.opt.step()
            with torch.no_grad():
                for pe, pn in zip(state.ema.parameters(), state.net.parameters()):
                    pe.lerp_(pn, 1.0 - min(ema_decay, (1 + step) / (10 + step)))
            state.step = step
            acc += float(loss.detach())
            if step % report_every == 0 or step == steps:
                yield step, acc / (report_every if step % report_every == 0 else step % report_every)
                acc = 0.0
    yield state


__all__ = ["bound_terms_nats", "objective_weights", "train_objective", "OBJECTIVES", "EpsMLP"]
