"""The 2-D lab's numbers beside the pictures (Qt-free).

- :func:`step_numbers`: the forward coefficients at paper step t (t, beta_t, abar_t,
  sqrt(abar_t), sqrt(1 - abar_t), SNR).
- :func:`compare_denoisers`: samples of each available denoiser (the MLP, the exact one for a
  mixture, the empirical one) with their :class:`~diffusion_gui.sessions.lab2d.Quality`, and
  the nearest-training-point distances of a fresh draw of the data (the reference: how far new
  data lies from the training points). The memorisation contrast: the empirical denoiser's
  samples sit on training points, the MLP's do not.
- :func:`heldout_bound`: the variational bound of a denoiser on held-out points (a fresh draw),
  in nats per dimension (:func:`diffusion_gui.core.toy2d_bound.bound_terms_nats`: the decoder
  term a Gaussian density, as data are continuous). :data:`BOUND_PENDING` is what the numbers
  view shows before it is computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.toy2d_metrics import data_std, nearest_distances
from .lab2d_settings import BOUND_PENDING

__all__ = ["step_numbers", "compare_denoisers", "Comparison", "fresh_nearest", "BOUND_PENDING",
           "COMPARE_N", "COMPARE_STEPS", "heldout_bound", "BOUND_N"]

BOUND_N = 500           # held-out points of the bound

COMPARE_N = 1000        # samples per denoiser in the comparison
COMPARE_STEPS = 100     # sampler steps in the comparison


def step_numbers(session, t: int) -> dict:
    """The forward process at paper step ``t`` (0..T): a dict of floats."""
    a = session.abar(t)
    beta = 0.0 if t == 0 else float(session.diffusion.schedule.betas[t - 1])
    return {"t": int(t), "T": session.timesteps, "beta": beta, "abar": a,
            "sqrt_abar": float(np.sqrt(a)), "sqrt_1m_abar": float(np.sqrt(1 - a)),
            "snr": float(a / (1 - a)) if a < 1 else float("inf")}


@dataclass
class Comparison:
    """One denoiser's samples ``[n, 2]`` and their quality (``Quality``)."""

    kind: str
    samples: np.ndarray = field(repr=False)
    quality: object = None


def fresh_nearest(session, n: int = COMPARE_N, seed: int = 7) -> np.ndarray | None:
    """The nearest-training-point distances of ``n`` fresh data points, in units of the data's
    std, ``[n]`` (None for hand-made data: there is no fresh draw)."""
    if session.settings.data == "custom":
        return None
    fresh = session.fresh(n, np.random.default_rng(seed))
    return nearest_distances(fresh, session.data) / data_std(session.data)


def compare_denoisers(session, kinds=None, *, n: int = COMPARE_N, steps: int = COMPARE_STEPS,
                      sampler_kind: str | None = None, seed: int = 0):
    """A generator of :class:`Comparison`, one per denoiser of ``kinds`` (default: every one
    the data has: ``mlp``, ``exact`` for a mixture, ``empirical``), each sampled from the same
    x_T (``seed``) with ``steps`` steps of ``sampler_kind`` (default the settings')."""
    kinds = kinds or [k for k in ("mlp", "exact", "empirical") if k != "exact" or session.has_exact]
    steps = min(int(steps), session.timesteps)
    for kind in kinds:
        x = session.sample_points(kind, n=n, steps=steps, sampler_kind=sampler_kind, seed=seed)
        yield Comparison(kind, x, session.quality(x))


def heldout_bound(session, kind: str = "mlp", n: int = BOUND_N, seed: int = 11) -> dict:
    """The bound ``L`` (an upper bound on ``-log p(x_0)``) of denoiser ``kind`` on ``n`` held-out
    points, in nats per dimension: ``{"total", "prior", "decoder", "kl_sum", "held_out"}``
    (``held_out`` False for hand-made data, where the training points stand in)."""
    from ..core.toy2d_bound import bound_terms_nats
    from .lab2d_paths import frozen
    held_out = session.settings.data != "custom"
    x0 = session.fresh(n, np.random.default_rng(seed)) if held_out else session.data[:n]
    r = bound_terms_nats(session.diffusion_for(kind), frozen(session.denoiser(kind)), x0, seed=seed)
    return {k: float(r[k]) for k in ("total", "prior", "decoder", "kl_sum")} | {"held_out": held_out}
