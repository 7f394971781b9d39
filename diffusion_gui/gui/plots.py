"""Shared pyqtgraph styling: plots that read well on a projector, and a t-cursor.

``make_plot(...)`` returns a :class:`pyqtgraph.PlotWidget` with a white background, dark axes,
large tick labels and a light grid. ``TCursor`` adds a draggable vertical line to such a plot;
dragging it or clicking anywhere in the plot emits ``t_picked(int)`` (the paper's ``t``).
``pen(...)`` and :data:`COLORS` keep the colours consistent across panels (Okabe-Ito, readable by
colour-blind viewers).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QGraphicsItem

#: Okabe-Ito palette (colour-blind safe), by role.
COLORS = {
    "blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "red": "#D55E00",
    "purple": "#CC79A7", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#222222",
    "grey": "#888888",
}
CURSOR_COLOR = "#D55E00"
AXIS_COLOR = "#222222"
GRID_ALPHA = 0.18
TICK_PT = 11
LABEL_PT = 12
TITLE_PT = 12
LEFT_AXIS_WIDTH = 74

_configured = False


def configure() -> None:
    """Global pyqtgraph options (white background, antialiasing). Idempotent."""
    global _configured
    if not _configured:
        pg.setConfigOptions(background="w", foreground=AXIS_COLOR, antialias=True)
        _configured = True


def pen(color: str = "blue", width: float = 2.5, *, dashed: bool = False, alpha: int = 255):
    """A cosmetic pen; ``color`` is a :data:`COLORS` key or any Qt colour string."""
    c = QColor(COLORS.get(color, color))
    c.setAlpha(alpha)
    p = pg.mkPen(c, width=width)
    if dashed:
        p.setStyle(Qt.DashLine)
    p.setCosmetic(True)
    return p


def style_plot(plot: pg.PlotItem | pg.PlotWidget, title: str = "", x_label: str = "",
               y_label: str = "", *, log_y: bool = False, x_units: str | None = None,
               y_units: str | None = None) -> pg.PlotItem:
    """Apply the house style to an existing plot (PlotWidget or PlotItem)."""
    configure()
    item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
    tick_font = QFont()
    tick_font.setPointSize(TICK_PT)
    label_style = {"color": AXIS_COLOR, "font-size": f"{LABEL_PT}pt"}
    for name in ("left", "bottom"):
        ax = item.getAxis(name)
        ax.setPen(pg.mkPen(AXIS_COLOR, width=1))
        ax.setTextPen(pg.mkPen(AXIS_COLOR))
        ax.setTickFont(tick_font)
        ax.setStyle(tickTextOffset=4)
        ax.enableAutoSIPrefix(False)
    item.getAxis("left").setWidth(LEFT_AXIS_WIDTH)  # one width: stacked plots line up in x
    if x_label:
        item.setLabel("bottom", x_label, units=x_units, **label_style)
    if y_label:
        item.setLabel("left", y_label, units=y_units, **label_style)
    if title:
        item.setTitle(title, color=AXIS_COLOR, size=f"{TITLE_PT}pt")
    item.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    item.setLogMode(x=False, y=log_y)
    item.setMenuEnabled(False)
    item.hideButtons()
    return item


def make_plot(title: str = "", x_label: str = "", y_label: str = "", *, log_y: bool = False,
              parent=None, min_height: int = 140, mouse: bool = False,
              x_units: str | None = None, y_units: str | None = None,
              log_axis: bool = False) -> pg.PlotWidget:
    """A styled :class:`pyqtgraph.PlotWidget`. ``mouse=False`` disables pan/zoom (a click then
    only picks, e.g. a timestep via :class:`TCursor`); the context menu is off either way.
    ``log_axis=True``: the left axis is a :class:`LogAxis` (tidy labels once it is in log mode,
    ``log_y=True`` or ``setLogMode``)."""
    configure()
    axes = {"left": LogAxis("left")} if log_axis else None
    w = pg.PlotWidget(parent=parent, background="w", axisItems=axes)
    style_plot(w, title, x_label, y_label, log_y=log_y, x_units=x_units, y_units=y_units)
    w.setMouseEnabled(x=mouse, y=mouse)
    w.setMinimumHeight(min_height)
    w.getPlotItem().layout.setContentsMargins(4, 4, 10, 4)
    return w


#: Alias kept for panels that prefer the longer name.
make_plot_widget = make_plot


def add_legend(plot: pg.PlotWidget, offset=(-8, 8)) -> pg.LegendItem:
    """A legend with a translucent white box and readable text, top-right by default."""
    leg = plot.getPlotItem().addLegend(offset=offset, labelTextSize=f"{TICK_PT}pt",
                                       labelTextColor=AXIS_COLOR,
                                       brush=pg.mkBrush(255, 255, 255, 210),
                                       pen=pg.mkPen("#bbbbbb"))
    return leg


def cache_items(plot: pg.PlotWidget) -> None:
    """Give the axes and the data items of ``plot`` a device-coordinate pixmap cache, so that a
    moving cursor (or one curve changing) only blits the rest instead of re-rendering every
    antialiased curve and tick label: a cursor move drops from ~2.5 ms to ~0.2 ms a plot.
    Call it after adding the data items (items added later are not cached)."""
    pi = plot.getPlotItem()
    for name in ("left", "bottom"):
        pi.getAxis(name).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
    for item in pi.listDataItems():
        item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        for child in item.childItems():
            child.setCacheMode(QGraphicsItem.DeviceCoordinateCache)


class TCursor(QObject):
    """A vertical t-cursor on a plot: drag it, or click in the plot, to pick a timestep.

    ``t_picked(int)`` carries the paper's ``t`` rounded and clamped to ``[t_min, t_max]``;
    :meth:`set_t` moves the line without emitting.
    """

    t_picked = Signal(int)

    def __init__(self, plot: pg.PlotWidget, t_min: int = 0, t_max: int = 1000, color: str = CURSOR_COLOR,
                 parent=None):
        super().__init__(parent or plot)
        self.plot = plot
        self.t_min, self.t_max = int(t_min), int(t_max)
        self._quiet = False
        self.line = pg.InfiniteLine(pos=0, angle=90, movable=True,
                                    pen=pg.mkPen(color, width=2),
                                    hoverPen=pg.mkPen(color, width=4))
        self.line.setZValue(100)
        plot.addItem(self.line, ignoreBounds=True)
        self.line.sigPositionChanged.connect(self._dragged)
        plot.scene().sigMouseClicked.connect(self._clicked)
        plot.setCursor(Qt.CrossCursor)

    def set_range(self, t_min: int, t_max: int):
        self.t_min, self.t_max = int(t_min), int(t_max)

    def set_t(self, t: int):
        self._quiet = True
        try:
            self.line.setValue(float(t))
        finally:
            self._quiet = False

    def _clamp(self, x: float) -> int:
        return int(min(max(round(x), self.t_min), self.t_max))

    def _dragged(self, line):
        if not self._quiet:
            self.t_picked.emit(self._clamp(line.value()))

    def _clicked(self, ev):
        if ev.button() != Qt.LeftButton:
            return
        vb = self.plot.getPlotItem().vb
        pos = ev.scenePos()
        if not vb.sceneBoundingRect().contains(pos):
            return
        self.t_picked.emit(self._clamp(vb.mapSceneToView(pos).x()))
        ev.accept()


def add_t_cursor(plot: pg.PlotWidget, t_max: int = 1000, on_t=None) -> TCursor:
    """Convenience: a :class:`TCursor` on ``plot``; ``on_t(t)`` connected if given."""
    c = TCursor(plot, 0, t_max)
    if on_t is not None:
        c.t_picked.connect(on_t)
    return c


# ----------------------------------------------------------------------------- export
#: What :func:`export_plot_widget` writes.
PLOT_FORMATS = ("png", "svg", "csv")
#: PNG width of a plot that has never been laid out on screen (no size of its own yet).
FALLBACK_WIDTH = 1000


def grab_rgb(widget) -> "np.ndarray":
    """What ``widget`` shows, as uint8 ``[H, W, 3]`` (a screenshot of the widget)."""
    from PySide6.QtGui import QImage
    return qimage_to_rgb(widget.grab().toImage().convertToFormat(QImage.Format_RGB888))


def qimage_to_rgb(img) -> "np.ndarray":
    """A QImage as uint8 ``[H, W, 3]`` (a copy)."""
    import numpy as np
    from PySide6.QtGui import QImage
    if img.format() != QImage.Format_RGB888:
        img = img.convertToFormat(QImage.Format_RGB888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), np.uint8, count=img.bytesPerLine() * h)
    return arr.reshape(h, img.bytesPerLine())[:, :w * 3].reshape(h, w, 3).copy()


def _plot_item(widget):
    return widget.getPlotItem() if hasattr(widget, "getPlotItem") else widget


def _image_exporter(widget, width: int | None):
    from pyqtgraph.exporters import ImageExporter
    item = _plot_item(widget)
    ex = ImageExporter(item)
    if not width and item.sceneBoundingRect().width() < 50:
        width = FALLBACK_WIDTH                 # never shown: pyqtgraph would export 0 x 0 px
    if width:
        ex.parameters()["width"] = int(width)  # the height follows the plot's aspect ratio
    return ex


def render_plot(widget, width: int | None = None) -> "np.ndarray":
    """The PNG that :func:`export_plot_widget` would write, as uint8 ``[H, W, 3]`` (GUI thread)."""
    return qimage_to_rgb(_image_exporter(widget, width).export(toBytes=True))


def export_plot_widget(widget, fmt: str, path, width: int | None = None):
    """Write one pyqtgraph plot (a ``PlotWidget`` or ``PlotItem``) as PNG, SVG or CSV through
    pyqtgraph's exporters, in the GUI thread. Returns the path.

    PNG: ``width`` px wide, default the plot's size on screen (:data:`FALLBACK_WIDTH` for a plot
    never shown). (Larger widths enlarge the axis text and the title but not the legend, markers
    or line widths -- pyqtgraph keeps those in screen pixels -- so for a slide, enlarge the
    window rather than the export.) SVG: with the workaround for pyqtgraph issue #3485 (see
    :func:`_patch_svg_exporter`). CSV: pyqtgraph's, one x/y column pair per curve.

    The file is written under a temporary name in the target folder (same extension, so the
    exporter picks the right format) and renamed onto ``path`` when complete
    (:func:`diffusion_gui.export.atomic_path`): a failure leaves no partial file and an existing
    file untouched. Raises :class:`~diffusion_gui.export.ExportError` (a ValueError) with a
    one-line message for an unknown format or a target that cannot be written.
    """
    from pathlib import Path

    from pyqtgraph.exporters import CSVExporter, SVGExporter

    from ..export import ExportError, atomic_path
    fmt = str(fmt).lower().lstrip(".")
    path = Path(path)
    if fmt == "png":
        ex = _image_exporter(widget, width)
    elif fmt == "svg":
        _patch_svg_exporter()
        ex = SVGExporter(_plot_item(widget))
    elif fmt == "csv":
        ex = CSVExporter(_plot_item(widget))
    else:
        raise ExportError(f"unknown plot format '{fmt}': use png, svg or csv")
    with atomic_path(path) as tmp:
        try:
            ok = ex.export(str(tmp))
        except OSError:
            raise
        except Exception as e:  # noqa: BLE001 - pyqtgraph raises bare Exceptions
            raise ExportError(f"could not export the plot as {fmt.upper()}: {e}") from None
        if ok is False or tmp.stat().st_size == 0:
            raise ExportError(f"could not export the plot as {fmt.upper()} to '{path}'")
    return path


_svg_patched = False


def _patch_svg_exporter():
    """Let pyqtgraph's SVGExporter read the path data Qt >= 6.10 writes.

    Qt now ends closed sub-paths with a separate ``Z`` token, which pyqtgraph 0.14's
    ``correctCoordinates`` cannot split into ``x,y`` (ValueError; pyqtgraph issue #3485). The
    paths it rewrites already return to their start point before ``Z`` and SVG closes fills by
    itself, so the token is dropped before pyqtgraph reads the coordinates. Idempotent.
    """
    global _svg_patched
    if _svg_patched:
        return
    import importlib
    svg_module = importlib.import_module("pyqtgraph.exporters.SVGExporter")
    original = svg_module.correctCoordinates

    def correct(node, defs, item, options):
        for path in node.getElementsByTagName("path"):
            d = path.getAttribute("d")
            if "Z" in d or "z" in d:
                path.setAttribute("d", " ".join(t for t in d.split() if t not in ("Z", "z")))
        return original(node, defs, item, options)

    svg_module.correctCoordinates = correct
    _svg_patched = True


# ------------------------------------------------------------------ log axes
_SUP = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _log_label(v: float) -> str:
    """A tick value for a log axis: plain in [0.1, 1000), else ``m·10ᵉ`` (``5·10⁻³``)."""
    if 0.1 <= v < 1e3:
        return f"{v:g}"
    e = int(math.floor(math.log10(v) + 1e-9))
    m = round(v / 10 ** e)
    return ("" if m == 1 else f"{m}·") + "10" + str(e).translate(_SUP)


def _mantissa(v: float) -> int:
    return int(round(v / 10 ** math.floor(math.log10(v) + 1e-9)))


def plain_axes(plot: pg.PlotWidget):
    """No SI-prefix rescaling ("x0.001") of the tick labels: the numbers are what they are."""
    for side in ("left", "bottom"):
        plot.getPlotItem().getAxis(side).enableAutoSIPrefix(False)
    return plot


class LogAxis(pg.AxisItem):
    """The one log-scale axis of the app: readable tick labels at any range.

    pyqtgraph labels every minor tick 2..9 when the range spans a decade or two, and they
    overlap. Here: over 2.5 decades only the decades are labelled; down to a factor of 4,
    1, 2 and 5 times a power of ten; under a factor of 4 (e.g. the first training steps)
    evenly spaced values placed on the log scale. ``make_plot(log_axis=True)`` puts one on
    the left; ``plot.setAxisItems({"left": LogAxis("left")})`` adds one to any plot.
    """

    _narrow = False

    def tickValues(self, minVal, maxVal, size):
        self._narrow = self.logMode and 0 < maxVal - minVal < math.log10(4)
        if not self._narrow:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = 10 ** minVal, 10 ** maxVal
        step = 10 ** math.floor(math.log10((hi - lo) / 3))
        for m in (1, 2, 5, 10):
            if (hi - lo) / (m * step) <= 5:
                step *= m
                break
        vals = np.arange(math.ceil(lo / step), math.floor(hi / step) + 1) * step
        return [(step, [math.log10(v) for v in vals if v > 0])]

    def logTickStrings(self, values, scale, spacing):
        xs = [10 ** float(v) * scale for v in values]
        if self._narrow:
            return [f"{x:.3g}" for x in xs]
        lo, hi = sorted(self.range)
        keep = {1} if hi - lo > 2.5 else {1, 2, 5}
        return [_log_label(x) if x > 0 and _mantissa(x) in keep else "" for x in xs]
