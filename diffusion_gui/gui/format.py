"""Numbers and symbols for the screen, written once for every panel (plain Python; no widgets)."""
from __future__ import annotations

import math

from ..sessions.symbols import ABAR, EPS  # noqa: F401 - the panels take them from here

__all__ = ["ABAR", "EPS", "FORMULA_CSS", "fmt", "num_html", "duration", "rate"]

FORMULA_CSS = "font-size: 13pt;"


def fmt(v: float | None, digits: int = 4) -> str:
    """A number for the screen: fixed point in a readable range, else scientific."""
    if v is None or not math.isfinite(v):
        return "∞" if v == math.inf else "–"
    if v == 0 or 1e-3 <= abs(v) < 1e5:
        return f"{v:.{digits}f}"
    return f"{v:.{max(1, digits - 2)}e}"


def num_html(v: float, digits: int = 4) -> str:
    """A number as rich text: ``1.23&middot;10<sup>-5</sup>`` for very small or large ones."""
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return "&infin;" if v > 0 else "&minus;&infin;"
    if abs(v) < 10 ** -(digits - 1) or abs(v) >= 1e5:
        m, e = f"{v:.2e}".split("e")
        return f"{m}&middot;10<sup>{int(e)}</sup>"
    return f"{v:.{digits}f}".replace("-", "&minus;")


def duration(s: float | None, decimals: int = 0) -> str:
    """Seconds for people: ``'12 s'`` (``decimals`` under a minute), ``'3 min 05 s'``,
    ``'2 h 05 min'``; ``'–'`` when unknown."""
    if s is None or not math.isfinite(s):
        return "–"
    if s < 60:
        return f"{s:.{decimals}f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def rate(s_per_step: float) -> str:
    """``'85 ms/step'`` or ``'1.25 s/step'``."""
    return f"{s_per_step * 1000:.0f} ms/step" if s_per_step < 1 else f"{s_per_step:.2f} s/step"
