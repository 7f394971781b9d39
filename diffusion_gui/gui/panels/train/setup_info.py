"""What the Train panel's settings amount to, worked out in the background while they change:
the model's parameter count and the peak memory of one training step (estimated by
:mod:`diffusion_gui.models.step_memory`, shown against the memory available now), the speed on
this machine (measured, or timed on a run's first steps) and the data preview, as the model
will see it.

Each kind of side job has its own :class:`~diffusion_gui.gui.workers.JobSlot`: the latest
request of a kind wins, and a stale result never reaches a label.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from ....models import step_memory
from ....models.train import unet_kwargs
from ....sessions.training import PRESET_NOTES, data_preview
from ...format import duration, rate
from ...workers import JobSlot

PREVIEW_DELAY_MS = 200   # settings changes within this time make one preview


class SetupInfo(QObject):
    """The side jobs of panel ``p`` (reads its widgets and session; writes ``params_label``,
    ``estimate_label``, ``measure_btn``, ``preview`` and ``data_info``)."""

    def __init__(self, p, memory_hint: str = ""):
        super().__init__(p)
        self.p = p
        self.slots = {k: JobSlot(memory_hint) for k in ("count", "measure", "preview")}
        self._params_cache: dict = {}    # network key -> NetworkMemory (None: failed)
        self._counting = None            # the network key the count job measures
        self._then = None                # (key, callback) to call once that key is measured
        self.preview_timer = QTimer(self)
        self.preview_timer.setSingleShot(True)
        self.preview_timer.setInterval(PREVIEW_DELAY_MS)
        self.preview_timer.timeout.connect(self.refresh_preview)
        for changed in (p.variance.currentIndexChanged, p.conditional.toggled):   # another network
            changed.connect(lambda *_: self.update_params())

    def shutdown(self):
        """Stop the timer; detach, cancel and join every side job."""
        self.preview_timer.stop()
        for slot in self.slots.values():
            slot.retire()
        for slot in self.slots.values():
            slot.shutdown(timeout_ms=None)

    # ---- parameters and memory
    def _network_key(self, st) -> tuple:
        """What the parameter count and a step's memory depend on but the batch:
        ``(preset, size, channels, variance, class embeddings)``, as training builds it."""
        cfg = st.config()
        return (cfg.preset, cfg.size, cfg.channels, cfg.variance, unet_kwargs(cfg)["num_class_embeds"])

    def step_memory(self, st) -> tuple[bool, int | None]:
        """``(known, estimated peak bytes of one step)`` of settings ``st``, without computing:
        ``(False, None)`` while its network was not measured, ``(True, None)`` if that failed."""
        key = self._network_key(st)
        if key not in self._params_cache:
            return False, None
        net = self._params_cache[key]
        return True, None if net is None else net.step_bytes(st.batch)

    def update_params(self, then=None):
        """Show the parameter count and a step's memory of the current settings, measuring the
        network in the background first if needed; ``then()`` once they are known (the
        settings unchanged meanwhile)."""
        p = self.p
        st = p.settings()
        key = self._network_key(st)
        if key in self._params_cache:
            self._show_params(key, st.batch)
            self._then = None
            if then is not None:
                then()
            return
        if then is not None:
            self._then = (key, then)
        elif self._then is not None and self._then[0] != key:
            self._then = None            # the settings Start was pressed for changed
        if self._counting == key and self.slots["count"].is_running():
            return
        p.params_label.setText("counting…")
        self._counting = key

        def count():
            return step_memory.network_memory(*key)

        def ended(net):
            self._params_cache[key] = net
            self._counting = None
            pending, self._then = self._then, None
            if self._network_key(p.settings()) == key:
                self.update_params(pending[1] if pending and pending[0] == key else None)

        self.slots["count"].start(count, background=True, on_done=ended, abandonable=True,  # read-only
                                  on_failed=lambda m: (ended(None), p.params_label.setText("–")))

    def memory_fits(self) -> bool:
        """Whether one step of the panel's settings fits in the memory available (a torch step
        cannot be interrupted): refused with a message when not. While the estimate is not
        known yet it is worked out in the background, then Start is pressed again."""
        p = self.p
        st = p.settings()
        known, estimate = self.step_memory(st)
        if not known:
            p.ctx.status.emit("Checking how much memory a training step needs…")
            self.update_params(then=p.start)
            return False
        if estimate is None:            # the network could not be built: the run will say why
            return True
        reason = p.session.memory_check(st, estimate, step_memory.available_memory_bytes())
        if reason is not None:
            p.ctx.error.emit("Cannot start training", reason)
        return reason is None

    def _show_params(self, key: tuple, batch: int):
        net = self._params_cache[key]
        if net is None:
            self.p.params_label.setText("–")
            return
        free = step_memory.available_memory_bytes()
        self.p.params_label.setText(
            f"{net.parameters:,}  ·  {PRESET_NOTES[key[0]]}  ·  a step needs ≈ "
            f"{step_memory.format_bytes(net.step_bytes(batch))} of {step_memory.format_bytes(free)} free")

    # ---- speed
    def update_estimate(self, *_):
        st = self.p.settings()
        est = self.p.session.estimate(st)
        if est is None:
            self.p.estimate_label.setText("not measured for this size and batch yet: press Measure, "
                                          "or start (the first steps are timed)")
            return
        self.p.estimate_label.setText(f"≈ {rate(est[0])} on this machine (measured)\n"
                                      f"{st.steps:,} steps ≈ {duration(est[1])}")

    def measure(self):
        """Time a few training steps of the current preset/size/batch in the background; while
        that runs the button cancels it (between two steps: a big preset's step takes long)."""
        p = self.p
        slot = self.slots["measure"]
        if slot.is_running():
            slot.worker.cancel()
            p.measure_btn.setEnabled(False)
            p.estimate_label.setText("cancelling after the current step…")
            return
        st = p.settings()
        key = st.timing_key()
        p.measure_btn.setText("Cancel")
        p.estimate_label.setText("measuring…")

        def make_gen():
            from ....models.train import timed_steps
            return timed_steps(st.preset, st.size, st.channels, st.batch, steps=3)

        def ended(seconds=None, msg=None):
            p.measure_btn.setText("Measure")
            p.measure_btn.setEnabled(p.state == "idle")
            if seconds is not None:
                p.session.timings[key] = float(seconds)
            if msg is not None:
                p.ctx.error.emit("Cannot measure", msg)
            self.update_estimate()

        slot.start(make_gen, on_finished=lambda s: ended(s), on_failed=lambda m: ended(msg=m),
                   on_cancelled=ended, abandonable=True)   # in memory only, writes nothing

    # ---- data preview
    def refresh_preview(self):
        p = self.p
        st = p.settings()
        if st.source == "folder" and not st.folder:
            self.slots["preview"].retire()
            p.preview.set_image(None)
            p.preview.set_placeholder("choose a folder of images")
            p.data_info.setText("")
            return
        cfg = st.config()
        p.preview.set_placeholder("loading the data…")

        def done(res):
            grid, n = res
            p.preview.set_image(grid)
            shift = " · ±1 px shifts" if cfg.augment else ""
            colour = "grey" if cfg.channels == 1 else "RGB"
            p.preview.set_caption(f"{min(n, 64)} of {n:,} · {cfg.size}×{cfg.size} {colour}{shift}")
            p.data_info.setText(f"{n:,} training images")

        def failed(msg):
            p.preview.set_image(None)
            p.preview.set_caption("")
            p.preview.set_placeholder(msg)
            p.data_info.setText(msg)

        self.slots["preview"].start(lambda: data_preview(cfg), background=True, on_done=done,
                                    on_failed=failed, abandonable=True)   # reads the data only
