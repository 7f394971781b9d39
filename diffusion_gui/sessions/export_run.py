"""Writing an export source to a file, Qt-free: what the Export dialog runs in its worker and
``benchmarks/export_gif.py`` times.

:func:`validate_target` checks a path for a format before any work; :func:`run_export` writes a
source (any kind but ``'plot'``) to a file or a folder; :func:`estimate_bytes` encodes a few
frames to guess the file size; :func:`describe_bytes` says it in words. :func:`suggest_target`
and :func:`describe_frames` are the dialog's path and size lines, kept here to be tested plainly.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..export import Cancelled, ExportError
from ..export.atomic import check_folder, check_target
from ..export.frames import as_frames, compose
from .export_sources import ANIMATED, FILMSTRIP_COLUMNS, FORMATS, ExportOptions, ExportSource

__all__ = ["validate_target", "run_export", "estimate_bytes", "describe_bytes",
           "describe_frames", "describe_written", "filmstrip_columns", "suggest_target",
           "animation_timing"]

#: px between the cells of a filmstrip (as :func:`diffusion_gui.export.write_filmstrip` draws)
FILMSTRIP_GAP = 2


def validate_target(fmt: str, path) -> Path:
    """Check ``path`` for format ``fmt`` before any work: the extension, the folder (exists,
    writable). Raises :class:`ExportError` with a one-line message; returns ``Path(path)``."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}")
    s = os.fspath(path).strip() if path is not None else ""
    if not s:
        raise ExportError("choose where to write the export")
    try:
        return _validate(fmt, s)
    except OSError as e:             # a name too long for the file system, a path it refuses
        shown = s if len(s) <= 80 else s[:40] + "..." + s[-30:]
        raise ExportError(f"cannot export to '{shown}': {e.strerror or e}") from None


def _validate(fmt: str, s: str) -> Path:
    p = Path(s).expanduser()
    name, ext = FORMATS[fmt]
    if fmt == "png_sequence":
        if p.exists() and not p.is_dir():
            raise ExportError(f"cannot write frames into '{s}': it is a file, not a folder")
        if p.suffix and not p.is_dir():
            raise ExportError(f"a PNG sequence goes into a folder: '{s}' looks like a file "
                              f"('{p.suffix}'); give a folder name without an extension")
        check_folder(p if p.is_dir() else p.parent)
        return p
    if p.suffix.lower() != ext:
        what = f"unknown file type '{p.suffix}'" if p.suffix else "no file extension"
        raise ExportError(f"cannot export to '{s}': {what}; {name} is written as '{ext}'")
    return check_target(p)


def filmstrip_columns(n: int) -> int:
    """Frames per row of a filmstrip of ``n`` frames: one row up to 10, else rows of 10."""
    return max(1, min(n, FILMSTRIP_COLUMNS))


def run_export(source: ExportSource, opts: ExportOptions, fmt: str, path,
               progress: Callable[[int, int, str], bool | None] | None = None):
    """Render ``source``'s frames and write them as ``fmt`` to ``path``. Qt-free: this is what
    the dialog's worker runs (not for ``'plot'`` sources: ``PlotSource.export``).

    ``progress(done, total, phase)`` with phase ``'frames'`` then ``'writing'`` (``total`` =
    2 x frames); returning ``False`` cancels (:class:`Cancelled`; nothing is left behind and an
    existing target is untouched). Raises :class:`ExportError` for a bad target.
    Returns the path written (a list of paths for a PNG sequence).
    """
    if source.kind == "plot":
        raise ExportError("plots are exported in the GUI thread (PlotSource.export)")
    if fmt not in source.formats():
        raise ExportError(f"{source.label} cannot be exported as {FORMATS[fmt][0]}")
    target = validate_target(fmt, path)
    n = source.count(opts)
    if n < 1:
        raise ExportError(source.empty_reason() or "there are no frames to export")

    def report(done, phase):
        if progress is not None and progress(done, 2 * n, phase) is False:
            raise Cancelled("export cancelled")

    frames, caps = [], []
    for k, (f, c) in enumerate(source.frames(opts)):
        report(k, "frames")
        frames.append(f)
        caps.append(c)
    captions = caps if (opts.caption and any(c for c in caps)) else None
    scale = max(1, int(opts.scale))

    def sub(done, total):
        if progress is not None:
            return progress(n + round(done * n / max(total, 1)), 2 * n, "writing")
        return None

    report(n, "writing")
    if fmt == "gif":
        from ..export import write_gif
        return write_gif(frames, target, fps=opts.fps, hold_last_s=opts.hold_last_s,
                         hold_first_s=opts.hold_first_s, loop=0 if opts.loop else None,
                         scale=scale, captions=captions, progress=sub)
    if fmt in ANIMATED:
        from ..export import write_animation
        return write_animation(target, frames, format=fmt, **animation_timing(opts),
                               loop=0 if opts.loop else None, scale=scale, captions=captions,
                               progress=sub)
    if fmt == "png_sequence":
        from ..export import write_png_sequence
        return write_png_sequence(frames, target, scale=scale, captions=captions, progress=sub)
    from ..export import write_filmstrip  # 'filmstrip' and a still's 'png'
    out = write_filmstrip(frames, target, labels=captions, scale=scale,
                          ncols=filmstrip_columns(len(frames)))
    sub(1, 1)
    return out


