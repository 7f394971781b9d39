"""What the KL panel computes, Qt-free: the space worms with a binomial of any (n, p), and two
1-D Gaussians p = N(mu1, var1), q = N(mu2, var2). Every number comes from
:mod:`diffusion_gui.core.kl`; this module only arranges it for the panel (and its settings).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.kl import (
    binomial_pmf,
    discrete_kl,
    gaussian_kl,
    gaussian_kl_numerical,
    gaussian_log_pdf,
    space_worms,
)
from .settings import setting

__all__ = ["P_STEPS", "MU_RANGE", "MU_STEP", "VAR_MIN", "VAR_MAX", "VAR_STEP", "GAUSS_DEFAULTS",
           "X_GRID", "N_MAX", "KLSettings", "WORMS", "distributions", "discrete_kls",
           "fitted_p", "worms_csv", "GaussView", "gauss_view", "gauss_y_range"]

P_STEPS = 1000                      # the p slider: p = value / P_STEPS
MU_RANGE, MU_STEP = 4.0, 0.05       # the mean sliders: -4 .. 4
VAR_MIN, VAR_MAX, VAR_STEP = 0.05, 4.0, 0.05
GAUSS_DEFAULTS = (0.0, 1.0, 1.0, 2.0)      # mu1, var1, mu2, var2
X_GRID = np.linspace(-8, 8, 801)
LEGEND_ROOM = 1.35                  # the y range's top over the highest curve: room for the legend
N_MAX = 20                          # the binomial's n: 1 .. N_MAX
#: The example: teeth of 100 space worms, with its uniform and binomial fits.
WORMS = space_worms()


@dataclass
class KLSettings:
    """The KL panel's settings (QSettings keys = the field names)."""

    n: int = setting(len(WORMS.teeth) - 1, lo=1, hi=N_MAX)
    p: float = setting(WORMS.binomial_p, lo=0.0, hi=1.0)
    reverse: bool = setting(False)
    mu1: float = setting(GAUSS_DEFAULTS[0], lo=-MU_RANGE, hi=MU_RANGE)
    var1: float = setting(GAUSS_DEFAULTS[1], lo=VAR_MIN, hi=VAR_MAX)
    mu2: float = setting(GAUSS_DEFAULTS[2], lo=-MU_RANGE, hi=MU_RANGE)
    var2: float = setting(GAUSS_DEFAULTS[3], lo=VAR_MIN, hi=VAR_MAX)
    gauss_reverse: bool = setting(False)


# ---------------------------------------------------------------- discrete: the space worms
def fitted_p(n: int, worms=WORMS) -> float:
    """The example's fit: p = mean teeth / n."""
    return float((worms.teeth * worms.true).sum() / n)


def distributions(n: int, p: float, worms=WORMS):
    """``(k, true, uniform, binomial)`` over the common support ``0..max(10, n)`` (the observed
    distribution and the uniform padded with zeros)."""
    true, uni = worms.true, worms.uniform
    binom = binomial_pmf(int(n), float(p))
    m = max(len(true), len(binom))

    def pad(a):
        return np.concatenate([a, np.zeros(m - len(a))])
    return np.arange(m), pad(true), pad(uni), pad(binom)


def discrete_kls(n: int, p: float, reverse: bool = False, worms=WORMS) -> dict:
    """``{"uniform": KL, "binomial": KL}`` in nats: KL(P || Q) of the data P against each model
    Q, or KL(Q || P) when ``reverse`` (``math.inf`` where the support does not cover)."""
    _, true, uni, binom = distributions(n, p, worms)
    if reverse:
        return {"uniform": discrete_kl(uni, true), "binomial": discrete_kl(binom, true)}
    return {"uniform": discrete_kl(true, uni), "binomial": discrete_kl(true, binom)}


def worms_csv(n: int, p: float, worms=WORMS) -> str:
    """The three distributions as CSV text: ``teeth,true,uniform,binomial``."""
    k, true, uni, binom = distributions(n, p, worms)
    rows = ["teeth,true,uniform,binomial"] + [
        f"{int(a)},{b:.8g},{c:.8g},{d:.8g}" for a, b, c, d in zip(k, true, uni, binom)]
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------- continuous: two Gaussians
@dataclass
class GaussView:
    """Two Gaussians on :data:`X_GRID`: densities ``p``, ``q`` and the KL's ``integrand``
    (``p log(p/q)``, or ``q log(q/p)`` when swapped), each ``[len(X_GRID)]``; ``closed`` and
    ``numerical``: the KL in nats (closed form; trapezoid rule)."""

    x: np.ndarray
    p: np.ndarray
    q: np.ndarray
    integrand: np.ndarray
    closed: float
    numerical: float


def gauss_view(mu1: float, var1: float, mu2: float, var2: float, swap: bool = False) -> GaussView:
    """KL(p || q) (``swap``: KL(q || p)) for p = N(mu1, var1), q = N(mu2, var2), with the curves."""
    a = (mu2, var2, mu1, var1) if swap else (mu1, var1, mu2, var2)
    lp, lq = gaussian_log_pdf(X_GRID, mu1, var1), gaussian_log_pdf(X_GRID, mu2, var2)
    p, q = np.exp(lp), np.exp(lq)
    integrand = q * (lq - lp) if swap else p * (lp - lq)
    return GaussView(X_GRID, p, q, integrand, gaussian_kl(*a), gaussian_kl_numerical(*a))


def gauss_y_range(g: GaussView, room: float = LEGEND_ROOM) -> tuple[float, float]:
    """``(lo, hi)`` of a y range that shows every curve of ``g`` whole: the densities and the
    integrand, whose peak can be many times the densities' (p = N(0, 0.05), q = N(4, 2): 10.4
    against 1.78), with ``room`` above the highest one for the legend. ``lo`` is the integrand's
    lowest value, or 0: negative where the other density is larger, never below minus its peak
    (``p log(p/q) >= p - q``)."""
    top = max(float(g.p.max()), float(g.q.max()), float(g.integrand.max()))
    lo = min(0.0, float(g.integrand.min()))
    return lo, top * room
