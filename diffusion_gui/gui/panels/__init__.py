"""The explorer's panels, one a module or package. This docstring is the contract the main window
relies on. A panel is a *view*: what it does lives in a Qt-free session (``diffusion_gui.sessions``),
its background work runs through a ``gui.workers.JobSlot``, its settings are a dataclass of the
session loaded and saved with ``gui.settings_io`` (docs/architecture.md).

A **panel** is a ``QWidget`` subclass with:

``title`` (class attribute, str)
    The tab label, e.g. ``"Forward"``.

``__init__(self, ctx: AppContext, parent=None)``
    Build the widgets; do no slow work here (no model inference, no big import on the GUI
    thread). Talk to the rest of the app only through ``ctx`` (its attributes and signals:
    ``image_changed``, ``model_changed``, ``forward_t_changed``, ``error``, ``status``...).
    Report failures with ``ctx.error.emit(title, one_line_message)``: the main window shows them
    without blocking (never call ``QMessageBox.exec()`` from a panel).

``shutdown(self)``
    Stop and join every thread / timer the panel started (``Job.stop()``). Called once when the
    window closes, before ``ctx.shutdown()``. Must be idempotent and must not raise.

``save_settings(self, settings: QSettings)`` / ``restore_settings(self, settings: QSettings)``
    Persist the panel's own choices. The main window has already called
    ``settings.beginGroup(<key>)`` with the panel's key from :data:`PANELS` (``"forward"``,
    ``"reverse"``, ...), so use plain keys (``settings_io.load(settings, MySettings)``) and do not open
    or close the group yourself. ``restore_settings`` runs once after construction and must
    tolerate missing or malformed values (fall back to defaults).

``actions(self) -> list[QAction]`` (optional)
    Actions listed in the View menu under the panel's title (e.g. "Play / Pause").

``export_sources(self) -> list[ExportSource | tuple[str, Callable]]`` (optional)
    What the Export dialog (``export_dialog.ExportDialog(ctx, sources, parent)``, File > Export,
    Ctrl+E) can write; the current panel's sources are listed first. Called in the GUI thread
    each time the dialog opens, so it must be cheap. See :mod:`diffusion_gui.gui.export_sources`:

    - :class:`~diffusion_gui.gui.export_sources.ExportSource` objects say their ``kind``
      (``'timeline'`` -> GIF / PNG sequence / filmstrip PNG, ``'still'`` -> PNG, ``'plot'`` ->
      PNG / SVG / CSV through pyqtgraph's exporters) and which options apply (``t_range``,
      ``n_frames``, ``spacing``, ``which``, ``image``, ``caption``, ``size``), and render
      ``frame_at(opts, k) -> (uint8 [H, W, C], caption)`` **in the export worker thread**: take a
      snapshot of what they need when you create them (copy numpy arrays; never read a widget
      later). Ready-made: ``FramesSource`` (frames you have), ``TimelineSource`` (a frame for
      any t), ``ForwardTimelineSource``, ``TrajectorySource`` (a recorded reverse trajectory:
      ``(t, x_t, x0_pred)`` uint8 ``[B, H, W, C]`` per step) and ``PlotSource`` (a pyqtgraph plot;
      exported in the GUI thread through :func:`diffusion_gui.gui.plots.export_plot_widget`).
    - The legacy form ``(label, fn)`` still works: ``fn()`` runs in the GUI thread when the
      source is chosen and returns the frames as a list of uint8 arrays ``[H, W, C]`` (C = 1 or 3;
      one frame for a still image) or a tuple ``(frames, captions)`` with one caption string (or
      None) per frame. An ``ExportSource`` also unpacks as ``(label, fn)``.

The main window imports the panels listed in :data:`PANELS` by module path; a module that is not
there yet (``ImportError``) is skipped with a note in the status bar.
"""
from __future__ import annotations

#: (settings key, module under ``diffusion_gui.gui.panels``, class name), in tab order.
PANELS: list[tuple[str, str, str]] = [
    ("forward", "forward", "ForwardPanel"),
    ("reverse", "reverse", "ReversePanel"),
    ("compare", "compare", "ComparePanel"),
    ("losses", "losses", "LossPanel"),
    ("kl", "kl", "KLPanel"),
    ("lab2d", "lab2d", "Lab2DPanel"),
    ("derivation", "derivation", "DerivationPanel"),
    ("train", "train", "TrainPanel"),
]

__all__ = ["PANELS"]
