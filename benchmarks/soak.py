"""Soak: many cycles of real use in the real main window, measuring what must not grow.

One cycle, in the real ``MainWindow`` (every panel of ``PANELS``, offscreen):

1. open an image (two small images alternate: 48 x 32 RGB and 40 x 40 grey);
2. scrub the forward panel's t (its step-by-step chain is restarted in the background);
3. Generate in the reverse panel (DDIM, 5 steps, batch 4) to the end;
4. File > Export: that trajectory as a GIF into a temporary folder, read back, dialog closed;
5. Generate again (DDPM, all T steps) and Stop it (even cycles: Stop while it runs; odd cycles:
   Step, i.e. pause after one step, then Stop);
6. switch the model (two tiny random diffusers checkpoints, 16 px grey T = 50 and 16 px RGB
   T = 40, alternate; both stay in the loader's cache after their first load).

Measured after a warm-up cycle (cycle 0) and every ``--every`` cycles, once every job has
ended and after ``gc.collect()``: Python threads (``threading.active_count()``), OS threads of
the process, live ``QThread`` objects (found by ``gc``), started jobs not yet released, live
widgets (``QApplication.allWidgets()``) and the resident set size (psutil).

    OMP_NUM_THREADS=1 python benchmarks/soak.py [--cycles 200] [--every 50]

Prints the figures; never asserts (tests/gui/test_soak.py runs a short soak with bounds). The
stated bound for 200 cycles: Python threads and QThread objects back to the baseline (+-1), no
widget growth, RSS growth < 60 MB. Measured (2 shared CPU cores, tiny models): threads 2 -> 2,
QThread objects 7 -> 7, widgets 1135 -> 1135, RSS +14 to +22 MB at cycle 200, flat from cycle
100 on; before the ``MainWindow._keep_dialog`` fix every export leaked its dialog (+100
widgets, +3.5 MB a cycle).
:class:`Soak` is what that test drives, so the benchmark and the test do the same thing.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CYCLE_TIMEOUT_S = 60.0
MODELS = (dict(size=16, channels=1, timesteps=50, seed=0), dict(size=16, channels=3, timesteps=40, seed=1))


# ------------------------------------------------------------------------------ waiting
def wait_until(pred, timeout_s: float = CYCLE_TIMEOUT_S, what: str = "condition"):
    """Run the Qt event loop until ``pred()`` is true (checked every 5 ms)."""
    from PySide6.QtCore import QEventLoop, QTimer
    if pred():
        return
    loop = QEventLoop()
    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: pred() and loop.quit())
    deadline = QTimer(singleShot=True, interval=int(timeout_s * 1000))
    deadline.timeout.connect(loop.quit)
    timer.start()
    deadline.start()
    loop.exec()
    timer.stop()
    deadline.stop()
    if not pred():
        raise TimeoutError(f"soak: timed out after {timeout_s:.0f} s waiting for {what}")


def spin(ms: int = 0):
    """Let the event loop run for ``ms`` milliseconds (0: pending events only)."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication
    if ms <= 0:
        QApplication.processEvents()
        return
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


# ------------------------------------------------------------------------------ measuring
def live_qthreads() -> int:
    from PySide6.QtCore import QThread
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is QThread)


def measure(settle=None) -> dict:
    """The figures of this process now (after ``settle()``, every job has ended and a full
    collection)."""
    import psutil
    from PySide6.QtWidgets import QApplication

    from diffusion_gui.gui.workers import running_jobs
    if settle is not None:
        settle()
    try:
        wait_until(lambda: running_jobs() == 0, what="every job to end")
    except TimeoutError as e:
        raise TimeoutError(f"{e}: {describe_jobs()}") from None
    spin(20)
    gc.collect()
    proc = psutil.Process()
    return {"threads": threading.active_count(), "os_threads": proc.num_threads(),
            "qthreads": live_qthreads(), "jobs": running_jobs(),
            "widgets": len(QApplication.allWidgets()), "rss_mb": proc.memory_info().rss / 2 ** 20}


