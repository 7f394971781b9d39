"""The loss panel: where the variational bound spends its bits, timestep by timestep.

A view over :mod:`diffusion_gui.sessions.losses`: it scores the current image (the forward
panel's, at the model's size and channels), N held-out real digits, or a freshly generated
sample, by running :func:`~diffusion_gui.sessions.losses.loss_generator` -- the same
``vlb_terms`` generator ``diffusion-gui vlb`` exhausts -- in its one :class:`JobSlot`, and draws
the partial and the complete result (:mod:`.views`) with a summary and a read-out (:mod:`.text`).

Timesteps are the paper's ``t`` (1..T) everywhere on screen; the cursor is the forward panel's t
(``ctx.forward_t``): dragging it or clicking a plot calls ``ctx.set_forward_t``.
"""
from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ....export.atomic import write_text_atomic
from ....models.examples import heldout_kind, plural
from ....sessions.losses import T_BATCH, LossSettings, loss_generator, loss_payload, result_csv, run_label
from ... import settings_io
from ...cost_line import CostLine
from ...image_view import ImageView
from ...plots import export_plot_widget, grab_rgb
from ...workers import JobSlot
from .text import readout_html, summary_html
from .views import LossPlots

SOURCE_TEXT = {"image": "Forward panel image", "digits": "Held-out real digits",
               "sample": "Generated sample (DDPM)"}
NO_MODEL = ("<b>No model loaded.</b><br><br>The loss panel scores images with a diffusion "
            "model.<br>Load one with <i>File ▸ Built-in models</i> or <i>File ▸ Open model "
            "folder…</i> (a diffusers DDPM folder).")


def _spin(lo: int, hi: int, value: int, prefix: str, tip: str, suffix: str = "") -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    s.setPrefix(prefix)
    s.setSuffix(suffix)
    s.setToolTip(tip)
    return s


