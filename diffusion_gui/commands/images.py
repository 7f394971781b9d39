"""The image commands: ``sample``, ``forward``, ``vlb``."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InvalidParameter
from ..sessions.sampling import SamplingParams, make_sampler
from .common import (
    ANIMATION_EXTS,
    _check_animation,
    _check_gif_options,
    _check_output,
    _device,
    _model,
    _preview,
    grid_scale,
)
from .progress import _Progress


def _animation_opts(args) -> dict:
    """``fps``, ``hold_first``, ``hold_last`` for :func:`~diffusion_gui.export.write_animation`
    from the flags; ``--hold-last`` defaults to one second (``round(fps)`` frames), as GIFs
    always held their last frame."""
    fps = float(args.fps)
    hold_last = getattr(args, "hold_last", None)
    hold_first = getattr(args, "hold_first", 0) or 0
    for name, v in (("hold_first", hold_first), ("hold_last", hold_last)):
        if v is not None and not 0 <= v <= 10_000:
            raise InvalidParameter(name, "must be in 0..10000 frames")
    return {"fps": fps, "hold_first": int(hold_first),
            "hold_last": max(1, round(fps)) if hold_last is None else int(hold_last)}


def cmd_sample(args, model_spec):
    """``diffusion-gui sample``: one run of :func:`make_sampler`, the final images to ``-o``;
    with ``--animation`` (``--gif``), the frames :func:`~diffusion_gui.export.timeline.pick_frames`
    picks (or every ``--every``-th step), composed by
    :func:`~diffusion_gui.export.frames.trajectory_frame`: the same frames as the GUI's export
    of the same run, written by :func:`~diffusion_gui.export.write_animation`."""

    from ..core.images import enlarge, tile, to_uint8
    from ..export import write_animation, write_npz, write_png
    from ..export.animation import select_every
    from ..export.timeline import pick_frames, trajectory_caption
    from ..sessions.reverse import model_alpha_bars
    from ..sessions.sampling import visited_timesteps
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".npz"):
        raise InvalidParameter("output", "must end in .png or .npz", subject=str(out))
    anim = args.animation
    _check_animation(anim)
    _check_gif_options(args)
    if args.every is not None and args.every < 1:
        raise InvalidParameter("every", "must be at least 1")
    anim_opts = _animation_opts(args)
    if args.size is not None and not 8 <= args.size <= 4096:
        raise InvalidParameter("size", "must be in 8..4096 px")
    params = SamplingParams(sampler=args.sampler, steps=args.steps, eta=args.eta, batch=args.batch,
                            seed=args.seed, clip=False if args.no_clip else None,
                            variance=args.variance, clip_eps=args.clip_eps,
                            class_label=args.class_label, guidance=args.guidance,
                            device=args.device, dtype=args.dtype).check()
    _check_output(out)
    _device(args)          # an unavailable --device fails now, before the model loads
    if anim:
        _check_output(anim)
    model = _model(model_spec)
    gen, shape = make_sampler(model, params)
    ts = visited_timesteps(model.num_timesteps, params)
    if not anim:
        keep = set()
    elif args.every is not None:
        keep = set(select_every(len(ts), args.every))
    else:
        keep = set(pick_frames(ts, args.frames, "even"))
    _check_frames_budget(len(keep), shape, args)
    abar = model_alpha_bars(model)
    frames, caps = [], []
    last = None
    with _Progress("sampling", "steps", len(ts) - 1) as bar:
        for so in gen:
            if so.t != ts[so.step]:
                raise RuntimeError(f"bug: step {so.step} is at t = {so.t}, not {ts[so.step]}")
            if so.step in keep:
                frames.append(_preview(so, args.preview))
                caps.append(trajectory_caption(so.t, args.preview,
                                               float(abar[so.t - 1]) if so.t > 0 else 1.0))
            bar.set(so.step)
            last = so
    images = to_uint8(last.x_t)
    if out.suffix.lower() == ".npz":
        write_npz(images, out)
        print(f"wrote {out} ({images.shape[0]} images, {images.shape[1]}x{images.shape[2]})")
    else:
        grid = enlarge(tile(images), grid_scale(tile(images).shape, args.size))
        write_png(grid, out)
        print(f"wrote {out} ({images.shape[0]} images in a {grid.shape[1]}x{grid.shape[0]} px grid)")
    if anim:
        write_animation(anim, frames, size=args.size, captions=caps if args.caption else None,
                        **anim_opts)
        print(f"wrote {anim} ({len(frames)} frames)")
    return 0



# ---------------------------------------------------------------- forward
def _size(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MB" if n >= 2 ** 20 / 10 else f"{n / 1024:.0f} kB"


def _check_frames_budget(n_frames: int, shape, args) -> None:
    """Refuse, before sampling, an animation whose frames (uint8 grids of the batch, two side by
    side for ``--preview both``) would take more than ``--record-budget`` MB."""
    b, c, h, w = shape
    frame = b * c * (h + 1) * (w + 1) * (2 if args.preview == "both" else 1)
    need = n_frames * frame / 2 ** 20
    if args.record_budget < 1:
        raise InvalidParameter("record_budget", "must be at least 1 (MB)")
    if need > args.record_budget:
        fit = max(2, int(args.record_budget * 2 ** 20 // frame))
        raise InvalidParameter("record_budget", f"is {args.record_budget} MB: {n_frames} frames of "
                               f"{_size(frame)} would take ≈ {need:.0f} MB; keep at most "
                               f"{fit} frames (--frames {fit}, or a larger --every), a smaller "
                               f"--batch, or raise --record-budget")


def cmd_forward(args, model_spec):
    from ..core import GaussianDiffusion, NoiseSchedule
    from ..core.images import load_image
    from ..export import export_frames, forward_frames, timeline_steps, write_animation
    from ..sessions.forward import draw_noise
    if not 8 <= args.size <= 512:
        raise InvalidParameter("size", "must be in 8..512")
    _check_gif_options(args)
    anim_opts = _animation_opts(args)
    _check_output(args.output)
    schedule = NoiseSchedule.from_name(args.schedule, args.timesteps)   # InvalidParameter if bad
    d = GaussianDiffusion(schedule)
    T = schedule.timesteps
    out = Path(args.output)
    x0 = load_image(args.image, max_side=args.size)
    noise = draw_noise(x0.shape, args.seed)          # the forward panel's eps for this seed
    if args.t is not None:
        if not 0 <= args.t <= T:
            raise InvalidParameter("t", f"must be in 0..{T}")
        if out.suffix.lower() != ".png":
            raise InvalidParameter("t", "writes a single .png", subject=str(out))
        ts = [args.t]
    else:
        ts = timeline_steps(T, args.frames or 50, args.spacing)
    frames, caps = [], []
    for t, frame, cap in forward_frames(x0, d, noise, ts, captions=args.caption):
        frames.append(frame)
        caps.append(cap)
    captions = caps if args.caption else None
    if out.suffix.lower() in ANIMATION_EXTS:
        write_animation(out, frames, captions=captions, **anim_opts)
    else:
        export_frames(frames, out, **({"captions": captions} if captions else {}))
    print(f"wrote {out} ({len(frames)} frame(s))")
    return 0


# ---------------------------------------------------------------- vlb
def cmd_vlb(args, model_spec):
    import csv
    import io

    import torch

    from ..core.vlb import vlb_terms
    from ..export.atomic import check_target, write_text_atomic
    from ..sessions.losses import vlb_images
    if args.stride < 1:
        raise InvalidParameter("stride", "must be at least 1")
    out = Path(args.output)
    if out.suffix.lower() != ".csv":
        raise InvalidParameter("output", "must end in .csv", subject=str(out))
    check_target(out)          # a bad -o fails now, not after the whole bound is computed
    device = _device(args)
    model = _model(model_spec)
    x0 = vlb_images(model, args.image, args.digits)
    g = torch.Generator().manual_seed(args.seed)
    net = model.on(device, args.dtype)
    last = None
    with _Progress("bound", "timesteps") as bar:
        for p in vlb_terms(net, model.diffusion, x0.to(device), stride=args.stride, generator=g,
                           clip_x0=False):
            bar.set(p.done, p.total)
            last = p
    r = last.result
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["t", "vb_bpd", "eps_mse", "x0_mse"])
    for row in zip(r.t.tolist(), r.vb_bpd, r.eps_mse, r.x0_mse):
        w.writerow([row[0]] + [f"{v:.8g}" for v in row[1:]])
    write_text_atomic(out, buf.getvalue())
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
