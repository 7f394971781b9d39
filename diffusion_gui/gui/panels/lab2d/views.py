"""The 2-D lab's views: three square clouds (forward, DDPM, DDIM) over a t slider, and the
plots and numbers under them (loss curve, loss per t against the floor, the memorisation
histogram, the quality table)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ....sessions.lab2d_settings import BOUND_PENDING
from ...plots import AXIS_COLOR, COLORS, LABEL_PT, add_legend, make_plot, pen
from .canvas import CloudView

KIND_COLORS = {"mlp": "blue", "exact": "green", "empirical": "red", "fresh": "grey"}
KIND_NAMES = {"mlp": "MLP", "exact": "exact", "empirical": "empirical", "fresh": "fresh data"}
HIST_BINS = np.linspace(-4, 1, 41)        # log10(distance / data std)


def _caption() -> QLabel:
    lab = QLabel("")
    lab.setTextFormat(Qt.RichText)
    lab.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
    lab.setWordWrap(True)
    lab.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
    return lab


def build_views(panel) -> QWidget:
    """The right-hand side; sets the view attributes on ``panel``."""
    w = QWidget()
    lay = QVBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    clouds = QGridLayout()
    panel.forward_view = CloudView("Forward: q_t and x_t")
    panel.ddpm_view = CloudView("Reverse: DDPM")
    panel.ddim_view = CloudView("Reverse: DDIM (η = 0)")
    panel.views = {"forward": panel.forward_view, "ddpm": panel.ddpm_view, "ddim": panel.ddim_view}
    panel.captions = {}
    for col, (key, view) in enumerate(panel.views.items()):
        clouds.addWidget(view, 0, col)
        panel.captions[key] = _caption()
        clouds.addWidget(panel.captions[key], 1, col)
        clouds.setColumnStretch(col, 1)
    clouds.setRowStretch(0, 1)
    lay.addLayout(clouds, 3)

    row = QHBoxLayout()
    panel.play_btn = QPushButton("▶ Play")
    panel.play_btn.setToolTip("Play the reverse process from t = T to 0 (Space)")
    panel.t_label = QLabel("t = 0")
    panel.t_label.setMinimumWidth(90)
    panel.t_slider = QSlider(Qt.Horizontal)
    panel.t_slider.setToolTip("t = 0: the data; t = T: noise (Left/Right arrows step)")
    row.addWidget(panel.play_btn)
    row.addWidget(panel.t_label)
    row.addWidget(panel.t_slider, 1)
    lay.addLayout(row)

    plots = QHBoxLayout()
    panel.loss_plot = make_plot("MLP training loss", "step", "ε-MSE", log_axis=True, log_y=True,
                                min_height=200)
    panel.loss_curve = panel.loss_plot.plot(pen=pen("blue", 2))
    panel.profile_plot = make_plot("Loss per t against the floor", "t", "ε-MSE per coordinate",
                                   log_axis=True, log_y=True, min_height=200)
    add_legend(panel.profile_plot, offset=(8, -8))       # bottom left: the curves fall to the right
    panel.bucket_curve = panel.profile_plot.plot(pen=pen("sky", 2, dashed=True), name="training (running)")
    panel.profile_curve = panel.profile_plot.plot(pen=pen("blue", 2.5), name="MLP, fresh data")
    panel.floor_curve = panel.profile_plot.plot(pen=pen("black", 2), name="floor E‖ε − ε*‖²")
    panel.hist_plot = make_plot("Distance to the nearest training point", "log₁₀(distance / data std)",
                                "share of samples", min_height=200)
    add_legend(panel.hist_plot)
    panel.hist_curves = {k: panel.hist_plot.plot(stepMode="center", pen=pen(KIND_COLORS[k], 2.2),
                                                 name=KIND_NAMES[k])
                         for k in ("fresh", "mlp", "exact", "empirical")}
    fresh = panel.hist_curves["fresh"]          # the reference, filled, under the others
    fresh.setFillLevel(0)
    fresh.setBrush(pg.mkBrush(136, 136, 136, 70))
    fresh.setZValue(-1)
    panel.hist_plot.setXRange(HIST_BINS[0], HIST_BINS[-1], padding=0.02)
    panel.hist_hint = pg.TextItem("Compare the denoisers to see\nhow far samples lie from the data",
                                  color=COLORS["grey"], anchor=(0.5, 0.5))
    panel.hist_hint.setPos(-1.5, 0.5)
    panel.hist_plot.setYRange(0, 1)
    panel.hist_plot.addItem(panel.hist_hint)
    for p in (panel.loss_plot, panel.profile_plot, panel.hist_plot):
        plots.addWidget(p, 1)
    lay.addLayout(plots, 2)
    panel.numbers = QLabel("")
    panel.numbers.setTextFormat(Qt.RichText)
    panel.numbers.setWordWrap(True)
    panel.bound_label = QLabel(BOUND_PENDING)     # the place of the held-out bound (nats/dim)
    panel.bound_label.setStyleSheet(f"color: {COLORS['black']}")
    panel.bound_label.setWordWrap(True)
    lay.addWidget(panel.numbers)
    lay.addWidget(panel.bound_label)
    return w


def show_histograms(panel, nearest: dict):
    """``nearest``: kind -> distances in data-std units ``[n]`` (missing kinds are cleared;
    distances under 10^-4 std count in the first bin)."""
    panel.hist_hint.setVisible(not nearest)
    if nearest:
        panel.hist_plot.enableAutoRange(y=True)
    for k, curve in panel.hist_curves.items():
        d = nearest.get(k)
        if d is None or len(d) == 0:
            curve.setData([], [])
            curve.setVisible(False)
            continue
        h, _ = np.histogram(np.log10(np.maximum(d, 10 ** HIST_BINS[0])), HIST_BINS)
        curve.setData(HIST_BINS, h / len(d))
        curve.setVisible(True)


def quality_table(rows: list) -> str:
    """An HTML table of ``(kind, Quality)`` rows."""
    if not rows:
        return ""
    head = ("<tr><th align=left>denoiser</th><th>energy distance</th><th>noise floor</th>"
            "<th>Gaussian baseline</th><th>median nearest (% std)</th></tr>")
    body = "".join(
        f"<tr><td><b style='color:{COLORS[KIND_COLORS[k]]}'>{KIND_NAMES[k]}</b></td>"
        f"<td align=right>{q.energy_distance:.4f}</td><td align=right>{q.noise_floor:.4f}</td>"
        f"<td align=right>{q.gaussian_baseline:.4f}</td><td align=right>{q.nearest_median_pct:.2f}</td></tr>"
        for k, q in rows)
    return f"<table cellspacing=0 cellpadding=3>{head}{body}</table>"


def set_curve(curve: pg.PlotDataItem, x, y):
    """Plot finite, positive values only (log axes)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    curve.setData(x[ok], y[ok])


