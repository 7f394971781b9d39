"""DDPM training as a generator of metrics, driven alike by ``diffusion-gui train`` and the GUI.

Epsilon prediction with the simple loss ``E ||eps - eps_theta(x_t, t)||^2`` (DDPM Algorithm 1),
linear schedule, AdamW with warm-up, EMA weights. Output is a diffusers pipeline folder
(``DDPMPipeline.from_pretrained(DIR)`` loads it) plus ``model_card.md``; training state lives in
``DIR/checkpoint/state.pt`` (tensors only, loaded with ``weights_only=True``).

Under ``accelerate launch`` each process sees its own shard of every batch, gradients are
synchronised by accelerate, and only the main process writes files.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

BUCKETS = 10  # loss per timestep bucket: t in (0, T/10], (T/10, 2T/10], ...


@dataclass
class TrainConfig:
    out_dir: str
    data: str = "digits"            # "digits" or a folder of images
    size: int = 16
    channels: int = 1
    preset: str = "small"
    steps: int = 10000
    batch_size: int = 128
    lr: float = 2e-3
    warmup: int = 200
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    timesteps: int = 1000
    augment: bool = True            # random +-1 px shifts (digits) / flips off: digits are not symmetric
    checkpoint_every: int = 500
    seed: int = 0
    resume: bool = False
    threads: int = 0                # torch intra-op threads; 0 keeps torch's default


@dataclass
class TrainMetrics:
    """One optimisation step. ``bucket_loss``: mean loss per timestep bucket (NaN if unseen),
    a running average over recent steps. ``event``: "step", "checkpoint" or "done"."""

    step: int
    total_steps: int
    loss: float
    lr: float
    steps_per_s: float
    elapsed_s: float
    bucket_loss: list = field(default_factory=list)
    event: str = "step"


def load_dataset(cfg: TrainConfig) -> np.ndarray:
    from .data import digits, image_folder
    if cfg.data == "digits":
        return digits(cfg.size, "train")[0]
    return image_folder(cfg.data, cfg.size, cfg.channels)


def _shift(x, g):
    """Random translations by -1, 0 or +1 px, filling with the background (-1)."""
    import torch
    import torch.nn.functional as F
    B = x.shape[0]
    pad = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dx = torch.randint(0, 3, (B,), generator=g)
    dy = torch.randint(0, 3, (B,), generator=g)
    H, W = x.shape[-2:]
    return torch.stack([pad[b, :, dy[b]:dy[b] + H, dx[b]:dx[b] + W] for b in range(B)])


def scheduler_config(cfg: TrainConfig) -> dict:
    return dict(num_train_timesteps=cfg.timesteps, beta_schedule="linear", beta_start=1e-4,
                beta_end=0.02, variance_type="fixed_small", clip_sample=True, prediction_type="epsilon")


def save_pipeline(unet, cfg: TrainConfig, out_dir: Path):
    """Write ``unet`` (the EMA weights) and a DDPM scheduler as a diffusers pipeline folder."""
    from diffusers import DDPMPipeline, DDPMScheduler
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**scheduler_config(cfg)))
    pipe.save_pretrained(str(out_dir), safe_serialization=True)


def _atomic_torch_save(obj, path: Path):
    import torch
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, accelerator=None) -> Iterator[TrainMetrics]:
    """Run (or resume) training, yielding :class:`TrainMetrics` after every step.

    The caller may stop iterating at any time; the last checkpoint is at most
    ``checkpoint_every`` steps old (call :func:`save_pipeline` / send ``"save"`` to keep more).
    A consumer can ``gen.send("checkpoint")`` to force a checkpoint at the next step.
    """
    import torch
    from ..core import GaussianDiffusion, NoiseSchedule
    from .unet import build_unet

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    main = accelerator is None or accelerator.is_main_process
    rank = 0 if accelerator is None else accelerator.process_index
    world = 1 if accelerator is None else accelerator.num_processes
    if main:
        (out / "checkpoint").mkdir(parents=True, exist_ok=True)

    data = torch.from_numpy(load_dataset(cfg))
    if data.shape[1] != cfg.channels:
        raise ValueError(f"data has {data.shape[1]} channels, config says {cfg.channels}")
    torch.manual_seed(cfg.seed)
    unet = build_unet(cfg.preset, cfg.size, cfg.channels)
    ema = copy.deepcopy(unet).requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    diffusion = GaussianDiffusion(NoiseSchedule.from_name("linear", cfg.timesteps,
                                                          beta_start=1e-4, beta_end=0.02))
    g = torch.Generator().manual_seed(cfg.seed * 1000 + 17)
    step, elapsed_before = 0, 0.0
    state_path = out / "checkpoint" / "state.pt"
    if cfg.resume and state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        unet.load_state_dict(st["unet"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        g.set_state(st["rng"])
        step, elapsed_before = int(st["step"]), float(st["elapsed_s"])
    if accelerator is not None:
        unet, opt = accelerator.prepare(unet, opt)
    raw = unet if accelerator is None else accelerator.unwrap_model(unet)

    def save_state():
        if not main:
            return
        _atomic_torch_save({"unet": raw.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                            "rng": g.get_state(), "step": torch.tensor(step),
                            "elapsed_s": torch.tensor(elapsed_before + time.perf_counter() - t0)},
                           state_path)
        (out / "checkpoint" / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        save_pipeline(ema, cfg, out)

    T = cfg.timesteps
    bucket_sum = np.zeros(BUCKETS)
    bucket_n = np.zeros(BUCKETS)
    t0 = time.perf_counter()
    last_t, last_step = t0, step
    rate = 0.0
    n = data.shape[0]
    while step < cfg.steps:
        # every process draws the same global batch, then keeps its own shard of it
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        x0 = data[idx]
        if cfg.augment:
            x0 = _shift(x0, g)
        i = torch.randint(0, T, (cfg.batch_size,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        shard = slice(rank, None, world)
        x0, i, eps = x0[shard], i[shard], eps[shard]
        x_t = diffusion.q_sample(x0, i, eps)
        lr = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
        for group in opt.param_groups:
            group["lr"] = lr
        pred = unet(x_t, i).sample
        per_sample = (pred - eps).pow(2).mean(dim=(1, 2, 3))
        loss = per_sample.mean()
        opt.zero_grad(set_to_none=True)
        if accelerator is None:
            loss.backward()
        else:
            accelerator.backward(loss)
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), raw.parameters()):
                pe.lerp_(p, 1 - d)
        step += 1
        b = (i * BUCKETS // T).numpy()
        ps = per_sample.detach().numpy()
        bucket_sum *= 0.98
        bucket_n *= 0.98
        np.add.at(bucket_sum, b, ps)
        np.add.at(bucket_n, b, 1)
        now = time.perf_counter()
        if now - last_t >= 1.0:
            rate = (step - last_step) / (now - last_t)
            last_t, last_step = now, step
        elif rate == 0.0:
            rate = step / max(now - t0, 1e-9) if step else 0.0
        event = "step"
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_state()
            event = "checkpoint" if step < cfg.steps else "done"
        request = yield TrainMetrics(step, cfg.steps, float(loss.detach()), lr, rate,
                                     elapsed_before + now - t0,
                                     list(np.where(bucket_n > 0, bucket_sum / np.maximum(bucket_n, 1e-9), np.nan)),
                                     event)
        if request == "checkpoint":
            save_state()
    if main and not (out / "model_index.json").is_file():
        save_state()


def ema_unet_from(out_dir) -> object:
    """The EMA UNet saved in ``out_dir`` (a pipeline folder), for sampling during training."""
    from .loader import load_model
    return load_model(str(out_dir)).unet
