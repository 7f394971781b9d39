"""What the Export dialog can write: export *sources*, and the export itself. Qt-free.

A panel's ``export_sources()`` returns a list of :class:`ExportSource` objects (or, as before,
``(label, fn)`` tuples, which the dialog wraps in a :class:`FramesSource`). A source says what it
is and which options apply to it, and renders its frames on demand:

``label`` (str)
    Shown in the dialog's list, e.g. ``"Forward: timeline t = 0..T"``.
``kind``
    ``'timeline'`` (several frames: GIF, PNG sequence or filmstrip PNG), ``'still'`` (one image:
    PNG) or ``'plot'`` (a pyqtgraph plot: PNG, SVG or CSV; ``diffusion_gui.gui.plot_source.PlotSource``).
``options`` (frozenset of :data:`OPTION_NAMES`)
    The options the dialog offers for it: ``t_range`` (paper t, from/to), ``n_frames``,
    ``spacing`` (even / denser near t = 0), ``which`` (x_t / predicted x0 / both),
    ``image`` (the batch grid or one image of the batch), ``caption`` (t and abar_t under each
    frame), ``size`` (an integer, crisp nearest-neighbour enlargement).
``prepare()``
    Called in the **GUI thread** before anything else (a legacy ``fn`` runs here). Cheap.
``count(opts)``, ``frame_at(opts, k)``, ``frames(opts, progress=None)``, ``preview(opts)``
    The number of frames, frame ``k`` as ``(uint8 [H, W, C], caption or None)``, all of them as
    an iterator, and the first frame. These run **in a worker thread** (the export, the size
    estimate), possibly while the GUI thread calls ``preview``: a source must not touch a widget
    there and must not share scratch buffers between calls. The panel snapshots what it needs
    (numpy arrays copied) in the GUI thread, when it creates the source.

Timesteps are the **paper's** ``t`` everywhere: ``t = 0`` is the clean image, ``t = T`` noise.

Iterating a source gives ``(label, fn)`` like the legacy tuples, ``fn()`` returning the frames
with the default options (a list of frames, or ``(frames, captions)`` when it has captions).

:func:`run_export` writes a source (any kind but ``'plot'``) to a file or a folder and is what the
dialog runs in its worker; :func:`estimate_bytes` encodes a few frames to guess the file size.
Neither imports Qt. A plot source (``diffusion_gui.gui.plot_source``) exports itself in the GUI
thread.
"""
from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..export import Cancelled, ExportError
from ..export.atomic import call_progress, check_folder, check_target
from ..export.frames import as_frames, compose
from ..export.timeline import SPACINGS, forward_caption, forward_coefficients, forward_xt, timeline_steps

__all__ = ["OPTION_NAMES", "FORMATS", "KIND_FORMATS", "ExportOptions", "ExportSource",
           "FramesSource", "TimelineSource", "ForwardTimelineSource", "TrajectorySource",
           "as_source", "validate_target", "run_export", "estimate_bytes",
           "filmstrip_columns", "slug", "ExportError", "Cancelled"]

OPTION_NAMES = ("t_range", "n_frames", "spacing", "which", "image", "caption", "size")

#: format key -> (label, extension); '' = a folder.
FORMATS = {
    "gif": ("Animated GIF", ".gif"),
    "png_sequence": ("PNG sequence (one file a frame, in a folder)", ""),
    "filmstrip": ("Filmstrip (one PNG)", ".png"),
    "png": ("PNG image", ".png"),
    "svg": ("SVG (vector)", ".svg"),
    "csv": ("CSV (the data)", ".csv"),
}
KIND_FORMATS = {"timeline": ("gif", "png_sequence", "filmstrip"), "still": ("png",),
                "plot": ("png", "svg", "csv")}
WHICH = ("xt", "x0", "both")
#: frames per row of a filmstrip, at most
FILMSTRIP_COLUMNS = 10


@dataclass(frozen=True)
class ExportOptions:
    """Everything the dialog can set. Sources ignore what does not apply to them.

    t_range: ``(t_from, t_to)`` paper steps, inclusive, or None for ``0..T``. n_frames: frames
    wanted (a source may have fewer). spacing: ``'even'`` or ``'dense_start'`` (denser near
    t = 0). which: ``'xt'``, ``'x0'`` or ``'both'``. image: None for the batch grid, ``k`` for
    image ``k`` of the batch. caption: draw the caption under each frame. scale: integer
    nearest-neighbour enlargement. fps / hold_last_s / loop: GIF timing (loop: forever or once).
    width: PNG width of a plot in px (None: as on screen).
    """

    t_range: tuple[int, int] | None = None
    n_frames: int = 60
    spacing: str = "dense_start"
    which: str = "xt"
    image: int | None = None
    caption: bool = True
    scale: int = 1
    fps: float = 12.0
    hold_last_s: float = 1.0
    loop: bool = True
    width: int | None = None


