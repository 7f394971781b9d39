"""The 2-D lab's vector field at one paper step t (Qt-free): what a denoiser says on a grid.

At a point ``x_t`` a denoiser's ``eps(x_t, t)`` gives the predicted clean point
``x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)`` and the score
``grad log q_t = -eps / sqrt(1 - abar_t)`` (exact for the mixture's ``eps*``). :func:`field`
evaluates either on a grid; :func:`field_error` compares a learned field with the exact one,
weighted by the exact density q_t (where the particles are); :func:`arrow_segments` turns a field
into line segments (shafts and heads) for a plot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.toy2d import GaussianMixture
from ..core.toy2d_metrics import MixtureDenoiser, data_std
from ..errors import InvalidParameter
from .lab2d_paths import frozen
from .lab2d_settings import FIELDS

__all__ = ["FIELDS", "Field", "field", "field_error", "arrow_segments", "arrow_scale", "grid",
           "Overlay", "overlay", "reference_mixture", "KDE_POINTS"]

KDE_POINTS = 3000          # at most this many data points make the shown KDE



@dataclass
class Field:
    """``points`` ``[G, 2]`` (a grid, x fastest), ``vectors`` ``[G, 2]`` float64, ``what`` in
    :data:`FIELDS`, the paper step ``t`` and the denoiser ``kind``."""

    points: np.ndarray
    vectors: np.ndarray
    what: str
    t: int
    kind: str


def grid(extent, n: int = 21) -> np.ndarray:
    """``n x n`` points over ``extent`` ``(xmin, xmax, ymin, ymax)``, float32 ``[n n, 2]``."""
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    return np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)


def field(session, t: int, kind: str = "mlp", points=None, *, what: str = "x0",
          extent=(-3, 3, -3, 3), n: int = 21, model=None) -> Field:
    """The field of denoiser ``kind`` at paper step ``t`` (1..T) on ``points`` ``[G, 2]``
    (default :func:`grid` of ``extent``): ``x0_pred - x_t`` or the score. ``model``: a sampler
    model to use instead of ``session.denoiser(kind)`` (e.g. a KDE's)."""
    if what not in FIELDS:
        raise InvalidParameter("field", f"must be one of {', '.join(FIELDS)}")
    if not 1 <= int(t) <= session.timesteps:
        raise InvalidParameter("t", f"must be in 1..{session.timesteps} for the field")
    pts = grid(extent, n) if points is None else np.asarray(points, np.float32).reshape(-1, 2)
    model = frozen(session.denoiser(kind)) if model is None else model
    x = torch.from_numpy(pts)
    i = torch.full((len(pts),), int(t) - 1, dtype=torch.long)
    eps = model(x, i)[:, :2].double().numpy()       # a learned variance's v dropped
    a = session.abar(int(t))
    x64 = pts.astype(np.float64)
    if what == "x0":
        v = (x64 - np.sqrt(1 - a) * eps) / np.sqrt(a) - x64
    else:
        v = -eps / np.sqrt(1 - a)
    return Field(pts, v, what, int(t), kind)


def field_error(learned: Field, exact: Field, log_q=None) -> tuple[float, float]:
    """``(rms, relative)``: the root-mean-square of ``learned - exact`` over the grid, weighted
    by ``exp(log_q)`` (the exact density at the points, ``[G]``; uniform if None), and that
    divided by the weighted RMS of the exact field."""
    d2 = ((learned.vectors - exact.vectors) ** 2).sum(1)
    e2 = (exact.vectors ** 2).sum(1)
    if log_q is None:
        w = np.ones(len(d2))
    else:
        lq = np.asarray(log_q, np.float64).reshape(-1)
        w = np.exp(lq - lq.max())
    w = w / w.sum()
    rms = float(np.sqrt((w * d2).sum()))
    return rms, float(rms / max(np.sqrt((w * e2).sum()), 1e-12))


def arrow_segments(points, vectors, scale: float, head: float = 0.3) -> np.ndarray:
    """Arrows as line segments, float64 ``[6 G, 2]`` in pairs (shaft, then the two strokes of
    the head): from ``points`` to ``points + scale * vectors``; the head strokes are ``head``
    times the arrow's length, at 25 degrees. Non-finite vectors give zero-length arrows."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    v = np.nan_to_num(np.asarray(vectors, np.float64).reshape(-1, 2)) * float(scale)
    tip = p + v
    c, s = np.cos(np.radians(25)), np.sin(np.radians(25))
    back = -v * head
    left = np.stack([c * back[:, 0] - s * back[:, 1], s * back[:, 0] + c * back[:, 1]], 1)
    right = np.stack([c * back[:, 0] + s * back[:, 1], -s * back[:, 0] + c * back[:, 1]], 1)
    seg = np.stack([p, tip, tip, tip + left, tip, tip + right], 1)
    return seg.reshape(-1, 2)


def arrow_scale(vectors, spacing: float, quantile: float = 0.9) -> float:
    """The scale that makes the ``quantile`` arrow length ``0.9 spacing`` (1 for a zero field)."""
    lengths = np.linalg.norm(np.nan_to_num(np.asarray(vectors, np.float64)), axis=1)
    q = float(np.quantile(lengths, quantile)) if len(lengths) else 0.0
    return 0.9 * spacing / q if q > 1e-12 else 1.0


def reference_mixture(session, max_points: int = KDE_POINTS) -> tuple[GaussianMixture, str]:
    """``(mixture, name)``: the data's own mixture (``"exact"``) or a Gaussian KDE of (at most
    ``max_points`` of) the data with Scott's bandwidth for all of it (``"KDE"``)."""
    if session.mixture is not None:
        return session.mixture, "exact"
    data = session.data
    h = data_std(data) * len(data) ** (-1 / 6)
    if len(data) > max_points:
        data = data[np.random.default_rng(0).permutation(len(data))[:max_points]]
    return GaussianMixture.from_points(data, h), "KDE"


