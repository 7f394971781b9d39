"""The Train panel's views: the data preview, the sample strip with its grid settings, and the
two plots (:class:`TrainPlots`: the loss of every step, the loss per timestep bucket).

Buckets are of the paper's ``t`` (``t = 0`` the clean image, ``t = T`` noise): bucket ``k`` is
drawn at the centre of ``(kT/10, (k+1)T/10]``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QSplitter, QVBoxLayout

from ...image_view import ImageView
from ...plots import AXIS_COLOR, COLORS, LABEL_PT, LogAxis, add_legend, make_plot, pen, style_plot
from .controls import build_grid_row
from .strip import SampleStrip

BUCKETS_T = 1000
BUCKET_HEADROOM = 1.3    # y range of the bucket plot over its tallest bar (the legend sits above)
MIN_X_STEPS = 10         # the loss plot shows at least steps 0..10


def _splitter(orientation, widgets, stretch, sizes=None) -> QSplitter:
    s = QSplitter(orientation)
    for k, (w, f) in enumerate(zip(widgets, stretch)):
        s.addWidget(w)
        s.setStretchFactor(k, f)
    if sizes:
        s.setSizes(sizes)
    s.setChildrenCollapsible(False)
    return s


class TrainPlots(QSplitter):
    """``loss_plot`` (``raw_curve``, ``smooth_curve`` on a log axis, ``step_line`` at the step of
    the grid shown) beside ``bucket_plot`` (``bars``: the loss per bucket now; ``bucket_ref``:
    at the grid's step)."""

    def __init__(self, parent=None):
        super().__init__(Qt.Horizontal, parent)
        self._x_forced = False
        self._build_loss_plot()
        self._build_bucket_plot()
        for k, (w, f) in enumerate(((self.loss_plot, 3), (self.bucket_plot, 2))):
            self.addWidget(w)
            self.setStretchFactor(k, f)
        self.setSizes([600, 400])
        self.setChildrenCollapsible(False)

    def _build_loss_plot(self):
        self.loss_plot = make_plot("Training loss", "step", "ε-MSE", min_height=180)
        self.loss_plot.setAxisItems({"left": LogAxis("left")})
        style_plot(self.loss_plot, "Training loss", "step", "ε-MSE", log_y=True)
        left_axis = self.loss_plot.getPlotItem().getAxis("left")
        left_axis.setLogMode(True)
        left_axis.setGrid(int(0.18 * 255))
        self.loss_plot.setMouseEnabled(x=True, y=False)
        add_legend(self.loss_plot)
        self.raw_curve = self.loss_plot.plot([], [], pen=pen("sky", 1.0, alpha=110), name="raw (one batch)")
        self.smooth_curve = self.loss_plot.plot([], [], pen=pen("blue", 2.5), name="smoothed")
        for c in (self.raw_curve, self.smooth_curve):
            c.setClipToView(True)
            c.setDownsampling(auto=True, method="mean")
        self.step_line = pg.InfiniteLine(pos=0, angle=90, movable=False, pen=pen("orange", 1.5, dashed=True))
        self.step_line.setVisible(False)
        self.loss_plot.addItem(self.step_line, ignoreBounds=True)

    def _build_bucket_plot(self):
        self.bucket_plot = make_plot("Loss per timestep bucket", "t  (0 = clean image, T = noise)",
                                     "ε-MSE", min_height=180)
        centres = (np.arange(10) + 0.5) * BUCKETS_T / 10
        self.bars = pg.BarGraphItem(x=centres, height=np.zeros(10), width=BUCKETS_T / 10 * 0.82,
                                    brush=pg.mkBrush(COLORS["blue"]), pen=pg.mkPen(None), name="now")
        self.bucket_plot.addItem(self.bars)
        self.bucket_ref = self.bucket_plot.plot([], [], pen=pen("orange", 2.5, dashed=True),
                                                symbol="o", symbolSize=7,
                                                symbolBrush=pg.mkBrush(COLORS["orange"]),
                                                symbolPen=pg.mkPen(None))
        self.bucket_leg = add_legend(self.bucket_plot)
        self.bucket_leg.setColumnCount(2)          # one row: room above the bars
        self.bucket_leg.addItem(self.bars, "now")
        self.bucket_leg.addItem(self.bucket_ref, "at the grid's step")
        self.bucket_plot.setXRange(0, BUCKETS_T, padding=0.02)
        self.bucket_plot.setMouseEnabled(x=False, y=False)

    def reset(self, loss_name: str = "ε-MSE"):
        """Empty plots for a new run; ``loss_name``: what it optimises (``L_hybrid`` for a learned
        variance)."""
        for plot in (self.loss_plot, self.bucket_plot):
            plot.getPlotItem().setLabel("left", loss_name, color=AXIS_COLOR, **{"font-size": f"{LABEL_PT}pt"})
        self._x_forced = False
        self.raw_curve.setData([], [])
        self.smooth_curve.setData([], [])
        self.bucket_ref.setData([], [])
        self.step_line.setVisible(False)

    def show_loss(self, history):
        """Draw a :class:`~diffusion_gui.sessions.training.LossHistory` (not empty)."""
        x = history.steps.data
        self.raw_curve.setData(x, history.raw.data)
        self.smooth_curve.setData(x, history.smooth.data)
        vb = self.loss_plot.getPlotItem().getViewBox()
        if x[-1] < MIN_X_STEPS:                  # a point or two: a sensible axis, not 0.6..1.4
            vb.setXRange(0, MIN_X_STEPS, padding=0.02)
        elif not vb.autoRangeEnabled()[0] and self._x_forced:
            vb.enableAutoRange(x=True)
        self._x_forced = x[-1] < MIN_X_STEPS

    def show_buckets(self, now, ref=None):
        """Bars of ``now`` (loss per bucket, NaN: unseen); the y range also fits ``ref``."""
        h = np.nan_to_num(np.asarray(now, float), nan=0.0)
        self.bars.setOpts(height=h)
        top = float(np.max(h)) if h.size else 0.0
        if ref is not None and np.isfinite(ref).any():
            top = max(top, float(np.nanmax(ref)))
        if top > 0:
            self.bucket_plot.setYRange(0, top * BUCKET_HEADROOM, padding=0)

    def mark(self, step: int, ref=None):
        """The grid of ``step`` is shown: a line at its step, its bucket losses ``ref``."""
        self.step_line.setValue(step)
        self.step_line.setVisible(True)
        if ref is not None:
            centres = (np.arange(len(ref)) + 0.5) * BUCKETS_T / len(ref)
            ok = np.isfinite(ref)
            self.bucket_ref.setData(centres[ok], ref[ok])
            self.bucket_leg.items[-1][1].setText(f"at step {step:,}")


def build_views(p) -> QSplitter:
    """The right side: data preview and sample strip on top, the plots below. Sets ``preview``,
    ``strip``, ``plots`` (and the grid settings of :func:`~.controls.build_grid_row`) on ``p``."""
    p.preview = ImageView(min_size=150)
    p.preview.set_placeholder("loading the data…")
    prev_box = QGroupBox("Data, as the model sees it")
    QVBoxLayout(prev_box).addWidget(p.preview)
    p.strip = SampleStrip()
    strip_box = QGroupBox("Samples during training (fixed seed)")
    slay = QVBoxLayout(strip_box)
    slay.addWidget(p.strip, 1)
    slay.addLayout(build_grid_row(p))
    top = _splitter(Qt.Horizontal, (prev_box, strip_box), (2, 3), [400, 600])
    p.plots = TrainPlots()
    return _splitter(Qt.Vertical, (top, p.plots), (3, 2))
