"""The front door: no subcommand opens the GUI; subcommands run headless.

Bad input exits with status 2 and one line on stderr: every :class:`~diffusion_gui.errors.UserError`
becomes that line. Library code names parameters ("batch must be in 1..1024"); this module, and
only this one, turns a parameter name into the flag that sets it ("--batch must be in 1..1024").
"""
from __future__ import annotations

import argparse
import sys

from .core.names import CLIP_EPS, SAMPLERS, SCHEDULE_NAMES, VARIANCES
from .errors import InvalidParameter, UserError

#: parameter name -> how the command line spells it, where that is not ``--name``
FLAGS = {"output": "-o", "clip_eps": "--ddim-clip-eps", "image": "IMAGE", "sub_model": "--model", "batch_size": "--batch",
         "n_digits": "--digits", "n_frames": "--frames", "class_label": "--class",
         "a": "A", "b": "B"}


def flag(name: str) -> str:
    """The command-line spelling of the parameter ``name`` (``"no_clip"`` -> ``"--no-clip"``)."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def cli_message(e: UserError) -> str:
    """The one line printed for ``e``: parameter names spelled as flags."""
    if isinstance(e, InvalidParameter):
        return e.phrased(flag(e.name))
    return e.user_message()


def _fail(msg: str) -> int:
    print(f"diffusion-gui: error: {msg}", file=sys.stderr)
    return 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _device_flags(p) -> None:
    """--device / --dtype: where the network runs and in what precision (the maths stays float32)."""
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]|mps",
                   help="where the network runs; auto: CUDA, then Apple MPS, then the CPU (default)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="the network's precision (default float32); the step's maths stays float32")


def _hold_flags(p) -> None:
    """--hold-first / --hold-last: extra frame times on the first / last frame of an animation."""
    p.add_argument("--hold-first", type=int, default=0, metavar="N",
                   help="keep the first frame N extra frame times (default 0)")
    p.add_argument("--hold-last", type=int, default=None, metavar="N",
                   help="keep the last frame N extra frame times (default: one second)")


def _forward_parser(sub) -> None:
    """``forward IMAGE -o OUT``: x_t at one t, or a timeline as an animation / filmstrip / frames."""
    f = sub.add_parser("forward", help="noise an image: x_t at one t (PNG) or a timeline (GIF, MP4, ...)")
    f.add_argument("image")
    f.add_argument("-o", "--output", required=True, help="OUT.png (x_t or a filmstrip), "
                   "OUT.gif|.mp4|.webm|.webp|.apng, or a folder for PNG frames")
    g = f.add_mutually_exclusive_group()
    g.add_argument("--t", type=int, default=None, help="paper timestep 0..T for a single PNG")
    g.add_argument("--frames", type=int, default=None, help="frames of the timeline (default 50)")
    f.add_argument("--schedule", default="linear", choices=SCHEDULE_NAMES)
    f.add_argument("--timesteps", type=int, default=1000)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--size", type=int, default=256, help="working size, long side in px (max 512)")
    f.add_argument("--fps", type=float, default=12)
    _hold_flags(f)
    f.add_argument("--spacing", choices=["even", "dense_start"], default="dense_start")
    f.add_argument("--caption", action="store_true", help="write t and abar_t under each frame")


def _sample_animation_flags(s) -> None:
    """sample's --animation (alias --gif), --preview, --frames, --every, --fps, --hold-*."""
    s.add_argument("--animation", "--gif", dest="animation", default=None, metavar="PATH",
                   help="also write the trajectory as an animation: .gif, .mp4 (H.264), .webm "
                        "(VP9), .webp or .apng, by extension (--gif is the old name)")
    s.add_argument("--preview", choices=["xt", "x0", "both"], default="xt")
    s.add_argument("--frames", type=int, default=60, help="frames of the trajectory animation")
    s.add_argument("--every", type=int, default=None, metavar="K",
                   help="every K-th step of the run (and the last) instead of --frames")
    s.add_argument("--fps", type=float, default=15)
    s.add_argument("--record-budget", type=int, default=512, metavar="MB",
                   help="most memory the animation's frames may take (default 512 MB)")
    _hold_flags(s)


