"""Which part of a reverse-panel run costs sampling speed: variants of the GUI run, side by side.

Each variant is a *Generate* in a visible ReversePanel (100 DDPM strided steps, batch 16, the
built-in digits model), timed like ``reverse_live.py``: against bare UNet loops run in its own
worker thread just before and after the sampler. The variants run interleaved, in a shuffled
order each round; the median ratio sampling / bare of each is printed with a 90 % bootstrap
interval. Figures are printed, never asserted:

    python benchmarks/reverse_variants.py [--rounds 14] [--variants app,observe4,no_observe]

Variants (what differs from the app as shipped):

- ``app``: nothing;
- ``observe4``: the per-step NaN check and uint8 recording (``ReverseRun.observe``) only every
  4th step (an experiment: the app must check every step);
- ``no_observe``: no per-step check or recording at all (experiment);
- ``no_frames``: no live frames (the pacer's rate floored near 0);
- ``share2``: live frames paced to 2 % of the GUI thread's time instead of
  :data:`~diffusion_gui.gui.frame_pacer.GUI_SHARE`.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile


def main(argv=None) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from reverse_live import bracket_tools, in_thread, median_ci, show_panel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=14)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--variants", default="app,observe4,no_observe")
    args = ap.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "benchmark")

    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from diffusion_gui.core import strided_indices
    from diffusion_gui.gui.frame_pacer import GUI_SHARE
    from diffusion_gui.models.loader import load_model
    from diffusion_gui.models.registry import DEFAULT_MODEL, builtin_path
    from diffusion_gui.sessions.reverse import ReverseRun

    app = QApplication.instance() or QApplication([])
    model = in_thread(lambda: load_model(str(builtin_path(DEFAULT_MODEL))))
    shape = (args.batch, model.in_channels, model.sample_size, model.sample_size)
    idx = sorted(strided_indices(model.num_timesteps, args.steps), reverse=True)

    real_make_gen, real_observe = ReverseRun.make_gen, ReverseRun.observe
    _, bracketed = bracket_tools(model, shape, idx)
    cur: dict = {}

    def make_gen(self):
        return bracketed(lambda: real_make_gen(self), cur)

    ReverseRun.make_gen = make_gen
    tmp = tempfile.TemporaryDirectory()
    ctx, win, panel = show_panel(model, args.steps, args.batch, os.path.join(tmp.name, "s.ini"))
    min_rate = panel.pacer.min_rate

    def every(k):
        def observe(self, so):
            if so.step % k == 0 or so.t == 0:
                real_observe(self, so)
        return observe

    variants = {
        "app": {},
        "observe4": {"observe": every(4)},
        "no_observe": {"observe": lambda self, so: None},
        "no_frames": {"share": 1e-9, "min_rate": 0.01},
        "share2": {"share": 0.02},
    }

    def run(name) -> float:
        v = variants[name]
        ReverseRun.observe = v.get("observe", real_observe)
        panel.pacer.share = v.get("share", GUI_SHARE)
        panel.pacer.min_rate = v.get("min_rate", min_rate)
        cur.clear()
        loop = QEventLoop()
        panel.run_ended.connect(loop.quit)
        panel.generate()
        loop.exec()
        panel.run_ended.disconnect(loop.quit)
        return (cur["b0"] + cur["b1"]) / 2 / cur["s"]

    names = args.variants.split(",")
    unknown = [n for n in names if n not in variants]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {sorted(variants)}")
    run("app")                                   # warm up
    res: dict = {n: [] for n in names}
    for _ in range(args.rounds):
        order = names[:]
        random.shuffle(order)
        for n in order:
            res[n].append(run(n))
    panel.shutdown()
    ctx.shutdown()
    print(f"{args.rounds} rounds, {args.steps} DDPM strided steps, batch {args.batch}; "
          f"Qt platform {app.platformName()}; sampling speed / bare UNet loop in the same thread:")
    for n in names:
        lo, hi = median_ci(res[n])
        print(f"  {n:11s} {statistics.median(res[n]):.3f}  (90 % interval {lo:.3f}..{hi:.3f})")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
