"""The 2-D lab panel: a view over :class:`~diffusion_gui.sessions.lab2d.Lab2DSession`.

One t slider drives three square views: the forward cloud x_t over q_t (exact for a mixture, a
KDE otherwise) with a few forward paths and the field of q_t, and the DDPM and DDIM particles of
the last reverse run at the same t with the chosen denoiser's field. Background work
(:mod:`.runs`): the session itself (it imports torch), training, sampling, traced particles, the
overlay, the comparison. The reverse run is recorded into a preallocated float32 ``[S, N, 2]``
array by the worker; a frame timer draws the latest row (:attr:`frames_drawn` counts them).
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QWidget

from ....sessions.lab2d_settings import DATASETS, Lab2DSettings
from ... import settings_io
from ...workers import JobSlot
from . import mouse, runs
from .controls import apply_settings, build_controls, read_settings
from .display import Display
from .views import apply_variance, bound_text, build_views, clear_training, quality_table, set_curve, show_histograms

FRAME_MS = 25              # the frame timer (live sampling, playing): at most 40 frames/s
PLAY_SECONDS = 5.0         # T -> 0 when playing
OVERLAY_MS = 120           # density / field updates at most this often
OVERLAY_LIVE_MS = 250      # ... and this often while sampling or playing


class Lab2DPanel(QWidget):
    """Watch a whole 2-D distribution diffuse, learn and come back (issue #16)."""

    title = "2-D lab"
    particle_launched = Signal(str, int)     # view key, path length
    ready = Signal()

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.session = None
        self.run = None
        self.t = 0
        self.frames_drawn = 0
        self._settings = Lab2DSettings()
        self._traces: list = []
        self._overlay = None
        self._overlay_key = None
        self._contours = None
        self._field_refreshed = 0.0
        self._overlay_dirty = False
        self._quality: dict = {}
        self._live = False
        self._playing = False
        self._train_paused = False      # the worker has stopped between steps
        self._shown_count = 0           # rows of the live run drawn so far
        self._dragging = None
        self._component = None
        self._load, self._train, self._sample = JobSlot(), JobSlot(), JobSlot()
        self._trace, self._overlay_job, self._compare = JobSlot(), JobSlot(), JobSlot()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(build_controls(self))
        lay.addWidget(build_views(self), 1)
        self.display = Display(self)
        self.frame_timer = QTimer(self, interval=FRAME_MS)
        self.frame_timer.timeout.connect(self._tick)
        self.overlay_timer = QTimer(self, interval=OVERLAY_MS, singleShot=True)
        self.overlay_timer.timeout.connect(lambda: runs.overlay(self))
        self._actions = self._make_actions()
        self._wire()
        mouse.connect(self)
        self._update_buttons()
        self.forward_view.set_hint("loading…")
        QTimer.singleShot(0, lambda: runs.load_session(self, self._settings))

    # ---------------------------------------------------------------- wiring
    def _wire(self):
        self.data_combo.currentIndexChanged.connect(lambda *_: self.apply_data())
        self.n_spin.valueChanged.connect(lambda *_: self.apply_data())
        self.seed_spin.valueChanged.connect(lambda *_: self.apply_data())
        self.text_edit.returnPressed.connect(self.apply_data)
        self.clear_btn.clicked.connect(self._clear_drawing)
        self.std_spin.valueChanged.connect(self._std_changed)
        self.schedule_combo.currentIndexChanged.connect(lambda *_: self._schedule_changed())
        self.T_spin.valueChanged.connect(lambda *_: self._schedule_changed())
        self.train_btn.clicked.connect(lambda: runs.train(self))
        self.pause_btn.clicked.connect(lambda: runs.pause_or_resume(self))
        self.reset_btn.clicked.connect(self.reset_model)
        self.variance_combo.currentIndexChanged.connect(lambda *_: self.reset_model())
        self.sample_btn.clicked.connect(lambda: runs.sample(self))
        self.stop_btn.clicked.connect(self.stop_sampling)
        self.clear_paths_btn.clicked.connect(self._clear_traces)
        self.compare_btn.clicked.connect(lambda: runs.compare(self))
        self.play_btn.clicked.connect(self.toggle_play)
        self.t_slider.valueChanged.connect(self.set_t)
        for w in (self.model_combo, self.field_combo, self.view_combo):
            w.currentIndexChanged.connect(lambda *_: self._view_changed())
        for w in (self.field_check, self.grid_check):
            w.toggled.connect(lambda *_: self._view_changed())
        self.ctx.image_changed.connect(self._image_changed)

    def _make_actions(self):
        def act(text, key, slot):
            a = QAction(text, self)
            a.setShortcut(QKeySequence(key))
            a.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            a.triggered.connect(slot)
            self.addAction(a)
            return a
        return [act("2-D lab: Play / Pause", Qt.Key_Space, self.toggle_play),
                act("2-D lab: Step t back", Qt.Key_Left, lambda: self.step_t(-1)),
                act("2-D lab: Step t forward", Qt.Key_Right, lambda: self.step_t(+1)),
                act("2-D lab: Train / Resume", "Ctrl+Shift+T", lambda: runs.train(self)),
                act("2-D lab: Sample", "Ctrl+Shift+S", lambda: runs.sample(self))]

    def actions(self):
        return list(self._actions)

    def is_ready(self) -> bool:
        return self.session is not None

    def is_sampling(self) -> bool:
        """A reverse run is under way (False once its end has been shown)."""
        return self._live

    def _session_ready(self, session):
        self.session = session
        apply_settings(self, self._settings)
        st = self._settings
        if (st.schedule, st.timesteps) != (session.settings.schedule, session.timesteps):
            session.set_schedule(st.schedule, st.timesteps)
        apply_variance(self, st.variance)
        self.sync_settings()
        self.steps_spin.setMaximum(session.timesteps)
        self.display.layout_views()
        self.apply_data()
        self.set_t(min(self._settings.t, session.timesteps))
        self.forward_view.set_hint("")
        self._update_buttons()
        self.ready.emit()

    # ---------------------------------------------------------------- data
    def data_key(self) -> str:
        return self.data_combo.currentData()

    def apply_data(self):
        """Make the data the widgets choose (a data set, a text, the app's image, a drawing)."""
        s = self.session
        if s is None:
            return
        key, n, seed = self.data_key(), self.n_spin.value(), self.seed_spin.value()
        try:
            if key in DATASETS:      # a dragged mixture stays when the number of points changes
                keep = key == "gmm" and s.settings.data == "gmm"
                s.set_data(key, n=n, seed=seed, mixture=s.mixture if keep else None)
            elif key == "text":
                s.settings = replace(s.settings, seed=seed)
                s.set_text_points(self.text_edit.text(), n=n)
            elif key == "image":
                s.settings = replace(s.settings, seed=seed)
                s.set_image_points(self.ctx.image, n=n)
            elif s.settings.data != "custom":
                s.start_drawing()
        except Exception as e:  # noqa: BLE001 - a UserError is shown; the old data stays
            from ....errors import user_message
            self.ctx.error.emit("2-D lab: data", user_message(e) or str(e))
        self.data_changed()

    def _image_changed(self):
        if self.session is not None and self.data_key() == "image":
            self.apply_data()

    def _clear_drawing(self):
        if self.session is not None:
            self.data_combo.setCurrentIndex(self.data_combo.findData("draw"))
            self.session.start_drawing()
            self.data_hint.setText("Paint with the left mouse button; erase with the right one or Shift.")

    def data_changed(self, light: bool = False):
        """The data changed: redraw it; ``light`` (mid-drag) skips the slower parts."""
        s = self.session
        self.display.data_changed(light)
        key = self.data_key()
        self.text_edit.setEnabled(key == "text")
        self.clear_btn.setEnabled(key == "draw")
        self.std_spin.setEnabled(s.settings.data == "gmm" and self._component is not None)
        hints = {"draw": "Paint: left mouse. Erase: right mouse or Shift.",
                 "gmm": "Drag a component's + to move it; the wheel over it resizes it.",
                 "image": "The dark pixels of the Forward panel's image.",
                 "text": "The dark pixels of the text (Enter to apply)."}
        self.data_hint.setText(f"{len(s.data):,} points. " + hints.get(key, ""))
        self._set_exact_enabled(s.has_exact)
        if not light:
            self._quality = {}
            self.show_numbers()
        self.overlay_timer.start()

    def select_component(self, k):
        self._component = k
        s = self.session
        on = k is not None and s.mixture is not None
        self.std_spin.setEnabled(on)
        if on:
            self.std_spin.blockSignals(True)
            self.std_spin.setValue(float(s.mixture.stds[k].mean()))
            self.std_spin.blockSignals(False)

    def _std_changed(self, v):
        if self.session is not None and self._component is not None and self.session.settings.data == "gmm":
            self.session.set_component_std(self._component, v)
            self.data_changed()

    def _set_exact_enabled(self, on: bool):
        item = self.model_combo.model().item(self.model_combo.findData("exact"))
        item.setEnabled(on)
        item.setToolTip("" if on else "The exact denoiser needs a Gaussian mixture (8 Gaussians or the mixture)")
        if not on and self.model_combo.currentData() == "exact":
            self.model_combo.setCurrentIndex(self.model_combo.findData("mlp"))

    def _schedule_changed(self):
        s = self.session
        if s is None:
            return
        T = self.T_spin.value()
        new_T = T != s.timesteps
        was = runs.stop_training(self) if new_T else False
        s.set_schedule(self.schedule_combo.currentText(), T)
        if new_T:
            self.loss_curve.setData([], [])
            self.run = None
            self._traces = []
        self.steps_spin.setMaximum(T)
        self.t_slider.setMaximum(T)
        self.display.data_changed(False)
        self.set_t(min(self.t, T))
        if was:
            runs.train(self)

    def _view_changed(self):
        self.sync_settings()
        self.display.layout_views()
        self.show_t()
        self.overlay_timer.start()

    def sync_settings(self):
        """Copy the view choices of the widgets into the session's settings."""
        if self.session is not None:
            self.session.settings = read_settings(self, self.session.settings)

    # ---------------------------------------------------------------- training
    def reset_model(self):
        if self.session is None:
            return
        was = runs.stop_training(self)
        self.session.reset_model(self.variance_combo.currentData())   # of the chosen kind
        clear_training(self)
        if was:
            runs.train(self)
        self._update_buttons()

    def _trained(self, payload):
        step, loss, bucket, rate = payload
        s = self.session
        k = min(len(s.loss_steps), len(s.losses))
        set_curve(self.loss_curve, s.loss_steps[:k], s.losses[:k])
        T = s.timesteps
        set_curve(self.bucket_curve, (np.arange(len(bucket)) + 0.5) * T / len(bucket), bucket)
        self.train_label.setText(f"step {step:,}   loss {loss:.4f}   {rate:,.0f} steps/s")
        self.ctx.status.emit(f"2-D lab: training, step {step:,} ({rate:,.0f} steps/s)")
        now = time.monotonic()           # the learned field follows training, once a second
        if now - self._field_refreshed > 1.0 and not self._live and not self._playing:
            self._field_refreshed = now
            self.overlay_timer.start()

    # ---------------------------------------------------------------- sampling and t
    def stop_sampling(self):
        self._sample.cancel()

    def _sampling(self, k):
        if self.run is not None:
            self.ctx.status.emit(f"2-D lab: sampling, step {k + 1} / {len(self.run.ts)}")

    def _sampled(self):
        self._live = False
        if not self._playing:
            self.frame_timer.stop()
        if self.run is not None:
            self.set_t(int(self.run.ts[max(self.run.count - 1, 0)]))
            self.ctx.status.emit(f"2-D lab: {self.run.count - 1} steps of DDPM and DDIM done")
        self._update_buttons()

    def launch_particle(self, key, xy):
        runs.launch(self, key, xy)

    def _clear_traces(self):
        self._traces = []
        self.show_t()

    def set_t(self, t: int):
        """Show paper step ``t`` (0..T) in every view."""
        T = self.session.timesteps if self.session is not None else self.t_slider.maximum()
        self.t = int(min(max(int(t), 0), T))
        self.t_slider.blockSignals(True)
        self.t_slider.setMaximum(T)
        self.t_slider.setValue(self.t)
        self.t_slider.blockSignals(False)
        self.show_t()
        if not self.overlay_timer.isActive():     # less often while animating
            self.overlay_timer.start(OVERLAY_LIVE_MS if self._live or self._playing else OVERLAY_MS)

    def step_t(self, direction: int):
        """One recorded row of the run (or T / 100) towards t = T (+1) or 0 (-1)."""
        if self.run is not None and self.run.count:
            ts = self.run.ts[: self.run.count]
            k = self.run.ddpm.row_of(self.t) - direction
            self.set_t(int(ts[min(max(k, 0), len(ts) - 1)]))
        else:
            T = self.t_slider.maximum()
            self.set_t(self.t + direction * max(1, T // 100))

    def toggle_play(self):
        self._playing = not self._playing
        if self._playing:
            if self.t == 0:
                self.set_t(self.t_slider.maximum())
            self.frame_timer.start()
        elif not self._live:
            self.frame_timer.stop()
        self.play_btn.setText("❚❚ Pause" if self._playing else "▶ Play")

    def _tick(self):
        if self._live and self.run is not None and self.run.count:
            t = int(self.run.ts[self.run.count - 1])
            if t == self.t and self.run.count == self._shown_count:
                return                       # no new row since the last frame
            self._shown_count = self.run.count
        elif self._playing:
            T = self.t_slider.maximum()
            t = self.t - max(1, round(T * FRAME_MS / 1000 / PLAY_SECONDS))
            if t <= 0:
                t = 0
                self.toggle_play()
        else:
            return
        self.set_t(t)

    def show_t(self):
        self.display.show_t()
        self.frames_drawn += 1

    def show_overlay(self):
        self.display.show_overlay()

    # ---------------------------------------------------------------- numbers
    def _compared(self, out: dict):
        self._quality = out
        self.show_numbers()

    def show_numbers(self):
        q = self._quality
        show_histograms(self, {k: (v if k == "fresh" else v.nearest / self._std())
                               for k, v in q.items() if k not in ("profile", "bound") and v is not None})
        prof = q.get("profile")
        if prof is None:
            self.profile_curve.setData([], [])
            self.floor_curve.setData([], [])
        else:
            ts, mse, floor = prof
            set_curve(self.profile_curve, ts, mse)
            set_curve(self.floor_curve, ts, floor if floor is not None else [])
        self.bound_label.setText(bound_text(q.get("bound")))
        rows = [(k, q[k]) for k in ("mlp", "exact", "empirical") if k in q]
        self.numbers.setText(quality_table(rows) or
                             "<span style='color:#666'>Compare the denoisers for the sample quality "
                             "(energy distance to a fresh draw, beside the two-fresh-draws floor "
                             "and a Gaussian baseline) and the memorisation histogram.</span>")

    def _std(self) -> float:
        from ....core.toy2d_metrics import data_std
        return float(data_std(self.session.data))

    # ---------------------------------------------------------------- buttons and status
    def _update_buttons(self):
        ready = self.session is not None
        training = self._train.is_running()
        pausing = training and self._train.worker.is_paused
        paused = pausing and self._train_paused
        for w in (self.train_btn, self.reset_btn, self.sample_btn, self.compare_btn,
                  self.data_combo, self.play_btn, self.variance_combo):
            w.setEnabled(ready)
        self.train_btn.setEnabled(ready and not training)
        self.pause_btn.setEnabled(training and (paused or not pausing))
        self.pause_btn.setText("Resume" if paused else "Pausing…" if pausing else "Pause")
        self.stop_btn.setEnabled(self._sample.is_running())
        self.compare_btn.setEnabled(ready and not self._compare.is_running())

    def status_text(self) -> str:
        """What runs now, in words."""
        parts = []
        if self._train.is_running():
            parts.append("training paused" if self._train_paused else "training")
        if self._sample.is_running():
            parts.append("sampling")
        if self._compare.is_running():
            parts.append("comparing the denoisers")
        return ", ".join(parts) or "idle"

    # ---------------------------------------------------------------- panel contract
    def export_sources(self):
        from .sources import export_sources
        return export_sources(self)

    def save_settings(self, settings: QSettings):
        base = self.session.settings if self.session is not None else self._settings
        settings_io.save(settings, replace(read_settings(self, base), t=self.t))

    def restore_settings(self, settings: QSettings):
        self._settings = settings_io.load(settings, Lab2DSettings)
        apply_settings(self, self._settings)
        if self.session is not None:
            self._session_ready(self.session)

    def shutdown(self):
        self.frame_timer.stop()
        self.overlay_timer.stop()
        for slot in (self._load, self._train, self._sample, self._trace, self._overlay_job, self._compare):
            slot.shutdown()
