"""The reverse panel's live sampling: (a) throughput vs the bare UNet loop, (b) GUI stalls.

(a) Runs the same N network evaluations (DDPM over N strided steps, same batch, same model) as
    a bare ``unet(x, t).sample`` loop and as a *Generate* in a visible ReversePanel (worker on a
    QThread, NaN checks, trajectory recording, live frames, painting). **Each GUI run is timed
    against bare loops run in its own worker thread**, just before and just after the sampler
    (the GUI is idle meanwhile): ratio = mean(bare before, bare after) / sampling time, where
    the sampling time runs from the first item to the end of the generator, the worker's work
    per item included. Prints the median ratio over the runs (target >= 0.95) with a bootstrap
    interval, the same for the CLI's sampler (``make_sampler`` exhausted, no Qt), the ratio
    from the click to ``run_ended`` (thread start, first step and showing the result included),
    the live frames shown per second and the GUI thread's CPU share.

    Why the bare loops run in the worker's own thread, and why torch runs only in threads
    that end: docs/performance.md, "The reverse panel's live sampling".
(b) Then plain runs with a 5 ms QTimer in the GUI thread recording the gaps between its ticks;
    the longest gap beyond 5 ms is the longest stall of the event loop during a run (target
    <= 50 ms). The same probe with no run going gives the floor of the machine.

Model: ``--model`` or the built-in digits model when present, else a random model of its
architecture (``build_unet('small', 16, 1)``, T = 1000). Figures are printed, never asserted:

    python benchmarks/reverse_live.py [--steps 100] [--batch 16] [--repeat 20]

``--share S`` overrides the share of the GUI thread's time the live frames may take
(:data:`diffusion_gui.gui.frame_pacer.GUI_SHARE`); ``--share 1`` shows every frame up to 30 a
second. Uses the display when there is one (e.g. under ``xvfb-run``), else Qt's offscreen
platform.
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


def median_ci(values, level=0.90, draws=4000, seed=0):
    """A bootstrap interval for the median of ``values`` (the runs resampled with replacement):
    how far the printed median could move on this machine's noise."""
    import numpy as np
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(v, size=(draws, len(v)), replace=True), axis=1)
    a = (1 - level) / 2
    return float(np.quantile(meds, a)), float(np.quantile(meds, 1 - a))


def bracket_tools(model, shape, idx):
    """``(bare_loop, bracketed)`` for ``model`` at ``shape`` over the timesteps ``idx``.

    ``bare_loop()``: the floor, ``unet(x, t).sample`` for those timesteps, nothing else -> seconds.
    ``bracketed(gen_factory, out)``: in the calling thread, one warm-up call (the thread's OpenMP
    pool starts there), a bare loop, then the generator ``gen_factory()`` makes, timed from its
    first item to its end (everything its consumer does per item included), then another bare
    loop; fills ``out`` with ``warm``, ``b0``, ``s``, ``b1`` -> that generator, wrapped.
    """
    import torch

    def bare_loop() -> float:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in idx:
                model.unet(x, torch.full((shape[0],), i, dtype=torch.long)).sample  # noqa: B018
        return time.perf_counter() - t0

    def bracketed(gen_factory, out: dict):
        t0 = time.perf_counter()
        with torch.no_grad():
            model.unet(torch.zeros(shape), torch.zeros(shape[0], dtype=torch.long))
        out["warm"] = time.perf_counter() - t0
        out["b0"] = bare_loop()
        gen = gen_factory()

        def timed():
            t1 = time.perf_counter()
            yield from gen
            out["s"] = time.perf_counter() - t1
            out["b1"] = bare_loop()
        return timed()

    return bare_loop, bracketed


