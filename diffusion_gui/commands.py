"""Headless subcommands behind ``diffusion-gui`` (argparse lives in :mod:`diffusion_gui.cli`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .cli import UsageError


def user_error(e: Exception) -> str | None:
    """The one-line message of a known error family, or None for a bug."""
    from .models.errors import ModelLoadError
    known = [ModelLoadError]
    try:
        from .core.images import ImageLoadError
        known.append(ImageLoadError)
    except ImportError:
        pass
    try:
        from .export import ExportError
        known.append(ExportError)
    except ImportError:
        pass
    if isinstance(e, tuple(known)):
        return str(e)
    return None


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
                      checkpoint_every=args.checkpoint_every, seed=args.seed, resume=args.resume,
                      threads=args.threads)
    accelerator = _accelerator()
    main_proc = accelerator is None or accelerator.is_main_process
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
        if last is not None and main_proc:
            try:
                gen.send("checkpoint")
            except (StopIteration, KeyboardInterrupt):
                pass
            print(f"\ninterrupted: state saved at step {last.step + 1}; "
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
