"""The Train panel: a view over :class:`~diffusion_gui.sessions.training.TrainSession`.

The training run is the job of one :class:`~diffusion_gui.gui.workers.JobSlot`, copying a
finished run's model another; the side jobs that follow the settings (parameter count and a
step's memory, speed, data preview) are :class:`~.setup_info.SetupInfo`'s, one slot per kind.
Every failure is shown through the one error policy (:func:`diffusion_gui.errors.user_message`).

States: ``idle`` -> ``running`` <-> ``pausing`` -> ``paused``; ``stopping`` -> ``idle``.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QWidget

from ....errors import user_message
from ....sessions.training import (
    TrainSession,
    TrainSettings,
    export_model,
    format_timings,
    model_name,
    parse_timings,
)
from ... import settings_io
from ...format import duration
from ...workers import JobSlot
from . import closing
from .controls import apply_settings, build_controls, read_settings, set_editable, show_source
from .runs_folder import default_runs_dir
from .setup_info import SetupInfo
from .sources import export_sources
from .views import build_views

LIVE_RATE = 10.0         # GUI updates per second, at most
MEMORY_HINT = "try a smaller batch, size or model"
ACTIVE = ("running", "pausing", "paused")
STAGE_TICK_MS = 250      # the start-up line ("Starting (3 s): building the model…") ticks this often


class TrainPanel(QWidget):
    """Train a DDPM from the GUI; live loss curves and sample grids; save and use the model."""

    title = "Train"

    state_changed = Signal(str)     # idle | running | pausing | paused | stopping
    run_ended = Signal(str)         # finished | stopped | failed
    model_saved = Signal(str)       # the folder a model was saved to

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.session = TrainSession(default_runs_dir())
        self._state = "idle"
        self._train = JobSlot(MEMORY_HINT)
        self._export = JobSlot(MEMORY_HINT)     # copying a finished run's model
        self._status_main = ""
        self._data_dir = ""
        self._discard_at_shutdown = False
        self._stage_timer = QTimer(self)
        self._stage_timer.setInterval(STAGE_TICK_MS)
        self._stage_timer.timeout.connect(self._show_stage)
        self._build()
        self.info = SetupInfo(self, MEMORY_HINT)
        self._wire()
        self._update_source()
        self._update_buttons()
        self.runs_folder.refresh()

    def _build(self):
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(build_controls(self))
        lay.addWidget(build_views(self), 1)
        for name in ("loss_plot", "bucket_plot", "raw_curve", "smooth_curve", "step_line"):
            setattr(self, name, getattr(self.plots, name))

    def _wire(self):
        self.browse_btn.clicked.connect(self._browse)
        self.source.currentIndexChanged.connect(self._update_source)
        self.measure_btn.clicked.connect(self.measure)
        for b, slot in ((self.start_btn, self.start), (self.pause_btn, self.pause),
                        (self.resume_btn, self.resume), (self.stop_btn, self.stop),
                        (self.save_btn, self.save_model), (self.use_btn, self.use_model),
                        (self.sample_now_btn, self.sample_now)):
            b.clicked.connect(lambda *_, f=slot: f())
        self.strip.selected.connect(self._grid_selected)
        # (the source combo reaches _config_changed through _update_source)
        self.size.currentIndexChanged.connect(self._config_changed)
        self.channels.currentIndexChanged.connect(self._config_changed)
        self.augment.toggled.connect(self._config_changed)
        self.preset.currentIndexChanged.connect(self._model_changed)
        self.batch.valueChanged.connect(self._model_changed)
        self.steps.valueChanged.connect(self.info.update_estimate)
        self.steps.valueChanged.connect(self._show_total)

    # ---- what tests and benchmarks read
    runs_dir = property(lambda self: self.session.runs_dir, lambda self, d: self._set_runs_dir(d))
    _run = property(lambda self: self.session.run)
    _job = property(lambda self: self._train.job)
    _step = property(lambda self: self.session.step)
    _bucket = property(lambda self: self.session.bucket)
    _timings = property(lambda self: self.session.timings)

    @property
    def state(self) -> str:
        return self._state

    def _set_runs_dir(self, d):
        self.session.runs_dir = Path(d)
        self.runs_folder.refresh()

    # ================================================================ configuration
    def settings(self) -> TrainSettings:
        """The settings the widgets show."""
        return read_settings(self, self._data_dir, format_timings(self.session.timings))

    def config(self, out_dir=None):
        """The :class:`~diffusion_gui.models.train.TrainConfig` of the current settings."""
        return self.settings().config(out_dir)

    def _update_source(self):
        show_source(self, self._state == "idle")
        self._config_changed()

    def _browse(self):
        path = self.choose_data_dir()
        if path:
            self.set_data_folder(path)

    def choose_data_dir(self) -> str | None:
        """Ask for a folder of images (patched in tests)."""
        start = self._data_dir or self.ctx.settings.value("last_folder", str(Path.home()))
        return QFileDialog.getExistingDirectory(self, "Folder of training images", str(start)) or None

    def _show_folder(self, path: str):
        self._data_dir = str(path)
        self.folder.setText(self._data_dir)
        self.folder.setToolTip(self._data_dir)

    def set_data_folder(self, path: str):
        self._show_folder(path)
        self.source.setCurrentIndex(self.source.findData("folder"))
        self._config_changed()

    def _config_changed(self, *_):
        self.info.preview_timer.start()
        self._model_changed()

    def _show_total(self, *_):
        """Before a run the bar reads ``0 / Steps``."""
        if self._state == "idle":
            self.progress.setRange(0, self.steps.value())
            self.progress.setValue(0)

    def _model_changed(self, *_):
        self.info.update_params()
        self.info.update_estimate()

    def measure(self):
        """Time a few training steps of the current preset/size/batch in the background."""
        self.info.measure()

    # ================================================================ running
    def _set_state(self, state: str):
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)
        self._update_buttons()

    def _update_buttons(self):
        s = self._state
        idle = s == "idle"
        can_save = s in ("running", "paused") or (idle and self.session.has_model())
        self.start_btn.setEnabled(idle)
        self.pause_btn.setEnabled(s == "running")
        self.resume_btn.setEnabled(s == "paused")
        self.stop_btn.setEnabled(s in ACTIVE or s == "stopping")   # again: skip the final grid
        self.save_btn.setEnabled(can_save)
        self.use_btn.setEnabled(can_save)
        self.sample_now_btn.setEnabled(s in ("running", "paused"))
        self.measure_btn.setEnabled(idle or self.info.slots["measure"].is_running())
        set_editable(self, idle)

    def start(self):
        """Train a new model with the current settings, in a background worker (if it fits)."""
        if self._state != "idle" or not self.info.memory_fits():
            return
        if self.source.currentData() == "folder" and not self._data_dir:
            self.ctx.error.emit("Cannot start training", "choose a folder of images first")
            return
        try:
            run = self.session.begin(self.settings())
        except OSError as e:
            self.ctx.error.emit("Cannot start training", user_message(e))
            return
        cfg = run.cfg
        self.plots.reset("L_hybrid" if cfg.variance == "learned_range" else "ε-MSE")
        self.strip.clear()
        self._draw_buckets()
        self._status_main = ""
        self._discard_at_shutdown = False
        self.progress.setRange(0, cfg.steps)
        self.progress.setValue(0)
        self.output_label.setText(f"Run folder: {run.run_dir}")
        self.output_label.setToolTip(str(run.run_dir))
        self.strip.caption_extra = f"  ·  DDIM {cfg.sample_steps} steps, seed {cfg.sample_seed}"
        self._set_state("running")
        self.runs_folder.refresh()
        self._show_stage()
        self._stage_timer.start()
        self._train.start(run.make_gen, run.convert, observe=run.observe, max_rate=LIVE_RATE,
                          on_progress=self._on_progress, on_finished=lambda _: self._on_finished(),
                          on_failed=self._on_failed, on_cancelled=self._on_cancelled,
                          on_paused=self._on_paused)

    def pause(self):
        if self._state == "running" and self._train.job is not None:
            self._train.worker.pause()
            self._set_state("pausing")
            self._refresh_status()

    def resume(self):
        if self._state == "paused" and self._train.job is not None:
            self.session.resumed()
            self._set_state("running")
            self._refresh_status()
            self._train.worker.resume()

    def stop(self):
        """Save the state at the current step and end the run (the worker finishes the step);
        pressed again while stopping, abandon the final sample grid."""
        if self._state == "stopping" and self._run is not None:
            self._run.abort()
        if self._state not in ACTIVE or self._train.job is None:
            return
        self._run.request(("checkpoint",), ("stop",))
        self._set_state("stopping")
        self._refresh_status()
        self._train.worker.resume()

    def _ask(self, *actions):
        """A request to the run at the next step boundary; while paused, let the worker take just
        the generator's answer and pause again."""
        self._run.request(*actions)
        if self._state == "paused":
            self._train.worker.resume(steps=1)

    def sample_now(self):
        if self._state in ("running", "paused"):
            self._ask(("sample",))

    def choose_save_dir(self) -> str | None:
        """Ask where to save the model (patched in tests). None: cancelled."""
        last = self.ctx.settings.value("train/last_save_parent", str(Path.home()))
        cfg = self._run.cfg if self._run is not None else self.config()
        path, _ = QFileDialog.getSaveFileName(self, "Save the model as a folder",
                                              str(Path(last) / model_name(cfg)), "Model folder (*)",
                                              options=QFileDialog.DontConfirmOverwrite)
        return path or None

    def save_model(self, dest: str | None = None):
        """Write the model (a diffusers pipeline folder with its model card) to ``dest`` (asked
        when None). While training this saves the state at the current step first."""
        if self._run is None or self._state not in ("running", "paused", "idle"):
            return
        dest = dest or self.choose_save_dir()
        if not dest:
            return
        self.ctx.settings.setValue("train/last_save_parent", str(Path(dest).expanduser().parent))
        if self._state in ("running", "paused"):
            self._ask(("checkpoint",), ("export", dest))
            self._refresh_status(f"Saving to {dest} after this step…")
            return
        run_dir, step = self._run.run_dir, self.session.step
        self._export.start(lambda: export_model(run_dir, dest), background=True,
                                   on_done=lambda path: self._on_saved(str(path), step),
                                   on_failed=lambda m: self.ctx.error.emit("Cannot save the model", m))

    def use_model(self):
        """Switch the app's model (Reverse and Loss panels) to this run's current weights."""
        if self._run is None:
            return
        if self._state in ("running", "paused"):
            self._ask(("checkpoint",), ("use",))
        elif self._state == "idle":
            self.ctx.load_model(self.session.model_path())

    # ---- worker callbacks (GUI thread; a retired run's never arrive)
    def _show_stage(self):
        """Until the first step is in: what the start-up is doing, and for how long."""
        if self._run is None or self.session.step > 0 or self._state not in ACTIVE:
            self._stage_timer.stop()
            return
        text, secs = self._run.stage()
        self._status_main = f"Starting ({duration(secs)}): {text or 'the first step is done'}…"
        self._refresh_status()

    def _on_progress(self, p):
        self._stage_timer.stop()
        self.session.update(p)
        if len(p["hist"][0]):
            self.plots.show_loss(self.session.history)
        self._draw_buckets()
        for step, grid, buckets in p["grids"]:
            self.strip.add(step, grid, buckets)
        for e in p["events"]:
            self._on_event(e)
        self.progress.setValue(min(p["step"], self.progress.maximum()))
        self._update_status(p)

    def _on_event(self, e):
        kind = e["kind"]
        if kind == "timing":
            self.session.record_timing(e["s_per_step"])
            self.info.update_estimate()
        elif kind == "checkpoint":
            self.runs_folder.refresh()
        elif kind == "saved":
            self._on_saved(e["path"], e["step"])
        elif kind == "use":
            self.ctx.load_model(e["path"])
            self.ctx.status.emit(f"Using the training run's model at step {e['step']:,}")
        elif kind == "error":
            self.ctx.error.emit(e["title"], e["message"])
        self._update_buttons()

    def _on_saved(self, path: str, step: int):
        self.session.mark_saved(path, step)
        self.output_label.setText(f"Saved (step {step:,}) to {path}")
        self.output_label.setToolTip(path)
        self.ctx.status.emit(f"Model saved to {path}")
        self.model_saved.emit(path)

    def _update_status(self, p):
        r, left = self.session.rate, self.session.eta()
        smoothed = self.session.history.last_smoothed
        smooth = f" (smoothed {smoothed:.4f})" if smoothed is not None else ""
        self._status_main = (f"step {p['step']:,} of {p['total']:,}  ·  loss {p['loss']:.4f}{smooth}\n"
                             f"{r:.1f} steps/s  ·  {duration(p['elapsed'])} elapsed  ·  "
                             f"{'done' if p['step'] >= p['total'] else 'ETA ' + duration(left)}")
        self._refresh_status()

    def _refresh_status(self, note: str = ""):
        note = note or {"pausing": "Pausing after this step…", "paused": "Paused.",
                        "stopping": "Stopping: saving this step…"}.get(self._state, "")
        self.status_label.setText("\n".join(x for x in (self._status_main, note) if x))

    def _on_paused(self):
        if self._state in ("pausing", "running", "paused"):
            self._set_state("paused")
            self._refresh_status()
            if self._run.pending_requests():   # asked for while pausing: take just the answer
                self._train.worker.resume(steps=1)

    def _end(self, how: str, text: str):
        self._stage_timer.stop()
        self.status_label.setText(text)
        for e in self._run.drain_events():
            self._on_event(e)
        self._set_state("idle")
        self.runs_folder.refresh()
        self.run_ended.emit(how)

    def _on_finished(self):
        s = self.session
        done = s.step >= s.total
        smoothed = s.history.last_smoothed
        self._end("finished" if done else "stopped",
                  f"{'Finished' if done else 'Stopped'} at step {s.step:,} after {duration(s.elapsed)}; "
                  f"loss {float('nan') if smoothed is None else smoothed:.4f} (smoothed).")

    def _on_failed(self, msg):
        self.session.drop_failed()      # nothing was saved: no empty run folder is left behind
        self.ctx.error.emit("Training failed", msg)
        self._end("failed", f"Failed: {msg}")

    def _on_cancelled(self):
        self._end("stopped", f"Cancelled at step {self.session.step:,}.")

    # ---- plots
    def _current_ref(self):
        cur = self.strip.current()
        return None if cur is None else cur[2]

    def _draw_buckets(self):
        self.plots.show_buckets(self.session.bucket, self._current_ref())

    def _grid_selected(self, step: int):
        self.plots.mark(step, self._current_ref())
        self._draw_buckets()

    # ================================================================ app contract
    def ask_save_on_close(self) -> str:
        """"save", "discard" or "cancel" (patched in tests)."""
        return closing.ask_save_on_close(self)

    def is_unsaved(self) -> bool:
        """Training is running, or a run has trained steps that were not saved by the user."""
        return self.session.is_unsaved(self._state != "idle")

    def maybe_close(self) -> bool:
        """Asked before the window closes: offers to save a running or unsaved model; Discard
        removes this session's run folders at :meth:`shutdown`. False keeps the window open."""
        return closing.maybe_close(self)

    def save_now(self, dest: str) -> str:
        """Save synchronously (at close); raises :class:`~diffusion_gui.errors.ExportError`."""
        return closing.save_now(self, dest)

    def shutdown(self):
        """Stop (without saving) and join every thread of the panel. Idempotent."""
        if self._run is not None:
            self._run.abort()
        for slot in (self._train, self._export):
            slot.retire()
        self.info.shutdown()
        for slot in (self._train, self._export):
            slot.shutdown(timeout_ms=None)
        self._stage_timer.stop()
        self._state = "idle"
        if self._discard_at_shutdown:
            self._discard_at_shutdown = False
            self.session.discard_runs()

    def save_settings(self, s: QSettings):
        settings_io.save(s, self.settings())

    def restore_settings(self, s: QSettings):
        st = settings_io.load(s, TrainSettings).usable()
        if st.folder:
            self._show_folder(st.folder)
        apply_settings(self, st)
        self.session.timings.update(parse_timings(st.timings))
        self._update_source()
        self.info.update_estimate()

    def export_sources(self):
        """For the Export dialog (:func:`.sources.export_sources`)."""
        return export_sources(self)
