"""2-D point clouds from pictures: the dark pixels of an image, or of typed text.

:func:`points_from_image` treats an image as a density: a pixel's weight is how dark it is, and
only pixels darker than a threshold between the image's darkest and lightest value count; each
point is a pixel drawn with that weight, placed uniformly inside the pixel (so that the cloud has
no grid). The y axis points up (image rows run down). :func:`points_from_text` renders the text
with Pillow's built-in font, black on white, and takes its dark pixels.

Both return float32 ``[n, 2]`` scaled like the lab's other data sets (:mod:`.toy2d`): centred,
one scale for both coordinates (the picture keeps its aspect) so that the mean variance per
coordinate is 1.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidParameter
from .toy2d import MAX_POINTS

__all__ = ["points_from_image", "points_from_text", "darkness", "TEXT_HEIGHT_PX"]

#: the text is rendered this many pixels high before its dark pixels are drawn from
TEXT_HEIGHT_PX = 120
MAX_TEXT = 40


def _check_n(n) -> int:
    if not 1 <= int(n) <= MAX_POINTS:
        raise InvalidParameter("n", f"must be in 1..{MAX_POINTS}")
    return int(n)


def darkness(image, threshold: float = 0.5) -> np.ndarray:
    """Per-pixel weight float64 ``[H, W]`` of an image: ``0`` at or above the threshold, rising to
    ``1`` at the darkest value. ``image``: uint8 ``[H, W]`` or ``[H, W, C]`` (C = 1, 3 or 4; an
    alpha channel composites over white) or float in ``[0, 1]``; ``threshold`` a fraction of the
    way from the darkest to the lightest value (0.5: the darker half of the range)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (2, 4):                     # composite over white
        alpha = a[..., -1:].astype(np.float64) / (255.0 if a.dtype == np.uint8 else 1.0)
        colour = a[..., :-1].astype(np.float64) / (255.0 if a.dtype == np.uint8 else 1.0)
        a = colour * alpha + (1 - alpha)
    elif a.dtype == np.uint8:
        a = a.astype(np.float64) / 255.0
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114])[: a.shape[2]] / (
            np.array([0.299, 0.587, 0.114])[: a.shape[2]].sum())
    if a.ndim != 2 or a.size == 0:
        raise InvalidParameter("image", "must be a non-empty [H, W] or [H, W, C] array")
    lo, hi = float(a.min()), float(a.max())
    if hi - lo < 1e-6:
        return np.zeros_like(a)
    cut = lo + threshold * (hi - lo)
    return np.clip((cut - a) / (cut - lo), 0.0, 1.0)


def points_from_image(image, n: int = 2000, seed=0, threshold: float = 0.5) -> np.ndarray:
    """``n`` points drawn from the dark pixels of ``image`` (see :func:`darkness`), float32
    ``[n, 2]``, centred and scaled to unit mean variance per coordinate, y up. Raises
    :class:`InvalidParameter` when the image has no dark pixel (a blank or uniform picture)."""
    n = _check_n(n)
    w = darkness(image, threshold)
    flat = w.ravel()
    total = flat.sum()
    if total <= 0:
        raise InvalidParameter("image", "has no dark pixels to draw points from (it is uniform)")
    rng = np.random.default_rng(seed)
    idx = rng.choice(flat.size, size=n, p=flat / total)
    rows, cols = np.divmod(idx, w.shape[1])
    pts = np.stack([cols + rng.uniform(0, 1, n), -(rows + rng.uniform(0, 1, n))], 1)
    pts -= pts.mean(0)
    scale = float(np.sqrt((pts ** 2).mean()))
    return (pts / (scale if scale > 0 else 1.0)).astype(np.float32)


def text_image(text: str, height: int = TEXT_HEIGHT_PX) -> np.ndarray:
    """``text`` rendered black on white with Pillow's built-in font, uint8 ``[H, W]``."""
    from PIL import Image, ImageDraw, ImageFont
    text = " ".join(str(text).split())
    if not text:
        raise InvalidParameter("text", "must have at least one visible character")
    if len(text) > MAX_TEXT:
        raise InvalidParameter("text", f"must be at most {MAX_TEXT} characters")
    font = ImageFont.load_default(size=height)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    pad = height // 8
    img = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 255)
    ImageDraw.Draw(img).text((pad - left, pad - top), text, fill=0, font=font)
    return np.asarray(img)


def points_from_text(text: str, n: int = 2000, seed=0) -> np.ndarray:
    """``n`` points drawn from ``text`` as rendered by :func:`text_image`, float32 ``[n, 2]``,
    scaled as :func:`points_from_image`. Raises :class:`InvalidParameter` for blank text, or one
    of only spaces or characters the font draws as nothing."""
    return points_from_image(text_image(text), n=n, seed=seed)