def slug(text: str, default: str = "export") -> str:
    """A file-name stem from a label: ``"Forward: timeline t = 0..T"`` -> ``forward-timeline-t-0-t``."""
    s = text.replace("\u2080", "0").replace("\u2081", "1")
    s = re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()
    return s[:60].strip("-") or default


def _even_indices(n_have: int, n_want: int) -> list[int]:
    if n_want >= n_have:
        return list(range(n_have))
    if n_want <= 1:
        return [0]
    return sorted(set(np.round(np.linspace(0, n_have - 1, n_want)).astype(int).tolist()))


# =============================================================================== sources
class ExportSource:
    """Base class (see the module docstring for the contract). Subclasses implement
    :meth:`count` and :meth:`frame_at`; set ``kind``, ``options``, ``T`` and ``max_frames``."""

    kind: str = "timeline"
    options: frozenset = frozenset()
    #: the largest paper t of the ``t_range`` option (None when the option does not apply)
    T: int | None = None

    def __init__(self, label: str, *, name: str | None = None):
        self.label = str(label)
        self.name = name or slug(self.label)

    # ---- GUI thread
    def prepare(self) -> None:
        """Called in the GUI thread before the other methods. Default: nothing to do."""

    def formats(self) -> tuple[str, ...]:
        return KIND_FORMATS[self.kind]

    def default_options(self) -> ExportOptions:
        return ExportOptions()

    @property
    def max_frames(self) -> int:
        return 1

    @property
    def batch_size(self) -> int:
        """Images in the batch (the ``image`` option offers one of them); 1 without a batch."""
        return 1

    def empty_reason(self) -> str | None:
        """Why there is nothing to export yet (None when there is)."""
        return None

    # ---- any thread
    def count(self, opts: ExportOptions) -> int:
        raise NotImplementedError

    def frame_at(self, opts: ExportOptions, k: int) -> tuple[np.ndarray, str | None]:
        raise NotImplementedError

    def frames(self, opts: ExportOptions, progress=None) -> Iterator[tuple[np.ndarray, str | None]]:
        """``(frame, caption)`` for ``k = 0 .. count - 1``; ``progress(k, n)`` before each one,
        returning ``False`` cancels (:class:`Cancelled`)."""
        n = self.count(opts)
        for k in range(n):
            call_progress(progress, k, n)
            yield self.frame_at(opts, k)

    def preview(self, opts: ExportOptions) -> np.ndarray:
        """The first frame (cheap)."""
        return self.frame_at(opts, 0)[0]

    # ---- the legacy ``(label, fn)`` face
    def _legacy(self):
        self.prepare()
        opts = self.default_options()
        got = list(self.frames(opts))
        frames = [f for f, _ in got]
        caps = [c for _, c in got]
        return (frames, caps) if any(c is not None for c in caps) else frames

    def __iter__(self):
        return iter((self.label, self._legacy))

    def __getitem__(self, i):
        return (self.label, self._legacy)[i]

    def __repr__(self):
        return f"{type(self).__name__}({self.label!r})"


def _pad_to_common_size(frames, value: int = 255) -> list:
    """Frames of different sizes (e.g. an original image and a batch grid) centred on a white
    canvas of the largest height and width, so that they can go into one GIF or filmstrip."""
    arrs = [np.asarray(f) for f in frames]
    arrs = [a[:, :, None] if a.ndim == 2 else a for a in arrs]
    if all(a.ndim == 3 for a in arrs) and len({a.shape[:2] for a in arrs}) > 1:
        H = max(a.shape[0] for a in arrs)
        W = max(a.shape[1] for a in arrs)
        out = []
        for a in arrs:
            c = np.full((H, W, a.shape[2]), value, dtype=a.dtype)
            y, x = (H - a.shape[0]) // 2, (W - a.shape[1]) // 2
            c[y:y + a.shape[0], x:x + a.shape[1]] = a
            out.append(c)
        return out
    return list(frames)


