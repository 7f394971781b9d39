"""Qt-free export: uint8 frames -> GIF / MP4 / WebM / WebP / APNG / PNG / PNG sequence / filmstrip
/ NPZ, written atomically.

Frames are uint8 arrays ``[H, W, C]`` (C = 1 or 3); get them from float tensors in ``[-1, 1]``
with :func:`diffusion_gui.core.images.to_uint8`. Every writer raises :class:`ExportError` (a
``ValueError`` with a one-line message) for a target it cannot write, and :class:`Cancelled`
when its ``progress`` callback returns ``False``; neither leaves a partial file behind.
"""
from __future__ import annotations

import os
from pathlib import Path

from .animation import ANIMATION_FORMATS, write_animation
from .atomic import Cancelled, ExportError, atomic_path
from .frames import write_filmstrip, write_npz, write_png, write_png_sequence
from .gif import frame_durations, write_gif
from .timeline import forward_frames, reverse_frames, timeline_steps

__all__ = ["ExportError", "Cancelled", "atomic_path", "export_frames", "write_animation",
           "ANIMATION_FORMATS", "write_gif",
           "frame_durations", "write_png", "write_png_sequence", "write_filmstrip", "write_npz",
           "timeline_steps", "forward_frames", "reverse_frames", "SUPPORTED"]

#: What :func:`export_frames` writes, by extension.
SUPPORTED = {
    ".gif": "animated GIF",
    ".mp4": "MP4 video (H.264)",
    ".webm": "WebM video (VP9)",
    ".webp": "animated WebP (lossless)",
    ".apng": "animated PNG (lossless); a .png name is a still or a filmstrip",
    ".png": "one PNG (a filmstrip when there are several frames)",
    ".npz": "NumPy archive with 'images' uint8 [B, H, W, C]",
    "folder": "a PNG sequence (a path without an extension, or an existing folder)",
}


def _is_folder_target(path) -> bool:
    s = os.fspath(path)
    p = Path(s)
    return s.endswith(("/", os.sep)) or p.is_dir() or p.suffix == ""


def export_frames(frames, path, **opts) -> Path | list[Path]:
    """Write ``frames`` to ``path``, the format chosen by its extension (see :data:`SUPPORTED`).

    ``.gif`` -> :func:`write_gif`; ``.mp4`` / ``.webm`` / ``.webp`` / ``.apng`` ->
    :func:`write_animation` (``fps=``, ``hold_first=``, ``hold_last=``, ``captions=``, ...);
    ``.png`` -> :func:`write_filmstrip` (``labels=``, ``ncols=``,
    ``scale=``; ``captions=`` is accepted as an alias of ``labels``); ``.npz`` ->
    :func:`write_npz`; a folder -> :func:`write_png_sequence`. ``opts`` go to that writer.
    Raises :class:`ExportError` for an unknown extension, listing the supported ones.
    """
    if _is_folder_target(path):
        return write_png_sequence(frames, path, **opts)
    ext = Path(path).suffix.lower()
    if ext == ".gif":
        return write_gif(frames, path, **opts)
    if ext in (".mp4", ".webm", ".webp", ".apng"):
        return write_animation(path, frames, **opts)
    if ext == ".png":
        if "captions" in opts:
            opts["labels"] = opts.pop("captions")
        opts.pop("progress", None)
        return write_filmstrip(frames, path, **opts)
    if ext == ".npz":
        return write_npz(frames, path)
    raise ExportError(f"cannot export to '{os.fspath(path)}': unknown file type '{ext}'; "
                      f"supported: .gif, .mp4, .webm, .webp, .apng, .png, .npz, "
                      f"or a folder for a PNG sequence")
