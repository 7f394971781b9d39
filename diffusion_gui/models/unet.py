"""UNet2DModel presets (diffusers) sized for a laptop CPU.

``build_unet(preset, size, channels)`` returns a freshly initialised ``UNet2DModel`` whose input
and output are ``[B, channels, size, size]``; timesteps are array indices ``i = t - 1``.
"""
from __future__ import annotations

PRESETS = {
    # name: (block_out_channels, layers_per_block, attention at the lowest resolution)
    "tiny": ((16, 32, 32), 1, False),
    "small": ((32, 64, 64), 1, True),
    "medium": ((64, 128, 128), 2, True),
}


def unet_config(preset: str, size: int, channels: int) -> dict:
    """The ``UNet2DModel`` keyword arguments of a preset (``tiny``, ``small``, ``medium``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    blocks, layers, attn = PRESETS[preset]
    down = ["DownBlock2D"] * len(blocks)
    up = ["UpBlock2D"] * len(blocks)
    if attn:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    return dict(sample_size=size, in_channels=channels, out_channels=channels,
                block_out_channels=blocks, layers_per_block=layers,
                down_block_types=tuple(down), up_block_types=tuple(up),
                norm_num_groups=8, attention_head_dim=None if not attn else 32)


def output_channels(channels: int, variance: str) -> int | None:
    """``build_unet``'s ``out_channels`` for a variance type: ``2C`` (the prediction, then v) for
    ``learned_range``, else None (``C``, the default)."""
    return 2 * int(channels) if variance == "learned_range" else None


def build_unet(preset: str, size: int, channels: int, num_class_embeds: int | None = None,
               out_channels: int | None = None):
    """A new diffusers ``UNet2DModel`` for ``preset`` at ``size`` px with ``channels`` channels
    (``out_channels``: ``2C`` for a learned variance; default ``C``); with ``num_class_embeds``,
    class-conditional on that many integer labels."""
    from .hf import diffusers_class
    extra = {"num_class_embeds": int(num_class_embeds)} if num_class_embeds else {}
    config = unet_config(preset, size, channels)
    if out_channels:
        config["out_channels"] = int(out_channels)
    return diffusers_class("UNet2DModel")(**config, **extra)


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())
