"""The Forward panel: a view over :mod:`diffusion_gui.sessions.forward`.

Timesteps are the paper's ``t`` (``t = 0`` clean, ``t = T`` noise). Layout: the closed-form x_t
and the step-by-step x_t side by side (x_0 is the filmstrip's first frame), the t slider and the
formula read-out under them, the filmstrip below; on the right the schedule plots (beta_t,
abar_t, SNR) with overlays and the pixel histogram.

The x_t view is repainted synchronously when t changes; cursors, histogram and filmstrip
highlight follow at most every ``PLOT_INTERVAL_MS`` while the slider moves. The step-by-step
chain runs in the panel's one :class:`~diffusion_gui.gui.workers.JobSlot`, once per image /
seed / schedule / T / size; its frames appear as they are computed, so scrubbing never waits.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from ....sessions.forward import (
    DEFAULT_T,
    FILM_FRAMES,
    HIST_BINS,
    ChainCache,
    ForwardMath,
    ForwardSettings,
    noise_schedule,
    working_image,
)
from ...backend import backend_ready, ensure_backend
from . import persist
from .chain import ChainRunner
from .controls import PLAY_INTERVAL_MS, ControlBar, TimeRow, add_action
from .sources import export_sources
from .views import Filmstrip, PlotsColumn, XtColumns, formula_html, formula_label, stats_html, x0_info_html

PLOT_INTERVAL_MS = 50
PLAY_SECONDS = 8.0


class ForwardPanel(QWidget):
    """Forward process explorer: scrub q(x_t | x_0) of the current image (module docstring)."""

    title = "Forward"

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.setFocusPolicy(Qt.StrongFocus)
        self._t = 0
        self._math: ForwardMath | None = None
        self._work_image: np.ndarray | None = None
        self._closed = False
        self._splitter_set = False
        self._backend_requested = False

        self._plot_timer = QTimer(self, singleShot=True, interval=PLOT_INTERVAL_MS)
        self._plot_timer.timeout.connect(self._refresh_slow)

        self._build()
        self.chain = ChainRunner(self, self.chain_progress, on_progress=self._on_chain_progress,
                                 on_ready=self._on_chain_ready,
                                 on_failed=lambda msg: ctx.error.emit("Step-by-step chain failed", msg),
                                 start=self._start_chain, show_memory=self.xt_columns.show_memory)
        self._make_actions()
        self._set_controls_enabled(False)

        ctx.image_changed.connect(self._on_image_changed)
        ctx.forward_t_changed.connect(self._on_ctx_t)
        if ctx.image is not None:
            self.preview(ctx.image)

    def showEvent(self, ev):
        super().showEvent(ev)
        if not self._splitter_set:          # first show without a saved layout: 62% / 38%
            self._splitter_set = True
            w = max(self.splitter.width(), 900)
            self.splitter.setSizes([int(w * 0.62), w - int(w * 0.62)])
        if not self._backend_requested:
            # torch is imported in the background once the window has had time to paint
            self._backend_requested = True
            QTimer.singleShot(0 if backend_ready() else 250, self._request_backend)

    def _request_backend(self):
        if not self._closed:
            ensure_backend(self._on_backend)

    # ================================================================== layout
    def _build(self):
        self._build_controls()
        self._build_views()
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        # the pictures take the height they can use (their widget is capped at it), the spare
        # goes to the bottom: never a band above the pictures or between them and the slider
        lv.addWidget(self.xt_columns, 1000)
        lv.addWidget(self.time_row)
        lv.addWidget(self.formula)
        film_head = QLabel("<b>Filmstrip</b> &nbsp;<span style='color:#555'>x<sub>0</sub> and x<sub>t</sub> "
                           "at evenly spaced t; click a frame to jump there</span>")
        film_head.setStyleSheet("color: #444;")
        lv.addWidget(film_head)
        lv.addWidget(self.filmstrip)
        lv.addStretch(1)
        right = self._build_plots()
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        left.setMinimumWidth(520)
        right.setMinimumWidth(380)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.addWidget(self.controls)
        outer.addWidget(self.splitter, 1)
        self._wire()

    def _build_controls(self):
        """The bar on top and the time row (their widgets are the panel's, for tests)."""
        self.controls = c = ControlBar()
        self.size_combo, self.schedule_combo, self.T_spin = c.size_combo, c.schedule_combo, c.T_spin
        self.seed_spin, self.new_noise_button, self.info_label = (c.seed_spin, c.new_noise_button,
                                                                  c.info_label)
        self.time_row = r = TimeRow()
        self.play_button, self.slider, self.t_spin, self.T_label = (r.play_button, r.slider,
                                                                    r.t_spin, r.T_label)

    def _build_views(self):
        """The two x_t images, the formula read-out and the filmstrip (x_0 is its first frame)."""
        self.xt_columns = x = XtColumns()
        self.view_xt, self.view_chain = x.view_xt, x.view_chain
        self.stats_xt, self.stats_chain, self.chain_progress = (x.stats_xt, x.stats_chain,
                                                                x.chain_progress)
        self.formula = formula_label()
        self.filmstrip = Filmstrip()
        self.film = self.filmstrip.frames
        self.view_x0 = self.film[0]

    def _build_plots(self) -> QWidget:
        """The right column: schedule plots with overlays, then the pixel histogram."""
        right = PlotsColumn(DEFAULT_T)
        self.schedule_plots, self.histogram = sp, h = right.schedule, right.histogram
        self.plots, self.cursors, self.curves = sp.plots, sp.cursors, sp.curves
        self.overlay_checks = sp.overlay_checks
        self.hist_plot, self.hist_xt, self.hist_chain = h.plot, h.closed, h.chain
        self.spectrum, self.plot_tabs = right.spectrum, right.tabs
        return right

    def _wire(self):
        self.slider.valueChanged.connect(self.set_t)
        self.t_spin.valueChanged.connect(self.set_t)
        self.play_button.toggled.connect(self._on_play_toggled)
        self.time_row.tick.connect(self._play_tick)
        self.seed_spin.valueChanged.connect(self._on_seed)
        self.new_noise_button.clicked.connect(self.new_noise)
        self.schedule_combo.currentTextChanged.connect(self._on_schedule)
        self.T_spin.valueChanged.connect(self._on_schedule)
        self.size_combo.currentIndexChanged.connect(self._on_size)
        self.filmstrip.t_clicked.connect(self.set_t)
        self.schedule_plots.t_picked.connect(self.set_t)
        self.schedule_plots.overlays_changed.connect(self._update_schedule_plots)

    def _make_actions(self):
        page = self._page
        self._actions = [add_action(self, *spec) for spec in (
            ("Play / Pause", ["Space"], self.toggle_play, "Animate t from 0 to T"),
            ("Previous step", ["Left"], lambda: self.step(-1)),
            ("Next step", ["Right"], lambda: self.step(1)),
            ("Jump back (T/10)", ["PgDown"], lambda: self.step(-page())),
            ("Jump forward (T/10)", ["PgUp"], lambda: self.step(page())),
            ("First step (t = 0)", ["Home"], lambda: self.set_t(0)),
            ("Last step (t = T)", ["End"], lambda: self.set_t(self.T)),
            ("New noise", ["N"], self.new_noise, "Draw a new eps"))]

    def actions(self):
        return list(self._actions)

    # ================================================================== public API
    @property
    def t(self) -> int:
        return self._t

    @property
    def T(self) -> int:
        return int(self.T_spin.value())

    @property
    def seed(self) -> int:
        return int(self.seed_spin.value())

    @property
    def schedule_name(self) -> str:
        return self.schedule_combo.currentText()

    @property
    def working_size(self) -> int:
        return int(self.size_combo.currentData())

    @property
    def _chain(self):
        return self.chain.cache

    @property
    def _chain_job(self):
        return self.chain.slot.job

    @property
    def _chain_timer(self):
        return self.chain.timer

    @property
    def _film_ts(self) -> list[int]:
        return self.filmstrip.ts

    def is_ready(self) -> bool:
        """True when an image is loaded and x_t is computed from it."""
        return self._math is not None

    def chain_done(self) -> bool:
        return self.chain.is_done()

    def x0_uint8(self) -> np.ndarray | None:
        """The working image (uint8 ``[H, W, C]``) that x_0 comes from."""
        return self._work_image

    def schedule(self, name: str | None = None, T: int | None = None):
        """The NoiseSchedule ``name`` (default: the current one) with ``T`` steps."""
        return noise_schedule(name or self.schedule_name, int(T or self.T))

    def set_t(self, t: int):
        """Show the paper's step ``t`` (clamped to 0..T)."""
        t = int(min(max(int(t), 0), self.T))
        self.time_row.show_t(t)
        changed = t != self._t
        self._t = t
        self.ctx.set_forward_t(t)
        if changed or self._math is not None:
            self._refresh_fast()
            if not self._plot_timer.isActive():
                self._plot_timer.start()

    def step(self, dt: int):
        self.set_t(self._t + int(dt))

    def new_noise(self):
        self.seed_spin.setValue((self.seed + 1) % (2 ** 31))

    def toggle_play(self):
        self.play_button.setChecked(not self.play_button.isChecked())

    def is_playing(self) -> bool:
        return self.time_row.is_playing()

    def _page(self) -> int:
        return max(1, self.T // 10)

    # ================================================================== events
    def _on_backend(self):
        if self._closed:
            return
        self._set_controls_enabled(True)
        self._update_schedule_plots()
        self._rebuild_math()

    def _on_image_changed(self):
        if not backend_ready():
            self.preview(self.ctx.image)
            return
        self._rebuild_math()

    def _on_ctx_t(self, t: int):
        if t != self._t:
            self.set_t(t)

    def _on_seed(self, _=None):
        if self._math is not None:
            self._math.set_seed(self.seed)
            self._after_source_change()

    def _on_schedule(self, _=None):
        T = self.T
        old_T = self.slider.maximum()
        self.time_row.set_T(T)
        if old_T != T:
            self._t = int(round(self._t * T / max(old_T, 1)))
        self.schedule_plots.set_current(self.schedule_name, T)
        if not backend_ready():
            return
        if self._math is not None:
            self._math.set_schedule(self.schedule())
        self._update_schedule_plots()
        self._after_source_change()

    def _on_size(self, _=None):
        self._rebuild_math()

    def _on_play_toggled(self, on: bool):
        if on and self._t >= self.T:
            self.set_t(0)
        self.time_row.show_playing(on)

    def _play_tick(self):
        dt = max(1, round(self.T * PLAY_INTERVAL_MS / 1000.0 / PLAY_SECONDS))
        if self._t < self.T:
            self.set_t(min(self.T, self._t + dt))
        if self._t >= self.T:
            self.play_button.setChecked(False)

    # ================================================================== state
    def _set_controls_enabled(self, on: bool):
        for w in (self.controls, self.time_row):
            w.setEnabled(on)

    def preview(self, image: np.ndarray | None, note: str = "loading torch\u2026"):
        """Show a uint8 image as x_0 before torch is imported (start-up), without the maths."""
        if image is None:
            return
        self.view_x0.set_image(image)
        self.view_x0.set_caption("x\u2080")
        self.view_xt.set_image(image)
        self.stats_xt.setText(f"<span style='color:#888'>{note}</span>")

    def _rebuild_math(self):
        img = self.ctx.image
        if img is None or not backend_ready():
            return
        self._work_image = working_image(img, self.working_size)
        self._math = ForwardMath(self._work_image, self.seed, self.schedule())
        self.info_label.setText(x0_info_html(self._work_image.shape, *self._math.stats(0)))
        self._after_source_change()

    def _after_source_change(self):
        """x_0, eps or the schedule changed: recompute what depends on them."""
        if self._math is None:
            return
        self._t = min(self._t, self.T)
        self._update_film()
        self.chain.start_soon()
        self.spectrum.set_source(self._math)
        self.set_t(self._t)
        self._refresh_slow()

    # ================================================================== drawing
    def _refresh_fast(self):
        """What must follow the slider at once: x_t, the chain's x_t, the numbers."""
        m = self._math
        if m is None:
            return
        t = self._t
        self.view_xt.set_image(m.frame(t))
        if self.view_xt.isVisible():
            self.view_xt.repaint()       # on screen now, before the throttled plots can run
        self.stats_xt.setText(stats_html(*m.stats(t), theory=m.theory(t)))
        self._refresh_chain_view()
        self.formula.setText(formula_html(m.readout(t), t, self.T, self.schedule_name))

    def _refresh_chain_view(self):
        """The chain's x_t and its bar, from one reading of how far it has got."""
        c = self._chain
        done = -1 if c is None else c.done
        self.chain.show_done(done)
        self.xt_columns.show_chain(c, self._t, done)

    def _refresh_slow(self):
        """Throttled: cursors, histogram, filmstrip highlight."""
        t = self._t
        self.schedule_plots.set_t(t)
        m, c = self._math, self._chain
        if m is not None:
            hc = c.hist[t] if c is not None and t <= c.done else np.zeros(HIST_BINS)
            self.histogram.show_densities(m.hist(t), hc)
            self.spectrum.show_t(t, float(m.a64[t]) ** 2)
        self.filmstrip.highlight(t)

    def _update_film(self):
        from ....export.timeline import timeline_steps
        if self._math is not None:
            self.filmstrip.show_frames(timeline_steps(self.T, FILM_FRAMES, "even"), self._math.frame)

    def _update_schedule_plots(self, _=None):
        if backend_ready():
            self.schedule_plots.show_schedules(self.schedule_name, self.T, self.schedule, self._t)

    # ================================================================== the chain
    def _start_chain(self):
        if self._math is not None and not self._closed:
            self.chain.start(self._math, self.schedule(), self.schedule_name)

    def _on_chain_progress(self, t: int):
        self._refresh_chain_view()        # redraws the picture only when what it shows changed

    def _on_chain_ready(self, cache: ChainCache):
        self._refresh_chain_view()
        self._refresh_slow()
        if self.isVisible():              # not over another tab's status bar
            self.ctx.status.emit(f"Step-by-step chain ready ({cache.T} q_step calls, "
                                 f"{cache.nbytes() / 2 ** 20:.0f} MB cached)")

    def wait_for_chain(self, timeout_ms: int = 60000) -> bool:
        """Block until the chain job is done (for tests and benchmarks)."""
        return self.chain.wait(self._start_chain, timeout_ms)

    # ================================================================== export, settings
    def export_sources(self):
        """For the Export dialog: see :func:`.sources.export_sources`."""
        return export_sources(self)

    def settings(self) -> ForwardSettings:
        """The panel's choices now (see :mod:`.persist`)."""
        return persist.current(self)

    def save_settings(self, settings: QSettings):
        persist.save(self, settings)

    def restore_settings(self, settings: QSettings):
        persist.restore(self, settings)

    # ================================================================== shutdown
    def shutdown(self):
        if self._closed:
            return
        self._closed = True
        self.spectrum.shutdown()
        self.time_row.show_playing(False)
        self._plot_timer.stop()
        self.chain.shutdown()
