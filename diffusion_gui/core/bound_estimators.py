"""The steps of the DDPM bound as numbers: log densities, two estimators, the IWAE bound, the
exact likelihood of a 1-D chain, the telescoping at T = 4 and the KL as a weighted noise MSE.

The model is the discrete chain of DDPM (Ho et al. 2020, eqs. 1-5)::

    p_theta(x_{0:T}) = p(x_T) prod_{t=1}^T p_theta(x_{t-1} | x_t),    p(x_T) = N(0, I)
    q(x_{1:T} | x_0) = prod_{t=1}^T q(x_t | x_{t-1}) = prod N(x_t; sqrt(alpha_t) x_{t-1}, beta_t I)

with ``p_theta(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I)`` from
:meth:`GaussianDiffusion.p_mean_variance` and, at ``t = 1``, the decoder ``p(x_0 | x_1)``: a
Gaussian density (continuous data: 1-D and 2-D points) or the 8-bit discretised Gaussian of
:func:`~diffusion_gui.core.vlb.discretized_gaussian_log_likelihood` (images). The variance of
every Gaussian of p is ``exp(model_log_variance)`` (at ``t = 1`` the clipped ``beta~_2`` of
fixed_small, as :func:`~diffusion_gui.core.vlb.vb_terms_bpd` uses).

Along one forward trajectory ``x_{1:T} ~ q(. | x_0)`` two estimators of the same bound
``L = E_q[log q(x_{1:T} | x_0) - log p_theta(x_{0:T})] >= -log p_theta(x_0)``:

(a) plain Monte Carlo: ``log q(x_{1:T} | x_0) - log p_theta(x_{0:T})`` itself;
(b) Rao-Blackwellised: ``L_T + sum_{t>=2} KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) + L_0``,
    each KL in closed form (the expectation over ``x_{t-1}`` done exactly).

Timesteps: ``i = t - 1`` indexes arrays (the paper's ``t = 0`` clean, ``t = T`` noise). Points are
``[B, ...]`` (``[B, D]`` or images ``[B, C, H, W]``); per-sample figures are summed over the
dimensions (nats) unless a name says ``per_dim``. Pure torch + numpy, float64 inside.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from .diffusion import GaussianDiffusion
from .vlb import LN2, discretized_gaussian_log_likelihood, normal_kl, vb_terms_bpd

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOG_2PI = math.log(2 * math.pi)
DECODERS = ("gaussian", "discretized")


def sum_flat(x: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension but the batch: ``[B, ...] -> [B]``."""
    return x.reshape(x.shape[0], -1).sum(1)


def gaussian_log_prob(x: torch.Tensor, mean, logvar) -> torch.Tensor:
    """``log N(x; mean, exp(logvar) I)`` per sample, summed over dimensions: ``[B]`` (nats).
    ``mean`` and ``logvar`` broadcast against ``x`` (tensors or floats)."""
    logvar = torch.as_tensor(logvar, dtype=x.dtype)
    return sum_flat(-0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar)).expand_as(x))


# ---------------------------------------------------------------- the densities of the chain
def log_q_step(diffusion: GaussianDiffusion, x_prev: torch.Tensor, x_t: torch.Tensor, i: int) -> torch.Tensor:
    """``log q(x_t | x_{t-1}) = log N(x_t; sqrt(alpha_t) x_{t-1}, beta_t I)``: ``[B]``."""
    s = diffusion.schedule
    return gaussian_log_prob(x_t, float(s.sqrt_alphas[i]) * x_prev, math.log(float(s.betas[i])))


def log_q_marginal(diffusion: GaussianDiffusion, x0: torch.Tensor, x_t: torch.Tensor, i: int) -> torch.Tensor:
    """``log q(x_t | x_0) = log N(x_t; sqrt(abar_t) x_0, (1 - abar_t) I)``: ``[B]``."""
    s = diffusion.schedule
    return gaussian_log_prob(x_t, float(s.sqrt_alpha_bars[i]) * x0, float(s.log_one_minus_alpha_bars[i]))


def log_q_posterior(diffusion: GaussianDiffusion, x0, x_t, x_prev, i: int) -> torch.Tensor:
    """``log q(x_{t-1} | x_t, x_0)`` for ``i >= 1`` (``t >= 2``): ``[B]``."""
    mean, _, logvar = diffusion.q_posterior(x0, x_t, i)
    return gaussian_log_prob(x_prev, mean, logvar)


