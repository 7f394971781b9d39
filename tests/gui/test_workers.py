"""gui/workers.py: a QObject worker on a QThread iterating a generator (no model needed)."""
from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QThread  # noqa: E402

from diffusion_gui.gui.workers import GeneratorWorker, Job, call_in_background, run_job, running_jobs  # noqa: E402

TIMEOUT = 20000


class Recorder:
    def __init__(self):
        self.progress, self.finished, self.failed, self.cancelled, self.paused = [], [], [], [], []
        self.threads = set()

    def kw(self):
        return dict(on_progress=self.progress.append, on_finished=self.finished.append,
                    on_failed=self.failed.append, on_cancelled=lambda: self.cancelled.append(True),
                    on_paused=lambda: self.paused.append(True))

    def ended(self):
        return bool(self.finished or self.failed or self.cancelled)


def counting(n, delay=0.0, pulled=None, closed=None):
    def make():
        def gen():
            try:
                for k in range(n):
                    if pulled is not None:
                        pulled.append(k)
                    if delay:
                        time.sleep(delay)
                    yield k
            finally:
                if closed is not None:
                    closed.append(True)
        return gen()
    return make


def test_runs_in_another_thread_and_finishes_with_the_last_item(qtbot):
    rec = Recorder()
    where = []

    def convert(k):
        where.append(threading.get_ident())
        return {"k": k}

    job = run_job(counting(5), convert, **rec.kw())
    qtbot.waitUntil(rec.ended, timeout=TIMEOUT)
    assert rec.finished == [{"k": 4}] and not rec.failed and not rec.cancelled
    assert rec.progress[-1] == {"k": 4}
    assert where and all(w != threading.get_ident() for w in where)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=TIMEOUT)
    assert job.thread.isFinished()


def test_latest_wins_at_most_max_rate_and_converts_only_what_is_emitted(qtbot):
    rec = Recorder()
    converted, observed = [], []

    def convert(k):
        converted.append(k)
        return k

    t0 = time.monotonic()
    job = run_job(counting(3000, delay=0.0003), convert, observe=observed.append, max_rate=20,
                  **rec.kw())
    qtbot.waitUntil(rec.ended, timeout=TIMEOUT)
    elapsed = time.monotonic() - t0
    assert observed == list(range(3000))            # observe sees every item
    assert len(rec.progress) <= 20 * elapsed + 3     # at most ~max_rate per second
    assert rec.progress[-1] == 2999 and rec.finished == [2999]
    assert len(converted) == len(set(converted)) == job.worker.emitted  # converted once, when emitted
    assert len(converted) < 3000 // 5


def test_set_max_rate_changes_the_rate_of_a_running_job(qtbot):
    """A pacer in the GUI thread lowers the rate mid-run: from then on at most ~that rate."""
    times = []
    done = []

    def on_progress(k):
        times.append(time.monotonic())
        if len(times) == 1:
            job.worker.set_max_rate(4)

    job = run_job(counting(4000, delay=0.0003), on_progress=on_progress, on_finished=done.append,
                  max_rate=1000)
    qtbot.waitUntil(lambda: bool(done), timeout=TIMEOUT)
    span = times[-1] - times[0]
    assert span > 0.5                                 # the run was long enough to tell
    assert len(times) - 1 <= 4 * span + 2             # ~4 a second after the change, last included
    assert done == [3999]


def test_backpressure_a_busy_receiver_gets_no_backlog(qtbot):
    """With a receiver slower than the generator, undelivered frames never pile up."""
    delivered = []

    def slow_receiver(k):
        delivered.append(k)
        time.sleep(0.05)

    done = []
    job = run_job(counting(400, delay=0.001), on_progress=slow_receiver, on_finished=done.append,
                  max_rate=1000)
    qtbot.waitUntil(lambda: bool(done), timeout=TIMEOUT)
    # every emission was delivered; at most one was in flight at a time (+ the forced last one)
    assert job.worker.emitted == len(delivered) and len(delivered) < 400 // 4
    assert delivered[-1] == 399


def test_cancel_stops_before_the_next_item_and_closes_the_generator(qtbot):
    rec = Recorder()
    pulled, closed = [], []
    holder = {}

    def observe(k):
        if k == 4:
            holder["job"].worker.cancel()            # from the worker thread, mid-run

    holder["job"] = job = run_job(counting(100, pulled=pulled, closed=closed), observe=observe,
                                  **rec.kw())
    qtbot.waitUntil(rec.ended, timeout=TIMEOUT)
    assert rec.cancelled == [True] and not rec.finished
    assert pulled == [0, 1, 2, 3, 4]                 # item 5 was never computed
    assert closed == [True]
    assert job.stop() and not job.is_running()


def test_stop_joins_a_running_job(qtbot):
    pulled = []
    job = run_job(counting(10_000, delay=0.002, pulled=pulled))
    qtbot.waitUntil(lambda: len(pulled) > 3, timeout=TIMEOUT)
    assert job.stop()
    assert not job.is_running() and job.worker.is_cancelled
    n = len(pulled)
    time.sleep(0.05)
    assert len(pulled) == n and n < 10_000
    assert job.stop()                                # idempotent


def test_pause_resume_with_a_step_budget(qtbot):
    rec = Recorder()
    pulled = []
    job = run_job(counting(10, pulled=pulled), steps=2, **rec.kw())
    qtbot.waitUntil(lambda: len(rec.paused) == 1, timeout=TIMEOUT)
    assert pulled == [0, 1] and rec.progress[-1] == 1 and job.worker.is_paused
    job.worker.resume(3)
    qtbot.waitUntil(lambda: len(rec.paused) == 2, timeout=TIMEOUT)
    assert pulled == [0, 1, 2, 3, 4] and rec.progress[-1] == 4   # the paused item is shown
    job.worker.resume()
    qtbot.waitUntil(rec.ended, timeout=TIMEOUT)
    assert rec.finished == [9] and len(pulled) == 10


