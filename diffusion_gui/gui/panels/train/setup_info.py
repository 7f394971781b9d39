"""What the Train panel's settings amount to, worked out in the background while they change:
the model's parameter count, the speed on this machine (measured, or timed on a run's first
steps) and the data preview, as the model will see it.

Each kind of side job has its own :class:`~diffusion_gui.gui.workers.JobSlot`: the latest
request of a kind wins, and a stale result never reaches a label.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

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
        self._params_cache: dict = {}
        self.preview_timer = QTimer(self)
        self.preview_timer.setSingleShot(True)
        self.preview_timer.setInterval(PREVIEW_DELAY_MS)
        self.preview_timer.timeout.connect(self.refresh_preview)

    def shutdown(self):
        """Stop the timer; detach, cancel and join every side job."""
        self.preview_timer.stop()
        for slot in self.slots.values():
            slot.retire()
        for slot in self.slots.values():
            slot.shutdown(timeout_ms=None)

    # ---- parameters
    def update_params(self):
        p = self.p
        key = (p.preset.currentData(), int(p.channels.currentData()), int(p.size.currentData()))
        if key in self._params_cache:
            p.params_label.setText(f"{self._params_cache[key]:,}  ·  {PRESET_NOTES[key[0]]}")
            return
        p.params_label.setText("counting…")
        preset, channels, size = key

        def count():
            from ....models.unet import build_unet, count_parameters
            return count_parameters(build_unet(preset, size, channels))

        def done(n):
            self._params_cache[key] = int(n)
            self.update_params()

        self.slots["count"].start(count, background=True, on_done=done, abandonable=True,  # read-only
                                  on_failed=lambda m: p.params_label.setText("–"))

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
