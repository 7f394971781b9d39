"""Two-dimensional data for the 2-D lab, and the Gaussian mixture whose diffusion is exact.

Data sets (:func:`toy_data`): ``moons``, ``swissroll``, ``gaussians8`` (a ring of 8 Gaussians),
``checkerboard``, ``spiral`` and ``gmm`` (a default 3-component mixture, or any
:class:`GaussianMixture`). Every set is scaled to about unit variance per coordinate, as image
models see pixels in ``[-1, 1]``: the shapes by fixed constants measured once on a large
reference draw (so that two draws share one scaling exactly), the mixtures by construction.
Points are float32 numpy ``[N, 2]``.

:class:`GaussianMixture` holds weights ``[K]``, means ``[K, 2]`` and standard deviations
(isotropic ``[K]`` or diagonal ``[K, 2]``). Under the forward process a mixture stays a mixture
(``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``)::

    q_t(x) = sum_k w_k N(x; sqrt(abar_t) mu_k, abar_t Sigma_k + (1 - abar_t) I)

so its log-density, score, Bayes-optimal noise prediction
``eps*(x_t, t) = -sqrt(1 - abar_t) grad log q_t(x_t)`` and posterior mean ``E[x_0 | x_t]``
are closed forms (:meth:`GaussianMixture.log_prob`, :meth:`~GaussianMixture.score`,
:meth:`~GaussianMixture.eps`, :meth:`~GaussianMixture.posterior_mean`); they take ``abar``,
``alpha_bar_t`` of the paper's step ``t`` (``abar = 1`` at ``t = 0``), a float or one per point.
A point set is the mixture of zero-width components on its points
(:meth:`GaussianMixture.from_points`): its posterior mean is the *empirical optimal denoiser*
(Karras et al. 2022, eq. 57), the softmax-weighted mean of the points; with a width ``h`` it is
a kernel density estimate. All maths runs in float64, in chunks of the batch so that 20,000
components fit in memory.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..errors import InvalidParameter

DATASETS = ("moons", "swissroll", "gaussians8", "checkerboard", "spiral", "gmm")
MAX_POINTS = 20_000
DEFAULT_POINTS = 2_000
_CHUNK_ELEMENTS = 1 << 21     # batch rows x components per chunk of the mixture maths


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ---------------------------------------------------------------- the mixture
@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """sum_k w_k N(mu_k, diag(s_k^2)). weights ``[K]`` (normalised on creation), means ``[K, 2]``,
    stds ``[K]`` (isotropic) or ``[K, 2]`` (diagonal), all float64 numpy."""

    weights: np.ndarray
    means: np.ndarray
    stds: np.ndarray

    def __post_init__(self):
        means = np.asarray(self.means, dtype=np.float64).reshape(-1, 2)
        k = means.shape[0]
        w = np.ones(k) if self.weights is None else np.asarray(self.weights, np.float64).reshape(-1)
        stds = np.asarray(self.stds, dtype=np.float64)
        stds = np.broadcast_to(stds.reshape(-1, 1) if stds.ndim <= 1 else stds, (k, 2)).copy()
        if k < 1 or w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise InvalidParameter("weights", "must be K non-negative numbers, not all zero")
        if (stds < 0).any() or not np.isfinite(stds).all() or not np.isfinite(means).all():
            raise InvalidParameter("stds", "must be finite and non-negative")
        object.__setattr__(self, "weights", w / w.sum())
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "stds", stds)
        shared = bool((stds == stds[0, 0]).all())   # one isotropic width: the fast path
        object.__setattr__(self, "_shared", shared)

    @classmethod
    def from_points(cls, points, std: float = 0.0) -> "GaussianMixture":
        """Equal-weight components of width ``std`` on ``points`` ``[N, 2]``: with ``std = 0`` the
        empirical distribution (its posterior mean is the empirical optimal denoiser), with
        ``std = h`` a Gaussian kernel density estimate."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return cls(np.ones(len(p)), p, np.full(len(p), float(std)))

    @property
    def k(self) -> int:
        return int(self.means.shape[0])

    def mean(self) -> np.ndarray:
        """The mixture's mean ``[2]``."""
        return self.weights @ self.means

    def covariance(self) -> np.ndarray:
        """The mixture's covariance ``[2, 2]``."""
        d = self.means - self.mean()
        return (self.weights[:, None, None] * (d[:, :, None] * d[:, None, :]
                                               + np.eye(2) * (self.stds ** 2)[:, :, None])).sum(0)

    def sample(self, n: int, seed=None) -> np.ndarray:
        """``n`` draws, float32 ``[n, 2]``; ``seed`` an int, None or a numpy Generator."""
        rng = _rng(seed)
        k = rng.choice(self.k, size=n, p=self.weights)
        z = rng.standard_normal((n, 2))
        return (self.means[k] + self.stds[k] * z).astype(np.float32)

    def marginal(self, abar: float) -> "GaussianMixture":
        """q_t as a mixture: means ``sqrt(abar) mu_k``, variances ``abar s_k^2 + 1 - abar``."""
        return GaussianMixture(self.weights, math.sqrt(abar) * self.means,
                               np.sqrt(abar * self.stds ** 2 + (1.0 - abar)))

    # ---------------------------------------------------------------- closed forms at step t
    def log_prob(self, x, abar=1.0) -> torch.Tensor:
        """log q_t(x), float64 ``[B]``, for points ``x`` ``[B, 2]``."""
        return self._apply(x, abar, "log_prob")

    def score(self, x, abar) -> torch.Tensor:
        """grad_x log q_t(x), float64 ``[B, 2]``."""
        return self._apply(x, abar, "score")

    def eps(self, x, abar) -> torch.Tensor:
        """The Bayes-optimal noise prediction ``-sqrt(1 - abar) grad log q_t(x)``, float64 ``[B, 2]``
        (``abar < 1``)."""
        abar_b = _per_point(abar, x)
        return -torch.sqrt(1.0 - abar_b)[:, None] * self.score(x, abar)

    def posterior_mean(self, x, abar) -> torch.Tensor:
        """E[x_0 | x_t = x], float64 ``[B, 2]`` (Tweedie: ``(x + (1 - abar) score) / sqrt(abar)``)."""
        return self._apply(x, abar, "posterior_mean")

    def _apply(self, x, abar, what: str) -> torch.Tensor:
        x = torch.as_tensor(x).to(torch.float64).reshape(-1, 2)
        abar_b = _per_point(abar, x)
        rows = max(1, _CHUNK_ELEMENTS // self.k)
        fn = self._shared_stats if self._shared else self._diag_stats
        parts = [fn(x[s:s + rows], abar_b[s:s + rows], what) for s in range(0, x.shape[0], rows)]
        return torch.cat(parts) if parts else torch.zeros((0,) if what == "log_prob" else (0, 2),
                                                          dtype=torch.float64)

    def _tensors(self):
        t = getattr(self, "_t", None)
        if t is None:
            t = (torch.from_numpy(np.log(np.maximum(self.weights, 1e-300))),
                 torch.from_numpy(self.means), torch.from_numpy(self.stds ** 2))
            object.__setattr__(self, "_t", t)
        return t

    def _diag_stats(self, x, abar, what):
        """Any widths: ``[B, K, 2]`` per chunk."""
        logw, mu, s2 = self._tensors()
        a = abar.sqrt()[:, None, None]
        v = abar[:, None, None] * s2 + (1.0 - abar)[:, None, None]      # [B, K, 2]
        d = x[:, None, :] - a * mu                                       # [B, K, 2]
        logp = logw - 0.5 * (d * d / v + torch.log(2 * math.pi * v)).sum(-1)   # [B, K]
        if what == "log_prob":
            return torch.logsumexp(logp, 1)
        r = torch.softmax(logp, 1)[:, :, None]
        if what == "score":
            return -(r * d / v).sum(1)
        return (r * (mu + a * s2 / v * d)).sum(1)

    def _shared_stats(self, x, abar, what):
        """One isotropic width s for all components: ``[B, K]`` per chunk, by matrix products."""
        logw, mu, s2 = self._tensors()
        s2 = s2[0, 0]
        a = abar.sqrt()[:, None]                                         # [B, 1]
        v = abar[:, None] * s2 + (1.0 - abar)[:, None]                   # [B, 1]
        sq = ((x * x).sum(1, keepdim=True) - 2 * a * (x @ mu.T)
              + a * a * (mu * mu).sum(1)[None, :]).clamp(min=0)          # [B, K]
        logp = logw - 0.5 * sq / v
        if what == "log_prob":
            return torch.logsumexp(logp, 1) - torch.log(2 * math.pi * v[:, 0])
        mbar = torch.softmax(logp, 1) @ mu                               # E[mu_k | x_t], [B, 2]
        if what == "score":
            return -(x - a * mbar) / v
        return mbar + a * s2 / v * (x - a * mbar)


def _per_point(abar, x: torch.Tensor) -> torch.Tensor:
    """``abar`` (a float or ``[B]``) as float64 ``[B]``."""
    a = torch.as_tensor(abar, dtype=torch.float64).reshape(-1)
    return a.expand(x.shape[0]) if a.numel() == 1 else a


# ---------------------------------------------------------------- the data sets
def gaussians8(std: float = 0.1) -> GaussianMixture:
    """8 equal Gaussians of width ``std`` on a ring whose radius makes each coordinate's variance 1
    (``r^2 / 2 + std^2 = 1``)."""
    r = math.sqrt(2.0 * (1.0 - std ** 2))
    ang = np.arange(8) * (2 * math.pi / 8)
    return GaussianMixture(np.ones(8), r * np.stack([np.cos(ang), np.sin(ang)], 1), np.full(8, std))


def default_gmm() -> GaussianMixture:
    """The lab's starting mixture: three components, one of them elongated (about unit variance)."""
    return GaussianMixture(np.array([0.4, 0.35, 0.25]),
                           np.array([[-1.0, -0.6], [1.1, -0.4], [0.0, 1.2]]),
                           np.array([[0.35, 0.35], [0.25, 0.5], [0.6, 0.2]]))


def _moons(n, rng):
    k = rng.integers(0, 2, n)
    th = rng.uniform(0, math.pi, n)
    x = np.where(k == 0, np.cos(th), 1 - np.cos(th))
    y = np.where(k == 0, np.sin(th), 0.5 - np.sin(th))
    return np.stack([x, y], 1) + 0.06 * rng.standard_normal((n, 2))


def _swissroll(n, rng):
    th = 1.5 * math.pi * (1 + 2 * rng.uniform(0, 1, n))
    return np.stack([th * np.cos(th), th * np.sin(th)], 1) + 0.4 * rng.standard_normal((n, 2))


def _checkerboard(n, rng):
    x = rng.uniform(-2, 2, n)
    col = np.floor(x + 2).clip(0, 3)
    row = 2 * rng.integers(0, 2, n) + (col % 2)
    return np.stack([x, row - 2 + rng.uniform(0, 1, n)], 1)


def _spiral(n, rng):
    th = np.sqrt(rng.uniform(0, 1, n)) * 3 * math.pi
    arm = rng.integers(0, 2, n) * math.pi
    r = th + 0.3
    return np.stack([r * np.cos(th + arm), r * np.sin(th + arm)], 1) + 0.2 * rng.standard_normal((n, 2))


_SHAPES = {"moons": _moons, "swissroll": _swissroll, "checkerboard": _checkerboard, "spiral": _spiral}


@lru_cache(maxsize=None)
def _scaling(name: str):
    """The fixed (mean [2], scale) of a shape: from a 200,000-point reference draw, one scale for
    both coordinates (the shape keeps its aspect), so that the mean variance per coordinate is 1."""
    ref = _SHAPES[name](200_000, np.random.default_rng(20_250_101))
    mean = ref.mean(0)
    return mean, float(np.sqrt(((ref - mean) ** 2).mean()))


def mixture_of(name: str, gmm: GaussianMixture | None = None) -> GaussianMixture | None:
    """The exact mixture behind data set ``name`` (``gaussians8``, ``gmm``), or None for a shape."""
    if name == "gaussians8":
        return gaussians8()
    if name == "gmm":
        return gmm or default_gmm()
    return None


def toy_data(name: str, n: int = DEFAULT_POINTS, seed=None, gmm: GaussianMixture | None = None) -> np.ndarray:
    """``n`` points of data set ``name``, float32 ``[n, 2]``, about unit variance per coordinate.
    ``seed``: an int, None or a numpy Generator; ``gmm`` the mixture for ``name = "gmm"``."""
    if name not in DATASETS:
        raise InvalidParameter("data", f"must be one of {', '.join(DATASETS)}, not {name!r}")
    if not 1 <= int(n) <= MAX_POINTS:
        raise InvalidParameter("n", f"must be in 1..{MAX_POINTS}")
    rng = _rng(seed)
    mix = mixture_of(name, gmm)
    if mix is not None:
        return mix.sample(int(n), rng)
    mean, scale = _scaling(name)
    return ((_SHAPES[name](int(n), rng) - mean) / scale).astype(np.float32)
