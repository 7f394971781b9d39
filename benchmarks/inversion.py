"""DDIM inversion figures for a model: invert held-out digits (or an image) with N DDIM steps,
decode them back, and print the reconstruction error for each N; then the fork curve of one
sample (when does it commit to its digit?) and the compare grid's row times.

    python benchmarks/inversion.py [--model digits] [--batch 8] [--steps 10,50,200,1000]
                                   [--forks 8] [--fork-steps 100] [--json OUT.json]

Figures, not assertions: the held-out digits come from the model's fixed split
(``diffusion_gui.models.data.digits_split``), never from its training digits.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch


def main(argv=None) -> int:
    from diffusion_gui.models.loader import load_model
    from diffusion_gui.models.registry import DEFAULT_MODEL
    from diffusion_gui.sessions.compare import DEFAULT_ROWS, CompareGrid
    from diffusion_gui.sessions.forks import fork_curve
    from diffusion_gui.sessions.inversion import error_vs_steps, heldout_digits
    from diffusion_gui.sessions.sampling import SamplingParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", default="10,50,200,1000")
    ap.add_argument("--forks", type=int, default=8, help="K forks per point (0: skip the fork curve)")
    ap.add_argument("--fork-steps", type=int, default=100, help="DDPM respaced steps of the forked run")
    ap.add_argument("--grid", action="store_true", help="also time the default compare grid")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.model)
    out = {"model": model.name, "batch": a.batch, "inversion": []}
    images = heldout_digits(model, a.batch)
    print(f"DDIM inversion + reconstruction of {a.batch} held-out digits ({model.name}, T = {model.num_timesteps})")
    print(f"{'steps':>6} {'MSE':>10} {'PSNR dB':>8} {'min dB':>7} {'std x_T':>8} {'s':>7}")
    for r in error_vs_steps(model, images, [int(s) for s in a.steps.split(",")]):
        f = r.figures()
        out["inversion"].append(f)
        print(f"{f['steps']:>6} {f['mse']:>10.6f} {f['psnr_db']:>8.2f} {f['psnr_db_min']:>7.2f} "
              f"{f['latent_std']:>8.3f} {f['seconds']:>7.1f}", flush=True)
    if a.forks:
        p = SamplingParams(sampler="ddpm", steps=a.fork_steps, batch=1, seed=0)
        last = None
        for last in fork_curve(model, p, k=a.forks, n_points=10):
            pass
        out["forks"] = last.figures()
        print(f"\nforks of one DDPM-{a.fork_steps} sample (seed 0), K = {a.forks}; digit of the "
              f"original: {last.original_class}")
        print(f"{'t':>6} {'spread':>8} {'changed':>8}")
        for pt in sorted(last.points, key=lambda q: -q.t):
            ch = "" if pt.changed is None else f"{100 * pt.changed:.0f}%"
            print(f"{pt.t:>6} {pt.spread:>8.4f} {ch:>8}")
    if a.grid:
        g = CompareGrid(list(DEFAULT_ROWS), batch=a.batch, seed=0)
        for _ in g.run(model):
            pass
        out["grid"] = g.figures()
        print("\ncompare grid (same x_T):")
        for r in g.figures():
            cs = "" if r["confident_share"] is None else f"{100 * r['confident_share']:.0f}% confident"
            print(f"  {r['row']:<34} {r['seconds']:>7.2f} s  {cs}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
