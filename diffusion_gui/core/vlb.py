"""The variational bound of DDPM, term by term, in bits per dimension (Ho et al. 2020, eq. 5).

    L = L_T + sum_{t=2}^{T} L_{t-1} + L_0
    L_T     = KL(q(x_T | x_0) || N(0, I))                       -> :func:`prior_bpd`
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))      -> :func:`vb_terms_bpd`, i > 0
    L_0     = -log p(x_0 | x_1), a discretized Gaussian decoder  -> :func:`vb_terms_bpd`, i == 0

Timestep convention: ``i`` is an array index ``0 .. T-1`` and stands for the paper's ``t = i + 1``;
the term computed at index ``i`` is the one that conditions on ``x_t`` (``i == 0``: ``x_1``, the
decoder). Images are ``[B, C, H, W]`` in ``[-1, 1]``. Every per-sample figure is averaged over the
``C * H * W`` dimensions and divided by ``ln 2`` (bits/dim), as in improved-diffusion's
``_vb_terms_bpd``. Pure torch; no Qt.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from .diffusion import GaussianDiffusion, _batch_index
from .schedule import extract

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LN2 = math.log(2.0)


def _acc(x: torch.Tensor) -> torch.dtype:
    """Accumulation dtype: float64 except where the device has none (Apple MPS)."""
    return torch.float32 if x.device.type == "mps" else torch.float64


def _mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the batch: ``[B, ...] -> [B]``."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


# ---------------------------------------------------------------- building blocks
def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) elementwise, in nats.

    ``0.5 * (-1 + logvar2 - logvar1 + exp(logvar1 - logvar2) + (mean1 - mean2)^2 exp(-logvar2))``.
    Arguments broadcast against each other (tensors or Python floats).
    """
    ref = next((a for a in (mean1, logvar1, mean2, logvar2) if isinstance(a, torch.Tensor)),
               torch.zeros((), dtype=torch.float64))
    mean1, logvar1, mean2, logvar2 = (torch.as_tensor(a, dtype=ref.dtype, device=ref.device)
                                      for a in (mean1, logvar1, mean2, logvar2))
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def discretized_gaussian_log_likelihood(x: torch.Tensor, means: torch.Tensor,
                                        log_scales: torch.Tensor) -> torch.Tensor:
    """Elementwise log-likelihood (nats) of 8-bit pixels under a discretized Gaussian.

    x: pixels rescaled to ``[-1, 1]`` (the 256 levels ``-1 + 2k/255``); means, log_scales (log of
    the standard deviation): broadcastable to ``x``. Level ``k`` owns the bin ``x +- 1/255`` (width
    2/255); the lowest bin extends to ``-inf`` and the highest to ``+inf``, so the 256 bin
    probabilities sum to 1.

    Uses the exact normal CDF (``torch.special.ndtr`` / ``log_ndtr``); improved-diffusion's
    ``discretized_gaussian_log_likelihood`` uses a tanh approximation of the CDF instead, so the two
    differ slightly (``benchmarks/vlb_figures.py`` measures the effect on L_0). A middle bin in the upper tail is computed as the difference
    of upper-tail probabilities, which keeps its precision; probabilities are floored at 1e-12
    before the log, as in improved-diffusion, so the result is always finite.
    """
    dtype = x.dtype
    x, means, log_scales = (torch.as_tensor(a).to(device=x.device, dtype=_acc(x))
                            for a in (x, means, log_scales))
    centered = x - means
    inv_std = torch.exp(-log_scales)
    upper = inv_std * (centered + 1.0 / 255.0)   # standardised bin edges
    lower = inv_std * (centered - 1.0 / 255.0)
    log_cdf_upper = torch.special.log_ndtr(upper)              # lowest bin: P(z < upper)
    log_sf_lower = torch.special.log_ndtr(-lower)              # highest bin: P(z > lower)
    # middle bins: P(lower < z < upper), taken on the side of 0 where it is not a tiny difference
    mid = torch.where(lower > 0,
                      torch.special.ndtr(-lower) - torch.special.ndtr(-upper),
                      torch.special.ndtr(upper) - torch.special.ndtr(lower))
    log_mid = torch.log(mid.clamp(min=1e-12))
    out = torch.where(x < -0.999, log_cdf_upper.clamp(min=math.log(1e-12)),
                      torch.where(x > 0.999, log_sf_lower.clamp(min=math.log(1e-12)), log_mid))
    return out.to(dtype)


