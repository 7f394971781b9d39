"""The reverse panel: watch a DDPM model denoise, live, and scrub the trajectory afterwards.

A view over :mod:`diffusion_gui.sessions.reverse`: the widgets describe a
:class:`~diffusion_gui.sessions.reverse.ReverseSettings`; a run is a
:class:`~diffusion_gui.sessions.reverse.ReverseRun` started through the panel's one
:class:`~diffusion_gui.gui.workers.JobSlot` (a new run retires the one before it; errors are
shown with the one error policy). The display is fed latest-wins at most :data:`LIVE_RATE`
frames per second; a :class:`~..frame_pacer.FramePacer` lowers the rate so that live frames take
at most :data:`~..frame_pacer.GUI_SHARE` of the GUI thread's time, and the numbers beside the
pictures change at most :data:`TEXT_RATE` times a second.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QSettings, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QHBoxLayout, QMessageBox, QSplitter, QWidget

from ....sessions.reverse import (
    TRAJECTORY_BUDGET_MB,
    Frame,
    ReverseRun,
    ReverseSettings,
    plural,
    prepare_original,
    psnr,
    run_text,
    steps_done,
)
from ... import settings_io
from ...frame_pacer import GUI_SHARE, FramePacer
from ...workers import JobSlot
from . import layout
from .cost import cost_line, learn_from
from .denoise import denoise_default, denoise_note
from .display import Display
from .film import FilmStrip

#: Live frames per second, at most.
LIVE_RATE = 30.0
#: During a run, the numbers around the pictures (t, captions, β/σ/ᾱ, the update formula, the
#: progress line and bar) change at most this often: nobody reads numbers that change 30 times a
#: second, and laying out and painting their rich text costs the GUI thread about as much as a
#: live picture (whose rate the pacer lowers to pay for them). A paused, stopped, finished or
#: scrubbed frame always shows all of them.
TEXT_RATE = 3.0


class ReversePanel(Display, FilmStrip, QWidget):
    """Sample from the current model, live; Step through it; scrub the recorded trajectory."""

    title = "Reverse"

    run_started = Signal(int)          # run id
    run_ended = Signal(int, str)       # run id, "finished" | "stopped" | "failed"
    frame_shown = Signal(int)          # step of the frame just displayed (live)

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self._run: ReverseRun | None = None
        self._state = "idle"            # idle | running | pausing | paused | stepping | stopping
        self.slot = JobSlot(memory_hint="try a smaller batch")
        self._shown_step = None
        self._text_at = -1e9            # when the live numbers were last updated (TEXT_RATE)
        self.pacer = FramePacer(LIVE_RATE, share=GUI_SHARE)
        self._last_message = ""
        #: trajectory memory bound of one run, in bytes (sessions/reverse.py)
        self.budget_bytes = TRAJECTORY_BUDGET_MB * 2 ** 20
        self._film_sample = 0
        self._film_next = None          # the step at which the live strip gets its next frame
        self.confirm_box: QMessageBox | None = None   # "Start a new run?" while it is open
        self._build()
        self.record_mb.valueChanged.connect(lambda mb: setattr(self, "budget_bytes", int(mb) * 2 ** 20))
        ctx.model_changed.connect(self._on_model_changed)
        self.cost = cost_line(self)
        ctx.image_changed.connect(self._update_buttons)
        ctx.forward_t_changed.connect(self._on_forward_t)
        self._on_model_changed()

    # ================================================================ widgets
    def _build(self):
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(layout.controls(self))
        self.splitter.addWidget(layout.views(self))
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.splitter)
        self._actions = layout.actions(self)
        self._show_original(False)
        self.xt_view.installEventFilter(self)   # keep the views as tall as their images need
        self.dice.clicked.connect(self._random_seed)
        self.sampler.currentIndexChanged.connect(self._update_buttons)
        self.generate_btn.clicked.connect(self.generate)
        self.stop_btn.clicked.connect(self.stop)
        self.step_btn.clicked.connect(self.step)
        self.continue_btn.clicked.connect(self.resume)
        self.denoise_btn.clicked.connect(self.denoise)
        self.denoise_source.currentIndexChanged.connect(self._update_buttons)
        self.denoise_example.valueChanged.connect(self._update_buttons)
        self.slider.valueChanged.connect(self._show_recorded)
        for fr in self.film:
            fr.clicked.connect(self._film_clicked)

    def eventFilter(self, obj, event):
        if obj is self.xt_view:
            if event.type() == QEvent.Resize:
                self._fit_views()
            elif event.type() == QEvent.MouseButtonPress:
                self._pick_sample(event.position())
        return super().eventFilter(obj, event)

    # ================================================================ parameters
    def settings(self) -> ReverseSettings:
        """The controls as a settings dataclass."""
        return ReverseSettings(sampler=self.sampler.currentData(), steps=int(self.steps.value()),
                               eta=float(self.eta.value()), variance=self.variance.currentData(),
                               clip=self.clip.currentData(), seed=int(self.seed.value()),
                               batch=int(self.batch.value()), class_label=self.guidance_box.class_choice(),
                               guidance=self.guidance_box.guidance(),
                               record_mb=int(self.record_mb.value()))

    def apply_settings(self, s: ReverseSettings):
        for combo, value in ((self.sampler, s.sampler), (self.variance, s.variance),
                             (self.clip, s.clip)):
            combo.setCurrentIndex(max(0, combo.findData(value)))
        self.steps.setValue(s.steps)
        self.eta.setValue(s.eta)
        self.seed.setValue(s.seed)
        self.batch.setValue(s.batch)
        self.record_mb.setValue(s.record_mb)
        self.guidance_box.set_class_choice(s.class_label)
        self.guidance_box.w_spin.setValue(s.guidance)
        self._update_buttons()

    def params(self) -> dict:
        """The make_sampler arguments the controls describe."""
        return self._sampling_params(self.guidance_box.conditional()).as_dict()

    def _sampling_params(self, conditional: bool):
        return self.settings().sampling_params(conditional, self.ctx.device_name, self.ctx.dtype_name)

    def _random_seed(self):
        import random
        self.seed.setValue(random.randrange(0, 2 ** 31 - 1))

    # ================================================================ run control
    def is_active(self) -> bool:
        return self._state != "idle"

    def _worker(self):
        return self._run.job.worker if self._run is not None and self._run.job is not None else None

    def generate(self):
        """Sample a batch from pure noise (stopping any active run first)."""
        self._start("generate")

    def denoise(self):
        """Noise the chosen picture (a held-out example of the model's data, or the forward
        panel's image) to the chosen t and run the reverse process from there."""
        m = self.ctx.model
        if m is None:
            return
        if self.denoise_source.currentData() == "example":
            from ....models.examples import heldout_examples
            ex = heldout_examples(m)
            image = ex.images[min(int(self.denoise_example.value()), len(ex)) - 1]
        elif self.ctx.image is not None:
            image = self.ctx.image
        else:
            return
        t = max(1, min(int(self.denoise_t.value()), m.num_timesteps))
        original = prepare_original(image, m.sample_size, m.in_channels)
        self._start("denoise", original=original, start_t=t)

    def step(self):
        """Idle: start a run and take one step (asking first when that would discard a recorded
        run). Paused: one more step. Running: pause."""
        w = self._worker()
        if self._state == "idle":
            if self.recorded_frames():
                self._ask_new_run()
            else:
                self._start("generate", steps=1)
        elif self._state == "paused" and w is not None:
            self._run.reset_rate()
            self._state = "stepping"
            w.resume(1)
        elif self._state == "running" and w is not None:
            self._state = "pausing"
            w.pause()
            self._park_focus()
        self._update_buttons()

    def _ask_new_run(self):
        """Non-blocking: Step after a run ended starts a new one only if the user says so."""
        if self.confirm_box is not None:
            self.confirm_box.show()
            return
        run = self._run
        frames = run.traj.snapshot()
        how = "finished" if frames[-1].t == 0 else f"stopped at t = {frames[-1].t}"
        box = QMessageBox(QMessageBox.Question, "Start a new run?",
                          f"Step starts a new run from t = {run.T}. The recorded run "
                          f"({how}, {plural(len(frames), 'frame')}) will be discarded.", parent=self)
        new = box.addButton("Discard and step a new run", QMessageBox.AcceptRole)
        box.setDefaultButton(box.addButton("Keep the run", QMessageBox.RejectRole))
        box.setWindowModality(Qt.WindowModal)

        def answered(button):
            self.confirm_box = None
            box.deleteLater()
            if button is new and self._state == "idle" and self._run is run:
                self._start("generate", steps=1)
        box.buttonClicked.connect(answered)
        self.confirm_box = box
        box.open()

    def resume(self):
        """Continue a paused run to its end."""
        w = self._worker()
        if self._state in ("paused", "stepping", "pausing") and w is not None:
            self._run.reset_rate()
            self._state = "running"
            self.slider.setEnabled(False)
            w.set_max_rate(self.pacer.start())   # a pause is no frame time
            w.resume(None)
            self._update_buttons()

    def stop(self):
        """Stop the active run before its next network call; the trajectory stays scrubbable."""
        if self._run is not None and self._state not in ("idle", "stopping"):
            self._state = "stopping"
            self.slot.cancel()
            self._park_focus()
            self._update_buttons()

    def _start(self, kind, *, original=None, start_t=None, steps=None):
        model = self.ctx.model
        if model is None:
            return
        run = ReverseRun(model, self._sampling_params(getattr(model, "classes", None) is not None),
                         kind=kind, original=original, start_t=start_t,
                         budget_bytes=self.budget_bytes)
        self._run = run
        self._run_t0, self._run_paused = time.monotonic(), bool(steps)
        self._state = "stepping" if steps else "running"
        self._shown_step = None
        run.job = self.slot.start(run.make_gen, run.convert, observe=run.observe,
                                  max_rate=self.pacer.start(), steps=steps,
                                  on_progress=lambda p: self._on_progress(run, p),
                                  on_finished=lambda _: self._on_ended(run, "finished"),
                                  on_failed=lambda msg: self._on_ended(run, "failed", msg),
                                  on_cancelled=lambda: self._on_ended(run, "stopped"),
                                  on_paused=lambda: self._on_paused(run))
        self._clear_display(run)
        self._update_buttons()
        self.run_started.emit(run.job.run_id)

    # ================================================================ worker callbacks (GUI thread)
    def _stale(self, run) -> bool:
        """A callback of a run that is no longer the slot's job (one already queued when the
        next run started)."""
        return not self.slot.is_current(run.job)

    def _on_progress(self, run, p):
        if self._stale(run) or self._state == "stopping":
            return
        f, n = p["frame"], p["num_steps"]
        now = time.monotonic()
        text = f.step >= n or now - self._text_at >= 1.0 / TEXT_RATE
        self._show(f, p["xt"], p["x0"], text=text)
        if text:
            self._text_at = now
            self._show_progress(f, n, p["rate"], p["eta_s"])
        self._shown_step = f.step
        # the strip catches up with the run at the numbers' rate, not with every picture
        if text and self._film_next is not None and f.step >= self._film_next:
            self._fill_film(run.traj.snapshot(), live=True)
        self.frame_shown.emit(f.step)
        run.job.worker.set_max_rate(self.pacer.shown())

    def _on_paused(self, run):
        if self._stale(run) or self._state in ("stopping", "idle") or not run.job.worker.is_paused:
            return                       # (Continue was pressed before this signal arrived)
        self._state = "paused"
        self._run_paused = True          # its duration is no longer the run's cost
        run.flush()                      # the worker waits: record what it observed last
        self._say_where(run, "paused", self._enable_scrub(run))
        self._update_buttons()
        self._focus_trajectory()

    def _on_ended(self, run, how: str, msg: str = ""):
        if self._stale(run):
            return
        self._state = "idle"
        if how == "finished" and not self._run_paused:      # what the user waited, a call
            learn_from(self.cost, run, self._run_t0)
        self.cost.refresh()              # a timing waits for the end of a run
        run.flush()                      # the worker has ended: record its last steps
        frames = self._enable_scrub(run)
        if how == "failed":
            self._last_message = msg
            self.progress_text.set_lines(5)
            self.progress_text.setText(f"<span style='color:#c0392b'>Stopped: {msg}</span>")
            self.ctx.error.emit("Sampling stopped", msg)
        elif how == "stopped":
            self._say_where(run, "stopped", frames)
        if how == "finished" and run.kind == "denoise" and frames and frames[-1].t == 0:
            v = psnr(frames[-1].xt, run.original)
            self.result_label.setText(
                f"<b>How much survives:</b> denoised from t = {run.start_t} of {run.T}, the "
                f"results are {v.mean():.1f} dB PSNR from the original on average "
                f"(best {v.max():.1f}, worst {v.min():.1f}; higher is closer).")
            self.result_label.setVisible(True)
        self._update_buttons()
        if how != "failed":
            self._focus_trajectory()
        self.run_ended.emit(run.job.run_id, how)

    def _say_where(self, run, state: str, frames: list[Frame]):
        """The bar and the run box's line at the last recorded frame (the one the scrubber shows),
        in the words of :func:`~diffusion_gui.sessions.reverse.run_text`."""
        if not frames:
            self.progress_text.setText(state)
            return
        f, n = frames[-1], run.traj.n_total - 1
        self._set_progress(steps_done(f.step, n), n)
        self.progress_text.setText(run_text(state, f.t, f.step, n))

    def _focus_trajectory(self):
        """After a pause or a stop the keys scrub the trajectory: focus the scrubber, unless the
        user is typing in another control (focus outside the run box and the trajectory)."""
        fw = QApplication.focusWidget()
        if fw is not None and fw is not self and self.isAncestorOf(fw) and fw not in self._run_widgets():
            return
        if self.slider.isEnabled():
            self.slider.setFocus(Qt.OtherFocusReason)
        else:
            self._park_focus()

    def _run_widgets(self) -> tuple:
        return (self.generate_btn, self.stop_btn, self.step_btn, self.continue_btn, self.slider,
                self.views_panel)

    def _park_focus(self):
        """Keep the focus off the controls while run buttons are disabled: a disabled focused
        button hands the focus to the next control in the tab chain (the Denoise spin box)."""
        fw = QApplication.focusWidget()
        if fw is None or fw in self._run_widgets():
            self.views_panel.setFocus(Qt.OtherFocusReason)

    def recorded_frames(self) -> list[Frame]:
        """The frames recorded by the current (or last) run."""
        return self._run.traj.snapshot() if self._run is not None else []

    def final_images(self):
        """uint8 [B, H, W, C] of the last finished run (the t = 0 frame), else None."""
        return self._run.final_images() if self._run is not None else None

    # ================================================================ context
    def _on_model_changed(self):
        m = self.ctx.model
        self.guidance_box.set_model(m)
        denoise_default(self, m)
        if self._run is not None and self._state != "idle" and self._run.model is not m:
            self.stop()
        if m is not None:
            T = m.num_timesteps
            self.steps.setMaximum(T)
            self.denoise_t.setMaximum(T)
            self._on_forward_t(self.ctx.forward_t)
            self.xt_view.set_placeholder(f"Generate to watch x_{T} turn into "
                                         f"{m.sample_size} px images")
        else:
            self.xt_view.set_placeholder("No model loaded: choose one on the left")
        self._update_buttons()

    def _on_forward_t(self, t: int):
        m = self.ctx.model
        T = m.num_timesteps if m is not None else self.denoise_t.maximum()
        if t and t > 0:
            self.denoise_t.setValue(max(1, min(int(t), T)))
        self._update_buttons()

    def _update_buttons(self, *_):
        has_model = self.ctx.model is not None
        s = self._state
        key = self.sampler.currentData()
        self.steps.setEnabled(key != "ddpm")
        self.eta.setEnabled(key == "ddim")
        self.variance.setEnabled(key != "ddim")
        self.generate_btn.setEnabled(has_model)
        self.stop_btn.setEnabled(s not in ("idle", "stopping"))
        self.step_btn.setEnabled(has_model and s in ("idle", "paused", "running"))
        self.step_btn.setText("Pause" if s == "running" else "Step")
        self.continue_btn.setEnabled(s in ("paused", "stepping", "pausing"))
        example = self.denoise_source.currentData() == "example"
        self.denoise_example.setEnabled(example)
        img = example or self.ctx.image is not None
        self.denoise_btn.setEnabled(has_model and img)
        self.denoise_note.setText(denoise_note(self, has_model, img))
        for a, enabled in self._actions:
            a.setEnabled(enabled())

    # ================================================================ panel contract
    def actions(self) -> list[QAction]:
        """The run buttons and the scrub keys, with their shortcuts (listed by F1)."""
        return [a for a, _ in self._actions]

    def export_sources(self):
        """Final samples and the recorded trajectory (x_t, predicted x₀, or both side by side)."""
        return self._run.export_sources() if self._run is not None else []

    def save_settings(self, settings: QSettings):
        settings_io.save(settings, self.settings())
        settings.setValue("splitter", self.splitter.saveState())

    def restore_settings(self, settings: QSettings):
        self.apply_settings(settings_io.load(settings, ReverseSettings))
        state = settings.value("splitter")
        if state is not None:
            try:
                self.splitter.restoreState(state)
            except TypeError:
                pass

    def shutdown(self):
        """Stop and join every run of the panel (idempotent, never raises)."""
        try:
            self.slot.shutdown()
            self.cost.shutdown()
            self._state = "idle"
            self.picker.shutdown()
            self.guidance_box.shutdown()
        except Exception:  # noqa: BLE001 - shutdown must not raise
            import traceback
            traceback.print_exc()
