"""Image files <-> arrays: any image file -> float ``[C, H, W]`` in ``[-1, 1]``; floats -> uint8.

Pixels are ``[-1, 1]`` floats inside the program and uint8 outside (files, the screen).

Qt-free, and torch-free at import time: only :func:`load_image` (which returns a tensor) imports
torch, so the GUI can read and show images before torch has been imported.

Loading policy (:func:`read_image`):

- EXIF orientation is applied, so a phone photo comes out the way it was taken.
- Every Pillow mode is converted explicitly, to ``'L'`` (grey) or ``'RGB'``:
  ``1`` -> 0/255; ``LA``, ``RGBA`` and ``P`` with transparency are composited over **white**;
  16-bit grey (``I;16*``, and ``I`` whose values lie in 0..65535 with some above 255) is
  **scaled** to 8 bits (``round(v / 257)``), never clipped; ``I`` within 0..255 is taken as
  8-bit; ``F`` within ``[0, 1]`` is scaled by 255; any other ``I``/``F`` range is min-max
  normalised; ``CMYK``, ``YCbCr``, ... -> RGB.
- Animated GIF / APNG / multi-page files give their first frame.
- Anything that is not a readable image raises :class:`ImageLoadError` with one line naming
  the file: missing, a folder, empty, truncated, not an image, too big (more than
  :data:`MAX_PIXELS`, checked from the header before any pixel is decoded).
"""
from __future__ import annotations

import math
import os
import re
import stat
import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageLoadError  # noqa: F401 - part of this module's API

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ImageLoadError", "MAX_PIXELS", "read_image", "fit_size", "resize_image",
           "to_float_array", "load_image", "to_uint8", "to_uint8_inplace", "tile", "enlarge"]

#: Largest image accepted, in pixels (64 megapixels, e.g. 8000 x 8000). Bigger files are refused
#: before decoding, as are files that Pillow flags as decompression bombs.
MAX_PIXELS = 64_000_000

_GREY_MODES = {"1", "L", "LA", "La", "I", "F"}