# ---------------------------------------------------------------- the terms of the bound
def vb_terms_bpd(diffusion: GaussianDiffusion, model_output: torch.Tensor, x0: torch.Tensor,
                 x_t: torch.Tensor, i, clip_x0: bool = False) -> torch.Tensor:
    """One term of the bound per sample, in bits/dim: float ``[B]`` (float64 where available).

    model_output: the network's output at ``(x_t, i)``, interpreted by the diffusion's
    ``prediction_type``; x0, x_t: ``[B, C, H, W]``; i: LongTensor ``[B]`` (paper ``t = i + 1``).
    For ``i > 0``: ``mean_dims KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) / ln 2`` with the
    posterior's clipped log-variance and the model's fixed ``diffusion.model_log_variance``.
    For ``i == 0``: the decoder ``-mean_dims log p(x_0 | x_1) / ln 2``, a discretized Gaussian at
    the model mean with standard deviation ``exp(0.5 * model_log_variance[0])``.
    """
    i = _batch_index(i, x_t).to(x_t.device)
    acc = _acc(x_t)
    x0, x_t, model_output = x0.to(acc), x_t.to(acc), model_output.to(acc)
    true_mean, _, true_logvar = diffusion.q_posterior(x0, x_t, i)
    mean, _, logvar, _ = diffusion.p_mean_variance(model_output, x_t, i, clip_x0)
    kl = _mean_flat(normal_kl(true_mean, true_logvar, mean, logvar)) / LN2
    nll = -_mean_flat(discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar)) / LN2
    return torch.where(i == 0, nll, kl)


#: improved DDPM's weight of L_vlb in L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal 2021)
HYBRID_LAMBDA = 0.001


def hybrid_terms(diffusion: GaussianDiffusion, model_output: torch.Tensor, x0: torch.Tensor,
                 x_t: torch.Tensor, i, noise: torch.Tensor, vb_term=None):
    """The two parts of L_hybrid per sample: ``(mse [B], vb [B])``, for an epsilon-predicting
    ``learned_range`` network (``model_output`` ``[B, 2C, H, W]``, ``x0``/``x_t``/``noise``
    ``[B, C, H, W]``, ``i`` LongTensor ``[B]``, paper ``t = i + 1``).

    ``mse``: ``mean_dims (eps - eps_theta)^2`` (L_simple); ``vb``: the bound's term at ``i`` in
    bits/dim (:func:`vb_terms_bpd`) with the prediction half detached, so that L_vlb trains the
    variance only and the mean is left to L_simple (improved DDPM, section 3.1).
    L_vlb = sum_t L_{t-1} = T E_t[L_{t-1}], so one sample's loss is :func:`hybrid_loss`.
    ``vb_term(diffusion, model_output, x0, x_t, i) -> [B]``: that term for other data (the 2-D
    lab's points: :func:`~diffusion_gui.core.bound_estimators.vb_rows_nats`, nats/dim).
    """
    pred, v = diffusion.split_output(model_output, x_t)
    if v is None:
        raise ValueError("L_hybrid needs a learned_range diffusion and a network that outputs 2C channels")
    mse = _mean_flat((pred.float() - noise.float()) ** 2)
    vb = (vb_term or vb_terms_bpd)(diffusion, torch.cat([pred.detach(), v], dim=1), x0, x_t, i)
    return mse, vb


def hybrid_loss(mse: torch.Tensor, vb: torch.Tensor, timesteps: int) -> torch.Tensor:
    """``mse + HYBRID_LAMBDA * T * vb`` per sample ``[B]`` (the float dtype of ``mse``)."""
    return mse + (HYBRID_LAMBDA * timesteps) * vb.to(mse.dtype)


def prior_bpd(diffusion: GaussianDiffusion, x0: torch.Tensor) -> torch.Tensor:
    """``L_T = KL(q(x_T | x_0) || N(0, I))`` per sample in bits/dim: float ``[B]``.

    q(x_T | x_0) = N(sqrt(abar_T) x_0, (1 - abar_T) I), at index ``i = T - 1``. It has no
    parameters to learn; for a good schedule it is ~1e-5 bits/dim or less.
    """
    x0 = x0.to(_acc(x0))
    s = diffusion.schedule
    i = torch.full((x0.shape[0],), s.timesteps - 1, dtype=torch.long)
    mean = extract(s.sqrt_alpha_bars, i, x0) * x0
    logvar = extract(s.log_one_minus_alpha_bars, i, x0)
    return _mean_flat(normal_kl(mean, logvar, 0.0, 0.0)) / LN2