class FramesSource(ExportSource):
    """Ready frames: a list of uint8 arrays (and captions), or ``fn`` returning them (called in
    the GUI thread by :meth:`prepare`, the legacy ``(label, fn)`` contract: a list of frames or
    ``(frames, captions)``; also on first use of ``kind`` / ``options``, which are only known
    then). One frame is a ``'still'``, several a ``'timeline'`` whose ``n_frames`` option picks
    an even subset. The arrays must not be changed afterwards."""

    def __init__(self, label: str, frames: Sequence[np.ndarray] | None = None,
                 captions: Sequence[str | None] | None = None, *, fn: Callable | None = None,
                 kind: str | None = None, name: str | None = None):
        super().__init__(label, name=name)
        if (frames is None) == (fn is None):
            raise ValueError("give frames or fn")
        self._fn = fn
        self._frames: list[np.ndarray] | None = None
        self._captions: list[str | None] | None = None
        self._kind = kind
        self._error: str | None = None
        if frames is not None:
            self._set(frames, captions)

    def _set(self, frames, captions):
        frames = list(frames or [])
        if not frames:
            self._frames, self._captions = [], []
            return
        self._frames = as_frames(_pad_to_common_size(frames))
        if captions is not None:
            captions = list(captions)
            if len(captions) != len(self._frames):
                raise ValueError(f"{len(captions)} captions for {len(self._frames)} frames")
        self._captions = captions

    def prepare(self) -> None:
        if self._frames is not None:
            return
        try:
            got = self._fn()
            if isinstance(got, tuple) and len(got) == 2 and not isinstance(got[0], np.ndarray):
                self._set(*got)
            else:
                self._set(got, None)
        except Exception as e:  # noqa: BLE001 - shown as "nothing to export" with the reason
            self._frames, self._captions = [], []
            self._error = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)

    def _need(self):
        if self._frames is None:       # first use, in the GUI thread (the dialog, a panel test)
            self.prepare()
        return self._frames

    @property
    def kind(self) -> str:  # type: ignore[override]
        if self._kind:
            return self._kind
        return "timeline" if len(self._need()) > 1 else "still"

    @property
    def options(self) -> frozenset:  # type: ignore[override]
        opts = {"size"}
        if self._captions is not None and any(self._captions):
            opts.add("caption")
        if len(self._need()) > 1:
            opts.add("n_frames")
        return frozenset(opts)

    @property
    def max_frames(self) -> int:
        return max(1, len(self._need()))

    def empty_reason(self):
        if self._need():
            return None
        return self._error or "nothing to export here yet"

    def default_options(self) -> ExportOptions:
        return ExportOptions(n_frames=len(self._need()))

    def _indices(self, opts):
        n = len(self._need())
        return _even_indices(n, opts.n_frames) if "n_frames" in self.options else list(range(n))

    def count(self, opts):
        return len(self._indices(opts))

    def frame_at(self, opts, k):
        i = self._indices(opts)[k]
        cap = self._captions[i] if (self._captions is not None and opts.caption) else None
        return self._frames[i], cap


class TimelineSource(ExportSource):
    """A frame for any paper step ``t`` in ``0..T``: ``frame_fn(t) -> uint8 [H, W, C]`` and
    ``caption_fn(t) -> str`` must be thread-safe and use only snapshotted data.
    ``order='forward'`` plays t upwards (x_0 first), ``'reverse'`` downwards (x_T first)."""

    kind = "timeline"
    options = frozenset({"t_range", "n_frames", "spacing", "caption", "size"})

    def __init__(self, label: str, T: int, frame_fn: Callable[[int], np.ndarray],
                 caption_fn: Callable[[int], str] | None = None, *, order: str = "forward",
                 n_frames: int = 60, spacing: str = "dense_start", name: str | None = None):
        super().__init__(label, name=name)
        if order not in ("forward", "reverse"):
            raise ValueError("order must be 'forward' or 'reverse'")
        if spacing not in SPACINGS:
            raise ValueError(f"spacing must be one of {SPACINGS}")
        self.T = int(T)
        self._frame_fn = frame_fn
        self._caption_fn = caption_fn
        if caption_fn is None:
            self.options = self.options - {"caption"}
        self.order = order
        self._defaults = ExportOptions(n_frames=min(int(n_frames), self.T + 1), spacing=spacing)

    @property
    def max_frames(self) -> int:
        return self.T + 1

    def default_options(self):
        return self._defaults

    def steps(self, opts: ExportOptions) -> list[int]:
        """The paper steps shown, in playing order."""
        lo, hi = opts.t_range if opts.t_range is not None else (0, self.T)
        lo, hi = sorted((min(max(int(lo), 0), self.T), min(max(int(hi), 0), self.T)))
        if hi == lo or opts.n_frames <= 1:
            ts = [lo] if hi == lo or opts.n_frames <= 1 else [lo, hi]
        else:
            ts = [lo + s for s in timeline_steps(hi - lo, max(2, opts.n_frames), opts.spacing)]
        return ts[::-1] if self.order == "reverse" else ts

    def count(self, opts):
        return len(self.steps(opts))

    def frame_at(self, opts, k):
        t = self.steps(opts)[k]
        cap = self._caption_fn(t) if (opts.caption and self._caption_fn is not None) else None
        return self._frame_fn(t), cap


