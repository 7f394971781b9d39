"""Headless subcommands behind ``diffusion-gui`` (argparse lives in :mod:`diffusion_gui.cli`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import InvalidParameter
from .sessions.sampling import SamplingParams, make_sampler  # noqa: F401 - make_sampler re-exported


def _model(spec):
    from .models.loader import load_model
    from .models.registry import DEFAULT_MODEL
    return load_model(spec or DEFAULT_MODEL)


# ---------------------------------------------------------------- train
def cmd_train(args, model_spec):
    from tqdm import tqdm

    from .models.card import write_card
    from .models.train import TrainConfig, train
    if args.data != "digits" and not Path(args.data).is_dir():
        raise InvalidParameter("data", f"must be 'digits' or a folder of images, not {args.data!r}")
    for name, value, lo in (("steps", args.steps, 1), ("batch_size", args.batch, 1), ("size", args.size, 8)):
        if value < lo:
            raise InvalidParameter(name, "must be positive" if lo == 1 else f"must be at least {lo}")
    channels = args.channels or (1 if args.data == "digits" else 3)
    cfg = TrainConfig(out_dir=args.output, data=args.data, size=args.size, channels=channels,
                      preset=args.preset, steps=args.steps, batch_size=args.batch, lr=args.lr,
                      lr_schedule=args.lr_schedule,
                      checkpoint_every=args.checkpoint_every, seed=args.seed, resume=args.resume,
                      threads=args.threads)
    accelerator = _accelerator()
    main_proc = accelerator is None or accelerator.is_main_process
    if accelerator is not None and args.batch % accelerator.num_processes:
        raise InvalidParameter("batch_size", f"({args.batch}) must be a multiple of the "
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
        write_card(cfg, last)
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


# ---------------------------------------------------------------- progress
#: seconds between two progress lines when stderr is not a terminal (a log, a pipe, CI)
LOG_INTERVAL_S = 30.0


class _Progress:
    """Progress of a long command on stderr: a tqdm bar on a terminal; elsewhere (a log file,
    a pipe) a plain line every :data:`LOG_INTERVAL_S` seconds, so that a redirected run still
    says it is alive. ``set(done, total)``; a context manager."""

    def __init__(self, what: str, unit: str, total: int | None = None, stream=None):
        import time
        self.what, self.unit, self.total, self.done = what, unit, total, 0
        self.stream = stream or sys.stderr
        self.t0 = self.last = time.monotonic()
        self.bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit=unit, dynamic_ncols=True, file=self.stream)

    def set(self, done: int, total: int | None = None):
        import time
        self.done, self.total = int(done), self.total if total is None else int(total)
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.n = self.done
            self.bar.refresh()
            return
        now = time.monotonic()
        if now - self.last >= LOG_INTERVAL_S:
            self.last = now
            print(self.line(now - self.t0), file=self.stream, flush=True)

    def line(self, elapsed: float) -> str:
        from tqdm import tqdm
        fmt = tqdm.format_interval
        if not self.total:
            return f"{self.what}: {self.done} {self.unit}, {fmt(elapsed)} elapsed"
        left = elapsed * (self.total - self.done) / self.done if self.done else float("nan")
        eta = fmt(left) if left == left else "?"
        return (f"{self.what}: {self.done}/{self.total} {self.unit} "
                f"({100 * self.done / self.total:.0f} %), {fmt(elapsed)} elapsed, about {eta} left")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------- sample


def cmd_sample(args, model_spec):
    """``diffusion-gui sample``: one run of :func:`make_sampler`, the final images to ``-o``;
    with ``--gif``, the frames :func:`~diffusion_gui.export.timeline.pick_frames` picks, composed
    by :func:`~diffusion_gui.export.frames.trajectory_frame`: the same frames as the GUI's
    export of the same run."""

    from .core.images import enlarge, tile, to_uint8
    from .export import write_gif, write_npz, write_png
    from .export.timeline import pick_frames, trajectory_caption
    from .sessions.reverse import model_alpha_bars
    from .sessions.sampling import visited_timesteps
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".npz"):
        raise InvalidParameter("output", "must end in .png or .npz", subject=str(out))
    if args.gif and not args.gif.lower().endswith(".gif"):
        raise InvalidParameter("gif", "must end in .gif", subject=args.gif)
    _check_gif_options(args)
    if args.size is not None and not 8 <= args.size <= 4096:
        raise InvalidParameter("size", "must be in 8..4096 px")
    params = SamplingParams(sampler=args.sampler, steps=args.steps, eta=args.eta, batch=args.batch,
                            seed=args.seed, clip=False if args.no_clip else None,
                            variance=args.variance, clip_eps=args.clip_eps).check()
    _check_output(out)
    if args.gif:
        _check_output(args.gif)
    model = _model(model_spec)
    gen, shape = make_sampler(model, params)
    ts = visited_timesteps(model.num_timesteps, params)
    keep = set(pick_frames(ts, args.frames, "even")) if args.gif else set()
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
    if args.gif:
        write_gif(frames, args.gif, fps=args.fps, size=args.size,
                  captions=caps if args.caption else None)
        print(f"wrote {args.gif} ({len(frames)} frames)")
    return 0


#: long side of the PNG grid that ``sample -o X.png`` writes when no --size is given, in px
GRID_PX = 512


def grid_scale(shape, size: int | None = None) -> int:
    """The integer enlargement that brings a grid of ``shape`` ``(H, W, ...)`` to about ``size``
    px on its long side (:data:`GRID_PX` when None), never below 1 (crisp, nearest-neighbour)."""
    return max(1, int(size or GRID_PX) // max(int(shape[0]), int(shape[1])))


def _check_gif_options(args):
    """Refuse impossible GIF settings before any work is done."""
    if getattr(args, "frames", None) is not None and args.frames < 2:
        raise InvalidParameter("frames", "must be at least 2 (the first and the last frame)")
    if args.fps is not None and not 0 < args.fps <= 100:
        raise InvalidParameter("fps", "must be in (0, 100]")


def _check_output(path):
    """Fail before sampling if ``path`` cannot be written (missing or unwritable folder)."""
    from .export.atomic import check_target
    if Path(path).suffix:
        check_target(path)


def _preview(so, which: str):
    """The uint8 frame of one StepOutput: the batch grid of x_t, x0_pred, or both side by side
    (:func:`~diffusion_gui.export.frames.trajectory_frame`, the one composer)."""
    from .core.images import to_uint8
    from .export.frames import trajectory_frame
    return trajectory_frame(None if which == "x0" else to_uint8(so.x_t),
                            None if which == "xt" else to_uint8(so.x0_pred), which)


# ---------------------------------------------------------------- forward
def cmd_forward(args, model_spec):
    from .core import GaussianDiffusion, NoiseSchedule
    from .core.images import load_image
    from .export import export_frames, forward_frames, timeline_steps
    from .sessions.forward import draw_noise
    if not 8 <= args.size <= 512:
        raise InvalidParameter("size", "must be in 8..512")
    _check_gif_options(args)
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

    from .core.vlb import vlb_terms
    from .export.atomic import check_target, write_text_atomic
    from .sessions.losses import vlb_images
    if args.stride < 1:
        raise InvalidParameter("stride", "must be at least 1")
    out = Path(args.output)
    if out.suffix.lower() != ".csv":
        raise InvalidParameter("output", "must end in .csv", subject=str(out))
    check_target(out)          # a bad -o fails now, not after the whole bound is computed
    model = _model(model_spec)
    x0 = vlb_images(model, args.image, args.digits)
    g = torch.Generator().manual_seed(args.seed)
    last = None
    with _Progress("bound", "timesteps") as bar:
        for p in vlb_terms(model, model.diffusion, x0, stride=args.stride, generator=g,
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


# ---------------------------------------------------------------- kl
def cmd_kl(args, model_spec):
    from .core.kl import format_report, space_worms, to_json_dict
    r = space_worms()
    print(json.dumps(to_json_dict(r), indent=2) if args.json else format_report(r))
    return 0


# ---------------------------------------------------------------- toy (the 2-D lab)
def cmd_toy(args, model_spec):
    """Train (for ``mlp``), sample and score a 2-D data set; write ``samples`` and ``data``
    (float32 ``[N, 2]``) to an .npz."""
    import time

    import numpy as np

    from .export.atomic import atomic_path, check_target
    from .sessions.lab2d import Lab2DSession, Lab2DSettings
    out = Path(args.output)
    if out.suffix.lower() != ".npz":
        raise InvalidParameter("output", "must end in .npz", subject=str(out))
    check_target(out)
    if args.train_steps is not None and args.train_steps < 0:
        raise InvalidParameter("train_steps", "must be at least 0")
    if args.train_seconds is not None and args.train_seconds <= 0:
        raise InvalidParameter("train_seconds", "must be positive")
    kind = args.toy_model
    if kind == "exact" and args.data not in ("gaussians8", "gmm"):
        raise InvalidParameter("model", f"exact works for gaussians8 and gmm only, not {args.data}")
    session = Lab2DSession(Lab2DSettings(seed=args.seed))
    session.set_data(args.data, n=args.n, seed=args.seed)
    train_s, final_loss = 0.0, None
    if kind == "mlp":
        steps = args.train_steps if args.train_steps is not None or args.train_seconds else 3000
        t0 = time.perf_counter()
        with _Progress("train", "steps", steps) as bar:
            for m in session.train(max_steps=steps, seconds=args.train_seconds, report_every=50):
                bar.set(m.step, steps)
                final_loss = m.loss
        train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    samples = session.sample_points(kind, sampler_kind=args.sampler, steps=args.steps,
                                    n=len(session.data), seed=args.seed)
    sample_s = time.perf_counter() - t0
    q = session.quality(samples, seed=args.seed + 1)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, samples=samples.astype(np.float32), data=session.data.astype(np.float32))
    summary = {"data": args.data, "model": kind, "n": len(session.data), "seed": args.seed,
               "sampler": args.sampler, "sample_steps": args.steps or (
                   session.timesteps if args.sampler == "ddpm" else 50),
               "train_seconds": round(train_s, 3), "steps": session.trained_steps,
               "final_loss": final_loss, "sample_seconds": round(sample_s, 3),
               "energy_distance": q.energy_distance, "baseline_energy_distance": q.noise_floor,
               "gaussian_energy_distance": q.gaussian_baseline,
               "nearest_median_pct_of_std": q.nearest_median_pct, "output": str(out)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        if final_loss is not None:
            print(f"trained {session.trained_steps} steps in {train_s:.1f} s, final loss {final_loss:.4f}")
        print(f"energy distance {q.energy_distance:.5f} (two fresh draws {q.noise_floor:.5f}, "
              f"Gaussian baseline {q.gaussian_baseline:.5f})")
        print(f"median distance to the nearest training point: {q.nearest_median_pct:.2f} % of the std")
        print(f"wrote {out}")
    return 0