# ------------------------------------------------------------------------------------ reading
def _check_file(path) -> None:
    """Refuse what is not a non-empty regular file, before Pillow sees it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageLoadError(path, "no such file") from None
    except NotADirectoryError:
        raise ImageLoadError(path, "no such file (a part of the path is not a folder)") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except (OSError, ValueError) as e:  # ValueError: embedded NUL byte
        raise ImageLoadError(path, f"cannot access the file ({_reason(e)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(path, "this is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageLoadError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageLoadError(path, "the file is empty (0 bytes)")


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _too_big(w: int, h: int) -> str:
    return (f"the image is {w} x {h} pixels ({w * h / 1e6:.0f} megapixels), more than the "
            f"{MAX_PIXELS / 1e6:.0f}-megapixel limit")


def read_image(path, *, channels: str | None = None) -> Image.Image:
    """Read an image file as a detached Pillow image in mode ``'RGB'`` or ``'L'``.

    channels: ``'RGB'``, ``'L'``, or ``None`` to keep grey images (``1``, ``L``, ``LA``,
    16-bit, float, and palette images whose palette is grey) as ``'L'`` and give everything
    else as ``'RGB'``. Raises :class:`ImageLoadError` for anything that is not a readable image.
    """
    if channels not in (None, "RGB", "L"):
        raise ValueError(f"channels must be 'RGB', 'L' or None, not {channels!r}")
    _check_file(path)
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:          # reads the header only
                w, h = im.size
                if w < 1 or h < 1:
                    raise ImageLoadError(path, f"the image has no pixels ({w} x {h})")
                if w * h > MAX_PIXELS:
                    raise ImageLoadError(path, _too_big(w, h))
                im.load()                          # animated / multi-page: the first frame
                try:
                    out = ImageOps.exif_transpose(im)
                except Exception:  # noqa: BLE001 - damaged EXIF: keep the pixels as stored
                    out = im
                out = _convert(out, channels)
                if out is im:
                    out = im.copy()
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        m = re.search(r"\((\d+) pixels\)", str(e))
        n = f"{int(m.group(1)) / 1e6:.0f} megapixels" if m else "too many pixels"
        raise ImageLoadError(path, f"the image is too large ({n}; the limit is "
                                   f"{MAX_PIXELS / 1e6:.0f} megapixels)") from None
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image file, or a format Pillow cannot read") from None
    except MemoryError:
        raise ImageLoadError(path, "not enough memory to decode the image") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except EOFError:
        raise ImageLoadError(path, "the file is truncated or damaged") from None
    except OSError as e:
        text = str(e).lower()
        if "truncated" in text or "broken data stream" in text:
            raise ImageLoadError(path, "the file is truncated or damaged") from None
        raise ImageLoadError(path, f"the file is damaged or unsupported ({_reason(e)})") from None
    except Exception as e:  # noqa: BLE001 - decoders raise anything on hostile input
        # SyntaxError, ValueError, struct.error, IndexError, KeyError, ZeroDivisionError, ...
        raise ImageLoadError(path, f"the file is damaged or unsupported ({type(e).__name__}: "
                                   f"{_reason(e)})") from None
    return out


def _over_white(im: Image.Image, mode: str) -> Image.Image:
    """Composite an image with transparency over a white background -> ``mode`` (no alpha)."""
    if im.mode == "La":                      # premultiplied: over white is  L + (255 - A)
        a = np.asarray(im).astype(np.int16)
        grey = Image.fromarray(np.clip(a[..., 0] + 255 - a[..., 1], 0, 255).astype(np.uint8))
        return grey if mode == "L" else grey.convert(mode)
    rgba = im.convert("RGBA")
    base = Image.new("RGBA", im.size, (255, 255, 255, 255))
    base.alpha_composite(rgba)
    return base.convert(mode)


def _wide_to_L(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float grey -> 8-bit ``L``, scaled (never clipped)."""
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        a = a.astype(np.float64) / 257.0                          # 65535 -> 255
    else:
        a = a.astype(np.float64)
        finite = np.isfinite(a)
        a = np.where(finite, a, 0.0)
        lo, hi = (float(a[finite].min()), float(a[finite].max())) if finite.any() else (0., 0.)
        if im.mode == "I" and lo >= 0 and hi <= 65535 and hi > 255:
            a = a / 257.0                                         # 16-bit data read as 'I'
        elif im.mode == "I" and lo >= 0 and hi <= 255:
            pass                                                  # already 8-bit values
        elif im.mode == "F" and lo >= 0 and hi <= 1:
            a = a * 255.0                                         # floats in [0, 1]
        elif hi > lo:
            a = (a - lo) * (255.0 / (hi - lo))                    # anything else: min-max
        else:
            a = np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _grey_palette(im: Image.Image) -> bool:
    """Whether every palette entry a ``P`` / ``PA`` image uses is grey."""
    pal = im.getpalette() or []
    idx = im.getchannel(0) if im.mode == "PA" else im       # PA: colours are (index, alpha)
    used = {c for _, c in (idx.getcolors(256) or [])}
    rgb = [pal[3 * k:3 * k + 3] for k in used if 3 * k + 2 < len(pal)]
    return bool(rgb) and all(r == g == b for r, g, b in rgb)