def test_stop_while_paused(qtbot):
    rec = Recorder()
    job = run_job(counting(10), steps=1, **rec.kw())
    qtbot.waitUntil(lambda: bool(rec.paused), timeout=TIMEOUT)
    assert job.stop()
    qtbot.waitUntil(rec.ended, timeout=TIMEOUT)
    assert rec.cancelled == [True]


def test_failures_are_reported_as_one_line(qtbot, capsys):
    class Known(ValueError):
        pass

    def bad(exc):
        def make():
            yield 1
            raise exc
        return make

    rec = Recorder()
    run_job(bad(Known("the model exploded")), error_text=lambda e: str(e) if isinstance(e, Known)
            else None, **rec.kw())
    qtbot.waitUntil(rec.ended, timeout=TIMEOUT)
    assert rec.failed == ["the model exploded"]
    assert "Traceback" not in capsys.readouterr().err   # a known error prints nothing

    rec2 = Recorder()
    run_job(bad(ZeroDivisionError("oops")), **rec2.kw())
    qtbot.waitUntil(rec2.ended, timeout=TIMEOUT)
    assert rec2.failed == ["ZeroDivisionError: oops"]   # a bug: message + traceback on stderr


def test_observe_raising_fails_the_run(qtbot):
    rec = Recorder()

    def observe(k):
        if k == 2:
            raise ValueError("NaN at 2")

    run_job(counting(10), observe=observe, error_text=str, **rec.kw())
    qtbot.waitUntil(rec.ended, timeout=TIMEOUT)
    assert rec.failed == ["NaN at 2"] and not rec.finished


def test_a_detached_run_reaches_nobody(qtbot):
    rec1, rec2 = Recorder(), Recorder()
    job1 = run_job(counting(1000, delay=0.001), **rec1.kw())
    qtbot.waitUntil(lambda: bool(rec1.progress), timeout=TIMEOUT)
    job1.detach()
    job1.cancel()
    n = len(rec1.progress)
    job2 = run_job(counting(5), **rec2.kw())
    qtbot.waitUntil(rec2.ended, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not job1.is_running(), timeout=TIMEOUT)
    qtbot.wait(50)
    assert len(rec1.progress) == n and not rec1.ended()
    assert rec2.finished == [4] and job1.run_id != job2.run_id


def test_stale_run_ids_are_dropped_by_the_relay(qtbot):
    rec = Recorder()
    job = run_job(counting(1), **rec.kw())
    qtbot.waitUntil(rec.ended, timeout=TIMEOUT)
    job.relay.progress(job.run_id + 1000, "stale")
    job.relay.finished(job.run_id + 1000, "stale")
    assert "stale" not in rec.progress and rec.finished == [0]


def test_call_in_background(qtbot):
    out = []
    job = call_in_background(lambda: threading.get_ident(), on_done=out.append)
    qtbot.waitUntil(lambda: bool(out), timeout=TIMEOUT)
    assert out[0] != threading.get_ident()
    qtbot.waitUntil(lambda: not job.is_running(), timeout=TIMEOUT)


def test_worker_cancelled_before_start_never_calls_make_gen(qtbot):
    called = []
    w = GeneratorWorker(lambda: called.append(1) or iter([1]))
    w.cancel()
    job = Job(w)
    got = []
    w.cancelled.connect(lambda rid: got.append(rid))
    job.start()
    assert job.stop()
    qtbot.waitUntil(lambda: bool(got), timeout=TIMEOUT)
    assert called == []


def test_many_jobs_leave_no_threads_behind(qtbot):
    base_py = threading.active_count()
    for _ in range(30):
        done = []
        run_job(counting(3), on_finished=done.append)
        qtbot.waitUntil(lambda done=done: bool(done), timeout=TIMEOUT)
    for _ in range(10):
        job = run_job(counting(10_000, delay=0.001))
        job.stop()
    qtbot.waitUntil(lambda: running_jobs() == 0, timeout=TIMEOUT)
    assert threading.active_count() == base_py
    import gc
    gc.collect()
    assert sum(1 for o in gc.get_objects() if type(o) is QThread and o.isRunning()) == 0


def test_worker_object_is_returned_to_the_gui_thread(qtbot):
    done = []
    job = run_job(counting(2), on_finished=done.append)
    qtbot.waitUntil(lambda: bool(done) and not job.is_running(), timeout=TIMEOUT)
    assert job.worker.thread() is QThread.currentThread()


def test_a_stuck_job_is_described_by_its_function_and_stack(qtbot):
    """What the exerciser prints when a run does not settle (issue #21): the function a
    call_in_background job runs and where its thread is now."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from soak import describe_jobs
    gate = threading.Event()

    def load_something_slow():
        gate.wait(30)
        return 1

    job = call_in_background(load_something_slow)
    qtbot.waitUntil(lambda: job.worker.thread_ident is not None, timeout=5000)
    time.sleep(0.05)
    text = describe_jobs()
    gate.set()
    qtbot.waitUntil(lambda: not job.is_running(), timeout=5000)
    assert "call_in_background(test_a_stuck_job_is_described_by_its_function_and_stack.<locals>." \
           "load_something_slow)" in text
    assert "load_something_slow" in text.split("\n", 1)[1] and "wait" in text
