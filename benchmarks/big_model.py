"""Models of real size in the explorer (#18): random-weight checkpoints with the exact configs of
google/ddpm-cifar10-32 and google/ddpm-church-256 (tests/real_architectures.py), through the
normal paths. Figures are printed, never asserted:

(a) cifar10 (35.7 M parameters) in a visible Reverse panel: the panel's own estimate of the
    run as set up (one network call timed in the background at the run's batch) against the
    real time from the click to the end of the run (target: within 25 %); the longest stall of
    the event loop during the run (a 5 ms QTimer's gaps; target <= 50 ms); Stop pressed mid-run:
    the time until the run has ended, in network calls (target: within one call); quitting
    mid-run: the panel's shutdown, in seconds (target < 2 s).
(b) church-256 (113.7 M parameters, pipeline layout): load, one call timed at batch 1, two DDIM
    steps, and the panel's estimate for its default run (DDPM-1000, batch 16) with what it
    suggests instead.
(c) The recording of a 256 px run of 1000 steps at batch 16 (the sampler's own steps on a
    stand-in network that returns zeros, so that only the recording is measured): RSS growth
    and the bytes kept against the budget (uncapped it would hold ~6 GB).

    python benchmarks/big_model.py [--steps 20] [--batch 4] [--skip church]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 2 ** 20


def run_until(panel, start, probe_gaps=None):
    """Run the event loop from ``start()`` until the panel's run ends -> (seconds, how)."""
    from PySide6.QtCore import QEventLoop
    loop, out = QEventLoop(), {}

    def ended(rid, how):
        out["how"], out["t"] = how, time.perf_counter()
        loop.quit()

    panel.run_ended.connect(ended)
    t0 = time.perf_counter()
    start()
    loop.exec()
    panel.run_ended.disconnect(ended)
    return out["t"] - t0, out["how"]


class Probe:
    """A 5 ms QTimer in the GUI thread; ``gaps`` (ms) between its ticks while started."""

    def __init__(self):
        from PySide6.QtCore import QElapsedTimer, QTimer
        self.clock, self.timer, self.gaps, self.last = QElapsedTimer(), QTimer(), [], 0
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = self.clock.nsecsElapsed()
        self.gaps.append((now - self.last) / 1e6)
        self.last = now

    def start(self):
        self.gaps.clear()
        self.clock.start()
        self.last = self.clock.nsecsElapsed()
        self.timer.start()

    def stop(self) -> float:
        """The longest stall beyond the 5 ms interval, ms."""
        self.timer.stop()
        return max((g - 5.0 for g in self.gaps[1:]), default=0.0)


def panel_for(model, tmp):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMainWindow

    from diffusion_gui.gui.context import AppContext
    from diffusion_gui.gui.panels.reverse import ReversePanel
    ctx = AppContext(settings=QSettings(os.path.join(tmp, "s.ini"), QSettings.IniFormat))
    win = QMainWindow()
    panel = ReversePanel(ctx)
    win.setCentralWidget(panel)
    win.resize(1280, 760)
    win.show()
    ctx.detect_devices()
    wait(lambda: bool(ctx.devices))
    ctx.model, ctx.model_spec = model, "big"
    ctx.model_changed.emit()
    return ctx, win, panel


def wait(pred, seconds=600):
    from PySide6.QtWidgets import QApplication
    t0 = time.perf_counter()
    while not pred() and time.perf_counter() - t0 < seconds:
        QApplication.processEvents()
        time.sleep(0.005)
    return pred()


def part_a(model, args, tmp):
    from diffusion_gui.sessions.cost import sampling_cost
    ctx, win, panel = panel_for(model, tmp)
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddim"))
    panel.steps.setValue(args.steps)
    panel.batch.setValue(args.batch)
    key = (id(model), "cpu", "float32", args.batch)
    wait(lambda: key in panel.cost.timings)
    timing = panel.cost.timings[key]
    est = sampling_cost(timing, model, panel._sampling_params(False))
    print(f"(a) cifar10, DDIM-{args.steps}, batch {args.batch}: one call timed at "
          f"{timing.seconds:.3f} s; the panel says: {panel.cost_text.text()!r}")
    probe = Probe()
    for k in range(args.repeat):
        if k:                    # after a run the panel estimates from the run's own rate
            est = sampling_cost(panel.cost.timings[key], model, panel._sampling_params(False))
        probe.start()
        secs, how = run_until(panel, panel.generate)
        stall = probe.stop()
        print(f"    run {k + 1}: {secs:.2f} s ({how}); estimate / real = {est.seconds / secs:.3f} "
              f"({'one timed call' if k == 0 else 'the last run'}); longest event-loop stall "
              f"{stall:.1f} ms")
    # Stop mid-run: from the click to run_ended, in calls
    n = {"shown": 0}
    panel.frame_shown.connect(lambda step: n.__setitem__("shown", step))
    panel.steps.setValue(max(args.steps, 40))

    def start_then_stop():
        panel.generate()
        wait(lambda: n["shown"] >= 5)
        t_stop[0] = time.perf_counter()
        panel.stop()

    t_stop = [0.0]
    run_until(panel, start_then_stop)
    stop_s = time.perf_counter() - t_stop[0]
    print(f"    Stop mid-run: ended {stop_s:.3f} s after the click = {stop_s / timing.seconds:.2f} "
          f"network calls ({timing.seconds:.3f} s a call)")
    # quitting mid-run
    n["shown"] = 0
    panel.generate()
    wait(lambda: panel._state == "running" and n["shown"] >= 3)
    t0 = time.perf_counter()
    panel.shutdown()
    ctx.shutdown()
    print(f"    quit mid-run (panel and context shutdown): {time.perf_counter() - t0:.3f} s")
    win.close()