def animation_timing(opts: ExportOptions) -> dict:
    """``fps``, ``hold_first``, ``hold_last`` (whole frames) of
    :func:`~diffusion_gui.export.write_animation` for the dialog's seconds."""
    fps = float(opts.fps)
    return {"fps": fps, "hold_first": max(0, round(opts.hold_first_s * fps)),
            "hold_last": max(0, round(opts.hold_last_s * fps))}


#: frames a run of neighbours :func:`_estimate_video` encodes, and x264's / libvpx's key-frame
#: interval (an intra frame at least this often)
_RUN, _KEY_EVERY = 4, 250


def _estimate_video(source, opts, fmt: str, n: int, should_stop=None) -> int | None:
    """A video's size: at the start, middle and end, one frame alone (an intra frame, ``I``) and
    :data:`_RUN` neighbours (``I`` plus predicted frames, ``P`` each); then
    ``I * ceil(n / 250) + P * (n - that)``. Neighbours, not frames far apart: a video stores
    the change from one frame to the next."""
    import tempfile

    from ..export import write_animation
    scale = max(1, int(opts.scale))
    i_sizes, p_sizes = [], []
    with tempfile.TemporaryDirectory() as d:
        for start in sorted({0, max(0, n // 2 - _RUN // 2), max(0, n - _RUN)}):
            if should_stop is not None and should_stop():
                return None
            got = [source.frame_at(opts, k) for k in range(start, min(n, start + _RUN))]
            caps = [c for _, c in got] if opts.caption and any(c for _, c in got) else None
            cells = compose(as_frames([f for f, _ in got]), caps, scale)
            sizes = []
            for m in (1, len(cells)):
                p = write_animation(Path(d) / f"e{m}{FORMATS[fmt][1]}", cells[:m], fps=12,
                                    format=fmt)
                sizes.append(p.stat().st_size)
            i_sizes.append(sizes[0])
            if len(cells) > 1:
                p_sizes.append((sizes[1] - sizes[0]) / (len(cells) - 1))
    n_key = math.ceil(n / _KEY_EVERY)
    p_mean = max(float(np.mean(p_sizes)), 0.0) if p_sizes else 0.0
    return int(float(np.mean(i_sizes)) * n_key + p_mean * max(n - n_key, 0))


def _sample_indices(n: int, k: int) -> list[int]:
    return sorted(set(np.round(np.linspace(0, n - 1, min(k, n))).astype(int).tolist()))


def estimate_bytes(source: ExportSource, opts: ExportOptions, fmt: str, samples: int = 3,
                   should_stop: Callable[[], bool] | None = None) -> int | None:
    """A guess of the size of the export in bytes: ``samples`` frames (first, middle, last)
    encoded the way the writer will encode them, extrapolated to all frames. None for plots
    (and when ``should_stop()`` turns true: a newer estimate is wanted)."""
    if source.kind == "plot" or fmt not in FORMATS or fmt in ("svg", "csv"):
        return None
    from PIL import Image
    n = source.count(opts)
    if n < 1:
        return 0
    if fmt in ("mp4", "webm"):
        return _estimate_video(source, opts, fmt, n, should_stop)
    idx = _sample_indices(n, samples)
    got = [source.frame_at(opts, k) for k in idx]
    frames = as_frames([f for f, _ in got])
    caps = [c for _, c in got] if opts.caption and any(c for _, c in got) else None
    cells = compose(frames, caps, max(1, int(opts.scale)))
    sizes = []
    for a in cells:
        if should_stop is not None and should_stop():
            return None
        buf = io.BytesIO()
        if fmt == "gif":
            from ..export.gif import _to_gif_frame
            _to_gif_frame(a, None).save(buf, format="GIF")
        elif fmt == "webp":
            Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).convert("RGB").save(
                buf, format="WEBP", lossless=True, quality=100, method=4)
        else:
            im = Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")
            im.save(buf, format="PNG")
        sizes.append(buf.tell())
    mean = float(np.mean(sizes))
    if fmt == "gif":
        return int(800 + n * max(mean - 800 + 30, 60))   # one header, a frame block per frame
    if fmt in ("png_sequence", "webp", "apng"):
        return int(n * mean)
    return int(math.ceil(n * mean * 1.02))                # one PNG of all the cells


def describe_bytes(n: int | None) -> str:
    """``'about 1.2 MB'``; ``''`` for None."""
    if n is None:
        return ""
    if n < 1024:
        return f"about {n} bytes"
    if n < 1024 ** 2:
        return f"about {n / 1024:.0f} KB"
    return f"about {n / 1024 ** 2:.1f} MB"


def describe_frames(n: int, height: int, width: int, fmt: str) -> str:
    """``'12 frames · 64 × 48 px'``: how many frames, and the size of one (of the whole strip
    for a filmstrip, with its rows)."""
    what = "1 frame" if n == 1 else f"{n} frames"
    if fmt == "filmstrip":
        cols = filmstrip_columns(n)
        rows = math.ceil(n / cols)
        what += f" in {rows} row{'s' if rows > 1 else ''} of {cols}"
        width = cols * width + (cols - 1) * FILMSTRIP_GAP
        height = rows * height + (rows - 1) * FILMSTRIP_GAP
    return f"{what} \u00b7 {width} \u00d7 {height} px"


def suggest_target(current: str, fmt: str, name: str, folder: Path, *,
                   new_source: bool = False) -> str:
    """The target path for format ``fmt``: ``current`` with the right extension (a folder name
    ending in ``-frames`` for a PNG sequence), or ``folder / name`` when ``current`` is empty.
    ``new_source``: keep the folder of ``current`` but use the new source's ``name``."""
    ext = FORMATS[fmt][1]
    if current:
        p = Path(current)
        folder = p.parent
        stem = name if new_source else (p.stem if p.suffix else p.name)
    else:
        stem = name
    if fmt == "png_sequence":
        leaf = stem if stem.endswith("frames") else f"{stem}-frames"
    else:
        leaf = (stem[:-len("-frames")] if stem.endswith("-frames") else stem) + ext
    return str(Path(folder) / leaf)


def describe_written(out) -> tuple[str, Path]:
    """What :func:`run_export` (or a plot export) returned, in words, and the folder to offer
    next time: ``("Wrote /x/a.gif (12 KB).", Path("/x"))``; a PNG sequence (a list of paths)
    says how many files went into its folder and offers the folder above it."""
    paths = [Path(p) for p in out] if isinstance(out, list) else [Path(out)]
    total = sum(p.stat().st_size for p in paths if p.exists())
    if isinstance(out, list):
        what, folder = f"{len(out)} PNG files into {paths[0].parent}", paths[0].parent.parent
    else:
        what, folder = str(paths[0]), paths[0].parent
    return f"Wrote {what} ({describe_bytes(total).replace('about ', '')}).", folder
