"""The KL panel: the divergence the bound is made of, on two examples small enough to see.

Left, the space worms (Will Kurt, Count Bayesie 2017; :mod:`diffusion_gui.core.kl`): the observed
distribution of teeth p, a uniform fit and a binomial(n, p) fit q, as bars, and
``KL(p || q) = sum_k p(k) log(p(k) / q(k))`` for each -- 0.137 and 0.427 nats at the fitted p, so
the uniform loses less information. A slider moves the binomial's p (a spin box its n) and the
KL follows live; a toggle shows the reverse direction KL(q || p).

Right, two 1-D Gaussians p = N(mu1, var1) and q = N(mu2, var2) with sliders: the closed-form KL,
which is the formula behind every L_{t-1} of the bound (two Gaussians per pixel), beside a
numerical integral of p log(p/q), and the densities drawn. All numbers come from core.kl,
arranged by :mod:`diffusion_gui.sessions.kl` (which also holds the settings).
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...core.kl import LN2
from ...export.atomic import write_text_atomic
from ...sessions.kl import (
    GAUSS_DEFAULTS,
    MU_RANGE,
    MU_STEP,
    N_MAX,
    P_STEPS,
    VAR_MAX,
    VAR_MIN,
    VAR_STEP,
    WORMS,
    KLSettings,
    discrete_kls,
    distributions,
    fitted_p,
    gauss_view,
    gauss_y_range,
    worms_csv,
)
from .. import settings_io
from ..plots import COLORS, add_legend, export_plot_widget, grab_rgb, make_plot, pen, plain_axes

__all__ = ["KLPanel", "P_STEPS"]


def _brush(color: str, alpha: int):
    c = pg.mkColor(COLORS.get(color, color))
    c.setAlpha(alpha)
    return pg.mkBrush(c)


def _kl_text(v: float) -> str:
    return "∞" if v == math.inf else f"{v:.3f}"


class _ValueSlider(QWidget):
    """A horizontal slider over ``[lo, hi]`` in steps of ``step`` with its name and value beside."""

    def __init__(self, name_html: str, lo: float, hi: float, step: float, value: float, parent=None):
        super().__init__(parent)
        self.lo, self.step = lo, step
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.name = QLabel(name_html)
        self.name.setTextFormat(Qt.RichText)
        self.name.setMinimumWidth(46)
        self.name.setStyleSheet("font-size: 13pt;")
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, int(round((hi - lo) / step)))
        self.slider.setPageStep(max(1, self.slider.maximum() // 20))
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(56)
        self.value_label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.value_label.setStyleSheet("font-size: 13pt;")
        lay.addWidget(self.name)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.value_label)
        self.slider.valueChanged.connect(self._show)
        self.set_value(value)

    def value(self) -> float:
        return round(self.lo + self.slider.value() * self.step, 10)

    def set_value(self, v: float):
        self.slider.setValue(int(round((float(v) - self.lo) / self.step)))
        self._show()

    def _show(self, *_):
        self.value_label.setText(f"{self.value():.2f}")


class KLPanel(QWidget):
    """Discrete KL on the space worms, continuous KL between two Gaussians."""

    title = "KL divergence"

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.worms = WORMS
        self.n = len(self.worms.teeth) - 1          # the binomial's n (10: the fit)
        self.p = self.worms.binomial_p              # its p, exact until the slider moves
        self.kl = {}                                # what the labels show, by name (nats)
        self._build()
        self._update_discrete()
        self._update_gauss()

    # ------------------------------------------------------------ building
    def _build(self):
        self.setStyleSheet("QCheckBox, QPushButton, QSpinBox { font-size: 11pt; }")
        root = QHBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        split = QSplitter(Qt.Horizontal)
        split.setChildrenCollapsible(False)
        root.addWidget(split)
        split.addWidget(self._build_discrete())
        split.addWidget(self._build_gauss())
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)

    def _build_discrete(self):
        box = QGroupBox("Discrete: the space worms")
        box.setStyleSheet("QGroupBox { font-size: 12pt; font-weight: bold; }")
        lay = QVBoxLayout(box)
        self.worms_plot = plain_axes(make_plot("Teeth of 100 worms: data P and two models Q",
                                               "teeth k", "probability", min_height=260))
        add_legend(self.worms_plot, offset=(8, 8))
        w = 0.27
        self.true_bars = pg.BarGraphItem(x=self.worms.teeth - w, height=self.worms.true, width=w,
                                         brush=_brush("black", 230), pen=pg.mkPen("#222"),
                                         name="P: observed (100 worms)")
        self.uniform_bars = pg.BarGraphItem(x=self.worms.teeth, height=self.worms.uniform, width=w,
                                            brush=_brush("blue", 220), pen=pg.mkPen("#222"),
                                            name="Q: uniform, 1/11 each")
        self.binom_bars = pg.BarGraphItem(x=self.worms.teeth + w, height=self.worms.binomial, width=w,
                                          brush=_brush("orange", 230), pen=pg.mkPen("#222"),
                                          name="Q: binomial(n, p)")
        for b in (self.true_bars, self.uniform_bars, self.binom_bars):
            self.worms_plot.addItem(b)
        self.worms_plot.getPlotItem().getViewBox().setLimits(yMin=0)
        lay.addWidget(self.worms_plot, 1)

        ctl = QGridLayout()
        self.p_slider = QSlider(Qt.Horizontal)
        self.p_slider.setRange(0, P_STEPS)
        self.p_slider.setPageStep(20)
        self.p_slider.setValue(int(round(self.p * P_STEPS)))
        self.p_slider.setToolTip("The binomial's success probability p")
        self.p_label = QLabel()
        self.p_label.setMinimumWidth(120)
        self.p_label.setStyleSheet("font-size: 13pt;")
        self.n_spin = QSpinBox()
        self.n_spin.setRange(1, N_MAX)
        self.n_spin.setValue(self.n)
        self.n_spin.setPrefix("n = ")
        self.n_spin.setToolTip("The binomial's number of trials (the worms have 0..10 teeth)")
        self.fit_btn = QPushButton("Fit p to the mean")
        self.fit_btn.setToolTip("p = mean teeth / n, the fit of the original example")
        self.reverse_check = QCheckBox("reverse direction: KL(Q ‖ P)")
        self.reverse_check.setToolTip("KL is not symmetric: KL(Q ‖ P) weighs the log ratio by the "
                                      "model Q instead of the data P")
        bl = QLabel("binomial")
        bl.setStyleSheet("font-size: 13pt;")
        ctl.addWidget(bl, 0, 0)
        ctl.addWidget(self.n_spin, 0, 1)
        ctl.addWidget(self.p_slider, 0, 2)
        ctl.addWidget(self.p_label, 0, 3)
        ctl.addWidget(self.fit_btn, 1, 1, 1, 2, Qt.AlignLeft)
        ctl.addWidget(self.reverse_check, 1, 2, 1, 2, Qt.AlignRight)
        ctl.setColumnStretch(2, 1)
        lay.addLayout(ctl)

        self.discrete_formula = QLabel()
        self.discrete_formula.setTextFormat(Qt.RichText)
        self.discrete_formula.setAlignment(Qt.AlignCenter)
        self.discrete_formula.setStyleSheet("font-size: 15pt; padding: 4px;")
        self.discrete_formula.setWordWrap(True)
        lay.addWidget(self.discrete_formula)
        self.discrete_values = QLabel()
        self.discrete_values.setTextFormat(Qt.RichText)
        self.discrete_values.setAlignment(Qt.AlignCenter)
        self.discrete_values.setStyleSheet("font-size: 13pt;")
        self.discrete_values.setWordWrap(True)
        self.discrete_values.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.discrete_values)

        self.p_slider.valueChanged.connect(self._p_moved)
        self.n_spin.valueChanged.connect(self._n_changed)
        self.fit_btn.clicked.connect(self.fit_p)
        self.reverse_check.toggled.connect(self._update_discrete)
        return box

    def _build_gauss(self):
        box = QGroupBox("Continuous: two Gaussians, like every L\u209c\u208b\u2081")
        box.setStyleSheet("QGroupBox { font-size: 12pt; font-weight: bold; }")
        lay = QVBoxLayout(box)
        self.gauss_plot = plain_axes(make_plot("Densities p(x), q(x) and the integrand of the KL", "x",
                                               "density", min_height=260))
        add_legend(self.gauss_plot)
        gp = self.gauss_plot
        self.p_fill = gp.plot([], [], pen=None, fillLevel=0, brush=_brush("blue", 45))
        self.q_fill = gp.plot([], [], pen=None, fillLevel=0, brush=_brush("orange", 45))
        self.p_curve = gp.plot([], [], pen=pen("blue", 3), name="p = N(μ<sub>1</sub>, σ<sub>1</sub>²)")
        self.q_curve = gp.plot([], [], pen=pen("orange", 3), name="q = N(μ<sub>2</sub>, σ<sub>2</sub>²)")
        self.integrand_curve = gp.plot([], [], pen=pen("black", 1.5, dashed=True),
                                       name="p log(p/q): its area is the KL")
        gp.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#999", width=1)), ignoreBounds=True)
        gp.setXRange(-6, 6, padding=0)
        lay.addWidget(gp, 1)

        m1, v1, m2, v2 = GAUSS_DEFAULTS
        self.mu1 = _ValueSlider("μ<sub>1</sub>", -MU_RANGE, MU_RANGE, MU_STEP, m1)
        self.var1 = _ValueSlider("σ<sub>1</sub>²", VAR_MIN, VAR_MAX, VAR_STEP, v1)
        self.mu2 = _ValueSlider("μ<sub>2</sub>", -MU_RANGE, MU_RANGE, MU_STEP, m2)
        self.var2 = _ValueSlider("σ<sub>2</sub>²", VAR_MIN, VAR_MAX, VAR_STEP, v2)
        grid = QGridLayout()
        grid.setHorizontalSpacing(28)
        grid.addWidget(self._tag("p", "blue"), 0, 0)
        grid.addWidget(self.mu1, 0, 1)
        grid.addWidget(self.var1, 0, 2)
        grid.addWidget(self._tag("q", "orange"), 1, 0)
        grid.addWidget(self.mu2, 1, 1)
        grid.addWidget(self.var2, 1, 2)
        self.swap_check = QCheckBox("reverse direction: KL(q ‖ p)")
        self.reset_btn = QPushButton("Reset")
        row = QHBoxLayout()
        row.addWidget(self.reset_btn)
        row.addStretch(1)
        row.addWidget(self.swap_check)
        grid.addLayout(row, 2, 1, 1, 2)
        lay.addLayout(grid)

        self.gauss_formula = QLabel()
        self.gauss_formula.setTextFormat(Qt.RichText)
        self.gauss_formula.setAlignment(Qt.AlignCenter)
        self.gauss_formula.setStyleSheet("font-size: 15pt; padding: 4px;")
        self.gauss_formula.setWordWrap(True)
        lay.addWidget(self.gauss_formula)
        self.gauss_values = QLabel()
        self.gauss_values.setTextFormat(Qt.RichText)
        self.gauss_values.setAlignment(Qt.AlignCenter)
        self.gauss_values.setWordWrap(True)
        self.gauss_values.setStyleSheet("font-size: 13pt;")
        self.gauss_values.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.gauss_values)

        for s in (self.mu1, self.var1, self.mu2, self.var2):
            s.slider.valueChanged.connect(self._update_gauss)
        self.swap_check.toggled.connect(self._update_gauss)
        self.reset_btn.clicked.connect(self.reset_gauss)
        return box

    @staticmethod
    def _tag(name, color):
        lab = QLabel(f"<b style='color:{COLORS[color]}; font-size:15pt'>{name}</b>")
        lab.setTextFormat(Qt.RichText)
        return lab

    # ------------------------------------------------------------ discrete
    def _p_moved(self, v: int):
        self.p = v / P_STEPS
        self._update_discrete()

    def _n_changed(self, n: int):
        self.n = int(n)
        self._update_discrete()

    def fit_p(self):
        """Back to the example's binomial: n = 10, p = mean teeth / 10."""
        self.n_spin.blockSignals(True)
        self.n_spin.setValue(len(self.worms.teeth) - 1)
        self.n_spin.blockSignals(False)
        self.n = self.n_spin.value()
        self.p = fitted_p(self.n)
        self.p_slider.blockSignals(True)
        self.p_slider.setValue(int(round(self.p * P_STEPS)))
        self.p_slider.blockSignals(False)
        self._update_discrete()

    def distributions(self):
        """``(k, true, uniform, binomial)`` over the common support ``0..max(10, n)``."""
        return distributions(self.n, self.p)

    def _update_discrete(self, *_):
        k, true, uni, binom = self.distributions()
        rev = self.reverse_check.isChecked()
        kls = discrete_kls(self.n, self.p, rev)
        kl_u, kl_b = kls["uniform"], kls["binomial"]
        self.kl.update(kls)
        w = 0.27
        self.true_bars.setOpts(x=k - w, height=true)
        self.uniform_bars.setOpts(x=k, height=uni)
        self.binom_bars.setOpts(x=k + w, height=binom)
        self.worms_plot.setXRange(-0.7, k[-1] + 0.7, padding=0)
        self.worms_plot.setYRange(0, max(0.2, float(max(true.max(), binom.max()))) * 1.45, padding=0)
        self.p_label.setText(f"p = {self.p:.3f}")
        self.worms_plot.getPlotItem().legend.getLabel(self.binom_bars).setText(
            f"Q: binomial(n = {self.n}, p = {self.p:.3f})")

        a, b = ("Q", "P") if rev else ("P", "Q")
        self.discrete_formula.setText(f"KL({a} ‖ {b}) = Σ<sub>k</sub> {a}(k) log {a}(k) / {b}(k)")
        best = "uniform" if kl_u < kl_b else ("binomial" if kl_b < kl_u else None)

        def row(name, color, v):
            bits = "" if v == math.inf else f"{v / LN2:.3f} bits"
            mark = "◀ loses less" if name == best else ""
            return (f"<tr><td style='color:{COLORS[color]}'><b>Q = {name}</b></td>"
                    f"<td align='right' style='padding-left:14px'><b>{_kl_text(v)}</b> nats</td>"
                    f"<td align='right' style='padding-left:12px; color:#555'>{bits}</td>"
                    f"<td style='padding-left:12px; color:#009E73'><b>{mark}</b></td></tr>")
        note = ""
        if math.inf in (kl_u, kl_b):
            why = ("the model puts mass where nothing was observed" if rev else
                   "the model rules out what was observed")
            note = (f"<div style='font-size:11pt; color:#B04000'>∞: some k has {b}(k) = 0 but "
                    f"{a}(k) &gt; 0 — {why}.</div>")
        self.discrete_values.setText(f"<table align='center'><tr><td></td><td align='right' "
                                     f"style='padding-left:14px'>KL({a} ‖ {b})</td></tr>"
                                     f"{row('uniform', 'blue', kl_u)}"
                                     f"{row('binomial', 'orange', kl_b)}</table>{note}")

    # ------------------------------------------------------------ Gaussians
    def gauss_params(self):
        """``(mu1, var1, mu2, var2)`` as the sliders show them."""
        return self.mu1.value(), self.var1.value(), self.mu2.value(), self.var2.value()

    def reset_gauss(self):
        for s, v in zip((self.mu1, self.var1, self.mu2, self.var2), GAUSS_DEFAULTS):
            s.slider.blockSignals(True)
            s.set_value(v)
            s.slider.blockSignals(False)
        self._update_gauss()

    def _update_gauss(self, *_):
        m1, v1, m2, v2 = self.gauss_params()
        swap = self.swap_check.isChecked()
        g = gauss_view(m1, v1, m2, v2, swap)
        closed, numeric, p, q, integrand = g.closed, g.numerical, g.p, g.q, g.integrand
        self.kl["gauss"], self.kl["gauss_numerical"] = closed, numeric
        for c in (self.p_curve, self.p_fill):
            c.setData(g.x, p)
        for c in (self.q_curve, self.q_fill):
            c.setData(g.x, q)
        self.integrand_curve.setData(g.x, integrand)
        self.gauss_plot.setYRange(*gauss_y_range(g), padding=0.02)     # every curve whole
        self.gauss_plot.getPlotItem().legend.getLabel(self.integrand_curve).setText(
            ("q log(q/p)" if swap else "p log(p/q)") + ": its area is the KL")

        s1, s2 = ("2", "1") if swap else ("1", "2")
        self.gauss_formula.setText(
            f"KL(N(μ<sub>{s1}</sub>, σ<sub>{s1}</sub>²) ‖ N(μ<sub>{s2}</sub>, σ<sub>{s2}</sub>²))<br>= "
            f"½ [ log σ<sub>{s2}</sub>²/σ<sub>{s1}</sub>² + (σ<sub>{s1}</sub>² + "
            f"(μ<sub>1</sub> − μ<sub>2</sub>)²) / σ<sub>{s2}</sub>² − 1 ]")
        who = "q ‖ p" if swap else "p ‖ q"
        integ = "∫ q log(q/p) dx" if swap else "∫ p log(p/q) dx"
        self.gauss_values.setText(
            f"<table align='center'>"
            f"<tr><td>closed form KL({who})</td><td style='padding-left:12px'>= <b>{closed:.4f}</b> nats</td>"
            f"<td style='padding-left:10px; color:#555'>= {closed / LN2:.4f} bits</td></tr>"
            f"<tr><td>numerical {integ}</td><td style='padding-left:12px'>= <b>{numeric:.4f}</b> nats</td>"
            f"<td style='padding-left:10px; color:#555'>(trapezoid rule)</td></tr></table>"
            f"<div style='font-size:11pt; color:#444; margin-top:6px'>In DDPM, L<sub>t−1</sub> = "
            f"KL(q(x<sub>t−1</sub>|x<sub>t</sub>,x<sub>0</sub>) ‖ p<sub>θ</sub>(x<sub>t−1</sub>|x<sub>t</sub>)) "
            f"is this formula per pixel; with equal variances σ<sub>t</sub>² it is "
            f"(μ̃<sub>t</sub> − μ<sub>θ</sub>)² / 2σ<sub>t</sub>².</div>")

    # ------------------------------------------------------------ panel contract
    def shutdown(self):
        """Nothing runs in the background here."""

    def current_settings(self) -> KLSettings:
        """What the controls show, as the panel's settings."""
        m1, v1, m2, v2 = self.gauss_params()
        return KLSettings(n=self.n, p=float(self.p), reverse=self.reverse_check.isChecked(),
                          mu1=float(m1), var1=float(v1), mu2=float(m2), var2=float(v2),
                          gauss_reverse=self.swap_check.isChecked())

    def save_settings(self, settings):
        settings_io.save(settings, self.current_settings())

    def restore_settings(self, settings):
        cfg = settings_io.load(settings, KLSettings)
        for w in (self.n_spin, self.p_slider, self.reverse_check):
            w.blockSignals(True)
        self.n_spin.setValue(cfg.n)
        self.p_slider.setValue(int(round(cfg.p * P_STEPS)))
        self.reverse_check.setChecked(cfg.reverse)
        for w in (self.n_spin, self.p_slider, self.reverse_check):
            w.blockSignals(False)
        self.n, self.p = cfg.n, cfg.p
        for s, v in zip((self.mu1, self.var1, self.mu2, self.var2),
                        (cfg.mu1, cfg.var1, cfg.mu2, cfg.var2)):
            s.slider.blockSignals(True)
            s.set_value(v)
            s.slider.blockSignals(False)
        self.swap_check.blockSignals(True)
        self.swap_check.setChecked(cfg.gauss_reverse)
        self.swap_check.blockSignals(False)
        self._update_discrete()
        self._update_gauss()

    def export_sources(self):
        """For the Export dialog: the panel as a picture, and each plot as PNG / SVG / CSV."""
        from ..export_sources import FramesSource, PlotSource
        return [FramesSource("KL: the whole panel (picture)", fn=lambda: [grab_rgb(self)],
                             name="kl-panel"),
                PlotSource("KL: space worms bars", self.worms_plot, name="kl-worms",
                           csv=lambda path: self.export_plot("csv", path, which="worms")),
                PlotSource("KL: two Gaussians", self.gauss_plot, name="kl-gaussians")]

    def export_plot(self, fmt_: str, path, which: str = "worms", width: int | None = None):
        """Write ``which`` (worms / gauss) as png / svg / csv through pyqtgraph's exporters.

        The worms' csv is the table of the three distributions (pyqtgraph's CSV exporter only
        knows curves, not bars): ``teeth,true,uniform,binomial``.
        """
        if which == "worms" and fmt_.lower().lstrip(".") == "csv":
            return write_text_atomic(path, worms_csv(self.n, self.p))
        plots = {"worms": self.worms_plot, "gauss": self.gauss_plot}
        return export_plot_widget(plots[which], fmt_, path, width=width)