def describe_jobs() -> str:
    """The jobs still held by the workers' keeper (for a timeout message)."""
    from diffusion_gui.gui import workers
    keeper = workers._keeper
    if keeper is None:
        return "no jobs"
    import sys
    import traceback
    frames = sys._current_frames()
    rows = []
    for j in list(keeper.jobs):
        w = j.worker
        gen = getattr(w, "_make_gen", None)
        row = (f"{j.thread.objectName()} running={j.thread.isRunning()} "
               f"items={w.items} cancelled={w.is_cancelled} paused={w.is_paused} "
               f"gen={getattr(gen, '__module__', '?')}.{getattr(gen, '__qualname__', gen)!r}")
        frame = frames.get(getattr(w, "thread_ident", None))
        if frame is not None:      # where that thread is now, innermost last
            stack = traceback.extract_stack(frame)[-8:]
            row += "\n    " + "\n    ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in stack)
        rows.append(row)
    return "; ".join(rows) or "no jobs"


def fmt(cycle, m: dict, base: dict | None = None) -> str:
    d = "" if base is None else f" ({m['rss_mb'] - base['rss_mb']:+.1f} MB)"
    return (f"cycle {cycle:>4}: python threads {m['threads']:>2}, OS threads {m['os_threads']:>3}, "
            f"QThread objects {m['qthreads']:>2}, jobs {m['jobs']}, widgets {m['widgets']:>4}, "
            f"RSS {m['rss_mb']:7.1f} MB{d}")


