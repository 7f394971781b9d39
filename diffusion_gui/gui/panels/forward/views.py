"""The Forward panel's views: the schedule plots, the pixel histogram, the filmstrip and the
rich-text read-outs. Timesteps are the paper's ``t`` (``t = 0`` clean, ``t = T`` noise).

Each view keeps pixmap caches (``plots.cache_items``) so that a moving cursor is a blit, and
fixed-height labels so that new text never re-lays out the window.
"""
from __future__ import annotations

import math
import weakref

import numpy as np
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ....sessions.forward import FILM_FRAMES, HIST_BINS, HIST_RANGE, SCHEDULES, hist_edges
from ...format import ABAR, EPS, num_html
from ...image_view import ImageView, Thumbnail
from ...style import heading

#: One colour (:data:`diffusion_gui.gui.plots.COLORS`: blue, orange, green, purple, black) and
#: one dash (overlays) per schedule; never the cursor's colour.
SCHEDULE_COLORS = {"linear": "#0072B2", "scaled_linear": "#E69F00", "quadratic": "#009E73",
                   "cosine": "#CC79A7", "sigmoid": "#222222"}
SCHEDULE_DASHES = {"linear": [10, 4], "scaled_linear": Qt.DotLine, "quadratic": Qt.DashDotLine,
                   "cosine": Qt.DashLine, "sigmoid": Qt.DashDotDotLine}   # a list: a dash pattern
CURSOR_COLOR = "#D55E00"
HIST_Y_MAX = 1.0
CHAIN_ROW_HEIGHT = 16
_NO_MAX = 16777215                       # QWIDGETSIZE_MAX: no cap
PLOT_KEYS = ("beta", "abar", "snr")


# ----------------------------------------------------------------------------- labels
def small_label(text: str = "") -> QLabel:
    """A one-line centred rich-text label of fixed height (new text never re-lays out)."""
    lab = QLabel(text)
    lab.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
    lab.setTextFormat(Qt.RichText)
    lab.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    lab.setFixedHeight(lab.fontMetrics().height() + 4)
    return lab


def formula_label() -> QLabel:
    """The boxed two-line read-out under the slider (fixed height)."""
    lab = QLabel()
    lab.setTextFormat(Qt.RichText)
    lab.setAlignment(Qt.AlignLeft | Qt.AlignVCenter)
    lab.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    f = lab.font()
    f.setPointSizeF(f.pointSizeF() * 1.35)
    lab.setFont(f)
    # fixed heights: a new text must never re-layout the window (that repaints all of it)
    lab.setFixedHeight(int(lab.fontMetrics().height() * 3.4))
    lab.setStyleSheet("QLabel { background: #f7f7f4; border: 1px solid #ddd; "
                      "border-radius: 6px; padding: 6px 12px; }")
    return lab


def formula_html(r: dict, t: int, T: int, schedule_name: str) -> str:
    """The read-out at the paper's ``t`` from :meth:`ForwardMath.readout` numbers ``r``."""
    a, b = r["a"], r["b"]

    def nz(v, d=4):
        return "&mdash;" if isinstance(v, float) and math.isnan(v) else num_html(v, d)

    snr_db = r["snr_db"]
    snr_txt = "+&infin;" if math.isinf(snr_db) else f"{snr_db:+.1f}".replace("-", "&minus;")
    line1 = (f"<b>x<sub>{t}</sub></b> = <b style='color:#0072B2'>{a:.3f}</b>&middot;x<sub>0</sub>"
             f" + <b style='color:#D55E00'>{b:.3f}</b>&middot;{EPS}"
             f"&nbsp;&nbsp;&nbsp;<span style='color:#555'>(t = {t} of T = {T}, "
             f"{schedule_name})</span>")
    line2 = (f"&beta;<sub>t</sub> = {nz(r['beta'])} &nbsp;&nbsp; &alpha;<sub>t</sub> = {nz(r['alpha'])} "
             f"&nbsp;&nbsp; {ABAR}<sub>t</sub> = {nz(r['abar'])} &nbsp;&nbsp; "
             f"&radic;{ABAR}<sub>t</sub> = {a:.4f} &nbsp;&nbsp; "
             f"&radic;(1&minus;{ABAR}<sub>t</sub>) = {b:.4f} &nbsp;&nbsp; "
             f"SNR = {snr_txt} dB")
    return f"{line1}<br><span style='font-size:small'>{line2}</span>"