def log_q_chain(diffusion: GaussianDiffusion, traj: list[torch.Tensor]) -> torch.Tensor:
    """``log q(x_{1:T} | x_0) = sum_t log q(x_t | x_{t-1})`` of ``traj = [x_0, x_1, ..., x_T]``."""
    return sum(log_q_step(diffusion, traj[i], traj[i + 1], i) for i in range(len(traj) - 1))


def log_prior(x_T: torch.Tensor) -> torch.Tensor:
    """``log p(x_T) = log N(x_T; 0, I)``: ``[B]``."""
    return gaussian_log_prob(x_T, 0.0, 0.0)


def log_p_step(diffusion: GaussianDiffusion, model_output, x_t, x_prev, i: int,
               decoder: str = "gaussian") -> torch.Tensor:
    """``log p_theta(x_{t-1} | x_t)`` at ``x_prev`` (for ``i == 0`` the decoder ``log p(x_0 | x_1)``,
    ``decoder`` ``gaussian`` or ``discretized``): ``[B]``."""
    mean, _, logvar, _ = diffusion.p_mean_variance(model_output, x_t, i)
    return _log_p(x_prev, mean, logvar, i, decoder)


def _log_p(x_prev, mean, logvar, i: int, decoder: str) -> torch.Tensor:
    if i == 0 and decoder == "discretized":
        return sum_flat(discretized_gaussian_log_likelihood(x_prev, mean, 0.5 * torch.as_tensor(logvar, dtype=x_prev.dtype)))
    return gaussian_log_prob(x_prev, mean, logvar)


def step_terms(diffusion: GaussianDiffusion, model_output, x0, x_prev, x_t, i: int,
               decoder: str = "gaussian"):
    """The terms of step ``t = i + 1`` of both estimators, per sample ``[B]`` (nats):
    ``(log q(x_t | x_{t-1}) - log p_theta(x_{t-1} | x_t), L_{t-1})`` where ``L_{t-1}`` is the
    closed-form ``KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))`` for ``i >= 1`` and the
    decoder's ``-log p(x_0 | x_1)`` for ``i == 0``."""
    mean, _, logvar, _ = diffusion.p_mean_variance(model_output, x_t, i)
    lp = _log_p(x_prev, mean, logvar, i, decoder)
    plain = log_q_step(diffusion, x_prev, x_t, i) - lp
    if i == 0:
        return plain, -lp
    tmean, _, tlogvar = diffusion.q_posterior(x0, x_t, i)
    return plain, sum_flat(normal_kl(tmean, tlogvar, mean, logvar).expand_as(x_t))


def vb_rows_nats(diffusion: GaussianDiffusion, model_output, x0, x_t, i) -> torch.Tensor:
    """One term of the bound per row, nats per dimension: ``[B]`` for points ``[B, D]`` at
    per-row indices ``i`` ``[B]``: the closed-form KL at ``i >= 1`` (``t >= 2``), the Gaussian
    decoder ``-log p_theta(x_0 | x_1)`` at ``i == 0``. Differentiable (L_hybrid's L_vlb part)."""
    mean, _, logvar, _ = diffusion.p_mean_variance(model_output, x_t, i)
    tmean, _, tlogvar = diffusion.q_posterior(x0, x_t, i)
    D = x0[0].numel()
    kl = normal_kl(tmean, tlogvar, mean, logvar).reshape(x0.shape[0], -1).mean(1)
    nll = -gaussian_log_prob(x0, mean, logvar) / D
    return torch.where(i == 0, nll, kl)


def prior_kl(diffusion: GaussianDiffusion, x0: torch.Tensor) -> torch.Tensor:
    """``L_T = KL(q(x_T | x_0) || N(0, I))`` per sample, summed over dimensions: ``[B]`` (nats)."""
    s, i = diffusion.schedule, diffusion.num_timesteps - 1
    return sum_flat(normal_kl(float(s.sqrt_alpha_bars[i]) * x0, float(s.log_one_minus_alpha_bars[i]),
                              0.0, 0.0).expand_as(x0))