# ---------------------------------------------------------------- the whole bound, as a generator
def evaluated_indices(timesteps: int, stride: int = 1) -> np.ndarray:
    """Indices ``i`` that :func:`vlb_terms` evaluates: every index below ``stride``, then
    ``range(0, T, stride)``, plus ``T - 1``. Increasing, int64.

    The KL terms fall steeply over the first steps (the curve is convex there), where linear
    interpolation across a gap overestimates badly; evaluating the first ``stride`` indices
    densely fixes that. What a stride costs in accuracy on the built-in model is measured by
    ``benchmarks/vlb_figures.py`` (figures in docs/performance.md).
    """
    if stride < 1:
        raise ValueError("stride must be at least 1")
    keep = (set(range(0, timesteps, stride)) | set(range(min(stride, timesteps)))
            | {timesteps - 1} | ({1} if timesteps > 1 else set()))
    return np.array(sorted(keep), dtype=np.int64)


def stride_weights(indices, timesteps: int) -> np.ndarray:
    """Weights ``w`` with ``sum_{i=0}^{T-1} L(i) ~= sum_k w[k] L(indices[k])``.

    indices: increasing, starting ``0, 1`` and ending at ``T - 1`` (as :func:`evaluated_indices`).
    The decoder term ``L_0`` (``i = 0``) is a different quantity from the KL terms, so it is
    counted once, exactly (``w[0] = 1``), and never interpolated. The KL terms at the skipped
    indices are estimated by linear interpolation between the evaluated neighbours, which is the
    trapezoid rule on the integer grid: an evaluated index counts 1 for itself plus ``(g - 1) / 2``
    for each adjacent gap of ``g`` indices. The weights sum to ``T``; with stride 1 all are 1 and
    the total is exact.
    """
    e = np.asarray(indices, dtype=np.int64)
    if timesteps == 1:
        return np.ones(1)
    if e[0] != 0 or e[1] != 1 or e[-1] != timesteps - 1:
        raise ValueError("indices must start with 0, 1 and end with T - 1")
    w = np.ones(len(e), dtype=np.float64)
    gaps = np.diff(e[1:]).astype(np.float64)       # between consecutive KL points
    w[1:-1] += (gaps - 1) / 2
    w[2:] += (gaps - 1) / 2
    return w


@dataclass
class VLBResult:
    """The bound of a set of images, each figure averaged over the images.

    t: the paper's steps evaluated (``i + 1``), int ``[K]``; vb_bpd: the term at each (``t = 1``:
    decoder NLL, else KL) in bits/dim; eps_mse: ``mean (eps - eps_pred)^2`` per dim (the
    L_simple training loss); x0_mse: ``mean (x_0 - x0_pred)^2`` per dim; weights: the
    :func:`stride_weights` of each evaluated step. prior_bpd: ``L_T``. total_bpd:
    ``prior_bpd + sum(weights * vb_bpd)`` -- exact when ``stride == 1``, otherwise the skipped KL
    terms are interpolated linearly.
    """

    t: np.ndarray
    vb_bpd: np.ndarray
    eps_mse: np.ndarray
    x0_mse: np.ndarray
    weights: np.ndarray
    prior_bpd: float
    total_bpd: float
    timesteps: int
    stride: int
    num_images: int

    @property
    def decoder_bpd(self) -> float:
        """``L_0`` in bits/dim (the term at ``t = 1``)."""
        return float(self.vb_bpd[0])

    def to_json_dict(self) -> dict:
        """Plain lists and floats, for ``json.dump``."""
        return {"timesteps": self.timesteps, "stride": self.stride, "num_images": self.num_images,
                "prior_bpd": self.prior_bpd, "decoder_bpd": self.decoder_bpd,
                "total_bpd": self.total_bpd, "t": self.t.tolist(), "vb_bpd": self.vb_bpd.tolist(),
                "eps_mse": self.eps_mse.tolist(), "x0_mse": self.x0_mse.tolist(),
                "weights": self.weights.tolist()}


@dataclass
class VLBProgress:
    """What :func:`vlb_terms` yields after each model call.

    done / total: timesteps evaluated so far / to evaluate. t, vb_bpd, eps_mse, x0_mse: the
    partial arrays (the first ``done`` evaluated steps, increasing ``t``). result: ``None`` until
    the last yield, which carries the complete :class:`VLBResult`.
    """

    done: int
    total: int
    t: np.ndarray
    vb_bpd: np.ndarray
    eps_mse: np.ndarray
    x0_mse: np.ndarray
    result: VLBResult | None = field(default=None)

    @property
    def finished(self) -> bool:
        return self.result is not None


