"""How much faster is the full T-step variational bound when timesteps share a UNet call?

Evaluates every term of the bound (L_T, L_{T-1} .. L_1, L_0) for one image with a model shaped
like the built-in one (``build_unet('small', 16, 1)``, random weights, linear schedule, T = 1000),
twice with the same noise:

* batched:   ``vlb_terms(..., t_batch=B)`` stacks B timesteps into one UNet call (what the GUI and
  ``diffusion-gui vlb`` use);
* unbatched: ``vlb_terms_unbatched`` makes one UNet call per timestep.

Prints both wall-clock times, the ratio (target: batched >= 3x faster) and the largest difference
between the two results (they must agree: same noise, same maths). Figures are measured, never
asserted; run it on a quiet machine:

    OMP_NUM_THREADS=1 python benchmarks/vlb_speed.py [--threads 1] [--t-batch 32 64] [--timesteps 1000]
"""
from __future__ import annotations

import argparse
import os
import platform
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timesteps", type=int, default=1000, help="T of the linear schedule")
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--t-batch", type=int, nargs="+", default=[32, 64, 128],
                    help="timesteps per UNet call to try (batched runs)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1),
                    help="torch intra-op threads (default: $OMP_NUM_THREADS or 1)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch

    from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
    from diffusion_gui.core.vlb import compute_vlb, vlb_terms_unbatched
    from diffusion_gui.models.unet import build_unet, count_parameters

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(0)
    dev = torch.device(args.device)
    unet = build_unet(args.preset, args.size, 1).eval().requires_grad_(False).to(dev)

    def model(x, i):
        return unet(x, i).sample

    d = GaussianDiffusion(NoiseSchedule.from_name("linear", args.timesteps))
    x0 = (torch.randint(0, 256, (1, 1, args.size, args.size), generator=torch.Generator().manual_seed(1))
          .float() / 127.5 - 1).to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        sync()
        t0 = time.perf_counter()
        r = fn()
        sync()
        return time.perf_counter() - t0, r

    print(f"model: {args.preset} UNet2DModel, {count_parameters(unet) / 1e6:.2f} M parameters, "
          f"{args.size}x{args.size}x1, random weights; T = {args.timesteps}; one image")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {dev}")
    model(x0.repeat(4, 1, 1, 1), torch.zeros(4, dtype=torch.long, device=dev))   # warm-up

    batched = {}
    for b in args.t_batch:
        s, r = timed(lambda b=b: compute_vlb(model, d, x0, t_batch=b,
                                         generator=torch.Generator(dev).manual_seed(0)))
        batched[b] = (s, r)
        print(f"batched   t_batch={b:<4d} {args.timesteps // b + (args.timesteps % b > 0):>4d} UNet calls  "
              f"{s:8.2f} s   total bound {r.total_bpd:.5f} bits/dim")
    s1, r1 = timed(lambda: vlb_terms_unbatched(model, d, x0, generator=torch.Generator(dev).manual_seed(0)))
    print(f"unbatched            {args.timesteps:>4d} UNet calls  {s1:8.2f} s   "
          f"total bound {r1.total_bpd:.5f} bits/dim")

    best_b = min(batched, key=lambda b: batched[b][0])
    sb, rb = batched[best_b]
    diff = max(abs(float(a) - float(c)) for a, c in zip(rb.vb_bpd, r1.vb_bpd))
    print(f"\nfull {args.timesteps}-step bound, one image: batched (t_batch={best_b}) {sb:.2f} s vs "
          f"one call per t {s1:.2f} s  ->  {s1 / sb:.1f}x faster (target >= 3x)")
    print(f"largest per-term difference between the two: {diff:.2e} bits/dim")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