def stats_html(mean: float, std: float, theory: tuple[float, float] | None = None,
               note: str = "") -> str:
    """``mean .. std ..`` of an x_t, with the theory's pair and a note when given."""
    text = f"mean {num_html(mean, 3)} &nbsp; std {num_html(std, 3)}"
    if theory is not None:
        text += (f" &nbsp; <span style='color:#777'>(theory {num_html(theory[0], 3)}, "
                 f"{num_html(theory[1], 3)})</span>")
    return text + note


# ----------------------------------------------------------------------------- the two x_t
class XtColumns(QWidget):
    """The closed-form x_t (``view_xt``, ``stats_xt``) and the step-by-step x_t
    (``view_chain``, ``stats_chain``, and the chain's ``chain_progress`` bar beside its
    ``chain_memory`` note) side by side, each under a heading, at the top of the space they get."""

    def __init__(self, parent=None):
        super().__init__(parent)
        # crisp integer zoom for small images at large zoom factors (a 16 px digit stays sharp
        # squares), smooth fractional scaling for photos that an integer zoom would leave small
        self.view_xt = ImageView(min_size=160, smooth="auto", fit_height=True)
        self.view_chain = ImageView(min_size=160, smooth="auto", fit_height=True)
        self.view_xt.set_placeholder("Open an image (Ctrl+O) or drop one here")
        self.head_xt = heading(f"<b>x<sub>t</sub></b> in closed form &nbsp;<span style='color:#555'>"
                               f"&radic;{ABAR}<sub>t</sub>&thinsp;x<sub>0</sub> + "
                               f"&radic;(1&minus;{ABAR}<sub>t</sub>)&thinsp;{EPS}</span>")
        self.head_chain = heading("<b>x<sub>t</sub></b> step by step &nbsp;<span style='color:#555'>"
                                  "t draws of q(x<sub>s</sub> | x<sub>s&minus;1</sub>)</span>")
        self.stats_xt = small_label()
        self.stats_chain = small_label()
        self._shown = None                 # (cache ref, t, min(t, done)) last drawn by show_chain
        images = QHBoxLayout(self)
        images.setContentsMargins(0, 0, 0, 0)
        images.setSpacing(14)
        for h, v, st, foot in ((self.head_xt, self.view_xt, self.stats_xt, None),
                               (self.head_chain, self.view_chain, self.stats_chain,
                                self._chain_row())):
            h.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)     # bounded: see below
            col = QVBoxLayout()
            col.setSpacing(2)
            col.addWidget(h)
            col.addWidget(v, 40)
            col.addWidget(st)
            if foot is None:
                col.addSpacing(CHAIN_ROW_HEIGHT)     # both image columns keep the same height
            else:
                col.addLayout(foot)
            images.addLayout(col, 1)
        # as tall as the pictures need and no taller (ImageView's fit_height caps each view at
        # its picture's height for its width): the panel puts the spare height at the bottom,
        # never in a band above the pictures
        self._col_spacing = col.spacing()
        for v in (self.view_xt, self.view_chain):
            v.installEventFilter(self)

    def eventFilter(self, obj, ev):
        """A resized view may have changed its height cap (after this filter has run)."""
        if ev.type() == QEvent.Resize:
            QTimer.singleShot(0, self._recap)
        return False

    def event(self, ev):
        if ev.type() == QEvent.LayoutRequest:         # e.g. a new picture, a new cap
            QTimer.singleShot(0, self._recap)
        return super().event(ev)

    def _recap(self):
        """Cap this widget's height at the tallest shown picture's cap plus the labels around
        it (no cap without a picture). Done here, not by the layout: a view without a picture
        (the chain, before it starts) has no cap, and Qt drops a cap set during a layout pass."""
        caps = [v.maximumHeight() for v in (self.view_xt, self.view_chain) if v.image() is not None]
        if not caps:
            cap = _NO_MAX
        else:
            chrome = (self.head_xt.sizeHint().height() + self.stats_xt.height()
                      + CHAIN_ROW_HEIGHT + 3 * self._col_spacing)
            cap = max(caps) + chrome
        if cap != self.maximumHeight():
            self.setMaximumHeight(cap)

    def _chain_row(self) -> QHBoxLayout:
        """The chain's progress bar (hidden when done, its place kept) and its memory note."""
        self.chain_progress = p = QProgressBar()
        p.setTextVisible(True)
        p.setFormat("chaining q_step: %v / %m")
        p.setFixedHeight(CHAIN_ROW_HEIGHT)
        sp = p.sizePolicy()
        sp.setRetainSizeWhenHidden(True)
        p.setSizePolicy(sp)
        p.setVisible(False)
        self.chain_memory = m = QLabel()
        m.setStyleSheet("color: #666;")
        m.setFixedHeight(CHAIN_ROW_HEIGHT)
        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(p, 1)
        row.addWidget(m)
        return row

    def show_memory(self, c):
        """The memory the chain ``c`` keeps (a ChainCache, or None: nothing)."""
        short, detail = c.memory_note() if c is not None else ("", "")
        self.chain_memory.setText(short)
        self.chain_memory.setToolTip(detail)

    def show_chain(self, c, t: int, done: int | None = None):
        """The chain's x_t (a :class:`~diffusion_gui.sessions.forward.ChainCache` or None) at
        ``t``, as computed up to ``done`` (default ``c.done``; the caller passes the value its
        progress bar shows): the kept step at or below ``min(t, done)``, and what is known of
        it so far. Redraws only when that changes."""
        done = -1 if c is None else (c.done if done is None else min(int(done), c.done))
        key = (None if c is None else weakref.ref(c), t, min(t, done))   # holds no frames
        if key == self._shown:
            return
        self._shown = key
        if done < 0:
            self.view_chain.set_image(None)
            self.view_chain.set_placeholder("chaining q_step\u2026")
            self.stats_chain.setText("")
            return
        k = c.slot(min(t, done))
        shown, frame = c.ts[k], c.frames[k]
        self.view_chain.set_image(frame)
        if t > done:
            self.stats_chain.setText(f"<span style='color:#a60'>computed up to t = {done} "
                                     f"so far</span>")
            return
        note = ""
        if shown != t:
            note = (f" &nbsp;<span style='color:#a60'>(shows t = {shown}; every {c.stride}th "
                    f"step kept at this size)</span>")
        self.stats_chain.setText(stats_html(c.mean[t], c.std[t], note=note))


