"""``diffusion-gui kl`` and ``diffusion-gui toy`` (the 2-D lab)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InvalidParameter
from ..export.timeline import pick_frames
from ..sessions.sampling import SamplingParams, visited_timesteps
from .common import _check_animation, _check_gif_options
from .progress import _Progress


# ---------------------------------------------------------------- kl
def cmd_kl(args, model_spec):
    from ..core.kl import format_report, space_worms, to_json_dict
    r = space_worms()
    print(json.dumps(to_json_dict(r), indent=2) if args.json else format_report(r))
    return 0


# ---------------------------------------------------------------- toy (the 2-D lab)
def cmd_toy(args, model_spec):
    """Train (for ``mlp``), sample and score a 2-D data set; write ``samples`` and ``data``
    (float32 ``[N, 2]``) to an .npz."""
    import time

    import numpy as np

    from ..export.atomic import atomic_path, check_target
    from ..sessions.lab2d import Lab2DSession, Lab2DSettings
    out = Path(args.output)
    if out.suffix.lower() != ".npz":
        raise InvalidParameter("output", "must end in .npz", subject=str(out))
    check_target(out)
    gif = getattr(args, "gif", None)
    if gif:
        _check_animation(gif, "gif")
        _check_gif_options(args)
        check_target(gif)
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
    keep = None
    if gif:
        ts = visited_timesteps(session.timesteps, SamplingParams(sampler=args.sampler, steps=args.steps))
        keep = set(pick_frames(ts, args.frames, "even"))
    samples, recorded = _sample(session, kind, args, keep)
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
    if gif:
        n_frames = _write_animation(session, recorded, args)
        summary["gif"], summary["gif_frames"] = gif, n_frames
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        if final_loss is not None:
            print(f"trained {session.trained_steps} steps in {train_s:.1f} s, final loss {final_loss:.4f}")
        print(f"energy distance {q.energy_distance:.5f} (two fresh draws {q.noise_floor:.5f}, "
              f"Gaussian baseline {q.gaussian_baseline:.5f})")
        print(f"median distance to the nearest training point: {q.nearest_median_pct:.2f} % of the std")
        print(f"wrote {out}")
        if gif:
            print(f"wrote {gif} ({summary['gif_frames']} frames)")
    return 0


def _sample(session, kind, args, keep):
    """Run the sampler over as many particles as there are data points; keep the particles
    ``[N, 2]`` and paper t of the steps in ``keep`` (indices into the visited steps) for the
    animation. Returns (samples float32 [N, 2], [(t, points)])."""
    import numpy as np
    recorded, last = [], None
    for so in session.sample(kind, sampler_kind=args.sampler, steps=args.steps,
                             n=len(session.data), seed=args.seed):
        if keep is not None and so.step in keep:
            recorded.append((int(so.t), so.x_t.numpy().astype(np.float32)))
        last = so
    return last.x_t.numpy().astype(np.float32), recorded


def _write_animation(session, recorded, args) -> int:
    """The particle animation of ``--animate``: the forward cloud from t = 0 to T (one fixed
    noise), the reverse run from t = T to 0, or both in turn; one view for all frames; the
    caption says which process and t. Written by the animation writer (GIF, MP4, WebM, WebP or
    APNG by the extension); returns the number of frames."""
    from ..export import write_animation
    from ..export.particles import extent_of, particle_frame
    from ..export.timeline import timeline_steps
    frames_of = []
    if args.animate in ("forward", "both"):
        frames_of += [("forward", t, session.forward(t, seed=args.seed))
                      for t in timeline_steps(session.timesteps, args.frames, "even")]
    if args.animate in ("reverse", "both"):
        frames_of += [("reverse", t, pts) for t, pts in recorded]
    view = extent_of(session.data, *(p for _, _, p in frames_of))
    frames = [particle_frame(p, extent=view, size=args.size or 480, data=session.data)
              for _, _, p in frames_of]
    caps = [f"{what}  t = {t}" for what, t, _ in frames_of]
    write_animation(args.gif, frames, fps=args.fps, captions=caps, hold_last=round(args.fps))
    return len(frames)
