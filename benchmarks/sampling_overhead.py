"""Our sampling loop vs bare UNet calls vs diffusers' DDPMPipeline, on the same weights and steps.

Three ways to make the same N network evaluations on the same UNet, batch and timesteps:

* bare:      ``unet(x, t).sample`` in a plain loop, nothing else (the floor);
* ours:      :func:`diffusion_gui.commands.make_sampler` exhausted (what ``diffusion-gui sample``
             and the GUI worker iterate: DDPM over N strided steps, x0 prediction, posterior
             mean, noise, a StepOutput per step);
* diffusers: ``DDPMPipeline(batch_size=B, num_inference_steps=N)`` (its "leading" spacing visits
             the same timesteps when N divides T).

The model is ``--model`` (a built-in name, folder or cached hub id) or, by default, the built-in
digits model when it exists, else a random model of the same architecture
(``build_unet('small', 16, 1)``, T = 1000): speed does not depend on the weights. Runs are
interleaved and repeated; the median of each is reported, and ratios to bare (target: ours within
5 % of bare). Wall-clock and CPU time are both printed: on a busy machine the CPU-time ratios and
the cost of our loop around a free network (zeros instead of a UNet) are the steadier figures.
Figures are measured, never asserted; run it on a quiet machine:

    OMP_NUM_THREADS=1 python benchmarks/sampling_overhead.py [--steps 100] [--batch 16] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings


def _model_args(ap):
    """The options :func:`_model_folder` reads."""
    ap.add_argument("--model", default=None)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--channels", type=int, default=1)


def _model_folder(args, tmp):
    from diffusion_gui.models.registry import DEFAULT_MODEL, builtin_path
    if args.model:
        return args.model, args.model
    p = builtin_path(DEFAULT_MODEL)
    if p is not None:
        return str(p), f"built-in {DEFAULT_MODEL}"
    import torch
    from diffusers import DDPMPipeline, DDPMScheduler

    from diffusion_gui.models.unet import build_unet
    torch.manual_seed(0)
    unet = build_unet(args.preset, args.size, args.channels)
    folder = os.path.join(tmp, "model")
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(folder)
    return folder, f"random '{args.preset}' {args.size} px {args.channels} ch (T = 1000)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _model_args(ap)
    ap.add_argument("--steps", type=int, default=100, help="network evaluations per run")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)

    import torch
    from diffusers import DDPMPipeline

    from diffusion_gui.commands import make_sampler
    from diffusion_gui.core import strided_indices
    from diffusion_gui.models.loader import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder, label = _model_folder(args, tmp)
        model = load_model(folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe = DDPMPipeline.from_pretrained(model.source)
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.load_state_dict(model.unet.state_dict())          # the very same weights
    pipe.unet.eval().requires_grad_(False)
    T = model.num_timesteps
    shape = (args.batch, model.in_channels, model.sample_size, model.sample_size)
    idx = sorted(strided_indices(T, args.steps), reverse=True)
    unet = model.unet

    def bare():
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            for i in idx:
                _ = unet(x, torch.full((shape[0],), i, dtype=torch.long)).sample

    def ours():
        gen, _ = make_sampler(model, sampler="ddpm", steps=args.steps, batch=args.batch, seed=0)
        for _ in gen:
            pass

    def theirs():
        with torch.no_grad():
            pipe(batch_size=args.batch, num_inference_steps=args.steps, output_type="np",
                 generator=torch.Generator().manual_seed(0))

    def zero(x, i):               # a free network: what is left is our loop's own cost
        return torch.zeros_like(x)

    class Free:
        def __getattr__(self, name):
            return getattr(model, name)

        def __call__(self, x, i):
            return zero(x, i)

    def ours_free():
        gen, _ = make_sampler(Free(), sampler="ddpm", steps=args.steps, batch=args.batch, seed=0)
        for _ in gen:
            pass

    runs = {"bare UNet calls": bare, "ours (make_sampler)": ours, "diffusers DDPMPipeline": theirs}
    times = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    for fn in runs.values():      # warm up
        fn()
    for _ in range(args.repeat):
        for k, fn in runs.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    free = []
    for _ in range(args.repeat):
        c0 = time.process_time()
        ours_free()
        free.append(time.process_time() - c0)

    print(f"model: {label}; {model.sample_size} px, {model.in_channels} ch, "
          f"{sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M parameters")
    print(f"batch {args.batch}, {args.steps} network evaluations per run (DDPM strided, T = {T}), "
          f"{args.repeat} interleaved runs; torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    base = statistics.median(times["bare UNet calls"])
    cbase = statistics.median(cpu["bare UNet calls"])
    print(f"{'':26s} {'wall median s':>14s} {'min s':>8s} {'steps/s':>8s} {'wall / bare':>12s}"
          f" {'CPU s':>8s} {'CPU / bare':>11s}")
    for k, ts in times.items():
        med = statistics.median(ts)
        cm = statistics.median(cpu[k])
        print(f"{k:26s} {med:14.3f} {min(ts):8.3f} {args.steps / med:8.1f} {med / base:12.3f}"
              f" {cm:8.3f} {cm / cbase:11.3f}")
    fm = statistics.median(free)
    print(f"our loop's own cost (a free network, CPU time): {fm * 1e3 / args.steps:.3f} ms per step"
          f" = {fm / cbase * 100:.2f} % of a bare UNet call's CPU time")
    ratio = statistics.median(times["ours (make_sampler)"]) / base
    rmin = min(times["ours (make_sampler)"]) / min(times["bare UNet calls"])
    print(f"ours / bare by the fastest run of each (least disturbed by other load) = {rmin:.3f}")
    print(f"ours / bare (wall, median) = {ratio:.3f} ({(ratio - 1) * 100:+.1f} %; target within 5 %)"
          f"; diffusers / bare = {statistics.median(times['diffusers DDPMPipeline']) / base:.3f}"
          f"; ours / diffusers = {statistics.median(times['ours (make_sampler)']) / statistics.median(times['diffusers DDPMPipeline']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
