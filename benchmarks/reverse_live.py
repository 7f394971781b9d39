"""The reverse panel's live sampling: (a) throughput vs the bare UNet loop, (b) GUI stalls.

(a) Runs the same N network evaluations (DDPM over N strided steps, same batch, same model) as
    a bare ``unet(x, t).sample`` loop and as a *Generate* in a visible ReversePanel (worker on a
    QThread, NaN checks, trajectory recording, live frames at <= 30 per second, painting). The
    GUI time is the wall clock from the click to ``run_ended`` (what the user waits). Prints
    steps/s of each and the ratio GUI / bare (target >= 0.95).
(b) Meanwhile a 5 ms QTimer in the GUI thread records the gaps between its ticks; the longest
    gap beyond 5 ms is the longest stall of the event loop during a run (target <= 50 ms). The
    same probe with no run going gives the floor of the machine.

Model: ``--model`` or the built-in digits model when present, else a random model of its
architecture (``build_unet('small', 16, 1)``, T = 1000). Figures are printed, never asserted:

    OMP_NUM_THREADS=1 python benchmarks/reverse_live.py [--steps 100] [--batch 16] [--repeat 3]

Uses the display when there is one (e.g. under ``xvfb-run``), else Qt's offscreen platform.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def main(argv=None) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sampling_overhead import _model_args, _model_folder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _model_args(ap)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "benchmark")

    import torch
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    from diffusion_gui.core import strided_indices
    from diffusion_gui.gui.context import AppContext
    from diffusion_gui.gui.panels.reverse import ReversePanel, ReverseRun
    from diffusion_gui.models.loader import load_model

    app = QApplication.instance() or QApplication([])
    tmp = tempfile.TemporaryDirectory()
    folder, label = _model_folder(args, tmp.name)
    model = load_model(folder)
    T = model.num_timesteps
    shape = (args.batch, model.in_channels, model.sample_size, model.sample_size)
    idx = sorted(strided_indices(T, args.steps), reverse=True)

    bare_cpu: list[float] = []
    proc_cpu: list[float] = []
    worker_cpu: list[float] = []

    def bare() -> float:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        t0, c0 = time.perf_counter(), time.thread_time()
        with torch.no_grad():
            for i in idx:
                model.unet(x, torch.full((shape[0],), i, dtype=torch.long)).sample
        bare_cpu.append(time.thread_time() - c0)
        return time.perf_counter() - t0

    # the worker thread's CPU time over a run: UNet calls + our loop + NaN checks + recording +
    # conversions (steady on a busy machine, where wall-clock time depends on the neighbours)
    real_make_gen = ReverseRun.make_gen

    def make_gen(self):
        c0 = time.thread_time()
        gen = real_make_gen(self)

        def timed():
            try:
                yield from gen
            finally:
                worker_cpu.append(time.thread_time() - c0)
        return timed()

    ReverseRun.make_gen = make_gen

    ctx = AppContext(settings=QSettings(os.path.join(tmp.name, "s.ini"), QSettings.IniFormat))
    win = QMainWindow()
    panel = ReversePanel(ctx)
    win.setCentralWidget(panel)
    win.resize(1280, 760)
    win.show()
    ctx.model, ctx.model_spec = model, folder
    ctx.model_changed.emit()
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm_strided"))
    panel.steps.setValue(args.steps)
    panel.batch.setValue(args.batch)

    gaps: list[float] = []
    clock = QElapsedTimer()
    probe = QTimer()
    probe.setInterval(5)
    last = [0]

    def tick():
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6)
        last[0] = now

    probe.timeout.connect(tick)

    def probed(seconds=None, start=None, with_probe=True):
        """Run the event loop (with the probe) for ``seconds``, or from ``start()`` until the
        panel's run ends; -> the probe's gaps."""
        gaps.clear()
        loop = QEventLoop()
        if with_probe:
            clock.start()
            last[0] = clock.nsecsElapsed()
            probe.start()
        if start is None:
            QTimer.singleShot(int(seconds * 1000), loop.quit)
        else:
            panel.run_ended.connect(loop.quit)
            start()
        loop.exec()
        if start is not None:
            panel.run_ended.disconnect(loop.quit)
        probe.stop()
        return list(gaps[1:])

    def gui(with_probe: bool) -> tuple[float, list[float], int]:
        ended = []
        shown = []

        def on_end(rid, how):
            ended.append(time.perf_counter())

        panel.run_ended.connect(on_end)
        panel.frame_shown.connect(shown.append)
        t0, c0 = time.perf_counter(), time.process_time()
        g = probed(start=panel.generate, with_probe=with_probe)
        proc_cpu.append(time.process_time() - c0)
        panel.run_ended.disconnect(on_end)
        panel.frame_shown.disconnect(shown.append)
        return ended[0] - t0, g, len(shown)

    bare()
    gui(False)                              # warm up both
    idle = probed(seconds=1.0)
    bare_cpu.clear()
    worker_cpu.clear()
    proc_cpu.clear()
    b_times, g_times, p_times, all_gaps, frames = [], [], [], [], []
    for _ in range(args.repeat):
        b_times.append(bare())
        t, _, n = gui(False)                # (a): no probe, nothing but the panel
        g_times.append(t)
        frames.append(n / t)
        t, g, _ = gui(True)                 # (b): the same run with the 5 ms probe
        p_times.append(t)
        all_gaps += g
    panel.shutdown()
    ctx.shutdown()

    b, g = statistics.median(b_times), statistics.median(g_times)
    stalls = sorted(x - 5.0 for x in all_gaps)
    p99 = stalls[int(0.99 * (len(stalls) - 1))] if stalls else float("nan")
    print(f"model: {label}; batch {args.batch}, {args.steps} network evaluations per run "
          f"(DDPM strided, T = {T}); torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; Qt platform {app.platformName()}")
    print(f"(a) bare UNet loop : median {b:.3f} s  ({args.steps / b:.1f} steps/s)  min {min(b_times):.3f} s")
    print(f"    GUI worker     : median {g:.3f} s  ({args.steps / g:.1f} steps/s)  min {min(g_times):.3f} s"
          f"  ({statistics.median(frames):.1f} frames shown per second)")
    print(f"    throughput GUI / bare = {b / g:.3f} (median), {min(b_times) / min(g_times):.3f} (min)"
          f"   target >= 0.95")
    wc_a = worker_cpu[0::2]                 # runs without the probe
    bc, wc = statistics.median(bare_cpu), statistics.median(wc_a)
    print(f"    CPU time of the sampling thread: bare {bc:.3f} s, GUI worker {wc:.3f} s,"
          f" bare / worker = {bc / wc:.3f}")
    other = statistics.median([p - w for p, w in zip(proc_cpu[0::2], wc_a)])
    print(f"    CPU time of the rest of the process during a GUI run (the GUI thread: events, "
          f"painting): {other:.3f} s = {other / g * 100:.1f} % of one core")
    print(f"    with the 5 ms probe running too: GUI / bare = {b / statistics.median(p_times):.3f}")
    print(f"(b) GUI event-loop stall during runs (5 ms probe, {len(all_gaps)} ticks): "
          f"longest {max(stalls):.1f} ms, p99 {p99:.1f} ms, median {statistics.median(stalls):.1f} ms"
          f"   target <= 50 ms")
    idle_st = [x - 5.0 for x in idle]
    print(f"    idle machine floor (no run, 1 s): longest {max(idle_st):.1f} ms, "
          f"median {statistics.median(idle_st):.1f} ms")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
