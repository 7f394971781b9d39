"""Quit at every stage of a run: the real app exits cleanly within 2 s.

Each case starts the real app in a subprocess, through the same code path as ``diffusion-gui``
(``cli.main`` -> ``run_gui`` -> ``QApplication``, ``MainWindow(lazy=True)``, ``start()``, every
panel of ``PANELS``), with a tiny random model (tests/tiny_models.py). A driver, hooked in at the
window's ``show()``, waits for the app to be ready, starts the work of the stage, and at the
chosen moment calls ``window.close()`` and ``app.quit()``, printing the monotonic clock. The
test measures from that instant to the exit of the process (what a user waits for after Ctrl+Q)
and reads stderr: no traceback, no ``QThread: Destroyed while thread is still running``, no
abort. Stages:

``startup``          torch is still being imported in the background (first seconds of the app)
``first_load``       the start-up model is loading (``import diffusers`` inside)
``idle``             everything loaded, nothing running
``model_load``       a second model is loading
``generate``         the reverse panel samples (DDPM, T = 1000): quit after its first live frame
``paused``           a run paused after one Step
``forward_chain``    the forward panel's step-by-step chain is computing (T = 2000, 256 px)
``export``           File > Export is writing a GIF of the forward timeline
``loss``             the loss panel computes the bound of held-out digits
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")


ROOT = Path(__file__).resolve().parents[2]
QUIT_LIMIT_S = 2.0
STAGES = ["startup", "first_load", "idle", "model_load", "generate", "paused", "forward_chain",
          "export", "loss"]

DRIVER = textwrap.dedent(r'''
    import sys, time
    STAGE, MODEL, MODEL2, IMAGE, OUT = sys.argv[1:6]
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from diffusion_gui.gui import main_window as mw

    def say(*a):
        print(*a, flush=True)

    def poll(pred, then, what, limit_s=180):
        t0 = time.monotonic()
        def tick():
            try:
                ok = pred()
            except Exception as e:          # noqa: BLE001 - reported, the test fails on it
                say("DRIVER-ERROR", what, repr(e)); ok = None
            if ok:
                then()
            elif ok is None or time.monotonic() - t0 > limit_s:
                say("DRIVER-TIMEOUT", what); quit_now(win_ref[0], "timeout")
            else:
                QTimer.singleShot(5, tick)
        QTimer.singleShot(0, tick)

    def quit_now(win, detail):
        say("QUIT", STAGE, detail, repr(time.monotonic()))
        win.close()
        QApplication.instance().quit()

    win_ref = []

    def ready(win):
        fp = win.panel("forward")
        return (win.ctx.model is not None and not win._pending and fp is not None
                and fp.is_ready() and not any(j.is_running() for j in win.ctx._jobs))

    def drive(win):
        from diffusion_gui.gui.panels import forward
        if STAGE == "startup":
            poll(forward.backend_importing,
                 lambda: quit_now(win, "importing torch"), "the torch import to start")
            return
        if STAGE == "first_load":
            poll(lambda: any(j.is_running() for j in win.ctx._jobs),
                 lambda: quit_now(win, f"loading={any(j.is_running() for j in win.ctx._jobs)}"),
                 "the start-up model load")
            return
        poll(lambda: ready(win), lambda: at_ready(win), "the app to be ready")

    def at_ready(win):
        fp, rp = win.panel("forward"), win.panel("reverse")
        tabs = win.tabs
        if STAGE == "idle":
            quit_now(win, "idle")
        elif STAGE == "model_load":
            win.ctx.load_model(MODEL2)
            quit_now(win, f"loading={any(j.is_running() for j in win.ctx._jobs)}")
        elif STAGE in ("generate", "paused"):
            tabs.setCurrentIndex(win._keys.index("reverse"))
            rp.sampler.setCurrentIndex(rp.sampler.findData("ddpm"))
            rp.batch.setValue(16)
            if STAGE == "generate":
                shown = []
                rp.frame_shown.connect(lambda step: shown.append(step))
                rp.generate_btn.click()
                poll(lambda: shown, lambda: quit_now(
                    win, f"running={rp._run.job.is_running()} state={rp._state} step={shown[-1]}"),
                    "a live frame")
            else:
                rp.step_btn.click()
                poll(lambda: rp._state == "paused", lambda: quit_now(
                    win, f"running={rp._run.job.is_running()} state={rp._state}"), "the pause")
        elif STAGE == "forward_chain":
            fp.size_combo.setCurrentIndex(fp.size_combo.findData(256))
            fp.T_spin.setValue(2000)
            fp._chain_timer.stop()
            fp._start_chain()
            job = fp._chain_job
            poll(lambda: job.worker.items > 0, lambda: quit_now(
                win, f"running={job.is_running()} items={job.worker.items}/{fp.T}"), "the chain")
        elif STAGE == "export":
            win.act_export.trigger()
            dlg = win._dialogs[-1]
            dlg.select_source("Forward: timeline")
            dlg.set_format("gif")
            dlg.set_options(n_frames=dlg.frames_spin.maximum())
            dlg.set_target(OUT + "/timeline.gif")
            assert dlg.start_export(), dlg.message
            poll(lambda: dlg._progress["done"] > 2, lambda: quit_now(
                win, f"running={dlg.is_running()} done={dlg._progress['done']}/"
                     f"{dlg._progress['total']}"), "the export")
        elif STAGE == "loss":
            lp = win.panel("losses")
            tabs.setCurrentIndex(win._keys.index("losses"))
            lp.source_combo.setCurrentIndex(lp.source_combo.findData("digits"))
            lp.stride_spin.setValue(1)
            assert lp.compute()
            poll(lambda: lp._job.worker.items > 0, lambda: quit_now(
                win, f"running={lp._job.is_running()} items={lp._job.worker.items}"),
                "the bound")
        else:
            raise SystemExit(f"unknown stage {STAGE}")

    orig_show = mw.MainWindow.show
    def show(self):
        orig_show(self)
        if not win_ref:
            win_ref.append(self)
            QTimer.singleShot(0, lambda: drive(self))
    mw.MainWindow.show = show

    from diffusion_gui.cli import main
    rc = main(["--model", MODEL, "--image", IMAGE])
    say("RC", rc, repr(time.monotonic()))
''')


@pytest.fixture(scope="module")
def files(tmp_path_factory, checkpoints):
    d = tmp_path_factory.mktemp("quit")
    m1 = checkpoints(timesteps=1000)                                     # long DDPM runs
    m2 = checkpoints(channels=3, timesteps=50, seed=1)
    img = d / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(img)
    return d, m1, m2, img


def _quit(files, stage, tmp_path):
    d, m1, m2, img = files
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "DIFFUSION_GUI_SETTINGS": f"test-quit-{stage}",
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    p = subprocess.Popen([sys.executable, "-c", DRIVER, stage, str(m1), str(m2), str(img), str(out)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = p.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        p.kill()
        stdout, stderr = p.communicate()
        pytest.fail(f"{stage}: the app did not exit\n{stdout[-2000:]}\n{stderr[-3000:]}")
    exited = time.monotonic()
    quit_lines = [ln for ln in stdout.splitlines() if ln.startswith("QUIT ")]
    assert len(quit_lines) == 1, (stdout[-2000:], stderr[-3000:])
    _, _, *detail, t_quit = quit_lines[0].split(" ")
    return p.returncode, exited - float(t_quit), " ".join(detail), stdout, stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("stage", STAGES)
def test_quit_exits_cleanly_within_2s(files, stage, tmp_path):
    rc, took, detail, stdout, stderr = _quit(files, stage, tmp_path)
    print(f"{stage}: exit {took:.2f} s after quit ({detail})")
    assert "DRIVER-" not in stdout, stdout[-2000:] + stderr[-3000:]
    assert rc == 0, (rc, stderr[-3000:])
    # run_gui returned 0, or (work that only reads still running: an import, a model load) ended
    # the process with os._exit(0) once the window had shut down
    assert "RC 0" in stdout or stage in ("startup", "first_load", "model_load"), stdout[-2000:]
    for bad in ("Traceback", "QThread: Destroyed", "QThread", "Fatal Python error", "Aborted",
                "Segmentation fault"):
        assert bad not in stderr, stderr[-3000:]
    # the stage was really reached: the work was still going when quit was called
    if stage in ("first_load", "model_load", "generate", "paused", "forward_chain", "export",
                 "loss"):
        assert "running=True" in detail or "loading=True" in detail, detail
    assert took < QUIT_LIMIT_S, f"{stage}: the process exited {took:.2f} s after quit ({detail})"
    if stage == "export":
        leftovers = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert leftovers == [], leftovers                 # a cancelled export leaves nothing


# ------------------------------------------------------------------------------ the mechanism
def test_abandonable_jobs_are_not_awaited_once_quitting(qapp, monkeypatch):
    """In-process: what run_gui relies on. Before ``abandon_at_quit`` every job is joined; after
    it, stopping an abandonable job (read-only, uncancellable: an import, a model being read)
    waits only the grace, the keeper still holds it (its QThread is never destroyed while
    running), and ``abandoned_jobs`` tells run_gui to end the process with ``os._exit``."""
    import threading

    from diffusion_gui.gui import workers
    monkeypatch.setattr(workers, "_abandon_grace_ms", None)     # restored after the test
    gate = threading.Event()
    inside = threading.Semaphore(0)

    def work():
        inside.release()
        return gate.wait(30)

    slow = workers.call_in_background(work, abandonable=True)
    plain = workers.call_in_background(work)
    try:
        assert inside.acquire(timeout=10) and inside.acquire(timeout=10)   # both are in work()
        assert not slow.stop(timeout_ms=50)      # without abandon_at_quit: an ordinary join
        workers.abandon_at_quit(grace_ms=50)
        t0 = time.monotonic()
        assert slow.stop(timeout_ms=None) is False and time.monotonic() - t0 < 1.0
        t0 = time.monotonic()
        assert slow.stop(timeout_ms=None) is False and time.monotonic() - t0 < 0.05  # once only
        assert slow.is_running() and slow in workers._keeper.jobs
        assert workers.abandoned_jobs() == 1
        assert not plain.stop(timeout_ms=50)     # other jobs: joined as before
    finally:
        gate.set()
        assert plain.stop(timeout_ms=10000)
        assert slow.thread.wait(10000)
    assert workers.abandoned_jobs() == 0
