"""Random-weight checkpoints with the exact configs of two published diffusers DDPMs, written in
their own layouts, for the tests and benchmarks that must run on models of real size:

- ``cifar10``: google/ddpm-cifar10-32 (35.7 M parameters, 32 px RGB; the *flat* layout:
  ``config.json``, weights and ``scheduler_config.json`` in one folder; ``fixed_large``, clip);
- ``church256``: google/ddpm-church-256 (113.7 M parameters, 256 px RGB; the *pipeline* layout,
  ``model_index.json`` + ``unet/`` + ``scheduler/``; ``fixed_small``, clip). Large: benchmarks only.

The configs are the published ``config.json`` / ``scheduler_config.json`` fields (diffusers
fills in the rest with its defaults, as it does when it loads the real ones); the weights are
random (seeded), so the pictures are noise, but every shape, every layer and every cost is the
real model's. Nothing is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

_COMMON = {"act_fn": "silu", "attention_head_dim": None, "center_input_sample": False,
           "downsample_padding": 0, "flip_sin_to_cos": False, "freq_shift": 1, "in_channels": 3,
           "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-06,
           "norm_num_groups": 32, "out_channels": 3, "time_embedding_type": "positional"}

UNETS = {
    "cifar10": {**_COMMON, "sample_size": 32, "block_out_channels": [128, 256, 256, 256],
                "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
                "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"]},
    "church256": {**_COMMON, "sample_size": 256, "block_out_channels": [128, 128, 256, 256, 512, 512],
                  "down_block_types": ["DownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D",
                                       "AttnDownBlock2D", "DownBlock2D"],
                  "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D",
                                     "UpBlock2D", "UpBlock2D"]},
}
_SCHED = {"beta_end": 0.02, "beta_schedule": "linear", "beta_start": 0.0001, "clip_sample": True,
          "num_train_timesteps": 1000, "trained_betas": None}
SCHEDULERS = {"cifar10": {**_SCHED, "variance_type": "fixed_large"},
              "church256": {**_SCHED, "variance_type": "fixed_small"}}
LAYOUTS = {"cifar10": "flat", "church256": "pipeline"}
#: parameters of the published models
PARAMETERS = {"cifar10": 35_746_307, "church256": 113_673_219}


def make_real_checkpoint(folder, which: str, seed: int = 0) -> Path:
    """Write the random-weight ``which`` (``cifar10`` / ``church256``) in its layout under
    ``folder`` (safetensors); return the folder to load."""
    import torch
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DModel(**UNETS[which])
    scheduler = DDPMScheduler(**SCHEDULERS[which])
    if LAYOUTS[which] == "pipeline":
        DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder, safe_serialization=True)
    else:
        unet.save_pretrained(folder, safe_serialization=True)
        (folder / "scheduler_config.json").write_text(json.dumps(
            {"_class_name": "DDPMScheduler", **SCHEDULERS[which]}, indent=2))
    return folder
