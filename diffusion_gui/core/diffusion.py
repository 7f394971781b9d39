"""Gaussian diffusion: the forward process q and the reverse-step maths of p (DDPM, DDIM).

Every method takes ``i``, a LongTensor ``[B]`` of array indices: index ``i`` is the paper's step
``t = i + 1`` (so ``i = 0`` is the last reverse step, which produces ``x_0``). ``i`` may also be a
Python ``int``, one index for the whole batch, as the samplers pass it: the coefficients are then
Python floats (per-sample coefficients that would be ``[B, 1, 1, 1]`` become scalars), which saves
the gathers and casts of a tensor index at every step. Images are float tensors ``[B, C, H, W]``,
nominally in ``[-1, 1]``.
"""
from __future__ import annotations

import math
import numbers

import torch

from .names import CLIP_EPS
from .schedule import NoiseSchedule, extract

VARIANCE_TYPES = ("fixed_small", "fixed_large", "learned_range")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def _index(i, x: torch.Tensor):
    """An integer stays a Python ``int`` (one index for the whole batch); anything else becomes a
    LongTensor ``[B]`` matching ``x``'s batch."""
    if isinstance(i, numbers.Integral) and not isinstance(i, bool):
        return int(i)
    return _batch_index(i, x)


def _batch_index(i, x: torch.Tensor) -> torch.Tensor:
    """Accept an int or a tensor of indices; return LongTensor ``[B]`` matching ``x``'s batch."""
    i = torch.as_tensor(i, dtype=torch.long).reshape(-1)
    if i.numel() == 1 and x.shape[0] != 1:
        i = i.expand(x.shape[0])
    return i


def _expand(v, x: torch.Tensor):
    """A per-sample coefficient ``[B, 1, ...]`` expanded to ``x``'s shape; a float stays a float."""
    return v.expand_as(x) if torch.is_tensor(v) else v


def _sqrt_pos(v):
    """``sqrt(max(v, 0))`` of a float or elementwise of a tensor."""
    return v.clamp(min=0).sqrt() if torch.is_tensor(v) else math.sqrt(max(v, 0.0))