@dataclass
class Overlay:
    """What the views draw at paper step ``t``: ``log_q`` ``[ny, nx]`` on the density grid, the
    ``reference`` field (of q_t itself: exact, or the KDE's), the ``learned`` field (of
    ``kind``; None at t = 0), ``error`` = :func:`field_error` of learned vs the exact field
    (mixtures only, else None) and the common arrow ``scale``."""

    t: int
    log_q: np.ndarray
    reference: Field | None
    learned: Field | None
    error: tuple[float, float] | None
    scale: float
    reference_name: str


def overlay(session, t: int, xs, ys, kind: str, what: str = "x0", extent=(-3, 3, -3, 3),
            n_arrows: int = 15, log_q=None) -> Overlay:
    """The density image and both fields at paper step ``t`` (0..T), for a view or a worker.
    ``log_q``: the density image already computed for this t and data (it is the slow part)."""
    mix, name = reference_mixture(session)
    a = session.abar(t)
    if log_q is None:
        gx, gy = np.meshgrid(np.asarray(xs, float), np.asarray(ys, float))
        log_q = mix.log_prob(np.stack([gx.ravel(), gy.ravel()], 1), a).numpy().reshape(gx.shape)
    if t == 0:
        return Overlay(0, log_q, None, None, None, 1.0, name)
    pts = grid(extent, n_arrows)
    ref = field(session, t, name, pts, what=what, model=MixtureDenoiser(mix, session.diffusion))
    learned = field(session, t, kind, pts, what=what)
    err = None
    if name == "exact":
        err = field_error(learned, ref, mix.log_prob(pts, a).numpy())
    spacing = (extent[1] - extent[0]) / (n_arrows - 1)
    return Overlay(int(t), log_q, ref, learned, err, arrow_scale(ref.vectors, spacing), name)
