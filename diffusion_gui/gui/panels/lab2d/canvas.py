"""The 2-D lab's square views: a point cloud over a density, with paths, arrows and a grid.

:class:`PointsItem` draws N points with one ``QPainter.drawPoints`` call (a round antialiased
cosmetic pen) up to :data:`AA_POINTS`, and beyond that splats them into one image in numpy:
10,000 points cost about 1 ms where ``drawPoints`` takes 10 ms and a ``ScatterPlotItem`` 30 ms
(offscreen; ``benchmarks/lab2d_particles.py`` measures the whole panel). :class:`CloudView` is a fixed square view (equal aspect, no
pan or zoom) whose :class:`LabViewBox` turns the mouse into signals in data coordinates:
``pressed(x, y, button, modifiers)``, ``dragged(x, y, button, modifiers, phase)`` (phase
``start``/``move``/``finish``) and ``wheeled(x, y, steps)``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPen
from PySide6.QtWidgets import QGraphicsItem

from ...plots import COLORS, style_plot

EXTENT = (-3.5, 3.5, -3.5, 3.5)         # the views' square (data units; the data has unit variance)
DENSITY_COLORS = ["#ffffff", "#efedf5", "#dadaeb", "#bcbddc", "#9e9ac8"]
CONTOUR_COLOR = "#54278f"
PARTICLE_COLOR = COLORS["blue"]
DATA_COLOR = "#b4b4b4"
PATH_COLOR = COLORS["red"]
FIELD_COLOR = (40, 40, 40, 150)
FORWARD_PATH_COLOR = COLORS["orange"]
GRID_COLOR = COLORS["green"]
AA_POINTS = 3000           # more points than this are drawn without antialiasing


class PointsItem(pg.GraphicsObject):
    """Many points of one colour and size, drawn with a single ``drawPoints`` call."""

    def __init__(self, color: str = PARTICLE_COLOR, size: float = 3.0, alpha: int = 200):
        super().__init__()
        c = QColor(color)
        c.setAlpha(alpha)
        self._pen = QPen(c)
        self._pen.setWidthF(size)
        self._pen.setCosmetic(True)
        self._pen.setCapStyle(Qt.RoundCap)
        self._fast_pen = QPen(self._pen)
        self._fast_pen.setCapStyle(Qt.SquareCap)
        self._fast_pen.setWidthF(max(2.0, size - 0.5))
        a = alpha / 255.0                # premultiplied ARGB32 of the colour
        self._argb = np.uint32((alpha << 24) | (int(c.red() * a) << 16) | (int(c.green() * a) << 8)
                               | int(c.blue() * a))
        self._poly = None
        self._n = 0
        self.points = np.zeros((0, 2))
        x0, x1, y0, y1 = EXTENT
        self._rect = QRectF(x0, y0, x1 - x0, y1 - y0)

    def set_points(self, pts) -> None:
        """``pts`` ``[N, 2]`` (float; non-finite points are dropped)."""
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(p).all():
            p = p[np.isfinite(p).all(1)]
        poly = pg.functions.create_qpolygonf(len(p))
        if len(p):
            pg.functions.ndarray_from_qpolygonf(poly)[:] = p
        self._poly, self._n = poly, len(p)
        self.points = p              # what is drawn (tests read it)
        self.update()

    @property
    def count(self) -> int:
        return self._n

    def boundingRect(self):
        return self._rect

    def paint(self, painter, *args):
        if not self._n:
            return
        if self._n > AA_POINTS:
            self._paint_splat(painter)
            return
        painter.setPen(self._pen)
        painter.drawPoints(self._poly)

    def _paint_splat(self, painter):
        """Many points: splat them into an ARGB image of the device in numpy (square dots of
        the pen's width, no antialiasing) and draw that once: about 1 ms for 10,000 points,
        where ``drawPoints`` takes 10 or more."""
        dev = painter.device()
        dpr = float(dev.devicePixelRatioF()) if hasattr(dev, "devicePixelRatioF") else 1.0
        w, h = int(dev.width() * dpr), int(dev.height() * dpr)
        if w <= 0 or h <= 0:
            return
        tr = painter.transform()
        x, y = self.points[:, 0], self.points[:, 1]
        px = ((tr.m11() * x + tr.m21() * y + tr.dx()) * dpr).astype(np.int64)
        py = ((tr.m12() * x + tr.m22() * y + tr.dy()) * dpr).astype(np.int64)
        r = max(1, int(round(self._fast_pen.widthF() * dpr)))
        buf = np.zeros((h + r, w + r), np.uint32)
        ok = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        px, py = px[ok], py[ok]
        for dy_ in range(r):
            for dx_ in range(r):
                buf[py + dy_, px + dx_] = self._argb
        img = QImage(np.ascontiguousarray(buf[:h, :w]).data, w, h, QImage.Format_ARGB32_Premultiplied)
        img.setDevicePixelRatio(dpr)
        painter.save()
        painter.resetTransform()
        painter.drawImage(0, 0, img)
        painter.restore()

class LabViewBox(pg.ViewBox):
    """A view box without pan or zoom; mouse events become signals in data coordinates."""

    pressed = Signal(float, float, object, object)
    dragged = Signal(float, float, object, object, str)
    wheeled = Signal(float, float, float)

    def __init__(self):
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=False, y=False)

    def _xy(self, ev):
        p = self.mapSceneToView(ev.scenePos())
        return float(p.x()), float(p.y())

    def mouseClickEvent(self, ev):
        ev.accept()
        self.pressed.emit(*self._xy(ev), ev.button(), ev.modifiers())

    def mouseDragEvent(self, ev, axis=None):
        ev.accept()
        phase = "start" if ev.isStart() else "finish" if ev.isFinish() else "move"
        if ev.isStart():
            p = self.mapSceneToView(ev.buttonDownScenePos())
            self.dragged.emit(float(p.x()), float(p.y()), ev.button(), ev.modifiers(), "start")
            phase = "move"
        self.dragged.emit(*self._xy(ev), ev.button(), ev.modifiers(), phase)

    def wheelEvent(self, ev, axis=None):
        ev.accept()
        self.wheeled.emit(*self._xy(ev), ev.delta() / 120.0)


def _cmap_lut():
    cm = pg.ColorMap(np.linspace(0, 1, len(DENSITY_COLORS)), [QColor(c) for c in DENSITY_COLORS])
    return cm.getLookupTable(0.0, 1.0, 256)


class CloudView(pg.PlotWidget):
    """One square view: density image and contours, data, particles, paths, arrows, grid,
    mixture handles, a caption under it. All setters take numpy arrays in data coordinates."""

    def __init__(self, title: str = "", parent=None):
        self.vb = LabViewBox()
        super().__init__(parent=parent, background="w", viewBox=self.vb)
        pi = self.getPlotItem()
        style_plot(pi, title, "x₁", "x₂")
        pi.getAxis("left").setWidth(44)
        pi.layout.setContentsMargins(2, 2, 8, 2)
        x0, x1, y0, y1 = EXTENT
        self.vb.setAspectLocked(True)
        self.vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        self.setMinimumSize(260, 260)
        self.density = pg.ImageItem(axisOrder="row-major")
        self.density.setLookupTable(_cmap_lut())
        self.density.setZValue(-20)
        self.addItem(self.density)
        self.contours = pg.PlotDataItem(pen=pg.mkPen(CONTOUR_COLOR, width=1.3), connect="pairs")
        self.contours.setZValue(-10)
        self.addItem(self.contours)
        self.grid_lines = pg.PlotDataItem(pen=pg.mkPen(GRID_COLOR, width=1.2))
        self.data_points = PointsItem(DATA_COLOR, 2.5, 200)
        self.particles = PointsItem(PARTICLE_COLOR, 3.0, 190)
        self.arrows = pg.PlotDataItem(pen=pg.mkPen(FIELD_COLOR, width=1.3), connect="pairs")
        self.paths = pg.PlotDataItem(pen=pg.mkPen(PATH_COLOR, width=2.2), connect="finite")
        self.path_heads = pg.ScatterPlotItem(size=10, pen=pg.mkPen("w", width=1.5),
                                             brush=pg.mkBrush(PATH_COLOR))
        self.handles = pg.ScatterPlotItem(size=14, symbol="+", pen=pg.mkPen(COLORS["black"], width=3),
                                          brush=None)
        for z, item in enumerate((self.grid_lines, self.data_points, self.particles, self.arrows,
                                  self.paths, self.path_heads, self.handles)):
            item.setZValue(z)
            self.addItem(item)
        # what changes seldom is blitted from a pixmap when the particles move (a frame of
        # 10,000 particles then repaints only them)
        for item in (pi.getAxis("left"), pi.getAxis("bottom"), self.density, self.contours,
                     self.data_points, self.arrows, self.handles):
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            for child in item.childItems():
                child.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.hint = pg.TextItem("", color=COLORS["grey"], anchor=(0.5, 0.5))
        self.hint.setPos(0, 0)
        self.addItem(self.hint)

    # ---------------------------------------------------------------- layers
    def set_density(self, log_q, contours=None):
        """log q on the grid of :func:`density_grid` (``[ny, nx]``; None clears), shown as
        ``(q / max q)^0.5``, and its contours (segments in pairs from :func:`contour_lines`,
        computed off the GUI thread)."""
        if log_q is None:
            self.density.clear()
            self.contours.setData([], [])
            return
        q = np.exp(np.asarray(log_q, np.float64) - np.max(log_q))
        self.density.setImage(np.sqrt(q), levels=(0, 1))
        x0, x1, y0, y1 = EXTENT
        self.density.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        if contours is None or len(contours) == 0:
            self.contours.setData([], [])
        else:
            self.contours.setData(contours[:, 0], contours[:, 1], connect="pairs")

    def set_paths(self, paths):
        """Polylines ``[L, 2]`` (a list), each ending in a dot."""
        paths = [np.asarray(p, np.float64).reshape(-1, 2) for p in paths or []]
        if not paths:
            self.paths.setData([], [])
            self.path_heads.setData([], [])
            return
        sep = np.full((1, 2), np.nan)
        xy = np.concatenate([np.concatenate([p, sep]) for p in paths])
        self.paths.setData(xy[:, 0], xy[:, 1], connect="finite")
        heads = np.stack([p[-1] for p in paths])
        self.path_heads.setData(pos=heads)

    def set_arrows(self, segments):
        """Line segments in pairs ``[2 M, 2]`` (:func:`~diffusion_gui.sessions.lab2d_field.arrow_segments`)."""
        if segments is None or len(segments) == 0:
            self.arrows.setData([], [])
            return
        s = np.asarray(segments, np.float64)
        self.arrows.setData(s[:, 0], s[:, 1], connect="pairs")

    def set_grid(self, lines):
        """The warped grid: polylines ``[L, P, 2]`` (None to hide)."""
        if lines is None:
            self.grid_lines.setData([], [])
            return
        L, P, _ = lines.shape
        xy = np.concatenate([lines, np.full((L, 1, 2), np.nan)], 1).reshape(-1, 2)
        self.grid_lines.setData(xy[:, 0], xy[:, 1], connect="finite")

    def set_handles(self, means):
        if means is None:
            self.handles.setData([], [])
        else:
            self.handles.setData(pos=np.asarray(means, np.float64).reshape(-1, 2))

    def set_hint(self, text: str):
        self.hint.setText(text)

    def to_view(self, x: float, y: float) -> QPointF:
        return self.vb.mapViewToScene(QPointF(x, y))


def density_grid(n: int = 90):
    """The ``xs`` and ``ys`` (``[n]`` each) of the density image over :data:`EXTENT`: pixel
    centres, so that the image's rectangle is the extent."""
    x0, x1, y0, y1 = EXTENT
    dx, dy = (x1 - x0) / n, (y1 - y0) / n
    return np.linspace(x0 + dx / 2, x1 - dx / 2, n), np.linspace(y0 + dy / 2, y1 - dy / 2, n)


def contour_segments(f, level: float, xs, ys) -> np.ndarray:
    """Marching squares, vectorised: the contour ``f = level`` of ``f`` ``[ny, nx]`` sampled at
    ``(xs[j], ys[i])``, as line segments in pairs ``[2 M, 2]`` (a saddle cell gives two)."""
    f = np.asarray(f, np.float64)
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    gx, gy = np.meshgrid(xs, ys)
    # corners of each cell: a (bottom left), b (bottom right), c (top right), d (top left)
    corners = [(f[:-1, :-1], gx[:-1, :-1], gy[:-1, :-1]), (f[:-1, 1:], gx[:-1, 1:], gy[:-1, 1:]),
               (f[1:, 1:], gx[1:, 1:], gy[1:, 1:]), (f[1:, :-1], gx[1:, :-1], gy[1:, :-1])]
    hits, pts = [], []
    for (f0, x0, y0), (f1, x1, y1) in zip(corners, corners[1:] + corners[:1]):   # edges ab bc cd da
        hit = (f0 > level) != (f1 > level)
        w = np.where(hit, (level - f0) / np.where(f1 != f0, f1 - f0, 1.0), 0.0)
        hits.append(hit)
        pts.append(np.stack([x0 + w * (x1 - x0), y0 + w * (y1 - y0)], -1))
    hits, pts = np.stack(hits), np.stack(pts)          # [4, ny-1, nx-1], [4, ny-1, nx-1, 2]
    count = hits.sum(0)
    segs = []
    two = count == 2
    if two.any():
        h, p = hits[:, two], pts[:, two]               # [4, M], [4, M, 2]
        order = np.argsort(~h, axis=0, kind="stable")[:2]
        m = np.arange(h.shape[1])
        segs.append(np.stack([p[order[0], m], p[order[1], m]], 1))
    four = count == 4
    if four.any():
        p = pts[:, four]
        segs += [np.stack([p[0], p[1]], 1), np.stack([p[2], p[3]], 1)]
    return np.concatenate(segs).reshape(-1, 2) if segs else np.zeros((0, 2))


def contour_lines(log_q, levels_mass=(0.25, 0.5, 0.75, 0.95)) -> np.ndarray:
    """The contours of q (``exp(log_q)`` on :func:`density_grid`, ``[ny, nx]``) that enclose
    the highest-density regions holding the given shares of the probability mass, as segments in
    pairs ``[2 M, 2]`` (data coordinates). Plain numpy (about a millisecond): safe in a worker
    thread, and it hardly holds the GIL."""
    q = np.exp(np.asarray(log_q, np.float64) - np.max(log_q))
    xs, ys = density_grid(q.shape[1])
    flat = np.sort(q.ravel())[::-1]
    cum = np.cumsum(flat) / flat.sum()
    parts = [contour_segments(q, float(flat[min(np.searchsorted(cum, m), len(flat) - 1)]), xs, ys)
             for m in levels_mass]
    return np.concatenate(parts)
