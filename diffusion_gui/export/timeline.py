"""Which timesteps to show, and the frames of the forward (noising) and reverse (sampling) processes.

Timesteps here are the **paper's** ``t``: ``t = 0`` is the clean image, ``t = T`` pure noise;
the diffusion's arrays are indexed by ``i = t - 1``. torch is imported only inside the functions
that need it.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from ..core.images import tile, to_uint8

__all__ = ["SPACINGS", "timeline_steps", "forward_caption", "forward_frames", "reverse_frames"]

SPACINGS = ("even", "dense_start")


def timeline_steps(T: int, n_frames: int, spacing: str = "even") -> list[int]:
    """``n_frames`` increasing, distinct paper steps from ``0`` to ``T`` inclusive.

    spacing ``'even'``: evenly spaced. ``'dense_start'``: quadratic, ``t_k ~ T (k / (n-1))^2``,
    so more frames fall near ``t = 0`` where the image changes most (duplicates from rounding
    are pushed apart by one step). With ``n_frames > T + 1`` every step ``0..T`` is returned.
    """
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, not {spacing!r}")
    T, n = int(T), int(n_frames)
    if T < 1:
        raise ValueError("T must be at least 1")
    if n < 2:
        raise ValueError("n_frames must be at least 2 (t = 0 and t = T)")
    if n >= T + 1:
        return list(range(T + 1))
    u = np.linspace(0.0, 1.0, n)
    raw = np.rint(T * (u if spacing == "even" else u * u)).astype(int).tolist()
    ts = [0] * n
    for k in range(1, n):                       # strictly increasing from 0 ...
        ts[k] = max(raw[k], ts[k - 1] + 1)
    ts[-1] = T
    for k in range(n - 2, -1, -1):              # ... and ending exactly at T
        ts[k] = min(ts[k], ts[k + 1] - 1)
    return ts


def forward_caption(t: int, alpha_bar: float) -> str:
    """``'t = 250   abar_t = 0.2931'`` (ASCII: Pillow's default font may lack a macron)."""
    return f"t = {t}   abar_t = {alpha_bar:.4f}"


def forward_frames(x0, diffusion, noise, ts: Iterable[int], *,
                   captions: bool = True) -> Iterator[tuple[int, np.ndarray, str | None]]:
    """Frames of the forward process ``q(x_t | x_0)`` with one fixed noise draw.

    x0, noise: float tensors ``[C, H, W]`` (x0 in ``[-1, 1]``). ts: paper steps in ``0..T``
    (see :func:`timeline_steps`). Yields ``(t, frame uint8 [H, W, C], caption or None)``;
    ``t = 0`` is ``x0`` itself, ``t >= 1`` is ``diffusion.q_sample(x0, t - 1, noise)``.
    """
    import torch

    T = diffusion.num_timesteps
    if x0.ndim != 3 or tuple(noise.shape) != tuple(x0.shape):
        raise ValueError(f"x0 and noise must both be [C, H, W], got {tuple(x0.shape)} and "
                         f"{tuple(noise.shape)}")
    abar = diffusion.schedule.alpha_bars
    with torch.no_grad():
        for t in ts:
            t = int(t)
            if not 0 <= t <= T:
                raise ValueError(f"t = {t} is outside 0..{T}")
            if t == 0:
                x, a = x0, 1.0
            else:
                x = diffusion.q_sample(x0[None], t - 1, noise[None].to(x0.dtype))[0]
                a = float(abar[t - 1])
            yield t, to_uint8(x), (forward_caption(t, a) if captions else None)


def _batch_uint8(x) -> np.ndarray:
    """uint8 ``[B, H, W, C]`` (or ``[H, W, C]``) as is; float ``[B, C, H, W]`` via to_uint8."""
    if isinstance(x, np.ndarray) and x.dtype == np.uint8:
        return x[None] if x.ndim == 3 else x
    u = to_uint8(x)
    return u[None] if u.ndim == 3 else u


def _step_parts(s):
    if isinstance(s, dict):
        return s.get("t"), s.get("x_t", s.get("xt")), s.get("x0_pred", s.get("x0"))
    if hasattr(s, "x_t"):
        return getattr(s, "t", None), s.x_t, getattr(s, "x0_pred", None)
    if isinstance(s, (tuple, list)) and len(s) == 3:
        return s
    if isinstance(s, (tuple, list)) and len(s) == 2:
        return None, s[0], s[1]
    raise ValueError("each step must be a StepOutput, a dict with 'x_t'/'x0_pred', "
                     "or a tuple (t, x_t, x0_pred) / (x_t, x0_pred)")


def reverse_frames(steps, which: str = "xt", *, ncols: int | None = None, pad: int = 1,
                   captions: bool = True) -> Iterator[tuple[int | None, np.ndarray, str | None]]:
    """GIF frames from a recorded reverse trajectory.

    steps: an iterable of :class:`~diffusion_gui.core.sampling.StepOutput` or dicts
    ``{'t', 'x_t', 'x0_pred'}`` or tuples ``(t, x_t, x0_pred)``, where ``x_t``/``x0_pred`` are
    uint8 ``[B, H, W, C]`` (as recorded by the GUI) or float ``[B, C, H, W]`` in ``[-1, 1]``.
    which: ``'xt'`` (the noisy sample), ``'x0'`` (the model's prediction of x_0) or ``'both'``
    (x_t grid and x0_pred grid side by side, separated by a white gap).
    Yields ``(t, frame uint8 [H', W', C], caption or None)``; the batch is laid out by
    :func:`~diffusion_gui.core.images.tile` (square-ish unless ``ncols``).
    """
    if which not in ("xt", "x0", "both"):
        raise ValueError(f"which must be 'xt', 'x0' or 'both', not {which!r}")
    for s in steps:
        t, xt, x0 = _step_parts(s)
        t = None if t is None else int(t)
        parts = {"xt": [("x_t", xt)], "x0": [("x0_pred", x0)],
                 "both": [("x_t", xt), ("x0_pred", x0)]}[which]
        grids = []
        for name, x in parts:
            if x is None:
                raise ValueError(f"step t = {t} has no {name}")
            grids.append(tile(_batch_uint8(x), ncols=ncols, pad=pad))
        if len(grids) == 2:
            a, b = grids
            gap = np.full((a.shape[0], max(4, 4 * pad), a.shape[2]), 255, np.uint8)
            frame = np.concatenate([a, gap, b], axis=1)
        else:
            frame = grids[0]
        if not captions or t is None:
            cap = None
        elif which == "both":
            cap = f"t = {t}   x_t | x0_pred"
        else:
            cap = f"t = {t}"
        yield t, frame, cap