@torch.no_grad()
def vlb_terms(model: Model, diffusion: GaussianDiffusion, x0: torch.Tensor, *, stride: int = 1,
              t_batch: int = 32, generator: torch.Generator | None = None,
              clip_x0: bool = False) -> Iterator[VLBProgress]:
    """Evaluate the bound of ``x0`` (``[N, C, H, W]`` in ``[-1, 1]``) term by term.

    model: ``model(x [B, C, H, W], i LongTensor [B]) -> output`` (``i`` of the training schedule;
    for a respaced diffusion its ``index_map`` is applied). The indices of
    :func:`evaluated_indices` are visited in increasing order; ``k = max(1, t_batch // N)``
    timesteps are stacked into one model call of ``k * N`` rows (timestep-major), so ``t_batch``
    is roughly the batch size; ``t_batch=1`` makes one call per timestep. The noise of every
    (timestep, image) is drawn from ``generator`` in that same order, one ``[N, C, H, W]`` draw per
    timestep, on the generator's device -- so the result does not depend on ``t_batch`` or the
    device. ``clip_x0`` clamps the predicted x_0 inside the KL/decoder terms only; eps_mse and
    x0_mse always score the raw prediction. Stop iterating to cancel: no further model call runs.
    """
    T = diffusion.num_timesteps
    N = x0.shape[0]
    idx = evaluated_indices(T, stride)
    K = len(idx)
    k_per_call = max(1, int(t_batch) // max(N, 1))
    index_map = getattr(diffusion, "index_map", None)
    gen_device = generator.device if generator is not None else x0.device
    vb, eps_mse, x0_mse = (np.zeros(K) for _ in range(3))
    prior = float(prior_bpd(diffusion, x0).mean())
    done = 0
    while done < K:
        chunk = idx[done:done + k_per_call]
        k = len(chunk)
        i = torch.as_tensor(chunk, dtype=torch.long, device=x0.device).repeat_interleave(N)
        noise = torch.cat([torch.randn(x0.shape, generator=generator, device=gen_device,
                                       dtype=x0.dtype).to(x0.device) for _ in range(k)])
        x0_rep = x0.repeat(k, *([1] * (x0.ndim - 1)))
        x_t = diffusion.q_sample(x0_rep, i, noise)
        i_model = index_map.to(x0.device)[i] if index_map is not None else i
        out = model(x_t, i_model)
        x0_pred, eps_pred = diffusion.x0_and_eps(out, x_t, i)
        terms = vb_terms_bpd(diffusion, out, x0_rep, x_t, i, clip_x0)
        sl = slice(done, done + k)
        vb[sl] = terms.reshape(k, N).mean(1).double().cpu().numpy()
        eps_mse[sl] = _mean_flat((noise.double() - eps_pred.double()) ** 2).reshape(k, N).mean(1).cpu().numpy()
        x0_mse[sl] = _mean_flat((x0_rep.double() - x0_pred.double()) ** 2).reshape(k, N).mean(1).cpu().numpy()
        done += k
        result = None
        if done == K:
            w = stride_weights(idx, T)
            result = VLBResult(t=idx + 1, vb_bpd=vb.copy(), eps_mse=eps_mse.copy(),
                               x0_mse=x0_mse.copy(), weights=w, prior_bpd=prior,
                               total_bpd=prior + float((w * vb).sum()), timesteps=T,
                               stride=int(stride), num_images=N)
        yield VLBProgress(done, K, idx[:done] + 1, vb[:done].copy(), eps_mse[:done].copy(),
                          x0_mse[:done].copy(), result)


def compute_vlb(model: Model, diffusion: GaussianDiffusion, x0: torch.Tensor, **kw) -> VLBResult:
    """Exhaust :func:`vlb_terms` (same keywords) and return its :class:`VLBResult`."""
    last = None
    for last in vlb_terms(model, diffusion, x0, **kw):
        pass
    return last.result


def vlb_terms_unbatched(model: Model, diffusion: GaussianDiffusion, x0: torch.Tensor, *,
                        stride: int = 1, generator: torch.Generator | None = None,
                        clip_x0: bool = False) -> VLBResult:
    """The same result with one model call per timestep (``t_batch=1``), for benchmarks."""
    return compute_vlb(model, diffusion, x0, stride=stride, t_batch=1, generator=generator,
                       clip_x0=clip_x0)
