"""Drive the Train panel for N minutes on the digits and record what it shows.

Run under a display (for real pixels: ``xvfb-run -a python benchmarks/train_panel_run.py``)::

    xvfb-run -a python benchmarks/train_panel_run.py --minutes 10 --out bench/train10
    xvfb-run -a python benchmarks/train_panel_run.py --minutes 1 --preset tiny --out /tmp/t1

It clicks Start with the chosen settings, takes screenshots of the whole panel and of the sample
grid at the start (the first grid), the middle and the end of the run, clicks Stop when the time
is up, saves the model (``OUT/model``, a diffusers pipeline folder with its model card), and
prints the figures: steps, seconds per step, the loss (raw and smoothed) at 10 %, 50 % and 100 %
of the run, the loss per timestep bucket, and how responsive the GUI stayed (the worst delay of a
50 ms timer while training). ``OUT/loss.csv`` holds every step's loss.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training time (wall clock)")
    p.add_argument("--preset", default="small", choices=["tiny", "small", "medium"])
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--steps", type=int, default=100000, help="step budget (the time limit usually ends the run first)")
    p.add_argument("--sample-every", type=int, default=100)
    p.add_argument("--sample-steps", type=int, default=25, help="DDIM steps of the grids")
    p.add_argument("--grid", type=int, default=16, help="images per grid")
    p.add_argument("--width", type=int, default=1440)
    p.add_argument("--height", type=int, default=900)
    p.add_argument("--out", default="bench/train_panel")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "bench")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from PIL import Image
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from diffusion_gui.core.images import enlarge
    from diffusion_gui.gui.context import AppContext
    from diffusion_gui.gui.panels.train import TrainPanel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.IniFormat)
    ctx = AppContext(settings=settings)
    errors = []
    ctx.error.connect(lambda t, m: errors.append(f"{t}: {m}"))
    panel = TrainPanel(ctx)
    panel.runs_dir = out / "runs"
    panel.setWindowTitle("diffusion-gui — Train")
    panel.resize(args.width, args.height)
    panel.preset.setCurrentIndex(panel.preset.findData(args.preset))
    panel.size.setCurrentIndex(panel.size.findData(args.size))
    panel.batch.setValue(args.batch)
    panel.lr.setValue(args.lr)
    panel.steps.setValue(args.steps)
    panel.sample_every.setValue(args.sample_every)
    panel.sample_steps.setValue(args.sample_steps)
    panel.sample_n.setCurrentIndex(panel.sample_n.findData(args.grid))
    panel.show()

    duration = args.minutes * 60.0
    shots: dict[str, dict] = {}
    lag = {"worst": 0.0, "sum": 0.0, "n": 0, "last": None, "top": []}
    state = {"t0": None, "phase": "wait-preview", "ended": None}

    def shoot(tag: str):
        """Screenshot of the panel and the grid shown, plus the grid itself, enlarged crisply."""
        app.processEvents()
        panel.grab().save(str(out / f"panel_{tag}.png"))
        cur = panel.strip.current()
        info = {"tag": tag, "elapsed_s": round(time.perf_counter() - state["t0"], 1),
                "step": panel.session.step}
        if cur is not None:
            step, grid, _ = cur
            f = max(1, 512 // grid.shape[0])     # crisp, big enough for a slide
            g = enlarge(grid, f)
            Image.fromarray(g[:, :, 0] if g.shape[2] == 1 else g).save(out / f"grid_{tag}_step{step}.png")
            info["grid_step"] = step
        shots[tag] = info
        print(f"[{info['elapsed_s']:7.1f} s] {tag}: step {panel.session.step:,}"
              + (f", grid of step {info.get('grid_step'):,}" if cur is not None else ""), flush=True)

    def tick():
        now = time.perf_counter()
        if lag["last"] is not None and state["phase"] == "training":
            late = now - lag["last"] - 0.05
            lag["worst"] = max(lag["worst"], late)
            if late > 0.1:
                lag["top"].append((round(now - state["t0"], 2), round(late * 1000), panel.session.step))
            lag["sum"] += max(late, 0.0)
            lag["n"] += 1
        lag["last"] = now
        phase = state["phase"]
        if phase == "wait-preview":
            if panel.preview.image() is not None and panel.info.step_memory(panel.settings())[0]:
                state["t0"] = time.perf_counter()
                state["none0"] = sys.getrefcount(None)
                panel.start_btn.click()
                state["phase"] = "training"
                print(f"started: {args.preset}, {args.size}px, batch {args.batch}, lr {args.lr:g}, "
                      f"for {args.minutes:g} min", flush=True)
            return
        if phase != "training":
            return
        el = now - state["t0"]
        if "start" not in shots and panel.strip.grids:
            shoot("start")
        if "middle" not in shots and el >= duration / 2:
            panel.strip.select(len(panel.strip.grids) - 1)
            shoot("middle")
        if el >= duration or panel.state == "idle":
            state["phase"] = "stopping"
            if panel.state != "idle":
                panel.stop()

    def ended(how):
        state["ended"] = how
        state["none1"] = sys.getrefcount(None)
        state["t1"] = time.perf_counter()
        state["phase"] = "done"
        QTimer.singleShot(300, finish)

    def finish():
        # one last grid of the final weights, so that "end" shows the stopped state
        panel.strip.select(len(panel.strip.grids) - 1)
        shoot("end")
        panel.save_now(str(out / "model"))
        panel.loss_plot.grab().save(str(out / "loss_plot.png"))
        panel.bucket_plot.grab().save(str(out / "bucket_plot.png"))
        report(panel, shots, lag, state, errors, args, out)
        app.quit()

    panel.run_ended.connect(ended)
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(tick)
    timer.start()
    app.exec()
    panel.shutdown()
    ctx.shutdown()
    return 0 if not errors else 1


def report(panel, shots, lag, state, errors, args, out: Path):
    import numpy as np
    session = panel.session
    steps = session.history.steps.data.copy()
    raw = session.history.raw.data.copy()
    smooth = session.history.smooth.data.copy()
    with (out / "loss.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss", "smoothed"])
        for row in zip(steps.tolist(), raw.tolist(), smooth.tolist()):
            w.writerow([row[0], f"{row[1]:.6g}", f"{row[2]:.6g}"])
    n = len(steps)
    figures = {"ended": state["ended"], "steps": int(steps[-1]) if n else 0,
               "wall_s": round(session.elapsed, 1),
               "steps_per_s": round(float(steps[-1]) / session.elapsed, 2) if n and session.elapsed else None,
               "s_per_step_first_steps": session.run.s_per_step if session.run else None,
               "grids": len(panel.strip.grids), "screenshots": shots,
               "gui_timer_worst_delay_ms": round(lag["worst"] * 1000, 1),
               "gui_timer_mean_delay_ms": round(lag["sum"] / max(lag["n"], 1) * 1000, 2),
               "gui_delays_over_100ms": [{"at_s": a, "ms": b, "step": c}
                                         for a, b, c in sorted(lag["top"], key=lambda x: -x[1])[:8]],
               "max_rss_mb": round(_max_rss_mb()),
               "errors": errors}
    if "none0" in state and "none1" in state:
        # PySide6 6.12.0 on CPython < 3.12 drops a reference to None on every call of a method
        # returning void: at this rate, when does None's count reach 0 (a fatal error)?
        per_min = (state["none1"] - state["none0"]) / max((state["t1"] - state["t0"]) / 60, 1e-9)
        figures["none_refcount"] = {"start": state["none0"], "end": state["none1"],
                                    "change_per_min": round(per_min)}
    marks = {}
    for frac in (0.1, 0.5, 1.0):
        k = max(0, min(n - 1, int(round(frac * n)) - 1))
        if n:
            lo = max(0, k - 49)
            marks[f"{int(frac * 100)}%"] = {"step": int(steps[k]), "smoothed": round(float(smooth[k]), 4),
                                           "raw_mean_last_50": round(float(raw[lo:k + 1].mean()), 4)}
    figures["loss"] = marks
    figures["bucket_loss"] = [None if not np.isfinite(v) else round(float(v), 4) for v in session.bucket]
    (out / "figures.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    print(f"wrote {out}")


def _max_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux


if __name__ == "__main__":
    sys.exit(main())
