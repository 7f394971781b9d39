"""Draw a session :class:`~diffusion_gui.sessions.derivation.PlotData` on a styled pyqtgraph plot.

Log axes are done here (log10 of the data, tick labels at the powers of ten or at the data's own
x values), so that error bars, bands and bars stay right in log space."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from ...plots import COLORS, add_legend, make_plot, pen

_SUPER = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


_LEGEND = {"top-right": (-8, 8), "top-left": (8, 8), "bottom-right": (-8, -8), "bottom-left": (8, -8)}


def new_plot() -> pg.PlotWidget:
    w = make_plot("", "", "", min_height=300)
    return w


def _color(name: str, alpha: int = 255):
    c = pg.mkColor(COLORS.get(name, name))
    c.setAlpha(alpha)
    return c


def _pow_ticks(lo: float, hi: float):
    a, b = math.floor(lo), math.ceil(hi)
    step = max(1, (b - a) // 6)
    return [(float(k), "1" if k == 0 else ("10" if k == 1 else f"10{str(k).translate(_SUPER)}"))
            for k in range(a, b + 1, step)]


def draw(widget: pg.PlotWidget, data) -> None:
    """Replace what ``widget`` shows by ``data`` (a PlotData)."""
    item = widget.getPlotItem()
    item.clear()
    if item.legend is not None:
        item.legend.scene().removeItem(item.legend) if item.legend.scene() else None
        item.legend = None
    title = data.title if not data.note else (
        f'{data.title}<br><span style="color:#0b4f7a; font-size:11pt;">{data.note}</span>')
    item.setTitle(title, color="#222222", size="12pt")
    item.setLabel("bottom", data.x_label, color="#222222", **{"font-size": "12pt"})
    item.setLabel("left", data.y_label, color="#222222", **{"font-size": "12pt"})
    add_legend(widget, offset=_LEGEND.get(data.legend) or (-8, int(0.3 * max(widget.height(), 300))))
    lx, ly = data.log_x, data.log_y

    def tx(x):
        return np.log10(np.asarray(x, float)) if lx else np.asarray(x, float)

    def ty(y):
        return np.log10(np.maximum(np.asarray(y, float), 1e-300)) if ly else np.asarray(y, float)

    ys = []
    for s in data.series:
        x, y = tx(s.x), ty(s.y)
        ys.append(y)
        name = s.name or None
        if s.style in ("line", "dashed"):
            item.addItem(pg.PlotDataItem(x, y, pen=pen(s.color, 2.5, dashed=s.style == "dashed"), name=name))
        elif s.style == "points":
            if s.err is not None:
                err = np.nan_to_num(np.asarray(s.err, float))
                low = np.asarray(s.y) - err
                top, bot = ty(np.asarray(s.y) + err), ty(np.maximum(low, 1e-300) if ly else low)
                item.addItem(pg.ErrorBarItem(x=x, y=y, top=top - y, bottom=y - bot, beam=0.04 if lx else 0.3,
                                             pen=pen(s.color, 1.8)))
            item.addItem(pg.ScatterPlotItem(x, y, size=10, brush=pg.mkBrush(_color(s.color)),
                                            pen=pg.mkPen("#ffffff", width=1), name=name))
        elif s.style == "band":
            err = np.nan_to_num(np.asarray(s.err, float)) if s.err is not None else np.zeros_like(y)
            up = pg.PlotDataItem(x, ty(np.asarray(s.y) + err), pen=pg.mkPen(None))
            lo = pg.PlotDataItem(x, ty(np.asarray(s.y) - err), pen=pg.mkPen(None))
            item.addItem(up)
            item.addItem(lo)
            item.addItem(pg.FillBetweenItem(up, lo, brush=pg.mkBrush(_color(s.color, 60))))
            item.addItem(pg.PlotDataItem(x, y, pen=pen(s.color, 2.5), name=name))
        elif s.style == "bars":
            item.addItem(pg.BarGraphItem(x=x, height=y, width=s.width, brush=pg.mkBrush(_color(s.color, 220)),
                                         pen=pg.mkPen("#333333"), name=name))
    bottom, left = item.getAxis("bottom"), item.getAxis("left")
    if data.x_ticks:
        bottom.setTicks([[(float(tx([v])[0]) if lx else float(v), lab) for v, lab in data.x_ticks]])
    elif lx:
        xs = np.unique(np.concatenate([tx(s.x) for s in data.series]))
        if len(xs) <= 8:
            bottom.setTicks([[(float(v), f"{10 ** v:.0f}") for v in xs]])
        else:
            bottom.setTicks([_pow_ticks(xs.min(), xs.max())])
    else:
        bottom.setTicks(None)
    finite = np.concatenate([v[np.isfinite(v)] for v in ys]) if ys else np.zeros(1)
    left.setTicks([_pow_ticks(finite.min(), finite.max())] if ly and finite.size else None)
    item.enableAutoRange()
    item.autoRange()
