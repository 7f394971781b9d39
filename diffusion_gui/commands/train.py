"""``diffusion-gui train`` and ``diffusion-gui models``."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InvalidParameter


def cmd_train(args, model_spec):
    from tqdm import tqdm

    from ..models.card import write_card
    from ..models.train import TrainConfig, objective, train
    if args.data != "digits" and not Path(args.data).is_dir():
        raise InvalidParameter("data", f"must be 'digits' or a folder of images, not {args.data!r}")
    for name, value, lo in (("steps", args.steps, 1), ("batch_size", args.batch, 1), ("size", args.size, 8)):
        if value < lo:
            raise InvalidParameter(name, "must be positive" if lo == 1 else f"must be at least {lo}")
    if not 0 <= args.label_dropout < 1:
        raise InvalidParameter("label_dropout", "must be in [0, 1)")
    channels = args.channels or (1 if args.data == "digits" else 3)
    cfg = TrainConfig(out_dir=args.output, data=args.data, size=args.size, channels=channels,
                      preset=args.preset, steps=args.steps, batch_size=args.batch, lr=args.lr,
                      lr_schedule=args.lr_schedule,
                      checkpoint_every=args.checkpoint_every, seed=args.seed, resume=args.resume,
                      threads=args.threads, conditional=args.conditional,
                      label_dropout=args.label_dropout, init_from=args.init_from,
                      variance=args.variance, loss=args.loss or "")
    objective(cfg)
    from ..sessions.training import check_step_memory
    check_step_memory(cfg)   # a step too big for the memory: refused now, not swapped through
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
    from ..models.registry import DEFAULT_MODEL, list_models
    rows = list_models()
    if not rows:
        print("no models found")
    for r in rows:
        mark = " (default)" if r["name"] == DEFAULT_MODEL else ""
        print(f"{r['name']:<32} {r['kind']:<9} {r['path']}{mark}")
    return 0
