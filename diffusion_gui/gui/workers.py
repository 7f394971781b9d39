"""Background work for the GUI: a QObject worker moved onto a QThread iterates a core generator.

Rules (DESIGN.md, Threads):

- the worker checks a cancel flag after every item, so a cancelled sampler stops *before* its next
  network call (the core samplers yield before stepping);
- ``observe(item)`` (optional) runs in the worker thread for *every* item: record it, check it;
  raising there fails the run with a message;
- ``convert(item) -> payload`` runs in the worker thread and turns an item into plain Python /
  numpy (no tensor crosses a signal). It is called **lazily**, only for items that are actually
  emitted, so an expensive conversion never slows a fast generator down;
- partial results are emitted latest-wins, at most ``max_rate`` per second, and never more than
  one undelivered ``progress`` at a time when the receiver acknowledges (``run_job`` does), so a
  busy GUI thread never accumulates a queue of stale frames;
- every emission carries the run id; :meth:`Job.detach` disconnects a run's callbacks so that a
  stopped run's late signals never reach the receiver;
- :meth:`Job.stop` cancels and joins. Threads end on their own when the generator is exhausted
  (the worker quits its thread directly, without a round trip through the GUI event loop).
- a job made with ``abandonable=True`` does read-only work that cannot be cancelled midway
  (importing torch, reading a model, scanning the hub cache). The app (``run_gui``) calls
  :func:`abandon_at_quit`, after which stopping such a job waits only a moment; if one is still
  running once the window has shut down, ``run_gui`` ends the process at once (nothing is lost:
  the job only reads) instead of making the user wait seconds for an import to finish.
"""
from __future__ import annotations

import atexit
import itertools
import threading
import time
import traceback
from typing import Any, Callable, Iterator

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

_run_ids = itertools.count(1)
_NOTHING = object()