class GaussianDiffusion:
    """The DDPM forward process and reverse-step formulas over one :class:`NoiseSchedule`.

    variance: ``fixed_small`` (posterior variance beta~_t) or ``fixed_large`` (beta_t, with
    beta~_2 at t = 1 as in improved-diffusion), or ``learned_range`` (improved DDPM, Nichol &
    Dhariwal 2021, eq. 15): the network outputs ``2C`` channels, the prediction then ``v`` in
    ``[-1, 1]``, and ``log sigma_t^2 = frac log beta_t + (1 - frac) log beta~_t`` with
    ``frac = (v + 1) / 2``, per pixel (beta~_1 clipped to beta~_2, as improved-diffusion; diffusers'
    scheduler uses ``log 1e-20`` there, which only its last, noise-free step sees).
    ``min_log_variance`` / ``max_log_variance`` ``[T]`` are those two ends, for every type.
    prediction_type: what the network outputs, ``epsilon``, ``sample`` (x_0) or ``v_prediction``.
    clip_range: where ``clip_x0`` clamps x_0.
    """

    def __init__(self, schedule: NoiseSchedule, variance: str = "fixed_small",
                 prediction_type: str = "epsilon", clip_range: float = 1.0):
        if variance not in VARIANCE_TYPES:
            raise ValueError(f"variance must be one of {VARIANCE_TYPES}, not {variance!r}")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}")
        self.schedule = schedule
        self.variance = variance
        self.prediction_type = prediction_type
        self.clip_range = float(clip_range)
        s = schedule
        self.min_log_variance = s.posterior_log_variance_clipped
        self.max_log_variance = torch.log(s.betas)
        # p(x_{t-1} | x_t) variance, by variance type (a learned one has none fixed)
        if variance == "learned_range":
            self.model_variance = self.model_log_variance = None
        elif variance == "fixed_small":
            self.model_variance = s.posterior_variance
            self.model_log_variance = s.posterior_log_variance_clipped
        else:
            large = torch.cat([s.posterior_variance[1:2] if s.timesteps > 1 else s.betas[:1],
                               s.betas[1:]])
            self.model_variance = large
            self.model_log_variance = torch.log(large)

    @property
    def num_timesteps(self) -> int:
        return self.schedule.timesteps

    @property
    def learned_variance(self) -> bool:
        return self.variance == "learned_range"

    def split_output(self, model_output: torch.Tensor, x_t: torch.Tensor):
        """``(prediction [B, C, ...], v [B, C, ...] or None)``: a learned-variance network's
        ``2C`` output channels split in two (diffusers' order: the prediction first); any other
        output is the prediction itself. A fixed-variance diffusion over a learned-variance network
        (a sampler's variance override) keeps the prediction and drops ``v``."""
        c = x_t.shape[1]
        if model_output.shape[1] == 2 * c:
            pred, v = model_output[:, :c], model_output[:, c:]
            return (pred, v) if self.learned_variance else (pred, None)
        if self.learned_variance:
            raise ValueError(f"a learned_range model must output {2 * c} channels for {c}, "
                             f"not {model_output.shape[1]}")
        return model_output, None

    def learned_log_variance(self, v: torch.Tensor, i, x_t: torch.Tensor) -> torch.Tensor:
        """``log sigma_t^2`` ``[B, C, ...]`` of ``learned_range`` from the network's ``v``:
        ``frac log beta_t + (1 - frac) log beta~_t``, ``frac = (v + 1) / 2``."""
        i = _index(i, x_t)
        frac = (v + 1) / 2
        return (frac * extract(self.max_log_variance, i, x_t)
                + (1 - frac) * extract(self.min_log_variance, i, x_t))

    # ---------------------------------------------------------------- forward process q
    def q_sample(self, x0: torch.Tensor, i, noise: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_0) in closed form: ``sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``."""
        i = _index(i, x0)
        s = self.schedule
        return extract(s.sqrt_alpha_bars, i, x0) * x0 + extract(s.sqrt_one_minus_alpha_bars, i, x0) * noise

    def q_step(self, x_prev: torch.Tensor, i, noise: torch.Tensor) -> torch.Tensor:
        """One forward step x_{t-1} -> x_t ~ q(x_t | x_{t-1}): ``sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps``."""
        i = _index(i, x_prev)
        s = self.schedule
        return extract(s.sqrt_alphas, i, x_prev) * x_prev + extract(s.sqrt_betas, i, x_prev) * noise

    def q_posterior(self, x0: torch.Tensor, x_t: torch.Tensor, i):
        """q(x_{t-1} | x_t, x_0): ``(mean, variance, log_variance_clipped)``, each ``[B, ...]``
        (the variances Python floats for an ``int`` ``i``)."""
        i = _index(i, x_t)
        s = self.schedule
        mean = extract(s.posterior_mean_coef1, i, x_t) * x0 + extract(s.posterior_mean_coef2, i, x_t) * x_t
        var = _expand(extract(s.posterior_variance, i, x_t), x_t)
        logvar = _expand(extract(s.posterior_log_variance_clipped, i, x_t), x_t)
        return mean, var, logvar

    # ---------------------------------------------------------------- conversions
    def predict_x0(self, x_t: torch.Tensor, i, eps: torch.Tensor) -> torch.Tensor:
        """x_0 from x_t and eps: ``sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps``."""
        i = _index(i, x_t)
        s = self.schedule
        return extract(s.sqrt_recip_alpha_bars, i, x_t) * x_t - extract(s.sqrt_recipm1_alpha_bars, i, x_t) * eps

    def predict_eps(self, x_t: torch.Tensor, i, x0: torch.Tensor) -> torch.Tensor:
        """eps from x_t and x_0: ``(x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t)``."""
        i = _index(i, x_t)
        s = self.schedule
        return (x_t - extract(s.sqrt_alpha_bars, i, x_t) * x0) / extract(s.sqrt_one_minus_alpha_bars, i, x_t)

    def x0_and_eps(self, model_output: torch.Tensor, x_t: torch.Tensor, i, clip_x0: bool = False,
                   clip_eps: str = "clipped"):
        """Interpret the network output by ``prediction_type``: ``(x0_pred, eps_pred)``.

        With ``clip_x0`` x_0 is clamped to ``[-clip_range, clip_range]``; ``clip_eps="clipped"``
        (ours, improved-diffusion's and GLIDE's convention) then re-derives eps from the clamped
        x_0, ``"raw"`` keeps the network's eps (a stock diffusers ``DDIMScheduler`` unless
        ``use_clipped_model_output=True``). Only DDIM uses eps after clipping, so only DDIM
        samples depend on the choice.
        """
        if clip_eps not in CLIP_EPS:
            raise ValueError(f"clip_eps must be one of {', '.join(CLIP_EPS)}, not {clip_eps!r}")
        if model_output.shape[1] == 2 * x_t.shape[1]:
            model_output = model_output[:, :x_t.shape[1]]     # a learned variance: not needed here
        i = _index(i, x_t)
        s = self.schedule
        if self.prediction_type == "epsilon":
            eps = model_output
            x0 = self.predict_x0(x_t, i, eps)
        elif self.prediction_type == "sample":
            x0 = model_output
            eps = self.predict_eps(x_t, i, x0)
        else:  # v = sqrt(abar) eps - sqrt(1 - abar) x_0
            a, b = extract(s.sqrt_alpha_bars, i, x_t), extract(s.sqrt_one_minus_alpha_bars, i, x_t)
            x0 = a * x_t - b * model_output
            eps = a * model_output + b * x_t
        if clip_x0:
            x0 = x0.clamp(-self.clip_range, self.clip_range)
            if clip_eps == "clipped":
                eps = self.predict_eps(x_t, i, x0)
        return x0, eps

    # ---------------------------------------------------------------- reverse process p
    def p_mean_variance(self, model_output: torch.Tensor, x_t: torch.Tensor, i, clip_x0: bool = False):
        """p(x_{t-1} | x_t): ``(mean, variance, log_variance, x0_pred)``, each ``[B, ...]`` (the
        variances Python floats for an ``int`` ``i``).

        The mean is the posterior mean q(x_{t-1} | x_t, x0_pred) (DDPM eq. 7 with x_0 predicted).
        A ``learned_range`` model's variance is the tensor its ``v`` channels give, per pixel.
        """
        i = _index(i, x_t)
        out, v = self.split_output(model_output, x_t)
        x0, _ = self.x0_and_eps(out, x_t, i, clip_x0)
        mean, _, _ = self.q_posterior(x0, x_t, i)
        if v is not None:
            logvar = self.learned_log_variance(v, i, x_t)
            return mean, torch.exp(logvar), logvar, x0
        var = _expand(extract(self.model_variance, i, x_t), x_t)
        logvar = _expand(extract(self.model_log_variance, i, x_t), x_t)
        return mean, var, logvar, x0

    def p_sample_step(self, mean: torch.Tensor, log_variance, i, noise: torch.Tensor | None):
        """x_{t-1} = mean + exp(log_variance / 2) z, from :meth:`p_mean_variance`'s mean and
        log-variance (DDPM Algorithm 2, line 4); at ``i == 0`` the mean itself (``noise`` is then
        not used and may be None)."""
        if isinstance(i, int):
            if i == 0:
                return mean
            std = (torch.exp(0.5 * log_variance) if torch.is_tensor(log_variance)
                   else math.exp(0.5 * log_variance))
            return mean + std * noise
        i = _batch_index(i, mean)
        if noise is None:
            if bool((i != 0).any()):
                raise ValueError("p_sample_step needs noise where i > 0")
            return mean
        nonzero = (i != 0).to(mean.dtype).reshape(-1, *([1] * (mean.ndim - 1)))
        return mean + nonzero * torch.exp(0.5 * log_variance) * noise

    def ddpm_step(self, model_output: torch.Tensor, x_t: torch.Tensor, i, noise: torch.Tensor,
                  clip_x0: bool = False) -> torch.Tensor:
        """Ancestral step x_t -> x_{t-1} = mean + sigma_t z (DDPM Algorithm 2); at ``i == 0`` the mean."""
        i = _index(i, x_t)
        mean, _, logvar, _ = self.p_mean_variance(model_output, x_t, i, clip_x0)
        return self.p_sample_step(mean, logvar, i, noise)

    def ddim_alpha_bars(self, i, i_prev, x: torch.Tensor):
        """``(abar at i, abar at i_prev)`` of a DDIM step, with ``abar = 1`` at ``i_prev == -1``:
        floats for ``int`` indices, else ``[B, 1, ...]``."""
        s = self.schedule
        if isinstance(i, int) and isinstance(i_prev, int):
            return float(s.alpha_bars[i]), (1.0 if i_prev < 0 else float(s.alpha_bars[i_prev]))
        i, i_prev = _batch_index(i, x), _batch_index(i_prev, x)
        abar_ext = torch.cat([torch.ones(1, dtype=torch.float64), s.alpha_bars])
        return extract(s.alpha_bars, i, x), extract(abar_ext, i_prev + 1, x)

    def ddim_sigma(self, i, i_prev, eta: float, x: torch.Tensor):
        """The DDIM step's noise std (Song et al. 2021, eq. 16):
        ``eta sqrt((1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev))``; a float for ``int``
        indices, else ``[B, 1, ...]``."""
        abar_t, abar_prev = self.ddim_alpha_bars(_index(i, x), _index(i_prev, x), x)
        return eta * _sqrt_pos((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))

    def ddim_step(self, model_output: torch.Tensor, x_t: torch.Tensor, i, i_prev, eta: float = 0.0,
                  noise: torch.Tensor | None = None, clip_x0: bool = False,
                  clip_eps: str = "clipped") -> torch.Tensor:
        """DDIM step (Song et al. 2021, eq. 12) from index ``i`` to ``i_prev < i``.

        ``i_prev == -1`` means ``alpha_bar = 1`` (the clean image). ``eta = 0`` is deterministic,
        ``eta = 1`` matches the ancestral DDPM posterior variance.
        """
        x0, eps = self.x0_and_eps(model_output, x_t, i, clip_x0, clip_eps)
        return self.ddim_update(x0, eps, i, i_prev, eta, noise)

    def ddim_update(self, x0: torch.Tensor, eps: torch.Tensor, i, i_prev, eta: float = 0.0,
                    noise: torch.Tensor | None = None) -> torch.Tensor:
        """The DDIM step from the predicted ``x0`` and ``eps`` (:meth:`x0_and_eps`):
        ``sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z``."""
        i, i_prev = _index(i, x0), _index(i_prev, x0)
        _, abar_prev = self.ddim_alpha_bars(i, i_prev, x0)
        sigma = self.ddim_sigma(i, i_prev, eta, x0)
        x_prev = abar_prev ** 0.5 * x0 + _sqrt_pos(1 - abar_prev - sigma ** 2) * eps
        if eta > 0:
            if noise is None:
                raise ValueError("ddim_step with eta > 0 needs noise")
            x_prev = x_prev + sigma * noise
        return x_prev

    # ---------------------------------------------------------------- respacing
    def respace(self, use_indices) -> "GaussianDiffusion":
        """A diffusion over the kept indices only (improved-diffusion's respacing).

        ``use_indices``: increasing indices into this schedule. The new schedule's betas are
        ``1 - abar[k_j] / abar[k_{j-1}]``; its ``index_map`` sends new index j to old index k_j,
        which is the timestep the network must be given.
        """
        idx = torch.as_tensor(sorted(set(int(k) for k in use_indices)), dtype=torch.long)
        sub = NoiseSchedule.from_alpha_bars(self.schedule.alpha_bars[idx], name=f"{self.schedule.name}[{len(idx)}]")
        d = GaussianDiffusion(sub, self.variance, self.prediction_type, self.clip_range)
        d.index_map = idx
        return d

    index_map: torch.Tensor | None = None