# ---------------------------------------------------------------- (a) and (b) along trajectories
@dataclass
class TrajectoryTerms:
    """Both estimators on ``n`` forward trajectories of one ``x_0`` (or of ``n`` points).
    plain: (a) ``log q(x_{1:T} | x_0) - log p_theta(x_{0:T})`` ``[n]``; rao_blackwell: (b) ``[n]``
    (nats per sample, summed over ``dims``). ``log_weights = -plain`` are the importance weights
    ``log p_theta(x_{0:T}) - log q(x_{1:T} | x_0)`` of the IWAE bound. plain_step_std /
    rb_step_std ``[T]``: the spread over the trajectories of each step's term (index ``i = t - 1``):
    ``log q(x_t | x_{t-1}) / p_theta(x_{t-1} | x_t)`` for (a), ``L_{t-1}`` for (b)."""

    plain: np.ndarray
    rao_blackwell: np.ndarray
    dims: int
    timesteps: int
    plain_step_std: np.ndarray | None = None
    rb_step_std: np.ndarray | None = None

    @property
    def log_weights(self) -> np.ndarray:
        return -self.plain


def trajectory_terms(model: Model, diffusion: GaussianDiffusion, x0: torch.Tensor, *,
                     decoder: str = "gaussian", generator: torch.Generator | None = None,
                     t_batch: int = 1024, model_dtype=torch.float32,
                     ) -> Iterator[tuple[int, int, TrajectoryTerms | None]]:
    """Walk ``x0`` (``[n, ...]``: n copies of one point, or n points) forward through the chain,
    ``x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z`` with z from ``generator``, and add up both
    estimators step by step. ``model(x [rows, ...], i [rows]) -> eps`` is called with
    ``model_dtype``; ``max(1, t_batch // n)`` consecutive steps share one call. Yields
    ``(done, T, None)`` after each call and finally ``(T, T, TrajectoryTerms)``; stop iterating
    to cancel."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}")
    T, n = diffusion.num_timesteps, x0.shape[0]
    x0 = x0.to(torch.float64)
    k = max(1, int(t_batch) // max(n, 1))
    plain = torch.zeros(n, dtype=torch.float64)
    rb = torch.zeros(n, dtype=torch.float64)
    step_std = np.zeros((2, T))
    x_prev, i = x0, 0
    index_map = getattr(diffusion, "index_map", None)
    with torch.no_grad():
        while i < T:
            idx = list(range(i, min(i + k, T)))
            xs, x = [], x_prev
            for j in idx:
                x = diffusion.q_step(x, j, torch.randn(x0.shape, generator=generator, dtype=torch.float64))
                xs.append(x)
            it = torch.as_tensor(idx, dtype=torch.long).repeat_interleave(n)
            it_model = index_map[it] if index_map is not None else it
            out = model(torch.cat(xs).to(model_dtype), it_model).to(torch.float64)
            for m, j in enumerate(idx):
                a, b = step_terms(diffusion, out[m * n:(m + 1) * n], x0, xs[m - 1] if m else x_prev,
                                  xs[m], j, decoder)
                plain += a
                rb += b
                step_std[:, j] = (float(a.std()) if n > 1 else 0.0, float(b.std()) if n > 1 else 0.0)
            x_prev, i = xs[-1], idx[-1] + 1
            if i < T:
                yield i, T, None
        plain -= log_prior(x_prev)
        rb += prior_kl(diffusion, x0)
    dims = int(np.prod(x0.shape[1:]))
    yield T, T, TrajectoryTerms(plain.numpy(), rb.numpy(), dims, T, step_std[0], step_std[1])


def run_terms(gen) -> TrajectoryTerms:
    """Exhaust :func:`trajectory_terms` and return its result."""
    last = None
    for last in gen:
        pass
    return last[2]


def running_mean(x: np.ndarray) -> np.ndarray:
    """The mean of the first ``k`` values for ``k = 1 .. len(x)``: ``[n]``."""
    x = np.asarray(x, dtype=np.float64)
    return np.cumsum(x) / np.arange(1, len(x) + 1)


# ---------------------------------------------------------------- the importance-weighted bound
def iwae_curve(log_weights, ks) -> dict:
    """The IWAE bound ``-log (1/K) sum_k w_k`` for each K in ``ks``, from a pool of log weights
    ``[M]`` split into ``M // K`` disjoint groups of K: ``{"k", "mean", "se", "groups"}`` arrays
    (nats; ``se`` the standard error of the mean over groups, NaN with one group)."""
    lw = torch.as_tensor(np.asarray(log_weights, dtype=np.float64))
    out = {"k": [], "mean": [], "se": [], "groups": []}
    for K in ks:
        g = lw.numel() // int(K)
        if g < 1:
            continue
        b = -(torch.logsumexp(lw[:g * K].reshape(g, K), 1) - math.log(K))
        out["k"].append(int(K))
        out["mean"].append(float(b.mean()))
        out["se"].append(float(b.std() / math.sqrt(g)) if g > 1 else math.nan)
        out["groups"].append(g)
    return {k: np.asarray(v) for k, v in out.items()}


# ---------------------------------------------------------------- a 1-D model, exact on a grid
@dataclass(frozen=True)
class Mixture1D:
    """A 1-D Gaussian mixture ``sum_k w_k N(mu_k, s_k^2)`` (float64 numpy ``[K]`` each); under
    the forward process ``q_t = sum_k w_k N(sqrt(abar) mu_k, abar s_k^2 + 1 - abar)``."""

    weights: tuple = (0.35, 0.65)
    means: tuple = (-1.2, 0.9)
    stds: tuple = (0.3, 0.4)

    def _params(self, abar: torch.Tensor):
        w = torch.tensor(self.weights, dtype=torch.float64)
        mu, s = torch.tensor(self.means, dtype=torch.float64), torch.tensor(self.stds, dtype=torch.float64)
        a = abar.reshape(-1, 1)
        return torch.log(w / w.sum()), a.sqrt() * mu, a * s ** 2 + (1 - a)

    def log_prob(self, x, abar=1.0) -> torch.Tensor:
        """``log q_t(x)``, float64 ``[B]`` for ``x`` ``[B]`` or ``[B, 1]``."""
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, 1)
        logw, m, v = self._params(torch.as_tensor(abar, dtype=torch.float64).expand(x.shape[0]))
        return torch.logsumexp(logw - 0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v), 1)

    def eps(self, x, abar) -> torch.Tensor:
        """``eps*(x_t) = -sqrt(1 - abar) d/dx log q_t(x)``: float64 ``[B, 1]``."""
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, 1)
        a = torch.as_tensor(abar, dtype=torch.float64).reshape(-1).expand(x.shape[0])
        logw, m, v = self._params(a)
        r = torch.softmax(logw - 0.5 * (torch.log(v) + (x - m) ** 2 / v), 1)
        score = -(r * (x - m) / v).sum(1, keepdim=True)
        return -torch.sqrt(1 - a).reshape(-1, 1) * score

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` draws, float64 ``[n, 1]``."""
        rng = np.random.default_rng(seed)
        w = np.asarray(self.weights) / np.sum(self.weights)
        k = rng.choice(len(w), size=n, p=w)
        return (np.asarray(self.means)[k] + np.asarray(self.stds)[k] * rng.standard_normal(n))[:, None]