def _convert(im: Image.Image, channels: str | None) -> Image.Image:
    """Any Pillow mode -> ``'L'`` or ``'RGB'`` (see the module docstring for the policy)."""
    mode = im.mode
    grey = mode in _GREY_MODES or mode.startswith("I;16")
    if mode == "1":
        im = im.convert("L")
    elif mode in ("LA", "La") or (mode == "L" and "transparency" in im.info):
        im = _over_white(im, "L")
    elif mode.startswith("I") or mode == "F":
        im = _wide_to_L(im)
    elif mode in ("P", "PA"):
        grey = _grey_palette(im)
        if mode == "PA" or "transparency" in im.info:
            im = _over_white(im, "RGB")
        else:
            im = im.convert("RGB")
    elif mode in ("RGBA", "RGBa") or (mode == "RGB" and "transparency" in im.info):
        im = _over_white(im, "RGB")
    elif mode != "L" and mode != "RGB":
        try:                                                      # CMYK, YCbCr, RGBX, HSV...
            im = im.convert("RGB")
        except ValueError:
            raise ValueError(f"unsupported colour mode {mode}") from None
    want = channels or ("L" if grey else "RGB")
    return im if im.mode == want else im.convert(want)


# ------------------------------------------------------------------------------------ resizing
def fit_size(w: int, h: int, max_side: int) -> tuple[int, int]:
    """The size that fits ``w x h`` inside ``max_side x max_side`` keeping the aspect ratio.

    Only shrinks: a size already within the box is returned unchanged. Sides are rounded and
    never drop below 1 pixel.
    """
    if w < 1 or h < 1 or max_side < 1:
        raise ValueError(f"sizes must be positive, got {w} x {h} and max_side {max_side}")
    long = max(w, h)
    if long <= max_side:
        return int(w), int(h)
    s = max_side / long
    return max(1, round(w * s)), max(1, round(h * s))


def _center_crop_box(w: int, h: int, tw: int, th: int) -> tuple[float, float, float, float]:
    """The largest centred box of ``w x h`` with the aspect ratio of ``tw x th``."""
    if w * th > h * tw:                # too wide: crop the sides
        cw = h * tw / th
        return ((w - cw) / 2, 0.0, (w + cw) / 2, float(h))
    ch = w * th / tw                   # too tall (or exact): crop top and bottom
    return (0.0, (h - ch) / 2, float(w), (h + ch) / 2)