def build_parser() -> argparse.ArgumentParser:
    from .models.registry import DEFAULT_MODEL
    p = _Parser(prog="diffusion-gui", description="A desktop explorer for DDPM diffusion models.")
    model_help = f"built-in name (default {DEFAULT_MODEL}), folder or cached hub id"
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--image", default=None, help="image to open in the forward panel")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    _forward_parser(sub)

    _sample_parser(sub, model_help)

    v = sub.add_parser("vlb", help="per-timestep loss terms and the variational bound in bits/dim")
    v.add_argument("--model", dest="sub_model", default=None, metavar="MODEL", help=model_help)
    v.add_argument("image", nargs="?", metavar="IMAGE", help="score this image")
    v.add_argument("--digits", type=int, default=None, metavar="N",
                   help="score N held-out digits instead of an image")
    v.add_argument("--stride", type=int, default=1)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("-o", "--output", required=True, help="TERMS.csv")
    v.add_argument("--json", action="store_true", help="print the summary as JSON")
    _device_flags(v)

    k = sub.add_parser("kl", help="the space-worms KL divergence example")
    k.add_argument("--json", action="store_true")

    t = sub.add_parser("train", help="train a DDPM; writes a diffusers pipeline folder")
    t.add_argument("--data", default="digits", help="digits, or a folder of images")
    t.add_argument("--size", type=int, default=16)
    t.add_argument("--channels", type=int, choices=[1, 3], default=None, help="default: 1 for digits, 3 otherwise")
    t.add_argument("--preset", choices=["tiny", "small", "medium"], default="small")
    t.add_argument("--steps", type=int, default=10000)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                   help="cosine decays to 0 at --steps (also when resuming with more steps)")
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("-o", "--output", required=True)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--conditional", action="store_true",
                   help="class-conditional (digits' labels), for classifier-free guidance")
    t.add_argument("--label-dropout", type=float, default=0.15,
                   help="conditional: share of labels replaced by 'no class' (default 0.15)")
    t.add_argument("--init-from", default="", help="start from this model's weights (a name or folder)")
    t.add_argument("--variance", choices=["fixed_small", "fixed_large", "learned_range"], default="fixed_small",
                   help="the reverse variance: fixed, or learned (improved DDPM: 2C output channels)")
    t.add_argument("--loss", choices=["simple", "hybrid"], default=None,
                   help="simple (DDPM) or hybrid = simple + 0.001 L_vlb (default: hybrid for learned_range)")

    toy = sub.add_parser("toy", help="the 2-D lab: train, sample and score a 2-D data set")
    toy.add_argument("--data", required=True,
                     choices=["moons", "swissroll", "gaussians8", "checkerboard", "spiral", "gmm"])
    toy.add_argument("--model", dest="toy_model", choices=["mlp", "exact", "empirical"], default="mlp")
    tg = toy.add_mutually_exclusive_group()
    tg.add_argument("--train-steps", type=int, default=None, help="MLP training steps (default 3000)")
    tg.add_argument("--train-seconds", type=float, default=None, help="train the MLP for S seconds")
    toy.add_argument("--sampler", choices=SAMPLERS, default="ddpm")
    toy.add_argument("--steps", type=int, default=None, help="DDPM: all T steps unless given; DDIM: 50")
    toy.add_argument("--n", type=int, default=2000, help="points of data and of samples (max 20000)")
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("-o", "--output", required=True, help="POINTS.npz (samples, data: float32 [N, 2])")
    toy.add_argument("--json", action="store_true", help="print the summary as JSON")
    toy.add_argument("--animation", "--gif", dest="gif", default=None, metavar="PATH",
                     help="also write the particle animation (.gif, .mp4, .webm, .webp, .apng)")
    toy.add_argument("--animate", choices=["forward", "reverse", "both"], default="both",
                     help="what the GIF shows: the forward cloud t = 0..T, the reverse run T..0, or both")
    toy.add_argument("--frames", type=int, default=60, help="frames of each part of the GIF")
    toy.add_argument("--fps", type=float, default=15)
    toy.add_argument("--size", type=int, default=None, help="GIF frame side in px (default 480)")

    _reverse_commands(sub, model_help)
    _derive_parser(sub, model_help)

    sub.add_parser("models", help="list built-in and cached models")
    return p


def _sample_parser(sub, model_help: str) -> None:
    """``sample`` (diffusion_gui/commands/images.py)."""
    s = sub.add_parser("sample", help="generate images with a model")
    s.add_argument("--model", dest="sub_model", default=None, metavar="MODEL", help=model_help)
    s.add_argument("--sampler", choices=SAMPLERS, default="ddpm")
    s.add_argument("--steps", type=int, default=None, help="DDPM: all T steps unless given; DDIM: 50")
    s.add_argument("--eta", type=float, default=0.0)
    s.add_argument("--batch", type=int, default=16)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--variance", choices=VARIANCES, default=None)
    s.add_argument("--no-clip", action="store_true", help="do not clip the predicted x_0")
    s.add_argument("--ddim-clip-eps", dest="clip_eps", choices=CLIP_EPS, default="clipped",
                   help="with clipping, DDIM's noise prediction: re-derived from the clipped x_0 "
                        "('clipped', as improved-diffusion; diffusers' use_clipped_model_output=True) "
                        "or the network's ('raw', a stock diffusers DDIMPipeline)")
    s.add_argument("-o", "--output", required=True, help="OUT.png (grid) or OUT.npz (images uint8 [B,H,W,C])")
    _sample_animation_flags(s)
    s.add_argument("--size", type=int, default=None,
                   help="long side in px of the PNG grid (default about 512) and of the GIF")
    s.add_argument("--caption", action="store_true")
    s.add_argument("--class", dest="class_label", default="any", metavar="K|rows|all|any",
                   help="class-conditional models: class K, 'rows' (one class a row of the grid), "
                        "'all' (sample k gets class k mod N) or 'any' (unconditional; the default)")
    s.add_argument("--guidance", type=float, default=1.0, metavar="W",
                   help="classifier-free guidance scale: eps_u + W (eps_c - eps_u); 0 unconditional, "
                        "1 conditional (default)")
    _device_flags(s)


