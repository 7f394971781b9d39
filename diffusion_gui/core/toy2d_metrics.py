"""Numbers for the 2-D lab: denoisers from a mixture, sample quality, the loss floor.

- :class:`MixtureDenoiser`: a *model* for the core samplers (``model(x [B, 2], i LongTensor [B])
  -> eps [B, 2]``, ``i = t - 1``) from a :class:`~diffusion_gui.core.toy2d.GaussianMixture`:
  the exact Bayes-optimal denoiser of that mixture, or, for ``GaussianMixture.from_points``,
  the empirical optimal denoiser of a point set (it memorises).
- :func:`energy_distance` between two point sets, :func:`nearest_distances` of samples to
  training points, :func:`gaussian_like` (the bad baseline: a Gaussian with the data's moments).
- :func:`eps_mse_per_t`: a model's epsilon-MSE per timestep, beside the *loss floor*
  ``E||eps - eps*||^2`` that no network can remove (``eps*`` exact for a mixture).
"""
from __future__ import annotations

import numpy as np
import torch

from .diffusion import GaussianDiffusion
from .toy2d import GaussianMixture

_BLOCK = 4096


class MixtureDenoiser:
    """``eps*(x_t, t)`` of ``mixture`` under ``diffusion``'s schedule, as a sampler model.

    Called with x ``[B, 2]`` (any float dtype) and i LongTensor ``[B]`` (index ``i = t - 1``);
    returns eps ``[B, 2]`` in x's dtype. The maths is float64 (:class:`GaussianMixture`).
    """

    def __init__(self, mixture: GaussianMixture, diffusion: GaussianDiffusion):
        self.mixture, self.diffusion = mixture, diffusion

    def __call__(self, x: torch.Tensor, i) -> torch.Tensor:
        abar = self.diffusion.schedule.alpha_bars[torch.as_tensor(i, dtype=torch.long).reshape(-1)]
        return self.mixture.eps(x, abar).to(x.dtype)

    def x0(self, x: torch.Tensor, i) -> torch.Tensor:
        """E[x_0 | x_t], float64 ``[B, 2]``."""
        abar = self.diffusion.schedule.alpha_bars[torch.as_tensor(i, dtype=torch.long).reshape(-1)]
        return self.mixture.posterior_mean(x, abar)


def _t64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64) if not torch.is_tensor(x) else x
                           ).to(torch.float64).reshape(-1, 2)


def _mean_dist(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean Euclidean distance over all pairs (diagonal included), in blocks of x."""
    total = 0.0
    for s in range(0, x.shape[0], _BLOCK):
        total += float(torch.cdist(x[s:s + _BLOCK], y).sum())
    return total / (x.shape[0] * y.shape[0])


def energy_distance(x, y) -> float:
    """The (squared) energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` of point sets
    ``x`` ``[N, 2]`` and ``y`` ``[M, 2]`` (Szekely & Rizzo), as a V-statistic: the within-set
    means include the zero self-distances, so two draws of one distribution give a small positive
    number, about ``E|X - X'| (1/N + 1/M)`` (the noise floor), never a negative one."""
    x, y = _t64(x), _t64(y)
    return 2 * _mean_dist(x, y) - _mean_dist(x, x) - _mean_dist(y, y)


def energy_floor(points, n: int, m: int) -> float:
    """The mean energy distance of two independent draws of sizes ``n`` and ``m`` of the
    distribution of ``points``: ``E|X - X'| (1/n + 1/m)`` (the V-statistic's bias; its U-part has
    mean 0), with ``E|X - X'|`` from up to 4,000 of ``points``. One draw of that distance
    fluctuates by tens of per cent; this is its expectation, the noise floor to compare with."""
    p = _t64(points)[:4000]
    d = _mean_dist(p, p) * len(p) / max(len(p) - 1, 1)
    return d * (1.0 / n + 1.0 / m)


def nearest_distances(samples, points) -> np.ndarray:
    """The distance of each sample ``[B, 2]`` to its nearest point of ``points`` ``[N, 2]``: ``[B]``."""
    x, y = _t64(samples), _t64(points)
    out = [torch.cdist(x[s:s + _BLOCK], y).min(1).values for s in range(0, x.shape[0], _BLOCK)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def data_std(points) -> float:
    """The data's scale: the root mean variance per coordinate."""
    p = np.asarray(points, dtype=np.float64)
    return float(np.sqrt(((p - p.mean(0)) ** 2).mean()))


def gaussian_like(points, n: int, seed=None) -> np.ndarray:
    """``n`` draws, float32 ``[n, 2]``, of the Gaussian with the mean and covariance of ``points``."""
    p = np.asarray(points, dtype=np.float64)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return rng.multivariate_normal(p.mean(0), np.cov(p.T), size=n).astype(np.float32)


@torch.no_grad()
def eps_mse_per_t(model, diffusion: GaussianDiffusion, x0, t_values, *, reference=None,
                  generator: torch.Generator | None = None):
    """Per paper step ``t`` (each in 1..T) the epsilon-MSE per coordinate of ``model`` on
    ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` (x0 ``[N, 2]``, fresh eps each t), and the
    same for ``reference`` (an exact denoiser: then it is the loss floor ``E||eps - eps*||^2 / 2``).
    ``model`` may be None (floor only). Returns ``(mse [len(t)], floor [len(t)] or None)``."""
    x0 = _t64(x0).to(torch.float32)
    mse, floor = [], []
    for t in t_values:
        i = torch.full((x0.shape[0],), int(t) - 1, dtype=torch.long)
        eps = torch.randn(x0.shape, generator=generator)
        x_t = diffusion.q_sample(x0, i, eps)
        if model is not None:
            out = model(x_t, i)[:, :x0.shape[1]]          # a learned variance's v dropped
            mse.append(float(((out.to(torch.float32) - eps) ** 2).mean()))
        if reference is not None:
            floor.append(float(((reference(x_t.double(), i).double() - eps.double()) ** 2).mean()))
    return (np.array(mse) if model is not None else None,
            np.array(floor) if reference is not None else None)
