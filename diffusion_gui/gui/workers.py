"""Background work for the GUI: a QObject worker moved onto a QThread iterates a core generator.

Rules (DESIGN.md, Threads): the worker checks a cancel flag between items; a ``convert`` callable
runs *in the worker thread* and turns each item into plain Python / numpy (no tensor crosses a
signal); partial results are emitted latest-wins at most ``max_rate`` per second; every emission
carries the run id so the receiver drops frames of a stale run; :meth:`Job.stop` joins the thread.
"""
from __future__ import annotations

import itertools
import threading
import time
import traceback
from typing import Any, Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

_run_ids = itertools.count(1)


class GeneratorWorker(QObject):
    """Iterates ``make_gen()`` in its thread. Signals carry ``(run_id, payload)``.

    ``convert(item) -> payload`` runs in the worker thread; ``keep(item, payload) -> bool`` says
    whether an item must be delivered even when rate limiting would skip it (e.g. a recorded
    trajectory frame is stored by the worker itself, so only the display is throttled).
    """

    progress = Signal(int, object)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)

    def __init__(self, make_gen: Callable[[], Iterator], convert: Callable[[Any], Any] = lambda x: x,
                 *, max_rate: float = 30.0, finish: Callable[[Any], Any] | None = None,
                 error_text: Callable[[BaseException], str | None] | None = None):
        super().__init__()
        self.run_id = next(_run_ids)
        self._make_gen = make_gen
        self._convert = convert
        self._finish = finish
        self._error_text = error_text
        self._min_dt = 1.0 / max_rate if max_rate else 0.0
        self._cancel = threading.Event()
        self._pause = threading.Event()
        self._pause.set()  # set = running
        self._step_budget: int | None = None
        self._budget_lock = threading.Lock()

    # ---- control, safe from any thread
    def cancel(self):
        self._cancel.set()
        self._pause.set()

    def pause(self):
        self._pause.clear()

    def resume(self, steps: int | None = None):
        """Continue; with ``steps`` run that many more items then pause again."""
        with self._budget_lock:
            self._step_budget = steps
        self._pause.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @Slot()
    def run(self):
        rid = self.run_id
        last_emit = 0.0
        pending = None
        payload = None
        try:
            gen = self._make_gen()
            for item in gen:
                payload = self._convert(item)
                now = time.monotonic()
                if now - last_emit >= self._min_dt:
                    self.progress.emit(rid, payload)
                    last_emit, pending = now, None
                else:
                    pending = payload
                with self._budget_lock:
                    if self._step_budget is not None:
                        self._step_budget -= 1
                        if self._step_budget <= 0:
                            self._step_budget = None
                            self._pause.clear()
                if not self._pause.is_set():
                    if pending is not None:  # show where we paused
                        self.progress.emit(rid, pending)
                        pending = None
                    self._pause.wait()
                if self._cancel.is_set():
                    gen.close()
                    self.cancelled.emit(rid)
                    return
            if pending is not None:
                self.progress.emit(rid, pending)
            self.finished.emit(rid, self._finish(payload) if self._finish else payload)
        except Exception as e:  # a failed run is reported, never raised into Qt
            msg = self._error_text(e) if self._error_text else None
            if msg is None:
                msg = f"{type(e).__name__}: {e}"
                traceback.print_exc()
            self.failed.emit(rid, msg)


class Job:
    """A worker on its own QThread. ``start()``; ``stop()`` cancels and joins (idempotent)."""

    def __init__(self, worker: GeneratorWorker):
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName(f"diffusion-gui-job-{worker.run_id}")
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        for sig in (worker.finished, worker.failed, worker.cancelled):
            sig.connect(self.thread.quit)

    @property
    def run_id(self) -> int:
        return self.worker.run_id

    def start(self) -> "Job":
        self.thread.start()
        return self

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def stop(self, timeout_ms: int = 10000) -> bool:
        """Cancel, wait for the thread to end; True if it ended in time."""
        self.worker.cancel()
        self.thread.quit()
        ok = self.thread.wait(timeout_ms)
        return bool(ok)


class _Relay(QObject):
    """Lives in the GUI thread: receives the worker's queued signals, drops other runs' items,
    and calls plain Python callbacks there."""

    def __init__(self, rid, on_progress, on_finished, on_failed, on_cancelled):
        super().__init__()
        self.rid = rid
        self.cbs = (on_progress, on_finished, on_failed, on_cancelled)

    @Slot(int, object)
    def progress(self, rid, payload):
        if rid == self.rid and self.cbs[0]:
            self.cbs[0](payload)

    @Slot(int, object)
    def finished(self, rid, payload):
        if rid == self.rid and self.cbs[1]:
            self.cbs[1](payload)

    @Slot(int, str)
    def failed(self, rid, msg):
        if rid == self.rid and self.cbs[2]:
            self.cbs[2](msg)

    @Slot(int)
    def cancelled(self, rid):
        if rid == self.rid and self.cbs[3]:
            self.cbs[3]()


def run_job(make_gen, convert=lambda x: x, *, on_progress=None, on_finished=None, on_failed=None,
            on_cancelled=None, max_rate: float = 30.0, finish=None, error_text=None) -> Job:
    """Start ``make_gen`` on a new thread and connect the callbacks. Call from the GUI thread:
    callbacks then run in the GUI thread with the payload only, and emissions of other runs
    never reach them."""
    w = GeneratorWorker(make_gen, convert, max_rate=max_rate, finish=finish, error_text=error_text)
    job = Job(w)
    job.relay = _Relay(w.run_id, on_progress, on_finished, on_failed, on_cancelled)
    w.progress.connect(job.relay.progress)
    w.finished.connect(job.relay.finished)
    w.failed.connect(job.relay.failed)
    w.cancelled.connect(job.relay.cancelled)
    return job.start()


def call_in_background(fn: Callable[[], Any], *, on_done=None, on_failed=None, error_text=None) -> Job:
    """Run one function off the GUI thread (e.g. loading a model); result via ``on_done``."""
    def gen():
        yield fn()
    return run_job(gen, on_finished=on_done, on_failed=on_failed, max_rate=0, error_text=error_text)