class Mixture1DDenoiser:
    """The exact ``eps*`` of a :class:`Mixture1D` as a model ``(x [B, 1], i [B]) -> eps [B, 1]``."""

    def __init__(self, mixture: Mixture1D, diffusion: GaussianDiffusion):
        self.mixture, self.diffusion = mixture, diffusion

    def __call__(self, x, i):
        abar = self.diffusion.schedule.alpha_bars[torch.as_tensor(i, dtype=torch.long).reshape(-1)]
        return self.mixture.eps(x, abar).to(x.dtype)


def exact_nll_1d(model: Model, diffusion: GaussianDiffusion, x0, *, lo: float = -6.0,
                 hi: float = 6.0, n_grid: int = 2001) -> np.ndarray:
    """The exact ``-log p_theta(x_0)`` (nats) of the discrete chain of a 1-D model at points
    ``x0`` ``[Q]``: the density of ``x_T ~ N(0, 1)`` on a grid of ``n_grid`` points over
    ``[lo, hi]`` is pushed through every ``p_theta(x_{t-1} | x_t)`` by quadrature
    (``p_{t-1}(y) = sum_x p_t(x) dx N(y; mu_theta(x, t), sigma_t^2)``), and the decoder at
    ``t = 1`` is evaluated at ``x0`` itself. Float64; ``model`` is called with float64."""
    g = torch.linspace(lo, hi, n_grid, dtype=torch.float64)
    dx = float(g[1] - g[0])
    x0 = torch.as_tensor(np.asarray(x0, np.float64).reshape(-1))
    p = torch.exp(-0.5 * (LOG_2PI + g ** 2))

    def kernel(i, y):
        xi = g.reshape(-1, 1)
        out = model(xi, torch.full((n_grid,), i, dtype=torch.long)).to(torch.float64)
        mean, _, logvar, _ = diffusion.p_mean_variance(out, xi, i)
        return torch.exp(-0.5 * (LOG_2PI + logvar + (y.reshape(1, -1) - mean) ** 2 / math.exp(logvar)))

    with torch.no_grad():
        for i in range(diffusion.num_timesteps - 1, 0, -1):
            p = (p * dx) @ kernel(i, g)
        dens = (p * dx) @ kernel(0, x0)
    return (-torch.log(dens)).numpy()


