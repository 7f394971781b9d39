"""uint8 frames -> animated GIF (Pillow), written atomically.

Timing: GIF delays are stored in hundredths of a second, and browsers slow down delays under
20 ms, so the frame time is ``1000 / fps`` rounded to 10 ms and at least 20 ms (``fps`` <= 50).
The first frame stays on screen ``hold_first_s`` longer, the last ``hold_last_s`` longer.

Colours: grey frames are written exactly (a grey palette). RGB frames are quantised to 256
colours with a palette of their own (``palette='adaptive'``, the default) or one palette shared
by all frames (``'global'``), then Floyd-Steinberg dithered against it, so that noise and smooth
gradients do not band.

Note: Pillow merges a frame identical to the one before it into that one (adding the two
durations), so a GIF of a trajectory that stops changing can hold fewer frames than given; it
plays the same.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .atomic import atomic_path, call_progress, check_target
from .frames import as_frames, compose

__all__ = ["write_gif", "frame_durations"]

PALETTES = ("adaptive", "global")


def frame_durations(n: int, fps: float = 12, hold_last_s: float = 1.0,
                    hold_first_s: float = 0.0) -> list[int]:
    """Per-frame durations in ms, as written: ``1000 / fps`` rounded to 10 ms (>= 20 ms), the
    last one ``hold_last_s`` longer and the first ``hold_first_s`` longer (each rounded to
    10 ms; one frame gets both)."""
    if not fps > 0:
        raise ValueError("fps must be positive")
    if hold_last_s < 0:
        raise ValueError("hold_last_s must be >= 0")
    if hold_first_s < 0:
        raise ValueError("hold_first_s must be >= 0")
    d = max(20, int(round(1000.0 / fps / 10.0)) * 10)
    out = [d] * n
    if n:
        out[-1] = d + int(round(hold_last_s * 100.0)) * 10
        out[0] += int(round(hold_first_s * 100.0)) * 10
    return out


def _scale_for(h: int, w: int, scale: int | None, size: int | None) -> int:
    if scale is not None and size is not None:
        raise ValueError("give scale or size, not both")
    if size is not None:
        if size < 1:
            raise ValueError("size must be a positive number of pixels")
        return max(1, int(size) // max(h, w))
    s = 1 if scale is None else int(scale)
    if s < 1:
        raise ValueError("scale must be a positive integer")
    return s


def _global_palette(frames: list[np.ndarray]) -> Image.Image:
    """One 256-colour palette from a sample of all frames (at most ~64 frames, ~1 Mpx)."""
    step = max(1, len(frames) // 64)
    sample = np.concatenate(frames[::step], axis=0)
    if sample.shape[0] * sample.shape[1] > 1_000_000:
        k = int(np.ceil(np.sqrt(sample.shape[0] * sample.shape[1] / 1_000_000)))
        sample = sample[::k, ::k]
    return Image.fromarray(np.ascontiguousarray(sample), "RGB").quantize(
        256, method=Image.Quantize.FASTOCTREE)


def _to_gif_frame(a: np.ndarray, palette: Image.Image | None) -> Image.Image:
    if a.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(a[:, :, 0]), "L")  # exact grey palette
    im = Image.fromarray(np.ascontiguousarray(a), "RGB")
    if palette is None:
        palette = im.quantize(256, method=Image.Quantize.FASTOCTREE)
    return im.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)


def write_gif(frames, path, *, fps: float = 12, loop: int | None = 0, hold_last_s: float = 1.0,
              hold_first_s: float = 0.0,
              scale: int | None = None, size: int | None = None,
              captions: Sequence[str | None] | None = None, palette: str = "adaptive",
              progress=None) -> Path:
    """Write uint8 frames ``[H, W, C]`` (C = 1 or 3) as an animated GIF at ``path``.

    fps: frames per second (see the module note on rounding). loop: 0 = forever, n = n extra
    times, None = play once. hold_last_s / hold_first_s: extra seconds on the last / first frame.
    scale: integer nearest-neighbour enlargement (crisp pixels), or size: the target length in
    px of the long side, reached by the largest integer factor that fits (at least 1); give one
    of them (default: no enlargement). captions: one string (or None) per frame, drawn in a white
    strip under it. palette: ``'adaptive'`` (per frame) or ``'global'``.
    progress(done, total): called before each frame is prepared (``done`` = 0 .. n-1) and once
    the file is written (``n, n``); returning ``False`` raises :class:`~.atomic.Cancelled` and
    no file is written (an existing file is left untouched).
    Raises :class:`~.atomic.ExportError` for an unwritable target.
    """
    if palette not in PALETTES:
        raise ValueError(f"palette must be one of {PALETTES}, not {palette!r}")
    if loop is not None and not 0 <= int(loop) <= 65535:
        raise ValueError("loop must be None or in 0..65535")
    target = check_target(path)              # fail before doing the work
    frames = as_frames(frames)
    n = len(frames)
    durations = frame_durations(n, fps, hold_last_s, hold_first_s)
    k = _scale_for(*frames[0].shape[:2], scale, size)
    frames = compose(frames, captions, k)
    pal = _global_palette(frames) if palette == "global" and frames[0].shape[2] == 3 else None
    images = []
    for j, a in enumerate(frames):
        call_progress(progress, j, n)
        images.append(_to_gif_frame(a, pal))
    opts = {"save_all": True, "append_images": images[1:], "duration": durations,
            "disposal": 1, "optimize": False}
    if loop is not None:
        opts["loop"] = int(loop)
    with atomic_path(target) as tmp:
        images[0].save(tmp, format="GIF", **opts)
        call_progress(progress, n, n)        # a cancel here still leaves no file
    return target
