"""The 2-D lab's MLP after 30 s of training: energy distance to fresh data beside the noise floor
and the Gaussian baseline, on moons and gaussians8 (and the exact / empirical denoisers for
reference). Run pinned to one core: ``OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/lab2d_quality.py``.
"""
from __future__ import annotations

import argparse
import time

from diffusion_gui.sessions.lab2d import Lab2DSession, Lab2DSettings


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--data", nargs="+", default=["moons", "gaussians8"])
    args = ap.parse_args(argv)
    print(f"{'data':<11} {'model':<10} {'train':>12} {'loss':>7} {'ED':>9} {'floor':>9} "
          f"{'x floor':>7} {'Gauss':>8} {'near %':>7} {'sample s':>8}")
    for name in args.data:
        lab = Lab2DSession(Lab2DSettings(data=name))
        kinds = ["mlp", "empirical"] + (["exact"] if lab.has_exact else [])
        for kind in kinds:
            train, loss = "", float("nan")
            if kind == "mlp":
                t0 = time.perf_counter()
                for m in lab.train(seconds=args.seconds, report_every=50):
                    loss = m.loss
                train = f"{lab.trained_steps} st/{time.perf_counter() - t0:.0f}s"
            t0 = time.perf_counter()
            samples = lab.sample_points(kind, sampler_kind="ddpm", seed=0)
            ts = time.perf_counter() - t0
            q = lab.quality(samples)
            print(f"{name:<11} {kind:<10} {train:>12} {loss:7.4f} {q.energy_distance:9.5f} "
                  f"{q.noise_floor:9.5f} {q.energy_distance / q.noise_floor:7.2f} "
                  f"{q.gaussian_baseline:8.5f} {q.nearest_median_pct:7.2f} {ts:8.1f}", flush=True)


if __name__ == "__main__":
    main()
