"""The loss panel's plots: the terms of the bound, the training losses, the cumulative bound and
the share per tenth of t, on one x axis (the paper's t, 0..T) with the forward panel's t-cursor.

:class:`LossPlots` is a mix-in of :class:`~.panel.LossPanel`: it builds the plot grid on the
panel (so that the curves are the panel's attributes) and draws results on it.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from ....sessions.losses import N_BUCKETS, bucket_shares
from ...plots import COLORS, TCursor, add_legend, make_plot, pen, plain_axes

MSE_TITLE = (f"<span style='color:{COLORS['orange']}'><b>L<sub>simple</sub></b> = ‖ε − "
             f"ε<sub>θ</sub>(x<sub>t</sub>, t)‖²</span> &nbsp;and&nbsp; "
             f"<span style='color:{COLORS['purple']}'><b>‖x<sub>0</sub> − x<sub>0</sub><sup>θ</sup>"
             f"(x<sub>t</sub>, t)‖²</b></span> &nbsp;at each t")
KL_NAME = ("L<sub>t−1</sub> = KL(q(x<sub>t−1</sub>|x<sub>t</sub>,x<sub>0</sub>) ‖ "
           "p<sub>θ</sub>(x<sub>t−1</sub>|x<sub>t</sub>))")
DECODER_NAME = "L<sub>0</sub> = −log p<sub>θ</sub>(x<sub>0</sub>|x<sub>1</sub>)  (t = 1)"
PRIOR_NAME = "L<sub>T</sub> = KL(q(x<sub>T</sub>|x<sub>0</sub>) ‖ N(0, I))  (t = T)"
EPS_NAME = "L<sub>simple</sub> = ‖ε − ε<sub>θ</sub>(x<sub>t</sub>, t)‖²"
X0_NAME = "‖x<sub>0</sub> − x<sub>0</sub><sup>θ</sup>(x<sub>t</sub>, t)‖²"


def _font(pt: int) -> QFont:
    f = QFont()
    f.setPointSize(pt)
    return f


def _marker(plot, symbol: str, size: int, color: str, name: str):
    return plot.plot([], [], pen=None, symbol=symbol, symbolSize=size, symbolBrush=COLORS[color],
                     symbolPen=pg.mkPen("#222", width=1), name=name)


class LossPlots:
    """Builds and draws the four plots (mix-in: ``self`` is the panel)."""

    def _build_plots(self) -> QWidget:
        """The 2 x 2 grid of plots with the read-out under it; also ``self.cursors``."""
        plots = QWidget()
        grid = QGridLayout(plots)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(6)
        self.plots_widget = plots
        self.terms_plot = make_plot("Terms of the bound at each t", "t", "bits / dim", log_y=True,
                                    log_axis=True)
        self.mse_plot = make_plot(MSE_TITLE, "t", "MSE per dim", log_y=True, log_axis=True)
        self.cum_plot = make_plot("Cumulative bound  L<sub>0</sub> + Σ<sub>s≤t</sub> L<sub>s−1</sub>",
                                  "t", "bits / dim")
        self.share_plot = make_plot("Share of the bound per tenth of t", "t", "% of L")
        for p in self.plot_widgets().values():
            plain_axes(p)
        for p in (self.terms_plot, self.mse_plot):
            p.getPlotItem().getAxis("left").setWidth(66)
        for p in (self.mse_plot, self.cum_plot, self.share_plot):
            p.setXLink(self.terms_plot)
        for p, row, col in ((self.terms_plot, 0, 0), (self.cum_plot, 0, 1), (self.mse_plot, 1, 0),
                            (self.share_plot, 1, 1)):
            grid.addWidget(p, row, col)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        self._add_curves()
        self._add_share_bars()
        self.cursors = []
        for p in self.plot_widgets().values():
            c = TCursor(p, 0, 1000)
            c.t_picked.connect(self._cursor_picked)
            self.cursors.append(c)
        self.readout = QLabel()
        self.readout.setTextFormat(Qt.RichText)
        self.readout.setStyleSheet("font-size: 12pt; padding: 2px 4px;")
        self.readout.setMinimumHeight(28)
        self.readout.setToolTip("The red line is the forward panel's t: drag it, or click a plot, "
                                "to move it there too. Hover a plot to read its values.")
        grid.addWidget(self.readout, 2, 0, 1, 2)
        return plots

    def _add_curves(self):
        tp = self.terms_plot
        add_legend(tp)
        self.kl_curve = tp.plot([], [], pen=pen("blue", 2.5), name=KL_NAME)
        self.decoder_pt = _marker(tp, "s", 13, "orange", DECODER_NAME)
        self.prior_pt = _marker(tp, "d", 15, "green", PRIOR_NAME)
        self.eps_curve = self.mse_plot.plot([], [], pen=pen("orange", 2.5), name=EPS_NAME)
        self.x0_curve = self.mse_plot.plot([], [], pen=pen("purple", 2.5), name=X0_NAME)
        self.cum_legend = add_legend(self.cum_plot, offset=(-8, -8))
        self.cum_curve = self.cum_plot.plot([], [], pen=pen("blue", 3), fillLevel=0,
                                            brush=pg.mkBrush(0, 114, 178, 40))
        self.total_line = self.cum_plot.plot([], [], pen=pen("black", 1.5, dashed=True),
                                             name="total L")

    def _add_share_bars(self):
        self.bars = pg.BarGraphItem(x=[], height=[], width=1, brush=COLORS["sky"],
                                    pen=pg.mkPen("#222", width=1))
        self.share_plot.addItem(self.bars)
        self.bar_labels = []
        for _ in range(N_BUCKETS):
            ti = pg.TextItem("", color="#222", anchor=(0.5, 1.05))
            ti.setFont(_font(10))
            ti.setVisible(False)
            self.share_plot.addItem(ti)
            self.bar_labels.append(ti)
        self.share_plot.getPlotItem().getViewBox().setLimits(yMin=0)

    def plot_widgets(self) -> dict:
        """The four plots by name: terms, mse, cumulative, share."""
        return {"terms": self.terms_plot, "mse": self.mse_plot, "cumulative": self.cum_plot,
                "share": self.share_plot}

    # ------------------------------------------------------------ drawing
    def _clear_plots(self):
        for c in (self.kl_curve, self.decoder_pt, self.prior_pt, self.eps_curve, self.x0_curve,
                  self.cum_curve, self.total_line):
            c.setData([], [])
        self.bars.setOpts(x=[], height=[])
        for ti in self.bar_labels:
            ti.setVisible(False)

    def _plot_terms(self, t, vb, eps, x0):
        """The per-t curves (partial or complete): L_{t-1} for t >= 2, L_0 at t = 1, the MSEs."""
        t = np.asarray(t)
        sym = dict(symbol="o", symbolSize=5, symbolBrush=COLORS["blue"], symbolPen=None) \
            if len(t) <= 120 else dict(symbol=None)
        self.kl_curve.setData(t[1:], vb[1:], **sym)
        self.decoder_pt.setData(t[:1], vb[:1])
        self.eps_curve.setData(t, eps)
        self.x0_curve.setData(t, x0)

    def _plot_result(self, r):
        """Every plot of a complete :class:`~diffusion_gui.core.vlb.VLBResult`."""
        self._plot_terms(r.t, r.vb_bpd, r.eps_mse, r.x0_mse)
        self.prior_pt.setData([r.timesteps], [r.prior_bpd])
        cum = np.cumsum(r.weights * r.vb_bpd)
        self.cum_curve.setData(np.concatenate([r.t, [r.timesteps]]),
                               np.concatenate([cum, [cum[-1] + r.prior_bpd]]))
        self.total_line.setData([0, r.timesteps], [r.total_bpd, r.total_bpd])
        self.cum_legend.getLabel(self.total_line).setText(f"total L = {r.total_bpd:.4f} bits/dim")
        self._plot_shares(r)
        self.terms_plot.setXRange(0, r.timesteps, padding=0.02)

    def _plot_shares(self, r):
        edges, pct = bucket_shares(r)
        centres = (edges[:-1] + edges[1:]) / 2
        width = (edges[1] - edges[0]) * 0.85
        self.bars.setOpts(x=centres, height=pct, width=width)
        for ti, x, v in zip(self.bar_labels, centres, pct):
            ti.setText(f"{v:.0f}%" if v >= 0.5 else "<1%")
            ti.setPos(x, v)
            ti.setVisible(True)
        self.share_plot.setYRange(0, max(10.0, float(pct.max()) * 1.18), padding=0)

    def _set_log(self, on: bool):
        for p in (self.terms_plot, self.mse_plot):
            p.getPlotItem().setLogMode(x=False, y=bool(on))
            p.enableAutoRange(axis="y")
