"""DDPM training as a generator of metrics, driven alike by ``diffusion-gui train`` and the GUI.

Epsilon prediction with the simple loss ``E ||eps - eps_theta(x_t, t)||^2`` (DDPM Algorithm 1),
linear schedule, AdamW with warm-up, EMA weights. Output is a diffusers pipeline folder
(``DDPMPipeline.from_pretrained(DIR)`` loads it) plus ``model_card.md``; training state lives in
``DIR/checkpoint/state.pt`` (tensors only, loaded with ``weights_only=True``).

Under ``accelerate launch`` each process sees its own shard of every batch, gradients are
synchronised by accelerate, and only the main process writes files.

With ``sample_every > 0`` the main process also draws a grid of samples from the EMA weights
every that many steps (DDIM, a fixed seed, so that the grids of one run are comparable) and
hands it over as uint8 in :attr:`TrainMetrics.samples`; the training itself is unaffected (the
samples have their own random generator).

Debugging aid (tests): with ``DIFFUSION_GUI_DEBUG_SHARDS=1`` in the environment every process
appends the dataset rows it trained on to ``DIR/debug/shard-rank<R>.jsonl`` and, at the end, a
checksum of its final weights.
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
    lr_schedule: str = "constant"   # or "cosine": lr * (1 + cos(pi * step / steps)) / 2 after warm-up
    warmup: int = 200
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    timesteps: int = 1000
    augment: bool = True            # random +-1 px shifts (digits) / flips off: digits are not symmetric
    checkpoint_every: int = 500
    seed: int = 0
    resume: bool = False
    threads: int = 0                # torch intra-op threads; 0 keeps torch's default
    sample_every: int = 0           # >0: a grid of EMA samples every that many steps (and at step 1)
    sample_steps: int = 25          # DDIM steps of those grids
    sample_batch: int = 16          # images per grid
    sample_seed: int = 0            # the grids' fixed seed (x_T is the same every time)


@dataclass
class TrainMetrics:
    """One optimisation step. ``bucket_loss``: mean loss per timestep bucket (NaN if unseen),
    a running average over recent steps. ``loss`` and ``bucket_loss`` cover the whole global
    batch (all processes). ``event``: "step", "checkpoint" (saved at this step), "done" (the
    last step, saved), or "sample" (an answer to a ``"sample"`` request, no new step).
    ``samples``: uint8 ``[B, H, W, C]`` EMA samples taken at this step, or None."""

    step: int
    total_steps: int
    loss: float
    lr: float
    steps_per_s: float
    elapsed_s: float
    bucket_loss: list = field(default_factory=list)
    event: str = "step"
    samples: object = None


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of 0-based ``step``: linear warm-up, then constant or cosine decay."""
    lr = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
    if cfg.lr_schedule == "cosine":
        lr *= 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / max(cfg.steps, 1)))
    elif cfg.lr_schedule != "constant":
        raise ValueError(f"lr_schedule must be constant or cosine, not {cfg.lr_schedule!r}")
    return lr


def load_dataset(cfg: TrainConfig) -> np.ndarray:
    from .data import digits, image_folder
    if cfg.data == "digits":
        return digits(cfg.size, "train")[0]
    return image_folder(cfg.data, cfg.size, cfg.channels)


def random_shift(x, g):
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
    from .hf import diffusers_class
    DDPMPipeline, DDPMScheduler = diffusers_class("DDPMPipeline"), diffusers_class("DDPMScheduler")
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**scheduler_config(cfg)))
    pipe.save_pretrained(str(out_dir), safe_serialization=True)


def sample_grid(unet, cfg: TrainConfig, diffusion=None, device=None):
    """uint8 ``[sample_batch, H, W, C]``: DDIM (``sample_steps`` steps, eta 0, x0 clipped) from
    ``unet`` with the fixed ``sample_seed``. The same computation as ``make_sampler(model,
    sampler="ddim", steps=cfg.sample_steps, batch=cfg.sample_batch, seed=cfg.sample_seed)`` on
    the saved pipeline: noise is drawn on the CPU, the network runs on ``device``."""
    import torch

    from ..core import GaussianDiffusion, NoiseSchedule
    from ..core.images import to_uint8
    from ..core.sampling import run, sampler
    if diffusion is None:
        diffusion = GaussianDiffusion(NoiseSchedule.from_name("linear", cfg.timesteps,
                                                              beta_start=1e-4, beta_end=0.02))
    dev = torch.device(device or "cpu")

    def model(x, i):
        return unet(x.to(dev), i.to(dev)).sample.float().cpu()

    shape = (cfg.sample_batch, cfg.channels, cfg.size, cfg.size)
    g = torch.Generator().manual_seed(int(cfg.sample_seed))
    x0 = run(sampler("ddim", model, diffusion, shape, steps=cfg.sample_steps, generator=g,
                     clip_x0=scheduler_config(cfg)["clip_sample"]))
    return to_uint8(x0)


