"""The bound of a learned variance beside the fixed ones, on held-out data (issue #17, step 6).

For each image model given (built-in names or folders), the bound of ``N`` held-out digits in
bits/dim (noise seed 0, t-stride ``--stride``) with every variance the network can use: the two
fixed ones, and its own learned one if it outputs a variance (``learned_range``). Then the 2-D
lab: the ring of 8 Gaussians, T = 100, an MLP trained with L_simple (fixed variance) and one with
L_hybrid (learned_range), the same steps, seed and batches, scored on 2000 held-out points in
nats/dim (the Derivation panel's step 6, at ``--lab-steps``).

    OMP_NUM_THREADS=2 python benchmarks/learned_variance.py --models digits,PATH [--digits 200]

docs/derivation.md quotes its output.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def image_bounds(spec: str, n: int, stride: int) -> dict:
    import torch

    from diffusion_gui.core import GaussianDiffusion
    from diffusion_gui.core.vlb import compute_vlb
    from diffusion_gui.models.loader import load_model
    from diffusion_gui.sessions.losses import vlb_images
    m = load_model(spec)
    x0 = vlb_images(m, None, n)
    md = m.diffusion
    out = {}
    for v in ("fixed_small", "fixed_large") + (("learned_range",) if md.learned_variance else ()):
        d = GaussianDiffusion(md.schedule, variance=v, prediction_type=md.prediction_type)
        r = compute_vlb(m, d, x0, stride=stride, generator=torch.Generator().manual_seed(0))
        out[v] = {"total": r.total_bpd, "L_0": r.decoder_bpd, "L_T": r.prior_bpd}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="digits", help="comma-separated built-in names or folders")
    ap.add_argument("--digits", type=int, default=200)
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--lab-steps", type=int, default=1500)
    a = ap.parse_args(argv)
    for spec in a.models.split(","):
        t0 = time.perf_counter()
        res = image_bounds(spec, a.digits, a.stride)
        print(f"{spec}: {a.digits} held-out digits, stride {a.stride}, bits/dim "
              f"({time.perf_counter() - t0:.0f} s)")
        for v, r in res.items():
            print(f"  {v:14s} bound {r['total']:.4f}   L_0 {r['L_0']:.4f}")
    from diffusion_gui.sessions.derivation import DerivationSession
    s = DerivationSession()
    s.settings.lab_steps = a.lab_steps
    lab = s.compute("variance").raw["lab"]
    print(f"2-D ring, T = 100, {a.lab_steps} steps each, 2000 held-out points, nats/dim")
    for obj, by in lab.items():
        for v, r in by.items():
            print(f"  {obj:7s} MLP, {v:14s} bound {r['total']:.4f}   L_0 {r['decoder']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