def _reverse_commands(sub, model_help: str) -> None:
    """``compare``, ``invert`` and ``interpolate`` (diffusion_gui/commands/reverse.py)."""
    cmp_ = sub.add_parser("compare", help="one x_T through several samplers: a grid of rows")
    cmp_.add_argument("--model", dest="sub_model", default=None, metavar="MODEL", help=model_help)
    cmp_.add_argument("--rows", default="ddpm,ddpm:50,ddim:50:0,ddim:10:0,ddim:50:1",
                      help="samplers, one a row: ddpm (all T), ddpm:N (respaced), ddim:N:ETA")
    cmp_.add_argument("--batch", type=int, default=8, help="samples a row (columns)")
    cmp_.add_argument("--seed", type=int, default=0)
    cmp_.add_argument("--no-clip", action="store_true", help="do not clip the predicted x_0")
    cmp_.add_argument("-o", "--output", required=True, help="GRID.png (at t = 0) or GRID.gif (T to 0)")
    cmp_.add_argument("--preview", choices=["xt", "x0"], default="xt", help="what the GIF shows")
    cmp_.add_argument("--frames", type=int, default=60, help="frames of the GIF")
    cmp_.add_argument("--fps", type=float, default=15)
    cmp_.add_argument("--json", action="store_true", help="print each row's figures as JSON")
    _device_flags(cmp_)

    inv = sub.add_parser("invert", help="DDIM inversion: an image to x_T and back, error vs steps")
    inv.add_argument("--model", dest="sub_model", default=None, metavar="MODEL", help=model_help)
    inv.add_argument("image", nargs="?", metavar="IMAGE", help="invert this image (fitted to the model)")
    inv.add_argument("--digits", type=int, default=None, metavar="N", help="invert N held-out digits instead")
    inv.add_argument("--steps", default="10,50,200,1000", help="DDIM step counts, comma-separated")
    inv.add_argument("-o", "--output", required=True,
                     help="SHEET.png (originals and reconstructions) or TRIP.gif (x_0 -> x_T -> x_0)")
    inv.add_argument("--frames", type=int, default=40, help="frames of the round-trip GIF")
    inv.add_argument("--fps", type=float, default=15)
    inv.add_argument("--json", action="store_true", help="print the figures as JSON")
    _device_flags(inv)

    itp = sub.add_parser("interpolate", help="invert two images and decode the spherical path between")
    itp.add_argument("--model", dest="sub_model", default=None, metavar="MODEL", help=model_help)
    itp.add_argument("a", metavar="A", help="an image, or digit:K for held-out digit K")
    itp.add_argument("b", metavar="B", help="an image, or digit:K for held-out digit K")
    itp.add_argument("--steps", type=int, default=50, help="DDIM steps of the inversion and decoding")
    itp.add_argument("--frames", type=int, default=9, help="points along the path, ends included")
    itp.add_argument("-o", "--output", required=True, help="STRIP.png or PATH.gif")
    itp.add_argument("--fps", type=float, default=8)
    itp.add_argument("--json", action="store_true", help="print the figures as JSON")
    _device_flags(itp)


def _derive_parser(sub, model_help: str) -> None:
    """``derive``: the numbers of the Derivation panel's steps (diffusion_gui/commands/derive.py)."""
    from .sessions.lab2d_settings import DATASETS
    d = sub.add_parser("derive", help="the numbers of the derivation's steps, as text or JSON")
    d.add_argument("--model", dest="sub_model", default=None, metavar="MODEL", help=model_help)
    d.add_argument("--steps", default=None, metavar="KEY,KEY",
                   help="steps to run (default all): chaining, iwae, estimators, telescoping, prior, "
                        "variance, kl_mse, simple")
    d.add_argument("--toy", default="gaussians8", choices=DATASETS,
                   help="the 2-D data of the iwae step's 2-D model (default gaussians8)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--trajectories", type=int, default=None, metavar="N",
                   help="image trajectories of the estimators step (default 16)")
    d.add_argument("--lab-steps", type=int, default=None, metavar="N",
                   help="2-D MLP training steps per objective, variance and simple steps (default 1500)")
    d.add_argument("--json", action="store_true", help="print one JSON object")


def usage_problem(args) -> str | None:
    """What is wrong with a combination of flags that argparse cannot check, or None."""
    if args.command in ("vlb", "invert") and (args.image is None) == (args.digits is None):
        return "give an IMAGE or --digits N (not both)"
    return None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    problem = usage_problem(args)
    if problem:
        return _fail(problem)
    if args.command is None:
        from .gui.app import run_gui
        return run_gui(model=args.model, image=args.image)
    from . import commands
    handler = getattr(commands, f"cmd_{args.command}")
    model = getattr(args, "sub_model", None) or args.model
    try:
        return handler(args, model) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as e:      # the one family of errors a user can fix; anything else is a bug
        return _fail(cli_message(e))


if __name__ == "__main__":
    sys.exit(main())
