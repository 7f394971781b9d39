"""The export sources as the panels see them: the Qt-free sources
(:mod:`diffusion_gui.sessions.export_sources`), the export itself
(:mod:`diffusion_gui.sessions.export_run`) and :class:`PlotSource`, the one Qt-bound source
(:mod:`diffusion_gui.gui.plot_source`). Panels import their sources from here."""
from __future__ import annotations

from ..sessions.export_run import (
    describe_bytes,
    estimate_bytes,
    filmstrip_columns,
    run_export,
    validate_target,
)
from ..sessions.export_sources import (
    FILMSTRIP_COLUMNS,
    FORMATS,
    KIND_FORMATS,
    OPTION_NAMES,
    WHICH,
    Cancelled,
    ExportError,
    ExportOptions,
    ExportSource,
    ForwardTimelineSource,
    FramesSource,
    TimelineSource,
    TrajectorySource,
    as_source,
    as_sources,
    slug,
)
from .plot_source import PlotSource

__all__ = ["OPTION_NAMES", "FORMATS", "KIND_FORMATS", "WHICH", "FILMSTRIP_COLUMNS",
           "ExportOptions", "ExportSource", "FramesSource", "TimelineSource",
           "ForwardTimelineSource", "TrajectorySource", "PlotSource", "as_source", "as_sources",
           "validate_target", "run_export", "estimate_bytes", "describe_bytes",
           "filmstrip_columns", "slug", "ExportError", "Cancelled"]
