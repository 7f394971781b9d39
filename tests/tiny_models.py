"""Tiny random diffusers checkpoints for tests (the built-in model may not exist yet).

``make_checkpoint(folder, size=16, channels=1, timesteps=50, layout="flat")`` writes a
``UNet2DModel`` with random weights (seeded) plus its DDPM scheduler config, in the flat layout
(``config.json``, weights, ``scheduler_config.json``) or the pipeline layout (``model_index.json``,
``unet/``, ``scheduler/``), and returns the folder.
"""
from __future__ import annotations

from pathlib import Path


def tiny_unet(size: int = 16, channels: int = 1, seed: int = 0):
    import torch
    from diffusers import UNet2DModel
    torch.manual_seed(seed)
    return UNet2DModel(sample_size=size, in_channels=channels, out_channels=channels,
                       block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"))


def make_checkpoint(folder, *, size: int = 16, channels: int = 1, timesteps: int = 50,
                    layout: str = "flat", seed: int = 0, safe: bool = True, **sched) -> Path:
    from diffusers import DDPMPipeline, DDPMScheduler
    folder = Path(folder)
    unet = tiny_unet(size, channels, seed)
    scheduler = DDPMScheduler(num_train_timesteps=timesteps, **sched)
    if layout == "flat":
        unet.save_pretrained(folder, safe_serialization=safe)
        scheduler.save_config(folder)
    elif layout == "pipeline":
        DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder, safe_serialization=safe)
    else:
        raise ValueError(layout)
    return folder