# ------------------------------------------------------------------------------ the soak
class Soak:
    """The real main window with two tiny models and two small images, driven cycle by cycle."""

    def __init__(self, workdir, *, steps: int = 5, batch: int = 4):
        import numpy as np
        from PIL import Image
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_models import make_checkpoint

        from diffusion_gui.gui.context import AppContext
        from diffusion_gui.gui.main_window import MainWindow

        self.app = QApplication.instance() or QApplication([])
        self.dir = Path(workdir)
        self.exports = self.dir / "exports"
        self.exports.mkdir(parents=True, exist_ok=True)
        self.models = [str(make_checkpoint(self.dir / f"model{k}", **kw)) for k, kw in enumerate(MODELS)]
        rng = np.random.default_rng(0)
        self.images = [self.dir / "a.png", self.dir / "b.png"]
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(self.images[0])
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8), "L").save(self.images[1])
        self.steps, self.batch = steps, batch
        self.stopped = self.raced = self.cycles = 0     # Stop outcomes: stopped mid-run / finished first

        ctx = AppContext(settings=QSettings(str(self.dir / "settings.ini"), QSettings.IniFormat))
        self.win = MainWindow(ctx)
        self.ctx = ctx
        self.win.show()
        self.fp = self.win.panel("forward")
        self.rp = self.win.panel("reverse")
        assert self.fp is not None and self.rp is not None, self.win.skipped
        from diffusion_gui.gui.panels.forward import ensure_backend
        ensure_backend()
        from diffusion_gui.gui.panels.forward import backend_ready
        wait_until(backend_ready, what="torch to import")
        self._load(0)

    # ---- steps of a cycle
    def _tab(self, key):
        self.win.tabs.setCurrentIndex(self.win._keys.index(key))

    def _load(self, k):
        spec = self.models[k % 2]
        self.ctx.load_model(spec)
        wait_until(lambda: self.ctx.model_spec == spec and self.ctx.model is not None
                   and not any(j.is_running() for j in self.ctx._jobs), what=f"model {spec}")
        assert not self.win.banner.isVisible(), self.win.banner.message

    def open_image(self, k):
        self._tab("forward")
        assert self.win.open_image(self.images[k % 2]), self.win.banner.message
        assert self.fp.is_ready()

    def scrub(self):
        T = self.fp.T
        for t in (0, T // 10, T // 2, T, T // 3, 1, T // 4):
            self.fp.set_t(t)
            spin()
        spin(5)

    def _configure(self, sampler):
        rp = self.rp
        rp.sampler.setCurrentIndex(rp.sampler.findData(sampler))
        rp.steps.setValue(self.steps)
        rp.batch.setValue(self.batch)

    def _run(self, click):
        ended = []
        conn = self.rp.run_ended.connect(lambda rid, how: ended.append(how))
        try:
            click()
            wait_until(lambda: bool(ended), what="the reverse run to end")
        finally:
            self.rp.run_ended.disconnect(conn)
        return ended[0]

    def generate(self):
        self._tab("reverse")
        self._configure("ddim")
        how = self._run(self.rp.generate_btn.click)
        assert how == "finished", how
        assert self.rp.final_images() is not None

    def generate_and_stop(self, k):
        rp = self.rp
        self._configure("ddpm")                    # all T steps: long enough to stop midway
        if k % 2:
            rp.step_btn.click()                    # one step, then paused
            wait_until(lambda: rp._state in ("paused", "idle"), what="the step to pause")
            how = self._run(rp.stop_btn.click) if rp._state == "paused" else "finished"
        else:
            shown = []
            conn = rp.frame_shown.connect(lambda step: shown.append(step))
            try:
                how = self._run(lambda: (rp.generate_btn.click(),
                                         wait_until(lambda: shown or rp._state == "idle",
                                                    what="a live frame"),
                                         rp.stop_btn.click() if rp.stop_btn.isEnabled() else None))
            finally:
                rp.frame_shown.disconnect(conn)
        assert how in ("stopped", "finished"), how
        self.stopped += how == "stopped"
        self.raced += how == "finished"
        assert rp.recorded_frames()

    def export(self, k):
        from PIL import Image

        from diffusion_gui.gui.export_dialog import ExportDialog
        self._tab("reverse")
        before = len(self.win._dialogs)
        self.win.act_export.trigger()
        dlg = self.win._dialogs[-1] if self.win._dialogs else None
        assert isinstance(dlg, ExportDialog) and len(self.win._dialogs) <= before + 1, \
            self.win.banner.message
        dlg.select_source("Reverse: trajectory of x_t")
        dlg.set_format("gif")
        target = self.exports / f"trajectory{k % 3}.gif"
        dlg.set_target(target)
        assert dlg.start_export(), dlg.message
        assert dlg.wait(int(CYCLE_TIMEOUT_S * 1000)) and dlg.status == "done", dlg.message
        with Image.open(target) as im:
            assert im.n_frames >= 2
        dlg.close()

    def switch_model(self, k):
        self._load(k + 1)

    def cycle(self, k: int):
        self.open_image(k)
        self.scrub()
        self.generate()
        self.export(k)
        self.generate_and_stop(k)
        self.switch_model(k)
        self.cycles += 1

    def settle(self):
        """Let timed work start and end: the forward panel starts its step-by-step chain 250 ms
        after an image change, which may fall after the end of a short cycle."""
        self.fp.wait_for_chain()

    def close(self):
        self.win.close()
        spin(10)


def run(cycles: int, every: int, workdir, out=print, steps: int = 5) -> list[tuple[int, dict]]:
    """Warm-up cycle, then ``cycles`` cycles; ``[(cycle, figures)]`` at 0 and every ``every``."""
    soak = Soak(workdir, steps=steps)
    t0 = time.perf_counter()
    soak.cycle(-1)                                 # warm-up: caches, pools, lazy imports
    rows = [(0, measure(soak.settle))]
    out(fmt(0, rows[0][1]))
    try:
        for k in range(1, cycles + 1):
            soak.cycle(k)
            if k % every == 0 or k == cycles:
                rows.append((k, measure(soak.settle)))
                out(fmt(k, rows[-1][1], rows[0][1]) + f"   [{time.perf_counter() - t0:.0f} s]")
    finally:
        soak.close()
    out(f"{soak.cycles} cycles in {time.perf_counter() - t0:.0f} s; Stop took effect mid-run "
        f"{soak.stopped} times, the run finished first {soak.raced} times")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--steps", type=int, default=5, help="DDIM steps of the Generate run")
    args = ap.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "benchmark")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args.cycles, args.every, tmp, steps=args.steps)
    base, last = rows[0][1], rows[-1][1]
    print(f"growth over {rows[-1][0]} cycles: python threads {last['threads'] - base['threads']:+d}, "
          f"QThread objects {last['qthreads'] - base['qthreads']:+d}, widgets "
          f"{last['widgets'] - base['widgets']:+d}, RSS {last['rss_mb'] - base['rss_mb']:+.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
