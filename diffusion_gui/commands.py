"""Headless subcommands behind ``diffusion-gui`` (argparse lives in :mod:`diffusion_gui.cli`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import InvalidParameter  # noqa: F401
from .errors import UserError as UsageError  # transitional: the raises below move to InvalidParameter


def _model(spec):
    from .models.loader import load_model
    from .models.registry import DEFAULT_MODEL
    return load_model(spec or DEFAULT_MODEL)


# ---------------------------------------------------------------- train
def cmd_train(args, model_spec):
    from tqdm import tqdm

    from .models.card import write_model_card
    from .models.train import TrainConfig, train
    from .models.unet import build_unet, count_parameters
    if args.data != "digits" and not Path(args.data).is_dir():
        raise UsageError(f"--data must be 'digits' or a folder of images, not {args.data!r}")
    if args.steps < 1 or args.size < 8 or args.batch < 1:
        raise UsageError("--steps and --batch must be positive and --size at least 8")
    channels = args.channels or (1 if args.data == "digits" else 3)
    cfg = TrainConfig(out_dir=args.output, data=args.data, size=args.size, channels=channels,
                      preset=args.preset, steps=args.steps, batch_size=args.batch, lr=args.lr,
                      lr_schedule=args.lr_schedule,
                      checkpoint_every=args.checkpoint_every, seed=args.seed, resume=args.resume,
                      threads=args.threads)
    accelerator = _accelerator()
    main_proc = accelerator is None or accelerator.is_main_process
    if accelerator is not None and args.batch % accelerator.num_processes:
        raise UsageError(f"--batch {args.batch} must be a multiple of the "
                         f"{accelerator.num_processes} processes")
    gen = train(cfg, accelerator)
    bar = tqdm(total=cfg.steps, unit="step", dynamic_ncols=True, disable=not main_proc)
    last = None
    try:
        for m in gen:
            if last is None:
                bar.update(m.step - 1)
            bar.update(1)
            bar.set_postfix(loss=f"{m.loss:.4f}", it_s=f"{m.steps_per_s:.2f}")
            last = m
    except KeyboardInterrupt:
        # between steps the generator is alive: ask it to save; during a step it has saved the
        # last completed step itself on its way out
        if last is not None and main_proc:
            try:
                gen.send("checkpoint")
            except (StopIteration, KeyboardInterrupt):
                pass
            print(f"\ninterrupted: state saved at step {_saved_step(cfg.out_dir)}; "
                  f"continue with --resume", file=sys.stderr)
        raise
    finally:
        bar.close()
    if last is not None and main_proc:
        write_model_card(cfg.out_dir, cfg.__dict__, count_parameters(build_unet(cfg.preset, cfg.size, channels)),
                         last.step, last.elapsed_s, last.loss)
        print(f"saved {cfg.out_dir} (step {last.step}, {last.elapsed_s / 60:.1f} min)")
    elif last is None and main_proc:
        print(f"{cfg.out_dir}: already trained for {cfg.steps} steps")
    return 0


def _saved_step(out_dir) -> int | None:
    """The step of ``out_dir/checkpoint/state.pt``, or None."""
    import torch
    try:
        st = torch.load(Path(out_dir) / "checkpoint" / "state.pt", map_location="cpu", weights_only=True)
        return int(st["step"])
    except Exception:  # noqa: BLE001 - only for a message
        return None


def _accelerator():
    """An ``accelerate.Accelerator`` when launched by ``accelerate launch``, else None."""
    import os
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and "ACCELERATE_MIXED_PRECISION" not in os.environ:
        return None
    from accelerate import Accelerator
    return Accelerator(cpu=not _cuda())


def _cuda():
    import torch
    return torch.cuda.is_available()


# ---------------------------------------------------------------- models
def cmd_models(args, model_spec):
    from .models.registry import DEFAULT_MODEL, list_models
    rows = list_models()
    if not rows:
        print("no models found")
    for r in rows:
        mark = " (default)" if r["name"] == DEFAULT_MODEL else ""
        print(f"{r['name']:<32} {r['kind']:<9} {r['path']}{mark}")
    return 0


# ---------------------------------------------------------------- sample
def make_sampler(model, *, sampler="ddpm", steps=None, eta=0.0, batch=16, seed=0, clip=None,
                 variance=None, x_start=None, start_t=None):
    """The core sampler generator for a loaded model: the one the CLI and the GUI both iterate.

    ``seed`` seeds a CPU ``torch.Generator`` that draws x_T and every step's noise, so the same
    arguments give the same images everywhere. Returns ``(generator_of_StepOutput, shape)``.
    """
    import torch

    from .core import sampler as core_sampler
    d = model.diffusion
    if variance and variance != d.variance:
        from .core import GaussianDiffusion
        d = GaussianDiffusion(d.schedule, variance=variance, prediction_type=d.prediction_type,
                              clip_range=d.clip_range)
    if batch < 1 or batch > 1024:
        raise UsageError("--batch must be in 1..1024")
    T = d.num_timesteps
    if steps is not None and not 1 <= steps <= T:
        raise UsageError(f"--steps must be in 1..{T}")
    shape = (batch, model.in_channels, model.sample_size, model.sample_size)
    g = torch.Generator().manual_seed(int(seed))
    clip_x0 = model.clip_sample if clip is None else bool(clip)
    gen = core_sampler(sampler, model, d, shape, steps=steps, eta=eta, generator=g, clip_x0=clip_x0,
                       x_start=x_start, start_t=start_t)
    return gen, shape


def cmd_sample(args, model_spec):
    from tqdm import tqdm

    from .core.images import tile, to_uint8
    from .export import timeline_steps, write_gif, write_npz, write_png
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".npz"):
        raise UsageError(f"{out}: -o must end in .png or .npz")
    if args.gif and not args.gif.lower().endswith(".gif"):
        raise UsageError(f"{args.gif}: --gif must end in .gif")
    _check_gif_options(args)
    if args.size is not None and not 8 <= args.size <= 4096:
        raise UsageError("--size must be in 8..4096 px")
    if not 0.0 <= args.eta <= 1.0:
        raise UsageError("--eta must be in [0, 1]")
    _check_output(out)
    if args.gif:
        _check_output(args.gif)
    model = _model(model_spec)
    gen, shape = make_sampler(model, sampler=args.sampler, steps=args.steps, eta=args.eta,
                              batch=args.batch, seed=args.seed, clip=False if args.no_clip else None,
                              variance=args.variance)
    frames, ts = [], []
    keep = None
    last = None
    with tqdm(unit="step", dynamic_ncols=True, disable=None) as bar:
        for so in gen:
            if keep is None:
                bar.total = so.num_steps
                keep = set(timeline_steps(so.num_steps, args.frames, "even")) if args.gif else set()
            if so.step in keep:
                frames.append(_preview(so, args.preview))
                ts.append(so.t)
            bar.update(1 if so.step < so.num_steps else 0)
            last = so
    images = to_uint8(last.x_t)
    if out.suffix.lower() == ".npz":
        write_npz(images, out)
    else:
        write_png(tile(images), out)
    print(f"wrote {out} ({images.shape[0]} images, {images.shape[1]}x{images.shape[2]})")
    if args.gif:
        caps = [f"t = {t}" for t in ts] if args.caption else None
        write_gif(frames, args.gif, fps=args.fps, size=args.size, captions=caps)
        print(f"wrote {args.gif} ({len(frames)} frames)")
    return 0


def _check_gif_options(args):
    """Refuse impossible GIF settings before any work is done."""
    if getattr(args, "frames", None) is not None and args.frames < 2:
        raise UsageError("--frames must be at least 2 (the first and the last frame)")
    if args.fps is not None and not 0 < args.fps <= 100:
        raise UsageError("--fps must be in (0, 100]")


def _check_output(path):
    """Fail before sampling if ``path`` cannot be written (missing or unwritable folder)."""
    from .export.atomic import check_target
    if Path(path).suffix:
        check_target(path)


def _preview(so, which: str):
    """The uint8 frame of one StepOutput: the batch grid of x_t, x0_pred, or both side by side."""
    import numpy as np

    from .core.images import tile, to_uint8
    xt = tile(to_uint8(so.x_t))
    if which == "xt":
        return xt
    x0 = tile(to_uint8(so.x0_pred))
    if which == "x0":
        return x0
    gap = np.full((xt.shape[0], max(2, xt.shape[1] // 32), xt.shape[2]), 255, np.uint8)
    return np.concatenate([xt, gap, x0], axis=1)


# ---------------------------------------------------------------- forward
def cmd_forward(args, model_spec):
    import torch

    from .core import GaussianDiffusion, NoiseSchedule
    from .core.images import load_image
    from .export import export_frames, forward_frames, timeline_steps
    if not 8 <= args.size <= 512:
        raise UsageError("--size must be in 8..512")
    _check_gif_options(args)
    _check_output(args.output)
    try:
        schedule = NoiseSchedule.from_name(args.schedule, args.timesteps)
    except ValueError as e:
        raise UsageError(str(e)) from None
    d = GaussianDiffusion(schedule)
    T = schedule.timesteps
    out = Path(args.output)
    x0 = load_image(args.image, max_side=args.size)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(args.seed))
    if args.t is not None:
        if not 0 <= args.t <= T:
            raise UsageError(f"--t must be in 0..{T}")
        if out.suffix.lower() != ".png":
            raise UsageError(f"{out}: a single --t writes a .png")
        ts = [args.t]
    else:
        ts = timeline_steps(T, args.frames or 50, args.spacing)
    frames, caps = [], []
    for t, frame, cap in forward_frames(x0, d, noise, ts, captions=args.caption):
        frames.append(frame)
        caps.append(cap)
    opts = {"captions": caps} if args.caption else {}
    if out.suffix.lower() == ".gif":
        opts["fps"] = args.fps
    export_frames(frames, out, **opts)
    print(f"wrote {out} ({len(frames)} frame(s))")
    return 0


# ---------------------------------------------------------------- vlb
def cmd_vlb(args, model_spec):
    import csv
    import io

    import torch
    from tqdm import tqdm

    from .core.vlb import vlb_terms
    from .export import atomic_path
    if (args.image is None) == (args.digits is None):
        raise UsageError("give an IMAGE or --digits N (not both)")
    if args.stride < 1:
        raise UsageError("--stride must be at least 1")
    out = Path(args.output)
    if out.suffix.lower() != ".csv":
        raise UsageError(f"{out}: -o must end in .csv")
    from .export.atomic import check_target
    check_target(out)          # a bad -o fails now, not after the whole bound is computed
    model = _model(model_spec)
    x0 = _vlb_images(model, args.image, args.digits)
    g = torch.Generator().manual_seed(args.seed)
    last = None
    with tqdm(unit="t", dynamic_ncols=True, disable=None) as bar:
        for p in vlb_terms(model, model.diffusion, x0, stride=args.stride, generator=g,
                           clip_x0=False):
            bar.total = p.total
            bar.n = p.done
            bar.refresh()
            last = p
    r = last.result
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["t", "vb_bpd", "eps_mse", "x0_mse"])
    for row in zip(r.t.tolist(), r.vb_bpd, r.eps_mse, r.x0_mse):
        w.writerow([row[0]] + [f"{v:.8g}" for v in row[1:]])
    with atomic_path(out) as tmp:
        Path(tmp).write_text(buf.getvalue(), encoding="utf-8")
    summary = {"model": model.name, "images": int(x0.shape[0]), "timesteps": r.timesteps,
               "stride": r.stride, "prior_bpd": r.prior_bpd, "decoder_bpd": r.decoder_bpd,
               "kl_sum_bpd": r.total_bpd - r.prior_bpd - r.decoder_bpd * float(r.weights[0]),
               "total_bpd": r.total_bpd, "csv": str(out)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"L_T (prior)      {r.prior_bpd:.5f} bits/dim")
        print(f"L_0 (decoder)    {r.decoder_bpd:.5f} bits/dim")
        print(f"total bound      {r.total_bpd:.5f} bits/dim  ({x0.shape[0]} image(s), stride {r.stride})")
        print(f"wrote {out}")
    return 0


def _vlb_images(model, image, n_digits):
    """``[N, C, H, W]`` in [-1, 1] at the model's size: an image file or N held-out digits."""
    import torch

    from .core.images import load_image
    from .models.data import HELD_OUT, digits
    if n_digits is not None:
        if not 1 <= n_digits <= HELD_OUT:
            raise UsageError(f"--digits must be in 1..{HELD_OUT}")
        x, _ = digits(model.sample_size, "heldout")
        # quantised to 8-bit pixels, so that L_0 is a true discrete likelihood
        x = torch.round((torch.from_numpy(x[:n_digits]) + 1) * 127.5) / 127.5 - 1
        if model.in_channels == 3:
            x = x.repeat(1, 3, 1, 1)
        return x
    ch = "L" if model.in_channels == 1 else "RGB"
    return load_image(image, channels=ch, size=model.sample_size)[None]


# ---------------------------------------------------------------- kl
def cmd_kl(args, model_spec):
    from .core.kl import format_report, space_worms, to_json_dict
    r = space_worms()
    print(json.dumps(to_json_dict(r), indent=2) if args.json else format_report(r))
    return 0
