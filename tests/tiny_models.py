"""Tiny random diffusers checkpoints for tests (the built-in model may not exist yet).

``make_checkpoint(folder, size=16, channels=1, timesteps=50, layout="flat")`` writes a
``UNet2DModel`` with random weights (seeded) plus its DDPM scheduler config, in the flat layout
(``config.json``, weights, ``scheduler_config.json``) or the pipeline layout (``model_index.json``,
``unet/``, ``scheduler/``), and returns the folder.
"""
from __future__ import annotations

from pathlib import Path


def tiny_unet(size: int = 16, channels: int = 1, seed: int = 0, num_class_embeds: int | None = None,
              out_channels: int | None = None):
    import torch
    from diffusers import UNet2DModel
    torch.manual_seed(seed)
    return UNet2DModel(sample_size=size, in_channels=channels, out_channels=out_channels or channels,
                       block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), num_class_embeds=num_class_embeds)


def make_checkpoint(folder, *, size: int = 16, channels: int = 1, timesteps: int = 50,
                    layout: str = "flat", seed: int = 0, safe: bool = True, classes: int | None = None,
                    null_label: bool = True, **sched) -> Path:
    """``classes``: a class-conditional UNet with that many classes, plus a null label (and its
    ``classes.json``) unless ``null_label=False`` (then no classes.json: someone else's model)."""
    from diffusers import DDPMPipeline, DDPMScheduler

    from diffusion_gui.models.conditioning import ClassInfo, write_class_info
    folder = Path(folder)
    learned = sched.get("variance_type") == "learned_range"     # its UNet outputs 2C channels
    unet = tiny_unet(size, channels, seed, None if not classes else classes + (1 if null_label else 0),
                     2 * channels if learned else None)
    scheduler = DDPMScheduler(num_train_timesteps=timesteps, **sched)
    if layout == "flat":
        unet.save_pretrained(folder, safe_serialization=safe)
        scheduler.save_config(folder)
    elif layout == "pipeline":
        DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder, safe_serialization=safe)
    else:
        raise ValueError(layout)
    if classes and null_label:
        write_class_info(folder, ClassInfo(tuple(f"c{k}" for k in range(classes)), classes, 0.15))
    return folder


# ------------------------------------------------------------------------------ damaged copies
def edit_json(path, **changes):
    """Change keys of a JSON object file in place."""
    import json
    path = Path(path)
    c = json.loads(path.read_text())
    c.update(changes)
    path.write_text(json.dumps(c))


class EvilPickle:
    """Unpickling this would create the file ``target`` (the classic ``__reduce__`` attack)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def _nan_weights(d: Path) -> str:
    """Put a NaN into the first floating tensor of the weights; return that tensor's name."""
    from safetensors.torch import load_file, save_file
    w = d / "diffusion_pytorch_model.safetensors"
    sd = load_file(str(w))
    k = next(k for k, v in sd.items() if v.is_floating_point() and v.numel() > 1)
    sd[k] = sd[k].clone()
    sd[k].view(-1)[0] = float("nan")
    save_file(sd, str(w))
    return k


def _pickle_payload(d: Path):
    """Weights as a ``.bin`` whose unpickling would create ``d/../PWNED-<name>``."""
    import torch
    from safetensors.torch import load_file
    w = d / "diffusion_pytorch_model.safetensors"
    sd = dict(load_file(str(w)))
    w.unlink()
    sd["payload"] = EvilPickle(str(pickle_marker(d)))
    with open(d / "diffusion_pytorch_model.bin", "wb") as fh:
        torch.save(sd, fh)


def pickle_marker(d) -> Path:
    """The file a ``pickle_payload`` checkpoint in ``d`` would create if it were unpickled."""
    d = Path(d)
    return d.parent / f"PWNED-{d.name}"


def _truncate(d: Path):
    w = d / "diffusion_pytorch_model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])


#: name -> (damage(folder), a word the one-line refusal contains). Each damages a copy of a
#: flat checkpoint made by make_checkpoint(size=16, channels=1).
DAMAGES = {
    "missing_weights": (lambda d: (d / "diffusion_pytorch_model.safetensors").unlink(), "no weights"),
    "missing_config": (lambda d: (d / "config.json").unlink(), "no config.json"),
    "empty_folder": (lambda d: [p.unlink() for p in d.iterdir()], "no config.json"),
    "broken_json": (lambda d: (d / "config.json").write_text("{not json"), "unreadable JSON"),
    "wrong_shapes": (lambda d: edit_json(d / "config.json", block_out_channels=[16, 32]),
                     "do not match"),
    "lying_channels": (lambda d: edit_json(d / "config.json", in_channels=3, out_channels=3),
                       "do not match"),
    "lying_resolution": (lambda d: edit_json(d / "config.json", sample_size=100000), "sample_size"),
    "latent_channels": (lambda d: edit_json(d / "config.json", in_channels=4, out_channels=4),
                        "1 (grey) or 3 (RGB)"),
    "not_a_unet": (lambda d: edit_json(d / "config.json", _class_name="UNet2DConditionModel"),
                   "text-conditional"),
    "learned_variance": (lambda d: edit_json(d / "scheduler_config.json",     # C channels out
                                             variance_type="learned_range"), "variance_type"),
    "nan_weights": (_nan_weights, "NaN or infinity"),
    "truncated_weights": (_truncate, "corrupt or truncated"),
    "pickle_payload": (_pickle_payload, "nothing was executed"),
}


def damaged_copy(base, folder, damage: str) -> Path:
    """A copy of checkpoint ``base`` at ``folder``, damaged as ``DAMAGES[damage]`` says."""
    import shutil
    folder = Path(folder)
    shutil.copytree(base, folder)
    DAMAGES[damage][0](folder)
    return folder
DAMAGES["huge_config"] = (lambda d: edit_json(d / "config.json", block_out_channels=[4096, 4096]),
                          "do not match")     # 4.4 G parameters: refused before allocating
