"""What the Export dialog remembers between sessions (QSettings group ``export``), Qt-free.

Stored through :func:`diffusion_gui.gui.settings_io.load` / ``save``; the keys are the field
names (``export/fps``, ``export/format_timeline``, ...), as they always were.
"""
from __future__ import annotations

from dataclasses import dataclass

from .export_sources import KIND_FORMATS
from .settings import setting

__all__ = ["ExportSettings", "GROUP"]

#: the QSettings group
GROUP = "export"


@dataclass(frozen=True)
class ExportSettings:
    """Animation timing (frames a second, seconds the first and the last frame are held, loop
    forever or play once), whether captions (t and abar_t) are drawn, the last folder written to, and the format
    last chosen for each kind of source."""

    fps: float = setting(12.0, lo=1.0, hi=50.0)
    hold_last_s: float = setting(1.0, lo=0.0, hi=10.0)
    hold_first_s: float = setting(0.0, lo=0.0, hi=10.0)
    loop: bool = setting(True)
    caption: bool = setting(True)
    folder: str | None = setting(None)
    format_timeline: str = setting(KIND_FORMATS["timeline"][0], choices=KIND_FORMATS["timeline"])
    format_still: str = setting(KIND_FORMATS["still"][0], choices=KIND_FORMATS["still"])
    format_plot: str = setting(KIND_FORMATS["plot"][0], choices=KIND_FORMATS["plot"])

    def format_for(self, kind: str) -> str | None:
        """The format last chosen for sources of ``kind`` (``'timeline'``, ``'still'``,
        ``'plot'``)."""
        return getattr(self, f"format_{kind}", None)
