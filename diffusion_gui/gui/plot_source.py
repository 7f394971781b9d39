"""A pyqtgraph plot as an export source (the one Qt-bound source; the others, and the export
itself, live in :mod:`diffusion_gui.sessions.export_sources`)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ..sessions.export_run import validate_target
from ..sessions.export_sources import ExportError, ExportOptions, ExportSource

__all__ = ["PlotSource"]


class PlotSource(ExportSource):
    """A pyqtgraph plot: PNG / SVG / CSV through pyqtgraph's exporters
    (:func:`diffusion_gui.gui.plots.export_plot_widget`), in the **GUI thread**.

    ``csv``: an optional ``csv(path) -> Path`` that writes a better table than pyqtgraph's CSV
    exporter can (e.g. bars, or all the columns of a result); it must write atomically.
    ``formats``: the subset of ``('png', 'svg', 'csv')`` offered."""

    kind = "plot"
    options = frozenset()

    def __init__(self, label: str, widget, *, csv: Callable | None = None,
                 formats: Sequence[str] = ("png", "svg", "csv"), name: str | None = None):
        super().__init__(label, name=name)
        self.widget = widget
        self._csv = csv
        self._formats = tuple(formats)

    def formats(self):
        return self._formats

    def count(self, opts):
        return 1

    def frame_at(self, opts, k):
        """The plot as it will be written to PNG (GUI thread only)."""
        from .plots import render_plot
        return render_plot(self.widget, opts.width), None

    def preview(self, opts):
        return self.frame_at(opts, 0)[0]

    def _legacy(self):
        from .plots import grab_rgb
        return [grab_rgb(self.widget)]

    def export(self, fmt: str, path, opts: ExportOptions | None = None) -> Path:
        """Write the plot (GUI thread). Raises :class:`ExportError` with a one-line message."""
        from .plots import export_plot_widget
        fmt = fmt.lower().lstrip(".")
        if fmt not in self._formats:
            raise ExportError(f"{self.label} cannot be exported as {fmt.upper()}")
        target = validate_target(fmt, path)
        if fmt == "csv" and self._csv is not None:
            try:
                return Path(self._csv(target))
            except OSError as e:
                from ..export.atomic import export_oserror
                raise export_oserror(e, target) from None
        return export_plot_widget(self.widget, fmt, target, width=(opts.width if opts else None))
