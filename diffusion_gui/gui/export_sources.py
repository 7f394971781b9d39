"""The export sources for the GUI: the Qt-free ones and the export itself from
:mod:`diffusion_gui.sessions.export_sources`, plus :class:`PlotSource` (a pyqtgraph plot,
:mod:`diffusion_gui.gui.plot_source`). Panels import their sources from here."""
from __future__ import annotations

from ..sessions.export_sources import (  # noqa: F401 - re-exported
    FILMSTRIP_COLUMNS, FORMATS, KIND_FORMATS, OPTION_NAMES, WHICH, Cancelled, ExportError,
    ExportOptions, ExportSource, ForwardTimelineSource, FramesSource, TimelineSource,
    TrajectorySource, as_source, describe_bytes, estimate_bytes, filmstrip_columns, run_export,
    slug, validate_target,
)
from .plot_source import PlotSource

__all__ = ["OPTION_NAMES", "FORMATS", "KIND_FORMATS", "ExportOptions", "ExportSource",
           "FramesSource", "TimelineSource", "ForwardTimelineSource", "TrajectorySource",
           "PlotSource", "as_source", "validate_target", "run_export", "estimate_bytes",
           "filmstrip_columns", "slug", "describe_bytes", "ExportError", "Cancelled"]
