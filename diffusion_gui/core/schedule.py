"""Noise schedules and every coefficient derived from them (DDPM, Ho et al. 2020).

Timestep convention: arrays have length ``T`` and are indexed ``i = 0 .. T-1``; index ``i`` is
the paper's step ``t = i + 1``. The paper's ``t = 0`` (the clean image) has no entry; where a
formula needs ``alpha_bar_0 = 1`` it is written out explicitly (``alpha_bars_prev``).

Everything is computed once, in float64, and cast at use through :func:`extract`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import InvalidParameter
from .names import SCHEDULE_NAMES  # noqa: E402,F401 - part of this module's API

# Default beta ranges, as the schedule's authors publish them for T = 1000.
_DEFAULT_RANGES = {
    "linear": (1e-4, 0.02),          # DDPM
    "quadratic": (1e-4, 0.02),       # sqrt-linear, squared, over the DDPM range
    "sigmoid": (1e-4, 0.02),         # diffusers' "sigmoid"
    "scaled_linear": (0.00085, 0.012),  # latent diffusion / Stable Diffusion
}


def extract(coef: torch.Tensor, i, x: torch.Tensor):
    """Gather per-timestep coefficients for a batch and broadcast them against ``x``.

    coef: float64 ``[T]``; i: LongTensor ``[B]`` of indices (``i = t - 1``), or a Python ``int``,
    one index for the whole batch (what samplers use); x: ``[B, ...]``.
    Returns ``[B, 1, ..., 1]`` in ``x``'s dtype and device; for an ``int`` a Python ``float``,
    which broadcasts against ``x`` just the same (and costs no tensor operations).
    """
    if isinstance(i, int):
        return float(coef[i])
    i = torch.as_tensor(i, dtype=torch.long, device=coef.device).reshape(-1)
    out = coef[i].to(device=x.device, dtype=x.dtype)
    return out.reshape(out.shape[0], *([1] * (x.ndim - 1)))


def _betas_for_alpha_bar(alpha_bar, timesteps: int, max_beta: float) -> torch.Tensor:
    """Betas that reproduce a continuous ``alpha_bar(s)``, ``s`` in [0, 1] (Nichol & Dhariwal)."""
    betas = [min(1.0 - alpha_bar((k + 1) / timesteps) / alpha_bar(k / timesteps), max_beta)
             for k in range(timesteps)]
    return torch.tensor(betas, dtype=torch.float64)


def named_betas(name: str, timesteps: int = 1000, beta_start: float | None = None,
                beta_end: float | None = None, max_beta: float = 0.999,
                cosine_s: float = 0.008) -> torch.Tensor:
    """float64 betas ``[T]`` of a named schedule.

    Without an explicit ``beta_start``/``beta_end`` the published range for T = 1000 is scaled by
    ``1000 / T`` (as improved-diffusion's ``get_named_beta_schedule`` does), so that any T ends
    near pure noise; at T = 1000 the betas equal diffusers' ``DDPMScheduler`` betas.
    ``scaled_linear`` (a latent-diffusion schedule, 0.00085..0.012) is never rescaled.
    """
    if name not in SCHEDULE_NAMES:
        raise InvalidParameter("schedule", f"must be one of {', '.join(SCHEDULE_NAMES)}, not {name!r}")
    if timesteps < 1:
        raise InvalidParameter("timesteps", "must be at least 1")
    T = timesteps
    if name == "cosine":
        def f(s):
            return math.cos((s + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
        return _betas_for_alpha_bar(f, T, max_beta)
    lo, hi = _DEFAULT_RANGES[name]
    if beta_start is None and beta_end is None and name != "scaled_linear":
        scale = 1000.0 / T
        lo, hi = lo * scale, min(hi * scale, max_beta)
    lo = lo if beta_start is None else beta_start
    hi = hi if beta_end is None else beta_end
    if name == "linear":
        return torch.linspace(lo, hi, T, dtype=torch.float64)
    if name in ("scaled_linear", "quadratic"):
        return torch.linspace(lo ** 0.5, hi ** 0.5, T, dtype=torch.float64) ** 2
    # sigmoid
    return torch.sigmoid(torch.linspace(-6, 6, T, dtype=torch.float64)) * (hi - lo) + lo


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """A beta schedule and its derived float64 coefficients, each of shape ``[T]``.

    Index ``i`` holds the value for the paper's step ``t = i + 1``.
    """

    betas: torch.Tensor
    name: str = "custom"

    def __post_init__(self):
        b = torch.as_tensor(self.betas, dtype=torch.float64).reshape(-1)
        if b.numel() < 1 or not bool(((b > 0) & (b <= 1)).all()):
            raise ValueError("betas must lie in (0, 1]")
        object.__setattr__(self, "betas", b)
        one = torch.ones(1, dtype=torch.float64)

        # q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I)
        alphas = 1.0 - b
        self._set(alphas=alphas, sqrt_alphas=alphas.sqrt(), sqrt_betas=b.sqrt())

        # q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)
        abar = torch.cumprod(alphas, 0)
        abar_prev = torch.cat([one, abar[:-1]])
        self._set(alpha_bars=abar, alpha_bars_prev=abar_prev,
                  sqrt_alpha_bars=abar.sqrt(),
                  sqrt_one_minus_alpha_bars=(1.0 - abar).sqrt(),
                  log_one_minus_alpha_bars=torch.log1p(-abar))

        # x_0 from (x_t, eps): x_0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps
        self._set(sqrt_recip_alpha_bars=(1.0 / abar).sqrt(),
                  sqrt_recipm1_alpha_bars=(1.0 / abar - 1.0).sqrt())

        # signal-to-noise ratio abar_t / (1 - abar_t)
        snr = abar / (1.0 - abar)
        self._set(snr=snr, snr_db=10.0 * torch.log10(snr))

        # q(x_{t-1} | x_t, x_0) = N(coef1 x_0 + coef2 x_t, beta~_t I)
        post_var = b * (1.0 - abar_prev) / (1.0 - abar)
        # beta~_1 = 0: the log is clipped to beta~_2, as in improved-diffusion
        clip_from = post_var[1] if post_var.numel() > 1 else b[0]
        self._set(posterior_variance=post_var,
                  posterior_log_variance_clipped=torch.log(torch.cat([clip_from.reshape(1),
                                                                      post_var[1:]])),
                  posterior_mean_coef1=b * abar_prev.sqrt() / (1.0 - abar),
                  posterior_mean_coef2=(1.0 - abar_prev) * alphas.sqrt() / (1.0 - abar))

    def _set(self, **arrays):
        for k, v in arrays.items():
            object.__setattr__(self, k, v)

    @classmethod
    def from_name(cls, name: str, timesteps: int = 1000, **kw) -> "NoiseSchedule":
        """``linear``, ``scaled_linear``, ``quadratic``, ``cosine`` or ``sigmoid`` (see :func:`named_betas`)."""
        return cls(named_betas(name, timesteps, **kw), name=name)

    @classmethod
    def from_alpha_bars(cls, alpha_bars, name: str = "respaced") -> "NoiseSchedule":
        """The schedule whose cumulative products are ``alpha_bars`` (float ``[T']``, decreasing)."""
        ab = torch.as_tensor(alpha_bars, dtype=torch.float64).reshape(-1)
        prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        return cls(1.0 - ab / prev, name=name)

    @property
    def timesteps(self) -> int:
        """T, the number of diffusion steps."""
        return int(self.betas.numel())

    def __len__(self) -> int:
        return self.timesteps

    def row(self, t: int) -> dict:
        """The scalar numbers of the paper's step ``t`` (1..T) as plain floats, for read-outs."""
        if not 1 <= t <= self.timesteps:
            raise ValueError(f"t must be in 1..{self.timesteps}")
        i = t - 1
        return {k: float(getattr(self, k)[i]) for k in (
            "betas", "alphas", "alpha_bars", "sqrt_alpha_bars", "sqrt_one_minus_alpha_bars",
            "snr", "snr_db", "posterior_variance")}
