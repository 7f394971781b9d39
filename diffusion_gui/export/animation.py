"""uint8 frames -> an animation: GIF, MP4 (H.264), WebM (VP9), animated WebP or APNG.

:func:`write_animation` picks the format from the extension of the target (see
:data:`ANIMATION_FORMATS`):

``.gif``   :func:`~.gif.write_gif` (256 colours, grey frames exact).
``.mp4``   H.264 video through PyAV (``yuv420p``, CRF ``quality``; plays in browsers and slides).
``.webm``  VP9 video through PyAV (``yuv420p``, constant quality ``quality``).
``.webp``  animated WebP through Pillow, lossless (every frame exact).
``.apng``  animated PNG through Pillow, lossless. **A ``.png`` name stays a still** (one PNG, or
           a filmstrip of several frames, :func:`~diffusion_gui.export.export_frames`): an APNG
           is written to ``.apng``, or to any name with ``format='apng'``.

Timing: ``fps`` frames a second; ``hold_first`` / ``hold_last`` keep the first / last frame on
screen for that many *extra* frame times. Videos repeat the frame (constant frame rate);
GIF, WebP and APNG lengthen its duration instead (one stored frame). ``every=k`` keeps every
k-th frame (the last one always kept).

Frames are uint8 ``[H, W, C]`` (C = 1 or 3) or ``[H, W]``, all of one size. H.264 and VP9 in
``yuv420p`` need even sizes: an odd height or width is padded by one row / column repeating the
edge (never refused). Written atomically (:mod:`.atomic`): an error or a cancel leaves no file.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .atomic import ExportError, atomic_path, call_progress, check_target
from .frames import as_frames, compose

__all__ = ["ANIMATION_FORMATS", "VIDEO_CODECS", "write_animation", "animation_format",
           "pad_even", "select_every", "animation_durations"]

#: format key -> (extension, what it is)
ANIMATION_FORMATS = {
    "gif": (".gif", "animated GIF"),
    "mp4": (".mp4", "MP4 video (H.264)"),
    "webm": (".webm", "WebM video (VP9)"),
    "webp": (".webp", "animated WebP (lossless)"),
    "apng": (".apng", "animated PNG (lossless)"),
}
#: format -> (PyAV container format, codec, default constant-rate-factor quality)
VIDEO_CODECS = {"mp4": ("mp4", "libx264", 18), "webm": ("webm", "libvpx-vp9", 30)}


def animation_format(path, format: str | None = None) -> str:
    """The format key of ``path`` (by its extension, case-insensitive) or ``format`` when given.
    Raises :class:`ExportError` naming the supported extensions."""
    if format is not None:
        if format not in ANIMATION_FORMATS:
            raise ExportError(f"unknown animation format {format!r}; "
                              f"supported: {', '.join(ANIMATION_FORMATS)}")
        return format
    ext = Path(os.fspath(path)).suffix.lower()
    for key, (e, _) in ANIMATION_FORMATS.items():
        if ext == e:
            return key
    exts = ", ".join(e for e, _ in ANIMATION_FORMATS.values())
    what = f"unknown file type '{ext}'" if ext else "no file extension"
    raise ExportError(f"cannot write an animation to '{os.fspath(path)}': {what}; "
                      f"supported: {exts}")


def select_every(n: int, every: int) -> list[int]:
    """Indices ``0, k, 2k, ...`` of ``n`` frames, the last one (``n - 1``) always included."""
    every = int(every)
    if every < 1:
        raise ValueError("every must be at least 1")
    idx = list(range(0, n, every))
    if n and idx[-1] != n - 1:
        idx.append(n - 1)
    return idx


def animation_durations(n: int, fps: float, hold_first: int = 0, hold_last: int = 0) -> list[int]:
    """Per-frame durations in ms for WebP / APNG: ``1000 / fps`` each (rounded to 1 ms, at
    least 1), the first ``hold_first`` and the last ``hold_last`` frame times longer. With
    one frame both holds add to it."""
    d = 1000.0 / fps
    out = [d] * n
    if n:
        out[0] += hold_first * d
        out[-1] += hold_last * d
    return [max(1, int(round(x))) for x in out]


def pad_even(a: np.ndarray) -> np.ndarray:
    """``a`` (``[H, W, C]``) with one more row / column repeating its edge where H / W is odd."""
    h, w = a.shape[:2]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return a
    return np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")


def _check(fps, hold_first, hold_last, loop):
    if not (isinstance(fps, (int, float)) and 0 < fps <= 120):
        raise ValueError("fps must be in (0, 120]")
    for name, v in (("hold_first", hold_first), ("hold_last", hold_last)):
        if int(v) != v or not 0 <= v <= 10_000:
            raise ValueError(f"{name} must be a whole number of frames in 0..10000")
    if loop is not None and not 0 <= int(loop) <= 65535:
        raise ValueError("loop must be None or in 0..65535")


def _scale(frames, scale, size) -> int:
    from .gif import _scale_for
    return _scale_for(*frames[0].shape[:2], scale, size)


def write_animation(path, frames, *, fps: float = 12, hold_first: int = 0, hold_last: int = 0,
                    every: int = 1, captions: Sequence[str | None] | None = None,
                    scale: int | None = None, size: int | None = None, loop: int | None = 0,
                    quality: int | None = None, format: str | None = None,
                    progress=None) -> Path:
    """Write uint8 frames ``[H, W, C]`` (C = 1 or 3) as an animation at ``path``, the format
    chosen by its extension (module docstring; ``format=`` overrides it: ``'apng'`` for a
    ``.png`` name).

    fps: frames a second, in (0, 120] (a GIF rounds the frame time to 10 ms, at least 20 ms).
    hold_first / hold_last: extra frame times on the first / last frame (whole frames).
    every: keep every k-th frame (and the last). captions: one string (or None) a frame (the
    frames given, before ``every``), drawn in a white strip under it. scale / size: integer
    nearest-neighbour enlargement, or the long side in px (the largest integer factor that
    fits). loop: 0 = forever, n = n extra times, None = once (GIF / WebP / APNG; a video's
    player decides). quality: CRF for MP4 (0..51, default 18) / WebM (0..63, default 30);
    ignored by the other formats. progress(done, total): before each frame and once the file
    is complete; returning ``False`` cancels (:class:`~.atomic.Cancelled`, no file left).
    Raises :class:`ExportError` for an unknown extension or an unwritable target.
    Returns the path written.
    """
    fmt = animation_format(path, format)
    _check(fps, hold_first, hold_last, loop)
    hold_first, hold_last = int(hold_first), int(hold_last)
    target = check_target(path)                    # fail before doing the work
    frames = as_frames(frames)
    if captions is not None:
        captions = list(captions)
        if len(captions) != len(frames):
            raise ValueError(f"got {len(captions)} captions for {len(frames)} frames")
    idx = select_every(len(frames), every)
    frames = [frames[i] for i in idx]
    captions = None if captions is None else [captions[i] for i in idx]
    if fmt == "gif":
        from .gif import write_gif
        d = 1.0 / fps
        return write_gif(frames, target, fps=fps, loop=loop, hold_first_s=hold_first * d,
                         hold_last_s=hold_last * d, scale=scale, size=size, captions=captions,
                         progress=progress)
    frames = compose(frames, captions, _scale(frames, scale, size))
    if fmt in VIDEO_CODECS:
        _write_video(target, frames, fmt, fps, hold_first, hold_last, quality, progress)
    else:
        _write_pillow(target, frames, fmt, fps, hold_first, hold_last, loop, progress)
    return target


def _pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(a[:, :, 0]), "L") if a.shape[2] == 1 \
        else Image.fromarray(np.ascontiguousarray(a), "RGB")


def _write_pillow(target, frames, fmt, fps, hold_first, hold_last, loop, progress):
    n = len(frames)
    images = []
    for j, a in enumerate(frames):
        call_progress(progress, j, n)
        im = _pil(a)
        images.append(im.convert("RGB") if fmt == "webp" else im)
    opts = {"save_all": True, "append_images": images[1:],
            "duration": animation_durations(n, fps, hold_first, hold_last)}
    # both count plays (0 = forever); ``loop`` here counts extra plays, as a GIF's does
    opts["loop"] = 1 if loop is None else (0 if int(loop) == 0 else int(loop) + 1)
    if fmt == "webp":
        opts.update(lossless=True, quality=100, method=4)
    try:
        with atomic_path(target) as tmp:
            images[0].save(tmp, format="WEBP" if fmt == "webp" else "PNG", **opts)
            call_progress(progress, n, n)
    except (KeyError, OSError) as e:
        if isinstance(e, ExportError):
            raise
        raise ExportError(f"could not write '{os.fspath(target)}': {e}") from e


def _write_video(target, frames, fmt, fps, hold_first, hold_last, quality, progress):
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency
        raise ExportError("writing MP4 / WebM needs PyAV: pip install av") from None
    container_fmt, codec, default_q = VIDEO_CODECS[fmt]
    q = default_q if quality is None else int(quality)
    if not 0 <= q <= (51 if fmt == "mp4" else 63):
        raise ValueError(f"quality must be in 0..{51 if fmt == 'mp4' else 63} for {fmt}")
    n = len(frames)
    first = pad_even(frames[0])
    h, w = first.shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    options = {"crf": str(q)}
    if fmt == "mp4":
        options.update(preset="medium", movflags="+faststart")
    else:
        options.update({"b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"})
    with atomic_path(target) as tmp:
        with av.open(str(tmp), mode="w", format=container_fmt) as out:
            stream = out.add_stream(codec, rate=rate, options=options)
            stream.width, stream.height = w, h
            stream.pix_fmt = "yuv420p"
            stream.thread_count = 1
            for j, a in enumerate(frames):
                call_progress(progress, j, n)
                a = pad_even(a)
                if a.shape[2] == 1:
                    a = np.repeat(a, 3, axis=2)
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
                repeats = 1 + (hold_first if j == 0 else 0) + (hold_last if j == n - 1 else 0)
                for _ in range(repeats):
                    for packet in stream.encode(vf):
                        out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        call_progress(progress, n, n)