# ---------------------------------------------------------------- telescoping (T = 4 in the notes)
def telescoping(model: Model, diffusion: GaussianDiffusion, x0: torch.Tensor, *,
                generator: torch.Generator | None = None) -> dict:
    """On one trajectory of ``x0`` (``[1, D]``) both forms of ``log q(x_{1:T}|x_0) / p_theta(x_{0:T})``:

    direct    = -log p(x_T) + sum_{t=1}^T log q(x_t | x_{t-1}) / p_theta(x_{t-1} | x_t)
    rewritten = log q(x_T | x_0) / p(x_T) + sum_{t=2}^T log q(x_{t-1} | x_t, x_0) / p_theta(x_{t-1} | x_t)
                - log p_theta(x_0 | x_1)

    through Bayes' rule ``q(x_t | x_{t-1}) = q(x_{t-1} | x_t, x_0) q(x_t | x_0) / q(x_{t-1} | x_0)``
    (t >= 2), whose last factors telescope: ``prod_{t=2}^T q(x_t|x_0)/q(x_{t-1}|x_0) = q(x_T|x_0)/q(x_1|x_0)``.
    Returns plain floats (log densities, nats) and lists indexed by ``t = 2 .. T``."""
    T = diffusion.num_timesteps
    x0 = x0.to(torch.float64)
    traj = [x0]
    for i in range(T):
        traj.append(diffusion.q_step(traj[-1], i, torch.randn(x0.shape, generator=generator, dtype=torch.float64)))
    with torch.no_grad():
        outs = [model(traj[i + 1], torch.tensor([i])).to(torch.float64) for i in range(T)]

    def f(v):
        return float(v.reshape(-1)[0])

    lq = [f(log_q_step(diffusion, traj[i], traj[i + 1], i)) for i in range(T)]       # t = 1..T
    lp = [f(log_p_step(diffusion, outs[i], traj[i + 1], traj[i], i)) for i in range(T)]
    lqm = [f(log_q_marginal(diffusion, x0, traj[i + 1], i)) for i in range(T)]         # log q(x_t|x_0)
    lqp = [math.nan] + [f(log_q_posterior(diffusion, x0, traj[i + 1], traj[i], i)) for i in range(1, T)]
    prior = f(log_prior(traj[-1]))
    direct = -prior + sum(a - b for a, b in zip(lq, lp))
    ratios = [lqm[i] - lqm[i - 1] for i in range(1, T)]       # log q(x_t|x_0)/q(x_{t-1}|x_0), t = 2..T
    rewritten = (lqm[-1] - prior) + sum(lqp[i] - lp[i] for i in range(1, T)) - lp[0]
    bayes = [lqp[i] + lqm[i] - lqm[i - 1] for i in range(1, T)]   # = log q(x_t | x_{t-1})
    return {"T": T, "x": [v.reshape(-1).tolist() for v in traj],
            "log_q_step": lq, "log_p_step": lp, "log_q_marginal": lqm, "log_q_posterior": lqp[1:],
            "log_prior": prior, "bayes": bayes, "bayes_residual": max(abs(a - b) for a, b in zip(bayes, lq[1:])),
            "telescoped_ratios": ratios, "product_of_ratios": sum(ratios), "cancelled": lqm[-1] - lqm[0],
            "direct": direct, "rewritten": rewritten, "residual": abs(direct - rewritten)}