class GeneratorWorker(QObject):
    """Iterates ``make_gen()`` in its thread. Signals carry ``(run_id, payload)``.

    ``make_gen`` is called in the worker thread (slow set-up such as building tensors happens
    there). ``convert(item) -> payload`` runs in the worker thread, only for items that are
    emitted; ``observe(item)`` runs there for every item. ``finish(payload)`` maps the payload of
    the last item to the ``finished`` payload. ``error_text(exc) -> str | None`` turns a known
    exception into a one-line message (None: a bug; the traceback is printed).
    """

    progress = Signal(int, object)
    paused = Signal(int)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)

    def __init__(self, make_gen: Callable[[], Iterator], convert: Callable[[Any], Any] = lambda x: x,
                 *, max_rate: float = 30.0, finish: Callable[[Any], Any] | None = None,
                 error_text: Callable[[BaseException], str | None] | None = None,
                 observe: Callable[[Any], None] | None = None):
        super().__init__()
        self.run_id = next(_run_ids)
        self._make_gen = make_gen
        self._convert = convert
        self._finish = finish
        self._error_text = error_text
        self._observe = observe
        self._min_dt = 1.0 / max_rate if max_rate else 0.0
        self._cancel = threading.Event()
        self._pause = threading.Event()
        self._pause.set()  # set = running
        self._step_budget: int | None = None
        self._lock = threading.Lock()
        self._backpressure = False   # set by run_job: the relay acknowledges each progress
        self._in_flight = 0          # progress emissions not yet delivered
        self._converted = (_NOTHING, None)
        self.items = 0               # items taken from the generator (diagnostics, tests)
        self.thread_ident = None     # the thread running it, once it runs (diagnostics)
        self.emitted = 0             # progress emissions

    # ---- control, safe from any thread
    def cancel(self):
        """Stop after the current item (before the next one is computed)."""
        self._cancel.set()
        self._pause.set()

    def pause(self):
        """Pause after the current item; ``resume()`` continues."""
        self._pause.clear()

    def resume(self, steps: int | None = None):
        """Continue; with ``steps`` take that many more items, then pause again."""
        with self._lock:
            self._step_budget = steps
        self._pause.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def is_paused(self) -> bool:
        return not self._pause.is_set()

    def set_max_rate(self, rate: float):
        """Emit at most ``rate`` items per second from now on (0: every item); safe from any
        thread (e.g. a :class:`~diffusion_gui.gui.frame_pacer.FramePacer` in the GUI thread)."""
        self._min_dt = 1.0 / rate if rate else 0.0

    def acknowledge(self):
        """The receiver has handled one ``progress`` emission (called by the relay)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    # ---- the loop, in the worker thread
    def _payload(self, item):
        """``convert(item)``, at most once per item (the last conversion is remembered)."""
        if self._converted[0] is not item:
            self._converted = (item, self._convert(item))
        return self._converted[1]

    def _emit(self, rid, item, force=False) -> bool:
        with self._lock:
            if self._backpressure and self._in_flight and not force:
                return False
            self._in_flight += 1
        self.progress.emit(rid, self._payload(item))
        self.emitted += 1
        return True

    @Slot()
    def run(self):
        rid = self.run_id
        self.thread_ident = threading.get_ident()     # diagnostics: its stack, sys._current_frames()
        last_emit = -1e9
        pending = _NOTHING    # the latest item not yet emitted (it is always the current item)
        last = _NOTHING
        gen = None
        ended = None          # (signal, args): the run's outcome, emitted last of all (below)
        self._converted = (_NOTHING, None)
        try:
            if self._cancel.is_set():
                ended = (self.cancelled, (rid,))
                return
            gen = self._make_gen()
            for item in gen:
                self.items += 1
                if self._cancel.is_set():
                    ended = (self.cancelled, (rid,))
                    return
                last = item
                if self._observe is not None:
                    self._observe(item)
                now = time.monotonic()
                if now - last_emit >= self._min_dt and self._emit(rid, item):
                    last_emit, pending = now, _NOTHING
                else:
                    pending = item
                with self._lock:
                    if self._step_budget is not None:
                        self._step_budget -= 1
                        if self._step_budget <= 0:
                            self._step_budget = None
                            self._pause.clear()
                if not self._pause.is_set() and not self._cancel.is_set():
                    if pending is not _NOTHING:  # show where we paused
                        self._emit(rid, pending, force=True)
                        pending = _NOTHING
                    self.paused.emit(rid)
                    self._pause.wait()
                    last_emit = time.monotonic()
                if self._cancel.is_set():
                    ended = (self.cancelled, (rid,))
                    return
            payload = None
            if last is not _NOTHING:
                if pending is not _NOTHING:  # the last item is always shown
                    self._emit(rid, last, force=True)
                payload = self._payload(last)
            ended = (self.finished, (rid, self._finish(payload) if self._finish else payload))
        except Exception as e:  # a failed run is reported, never raised into Qt
            msg = self._error_text(e) if self._error_text else None
            if msg is None:
                msg = f"{type(e).__name__}: {e}"
                traceback.print_exc()
            ended = (self.failed, (rid, msg))
        finally:
            if gen is not None and hasattr(gen, "close"):
                try:
                    gen.close()
                except Exception:  # noqa: BLE001 - closing must never mask the outcome
                    pass
            # free the closures (and the tensors they hold) as soon as the run ends
            self._make_gen = self._convert = self._observe = self._finish = None
            self._converted = (_NOTHING, None)
            app = QCoreApplication.instance()
            thread = QThread.currentThread()
            moved = app is not None and thread is not app.thread()
            if moved:
                # so that it is deleted in the GUI thread. Before the outcome is emitted: this
                # call holds the GIL while it takes Qt's locks, and a GUI thread reacting to the
                # outcome (a connect or disconnect that asks Python for an override) holds a Qt
                # lock while it waits for the GIL; at the same moment the two deadlocked.
                self.moveToThread(app.thread())
            if ended is not None:
                ended[0].emit(*ended[1])
            if moved:
                thread.quit()                    # exec() returns at once: no GUI round trip


class Job:
    """A worker on its own QThread. ``start()``; ``stop()`` cancels and joins (idempotent)."""

    def __init__(self, worker: GeneratorWorker, *, abandonable: bool = False):
        self.worker = worker
        self.abandonable = abandonable      # see abandon_at_quit()
        self._abandoned = False
        self.relay = None
        self.thread = QThread()
        self.thread.setObjectName(f"diffusion-gui-job-{worker.run_id}")
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run, Qt.DirectConnection)

    @property
    def run_id(self) -> int:
        return self.worker.run_id

    def start(self) -> "Job":
        _keep_until_finished(self)
        self.thread.start()
        return self

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def cancel(self):
        """Ask the worker to stop after its current item, without waiting."""
        self.worker.cancel()

    def detach(self):
        """Disconnect the callbacks: nothing of this run reaches the receiver any more."""
        if self.relay is not None:
            self.relay.cbs = (None,) * len(self.relay.cbs)

    def stop(self, timeout_ms: int | None = 10000) -> bool:
        """Cancel, wait for the thread to end (``timeout_ms=None``: however long the current
        item takes); True if it ended in time. An abandonable job waits at most the grace of
        :func:`abandon_at_quit` once that has been called."""
        self.worker.cancel()
        if self.abandonable and _abandon_grace_ms is not None:
            if self._abandoned:                 # waited once already: not again at every stop
                return self.thread.isFinished()
            timeout_ms = _abandon_grace_ms if timeout_ms is None else min(timeout_ms,
                                                                          _abandon_grace_ms)
            self._abandoned = not self.thread.wait(timeout_ms)
            return not self._abandoned
        if timeout_ms is None:
            return bool(self.thread.wait())
        return bool(self.thread.wait(timeout_ms))


class _Keeper(QObject):
    """Holds a reference to every started Job until its thread has finished, so that a Job the
    caller forgot can never be garbage-collected (and its QThread destroyed) while running."""

    def __init__(self):
        super().__init__()
        self.jobs: set = set()
        app = QCoreApplication.instance()
        if app is not None:  # a safety net: no QThread may outlive the application running
            app.aboutToQuit.connect(self.stop_all)

    @Slot()
    def stop_all(self):
        for job in list(self.jobs):
            job.detach()
            job.stop(timeout_ms=None)
        self.release()

    @Slot()
    def release(self):
        for job in [j for j in self.jobs if j.thread.isFinished()]:
            self.jobs.discard(job)


_keeper: _Keeper | None = None
_abandon_grace_ms: int | None = None


def abandon_at_quit(grace_ms: int = 100):
    """From now on, :meth:`Job.stop` waits at most ``grace_ms`` for an *abandonable* job (one
    that only reads and cannot be cancelled midway, e.g. importing torch or reading a model).

    Only for the app's own process (``run_gui`` calls it), which must then end with
    :func:`os._exit` while :func:`abandoned_jobs` is not zero: a QThread destroyed while its
    thread runs aborts the process. Until the exit, the keeper holds every such job.
    """
    global _abandon_grace_ms
    _abandon_grace_ms = int(grace_ms)


def abandoned_jobs() -> int:
    """Abandonable jobs still running (see :func:`abandon_at_quit`)."""
    if _keeper is None:
        return 0
    _keeper.release()
    return sum(1 for j in _keeper.jobs if j.abandonable and not j.thread.isFinished())


def _keep_until_finished(job: "Job"):
    global _keeper
    if _keeper is None:
        _keeper = _Keeper()  # created in the GUI thread (jobs are started from there)
    _keeper.jobs.add(job)
    job.thread.finished.connect(_keeper.release, Qt.QueuedConnection)


@atexit.register
def _join_at_exit():
    """A script that never ran ``app.exec()`` (so no aboutToQuit) must not end with a QThread
    still running: Qt would abort the process while Python tears its objects down."""
    if _keeper is not None:
        try:
            _keeper.stop_all()
        except RuntimeError:  # the keeper's C++ object is already gone
            pass


def running_jobs() -> int:
    """How many started jobs have not yet been released (for leak tests)."""
    if _keeper is None:
        return 0
    _keeper.release()
    return len(_keeper.jobs)


class _Relay(QObject):
    """Lives in the GUI thread: receives the worker's queued signals, drops other runs' items,
    acknowledges each progress item, and calls plain Python callbacks there."""

    def __init__(self, worker, on_progress, on_finished, on_failed, on_cancelled, on_paused=None):
        super().__init__()
        self.rid = worker.run_id
        self.worker = worker
        self.cbs = (on_progress, on_finished, on_failed, on_cancelled, on_paused)

    @Slot(int, object)
    def progress(self, rid, payload):
        self.worker.acknowledge()
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

    @Slot(int)
    def paused(self, rid):
        if rid == self.rid and self.cbs[4]:
            self.cbs[4]()


def run_job(make_gen, convert=lambda x: x, *, on_progress=None, on_finished=None, on_failed=None,
            on_cancelled=None, on_paused=None, max_rate: float = 30.0, finish=None, error_text=None,
            observe=None, steps: int | None = None, abandonable: bool = False) -> Job:
    """Start ``make_gen`` on a new thread and connect the callbacks. Call from the GUI thread:
    callbacks then run in the GUI thread with the payload only, and emissions of other runs
    never reach them. ``steps``: take that many items, then pause (``worker.resume()``)."""
    w = GeneratorWorker(make_gen, convert, max_rate=max_rate, finish=finish, error_text=error_text,
                        observe=observe)
    w._backpressure = True
    if steps is not None:
        w.resume(steps)
    job = Job(w, abandonable=abandonable)
    job.relay = _Relay(w, on_progress, on_finished, on_failed, on_cancelled, on_paused)
    w.progress.connect(job.relay.progress)
    w.finished.connect(job.relay.finished)
    w.failed.connect(job.relay.failed)
    w.cancelled.connect(job.relay.cancelled)
    w.paused.connect(job.relay.paused)
    return job.start()


def call_in_background(fn: Callable[[], Any], *, on_done=None, on_failed=None, error_text=None,
                       abandonable: bool = False) -> Job:
    """Run one function off the GUI thread (e.g. loading a model); result via ``on_done``.
    ``abandonable=True`` for read-only work that need not be waited for at quit (see
    :func:`abandon_at_quit`); never for work that writes files."""
    def gen():
        yield fn()
    gen.__qualname__ = f"call_in_background({getattr(fn, '__qualname__', repr(fn))})"   # diagnostics
    return run_job(gen, on_finished=on_done, on_failed=on_failed, max_rate=0, error_text=error_text,
                   abandonable=abandonable)


def error_text(e: BaseException, memory_hint: str = "") -> str | None:
    """The GUI's one error policy: :func:`diffusion_gui.errors.user_message` (None: a bug)."""
    from ..errors import user_message
    return user_message(e, memory_hint=memory_hint)


