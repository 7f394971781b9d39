"""Frames of the 2-D lab's particle animations: a point cloud drawn on a square, as uint8 RGB.

One frame (:func:`particle_frame`) shows the particles ``[N, 2]`` at one step as dots, over the
data in light grey and, optionally, traced paths as lines; :func:`particle_frames` draws a whole
trajectory ``[S, N, 2]`` with one fixed view (:func:`extent_of`), so that the frames of an
animation line up. The frames go to the GIF writer and the export dialog like any other frames.
Plain numpy and Pillow: no Qt, no matplotlib.
"""
from __future__ import annotations

import numpy as np

__all__ = ["particle_frame", "particle_frames", "extent_of", "PARTICLE_RGB", "DATA_RGB", "PATH_RGB"]

PARTICLE_RGB = (31, 119, 180)      # the lab's particle blue
DATA_RGB = (200, 200, 200)         # the training data, behind
PATH_RGB = (214, 39, 40)           # traced paths
BACKGROUND_RGB = (255, 255, 255)
FRAME_RGB = (120, 120, 120)


def extent_of(*clouds, margin: float = 0.08, quantile: float = 0.995) -> tuple[float, float, float, float]:
    """A square view ``(xmin, xmax, ymin, ymax)`` holding most of the points of every cloud
    (arrays ``[..., 2]``; the ``quantile`` of |x - centre|, so that a few outliers do not shrink
    the picture), with a ``margin`` fraction around. Never narrower than ``[-1, 1]``."""
    pts = np.concatenate([np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in clouds if c is not None])
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        return (-3.0, 3.0, -3.0, 3.0)
    centre = np.median(pts, 0)
    half = max(1.0, float(np.quantile(np.abs(pts - centre).max(1), quantile))) * (1 + margin)
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def _pixels(points, extent, size: int):
    """Integer pixel (col, row) of each finite point inside the view; y up."""
    x0, x1, y0, y1 = extent
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    col = (p[:, 0] - x0) / (x1 - x0) * (size - 1)
    row = (y1 - p[:, 1]) / (y1 - y0) * (size - 1)
    ok = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col <= size - 1) & (row >= 0) & (row <= size - 1)
    return np.rint(col[ok]).astype(np.intp), np.rint(row[ok]).astype(np.intp)


def _splat(img: np.ndarray, points, extent, rgb, radius: int):
    """Dots of ``(2 radius + 1)`` px squares at ``points``, painted in place."""
    size = img.shape[0]
    col, row = _pixels(points, extent, size)
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            r, c = np.clip(row + dr, 0, size - 1), np.clip(col + dc, 0, size - 1)
            img[r, c] = rgb


def particle_frame(points, *, extent, size: int = 480, data=None, paths=None,
                   radius: int | None = None) -> np.ndarray:
    """One frame, uint8 ``[size, size, 3]``: the ``points`` ``[N, 2]`` as dots over the ``data``
    ``[M, 2]`` (light grey) inside the square view ``extent`` ``(xmin, xmax, ymin, ymax)``, and
    each of ``paths`` (a list of ``[L, 2]`` polylines, e.g. traced particles) as a red line ending
    in a dot. ``radius``: the dot's half-width in px (default: 1 for many points, 2 for few)."""
    from PIL import Image, ImageDraw
    size = int(size)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = BACKGROUND_RGB
    if data is not None:
        _splat(img, data, extent, DATA_RGB, 1 if size >= 320 else 0)
    n = len(np.asarray(points).reshape(-1, 2))
    _splat(img, points, extent, PARTICLE_RGB, radius if radius is not None else (1 if n > 500 else 2))
    if paths:
        pil = Image.fromarray(img)
        draw = ImageDraw.Draw(pil)
        x0, x1, y0, y1 = extent
        for path in paths:
            p = np.asarray(path, dtype=np.float64).reshape(-1, 2)
            p = p[np.isfinite(p).all(1)]
            if len(p) == 0:
                continue
            xy = np.stack([(p[:, 0] - x0) / (x1 - x0) * (size - 1), (y1 - p[:, 1]) / (y1 - y0) * (size - 1)], 1)
            if len(xy) > 1:
                draw.line([tuple(v) for v in xy], fill=PATH_RGB, width=2)
            cx, cy = xy[-1]
            draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=PATH_RGB)
        img = np.asarray(pil).copy()
    img[0, :] = img[-1, :] = img[:, 0] = img[:, -1] = FRAME_RGB
    return img


def particle_frames(trajectory, *, data=None, size: int = 480, extent=None, trace: int = 0):
    """Frames of a whole trajectory ``[S, N, 2]`` (step order as given), one view for all (the
    ``extent`` given, or :func:`extent_of` the trajectory and data). ``trace``: draw the paths of
    the first ``trace`` particles up to each frame's step. A generator of uint8 ``[size, size, 3]``."""
    traj = np.asarray(trajectory, dtype=np.float32)
    if traj.ndim != 3 or traj.shape[-1] != 2:
        raise ValueError(f"trajectory must be [S, N, 2], not {list(traj.shape)}")
    view = extent or extent_of(traj[0], traj[-1], data)
    for s in range(traj.shape[0]):
        paths = [traj[: s + 1, j] for j in range(min(trace, traj.shape[1]))] if trace else None
        yield particle_frame(traj[s], extent=view, size=size, data=data, paths=paths)