# ----------------------------------------------------------------------------- filmstrip
class Filmstrip(QFrame):
    """``FILM_FRAMES`` thumbnails of x_t at evenly spaced t; a click emits ``t_clicked(t)``."""

    t_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setSpacing(6)
        row.setContentsMargins(0, 0, 0, 0)
        self.frames: list[Thumbnail] = []
        for _ in range(FILM_FRAMES):
            fr = Thumbnail(key=0, outline=CURSOR_COLOR, size_hint=(110, 120), min_size=64,
                           smooth="auto", fill=True)          # fr.key: its t
            fr.clicked.connect(self.t_clicked)
            self.frames.append(fr)
            row.addWidget(fr, 1)
        self.setMinimumHeight(96)
        self.setMaximumHeight(190)
        self.ts: list[int] = []

    def show_frames(self, ts: list[int], frame_at):
        """Show ``frame_at(t)`` (uint8 ``[H, W, C]``) for each ``t`` of ``ts``."""
        self.ts = list(ts)
        for fr, ft in zip(self.frames, self.ts):
            fr.key = ft
            fr.set_image(frame_at(ft))
            fr.set_caption("t = 0  (x\u2080)" if ft == 0 else f"t = {ft}")

    def highlight(self, t: int):
        """Outline the frame nearest to ``t``."""
        if self.ts:
            k = int(np.argmin([abs(ft - t) for ft in self.ts]))
            for j, fr in enumerate(self.frames):
                fr.set_current(j == k)