def time_steps(preset: str, size: int, channels: int, batch_size: int, steps: int = 3) -> float:
    """Seconds per training step (forward, backward, AdamW) of ``preset`` on this machine, timed
    over ``steps`` steps after one warm-up step, on random data. Writes nothing."""
    import torch

    from .unet import build_unet
    unet = build_unet(preset, size, channels)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((batch_size, channels, size, size), generator=g)
    i = torch.randint(0, 1000, (batch_size,), generator=g)
    t0 = 0.0
    for k in range(steps + 1):
        if k == 1:
            t0 = time.perf_counter()
        loss = (unet(x, i).sample - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / max(steps, 1)


def _atomic_torch_save(obj, path: Path):
    import torch
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, accelerator=None) -> Iterator[TrainMetrics]:
    """Run (or resume) training, yielding :class:`TrainMetrics` after every step.

    The caller may stop iterating at any time; the last checkpoint is at most
    ``checkpoint_every`` steps old. Requests, sent with ``gen.send(...)`` instead of ``next``:

    - ``"checkpoint"``: save the state and the pipeline now (at the step just yielded) and answer
      with that step's metrics, ``event="checkpoint"``; no training step is taken;
    - ``"sample"``: answer with that step's metrics carrying a fresh sample grid
      (``event="sample"``; main process only).

    Under ``accelerate``, every process must make the same requests (only the CLI's main process
    ever sends one, on Ctrl-C, and then stops).
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
    device = torch.device("cpu") if accelerator is None else accelerator.device
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by the {world} processes")
    if main:
        (out / "checkpoint").mkdir(parents=True, exist_ok=True)
    debug = _ShardLog(out, rank, world) if os.environ.get("DIFFUSION_GUI_DEBUG_SHARDS") == "1" else None

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
    ema.to(device)
    if accelerator is not None:
        unet, opt = accelerator.prepare(unet, opt)   # moves the model (and optimiser state) to device
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

    def samples():
        return sample_grid(ema, cfg, diffusion, device) if main else None

    def metrics(event, grid):   # of the step just taken (reads the loop's variables)
        return TrainMetrics(step, cfg.steps, float(ps.mean()), lr, rate,
                            elapsed_before + time.perf_counter() - t0,
                            list(np.where(bucket_n > 0, bucket_sum / np.maximum(bucket_n, 1e-9), np.nan)),
                            event, grid)

    T = cfg.timesteps
    bucket_sum = np.zeros(BUCKETS)
    bucket_n = np.zeros(BUCKETS)
    t0 = time.perf_counter()
    last_t, last_step = t0, step
    rate = 0.0
    n = data.shape[0]
    start_step = step
    try:
        while step < cfg.steps:
            # every process draws the same global batch, then keeps its own shard of it
            idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
            x0 = data[idx]
            if cfg.augment:
                x0 = random_shift(x0, g)
            i = torch.randint(0, T, (cfg.batch_size,), generator=g)
            eps = torch.randn(x0.shape, generator=g)
            shard = slice(rank, None, world)
            if debug is not None:
                debug.rows(step + 1, idx[shard].tolist())
            x0, i, eps = x0[shard].to(device), i[shard].to(device), eps[shard].to(device)
            x_t = diffusion.q_sample(x0, i, eps)
            lr = learning_rate(cfg, step)
            for group in opt.param_groups:
                group["lr"] = lr
            pred = unet(x_t, i).sample
            per_sample = (pred.float() - eps).pow(2).mean(dim=(1, 2, 3))
            loss = per_sample.mean()
            opt.zero_grad(set_to_none=True)
            if accelerator is None:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            else:
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                d = min(cfg.ema_decay, (1 + step) / (10 + step))
                for pe, p in zip(ema.parameters(), raw.parameters()):
                    pe.lerp_(p, 1 - d)
            step += 1
            ps, ii = per_sample.detach(), i
            if accelerator is not None and world > 1:   # metrics of the whole global batch
                ps, ii = accelerator.gather(ps), accelerator.gather(ii)
            ps, b = ps.float().cpu().numpy(), (ii * BUCKETS // T).cpu().numpy()
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
            grid = None
            if cfg.sample_every > 0 and (step == 1 or step % cfg.sample_every == 0 or step == cfg.steps):
                grid = samples()
            request = yield metrics(event, grid)
            while request in ("checkpoint", "sample"):
                if request == "checkpoint":
                    save_state()
                    request = yield metrics("checkpoint", None)
                else:
                    request = yield metrics("sample", samples())
    except KeyboardInterrupt:   # Ctrl-C during a step: keep the last completed one
        if step > start_step:
            save_state()
        raise
    if debug is not None:
        debug.final(raw)
    if main and not (out / "model_index.json").is_file():
        save_state()


class _ShardLog:
    """``DIR/debug/shard-rank<R>.jsonl``: the dataset rows each step trained on, then a checksum
    of the final weights (``DIFFUSION_GUI_DEBUG_SHARDS=1`` only; for the accelerate test)."""

    def __init__(self, out: Path, rank: int, world: int):
        (out / "debug").mkdir(parents=True, exist_ok=True)
        self.path = out / "debug" / f"shard-rank{rank}.jsonl"
        self.path.write_text(json.dumps({"rank": rank, "world": world}) + "\n")

    def rows(self, step: int, rows: list):
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, "rows": rows}) + "\n")

    def final(self, unet):
        import hashlib
        h = hashlib.sha256()
        for k, v in sorted(unet.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        with self.path.open("a") as f:
            f.write(json.dumps({"final_sha256": h.hexdigest()}) + "\n")


def ema_unet_from(out_dir) -> object:
    """The EMA UNet saved in ``out_dir`` (a pipeline folder), for sampling during training."""
    from .loader import load_model
    return load_model(str(out_dir)).unet