class LossPanel(LossPlots, QWidget):
    """Per-timestep terms of the variational bound, the training losses, and where the bits go."""

    title = "Losses"

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.jobs = JobSlot(memory_hint="score fewer digits")
        self.result = None            # the last complete VLBResult (numpy only)
        self.result_model = None      # the model it belongs to
        self.kind = "digit"           # the noun of the model's held-out examples
        self.result_label = ""        # what was scored, in words
        self.result_thumb = None      # uint8 grid of the image(s) scored
        self._running = False
        self._partial = None          # the running job's last "bound" payload
        self._run = None              # (model, label) of the running job
        self._build()
        self._wire()
        self._model_changed()
        self._image_changed()
        self._set_cursor(ctx.forward_t)

    # ------------------------------------------------------------ building
    def _build(self):
        self.setStyleSheet("QCheckBox, QPushButton, QSpinBox, QComboBox, QLabel { font-size: 11pt; }")
        root = QVBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        root.setSpacing(6)
        root.addLayout(self._build_controls())
        self.stack = QStackedWidget()
        root.addWidget(self.stack, 1)
        self.hint = QLabel()
        self.hint.setAlignment(Qt.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setTextFormat(Qt.RichText)
        self.hint.setStyleSheet("font-size: 15pt; color: #555;")
        self.stack.addWidget(self.hint)
        page = QSplitter(Qt.Horizontal)
        page.setChildrenCollapsible(False)
        page.addWidget(self._build_plots())
        page.addWidget(self._build_side())
        page.setStretchFactor(0, 4)
        page.setStretchFactor(1, 1)
        self.stack.addWidget(page)
        self._proxies = [pg.SignalProxy(p.scene().sigMouseMoved, rateLimit=30,
                                        slot=lambda ev, p=p: self._hover(p, ev[0]))
                         for p in self.plot_widgets().values()]
        self._show_summary()

    def _build_controls(self) -> QHBoxLayout:
        d = LossSettings()
        self.source_combo = QComboBox()
        for key, text in SOURCE_TEXT.items():
            self.source_combo.addItem(text, key)
        self.source_combo.setToolTip("What to score: the forward panel's image resized to the "
                                     "model, N held-out digits (averaged), or a new DDPM sample")
        self.digits_spin = _spin(1, 200, d.digits, "N = ", "How many held-out digits (never seen "
                                 "in training) to average over")
        self.seed_spin = _spin(0, 2 ** 31 - 1, d.seed, "seed ", "Seeds the noise ε of every x_t "
                               "(and the generated sample)")
        self.stride_spin = _spin(1, 1000, d.stride, "every ", "Evaluate every k-th timestep for a "
                                 "quick preview (plus t = 1, 2, T); the skipped KL terms are "
                                 "interpolated. 1 = the exact bound.", suffix=" t")
        self.log_check = QCheckBox("log y")
        self.log_check.setChecked(d.log_y)
        self.log_check.setToolTip("Logarithmic y axis for the terms and the MSEs")
        self.compute_btn = QPushButton("Compute")
        self.compute_btn.setDefault(True)
        self.compute_btn.setToolTip("Evaluate every term of the bound in the background")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setMinimumWidth(160)
        self.progress.setVisible(False)
        bar = QHBoxLayout()
        bar.setSpacing(8)
        for w in (QLabel("Score:"), self.source_combo, self.digits_spin, self.seed_spin,
                  self.stride_spin, self.log_check, self.compute_btn, self.cancel_btn):
            bar.addWidget(w)
        bar.addWidget(self.progress, 1)
        self.bar_spacer = QWidget()
        bar.addWidget(self.bar_spacer, 1)
        return bar

    def _build_side(self) -> QFrame:
        side = QFrame()
        side.setFrameShape(QFrame.StyledPanel)
        side.setMinimumWidth(280)
        side.setMaximumWidth(420)
        sl = QVBoxLayout(side)
        sl.setContentsMargins(10, 10, 10, 10)
        self.thumb = ImageView(min_size=112, caption="")
        self.thumb.set_placeholder("the image(s) scored appear here")
        self.thumb.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.thumb.setFixedHeight(170)
        sl.addWidget(self.thumb)
        self.cost_label = QLabel()
        self.cost_label.setTextFormat(Qt.RichText)
        self.cost_label.setWordWrap(True)
        self.cost_label.setToolTip("The bound's duration as set up, from one network call timed "
                                   "on this device when the model loaded")
        sl.addWidget(self.cost_label)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.RichText)
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        sl.addWidget(self.summary, 1)
        return side

    def _wire(self):
        self.compute_btn.clicked.connect(self.compute)
        self.cancel_btn.clicked.connect(self.cancel)
        self.log_check.toggled.connect(self._set_log)
        self.source_combo.currentIndexChanged.connect(self._source_changed)
        self.ctx.model_changed.connect(self._model_changed)
        self.ctx.image_changed.connect(self._image_changed)
        self.ctx.forward_t_changed.connect(self._set_cursor)
        self.cost = CostLine(self, self.cost_label, self._cost_plan,
                             (self.source_combo.currentIndexChanged, self.digits_spin.valueChanged,
                              self.stride_spin.valueChanged))
        self._source_changed()

    # ------------------------------------------------------------ state from the context
    def _model_changed(self):
        m = self.ctx.model
        if m is None:
            self.hint.setText(NO_MODEL)
            self.stack.setCurrentIndex(0)
            self._update_enabled()
            return
        self.stack.setCurrentIndex(1)
        self.kind = heldout_kind(m)        # the model's own data: digits, emoji...
        self.source_combo.setItemText(self.source_combo.findData("digits"), f"Held-out real {plural(self.kind)}")
        T = m.num_timesteps
        self.stride_spin.setMaximum(max(1, T - 1))
        for c in self.cursors:
            c.set_range(0, T)
        if self.result_model is not None and m is not self.result_model:
            self.cancel()
            self._clear_plots()
            self.thumb.set_image(None)
            self.result = self.result_model = None
            self._show_summary(note=f"Model changed to <b>{m.name}</b>: press <b>Compute</b>.")
        elif self.result is None and not self._running:
            self._show_summary()
        self.terms_plot.setXRange(0, T, padding=0.02)
        self._update_enabled()

    def _image_changed(self):
        item = self.source_combo.model().item(0)
        has = self.ctx.image is not None
        item.setEnabled(has)
        item.setToolTip("" if has else "Open an image in the forward panel first")
        if not has and self.source_combo.currentIndex() == 0:
            self.source_combo.setCurrentIndex(1)
        if has and self.result is not None and self.result_label.startswith("image"):
            self._show_summary(note="The image changed: press <b>Compute</b> to score it.")
        self._update_enabled()

    def _source_changed(self, *_):
        self.digits_spin.setVisible(self.source_combo.currentData() == "digits")
        self._update_enabled()

    def _update_enabled(self):
        ok = self.ctx.model is not None and not self._running
        if self.source_combo.currentData() == "image" and self.ctx.image is None:
            ok = False
        self.compute_btn.setEnabled(ok)
        self.cancel_btn.setEnabled(self._running)
        for w in (self.source_combo, self.digits_spin, self.seed_spin, self.stride_spin):
            w.setEnabled(not self._running)

    # ------------------------------------------------------------ running
    def compute(self):
        """Start the bound for the chosen source (no-op without a model or while running)."""
        model = self.ctx.model
        if model is None or self._running:
            return False
        src = self.source_combo.currentData()
        image = None if self.ctx.image is None else self.ctx.image.copy()
        if src == "image" and image is None:
            self.ctx.error.emit("Nothing to score", "open an image first, or choose held-out digits")
            return False
        n, stride, seed = self.digits_spin.value(), self.stride_spin.value(), self.seed_spin.value()
        device, dtype = self.ctx.device_name, self.ctx.dtype_name
        label = run_label(src, n, seed, self.kind)
        self._running, self._run, self._partial = True, (model, label), None
        self._show_progress(0, 0 if src == "sample" else 1, "starting…")
        self._clear_plots()
        every = f" (every {stride} t)" if stride > 1 else ""
        self._show_summary(note=f"Computing the bound of {label}{every}…")
        self._update_enabled()
        self.jobs.start(
            lambda: loss_generator(model, src, image=image, n_digits=n, stride=stride, seed=seed,
                                   device=device, dtype=dtype),
            loss_payload, on_progress=self._progress, on_finished=self._finished,
            on_failed=self._failed, on_cancelled=self._cancelled, max_rate=12)
        return True

    def cancel(self):
        """Stop the running computation (non-blocking); the previous result comes back."""
        if not self._running:
            return
        self.jobs.cancel()            # it stops after the current UNet call; shutdown() joins
        self._end_run()               # its late signals find the panel idle and are dropped
        self._restore_previous(note="Cancelled.")

    def is_running(self) -> bool:
        return self._running

    @property
    def _job(self):
        """The current (or last) job of the slot."""
        return self.jobs.job

    def _show_progress(self, done: int, total: int, text: str):
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(text)
        self.progress.setVisible(bool(text))
        self.bar_spacer.setVisible(not text)

    def is_active(self) -> bool:
        return self._running

    def _cost_plan(self):
        """``(rows, cost_of)`` of the bound as set up (:class:`~...cost_line.CostLine`)."""
        from ....sessions.cost import bound_calls, bound_cost
        T, stride = self.ctx.model.num_timesteps, self.stride_spin.value()
        n = self.digits_spin.value() if self.source_combo.currentData() == "digits" else 1
        return (bound_calls(T, stride, n, T_BATCH)[1],
                lambda timing: bound_cost(timing, T, stride, n, T_BATCH))

    def _end_run(self):
        self._running, self._run = False, None
        self.cost.refresh()
        self._show_progress(0, 1, "")
        self._update_enabled()

    def _progress(self, p):
        if not self._running:
            return
        self.thumb.set_image(p["thumb"])
        total = max(1, p["total"])
        if p["stage"] == "sample":
            self._show_progress(p["done"], total, f"sampling x₀: step {p['done']}/{p['total']}")
            return
        self._partial = p
        self._show_progress(p["done"], total, f"bound: {p['done']}/{p['total']} timesteps")
        self._plot_terms(p["t"], p["vb_bpd"], p["eps_mse"], p["x0_mse"])

    def _finished(self, p):
        if not self._running:
            return
        model, label = self._run
        self._end_run()
        if p is None or p.get("result") is None:
            self._restore_previous(note="The computation ended without a result.")
            return
        self.result, self.result_model, self.result_label = p["result"], model, label
        self.result_thumb = p["thumb"]
        self._show_result()
        self.ctx.status.emit(f"Bound of {label}: {self.result.total_bpd:.4f} bits/dim")

    def _failed(self, msg):
        if not self._running:
            return
        self._end_run()
        self._restore_previous(note="The computation failed.")
        self.ctx.error.emit("Loss computation failed", msg)

    def _cancelled(self):
        if self._running:
            self._end_run()
            self._restore_previous(note="Cancelled.")

    def _restore_previous(self, note=""):
        if self.result is not None:
            self._show_result(note=note)
        else:
            self._clear_plots()
            self._show_summary(note=note)

    def _show_result(self, note=""):
        self.thumb.set_image(self.result_thumb)
        self._plot_result(self.result)
        self._show_summary(note=note)
        self._set_cursor(self.ctx.forward_t)

    def _show_summary(self, note=""):
        self.summary.setText(summary_html(self.result, self.result_label, note))

    # ------------------------------------------------------------ cursor and read-out
    def _set_cursor(self, t: int):
        for c in self.cursors:
            c.set_t(int(t))
        self._readout(int(t), cursor=True)

    def _cursor_picked(self, t: int):
        self.ctx.set_forward_t(int(t))
        self._set_cursor(int(t))     # also when ctx.forward_t was already t

    def cursor_t(self) -> int:
        return int(round(self.cursors[0].line.value()))

    def _hover(self, plot, pos):
        vb = plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(pos):
            self._readout(self.cursor_t(), cursor=True)
            return
        self._readout(int(round(vb.mapSceneToView(pos).x())), cursor=False)

    def _readout(self, t: int, cursor: bool):
        arrays = None
        if self.result is not None:
            r = self.result
            arrays = (r.t, r.vb_bpd, r.eps_mse, r.x0_mse)
        elif self._partial is not None and self._running:
            p = self._partial
            arrays = (p["t"], p["vb_bpd"], p["eps_mse"], p["x0_mse"])
        self.readout.setText(readout_html(t, cursor, arrays))

    # ------------------------------------------------------------ panel contract
    def shutdown(self):
        """Cancel and join every computation this panel started."""
        self.jobs.shutdown()
        self.cost.shutdown()
        self._running = False

    def current_settings(self) -> LossSettings:
        """What the controls show, as the panel's settings."""
        return LossSettings(source=self.source_combo.currentData(), digits=self.digits_spin.value(),
                            seed=self.seed_spin.value(), stride=self.stride_spin.value(),
                            log_y=self.log_check.isChecked())

    def save_settings(self, settings):
        settings_io.save(settings, self.current_settings())

    def restore_settings(self, settings):
        cfg = settings_io.load(settings, LossSettings)
        i = self.source_combo.findData(cfg.source)
        if i >= 0 and self.source_combo.model().item(i).isEnabled():
            self.source_combo.setCurrentIndex(i)
        self.digits_spin.setValue(cfg.digits)
        self.seed_spin.setValue(cfg.seed)
        self.stride_spin.setValue(cfg.stride)      # the spin box clamps it to T - 1
        self.log_check.setChecked(cfg.log_y)

    def export_sources(self):
        """For the Export dialog: the four plots as one picture, each plot as PNG / SVG / CSV
        (pyqtgraph's exporters), and the full result table as CSV."""
        from ...export_sources import FramesSource, PlotSource
        out = [FramesSource("Loss: all four plots (picture)", fn=lambda: [grab_rgb(self.plots_widget)],
                            name="loss-plots")]
        for key, label in (("terms", "Loss: terms of the bound at each t"),
                           ("mse", "Loss: training losses (MSE)"),
                           ("cumulative", "Loss: cumulative bound"),
                           ("share", "Loss: share of the bound per tenth of t")):
            out.append(PlotSource(label, self.plot_widgets()[key], name=f"loss-{key}"))
        if self.result is not None:
            out.append(PlotSource("Loss: result table (t, vb_bpd, eps_mse, x0_mse, weight)",
                                  self.terms_plot, csv=self.export_csv, formats=("csv",),
                                  name="loss-table"))
        return out

    def export_plot(self, fmt_: str, path, which: str = "terms", width: int | None = None) -> Path:
        """Write a plot through pyqtgraph's exporters: ``fmt_`` png / svg / csv; ``which`` one of
        terms, mse, cumulative, share. ``which="all"`` with csv writes the full result table
        (the columns of ``diffusion-gui vlb``: t, vb_bpd, eps_mse, x0_mse, plus weight)."""
        if which == "all":
            if fmt_.lower().lstrip(".") != "csv":
                raise ValueError("which='all' is exported as csv only")
            return self.export_csv(path)
        return export_plot_widget(self.plot_widgets()[which], fmt_, path, width=width)

    def export_csv(self, path) -> Path:
        """The last result as CSV (atomic): t, vb_bpd, eps_mse, x0_mse, weight."""
        if self.result is None:
            raise ValueError("nothing computed yet")
        return write_text_atomic(Path(path), result_csv(self.result))
