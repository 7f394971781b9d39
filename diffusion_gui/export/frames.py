"""uint8 frames -> PNG, PNG sequence, filmstrip, NPZ; and the frame preparation shared with GIFs.

A *frame* is a uint8 array ``[H, W, C]`` with ``C`` = 1 (grey) or 3 (RGB), or ``[H, W]``.
Every file is written atomically (see :mod:`.atomic`).
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..core.images import enlarge, tile
from .atomic import ExportError, atomic_path, call_progress, check_folder, check_target, export_oserror

__all__ = ["as_frames", "compose", "caption_strip_font", "write_png", "write_npz",
           "write_png_sequence", "write_filmstrip", "GRID_PAD", "TRAJECTORY_WHICH",
           "trajectory_gap", "trajectory_frame", "grid_index"]

_MARGIN = 3  # pixels around caption text


# ------------------------------------------------------------------------------------ frames
def _as_frame(f, k: int) -> np.ndarray:
    if isinstance(f, Image.Image):
        f = f.convert("L" if f.mode in ("1", "L", "LA", "I", "F") or f.mode.startswith("I;16")
                      else "RGB")
    a = np.asarray(f)
    if a.dtype != np.uint8:
        raise ValueError(f"frame {k}: expected uint8 pixels, got {a.dtype} "
                         "(convert floats in [-1, 1] with core.images.to_uint8)")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"frame {k}: expected [H, W, 1] or [H, W, 3], got shape {a.shape}")
    return a


def as_frames(frames: Iterable) -> list[np.ndarray]:
    """Validate frames: a list of uint8 ``[H, W, C]`` of one size; grey frames are promoted to
    RGB when colour frames are present. Accepts arrays ``[N, H, W, C]`` and Pillow images."""
    out = [_as_frame(f, k) for k, f in enumerate(frames)]
    if not out:
        raise ValueError("there are no frames to export")
    hw = {a.shape[:2] for a in out}
    if len(hw) > 1:
        raise ValueError(f"all frames must have the same size, got {sorted(hw)}")
    if {a.shape[2] for a in out} == {1, 3}:
        out = [np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a for a in out]
    return out


@lru_cache(maxsize=16)
def caption_strip_font(size: int):
    """Pillow's default font at ``size`` px (FreeType when available, else the bitmap font)."""
    try:
        return ImageFont.load_default(size=size)
    except Exception:  # noqa: BLE001 - Pillow without FreeType
        return ImageFont.load_default()