def show_panel(model, steps: int, batch: int, settings_path: str):
    """A visible ReversePanel (1280 x 760 window) for ``model``, set to DDPM over ``steps``
    strided steps, batch ``batch`` -> ``(ctx, window, panel)``."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMainWindow

    from diffusion_gui.gui.context import AppContext
    from diffusion_gui.gui.panels.reverse import ReversePanel
    ctx = AppContext(settings=QSettings(settings_path, QSettings.IniFormat))
    win = QMainWindow()
    panel = ReversePanel(ctx)
    win.setCentralWidget(panel)
    win.resize(1280, 760)
    win.show()
    ctx.model = model
    ctx.model_changed.emit()
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm_strided"))
    panel.steps.setValue(steps)
    panel.batch.setValue(batch)
    return ctx, win, panel


def main(argv=None) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sampling_overhead import _model_args, _model_folder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _model_args(ap)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--share", type=float, default=None,
                    help="share of the GUI thread's time live frames may take")
    args = ap.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "benchmark")

    import torch
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from diffusion_gui.core import strided_indices
    from diffusion_gui.models.loader import load_model
    from diffusion_gui.sessions.reverse import ReverseRun

    app = QApplication.instance() or QApplication([])
    tmp = tempfile.TemporaryDirectory()
    folder, label = in_thread(lambda: _model_folder(args, tmp.name))
    model = in_thread(lambda: load_model(folder))
    T = model.num_timesteps
    shape = (args.batch, model.in_channels, model.sample_size, model.sample_size)
    idx = sorted(strided_indices(T, args.steps), reverse=True)

    bare_loop, bracketed = bracket_tools(model, shape, idx)

    # a GUI run: its worker thread runs the bare loops around the sampler
    real_make_gen = ReverseRun.make_gen
    current: dict = {}

    def make_gen(self):
        return bracketed(lambda: real_make_gen(self), current)

    ReverseRun.make_gen = make_gen

    ctx, win, panel = show_panel(model, args.steps, args.batch, os.path.join(tmp.name, "s.ini"))
    ctx.model_spec = folder
    if args.share is not None:
        panel.pacer.share = args.share

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

    def gui(with_probe: bool, brackets: bool = True) -> dict:
        """One *Generate*; with ``brackets`` the worker thread runs bare loops around it."""
        ended, shown = [], []

        def on_end(rid, how):
            ended.append(time.perf_counter())

        current.clear()
        ReverseRun.make_gen = make_gen if brackets else real_make_gen
        panel.run_ended.connect(on_end)
        panel.frame_shown.connect(shown.append)
        t0, c0 = time.perf_counter(), time.thread_time()
        g = probed(start=panel.generate, with_probe=with_probe)
        gui_cpu = time.thread_time() - c0
        panel.run_ended.disconnect(on_end)
        panel.frame_shown.disconnect(shown.append)
        r = dict(current)
        # what the user waits, from the click to run_ended, without the bare loops
        r["wall"] = ended[0] - t0 - sum(r.get(k, 0.0) for k in ("warm", "b0", "b1"))
        s = r.get("s", r["wall"])
        r.update(gaps=g, fps=len(shown) / s, gui_share=gui_cpu / r["wall"])
        return r

    def cli() -> dict:
        """The same run as the CLI makes it: ``make_sampler`` exhausted in a thread, no Qt,
        with the same bare loops around it in that thread."""
        from diffusion_gui.sessions.sampling import make_sampler

        def body():
            out: dict = {}
            gen = bracketed(lambda: make_sampler(model, sampler="ddpm", steps=args.steps,
                                                 batch=args.batch, seed=0)[0], out)
            for _ in gen:
                pass
            return out
        return in_thread(body)

    cli()
    gui(False)                              # warm up
    idle = probed(seconds=1.0)
    # (a) GUI runs and CLI runs alternate; each is timed against the bare loops run in its own
    # thread just before and after it
    runs, clis = [], []
    for _ in range(args.repeat):
        runs.append(gui(False))
        clis.append(cli())
    probed_runs = [gui(True, brackets=False) for _ in range(max(1, min(5, args.repeat // 2)))]
    pacing = panel.pacer.share
    panel.shutdown()
    ctx.shutdown()

    def ratio(r, key="s"):
        return (r["b0"] + r["b1"]) / 2 / r[key]

    def med(rs, key):
        return statistics.median(r[key] for r in rs)

    all_gaps = [x for r in probed_runs for x in r["gaps"]]
    stalls = sorted(x - 5.0 for x in all_gaps)
    p99 = stalls[int(0.99 * (len(stalls) - 1))] if stalls else float("nan")
    print(f"model: {label}; batch {args.batch}, {args.steps} network evaluations per run "
          f"(DDPM strided, T = {T}); torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{len(os.sched_getaffinity(0))} usable cores; Qt platform {app.platformName()}")
    print("live frames: " + (f"paced to {pacing:.1%} of the GUI thread's time" if pacing
                             else "not paced (up to 30 a second)"))
    r_gui = [ratio(r) for r in runs]
    r_cli = [ratio(r) for r in clis]
    r_wait = [ratio(r, "wall") for r in runs]
    b = statistics.median([r[k] for r in runs + clis for k in ("b0", "b1")])
    print(f"(a) bare UNet loop    : median {b:.3f} s  ({args.steps / b:.1f} steps/s)")
    print(f"    GUI worker sampling: median {med(runs, 's'):.3f} s; CLI sampler: "
          f"median {med(clis, 's'):.3f} s")
    lo, hi = median_ci(r_gui)
    print(f"    throughput GUI / bare = {statistics.median(r_gui):.3f}   target >= 0.95\n"
          f"        median of {len(r_gui)} runs, each against the bare loops run in its worker thread "
          f"just before and after it; 90 % bootstrap interval {lo:.3f}..{hi:.3f}")
    print("        per run: " + " ".join(f"{r:.3f}" for r in r_gui))
    lo, hi = median_ci(r_cli)
    print(f"    CLI sampler / bare    = {statistics.median(r_cli):.3f} (the sampler's own maths, "
          f"no GUI; interval {lo:.3f}..{hi:.3f})")
    lo, hi = median_ci(r_wait)
    print(f"    click to run_ended    = {statistics.median(r_wait):.3f} of the bare loop's speed "
          f"(also starting the thread and the model's first step, and showing the result; "
          f"interval {lo:.3f}..{hi:.3f})")
    print(f"    live frames shown: {med(runs, 'fps'):.1f} per second; GUI thread CPU: "
          f"{med(runs, 'gui_share'):.1%} of the run's wall clock (start and end included)")
    print(f"(b) GUI event-loop stall during {len(probed_runs)} runs (5 ms probe, {len(all_gaps)} "
          f"ticks): longest {max(stalls):.1f} ms, p99 {p99:.1f} ms, median "
          f"{statistics.median(stalls):.1f} ms   target <= 50 ms")
    print(f"    with the probe running: {med(probed_runs, 'fps'):.1f} frames per second")
    idle_st = [x - 5.0 for x in idle]
    print(f"    idle machine floor (no run, 1 s): longest {max(idle_st):.1f} ms, "
          f"median {statistics.median(idle_st):.1f} ms")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