# ----------------------------------------------------------------------------- schedule plots
class SchedulePlots(QWidget):
    """beta_t (log), abar_t and SNR_t of the current schedule, other schedules overlaid dashed,
    a t cursor on each. ``t_picked(t)``: a click or drag on a plot; ``overlays_changed``."""

    t_picked = Signal(int)
    overlays_changed = Signal()

    def __init__(self, T: int, parent=None):
        super().__init__(parent)
        from ... import plots
        self.overlay_checks: dict[str, QCheckBox] = {}
        self._overlay_row = self._build_overlays()
        self.plots = {
            "beta": plots.make_plot("", "t", "β<sub>t</sub> (log)", log_y=True),
            "abar": plots.make_plot("", "t", f"{ABAR}<sub>t</sub>"),
            "snr": plots.make_plot("", "t", "SNR (dB)"),
        }
        self.plots["beta"].getPlotItem().setLabel("left", "β<sub>t</sub> (log)")
        self.plots["snr"].getPlotItem().setLabel("left", "SNR<sub>t</sub> (dB)")
        self.plots["abar"].setYRange(0, 1.02, padding=0)
        for p in self.plots.values():
            p.getPlotItem().setLabel("bottom", "")
        self.plots["snr"].getPlotItem().setLabel("bottom", "t", color="#222", **{"font-size": "12pt"})
        self.plots["abar"].setXLink(self.plots["snr"])
        self.plots["beta"].setXLink(self.plots["snr"])
        self.cursors = {}
        for k, p in self.plots.items():
            c = plots.TCursor(p, 0, T, color=CURSOR_COLOR)
            c.t_picked.connect(self.t_picked)
            self.cursors[k] = c
        self.curves: dict[tuple[str, str], object] = {}
        for name in SCHEDULES:
            for k, p in self.plots.items():
                item = p.plot([], [], pen=plots.pen(SCHEDULE_COLORS[name], 2.5), connect="finite")
                item.setVisible(False)
                self.curves[(k, name)] = item
        for p in self.plots.values():
            plots.cache_items(p)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(QLabel("<b>Noise schedule</b> &nbsp;<span style='color:#666'>"
                             "click or drag a plot to set t</span>"))
        lay.addLayout(self._overlay_row)
        for k in PLOT_KEYS:
            lay.addWidget(self.plots[k], 2)

    def _build_overlays(self) -> QGridLayout:
        row = QGridLayout()
        row.setHorizontalSpacing(10)
        row.setVerticalSpacing(0)
        row.addWidget(QLabel("Compare:"), 0, 0)
        for k, name in enumerate(SCHEDULES):
            cb = QCheckBox(name)
            cb.setStyleSheet(f"QCheckBox {{ color: {SCHEDULE_COLORS[name]}; font-weight: 600; }}")
            cb.setToolTip(f"Overlay the {name} schedule (dashed)")
            cb.toggled.connect(self.overlays_changed)
            self.overlay_checks[name] = cb
            row.addWidget(cb, k // 3, 1 + k % 3)
        row.setColumnStretch(4, 1)
        return row

    def overlays(self) -> tuple[str, ...]:
        return tuple(n for n, cb in self.overlay_checks.items() if cb.isChecked())

    def set_overlays(self, names):
        for n, cb in self.overlay_checks.items():
            cb.setChecked(n in names)

    def set_current(self, name: str, T: int):
        """The current schedule (its overlay box disabled) and the t range ``0..T``."""
        for n, cb in self.overlay_checks.items():
            cb.setEnabled(n != name)
        for c in self.cursors.values():
            c.set_range(0, T)

    def set_t(self, t: int):
        for c in self.cursors.values():
            c.set_t(t)

    def show_schedules(self, current: str, T: int, schedule_for, t: int):
        """Draw the curves: ``schedule_for(name, T)`` -> a NoiseSchedule."""
        from ... import plots
        ts = np.arange(1, T + 1)
        for name in SCHEDULES:
            show = name == current or self.overlay_checks[name].isChecked()
            for k in self.plots:
                item = self.curves[(k, name)]
                item.setVisible(show)
                if not show:
                    continue
                item.setData(ts, _curve(schedule_for(name, T), k), connect="finite")
                if name == current:
                    item.setPen(plots.pen(SCHEDULE_COLORS[name], 3.0))
                    item.setZValue(10)
                else:
                    item.setPen(overlay_pen(name))
                    item.setZValue(1)
        for p in self.plots.values():
            p.setXRange(0, T, padding=0.02)
            p.enableAutoRange(axis="y")
        self.plots["abar"].setYRange(0, 1.02, padding=0)
        self.set_current(current, T)
        self.set_t(t)


def overlay_pen(name: str):
    """The pen of schedule ``name`` overlaid on the current one: its colour, its dash."""
    from ... import plots
    p = plots.pen(SCHEDULE_COLORS[name], 2.0, dashed=True, alpha=190)
    dash = SCHEDULE_DASHES[name]
    if isinstance(dash, list):
        p.setDashPattern(dash)
    else:
        p.setStyle(dash)
    return p


def _curve(s, key: str) -> np.ndarray:
    """The ``[T]`` values of plot ``key`` for schedule ``s`` (NaN where not finite)."""
    if key == "beta":
        return s.betas.numpy()
    if key == "abar":
        return s.alpha_bars.numpy()
    y = s.snr_db.numpy().copy()
    y[~np.isfinite(y)] = np.nan
    return y


def x0_info_html(shape_hwc, mean: float, std: float) -> str:
    """``x_0: 256x171 px, RGB, mean .., std ..`` for the controls bar."""
    h, w, c = shape_hwc
    return (f"x<sub>0</sub>: {w}\u00d7{h} px, {'RGB' if c == 3 else 'grey'}, "
            f"mean {num_html(mean, 3)}, std {num_html(std, 3)}")


class PlotsColumn(QWidget):
    """The right column: ``schedule`` (:class:`SchedulePlots`) over ``tabs``: the pixel
    ``histogram`` (:class:`HistogramView`) and the power ``spectrum``
    (:class:`~.spectrum.ForwardSpectrumView`)."""

    def __init__(self, T: int, parent=None):
        super().__init__(parent)
        from PySide6.QtWidgets import QTabWidget

        from .spectrum import ForwardSpectrumView
        self.schedule = SchedulePlots(T)
        self.histogram = HistogramView()
        self.spectrum = ForwardSpectrumView()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.histogram, "Pixel histogram")
        self.tabs.addTab(self.spectrum, "Power spectrum")
        rv = QVBoxLayout(self)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.setSpacing(4)
        rv.addWidget(self.schedule, 6)
        rv.addWidget(self.tabs, 3)