def _font_for_width(width: int):
    return caption_strip_font(int(max(11, min(20, width // 14))))


def compose(frames: Sequence[np.ndarray], captions: Sequence[str | None] | None = None,
            scale: int = 1, background: int = 255) -> list[np.ndarray]:
    """Enlarge frames by ``scale`` (nearest neighbour) and add a caption strip under each.

    With captions, every output frame has the same size: a white strip of one text line under
    the picture, black text centred; if the widest caption is wider than the picture, the canvas
    is widened (picture centred) so the text stays legible at a readable size (>= 11 px).
    ``None`` or ``''`` captions give an empty strip. Without captions frames are only enlarged.
    """
    frames = [enlarge(f, scale) for f in frames]
    if captions is None:
        return frames
    captions = ["" if c is None else " ".join(str(c).splitlines()).strip() for c in captions]
    if len(captions) != len(frames):
        raise ValueError(f"got {len(captions)} captions for {len(frames)} frames")
    h, w, c = frames[0].shape
    font = _font_for_width(w)
    probe = Image.new("L", (1, 1))
    d = ImageDraw.Draw(probe)
    boxes = [d.textbbox((0, 0), t, font=font) if t else (0, 0, 0, 0) for t in captions]
    line = d.textbbox((0, 0), "Tg|0=_", font=font)
    text_h = line[3] - line[1]
    cw = max(w, max(b[2] - b[0] for b in boxes) + 2 * _MARGIN)
    ch = h + text_h + 2 * _MARGIN
    mode = "L" if c == 1 else "RGB"
    ink = 0 if c == 1 else (0, 0, 0)
    out = []
    for f, t, b in zip(frames, captions, boxes):
        canvas = Image.new(mode, (cw, ch), background if c == 1 else (background,) * 3)
        canvas.paste(Image.fromarray(f[:, :, 0] if c == 1 else f, mode), ((cw - w) // 2, 0))
        if t:
            x = (cw - (b[2] - b[0])) // 2 - b[0]
            y = h + _MARGIN - line[1]
            ImageDraw.Draw(canvas).text((x, y), t, font=font, fill=ink)
        a = np.asarray(canvas)
        out.append(a[:, :, None] if c == 1 else a)
    return out


def _to_pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(a[:, :, 0]), "L") if a.shape[2] == 1 \
        else Image.fromarray(np.ascontiguousarray(a), "RGB")


# ------------------------------------------------------------------------------------ x_t | x0
#: pixels of white between the images of a batch grid
GRID_PAD = 1
#: what a reverse-trajectory frame shows: x_t, the predicted x_0, or both side by side
TRAJECTORY_WHICH = ("xt", "x0", "both")


def trajectory_gap(pad: int = GRID_PAD) -> int:
    """Width in px of the white gap between the x_t grid and the x0_pred grid of a ``'both'``
    frame: ``max(4, 4 * pad)``, wider than the gaps inside a grid so the two read apart."""
    return max(4, 4 * int(pad))


def trajectory_frame(xt: np.ndarray, x0: np.ndarray | None = None, which: str = "xt", *,
                     ncols: int | None = None, pad: int = GRID_PAD,
                     image: int | None = None) -> np.ndarray:
    """The one composer of a reverse-trajectory frame (the CLI's ``sample --gif``, the GUI's
    live view, its GIF / PNG-sequence / filmstrip exports).

    xt, x0: uint8 ``[B, H, W, C]`` (x_t and x0_pred of one step; ``x0`` may be None for
    ``which='xt'``). which: ``'xt'``, ``'x0'`` or ``'both'`` (the x_t grid, a white gap of
    :func:`trajectory_gap` px, the x0_pred grid). The batch is laid out by
    :func:`~diffusion_gui.core.images.tile` (``ncols``, default square-ish; ``pad`` px between
    cells); ``image=k`` shows image ``k`` of the batch alone. Returns uint8 ``[H', W', C]``.
    """
    if which not in TRAJECTORY_WHICH:
        raise ValueError(f"which must be one of {TRAJECTORY_WHICH}, not {which!r}")

    def grid(x, name):
        if x is None:
            raise ValueError(f"a {which!r} frame needs {name}")
        x = np.asarray(x)
        if x.dtype != np.uint8 or x.ndim != 4:
            raise ValueError(f"{name}: expected uint8 [B, H, W, C], got {x.dtype} {x.shape}")
        if image is not None:
            k = min(max(int(image), 0), x.shape[0] - 1)
            return tile(x[k:k + 1], ncols=1, pad=pad)
        return tile(x, ncols=ncols, pad=pad)

    if which == "xt":
        return grid(xt, "x_t")
    if which == "x0":
        return grid(x0, "x0_pred")
    a, b = grid(xt, "x_t"), grid(x0, "x0_pred")
    gap = np.full((a.shape[0], trajectory_gap(pad), a.shape[2]), 255, np.uint8)
    return np.concatenate([a, gap, b], axis=1)


def grid_index(b: int, h: int, w: int, x: float, y: float, *, ncols: int | None = None,
               pad: int = GRID_PAD) -> int | None:
    """Which image of a batch grid (``b`` images of ``h x w`` px laid out as
    :func:`trajectory_frame` does) is at pixel ``(x, y)`` of the grid; None for none."""
    ncols = max(1, min(int(ncols) if ncols else math.ceil(math.sqrt(b)), b))
    if x < 0 or y < 0:
        return None
    k = int(y // (h + pad)) * ncols + int(x // (w + pad))
    return k if 0 <= k < b else None


# ------------------------------------------------------------------------------------ writers
def write_png(img, path) -> Path:
    """Write one uint8 image ``[H, W, C]``/``[H, W]`` (or a Pillow image) to a PNG, atomically."""
    a = as_frames([img])[0]
    path = Path(path)
    with atomic_path(path) as tmp:
        _to_pil(a).save(tmp, format="PNG")
    return path


def write_npz(images, path) -> Path:
    """Write uint8 images ``[B, H, W, C]`` (or a list of ``[H, W, C]``) to ``path`` as a
    compressed NPZ whose one key ``images`` holds uint8 ``[B, H, W, C]``."""
    a = np.stack(as_frames(images)) if not (isinstance(images, np.ndarray) and images.ndim == 4) \
        else images
    if a.dtype != np.uint8 or a.ndim != 4:
        raise ValueError(f"expected uint8 [B, H, W, C], got {a.dtype} {a.shape}")
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:       # a file object: numpy would append '.npz' to a name
            np.savez_compressed(fh, images=a)
    return path


def write_png_sequence(frames, folder, *, prefix: str = "frame", start: int = 0,
                       scale: int = 1, captions: Sequence[str | None] | None = None,
                       progress=None) -> list[Path]:
    """Write frames as ``folder/prefix_0000.png``, ``prefix_0001.png``, ... (at least 4 digits,
    numbered from ``start``). The folder is created if its parent exists; files in it are
    overwritten, others left alone. Each file is written atomically. ``progress(done, total)``
    returning ``False`` raises :class:`Cancelled`; on cancel or error the files this call
    created (and the folder, if it created it) are removed again. Returns the paths written.
    """
    frames = compose(as_frames(frames), captions, scale)
    if not prefix or os.sep in prefix or (os.altsep and os.altsep in prefix):
        raise ValueError(f"bad file name prefix {prefix!r}")
    folder = Path(folder)
    made_folder = False
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"cannot write frames into '{os.fspath(folder)}': it is a file")
    if not folder.exists():
        check_folder(folder.parent)
        try:
            folder.mkdir()
        except OSError as e:
            raise export_oserror(e, folder) from None
        made_folder = True
    check_folder(folder)
    n = len(frames)
    digits = max(4, len(str(start + n - 1)))
    paths = [folder / f"{prefix}_{start + k:0{digits}d}.png" for k in range(n)]
    created: list[Path] = []
    try:
        for k, (a, p) in enumerate(zip(frames, paths)):
            call_progress(progress, k, n)
            new = not p.exists()
            with atomic_path(p) as tmp:
                _to_pil(a).save(tmp, format="PNG")
            if new:
                created.append(p)
        call_progress(progress, n, n)
    except BaseException:
        for p in created:
            try:
                p.unlink()
            except OSError:
                pass
        if made_folder:
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    return paths


def write_filmstrip(frames, path, *, labels: Sequence[str | None] | None = None,
                    ncols: int | None = None, scale: int = 1, pad: int = 2,
                    pad_value: int = 255) -> Path:
    """One PNG with the frames side by side (``ncols`` per row; default all in one row),
    ``pad`` px of ``pad_value`` between cells, an optional label under each frame
    (see :func:`compose`). Without labels the size is
    ``(ncols * W + (ncols - 1) * pad) x (rows * H + (rows - 1) * pad)`` (W, H after ``scale``).
    """
    cells = compose(as_frames(frames), labels, scale)
    check_target(path)
    grid = tile(np.stack(cells), ncols=ncols or len(cells), pad=pad, pad_value=pad_value)
    return write_png(grid, path)
