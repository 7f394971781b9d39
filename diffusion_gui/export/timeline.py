"""Which timesteps to show, and the frames of the forward (noising) and reverse (sampling) processes.

Timesteps here are the **paper's** ``t``: ``t = 0`` is the clean image, ``t = T`` pure noise;
the diffusion's arrays are indexed by ``i = t - 1``. torch is imported only inside the functions
that need it.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from ..core.images import to_uint8, to_uint8_inplace
from .frames import GRID_PAD, TRAJECTORY_WHICH, trajectory_frame

__all__ = ["SPACINGS", "timeline_steps", "pick_frames", "forward_caption", "forward_coefficients",
           "forward_xt", "forward_frames",
           "trajectory_caption", "reverse_frames"]

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


def _nearest_distinct(available: np.ndarray, targets) -> list[int]:
    """Indices into the ascending ``available`` nearest to each ascending target, strictly
    increasing (so ``len(targets)`` distinct ones when ``len(targets) <= len(available)``)."""
    m, n = len(available), len(targets)
    out, prev = [], -1
    for k, tg in enumerate(targets):
        j = int(np.searchsorted(available, tg))
        if j > 0 and (j == m or abs(available[j - 1] - tg) <= abs(available[j] - tg)):
            j -= 1
        j = min(max(j, prev + 1), m - (n - k))
        out.append(j)
        prev = j
    return out


def pick_frames(ts, n_frames: int, spacing: str = "even", t_range: tuple[int, int] | None = None,
                T: int | None = None) -> list[int]:
    """Which frames of a reverse trajectory to show: the one rule of ``sample --gif`` and of
    the GUI's trajectory exports.

    ts: the paper's ``t`` of each frame, in playing order (``T`` ... ``0``; a run's
    :func:`~diffusion_gui.sessions.sampling.visited_timesteps`, or the steps recorded).
    Of the frames with ``t`` in ``t_range`` (inclusive; default ``0..T``, ``T = max(ts)``),
    those nearest to :func:`timeline_steps` over that range (``n_frames``, ``spacing``), distinct;
    all of them when there are no more than ``n_frames``. Returns indices into ``ts``, ascending
    (= playing order).
    """
    ts = np.asarray(ts, dtype=np.int64).reshape(-1)
    if ts.size == 0:
        return []
    T = int(T if T is not None else ts.max())
    lo, hi = t_range if t_range is not None else (0, T)
    lo, hi = sorted((int(lo), int(hi)))
    order = np.argsort(ts, kind="stable")                             # indices by t upwards
    asc = [int(i) for i in order if lo <= ts[i] <= hi]
    if not asc:                       # nothing recorded in the range: the nearest step
        asc = [int(order[np.argmin(np.abs(ts[order] - (lo + hi) / 2))])]
    n = max(1, int(n_frames))
    if n >= len(asc):
        chosen = asc
    elif n == 1:
        chosen = [asc[0]]
    else:
        span = max(1, hi - lo)
        targets = [lo + s for s in timeline_steps(span, n, spacing)] if n <= span + 1 \
            else list(range(lo, hi + 1))
        chosen = [asc[j] for j in _nearest_distinct(ts[asc], targets)]
    return sorted(set(chosen))


def trajectory_caption(t: int, which: str = "xt", alpha_bar: float | None = None) -> str:
    """``'t = 250   abar_t = 0.2931   x_t | x0_pred'`` (abar_t when known; what the frame shows
    unless it is x_t alone). ASCII: Pillow's default font may lack a macron."""
    cap = f"t = {int(t)}"
    if alpha_bar is not None:
        cap += f"   abar_t = {float(alpha_bar):.4f}"
    return cap + {"xt": "", "x0": "   x0_pred", "both": "   x_t | x0_pred"}[which]


def forward_caption(t: int, alpha_bar: float) -> str:
    """``'t = 250   abar_t = 0.2931'`` (ASCII: Pillow's default font may lack a macron)."""
    return f"t = {t}   abar_t = {alpha_bar:.4f}"


def forward_coefficients(alpha_bars) -> tuple[np.ndarray, np.ndarray]:
    """``(sqrt(abar_t), sqrt(1 - abar_t))`` as float64 ``[T + 1]`` indexed by the paper's ``t``
    (``t = 0``: 1 and 0), from a schedule's ``alpha_bars`` ``[T]`` (index ``i = t - 1``; a tensor
    or an array). Computed as :class:`~diffusion_gui.core.NoiseSchedule` computes
    ``sqrt_alpha_bars`` / ``sqrt_one_minus_alpha_bars`` (torch's float64 square root of the same
    ``[T]`` values), so the bits are the schedule's: numpy's square root differs from torch's in
    the last float64 place for some values."""
    import torch

    ab = torch.as_tensor(np.asarray(alpha_bars, dtype=np.float64).reshape(-1).copy())
    return (np.concatenate([[1.0], ab.sqrt().numpy()]),
            np.concatenate([[0.0], (1.0 - ab).sqrt().numpy()]))