class ForwardTimelineSource(TimelineSource):
    """The forward process ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for one noise draw.

    x0, eps: float32 ``[H, W, C]`` in ``[-1, 1]`` (x0) and N(0, 1) (eps), **copied** here.
    alpha_bars: the schedule's float64 ``[T]`` (index ``i = t - 1``). Frames come from
    :func:`~diffusion_gui.export.timeline.forward_xt`, bit-identical to
    ``to_uint8(GaussianDiffusion.q_sample(x0, t - 1, eps))`` (and to the forward panel).
    """

    def __init__(self, label: str, x0: np.ndarray, eps: np.ndarray, alpha_bars, **kw):
        x0 = np.array(x0, dtype=np.float32, copy=True)
        eps = np.array(eps, dtype=np.float32, copy=True)
        if x0.shape != eps.shape or x0.ndim != 3:
            raise ValueError(f"x0 and eps must both be [H, W, C], got {x0.shape} and {eps.shape}")
        ab = np.asarray(alpha_bars, dtype=np.float64).reshape(-1)
        self._abar = np.concatenate([[1.0], ab])                         # index = paper t
        self._a, self._b = forward_coefficients(ab)
        self._x0, self._eps = x0, eps
        super().__init__(label, len(ab), self._frame, self._caption, **kw)

    def _frame(self, t: int) -> np.ndarray:
        t = int(t)
        return forward_xt(self._x0, self._eps, self._a[t], self._b[t])

    def _caption(self, t: int) -> str:
        return forward_caption(int(t), float(self._abar[int(t)]))


def _nearest_distinct(available: np.ndarray, targets: Sequence[int]) -> list[int]:
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


