"""The loss panel: where the variational bound spends its bits, timestep by timestep.

For the current image (the forward panel's image at the model's size and channels), N held-out
real digits, or a freshly generated sample, every term of the bound (Ho et al. 2020, eq. 5)

    L = L_T + sum_{t=2}^{T} L_{t-1} + L_0            (bits/dim)

is computed by :func:`diffusion_gui.core.vlb.vlb_terms` in a background worker -- the same
generator ``diffusion-gui vlb`` exhausts -- together with the training losses L_simple (the eps
MSE) and the x_0 MSE. Several timesteps share one UNet call; a stride evaluates every k-th t for a
quick preview (the skipped KL terms are interpolated, see ``stride_weights``).

Timesteps are the paper's ``t`` (1..T) everywhere on screen; the cursor is the forward panel's t
(``ctx.forward_t``): dragging it or clicking a plot calls ``ctx.set_forward_t``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
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

from ..format import FORMULA_CSS, fmt  # noqa: F401
from ..image_view import ImageView
from ..plots import COLORS, TCursor, add_legend, export_plot_widget, grab_rgb, make_plot, pen, plain_axes, tidy_log_axis  # noqa: F401 - kl.py imports them from here
from ..workers import run_job

#: Timesteps x images stacked into one UNet call (``vlb_terms(t_batch=...)``): the CLI's value,
#: so the panel and ``diffusion-gui vlb`` give the same numbers to the last bit. See
#: benchmarks/vlb_speed.py: ~8x faster than one call per timestep on a laptop-class CPU.
T_BATCH = 32
N_BUCKETS = 10
SOURCES = [("image", "Forward panel image"), ("digits", "Held-out real digits"),
           ("sample", "Generated sample (DDPM)")]

# ---------------------------------------------------------------- shared small helpers
def _setting(settings, key, default, kind=int, lo=None, hi=None):
    """A QSettings value of type ``kind``, clamped to ``[lo, hi]``; ``default`` when missing or bad."""
    try:
        v = settings.value(key, default)
        if v is None:
            return default
        if kind is bool:
            v = v if isinstance(v, bool) else str(v).strip().lower() in ("1", "true", "yes", "on")
        else:
            v = kind(v)
            if kind is float and not math.isfinite(v):
                return default
    except (TypeError, ValueError):
        return default
    if lo is not None and v < lo:
        v = lo
    if hi is not None and v > hi:
        v = hi
    return v


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`diffusion_gui.export.atomic_path`):
    a failure leaves no partial file; raises ExportError with a one-line message."""
    from ...export import atomic_path
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def bucket_shares(result, n_buckets: int = N_BUCKETS):
    """Share (percent) of the total bound spent in each of ``n_buckets`` equal ranges of t.

    Each evaluated term counts with its stride weight in the bucket of its t; the decoder term
    L_0 (t = 1) falls in the first bucket, the prior L_T in the last. Returns
    ``(edges [n + 1], percent [n])`` with ``edges`` in the paper's t (bucket b covers
    ``edges[b] < t <= edges[b + 1]``).
    """
    T = int(result.timesteps)
    edges = np.linspace(0, T, n_buckets + 1)
    b = np.clip(np.searchsorted(edges, result.t, side="left") - 1, 0, n_buckets - 1)
    bits = np.bincount(b, weights=result.weights * result.vb_bpd, minlength=n_buckets)
    bits[-1] += result.prior_bpd
    total = float(bits.sum())
    pct = 100.0 * bits / total if total > 0 else np.zeros(n_buckets)
    return edges, pct


# ---------------------------------------------------------------- the worker's generator
def _image_to_x0(image: np.ndarray, size: int, channels: int):
    """uint8 ``[H, W, C]`` -> float tensor ``[1, channels, size, size]`` in [-1, 1] (centred
    square crop, Lanczos), the way ``diffusion-gui vlb IMAGE`` loads a file."""
    import torch
    from PIL import Image

    from ...core.images import resize_image, to_float_array
    a = np.asarray(image, dtype=np.uint8)
    im = Image.fromarray(a[:, :, 0] if a.ndim == 3 and a.shape[2] == 1 else a)
    im = im.convert("L" if channels == 1 else "RGB")
    return torch.from_numpy(to_float_array(resize_image(im, size=size)))[None]


