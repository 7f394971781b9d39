"""What the headless commands share: the model to load, the output checks, grids and previews."""
from __future__ import annotations

from pathlib import Path

from ..errors import InvalidParameter


def _model(spec):
    from ..models.loader import load_model
    from ..models.registry import DEFAULT_MODEL
    return load_model(spec or DEFAULT_MODEL)


def _device(args):
    """The ``torch.device`` of ``--device``, its ``--dtype`` checked on it; an unavailable one
    raises :class:`InvalidParameter` (``device``: one line, exit 2)."""
    from ..core.devices import resolve_device, resolve_dtype
    device = resolve_device(args.device)
    resolve_dtype(args.dtype, device)
    return device


#: long side of the PNG grid that ``sample -o X.png`` writes when no --size is given, in px
GRID_PX = 512


def grid_scale(shape, size: int | None = None) -> int:
    """The integer enlargement that brings a grid of ``shape`` ``(H, W, ...)`` to about ``size``
    px on its long side (:data:`GRID_PX` when None), never below 1 (crisp, nearest-neighbour)."""
    return max(1, int(size or GRID_PX) // max(int(shape[0]), int(shape[1])))


def _check_gif_options(args):
    """Refuse impossible GIF settings before any work is done."""
    if getattr(args, "frames", None) is not None and args.frames < 2:
        raise InvalidParameter("frames", "must be at least 2 (the first and the last frame)")
    if args.fps is not None and not 0 < args.fps <= 100:
        raise InvalidParameter("fps", "must be in (0, 100]")


def _check_output(path):
    """Fail before sampling if ``path`` cannot be written (missing or unwritable folder)."""
    from ..export.atomic import check_target
    if Path(path).suffix:
        check_target(path)


def _preview(so, which: str):
    """The uint8 frame of one StepOutput: the batch grid of x_t, x0_pred, or both side by side
    (:func:`~diffusion_gui.export.frames.trajectory_frame`, the one composer)."""
    from ..core.images import to_uint8
    from ..export.frames import trajectory_frame
    return trajectory_frame(None if which == "x0" else to_uint8(so.x_t),
                            None if which == "xt" else to_uint8(so.x0_pred), which)


#: what ``--animation`` (``--gif``) and an animated ``-o`` accept, by extension
ANIMATION_EXTS = (".gif", ".mp4", ".webm", ".webp", ".apng")


def _check_animation(path, name: str = "animation") -> None:
    if path and not str(path).lower().endswith(ANIMATION_EXTS):
        raise InvalidParameter(name, "must end in .gif, .mp4, .webm, .webp or .apng",
                               subject=str(path))
