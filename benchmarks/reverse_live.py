"""The reverse panel's live sampling: (a) throughput vs the bare UNet loop, (b) GUI stalls.

(a) Runs the same N network evaluations (DDPM over N strided steps, same batch, same model) as
    a bare ``unet(x, t).sample`` loop and as a *Generate* in a visible ReversePanel (worker on a
    QThread, NaN checks, trajectory recording, live frames, painting). The GUI time is the wall
    clock from the click to ``run_ended`` (what the user waits). Prints steps/s of each and the
    ratio GUI / bare (target >= 0.95), the live frames shown per second and the GUI thread's CPU
    share during the runs.
(b) Then the same runs with a 5 ms QTimer in the GUI thread recording the gaps between its ticks;
    the longest gap beyond 5 ms is the longest stall of the event loop during a run (target
    <= 50 ms). The same probe with no run going gives the floor of the machine.

**Like the app, this script runs torch only in threads that end** (the bare loop and the model
loading each in a short-lived thread; the GUI thread never runs torch). torch's OpenMP (GNU
libgomp) keeps a pool of worker threads for every thread that ever ran a parallel region, for as
long as that thread lives, and once the pools hold more threads than there are cores, every team
waits at its barriers by sleeping instead of spinning: here that made the worker's 100 steps take
2.7 s instead of 1.3 s. An earlier version of this script ran the bare loop in the main thread,
whose pool then slowed the worker down, and measured 0.47. ``tests/gui/test_openmp_pools.py``
checks that the app's GUI thread never starts such a pool.

Model: ``--model`` or the built-in digits model when present, else a random model of its
architecture (``build_unet('small', 16, 1)``, T = 1000). Figures are printed, never asserted:

    python benchmarks/reverse_live.py [--steps 100] [--batch 16] [--repeat 9]

``--share S`` overrides the share of the GUI thread's time the live frames may take
(:data:`diffusion_gui.gui.frame_pacer.GUI_SHARE`); ``--share 1`` shows every frame up to 30 a
second, as before the pacing. Uses the display when there is one (e.g.
under ``xvfb-run``), else Qt's offscreen platform.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time


def in_thread(fn):
    """``fn()`` in a new thread that ends with it (its OpenMP pool goes with it)."""
    out: dict = {}

    def body():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            out["error"] = e

    th = threading.Thread(target=body, name="bench-torch")
    th.start()
    th.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def main(argv=None) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sampling_overhead import _model_args, _model_folder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _model_args(ap)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--share", type=float, default=None,
                    help="share of the GUI thread's time live frames may take")
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
    folder, label = in_thread(lambda: _model_folder(args, tmp.name))
    model = in_thread(lambda: load_model(folder))
    T = model.num_timesteps
    shape = (args.batch, model.in_channels, model.sample_size, model.sample_size)
    idx = sorted(strided_indices(T, args.steps), reverse=True)

    bare_cpu: list[float] = []
    worker_cpu: list[float] = []

    def bare_loop() -> float:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        t0, c0 = time.perf_counter(), time.thread_time()
        with torch.no_grad():
            for i in idx:
                model.unet(x, torch.full((shape[0],), i, dtype=torch.long)).sample
        bare_cpu.append(time.thread_time() - c0)
        return time.perf_counter() - t0

    def bare() -> float:
        return in_thread(bare_loop)

    # the worker thread's CPU time over a run: UNet calls + our loop + NaN checks + recording +
    # conversions (steadier on a busy machine, where wall-clock time depends on the neighbours)
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
    if args.share is not None:
        panel.pacer.share = args.share
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

    def gui(with_probe: bool) -> dict:
        ended, shown = [], []

        def on_end(rid, how):
            ended.append(time.perf_counter())

        panel.run_ended.connect(on_end)
        panel.frame_shown.connect(shown.append)
        t0, c0 = time.perf_counter(), time.thread_time()
        g = probed(start=panel.generate, with_probe=with_probe)
        gui_cpu = time.thread_time() - c0
        panel.run_ended.disconnect(on_end)
        panel.frame_shown.disconnect(shown.append)
        wall = ended[0] - t0
        return {"wall": wall, "gaps": g, "fps": len(shown) / wall, "gui_share": gui_cpu / wall}

    def sampler_only() -> float:
        """The same run as the CLI makes it: ``make_sampler`` exhausted in a thread, no Qt."""
        from diffusion_gui.commands import make_sampler

        def loop():
            gen, _ = make_sampler(model, sampler="ddpm", steps=args.steps, batch=args.batch, seed=0)
            t0 = time.perf_counter()
            for _ in gen:
                pass
            return time.perf_counter() - t0
        return in_thread(loop)

    bare()
    sampler_only()
    gui(False)                              # warm up all three
    idle = probed(seconds=1.0)
    bare_cpu.clear()
    worker_cpu.clear()
    # (a) interleaved: bare, CLI sampler, GUI run, bare; each ratio against the mean of the two
    # bare runs around it (the machine's speed drifts by several per cent within seconds)
    b_times, s_times, runs = [], [], []
    r_gui, r_cli = [], []
    for _ in range(args.repeat):
        b0 = bare()
        s_times.append(sampler_only())
        runs.append(gui(False))
        b1 = bare()
        b_times += [b0, b1]
        r_cli.append((b0 + b1) / 2 / s_times[-1])
        r_gui.append((b0 + b1) / 2 / runs[-1]["wall"])
    probed_runs = [gui(True) for _ in range(max(1, args.repeat // 2))]    # (b)
    pacing = panel.pacer.share
    panel.shutdown()
    ctx.shutdown()

    def med(rs, key):
        return statistics.median(r[key] for r in rs)

    b, g = statistics.median(b_times), med(runs, "wall")
    all_gaps = [x for r in probed_runs for x in r["gaps"]]
    stalls = sorted(x - 5.0 for x in all_gaps)
    p99 = stalls[int(0.99 * (len(stalls) - 1))] if stalls else float("nan")
    print(f"model: {label}; batch {args.batch}, {args.steps} network evaluations per run "
          f"(DDPM strided, T = {T}); torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{len(os.sched_getaffinity(0))} usable cores; Qt platform {app.platformName()}")
    print("live frames: " + (f"paced to {pacing:.1%} of the GUI thread's time" if pacing
                             else "not paced (up to 30 a second)"))
    print(f"(a) bare UNet loop : median {b:.3f} s  ({args.steps / b:.1f} steps/s)")
    print(f"    CLI sampler    : median {statistics.median(s_times):.3f} s")
    print(f"    GUI worker     : median {g:.3f} s  ({args.steps / g:.1f} steps/s)")
    print(f"    throughput GUI / bare = {statistics.median(r_gui):.3f} (median of {len(r_gui)} "
          f"interleaved runs)   target >= 0.95")
    print("        per run: " + " ".join(f"{r:.3f}" for r in r_gui))
    print(f"    CLI sampler / bare    = {statistics.median(r_cli):.3f} (the sampler's own maths, no "
          f"GUI);  GUI / CLI = {statistics.median(r_gui) / statistics.median(r_cli):.3f}")
    print(f"    live frames shown: {med(runs, 'fps'):.1f} per second; GUI thread CPU: "
          f"{med(runs, 'gui_share'):.1%} of the run's wall clock")
    bc, wc = statistics.median(bare_cpu), statistics.median(worker_cpu[:len(runs)])
    print(f"    CPU time of the sampling thread: bare {bc:.3f} s, GUI worker {wc:.3f} s,"
          f" bare / worker = {bc / wc:.3f}")
    print(f"(b) GUI event-loop stall during {len(probed_runs)} runs (5 ms probe, {len(all_gaps)} "
          f"ticks): longest {max(stalls):.1f} ms, p99 {p99:.1f} ms, median "
          f"{statistics.median(stalls):.1f} ms   target <= 50 ms")
    print(f"    throughput with the probe running: GUI / bare = {b / med(probed_runs, 'wall'):.3f}"
          f" ({med(probed_runs, 'fps'):.1f} frames per second)")
    idle_st = [x - 5.0 for x in idle]
    print(f"    idle machine floor (no run, 1 s): longest {max(idle_st):.1f} ms, "
          f"median {statistics.median(idle_st):.1f} ms")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