def forward_xt(x0: np.ndarray, eps: np.ndarray, sqrt_abar, sqrt_one_minus_abar, *,
               out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` of ``q(x_t | x_0)``, as uint8: the one
    place the forward timeline's frames are computed (CLI, panel, export).

    x0, eps: finite float32 arrays of one shape (any layout; the result keeps it, so pass
    ``[H, W, C]`` for a frame). The coefficients (see :func:`forward_coefficients`) are cast to
    float32 and the arithmetic is float32, so the bytes are those of
    ``to_uint8(GaussianDiffusion.q_sample(x0, t - 1, eps))``; ``sqrt_one_minus_abar == 0``
    (``t = 0``) gives ``x0`` itself. ``out`` / ``scratch``: float32 buffers of that shape to
    compute in (the scrubbing fast path: nothing allocated but the uint8 result); both are
    overwritten, so one caller at a time.
    """
    a, b = np.float32(sqrt_abar), np.float32(sqrt_one_minus_abar)
    if out is None:
        out = np.empty(x0.shape, dtype=np.float32)
    if b == 0:
        np.copyto(out, x0)
    else:
        if scratch is None:
            scratch = np.empty(x0.shape, dtype=np.float32)
        np.multiply(x0, a, out=out)
        np.multiply(eps, b, out=scratch)
        np.add(out, scratch, out=out)
    return to_uint8_inplace(out)


def _hwc_float32(x) -> np.ndarray:
    """float32 ``[H, W, C]`` (contiguous) of a tensor or array ``[C, H, W]``."""
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").float().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32).transpose(1, 2, 0))


def forward_frames(x0, diffusion, noise, ts: Iterable[int], *,
                   captions: bool = True) -> Iterator[tuple[int, np.ndarray, str | None]]:
    """Frames of the forward process ``q(x_t | x_0)`` with one fixed noise draw.

    x0, noise: finite float tensors or arrays ``[C, H, W]`` (x0 in ``[-1, 1]``), computed in
    float32. ts: paper steps in ``0..T`` (see :func:`timeline_steps`). Yields ``(t, frame uint8
    [H, W, C], caption or None)``; ``t = 0`` is ``x0`` itself, ``t >= 1`` the bytes of
    ``to_uint8(diffusion.q_sample(x0, t - 1, noise))``, computed by :func:`forward_xt`.
    """
    T = diffusion.num_timesteps
    if x0.ndim != 3 or tuple(noise.shape) != tuple(x0.shape):
        raise ValueError(f"x0 and noise must both be [C, H, W], got {tuple(x0.shape)} and "
                         f"{tuple(noise.shape)}")
    abar = np.concatenate([[1.0], np.asarray(diffusion.schedule.alpha_bars, dtype=np.float64)])
    a, b = forward_coefficients(abar[1:])
    x0, noise = _hwc_float32(x0), _hwc_float32(noise)
    for t in ts:
        t = int(t)
        if not 0 <= t <= T:
            raise ValueError(f"t = {t} is outside 0..{T}")
        frame = forward_xt(x0, noise, a[t], b[t])
        yield t, frame, (forward_caption(t, float(abar[t])) if captions else None)


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


def reverse_frames(steps, which: str = "xt", *, ncols: int | None = None, pad: int = GRID_PAD,
                   captions: bool = True) -> Iterator[tuple[int | None, np.ndarray, str | None]]:
    """GIF frames from a recorded reverse trajectory.

    steps: an iterable of :class:`~diffusion_gui.core.sampling.StepOutput` or dicts
    ``{'t', 'x_t', 'x0_pred'}`` or tuples ``(t, x_t, x0_pred)``, where ``x_t``/``x0_pred`` are
    uint8 ``[B, H, W, C]`` (as recorded by the GUI) or float ``[B, C, H, W]`` in ``[-1, 1]``.
    which: ``'xt'`` (the noisy sample), ``'x0'`` (the model's prediction of x_0) or ``'both'``
    (x_t grid and x0_pred grid side by side, separated by a white gap).
    Yields ``(t, frame uint8 [H', W', C], caption or None)``; frames from
    :func:`~diffusion_gui.export.frames.trajectory_frame`, captions from
    :func:`trajectory_caption`.
    """
    if which not in TRAJECTORY_WHICH:
        raise ValueError(f"which must be 'xt', 'x0' or 'both', not {which!r}")
    for s in steps:
        t, xt, x0 = _step_parts(s)
        t = None if t is None else int(t)
        for name, x, used in (("x_t", xt, which != "x0"), ("x0_pred", x0, which != "xt")):
            if used and x is None:
                raise ValueError(f"step t = {t} has no {name}")
        frame = trajectory_frame(None if which == "x0" else _batch_uint8(xt),
                                 None if which == "xt" else _batch_uint8(x0), which,
                                 ncols=ncols, pad=pad)
        cap = trajectory_caption(t, which) if captions and t is not None else None
        yield t, frame, cap