class JobSlot:
    """The one current job of a panel (or dialog): the shared start / retire / shutdown path.

    ``start(make_gen, ...)`` retires the job before it (its callbacks are detached at once, so a
    stale run's late results never arrive: the run ids of :class:`_Relay` do the rest) and starts
    the new one with the one error policy, :func:`error_text`. ``shutdown()`` detaches, cancels
    and joins every job the slot ever started that is still running. ``memory_hint`` ends the
    message of a ``MemoryError`` ("try a smaller batch").
    """

    def __init__(self, memory_hint: str = ""):
        self.job: Job | None = None
        self.memory_hint = memory_hint
        self._retired: list[Job] = []

    def start(self, make_gen, convert=lambda x: x, *, background: bool = False, **kw) -> Job:
        """Retire the current job, then :func:`run_job` (``background=True``: one call,
        :func:`call_in_background` with ``fn=make_gen``). Keyword arguments go to it."""
        self.retire()
        kw.setdefault("error_text", lambda e: error_text(e, self.memory_hint))
        if background:
            self.job = call_in_background(make_gen, **kw)
        else:
            self.job = run_job(make_gen, convert, **kw)
        return self.job

    @property
    def worker(self) -> GeneratorWorker | None:
        return None if self.job is None else self.job.worker

    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def is_current(self, job: Job | None) -> bool:
        return job is not None and job is self.job

    def cancel(self):
        """Ask the current job to stop after its item; its callbacks still arrive (cancelled)."""
        if self.job is not None:
            self.job.cancel()

    def retire(self):
        """Detach and cancel the current job without waiting; the slot is then empty."""
        job, self.job = self.job, None
        if job is not None:
            job.detach()          # also when its thread has ended: its outcome may be queued
            if job.is_running():
                job.cancel()
                self._retired.append(job)
        self._retired = [j for j in self._retired if j.is_running()]

    def forget(self):
        """Drop the reference to the current job once its outcome has arrived (the keeper holds
        it until its thread ends), so that a slot idle between jobs keeps no QThread alive."""
        if self.job is not None and not self.job.is_running():
            self.job = None

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Detach, cancel and join every job of the slot (idempotent, never raises); True when
        all of them ended in time."""
        self.retire()
        ok = True
        for j in self._retired:
            j.detach()
            ok = j.stop(timeout_ms=timeout_ms) and ok
        self._retired = [j for j in self._retired if j.is_running()]
        return ok
