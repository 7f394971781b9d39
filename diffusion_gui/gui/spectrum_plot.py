"""The radially averaged power spectrum on log-log axes (the Forward and Reverse panels).

A view only: the numbers come from :mod:`diffusion_gui.core.spectrum` (frequencies in cycles per
pixel, power ``|FFT|^2 / (H W)``). Curves are declared once (``name, label, colour, dashed``) and
updated with :meth:`SpectrumPlot.set_curves`; the y range only grows during one subject
(an image, a run) so that a moving slider does not make the axes jump, and
:meth:`SpectrumPlot.reset_range` starts it afresh.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from . import plots

__all__ = ["SpectrumPlot"]

_FLOOR = 1e-8


class SpectrumPlot(QWidget):
    """``curves``: ``[(name, html_label, colour, dashed)]``. ``plot`` is the pyqtgraph widget,
    ``items[name]`` its curve, ``legend`` the rich-text line under the heading, ``marker`` a
    dashed vertical line (:meth:`set_marker`)."""

    def __init__(self, title: str, curves, note: str = "", parent=None, min_height: int = 160):
        super().__init__(parent)
        import pyqtgraph as pg
        self.plot = p = plots.make_plot("", "spatial frequency (cycles / pixel)", "power",
                                        min_height=min_height, log_axis=True)
        pi = p.getPlotItem()
        pi.setAxisItems({"bottom": plots.LogAxis("bottom")})
        plots.style_plot(pi, "", "spatial frequency (cycles / pixel)", "power")
        pi.setLogMode(x=True, y=True)
        self.items = {}
        parts = []
        for name, label, color, dashed in curves:
            self.items[name] = p.plot([], [], pen=plots.pen(color, 2.5, dashed=dashed))
            dash = "- -" if dashed else "&mdash;"
            parts.append(f"<span style='color:{plots.COLORS.get(color, color)}'><b>{dash}</b> {label}</span>")
        self.marker = pg.InfiniteLine(angle=90, movable=False,
                                      pen=plots.pen("grey", 1.5, dashed=True))
        self.marker.setVisible(False)
        p.addItem(self.marker)
        from PySide6.QtWidgets import QGraphicsItem
        for side in ("left", "bottom"):      # the axes are a blit while the curves change
            pi.getAxis(side).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        head = QLabel(f"<b>{title}</b>" + (f" &nbsp;<span style='color:#555'>{note}</span>" if note else ""))
        head.setTextFormat(Qt.RichText)
        head.setWordWrap(True)
        self.legend = QLabel(" &nbsp; ".join(parts))
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setWordWrap(True)
        self.readout = QLabel("")
        self.readout.setTextFormat(Qt.RichText)
        self.readout.setStyleSheet("color: #444;")
        self.readout.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.readout.setFixedHeight(self.readout.fontMetrics().height() + 4)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(head)
        lay.addWidget(self.legend)
        lay.addWidget(p, 1)
        lay.addWidget(self.readout)
        self._y = None
        self._x = None
        self._fixed = False

    def reset_range(self):
        """A new subject: the y range is fitted afresh at the next :meth:`set_curves`."""
        self._y = None
        self._x = None
        self._fixed = False

    def fix_y_range(self, lo: float, hi: float):
        """Hold the y axis at ``[lo, hi]`` (powers) until :meth:`reset_range`."""
        self._fixed = True
        self._y = (float(np.log10(max(lo, _FLOOR))), float(np.log10(max(hi, lo * 10, _FLOOR))))
        self.plot.setYRange(*self._y, padding=0)

    def set_curves(self, freqs, curves: dict, readout: str | None = None):
        """``freqs [K]`` (cycles/px) and ``{name: power [K]}``; names not given keep their data."""
        f = np.asarray(freqs, dtype=np.float64)
        lo, hi = np.inf, -np.inf
        for name, power in curves.items():
            p = np.maximum(np.asarray(power, dtype=np.float64), _FLOOR)
            self.items[name].setData(f, p)
            lo, hi = min(lo, float(p.min())), max(hi, float(p.max()))
        if np.isfinite(lo) and not self._fixed:
            lo, hi = np.log10(lo) - 0.15, np.log10(hi) + 0.15
            y = (lo, hi) if self._y is None else (min(lo, self._y[0]), max(hi, self._y[1]))
            if y != self._y:
                self._y = y
                self.plot.setYRange(*y, padding=0)
        x = (np.log10(f[0]), np.log10(f[-1])) if len(f) > 1 else None
        if x is not None and x != self._x:
            self._x = x
            self.plot.setXRange(*x, padding=0.02)
        if readout is not None:
            self.readout.setText(readout)

    def set_marker(self, freq: float | None):
        """A dashed vertical line at ``freq`` cycles/px (None hides it)."""
        if freq is None:
            self.marker.setVisible(False)
        else:
            self.marker.setValue(np.log10(freq))
            self.marker.setVisible(True)