# ----------------------------------------------------------------------------- histogram
class HistogramView(QWidget):
    """Pixel histogram of x_t: closed form (filled), step by step, and the N(0, 1) density.
    ``plot``, ``closed``, ``chain``: the plot widget and its two curves."""

    def __init__(self, parent=None):
        super().__init__(parent)
        from ... import plots
        self.plot = hp = plots.make_plot("", "pixel value of x<sub>t</sub>", "density")
        hp.setXRange(-HIST_RANGE, HIST_RANGE, padding=0)
        hp.setYRange(0, HIST_Y_MAX, padding=0)
        self._ymax = HIST_Y_MAX
        e = hist_edges()
        self.closed = hp.plot(e, np.zeros(HIST_BINS), stepMode="center", fillLevel=0,
                              brush=(0, 114, 178, 90), pen=plots.pen("#0072B2", 1.5),
                              name="closed form")
        self.chain = hp.plot(e, np.zeros(HIST_BINS), stepMode="center",
                             pen=plots.pen("#E69F00", 2.0), name="step by step")
        xs = np.linspace(-HIST_RANGE, HIST_RANGE, 400)
        hp.plot(xs, np.exp(-0.5 * xs ** 2) / math.sqrt(2 * math.pi),
                pen=plots.pen("#222222", 2.0, dashed=True), name="N(0, 1)")
        plots.cache_items(hp)
        head = QLabel("<b>Pixel histogram of x<sub>t</sub></b> &nbsp; "
                      "<span style='color:#0072B2'>&#9632; closed form</span> &nbsp; "
                      "<span style='color:#E69F00'><b>&mdash;</b> step by step</span> &nbsp; "
                      "<span style='color:#222'><b>- -</b> N(0, 1) density</span>")
        head.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(head)
        lay.addWidget(hp, 1)

    def show_densities(self, closed: np.ndarray, chain: np.ndarray):
        """Densities ``[HIST_BINS]`` of the closed form and the chain (zeros: not yet known)."""
        self.closed.setData(hist_edges(), closed, stepMode="center", fillLevel=0)
        self.chain.setData(hist_edges(), chain, stepMode="center")
        self._fit_y(max(float(closed.max()), float(chain.max())))

    def _fit_y(self, peak: float):
        """Rescale the y axis only on a large change (no jitter while scrubbing)."""
        target = min(max(1.12 * peak, 0.45), 4.0)
        if abs(target - self._ymax) / self._ymax > 0.25:
            self._ymax = target
            self.plot.setYRange(0, target, padding=0)
