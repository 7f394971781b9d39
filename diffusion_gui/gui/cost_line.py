"""A panel's "as set up, this run takes ≈ ..." line: one network call timed in the background at
the run's rows on the chosen device (on loading a model, and when the batch, the device or the
precision change), times the calls the run makes (:mod:`diffusion_gui.sessions.cost`); over
:data:`~diffusion_gui.sessions.cost.LONG_RUN_S` it says what to change. Nothing is timed while
the panel's run is active (it would slow the run and be slowed by it); call :meth:`refresh`
when the run ends. Used by the Reverse panel (sampling) and the Losses panel (the bound)."""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from shiboken6 import isValid

from ..errors import UserError
from .format import duration
from .workers import JobSlot

#: settings changes within this time make one timing
TIME_DELAY_MS = 400


class CostLine(QObject):
    """Writes ``label`` (anything with ``setText``) for panel ``p`` (``p.ctx``, ``p.is_active()``).

    ``plan()`` -> ``(rows, cost_of)`` for the run as set up, or None when there is none:
    ``cost_of(timing)`` is the :class:`~diffusion_gui.sessions.cost.RunCost`. ``signals``:
    the controls' change signals; the context's model and device changes are added."""

    def __init__(self, p, label, plan, signals=()):
        super().__init__(p)
        self.p, self.label, self.plan = p, label, plan
        self.slot = JobSlot("try a smaller batch")
        self.timings: dict = {}             # (model id, device, dtype, rows) -> CallTiming
        self._timer = QTimer(self, singleShot=True, interval=TIME_DELAY_MS)
        self._timer.timeout.connect(self._time)
        for sig in (*signals, p.ctx.model_changed, p.ctx.device_changed):
            sig.connect(self.refresh)

    def shutdown(self):
        self._timer.stop()
        self.slot.retire()
        self.slot.shutdown(timeout_ms=None)

    def _key(self, rows: int):
        ctx = self.p.ctx
        return (id(ctx.model), ctx.device_in_use(), ctx.dtype_name, int(rows))

    def learn(self, rows: int, seconds_per_call: float):
        """A finished run's own figure (its steps over its time, the step's maths and the
        recording included) replaces the timed call for its rows: the next estimate is the
        measured one."""
        from ..sessions.cost import CallTiming
        if seconds_per_call > 0:
            key = self._key(rows)
            self.timings[key] = CallTiming(float(seconds_per_call), int(rows), key[1], key[2])

    def _nearest(self, key):
        """A timing of this model, device and precision: at these rows, else the closest rows."""
        if key in self.timings:
            return self.timings[key], True
        same = [t for k, t in self.timings.items() if k[:3] == key[:3]]
        return (min(same, key=lambda t: abs(t.rows - key[3])), False) if same else (None, False)

    def _planned(self):
        """The plan, or None without a model or for settings a run would refuse (it says why)."""
        try:
            return None if self.p.ctx.model is None else self.plan()
        except UserError:
            return None

    def refresh(self, *_):
        planned = self._planned()
        if planned is None:
            self.label.setText("")
            return
        rows, cost_of = planned
        timing, exact = self._nearest(self._key(rows))
        try:
            text = ("<span style='color:#777'>timing one network call…</span>" if timing is None
                    else self.text(cost_of(timing), exact))
        except UserError:
            text = ""
        self.label.setText(text)
        if not exact and not self.p.is_active():
            self._timer.start()

    @staticmethod
    def text(c, exact: bool = True) -> str:
        """``c``: a :class:`~diffusion_gui.sessions.cost.RunCost`, as one or two lines of rich text."""
        head = (f"As set up: <b>≈ {duration(c.seconds, 1)}</b> on {c.device} "
                f"({c.calls} calls × {duration(c.per_call, 2)}{'' if exact else ', scaled'})")
        if not c.long:
            return head
        tips = " · ".join(f"{what}: ≈ {duration(s, 1)}" for what, s in c.suggestions)
        return head + (f"<br><span style='color:#b9770e'>Long. Try {tips}</span>" if tips else "")

    def _time(self):
        from ..sessions.cost import time_network_call
        m = self.p.ctx.model
        planned = None if self.p.is_active() else self._planned()
        if planned is None:
            return
        key = self._key(planned[0])
        if key in self.timings:
            return
        _, device, dtype, rows = key

        def done(timing):
            if not isValid(self.label):           # the panel went before the timing ended
                return
            self.timings[key] = timing          # and under the device "auto" resolved to
            self.timings[(key[0], timing.device, *key[2:])] = timing
            self.refresh()

        job = self.slot.start(lambda: time_network_call(m, rows, device, dtype), background=True,
                              on_done=done, abandonable=True,
                              on_failed=lambda msg: isValid(self.label) and self.label.setText(
                                  f"<span style='color:#c0392b'>{msg}</span>"))
        # idle between timings, the line keeps no job (nor its QThread) alive
        job.thread.finished.connect(self._forget, Qt.QueuedConnection)

    def _forget(self):
        self.slot.forget()