def resize_image(img: Image.Image, max_side: int | None = None,
                 size: int | tuple[int, int] | None = None) -> Image.Image:
    """Resize a Pillow image; at most one of ``max_side`` and ``size``.

    max_side: shrink (never enlarge) so the long side is at most ``max_side``, keeping the
    aspect ratio (:func:`fit_size`).
    size: ``(w, h)`` (or an int for a square) exactly, e.g. a model's 32 x 32. Policy: the
    largest centred crop with the target's aspect ratio (a centred square for square targets)
    is resized to ``size``, so nothing is stretched; this enlarges small images too.
    Both use Lanczos resampling. With neither, the image is returned unchanged.
    """
    if max_side is not None and size is not None:
        raise ValueError("give max_side or size, not both")
    w, h = img.size
    if size is not None:
        tw, th = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if tw < 1 or th < 1:
            raise ValueError(f"size must be positive, got {size!r}")
        box = _center_crop_box(w, h, tw, th)
        if (tw, th) == (w, h) and box == (0.0, 0.0, float(w), float(h)):
            return img
        return img.resize((tw, th), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    if max_side is not None:
        nw, nh = fit_size(w, h, int(max_side))
        if (nw, nh) != (w, h):
            return img.resize((nw, nh), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img


# ------------------------------------------------------------------------------------ arrays
def to_float_array(img) -> np.ndarray:
    """A Pillow image (``L``/``RGB``) or uint8 array ``[H, W]``/``[H, W, C]`` -> float32
    ``[C, H, W]`` in ``[-1, 1]`` (0 -> -1, 255 -> 1)."""
    if isinstance(img, Image.Image):
        if img.mode not in ("L", "RGB"):
            img = _convert(img, None)
        a = np.asarray(img)
    else:
        a = np.asarray(img)
        if a.dtype != np.uint8:
            raise ValueError(f"expected a uint8 array, got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"expected [H, W] or [H, W, C], got shape {a.shape}")
    return np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32) / np.float32(127.5) - 1


def load_image(path, *, channels: str | None = None, max_side: int | None = None,
               size: int | tuple[int, int] | None = None) -> "torch.Tensor":
    """Read, resize (see :func:`resize_image`) and convert an image file to a float32 tensor
    ``[C, H, W]`` in ``[-1, 1]`` (C = 1 or 3). Raises :class:`ImageLoadError`."""
    import torch

    img = resize_image(read_image(path, channels=channels), max_side=max_side, size=size)
    return torch.from_numpy(to_float_array(img))


def to_uint8(x, *, scratch: bool = False) -> np.ndarray:
    """Float images in ``[-1, 1]`` -> uint8, channels last.

    x: a torch tensor or numpy array ``[C, H, W]`` or ``[B, C, H, W]``. Returns ``[H, W, C]`` or
    ``[B, H, W, C]``; values are clamped to ``[-1, 1]`` and rounded (-1 -> 0, 1 -> 255); NaN -> 0.
    ``scratch=True``: the caller knows that ``x`` is float32 with no NaN or infinity and lets its
    values be overwritten (no copy, no NaN pass); the result is the same.
    """
    if hasattr(x, "detach"):       # a torch tensor, without importing torch
        x = x.detach().to("cpu").float().numpy()
    a = np.asarray(x, dtype=np.float32)
    if a.ndim not in (3, 4):
        raise ValueError(f"expected [C, H, W] or [B, C, H, W], got shape {a.shape}")
    if not scratch:
        a = np.nan_to_num(a, nan=-1.0, posinf=1.0, neginf=-1.0)   # a copy: x is not modified
    return np.ascontiguousarray(np.moveaxis(to_uint8_inplace(a), -3, -1))


def to_uint8_inplace(buf: np.ndarray) -> np.ndarray:
    """The float32 operations of :func:`to_uint8` (clip to ``[-1, 1]``, +1, *127.5, rint) done in
    place in ``buf`` (float32, any shape, no NaN), then the uint8 copy. No channel move: for
    callers that keep ``[H, W, C]`` floats and want the very bytes ``to_uint8`` gives."""
    np.clip(buf, -1.0, 1.0, out=buf)
    np.add(buf, 1.0, out=buf)
    np.multiply(buf, 127.5, out=buf)
    np.rint(buf, out=buf)
    return buf.astype(np.uint8)


def tile(images, ncols: int | None = None, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """Lay uint8 images ``[B, H, W, C]`` out in a grid ``[H', W', C]``.

    ncols: columns (default ``ceil(sqrt(B))``, square-ish). ``pad`` pixels of ``pad_value``
    separate the cells (no outer border): ``H' = rows * H + (rows - 1) * pad``. Empty cells of
    the last row are filled with ``pad_value``.
    """
    a = np.asarray(images)
    if a.ndim != 4:
        raise ValueError(f"expected [B, H, W, C], got shape {a.shape}")
    b, h, w, c = a.shape
    if b < 1:
        raise ValueError("nothing to tile: the batch is empty")
    if pad < 0:
        raise ValueError("pad must be >= 0")
    ncols = max(1, min(int(ncols) if ncols else math.ceil(math.sqrt(b)), b))
    nrows = math.ceil(b / ncols)
    out = np.full((nrows * h + (nrows - 1) * pad, ncols * w + (ncols - 1) * pad, c),
                  pad_value, dtype=a.dtype)
    for k in range(b):
        r, q = divmod(k, ncols)
        y, x = r * (h + pad), q * (w + pad)
        out[y:y + h, x:x + w] = a[k]
    return out


def enlarge(img, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of a uint8 image ``[H, W, C]`` (or ``[H, W]``) by an
    integer ``factor``: each pixel becomes a ``factor x factor`` block (crisp, no blur)."""
    a = np.asarray(img)
    factor = int(factor)
    if factor < 1:
        raise ValueError("factor must be a positive integer")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected [H, W] or [H, W, C], got shape {a.shape}")
    if factor == 1:
        return a.copy()
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1)
