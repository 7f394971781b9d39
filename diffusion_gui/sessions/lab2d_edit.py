"""Editing the 2-D lab's data with the mouse (Qt-free): painting and erasing points, dragging
and resizing the components of a Gaussian mixture. Pure functions of arrays and mixtures; the
panel maps mouse positions to data coordinates and calls them, then ``session.set_points`` or
``session.set_mixture``."""
from __future__ import annotations

import numpy as np

from ..core.toy2d import MAX_POINTS, GaussianMixture
from .lab2d_settings import MAX_STD, MIN_STD

__all__ = ["spray", "erase", "nearest_component", "move_component", "scale_component",
           "BRUSH_RADIUS", "BRUSH_POINTS", "MIN_STD", "MAX_STD"]

BRUSH_RADIUS = 0.15      # data units (the data has about unit variance)
BRUSH_POINTS = 12        # points added per paint event


def spray(points, at, radius: float = BRUSH_RADIUS, k: int = BRUSH_POINTS, seed=None) -> np.ndarray:
    """``points`` ``[N, 2]`` plus ``k`` points drawn from ``N(at, (radius / 2)^2 I)``, at most
    :data:`MAX_POINTS` in all; float32 ``[N + k', 2]``."""
    p = np.asarray(points, np.float32).reshape(-1, 2)
    k = max(0, min(int(k), MAX_POINTS - len(p)))
    rng = np.random.default_rng(seed)
    new = np.asarray(at, np.float64).reshape(1, 2) + 0.5 * radius * rng.standard_normal((k, 2))
    return np.concatenate([p, new.astype(np.float32)])


def erase(points, at, radius: float = 2 * BRUSH_RADIUS) -> np.ndarray:
    """``points`` without those within ``radius`` of ``at``."""
    p = np.asarray(points, np.float32).reshape(-1, 2)
    keep = ((p - np.asarray(at, np.float32).reshape(1, 2)) ** 2).sum(1) > radius ** 2
    return p[keep]


def nearest_component(mixture: GaussianMixture, at, within: float | None = None) -> int | None:
    """The index of the component whose mean is nearest to ``at``; None if farther than
    ``within`` (default: twice its largest std, at least 0.25)."""
    d = np.linalg.norm(mixture.means - np.asarray(at, np.float64).reshape(1, 2), axis=1)
    k = int(np.argmin(d))
    limit = within if within is not None else max(0.25, 2 * float(mixture.stds[k].max()))
    return k if d[k] <= limit else None


def move_component(mixture: GaussianMixture, k: int, mean) -> GaussianMixture:
    """The mixture with component ``k``'s mean at ``mean`` ``[2]``."""
    means = mixture.means.copy()
    means[k] = np.asarray(mean, np.float64).reshape(2)
    return GaussianMixture(mixture.weights, means, mixture.stds)


def scale_component(mixture: GaussianMixture, k: int, factor: float) -> GaussianMixture:
    """The mixture with component ``k``'s stds times ``factor``, kept in [MIN_STD, MAX_STD]."""
    stds = mixture.stds.copy()
    stds[k] = np.clip(stds[k] * float(factor), MIN_STD, MAX_STD)
    return GaussianMixture(mixture.weights, mixture.means, stds)


def set_component_std(mixture: GaussianMixture, k: int, std: float) -> GaussianMixture:
    """The mixture with component ``k`` isotropic of width ``std`` (clamped as above)."""
    stds = mixture.stds.copy()
    stds[k] = float(np.clip(std, MIN_STD, MAX_STD))
    return GaussianMixture(mixture.weights, mixture.means, stds)
