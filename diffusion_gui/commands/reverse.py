"""The reverse process, deeper: ``compare``, ``invert``, ``interpolate``.

Each runs the Qt-free session the Compare panel runs (:mod:`diffusion_gui.sessions.compare`,
:mod:`diffusion_gui.sessions.inversion`), writes ``-o`` as a PNG or a GIF, and with ``--json``
prints its figures.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InvalidParameter
from .common import ANIMATION_EXTS, _check_output, _device, _model
from .progress import _Progress

__all__ = ["cmd_compare", "cmd_invert", "cmd_interpolate"]

_OUT = (".png",) + ANIMATION_EXTS


def _out(path) -> Path:
    out = Path(path)
    if out.suffix.lower() not in _OUT:
        raise InvalidParameter("output", "must end in .png or an animation (.gif, .mp4, .webm, .webp, "
                                         ".apng)", subject=str(out))
    _check_output(out)
    return out


def _placement(args) -> dict:
    """``--device`` / ``--dtype`` as the sessions take them; an unavailable device fails now,
    before the model loads (one line, exit 2)."""
    _device(args)
    return {"device": args.device, "dtype": args.dtype}


def _write_animation(frames, out: Path, fps: float, captions=None) -> None:
    """The one place these commands write an animation (its format by the extension), holding
    the last frame 1.5 s."""
    from ..export import write_animation
    write_animation(out, frames, fps=fps, captions=captions, hold_last=round(1.5 * fps))


def _check_fps(fps):
    if fps is not None and not 0 < fps <= 100:
        raise InvalidParameter("fps", "must be in (0, 100]")


def _print(figures: dict, as_json: bool, lines: list[str]) -> None:
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        for line in lines:
            print(line)


# ---------------------------------------------------------------- compare
def cmd_compare(args, model_spec):
    """``diffusion-gui compare``: the compare grid (rows = samplers, columns = samples, one x_T);
    ``-o X.png`` the grid at t = 0, ``-o X.gif`` the grid scrubbed from T to 0."""
    from ..export import write_png
    from ..sessions.compare import CompareGrid, Tick, grid_frames, grid_image, parse_rows
    out = _out(args.output)
    _check_fps(args.fps)
    grid = CompareGrid(parse_rows(args.rows), batch=args.batch, seed=args.seed,
                       clip=False if args.no_clip else None, **_placement(args)).check()
    model = _model(model_spec)
    with _Progress("rows", "steps") as bar:
        for item in grid.run(model):
            if isinstance(item, Tick):
                bar.set(item.done, item.total)
    if out.suffix.lower() in ANIMATION_EXTS:
        frames, caps = grid_frames(grid, args.frames, args.preview)
        _write_animation(frames, out, args.fps, caps)
    else:
        write_png(grid_image(grid, 0, "xt"), out)
    figs = {"model": model.name, "seed": grid.seed, "batch": grid.batch, "rows": grid.figures(),
            "output": str(out)}
    _print(figs, args.json, [f"  {r['row']:<34} {r['seconds']:>7.2f} s"
                             + ("" if r["confident_share"] is None
                                else f"  {100 * r['confident_share']:.0f}% confident digits")
                             for r in figs["rows"]] + [f"wrote {out}"])
    return 0


# ---------------------------------------------------------------- invert
def _images_for(model, image, n_digits):
    from ..core.images import load_image, to_uint8
    from ..sessions.inversion import fit_image, heldout_digits
    if image is not None:
        x = to_uint8(load_image(image, max_side=512))      # ImageLoadError for a bad file
        return fit_image(model, x[0] if x.ndim == 4 else x), str(image)
    return heldout_digits(model, n_digits), f"{n_digits} held-out digits"


def _steps_list(text: str) -> list[int]:
    try:
        steps = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise InvalidParameter("steps", "must be step counts like 10,50,200", subject=text) from None
    if not steps or min(steps) < 1:
        raise InvalidParameter("steps", "must be step counts >= 1")
    return steps


def cmd_invert(args, model_spec):
    """``diffusion-gui invert IMAGE`` (or ``--digits N`` held-out digits): DDIM inversion and
    reconstruction for each of ``--steps``; ``-o X.png`` the originals and reconstructions,
    ``-o X.gif`` the round trip x_0 -> x_T -> x_0 with the last step count."""
    from ..export import write_png
    from ..sessions.inversion import error_vs_steps, round_trip, sheet
    out = _out(args.output)
    _check_fps(args.fps)
    steps = _steps_list(args.steps)
    where = _placement(args)
    model = _model(model_spec)
    if max(steps) > model.num_timesteps:
        raise InvalidParameter("steps", f"must be in 1..{model.num_timesteps}")
    images, what = _images_for(model, args.image, args.digits)
    recons = []
    with _Progress("inverting", "step counts", len(steps)) as bar:
        for r in error_vs_steps(model, images, steps, **where):
            recons.append(r)
            bar.set(len(recons))
    if out.suffix.lower() in ANIMATION_EXTS:
        frames, caps = round_trip(model, images, steps[-1], args.frames, **where)
        _write_animation(frames, out, args.fps, caps)
    else:
        write_png(sheet(recons, original=f"original: {what}"), out)
    figs = {"model": model.name, "images": what, "n": int(len(images)),
            "reconstructions": [r.figures() for r in recons], "output": str(out)}
    _print(figs, args.json, [f"{'steps':>6} {'MSE':>10} {'PSNR dB':>8}"]
           + [f"{f['steps']:>6} {f['mse']:>10.6f} {f['psnr_db']:>8.2f}" for f in figs["reconstructions"]]
           + [f"wrote {out}"])
    return 0


# ---------------------------------------------------------------- interpolate
def _one_image(model, spec: str, name: str) -> np.ndarray:
    """An image file, or ``digit:K`` for held-out digit K (the digits split of any model size)."""
    from ..core.images import load_image, to_uint8
    from ..sessions.inversion import fit_image, heldout_digits
    if str(spec).lower().startswith("digit:"):
        try:
            k = int(spec.split(":", 1)[1])
        except ValueError:
            raise InvalidParameter(name, "digit:K needs a number K", subject=spec) from None
        if not 0 <= k < 200:
            raise InvalidParameter(name, "digit:K needs K in 0..199 (the held-out digits)", subject=spec)
        return heldout_digits(model, 1, start=k)
    x = to_uint8(load_image(spec, max_side=512))
    return fit_image(model, x[0] if x.ndim == 4 else x)


def cmd_interpolate(args, model_spec):
    """``diffusion-gui interpolate A B``: invert both, walk the spherical path between their
    latents, decode; ``-o X.png`` a strip, ``-o X.gif`` the frames there and back."""
    from ..export import write_png
    from ..sessions.inversion import interpolate, strip
    out = _out(args.output)
    _check_fps(args.fps)
    where = _placement(args)
    model = _model(model_spec)
    a, b = _one_image(model, args.a, "a"), _one_image(model, args.b, "b")
    res = interpolate(model, a, b, steps=args.steps, n_frames=args.frames, **where)
    frames = res["frames"]
    if out.suffix.lower() in ANIMATION_EXTS:
        order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
        scale = max(1, 192 // frames.shape[1])
        from ..core.images import enlarge
        _write_animation([enlarge(frames[k], scale) for k in order], out, args.fps,
                         [f"w = {res['weights'][k]:.2f}" for k in order])
    else:
        write_png(strip(frames, res["weights"]), out)
    figs = {"model": model.name, "a": str(args.a), "b": str(args.b), "steps": args.steps,
            "frames": len(frames), "angle_deg": round(res["angle_deg"], 3), "output": str(out)}
    _print(figs, args.json, [f"latents {res['angle_deg']:.1f} degrees apart; wrote {out} "
                             f"({len(frames)} frames)"])
    return 0
