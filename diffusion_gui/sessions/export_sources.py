"""What the Export dialog can write: export *sources*, and the export itself. Qt-free.

A panel's ``export_sources()`` returns a list of :class:`ExportSource` objects (or, as before,
``(label, fn)`` tuples, which the dialog wraps in a :class:`FramesSource`). A source says what it
is and which options apply to it, and renders its frames on demand:

``label`` (str)
    Shown in the dialog's list, e.g. ``"Forward: timeline t = 0..T"``.
``kind``
    ``'timeline'`` (several frames: GIF, MP4, WebM, animated WebP, APNG, PNG sequence or
    filmstrip PNG; an APNG is written to ``.apng``, a ``.png`` is a still), ``'still'`` (one image:
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

Writing a source to a file (``run_export``, ``estimate_bytes``, ``validate_target``) is
:mod:`diffusion_gui.sessions.export_run`; a plot source (``diffusion_gui.gui.plot_source``)
exports itself in the GUI thread.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from ..export import Cancelled, ExportError
from ..export.atomic import call_progress
from ..export.frames import as_frames
from ..export.timeline import SPACINGS, forward_caption, forward_coefficients, forward_xt, timeline_steps

__all__ = ["OPTION_NAMES", "FORMATS", "KIND_FORMATS", "ANIMATED", "ExportOptions", "ExportSource",
           "FramesSource", "TimelineSource", "ForwardTimelineSource", "TrajectorySource",
           "as_source", "as_sources", "slug", "WHICH", "FILMSTRIP_COLUMNS", "ExportError", "Cancelled"]

OPTION_NAMES = ("t_range", "n_frames", "spacing", "which", "image", "caption", "size")

#: format key -> (label, extension); '' = a folder.
FORMATS = {
    "gif": ("Animated GIF", ".gif"),
    "mp4": ("MP4 video (H.264)", ".mp4"),
    "webm": ("WebM video (VP9)", ".webm"),
    "webp": ("Animated WebP (lossless)", ".webp"),
    "apng": ("Animated PNG (lossless)", ".apng"),
    "png_sequence": ("PNG sequence (one file a frame, in a folder)", ""),
    "filmstrip": ("Filmstrip (one PNG)", ".png"),
    "png": ("PNG image", ".png"),
    "svg": ("SVG (vector)", ".svg"),
    "csv": ("CSV (the data)", ".csv"),
}
#: the formats that play (written by :func:`diffusion_gui.export.write_animation`)
ANIMATED = ("gif", "mp4", "webm", "webp", "apng")
KIND_FORMATS = {"timeline": (*ANIMATED, "png_sequence", "filmstrip"), "still": ("png",),
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
    nearest-neighbour enlargement. fps / hold_first_s / hold_last_s / loop: animation timing
    (seconds the first / last frame stays longer; loop: forever or once, not for videos).
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
    hold_first_s: float = 0.0


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
        """Indices into ``steps`` of the frames shown, in playing order: the one rule of
        ``sample --gif`` too (:func:`~diffusion_gui.export.timeline.pick_frames`)."""
        from ..export.timeline import pick_frames
        return pick_frames(self._ts, opts.n_frames, opts.spacing, opts.t_range, T=self.T)

    def count(self, opts):
        return len(self.selection(opts))

    def frame_at(self, opts, k):
        """Frame ``k``: :func:`~diffusion_gui.export.frames.trajectory_frame` (the composer of
        ``sample --gif`` and the live view), captioned by
        :func:`~diffusion_gui.export.timeline.trajectory_caption`."""
        from ..export.frames import trajectory_frame
        from ..export.timeline import trajectory_caption
        i = self.selection(opts)[k]
        t, xt, x0 = self._steps[i]
        which = opts.which if self._has_x0 else "xt"
        frame = trajectory_frame(xt, x0, which, ncols=self.ncols, pad=self.pad, image=opts.image)
        cap = None
        if opts.caption:
            ab = self._abar[t] if self._abar is not None and 0 <= t < len(self._abar) else None
            cap = trajectory_caption(t, which, ab)
        return frame, cap


def as_source(obj) -> ExportSource:
    """An :class:`ExportSource` as is; a legacy ``(label, fn)`` tuple as a :class:`FramesSource`."""
    if isinstance(obj, ExportSource):
        return obj
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and callable(obj[1]):
        return FramesSource(str(obj[0]), fn=obj[1])
    raise TypeError(f"not an export source: {obj!r}")


def as_sources(objs) -> list[ExportSource]:
    """:func:`as_source` of each of ``objs`` (None: none), leaving out what is not a source."""
    out = []
    for obj in objs or []:
        try:
            out.append(as_source(obj))
        except TypeError:
            continue
    return out