class TrajectorySource(ExportSource):
    """A recorded reverse trajectory: ``steps`` is a sequence of ``(t, x_t, x0_pred)`` in
    playing order (t from T down to 0), ``x_t`` / ``x0_pred`` uint8 ``[B, H, W, C]`` (x0_pred
    may be None). The arrays must not be changed afterwards (the reverse panel never does).

    ``n_frames`` / ``spacing`` / ``t_range`` pick recorded steps nearest to the steps
    :func:`~diffusion_gui.export.timeline.timeline_steps` asks for (distinct ones). ``which``:
    x_t, predicted x_0 or both side by side; ``image``: the batch grid or one image.
    alpha_bars: the schedule's ``[T]`` (index ``t - 1``), for ``abar_t`` in the captions.
    """

    kind = "timeline"

    def __init__(self, label: str, steps, *, T: int | None = None, alpha_bars=None,
                 which: str = "xt", n_frames: int = 60, spacing: str = "dense_start",
                 ncols: int | None = None, pad: int = 1, name: str | None = None):
        super().__init__(label, name=name)
        steps = [(int(t), xt, x0) for t, xt, x0 in steps]
        if not steps:
            raise ValueError("a trajectory needs at least one step")
        for t, xt, x0 in steps:
            for a in (xt, x0):
                if a is not None and (a.dtype != np.uint8 or a.ndim != 4):
                    raise ValueError(f"step t = {t}: expected uint8 [B, H, W, C], got "
                                     f"{a.dtype} {a.shape}")
        self._steps = steps
        self._ts = np.array([t for t, _, _ in steps])
        self._asc = np.argsort(self._ts, kind="stable")                   # indices by t upwards
        self.T = int(T if T is not None else self._ts.max())
        self._abar = None if alpha_bars is None else np.concatenate(
            [[1.0], np.asarray(alpha_bars, dtype=np.float64).reshape(-1)])
        self._has_x0 = all(x0 is not None for _, _, x0 in steps)
        self._B = int(steps[0][1].shape[0])
        self.ncols, self.pad = ncols, int(pad)
        opts = {"t_range", "n_frames", "spacing", "caption", "size"}
        if self._has_x0:
            opts.add("which")
        if self._B > 1:
            opts.add("image")
        self.options = frozenset(opts)
        if which not in WHICH or (which != "xt" and not self._has_x0):
            raise ValueError(f"which must be one of {WHICH} (x0 only with x0_pred recorded)")
        self._defaults = ExportOptions(n_frames=min(int(n_frames), len(steps)), spacing=spacing,
                                       which=which)

    @property
    def max_frames(self) -> int:
        return len(self._steps)

    @property
    def batch_size(self) -> int:
        return self._B

    def default_options(self):
        return self._defaults

    def selection(self, opts: ExportOptions) -> list[int]:
        """Indices into ``steps`` of the frames shown, in playing order."""
        lo, hi = opts.t_range if opts.t_range is not None else (0, self.T)
        lo, hi = sorted((int(lo), int(hi)))
        asc = [i for i in self._asc if lo <= self._ts[i] <= hi]
        if not asc:                       # nothing recorded in the range: the nearest step
            asc = [int(self._asc[np.argmin(np.abs(self._ts[self._asc] - (lo + hi) / 2))])]
        n = max(1, int(opts.n_frames))
        if n >= len(asc):
            chosen = asc
        elif n == 1:
            chosen = [asc[0]]
        else:
            span = max(1, hi - lo)
            targets = [lo + s for s in timeline_steps(span, n, opts.spacing)] if n <= span + 1 \
                else list(range(lo, hi + 1))
            avail = self._ts[asc]
            chosen = [asc[j] for j in _nearest_distinct(avail, targets)]
        return sorted(set(chosen))        # playing order = recorded order

    def count(self, opts):
        return len(self.selection(opts))

    def _grid(self, x, opts):
        from ..core.images import tile
        if opts.image is not None:
            k = min(max(int(opts.image), 0), self._B - 1)
            x = x[k:k + 1]
        return tile(x, ncols=self.ncols if opts.image is None else 1, pad=self.pad)

    def frame_at(self, opts, k):
        i = self.selection(opts)[k]
        t, xt, x0 = self._steps[i]
        which = opts.which if self._has_x0 else "xt"
        if which == "xt":
            frame = self._grid(xt, opts)
        elif which == "x0":
            frame = self._grid(x0, opts)
        else:
            a, b = self._grid(xt, opts), self._grid(x0, opts)
            gap = np.full((a.shape[0], max(4, 4 * self.pad), a.shape[2]), 255, np.uint8)
            frame = np.concatenate([a, gap, b], axis=1)
        cap = None
        if opts.caption:
            cap = f"t = {t}"
            if self._abar is not None and 0 <= t < len(self._abar):
                cap += f"   abar_t = {self._abar[t]:.4f}"
            if which == "both":
                cap += "   x_t | x0_pred"
            elif which == "x0":
                cap += "   x0_pred"
        return frame, cap


def as_source(obj) -> ExportSource:
    """An :class:`ExportSource` as is; a legacy ``(label, fn)`` tuple as a :class:`FramesSource`."""
    if isinstance(obj, ExportSource):
        return obj
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and callable(obj[1]):
        return FramesSource(str(obj[0]), fn=obj[1])
    raise TypeError(f"not an export source: {obj!r}")


# =============================================================================== export
def validate_target(fmt: str, path) -> Path:
    """Check ``path`` for format ``fmt`` before any work: the extension, the folder (exists,
    writable). Raises :class:`ExportError` with a one-line message; returns ``Path(path)``."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}")
    s = os.fspath(path).strip() if path is not None else ""
    if not s:
        raise ExportError("choose where to write the export")
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


def _sample_indices(n: int, k: int) -> list[int]:
    return sorted(set(np.round(np.linspace(0, n - 1, min(k, n))).astype(int).tolist()))


def estimate_bytes(source: ExportSource, opts: ExportOptions, fmt: str, samples: int = 3,
                   should_stop: Callable[[], bool] | None = None) -> int | None:
    """A guess of the size of the export in bytes: ``samples`` frames (first, middle, last)
    encoded the way the writer will encode them, extrapolated to all frames. None for plots
    (and when ``should_stop()`` turns true: a newer estimate is wanted)."""
    if source.kind == "plot" or fmt not in ("gif", "png_sequence", "filmstrip", "png"):
        return None
    from PIL import Image
    n = source.count(opts)
    if n < 1:
        return 0
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
        else:
            im = Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")
            im.save(buf, format="PNG")
        sizes.append(buf.tell())
    mean = float(np.mean(sizes))
    if fmt == "gif":
        return int(800 + n * max(mean - 800 + 30, 60))   # one header, a frame block per frame
    if fmt == "png_sequence":
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