# ---------------------------------------------------------------- the KL as a weighted noise MSE
def lambda_weights(diffusion: GaussianDiffusion) -> np.ndarray:
    """``lambda_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t))``, float64 ``[T]`` (index
    ``i = t - 1``; ``sigma_t^2 = exp(model_log_variance)``): the weight of the noise MSE in
    ``L_{t-1}`` (Ho et al. 2020, eq. 12)."""
    if diffusion.learned_variance:
        raise ValueError("lambda_t needs a fixed variance; a learned one is per pixel")
    s = diffusion.schedule
    sig2 = torch.exp(diffusion.model_log_variance)
    return (s.betas ** 2 / (2 * sig2 * s.alphas * (1 - s.alpha_bars))).numpy()


def kl_constant(diffusion: GaussianDiffusion) -> np.ndarray:
    """The per-dimension part of ``L_{t-1}`` that does not depend on the network,
    ``0.5 (log sigma_t^2 / beta~_t + beta~_t / sigma_t^2 - 1)``: float64 ``[T]``. Zero for
    fixed_small (``sigma_t^2 = beta~_t``) at ``t >= 2``; positive for fixed_large."""
    lv_p = diffusion.model_log_variance
    lv_q = diffusion.schedule.posterior_log_variance_clipped
    return (0.5 * (lv_p - lv_q + torch.exp(lv_q - lv_p) - 1)).numpy()


def weight_shares(weights, buckets: int = 10) -> np.ndarray:
    """The share of the total of ``weights`` ``[T]`` that falls in each of ``buckets`` equal
    ranges of t (bucket b holds t in ``(b T / buckets, (b + 1) T / buckets]``): ``[buckets]``."""
    w = np.asarray(weights, dtype=np.float64)
    b = np.arange(len(w)) * buckets // len(w)
    return np.bincount(b, weights=w, minlength=buckets) / w.sum()


@torch.no_grad()
def kl_vs_weighted_mse(model: Model, diffusion: GaussianDiffusion, x0: torch.Tensor, t_values, *,
                       generator: torch.Generator | None = None, model_dtype=torch.float32) -> dict:
    """For each paper step ``t`` in ``t_values`` (each in 2..T) on ``x0`` ``[B, ...]`` with fresh
    noise: ``kl`` = ``L_{t-1}`` per dimension from the two Gaussians
    (:func:`~diffusion_gui.core.vlb.vb_terms_bpd` times ln 2), ``mse`` = ``mean_dims (eps -
    eps_theta)^2``, and ``weighted = lambda_t mse + c_t`` (:func:`lambda_weights`,
    :func:`kl_constant`), each averaged over the batch; ``max_rel`` the largest
    ``|kl - weighted| / kl`` over t and samples. Arrays ``[len(t_values)]``, nats/dim."""
    lam, const = lambda_weights(diffusion), kl_constant(diffusion)
    index_map = getattr(diffusion, "index_map", None)
    x0 = x0.to(torch.float64)
    B = x0.shape[0]
    kl, mse, rel = [], [], []
    for t in t_values:
        if not 2 <= int(t) <= diffusion.num_timesteps:
            raise ValueError("t must be in 2..T (t = 1 is the decoder, not a KL)")
        i = torch.full((B,), int(t) - 1, dtype=torch.long)
        noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
        x_t = diffusion.q_sample(x0, i, noise)
        out = model(x_t.to(model_dtype), index_map[i] if index_map is not None else i).to(torch.float64)
        k = vb_terms_bpd(diffusion, out, x0, x_t, i).to(torch.float64) * LN2
        _, eps_pred = diffusion.x0_and_eps(out, x_t, i)
        m = sum_flat((noise - eps_pred) ** 2) / (x0[0].numel())
        w = lam[int(t) - 1] * m + const[int(t) - 1]
        kl.append(float(k.mean()))
        mse.append(float(m.mean()))
        rel.append(float(((k - w).abs() / k.abs().clamp(min=1e-300)).max()))
    t = np.asarray([int(v) for v in t_values])
    return {"t": t, "kl": np.asarray(kl), "mse": np.asarray(mse), "lambda": lam[t - 1],
            "constant": const[t - 1], "weighted": lam[t - 1] * np.asarray(mse) + const[t - 1],
            "rel": np.asarray(rel), "max_rel": float(max(rel)) if rel else 0.0}