def _thumb(x0) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] -> one uint8 grid of at most 16 images."""
    from ...core.images import tile, to_uint8
    return tile(to_uint8(x0[:16]), pad=1, pad_value=255)


def loss_generator(model, source: str, *, image=None, n_digits: int = 16, stride: int = 10,
                   seed: int = 0, t_batch: int = T_BATCH):
    """The loss panel's computation, run in the worker thread; pair it with :func:`loss_payload`.

    Yields ``("sample", StepOutput)`` while a generated sample is drawn (source ``"sample"``:
    ancestral DDPM, all T steps, seeded), then ``("bound", VLBProgress, x0)`` after every UNet
    call of :func:`diffusion_gui.core.vlb.vlb_terms` -- the generator ``diffusion-gui vlb``
    exhausts, with its noise drawn from ``torch.Generator().manual_seed(seed)`` as there.
    ``x0``: the ``[N, C, H, W]`` images scored, in [-1, 1].
    """
    import torch

    from ...commands import _vlb_images, make_sampler
    from ...core.images import to_float_array, to_uint8
    from ...core.vlb import vlb_terms
    if source == "image":
        if image is None:
            raise ValueError("open an image first (File ▸ Open image…), or choose another source")
        x0 = _image_to_x0(image, model.sample_size, model.in_channels)
    elif source == "digits":
        x0 = _vlb_images(model, None, int(n_digits)).float()
    elif source == "sample":
        gen, _ = make_sampler(model, sampler="ddpm", batch=1, seed=seed)
        x = None
        for so in gen:
            x = so.x_t
            yield ("sample", so)
        # the decoder scores 8-bit pixels: quantise the sample as a saved PNG would be
        x0 = torch.from_numpy(to_float_array(to_uint8(x[0])))[None]
    else:
        raise ValueError(f"unknown source {source!r}")
    g = torch.Generator().manual_seed(int(seed))
    for p in vlb_terms(model, model.diffusion, x0, stride=int(stride), t_batch=t_batch, generator=g):
        yield ("bound", p, x0)


def loss_payload(item) -> dict:
    """An item of :func:`loss_generator` as plain numpy for the GUI thread (runs in the worker).

    Keys: ``stage`` (``"sample"`` / ``"bound"``), ``done``, ``total``, ``thumb`` (uint8 grid of
    the image(s)); for the bound also the partial arrays ``t``, ``vb_bpd``, ``eps_mse``,
    ``x0_mse``, ``num_images`` and ``result`` (the numpy-only ``VLBResult`` at the end, else None).
    """
    if item[0] == "sample":
        so = item[1]
        return {"stage": "sample", "done": so.step, "total": so.num_steps, "thumb": _thumb(so.x_t),
                "result": None}
    _, p, x0 = item
    return {"stage": "bound", "done": p.done, "total": p.total, "thumb": _thumb(x0),
            "t": p.t, "vb_bpd": p.vb_bpd, "eps_mse": p.eps_mse, "x0_mse": p.x0_mse,
            "result": p.result, "num_images": int(x0.shape[0])}


# ---------------------------------------------------------------- the panel
class LossPanel(QWidget):
    """Per-timestep terms of the variational bound, the training losses, and where the bits go."""

    title = "Losses"

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.result = None            # the last complete VLBResult (numpy only)
        self.result_model = None      # the model it belongs to
        self.result_label = ""        # what was scored, in words
        self._job = None
        self._jobs = []
        self._token = 0               # increases per run; stale callbacks are dropped
        self._running = False
        self._partial = None
        self.result_thumb = None
        self._run_model = None
        self._run_label = ""
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

        bar = QHBoxLayout()
        bar.setSpacing(8)
        self.source_combo = QComboBox()
        for key, text in SOURCES:
            self.source_combo.addItem(text, key)
        self.source_combo.setToolTip("What to score: the forward panel's image resized to the "
                                     "model, N held-out digits (averaged), or a new DDPM sample")
        self.digits_spin = QSpinBox()
        self.digits_spin.setRange(1, 200)
        self.digits_spin.setValue(16)
        self.digits_spin.setPrefix("N = ")
        self.digits_spin.setToolTip("How many held-out digits (never seen in training) to average over")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2 ** 31 - 1)
        self.seed_spin.setPrefix("seed ")
        self.seed_spin.setToolTip("Seeds the noise ε of every x_t (and the generated sample)")
        self.stride_spin = QSpinBox()
        self.stride_spin.setRange(1, 1000)
        self.stride_spin.setValue(10)
        self.stride_spin.setPrefix("every ")
        self.stride_spin.setSuffix(" t")
        self.stride_spin.setToolTip("Evaluate every k-th timestep for a quick preview (plus t = 1, 2, T); "
                                    "the skipped KL terms are interpolated. 1 = the exact bound.")
        self.log_check = QCheckBox("log y")
        self.log_check.setChecked(True)
        self.log_check.setToolTip("Logarithmic y axis for the terms and the MSEs")
        self.compute_btn = QPushButton("Compute")
        self.compute_btn.setDefault(True)
        self.compute_btn.setToolTip("Evaluate every term of the bound in the background")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setMinimumWidth(160)
        self.progress.setVisible(False)
        for w in (QLabel("Score:"), self.source_combo, self.digits_spin, self.seed_spin,
                  self.stride_spin, self.log_check, self.compute_btn, self.cancel_btn):
            bar.addWidget(w)
        bar.addWidget(self.progress, 1)
        self.bar_spacer = QWidget()
        bar.addWidget(self.bar_spacer, 1)
        root.addLayout(bar)

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
        self.stack.addWidget(page)

        plots = QWidget()
        grid = QGridLayout(plots)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(6)
        self.plots_widget = plots
        self.terms_plot = make_plot("Terms of the bound at each t", "t", "bits / dim", log_y=True)
        self.mse_plot = make_plot(
            f"<span style='color:{COLORS['orange']}'><b>L<sub>simple</sub></b> = ‖ε − "
            f"ε<sub>θ</sub>(x<sub>t</sub>, t)‖²</span> &nbsp;and&nbsp; "
            f"<span style='color:{COLORS['purple']}'><b>‖x<sub>0</sub> − x<sub>0</sub><sup>θ</sup>"
            f"(x<sub>t</sub>, t)‖²</b></span> &nbsp;at each t", "t", "MSE per dim", log_y=True)
        self.cum_plot = make_plot("Cumulative bound  L<sub>0</sub> + Σ<sub>s≤t</sub> L<sub>s−1</sub>",
                                  "t", "bits / dim")
        self.share_plot = make_plot("Share of the bound per tenth of t", "t", "% of L")
        for p in (self.terms_plot, self.mse_plot, self.cum_plot, self.share_plot):
            plain_axes(p)
        for p in (self.terms_plot, self.mse_plot):
            tidy_log_axis(p)
            p.getPlotItem().getAxis("left").setWidth(66)
        for p in (self.mse_plot, self.cum_plot, self.share_plot):
            p.setXLink(self.terms_plot)
        grid.addWidget(self.terms_plot, 0, 0)
        grid.addWidget(self.cum_plot, 0, 1)
        grid.addWidget(self.mse_plot, 1, 0)
        grid.addWidget(self.share_plot, 1, 1)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)

        tp = self.terms_plot
        add_legend(tp)
        self.kl_curve = tp.plot([], [], pen=pen("blue", 2.5),
                                name="L<sub>t−1</sub> = KL(q(x<sub>t−1</sub>|x<sub>t</sub>,x<sub>0</sub>) ‖ "
                                     "p<sub>θ</sub>(x<sub>t−1</sub>|x<sub>t</sub>))")
        self.decoder_pt = tp.plot([], [], pen=None, symbol="s", symbolSize=13,
                                  symbolBrush=COLORS["orange"], symbolPen=pg.mkPen("#222", width=1),
                                  name="L<sub>0</sub> = −log p<sub>θ</sub>(x<sub>0</sub>|x<sub>1</sub>)  (t = 1)")
        self.prior_pt = tp.plot([], [], pen=None, symbol="d", symbolSize=15,
                                symbolBrush=COLORS["green"], symbolPen=pg.mkPen("#222", width=1),
                                name="L<sub>T</sub> = KL(q(x<sub>T</sub>|x<sub>0</sub>) ‖ N(0, I))  (t = T)")
        self.eps_curve = self.mse_plot.plot(
            [], [], pen=pen("orange", 2.5),
            name="L<sub>simple</sub> = ‖ε − ε<sub>θ</sub>(x<sub>t</sub>, t)‖²")
        self.x0_curve = self.mse_plot.plot([], [], pen=pen("purple", 2.5),
                                           name="‖x<sub>0</sub> − x<sub>0</sub><sup>θ</sup>(x<sub>t</sub>, t)‖²")
        self.cum_legend = add_legend(self.cum_plot, offset=(-8, -8))
        self.cum_curve = self.cum_plot.plot([], [], pen=pen("blue", 3), fillLevel=0,
                                            brush=pg.mkBrush(0, 114, 178, 40))
        self.total_line = self.cum_plot.plot([], [], pen=pen("black", 1.5, dashed=True),
                                             name="total L")
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

        self.cursors = []
        for p in (self.terms_plot, self.mse_plot, self.cum_plot, self.share_plot):
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
        page.addWidget(plots)

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
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.RichText)
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        sl.addWidget(self.summary, 1)
        page.addWidget(side)
        page.setStretchFactor(0, 4)
        page.setStretchFactor(1, 1)
        self._proxies = [pg.SignalProxy(p.scene().sigMouseMoved, rateLimit=30,
                                        slot=lambda ev, p=p: self._hover(p, ev[0]))
                         for p in (self.terms_plot, self.mse_plot, self.cum_plot, self.share_plot)]
        self._show_summary()

    def _wire(self):
        self.compute_btn.clicked.connect(self.compute)
        self.cancel_btn.clicked.connect(self.cancel)
        self.log_check.toggled.connect(self._set_log)
        self.source_combo.currentIndexChanged.connect(self._source_changed)
        self.ctx.model_changed.connect(self._model_changed)
        self.ctx.image_changed.connect(self._image_changed)
        self.ctx.forward_t_changed.connect(self._set_cursor)
        self._source_changed()

    # ------------------------------------------------------------ state from the context
    def _model_changed(self):
        m = self.ctx.model
        if m is None:
            self.hint.setText("<b>No model loaded.</b><br><br>The loss panel scores images with a "
                              "diffusion model.<br>Load one with <i>File ▸ Built-in models</i> "
                              "or <i>File ▸ Open model folder…</i> (a diffusers DDPM folder).")
            self.stack.setCurrentIndex(0)
        else:
            self.stack.setCurrentIndex(1)
            T = m.num_timesteps
            self.stride_spin.setMaximum(max(1, T - 1))
            for c in self.cursors:
                c.set_range(0, T)
            if self.result_model is not None and m is not self.result_model:
                if self._running:
                    self.cancel()
                self._clear_plots()
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
        src = self.source_combo.currentData()
        self.digits_spin.setVisible(src == "digits")
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
        self._token += 1
        tok = self._token
        self._running = True
        self._run_model = model
        self._run_label = {"image": "image", "digits": f"{n} held-out digit{'s' * (n > 1)}",
                           "sample": f"a DDPM sample (seed {seed})"}[src]
        self._run_stride = stride
        self._partial = None
        self.progress.setRange(0, 0 if src == "sample" else 1)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.progress.setVisible(True)
        self.bar_spacer.setVisible(False)
        self._clear_plots(keep_range=True)
        self._show_summary(note=f"Computing the bound of {self._run_label} "
                                f"(every {stride} t)…" if stride > 1 else
                                f"Computing the bound of {self._run_label}…")
        self._update_enabled()
        self._job = run_job(
            lambda: loss_generator(model, src, image=image, n_digits=n, stride=stride, seed=seed),
            loss_payload,
            on_progress=lambda p: self._progress(tok, p),
            on_finished=lambda p: self._finished(tok, p),
            on_failed=lambda msg: self._failed(tok, msg),
            on_cancelled=lambda: self._cancelled(tok),
            max_rate=12)
        self._jobs = [j for j in self._jobs if j.is_running()] + [self._job]
        return True

    def cancel(self):
        """Stop the running computation (non-blocking); the previous result comes back."""
        if not self._running:
            return
        if self._job is not None:
            self._job.detach()        # nothing of that run reaches the plots any more
            self._job.cancel()        # it stops after the current UNet call; shutdown() joins
        self._token += 1              # later emissions of that run are ignored
        self._end_run()
        self._restore_previous(note="Cancelled.")

    def is_running(self) -> bool:
        return self._running

    def _end_run(self):
        self._running = False
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.progress.setVisible(False)
        self.bar_spacer.setVisible(True)
        self._update_enabled()

    def _progress(self, tok, p):
        if tok != self._token:
            return
        self.thumb.set_image(p["thumb"])
        if p["stage"] == "sample":
            self.progress.setRange(0, max(1, p["total"]))
            self.progress.setValue(p["done"])
            self.progress.setFormat(f"sampling x₀: step {p['done']}/{p['total']}")
            return
        self._partial = p
        self.progress.setRange(0, max(1, p["total"]))
        self.progress.setValue(p["done"])
        self.progress.setFormat(f"bound: {p['done']}/{p['total']} timesteps")
        self._plot_terms(p["t"], p["vb_bpd"], p["eps_mse"], p["x0_mse"])

    def _finished(self, tok, p):
        if tok != self._token:
            return
        self._end_run()
        if p is None or p.get("result") is None:
            self._restore_previous(note="The computation ended without a result.")
            return
        self.result = p["result"]
        self.result_model = self._run_model
        self.result_label = self._run_label
        self.result_thumb = p["thumb"]
        self._show_result()
        self.ctx.status.emit(f"Bound of {self.result_label}: {self.result.total_bpd:.4f} bits/dim")

    def _failed(self, tok, msg):
        if tok != self._token:
            return
        self._end_run()
        self._restore_previous(note="The computation failed.")
        self.ctx.error.emit("Loss computation failed", msg)

    def _cancelled(self, tok):
        if tok != self._token:
            return
        self._end_run()
        self._restore_previous(note="Cancelled.")

    def _restore_previous(self, note=""):
        if self.result is not None:
            self._show_result(note=note)
        else:
            self._clear_plots(keep_range=True)
            self._show_summary(note=note)

    # ------------------------------------------------------------ drawing
    def _clear_plots(self, keep_range=False):
        for c in (self.kl_curve, self.decoder_pt, self.prior_pt, self.eps_curve, self.x0_curve,
                  self.cum_curve):
            c.setData([], [])
        self.bars.setOpts(x=[], height=[])
        for ti in self.bar_labels:
            ti.setVisible(False)
        self.total_line.setData([], [])
        if not keep_range:
            self.thumb.set_image(None)

    def _plot_terms(self, t, vb, eps, x0):
        t = np.asarray(t)
        sym = dict(symbol="o", symbolSize=5, symbolBrush=COLORS["blue"], symbolPen=None) \
            if len(t) <= 120 else dict(symbol=None)
        self.kl_curve.setData(t[1:], vb[1:], **sym)
        self.decoder_pt.setData(t[:1], vb[:1])
        self.eps_curve.setData(t, eps)
        self.x0_curve.setData(t, x0)

    def _show_result(self, note=""):
        r = self.result
        self.thumb.set_image(getattr(self, "result_thumb", None))
        self._plot_terms(r.t, r.vb_bpd, r.eps_mse, r.x0_mse)
        self.prior_pt.setData([r.timesteps], [r.prior_bpd])
        cum = np.cumsum(r.weights * r.vb_bpd)
        self.cum_curve.setData(np.concatenate([r.t, [r.timesteps]]),
                               np.concatenate([cum, [cum[-1] + r.prior_bpd]]))
        self.total_line.setData([0, r.timesteps], [r.total_bpd, r.total_bpd])
        self.cum_legend.getLabel(self.total_line).setText(f"total L = {r.total_bpd:.4f} bits/dim")
        edges, pct = bucket_shares(r)
        centres = (edges[:-1] + edges[1:]) / 2
        width = (edges[1] - edges[0]) * 0.85
        self.bars.setOpts(x=centres, height=pct, width=width)
        for ti, x, v in zip(self.bar_labels, centres, pct):
            ti.setText(f"{v:.0f}%" if v >= 0.5 else "<1%")
            ti.setPos(x, v)
            ti.setVisible(True)
        self.share_plot.setYRange(0, max(10.0, float(pct.max()) * 1.18), padding=0)
        self.terms_plot.setXRange(0, r.timesteps, padding=0.02)
        self._show_summary(note=note)
        self._set_cursor(self.ctx.forward_t)

    def _show_summary(self, note=""):
        r = self.result
        head = ("<div style='font-size:15pt; margin-bottom:6px'><b>L</b> = L<sub>T</sub> + "
                "Σ<sub>t=2</sub><sup>T</sup> L<sub>t−1</sub> + L<sub>0</sub></div>")
        rows = [("L<sub>T</sub>", "KL(q(x<sub>T</sub>|x<sub>0</sub>) ‖ N(0, I))", "prior, no parameters"),
                ("L<sub>t−1</sub>", "KL(q(x<sub>t−1</sub>|x<sub>t</sub>,x<sub>0</sub>) ‖ "
                 "p<sub>θ</sub>(x<sub>t−1</sub>|x<sub>t</sub>))", "two Gaussians: closed form"),
                ("L<sub>0</sub>", "−log p<sub>θ</sub>(x<sub>0</sub>|x<sub>1</sub>)",
                 "discretised Gaussian decoder"),
                ("L<sub>simple</sub>", "E<sub>t,ε</sub> ‖ε − ε<sub>θ</sub>(x<sub>t</sub>, t)‖²",
                 "what DDPM trains on")]
        defs = "".join(f"<tr><td style='padding-right:6px'><b>{a}</b></td><td>= {b}</td></tr>"
                       f"<tr><td></td><td style='color:#666; font-size:10pt'>{c}</td></tr>"
                       for a, b, c in rows)
        html = head + f"<table style='font-size:12pt'>{defs}</table>"
        if r is not None:
            kl_sum = float((r.weights[1:] * r.vb_bpd[1:]).sum())
            vals = [("L<sub>T</sub>", fmt(r.prior_bpd)),
                    ("Σ L<sub>t−1</sub>", fmt(kl_sum)),
                    ("L<sub>0</sub>", fmt(r.decoder_bpd)),
                    ("<b>L</b>", f"<b>{fmt(r.total_bpd)}</b>")]
            tab = "".join(f"<tr><td>{a}</td><td align='right' style='padding-left:14px'>{b}</td>"
                          f"<td style='padding-left:6px; color:#666'>bits/dim</td></tr>" for a, b in vals)
            mean_eps = float(np.average(r.eps_mse, weights=r.weights))
            how = "exact" if r.stride == 1 else f"every {r.stride}th t, KL terms interpolated"
            html += (f"<hr><div style='font-size:12pt'>Scored: <b>{self.result_label}</b>, "
                     f"T = {r.timesteps} ({how})</div>"
                     f"<table style='font-size:14pt; margin-top:4px'>{tab}</table>"
                     f"<div style='font-size:12pt; margin-top:6px'>mean L<sub>simple</sub> over t = "
                     f"{fmt(mean_eps)}</div>")
        else:
            html += ("<hr><div style='font-size:12pt; color:#444'>Choose what to score and press "
                     "<b>Compute</b>. A stride of 10 gives a quick preview; 1 the exact bound.</div>")
        if note:
            html += f"<div style='font-size:12pt; color:#B04000; margin-top:8px'>{note}</div>"
        self.summary.setText(html)

    def _set_log(self, on: bool):
        for p in (self.terms_plot, self.mse_plot):
            p.getPlotItem().setLogMode(x=False, y=bool(on))
            p.enableAutoRange(axis="y")

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
        data = self.result if self.result is not None else None
        if data is not None:
            tt, vb, eps, x0 = data.t, data.vb_bpd, data.eps_mse, data.x0_mse
        elif self._partial is not None and self._running:
            p = self._partial
            tt, vb, eps, x0 = p["t"], p["vb_bpd"], p["eps_mse"], p["x0_mse"]
        else:
            self.readout.setText(f"<span style='color:{COLORS['red']}'>▍</span> forward panel's "
                                 f"t = {t}" if cursor else f"t = {t}")
            return
        where = "cursor" if cursor else "pointer"
        if len(tt) == 0 or t < 1:
            self.readout.setText(f"{where}: t = {t}" + ("  (the clean image x<sub>0</sub>)" if t == 0 else ""))
            return
        k = int(np.argmin(np.abs(np.asarray(tt) - t)))
        tk = int(tt[k])
        name = "L<sub>0</sub>" if tk == 1 else "L<sub>t−1</sub>"
        near = "" if tk == t else f" (nearest evaluated: {tk})"
        self.readout.setText(
            f"{where}: <b>t = {t}</b>{near} &nbsp;·&nbsp; {name} = <b>{fmt(float(vb[k]))}</b> bits/dim"
            f" &nbsp;·&nbsp; L<sub>simple</sub> = {fmt(float(eps[k]))}"
            f" &nbsp;·&nbsp; x<sub>0</sub> MSE = {fmt(float(x0[k]))}")

    # ------------------------------------------------------------ panel contract
    def shutdown(self):
        """Cancel and join every computation this panel started."""
        self._token += 1
        for j in self._jobs:
            try:
                j.stop()
            except Exception:
                pass
        self._jobs.clear()
        self._job = None
        self._running = False

    def save_settings(self, settings):
        settings.setValue("source", self.source_combo.currentData())
        settings.setValue("digits", self.digits_spin.value())
        settings.setValue("seed", self.seed_spin.value())
        settings.setValue("stride", self.stride_spin.value())
        settings.setValue("log_y", self.log_check.isChecked())

    def restore_settings(self, settings):
        src = settings.value("source", "digits")
        i = self.source_combo.findData(src if isinstance(src, str) else "digits")
        if i >= 0 and self.source_combo.model().item(i).isEnabled():
            self.source_combo.setCurrentIndex(i)
        self.digits_spin.setValue(_setting(settings, "digits", 16, int, 1, 200))
        self.seed_spin.setValue(_setting(settings, "seed", 0, int, 0, 2 ** 31 - 1))
        self.stride_spin.setValue(_setting(settings, "stride", 10, int, 1, self.stride_spin.maximum()))
        self.log_check.setChecked(_setting(settings, "log_y", True, bool))

    def export_sources(self):
        """For the Export dialog: the four plots as one picture, each plot as PNG / SVG / CSV
        (pyqtgraph's exporters), and the full result table as CSV."""
        from ..export_sources import FramesSource, PlotSource
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

    def plot_widgets(self) -> dict:
        return {"terms": self.terms_plot, "mse": self.mse_plot, "cumulative": self.cum_plot,
                "share": self.share_plot}

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
        r = self.result
        path = Path(path)
        lines = ["t,vb_bpd,eps_mse,x0_mse,weight"]
        lines += [f"{int(a)},{b:.8g},{c:.8g},{d:.8g},{w:.8g}"
                  for a, b, c, d, w in zip(r.t, r.vb_bpd, r.eps_mse, r.x0_mse, r.weights)]
        return write_text_atomic(path, "\n".join(lines) + "\n")


def _font(pt: int):
    from PySide6.QtGui import QFont
    f = QFont()
    f.setPointSize(pt)
    return f