def part_b(tmp):
    from real_architectures import make_real_checkpoint

    from diffusion_gui.models.loader import load_model
    from diffusion_gui.sessions.cost import sampling_cost, time_network_call
    from diffusion_gui.sessions.sampling import SamplingParams, make_sampler
    t0 = time.perf_counter()
    folder = make_real_checkpoint(Path(tmp) / "church256", "church256")
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = load_model(str(folder))
    loaded = time.perf_counter() - t0
    timing = time_network_call(m, 1, "cpu")
    t0 = time.perf_counter()
    gen, _ = make_sampler(m, SamplingParams(sampler="ddim", steps=2, batch=1))
    last = list(gen)[-1]
    ddim2 = time.perf_counter() - t0
    c = sampling_cost(timing, m, SamplingParams(batch=16))
    tips = ", ".join(f"{w} ≈ {s / 60:.1f} min" for w, s in c.suggestions)
    print(f"(b) church-256 ({m.info()['parameters']:,} parameters, pipeline layout): written in "
          f"{built:.1f} s, loaded in {loaded:.1f} s; one call at batch 1: {timing.seconds:.2f} s; "
          f"DDIM-2 at batch 1: {ddim2:.1f} s, x_0 finite: {bool(last.x_t.isfinite().all())}")
    print(f"    the default run (DDPM-1000, batch 16) is estimated at {c.seconds / 3600:.1f} h; "
          f"suggested: {tips}")


def part_c(batch: int):
    import torch

    from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
    from diffusion_gui.sessions.reverse import TRAJECTORY_BUDGET_MB, ReverseRun

    class Zeros:
        """A 256 px RGB model whose network predicts eps = 0 (no network cost)."""
        sample_size, in_channels, classes = 256, 3, None
        diffusion = GaussianDiffusion(NoiseSchedule.from_name("linear", 1000))
        num_timesteps, clip_sample = 1000, True

        def __call__(self, x, i):
            return torch.zeros_like(x)

    run = ReverseRun(Zeros(), {"sampler": "ddpm", "batch": batch, "seed": 0})
    before = rss_mb()
    peak = before
    t0 = time.perf_counter()
    for so in run.make_gen():
        run.observe(so)
        if so.step % 50 == 0:
            peak = max(peak, rss_mb())
    run.flush()
    after = rss_mb()
    from exerciser import malloc_trim
    malloc_trim()
    trimmed = rss_mb()
    frame = 2 * batch * 256 * 256 * 3
    print(f"(c) recording a 256 px DDPM-1000 run at batch {batch} ({time.perf_counter() - t0:.0f} s): "
          f"uncapped it would keep {1001 * frame / 2 ** 30:.1f} GB; kept "
          f"{run.traj.nbytes / 2 ** 20:.0f} MB (budget {TRAJECTORY_BUDGET_MB} MB): "
          f"{run.traj.describe()}; RSS growth {after - before:.0f} MB (peak {peak - before:.0f} MB, "
          f"{trimmed - before:.0f} MB once glibc hands back its free arenas)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="DDIM steps of the timed runs")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record-batch", type=int, default=16)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: a, b, c")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "benchmark")
    from PySide6.QtWidgets import QApplication
    from real_architectures import make_real_checkpoint

    from diffusion_gui.models.loader import load_model
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        if "c" not in skip:
            part_c(args.record_batch)
        if "a" not in skip:
            model = load_model(str(make_real_checkpoint(Path(tmp) / "cifar10", "cifar10")))
            part_a(model, args, tmp)
        if "b" not in skip:
            part_b(tmp)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
