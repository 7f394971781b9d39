"""The 2-D lab animating 10,000 particles while it samples: painted frames per second and the
longest stall of the GUI event loop (issue #16: at least 30 frames a second, never over 50 ms).

    QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lab2d_particles.py \
        [--particles 10000] [--steps 1000] [--denoiser mlp] [--train]

The panel is the real one (offscreen): data and reverse run of ``--particles`` points each, DDPM
and DDIM side by side, the field arrows on; the reverse run is sampled in its worker while the
panel's frame timer draws the latest recorded row. A 2 ms QTimer heartbeat measures the event
loop: a stall is the gap between two beats. Painted frames are counted in the DDIM view's point
item (one paint per frame shown; the panel draws a frame only when a new row has been recorded,
at most 40 a second, so a sampler slower than that limits the frame rate). The GUI thread's CPU
time per painted frame is the figure that does not depend on what else runs on the machine.
``--train`` also trains the MLP in the background meanwhile. Prints the figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--particles", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--denoiser", default="mlp", choices=("mlp", "exact", "empirical"))
    ap.add_argument("--data", default="gaussians8")
    ap.add_argument("--train", action="store_true", help="train the MLP at the same time")
    a = ap.parse_args(argv)
    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from diffusion_gui.gui.context import AppContext
    from diffusion_gui.gui.panels.lab2d import Lab2DPanel

    ctx = AppContext(settings=QSettings(os.path.join(tempfile.mkdtemp(), "b.ini"), QSettings.IniFormat))
    ctx.error.connect(lambda t, m: print("error:", t, m, file=sys.stderr))
    p = Lab2DPanel(ctx)
    p.resize(1500, 950)
    p.show()
    while not p.is_ready():
        app.processEvents()
        time.sleep(0.01)
    p.data_combo.setCurrentIndex(p.data_combo.findData(a.data))
    p.n_spin.setValue(a.particles)
    p.particles_spin.setValue(a.particles)
    p.steps_spin.setValue(a.steps)
    p.model_combo.setCurrentIndex(p.model_combo.findData(a.denoiser))
    p.field_check.setChecked(True)
    for _ in range(50):
        app.processEvents()

    paints = [0]
    item = p.ddim_view.particles
    orig_paint = item.paint

    def counting_paint(*args):
        paints[0] += 1
        orig_paint(*args)
    item.paint = counting_paint

    beat = QElapsedTimer()
    gaps = []
    heartbeat = QTimer(interval=2)

    def on_beat():
        if beat.isValid():
            gaps.append(beat.nsecsElapsed() / 1e6)
        beat.restart()
    heartbeat.timeout.connect(on_beat)

    if a.train:
        p.train_btn.click()
    t0 = [0.0]
    done = []

    cpu0 = [0.0]

    def start():
        heartbeat.start()
        paints[0] = 0
        t0[0] = time.perf_counter()
        cpu0[0] = time.thread_time()
        p.sample_btn.click()

    def check():
        if p.run is not None and p.run.complete and not p.is_sampling():
            done.append(time.perf_counter() - t0[0])
            cpu0.append(time.thread_time() - cpu0[0])
            app.quit()
    poll = QTimer(interval=20)
    poll.timeout.connect(check)
    QTimer.singleShot(100, start)
    QTimer.singleShot(150, poll.start)
    app.exec()
    heartbeat.stop()
    elapsed = done[0] if done else float("nan")
    steps_done = p.run.count - 1 if p.run is not None else 0
    p.shutdown()
    ctx.shutdown()
    gaps.sort()
    over = sum(g > 50 for g in gaps)
    print(f"particles {a.particles:,}  steps {steps_done} (DDPM + DDIM, {a.denoiser})  "
          f"train meanwhile: {a.train}  cores: {os.cpu_count()}")
    print(f"sampling took {elapsed:.2f} s ({steps_done / elapsed:.1f} steps/s); painted frames {paints[0]} "
          f"-> {paints[0] / elapsed:.1f} frames/s")
    if len(cpu0) > 1 and paints[0]:
        gui = cpu0[1]
        print(f"GUI thread CPU {gui:.2f} s = {100 * gui / elapsed:.0f} % of the wall clock, "
              f"{1000 * gui / paints[0]:.1f} ms per painted frame (all its work: frames, overlay, events)")
    print(f"load average {os.getloadavg()[0]:.1f} (other processes share the cores)")
    if gaps:
        print(f"event loop: {len(gaps)} heartbeats, median gap {gaps[len(gaps) // 2]:.1f} ms, "
              f"99th pct {gaps[int(len(gaps) * 0.99)]:.1f} ms, longest {gaps[-1]:.1f} ms, "
              f"gaps over 50 ms: {over}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