def bound_text(bounds: dict | None) -> str:
    """The held-out bound line: ``bounds`` kind -> :func:`~diffusion_gui.sessions.lab2d_numbers.heldout_bound`."""
    if not bounds:
        return BOUND_PENDING
    held = all(b["held_out"] for b in bounds.values())
    parts = [f"{KIND_NAMES[k]} {b['total']:.3f} (L_T {b['prior']:.3f} + KL {b['kl_sum']:.3f} + "
             f"L_0 {b['decoder']:.3f})" for k, b in bounds.items()]
    where = "held-out points" if held else "the training points (hand-made data)"
    return f"Bound on {where}, nats/dim (Gaussian decoder; ≥ −log p): " + ";  ".join(parts)


def clear_training(panel):
    """A fresh network: no loss curves, "not trained", and the loss named for what it trains
    (L_hybrid for a learned variance)."""
    panel.loss_curve.setData([], [])
    panel.bucket_curve.setData([], [])
    panel.train_label.setText("not trained")
    _name_loss(panel)


def apply_variance(panel, variance: str):
    """The session's MLP variance set to ``variance`` (a change: a fresh network, the curves
    cleared); the loss axis named for it either way."""
    if panel.session.set_variance(variance):
        clear_training(panel)
    _name_loss(panel)


def _name_loss(panel):
    learned = panel.session is not None and panel.session.train_state.net.learned_variance
    panel.loss_plot.getPlotItem().setLabel("left", "L_hybrid" if learned else "ε-MSE", color=AXIS_COLOR,
                                           **{"font-size": f"{LABEL_PT}pt"})
