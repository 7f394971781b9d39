"""Export: time and size of a 100-frame 256 px forward GIF and of a 1000-step 16-image reverse
trajectory as GIF, MP4, WebM, WebP and APNG (``--formats``), through the code the Export dialog
runs (``sessions.export_run.run_export``).
What it measures and how: docs/performance.md, "The Export dialog's GIFs".

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/export_gif.py [--model M] [--examples DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EXAMPLE_LIMIT = 2 * 2 ** 20


def timed_export(source, opts, fmt, path):
    """run_export with the frames phase and the writing phase timed apart."""
    from diffusion_gui.sessions.export_run import estimate_bytes, run_export
    marks = {}

    def progress(done, total, phase):
        marks.setdefault(phase, time.perf_counter())
        return True

    est = estimate_bytes(source, opts, fmt)
    t0 = time.perf_counter()
    out = run_export(source, opts, fmt, path, progress)
    t1 = time.perf_counter()
    tw = marks.get("writing", t1)
    paths = out if isinstance(out, list) else [out]
    size = sum(Path(p).stat().st_size for p in paths)
    return {"render_s": tw - t0, "write_s": t1 - tw, "total_s": t1 - t0, "bytes": size,
            "estimate": est, "files": len(paths), "path": out}


def describe(name, n_frames, frame_shape, r):
    mb = r["bytes"] / 2 ** 20
    est = r["estimate"]
    est_txt = f", estimate {est / 2 ** 20:.2f} MB ({est / r['bytes']:.2f}x)" if est else ""
    files = f" in {r['files']} files" if r["files"] > 1 else ""
    print(f"  {name:<44} {n_frames:>5} frames {frame_shape[1]:>4} x {frame_shape[0]:<4} px   "
          f"render {r['render_s']:6.2f} s   write {r['write_s']:6.2f} s   "
          f"total {r['total_s']:6.2f} s   {mb:7.2f} MB{files}{est_txt}")


def forward_source(size: int):
    import numpy as np

    from diffusion_gui.core import NoiseSchedule
    from diffusion_gui.core.images import read_image, resize_image, to_float_array
    from diffusion_gui.sessions.export_sources import ForwardTimelineSource
    from diffusion_gui.sessions.forward import draw_noise
    img = np.asarray(resize_image(read_image(ROOT / "assets" / "images" / "astronaut.jpg"),
                                  max_side=size), dtype=np.uint8)
    x0 = to_float_array(img)                                     # [C, H, W]
    eps = draw_noise(x0.shape, 0)
    ab = NoiseSchedule.from_name("linear", 1000).alpha_bars.numpy()
    return ForwardTimelineSource("Forward: timeline", x0.transpose(1, 2, 0),
                                 eps.transpose(1, 2, 0), ab, name="forward")


def reverse_model(spec: str | None, tmp: Path):
    """(LoadedModel, description)."""
    from diffusion_gui.models.loader import load_model
    if spec:
        return load_model(spec), spec
    builtin = ROOT / "assets" / "models" / "digits"
    if builtin.is_dir():
        return load_model(str(builtin)), "built-in digits model"
    import torch
    from diffusers import DDPMScheduler

    from diffusion_gui.models.unet import build_unet, count_parameters
    torch.manual_seed(0)
    unet = build_unet("small", 16, 1)
    folder = tmp / "small-random"
    unet.save_pretrained(folder)
    DDPMScheduler(num_train_timesteps=1000).save_config(folder)
    return load_model(str(folder)), (f"'small' preset UNet, random weights "
                                     f"({count_parameters(unet) / 1e6:.2f} M parameters)")


def record_trajectory(model, batch: int, seed: int):
    """Every step of a DDPM run as (t, x_t uint8 [B,H,W,C], x0_pred uint8), like the panel."""
    from diffusion_gui.commands import make_sampler
    from diffusion_gui.core.images import to_uint8
    gen, _ = make_sampler(model, sampler="ddpm", batch=batch, seed=seed)
    steps = []
    t_model = t_convert = 0.0
    t0 = time.perf_counter()
    for so in gen:
        t1 = time.perf_counter()
        t_model += t1 - t0
        steps.append((int(so.t), to_uint8(so.x_t), to_uint8(so.x0_pred)))
        t0 = time.perf_counter()
        t_convert += t0 - t1
    return steps, t_model, t_convert


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model for the reverse trajectory")
    ap.add_argument("--size", type=int, default=256, help="forward image size (long side)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formats", default="gif,mp4,webm,webp,apng",
                    help="formats of the reverse trajectory, compared by size with the GIF")
    ap.add_argument("--examples", default=None, help="also write the README's example GIFs here")
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    from diffusion_gui.sessions.export_sources import ExportOptions, TrajectorySource

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)

        # ------------------------------------------------------------------ forward
        src = forward_source(args.size)
        opts = ExportOptions(n_frames=args.frames, spacing="dense_start", caption=True, scale=1,
                             fps=15, hold_last_s=1.5)
        f0 = src.preview(opts)
        print(f"\nForward process, astronaut.jpg at {f0.shape[1]} x {f0.shape[0]} px, "
              f"T = 1000, {args.frames} frames denser near t = 0, captions:")
        for name, fmt, path in (("GIF (adaptive palette, dithered)", "gif", tmp / "fwd.gif"),
                                ("PNG sequence", "png_sequence", tmp / "fwd-frames"),
                                ("filmstrip PNG (10 per row)", "filmstrip", tmp / "fwd.png")):
            r = timed_export(src, opts, fmt, path)
            describe(name, args.frames, f0.shape, r)

        # ------------------------------------------------------------------ reverse
        model, what = reverse_model(args.model, tmp)
        print(f"\nReverse process: {what}, {model.sample_size} px, {model.in_channels} ch, "
              f"T = {model.num_timesteps}, DDPM over all steps, batch {args.batch}")
        steps, t_model, t_conv = record_trajectory(model, args.batch, args.seed)
        print(f"  sampling {len(steps) - 1} steps: UNet + step {t_model:.1f} s, recording "
              f"uint8 x_t and x0_pred {t_conv:.2f} s "
              f"({sum(a.nbytes + b.nbytes for _, a, b in steps) / 2 ** 20:.1f} MB)")
        ab = model.diffusion.schedule.alpha_bars.numpy()
        traj = TrajectorySource("Reverse: trajectory", steps, T=model.num_timesteps,
                                alpha_bars=ab, which="both", name="reverse")
        sizes = {}
        for n, label in ((len(steps), "every step, x_t | x0_pred, x4"),
                         (args.frames, f"{args.frames} frames dense near t=0, x4")):
            o = ExportOptions(n_frames=n, spacing="dense_start", which="both", caption=True,
                              scale=4, fps=30 if n > 200 else 12, hold_last_s=2.0)
            h, w = traj.preview(o).shape[:2]
            for fmt in args.formats.split(","):
                r = timed_export(traj, o, fmt, tmp / f"rev{n}.{fmt}")
                describe(f"{fmt.upper()}, {label}", traj.count(o), (4 * h, 4 * w), r)
                sizes[(n, fmt)] = r["bytes"]
                (tmp / f"rev{n}.{fmt}").unlink()
            if (n, "gif") in sizes:
                gif = sizes[(n, "gif")]
                print("    bytes: " + ", ".join(
                    f"{f} {sizes[(n, f)]:,} ({sizes[(n, f)] / gif:.3f} x GIF)"
                    for f in args.formats.split(",")))

        # ------------------------------------------------------------------ README examples
        if args.examples:
            out = Path(args.examples)
            out.mkdir(parents=True, exist_ok=True)
            print(f"\nExamples in {out}:")
            ex = [("forward-process.gif", forward_source(160),
                   ExportOptions(n_frames=40, spacing="dense_start", caption=True, scale=1,
                                 fps=10, hold_last_s=2.0)),
                  ("reverse-process.gif", traj,
                   ExportOptions(n_frames=60, spacing="dense_start", which="both", caption=True,
                                 scale=4, fps=10, hold_last_s=2.5))]
            for name, s, o in ex:
                while True:                  # fewer frames until the file is under the limit
                    r = timed_export(s, o, "gif", out / name)
                    if r["bytes"] < EXAMPLE_LIMIT or o.n_frames <= 12:
                        break
                    o = replace(o, n_frames=int(o.n_frames * 0.75))
                ok = "ok" if r["bytes"] < EXAMPLE_LIMIT else "TOO LARGE"
                print(f"  {name:<22} {s.count(o):>3} frames  {r['bytes'] / 2 ** 20:.2f} MB  {ok}")
                if r["bytes"] >= EXAMPLE_LIMIT:
                    (out / name).unlink()
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
