"""DDPM training as a generator of metrics, driven alike by ``diffusion-gui train`` and the GUI.

Epsilon prediction with the simple loss ``E ||eps - eps_theta(x_t, t)||^2`` (DDPM Algorithm 1),
or, with ``variance="learned_range"``, a network of ``2C`` output channels trained with improved
DDPM's ``L_hybrid = L_simple + 0.001 L_vlb`` (the mean's gradient stopped in L_vlb), linear schedule, AdamW with warm-up, EMA weights. Output is a diffusers pipeline folder
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

from ..errors import InvalidParameter

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
    conditional: bool = False       # class-conditional (digits: the 10 labels + a null label)
    label_dropout: float = 0.15     # conditional: share of labels replaced by the null label
    init_from: str = ""             # start from this model's weights (a built-in name or folder)
    variance: str = "fixed_small"   # the scheduler's sigma_t^2: fixed_small, fixed_large or learned_range
    loss: str = ""                  # "simple" or "hybrid"; "" = hybrid for learned_range, else simple


VARIANCES = ("fixed_small", "fixed_large", "learned_range")
LOSSES = ("simple", "hybrid")


def objective(cfg: TrainConfig) -> tuple[str, str]:
    """``(variance, loss)`` of ``cfg``, checked: a learned variance is trained by L_hybrid (the
    simple loss gives it no gradient) and L_hybrid needs one (with a fixed variance its L_vlb part,
    the mean's gradient stopped, has nothing to train)."""
    if cfg.variance not in VARIANCES:
        raise InvalidParameter("variance", f"must be one of {', '.join(VARIANCES)}, not {cfg.variance!r}")
    loss = cfg.loss or ("hybrid" if cfg.variance == "learned_range" else "simple")
    if loss not in LOSSES:
        raise InvalidParameter("loss", f"must be simple or hybrid, not {loss!r}")
    if (loss == "hybrid") != (cfg.variance == "learned_range"):
        raise InvalidParameter("loss", "hybrid goes with --variance learned_range, and a learned "
                                       "variance with the hybrid loss" if loss == "hybrid" else
                               "simple cannot train a learned variance; use hybrid")
    return cfg.variance, loss


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
        raise InvalidParameter("lr_schedule", f"must be constant or cosine, not {cfg.lr_schedule!r}")
    return lr


def load_dataset(cfg: TrainConfig) -> np.ndarray:
    return load_labelled(cfg)[0]


DIGIT_CLASSES = tuple(str(k) for k in range(10))


def load_labelled(cfg: TrainConfig):
    """``(images [N, C, H, W] float32 in [-1, 1], labels int64 [N] or None, class names or None)``:
    the digits have labels; a folder of images has none (it cannot train a conditional model)."""
    from .data import digits, image_folder
    if cfg.data == "digits":
        x, y = digits(cfg.size, "train")
        return x, np.asarray(y, np.int64), DIGIT_CLASSES
    if cfg.conditional:
        raise InvalidParameter("conditional", "needs labelled data (the digits); a folder of images has none")
    return image_folder(cfg.data, cfg.size, cfg.channels), None, None


def class_info(cfg: TrainConfig):
    """The :class:`~.conditioning.ClassInfo` a conditional run writes (None if unconditional)."""
    from .conditioning import ClassInfo
    return ClassInfo(DIGIT_CLASSES, len(DIGIT_CLASSES), float(cfg.label_dropout)) if cfg.conditional else None


def unet_kwargs(cfg: TrainConfig) -> dict:
    """``build_unet``'s arguments past preset, size and channels for a run of ``cfg``: class
    embeddings (conditional: the labels and a null one) and ``2C`` outputs for a learned variance."""
    info = class_info(cfg)
    from .unet import output_channels
    return dict(num_class_embeds=None if info is None else info.n + 1,
                out_channels=output_channels(cfg.channels, cfg.variance))


def shift_edge(cfg: TrainConfig) -> str:
    """What :func:`random_shift` fills with for this run's data: the digits' black, else the edge."""
    return "black" if cfg.data == "digits" else "replicate"


def random_shift(x, g, edge: str = "black"):
    """Random translations by -1, 0 or +1 px, filling with the background: black (-1, the
    digits') or the image's own edge (``edge="replicate"``: pictures on a white or any ground)."""
    import torch
    import torch.nn.functional as F
    B = x.shape[0]
    pad = (F.pad(x, (1, 1, 1, 1), value=-1.0) if edge == "black"
           else F.pad(x, (1, 1, 1, 1), mode="replicate"))
    dx = torch.randint(0, 3, (B,), generator=g)
    dy = torch.randint(0, 3, (B,), generator=g)
    H, W = x.shape[-2:]
    return torch.stack([pad[b, :, dy[b]:dy[b] + H, dx[b]:dx[b] + W] for b in range(B)])


def scheduler_config(cfg: TrainConfig) -> dict:
    return dict(num_train_timesteps=cfg.timesteps, beta_schedule="linear", beta_start=1e-4,
                beta_end=0.02, variance_type=cfg.variance, clip_sample=True, prediction_type="epsilon")


def train_diffusion(cfg: TrainConfig):
    """The ``GaussianDiffusion`` a run trains and samples with (the saved scheduler's)."""
    from ..core import GaussianDiffusion, NoiseSchedule
    return GaussianDiffusion(NoiseSchedule.from_name("linear", cfg.timesteps, beta_start=1e-4,
                                                     beta_end=0.02), variance=cfg.variance)


def save_pipeline(unet, cfg: TrainConfig, out_dir: Path):
    """Write ``unet`` (the EMA weights) and a DDPM scheduler as a diffusers pipeline folder."""
    from .hf import diffusers_class
    DDPMPipeline, DDPMScheduler = diffusers_class("DDPMPipeline"), diffusers_class("DDPMScheduler")
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**scheduler_config(cfg)))
    pipe.save_pretrained(str(out_dir), safe_serialization=True)
    info = class_info(cfg)
    if info is not None:
        from .conditioning import write_class_info
        write_class_info(out_dir, info)
    if cfg.data == "digits" and not (out_dir / "heldout.npz").is_file():   # the model's own kind
        from .data import digits
        from .examples import write_heldout
        x, _ = digits(cfg.size, "heldout")
        write_heldout(out_dir, np.round((x.transpose(0, 2, 3, 1) + 1) * 127.5).astype(np.uint8), "digit")


def sample_grid(unet, cfg: TrainConfig, diffusion=None, device=None, cancelled=None):
    """uint8 ``[sample_batch, H, W, C]``: DDIM (``sample_steps`` steps, eta 0, x0 clipped) from
    ``unet`` with the fixed ``sample_seed``. The same computation as ``make_sampler(model,
    sampler="ddim", steps=cfg.sample_steps, batch=cfg.sample_batch, seed=cfg.sample_seed)`` on
    the saved pipeline: noise is drawn on the CPU, the network runs on ``device``. None when
    ``cancelled()`` turns true between two of its steps (a big grid can take minutes)."""
    import torch

    from ..core.images import to_uint8
    from ..core.sampling import sampler
    if diffusion is None:
        diffusion = train_diffusion(cfg)
    from .conditioning import guided_eps
    dev = torch.device(device or "cpu")
    info = class_info(cfg)            # a conditional run's grid: class k mod 10 in sample k
    labels = None if info is None else (torch.arange(cfg.sample_batch) % info.n).to(dev)

    def model(x, i):
        return guided_eps(unet, x.to(dev), i.to(dev), labels, 1.0, None).float().cpu()

    shape = (cfg.sample_batch, cfg.channels, cfg.size, cfg.size)
    g = torch.Generator().manual_seed(int(cfg.sample_seed))
    last = None
    for so in sampler("ddim", model, diffusion, shape, steps=cfg.sample_steps, generator=g,
                      clip_x0=scheduler_config(cfg)["clip_sample"]):
        if cancelled is not None and cancelled():
            return None
        last = so
    return to_uint8(last.x_t)


#: the most images a timed step holds; a bigger batch is timed on this many and scaled linearly
#: (a CPU step's time grows about linearly with the batch; the real run's first steps are timed too)
TIMED_BATCH = 32


def timed_steps(preset: str, size: int, channels: int, batch_size: int, steps: int = 3) -> Iterator:
    """Seconds per training step (forward, backward, AdamW) of ``preset`` on this machine, timed
    over ``steps`` steps after one warm-up step, on random data; writes nothing. A generator:
    ``None`` after each step (whoever iterates may stop between two), then the seconds per step.
    At most ``TIMED_BATCH`` images a step, scaled to ``batch_size``, so that a big preset, size
    and batch takes seconds, not minutes and gigabytes."""
    import torch
    timed = min(int(batch_size), TIMED_BATCH)

    from .unet import build_unet
    unet = build_unet(preset, size, channels)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((timed, channels, size, size), generator=g)
    i = torch.randint(0, 1000, (timed,), generator=g)
    t0 = 0.0
    for k in range(steps + 1):
        if k == 1:
            t0 = time.perf_counter()
        loss = (unet(x, i).sample - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if k < steps:
            yield None
    yield (time.perf_counter() - t0) / max(steps, 1) * batch_size / timed


def _atomic_torch_save(obj, path: Path):
    import torch
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def spare_core_threads() -> int:
    """Torch threads for a run beside a window: every CPU this process may use but one (at
    least one). On a busy machine a thread per core makes every step wait for a descheduled
    thread: 0.55 s a step with 1 thread became 4-12 s with 2 on a loaded 2-core machine."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, n - 1)


def train(cfg: TrainConfig, accelerator=None, on_stage=None, cancelled=None) -> Iterator[TrainMetrics]:
    """Run (or resume) training, yielding :class:`TrainMetrics` after every step.

    ``on_stage(text)`` (optional, called in this generator's thread) is told what the start-up
    is doing before the first metrics arrive: ``"loading the data"``, ``"building the model"``,
    ``"resuming from the checkpoint"``, ``"taking the first step"``, ``"drawing the first
    samples"``; then ``None`` once the first metrics are yielded. ``cancelled()`` (optional)
    abandons a sample grid being drawn (its metrics then carry none).

    The caller may stop iterating at any time; the last checkpoint is at most
    ``checkpoint_every`` steps old. Requests, sent with ``gen.send(...)`` instead of ``next``:

    - ``"checkpoint"``: save the state and the pipeline now (at the step just yielded) and answer
      with that step's metrics, ``event="checkpoint"``; no training step is taken;
    - ``"sample"``: answer with that step's metrics carrying a fresh sample grid
      (``event="sample"``; main process only).

    Under ``accelerate``, every process must make the same requests (only the CLI's main process
    ever sends one, on Ctrl-C, and then stops).
    """
    stage = on_stage or (lambda text: None)
    loop = _Loop(cfg, accelerator, stage)
    loop.cancelled = cancelled
    start_step = loop.step
    first = True
    try:
        while loop.step < cfg.steps:
            if first:
                stage("taking the first step")
            loop.take_step()
            event = "step"
            if loop.step % cfg.checkpoint_every == 0 or loop.step == cfg.steps:
                loop.save_state()
                event = "checkpoint" if loop.step < cfg.steps else "done"
            if first and loop.sample_due():
                stage("drawing the first samples")
            grid = loop.samples() if loop.sample_due() else None
            if first:
                stage(None)
                first = False
            request = yield loop.metrics(event, grid)
            while request in ("checkpoint", "sample"):
                if request == "checkpoint":
                    loop.save_state()
                    request = yield loop.metrics("checkpoint", None)
                else:
                    request = yield loop.metrics("sample", loop.samples())
    except KeyboardInterrupt:   # Ctrl-C during a step: keep the last completed one
        if loop.step > start_step:
            loop.save_state()
        raise
    finally:
        loop.restore_threads()
    loop.finish()


class _Loop:
    """The state of one run of :func:`train`: data, UNet, EMA copy, optimiser, the batch
    generator ``g`` and the running metrics. ``step`` counts completed steps (DDPM Algorithm 1,
    one batch each); timestep indices ``i = t - 1`` are drawn uniformly in ``0 .. T-1``."""

    def __init__(self, cfg: TrainConfig, accelerator=None, stage=lambda text: None):
        import torch
        self._threads_before = torch.get_num_threads()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.cfg, self.acc = cfg, accelerator
        self.out = Path(cfg.out_dir)
        self.main = accelerator is None or accelerator.is_main_process
        self.rank = 0 if accelerator is None else accelerator.process_index
        self.world = 1 if accelerator is None else accelerator.num_processes
        self.device = torch.device("cpu") if accelerator is None else accelerator.device
        if cfg.batch_size % self.world:
            raise InvalidParameter("batch_size", f"{cfg.batch_size} is not divisible by the "
                                                 f"{self.world} processes")
        if self.main:
            (self.out / "checkpoint").mkdir(parents=True, exist_ok=True)
        self.debug = (_ShardLog(self.out, self.rank, self.world)
                      if os.environ.get("DIFFUSION_GUI_DEBUG_SHARDS") == "1" else None)
        stage("loading the data")
        data, labels, _ = load_labelled(cfg)
        self.data = torch.from_numpy(data)
        self.labels = torch.from_numpy(labels) if cfg.conditional else None
        if self.data.shape[1] != cfg.channels:
            raise InvalidParameter("channels", f"must match the data's {self.data.shape[1]}, "
                                               f"not {cfg.channels}")
        stage("building the model")
        self._build_model()
        self.state_path = self.out / "checkpoint" / "state.pt"
        self.step, self.elapsed_before = 0, 0.0
        if cfg.resume and self.state_path.is_file():
            stage("resuming from the checkpoint")
            self._resume()
        self.ema.to(self.device)
        if accelerator is not None:   # moves the model (and optimiser state) to the device
            self.unet, self.opt = accelerator.prepare(self.unet, self.opt)
        self.raw = self.unet if accelerator is None else accelerator.unwrap_model(self.unet)
        self.bucket_sum = np.zeros(BUCKETS)
        self.bucket_n = np.zeros(BUCKETS)
        self.t0 = time.perf_counter()
        self.last_t, self.last_step = self.t0, self.step
        self.rate, self.lr, self.ps = 0.0, 0.0, None

    def _build_model(self):
        import torch

        from .unet import build_unet
        cfg = self.cfg
        _, self.loss = objective(cfg)
        torch.manual_seed(cfg.seed)
        self.unet = build_unet(cfg.preset, cfg.size, cfg.channels, **unet_kwargs(cfg))
        if cfg.init_from and not (cfg.resume and (self.out / "checkpoint" / "state.pt").is_file()):
            init_weights(self.unet, cfg.init_from)
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        self.opt = torch.optim.AdamW(self.unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.diffusion = train_diffusion(cfg)
        self.g = torch.Generator().manual_seed(cfg.seed * 1000 + 17)

    def _resume(self):
        import torch
        st = torch.load(self.state_path, map_location="cpu", weights_only=True)
        try:
            self.unet.load_state_dict(st["unet"])
        except RuntimeError:            # another network: say which settings differ
            raise InvalidParameter("resume", self._resume_mismatch(), subject=str(self.out)) from None
        self.ema.load_state_dict(st["ema"])
        self.opt.load_state_dict(st["opt"])
        self.g.set_state(st["rng"])
        self.step, self.elapsed_before = int(st["step"]), float(st["elapsed_s"])

    #: the settings that shape the network (a resume needs the same)
    NETWORK_FIELDS = ("preset", "size", "channels", "conditional", "variance")

    def _resume_mismatch(self) -> str:
        saved = {}
        try:
            saved = json.loads((self.out / "checkpoint" / "config.json").read_text())
        except (OSError, ValueError):
            pass
        diff = [f"{k} {saved[k]} (now {getattr(self.cfg, k)})" for k in self.NETWORK_FIELDS
                if k in saved and saved[k] != getattr(self.cfg, k)]
        what = ("its checkpoint was trained with " + ", ".join(diff)) if diff else \
            "its checkpoint holds another network"
        return (f"cannot continue this run: {what}; resume with the settings it was trained with, "
                f"or train into a new folder")

    # ---- one step
    def _batch(self):
        """This process's shard of the global batch: ``(x0, i, eps)`` on the device. Every
        process draws the same global batch from ``g``, then keeps its own rows."""
        import torch
        cfg, g = self.cfg, self.g
        idx = torch.randint(0, self.data.shape[0], (cfg.batch_size,), generator=g)
        x0 = self.data[idx]
        if cfg.augment:
            x0 = random_shift(x0, g, shift_edge(cfg))
        i = torch.randint(0, cfg.timesteps, (cfg.batch_size,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        shard = slice(self.rank, None, self.world)
        if self.debug is not None:
            self.debug.rows(self.step + 1, idx[shard].tolist())
        y = None
        if self.labels is not None:     # classifier-free guidance: drop labels to the null one
            y = self.labels[idx].clone()
            y[torch.rand(cfg.batch_size, generator=g) < cfg.label_dropout] = len(DIGIT_CLASSES)
            y = y[shard].to(self.device)
        self.y = y
        return x0[shard].to(self.device), i[shard].to(self.device), eps[shard].to(self.device)

    def take_step(self):
        """One optimisation step of the simple loss ``||eps - eps_theta(x_t, t)||^2`` (or of
        L_hybrid, :func:`~diffusion_gui.core.vlb.hybrid_terms`), the EMA update, then the running
        metrics (of the loss optimised)."""
        import torch
        x0, i, eps = self._batch()
        x_t = self.diffusion.q_sample(x0, i, eps)
        self.lr = learning_rate(self.cfg, self.step)
        for group in self.opt.param_groups:
            group["lr"] = self.lr
        pred = (self.unet(x_t, i) if self.y is None else self.unet(x_t, i, class_labels=self.y)).sample
        if self.loss == "hybrid":
            from ..core.vlb import hybrid_loss, hybrid_terms
            per_sample = hybrid_loss(*hybrid_terms(self.diffusion, pred, x0, x_t, i, eps), self.cfg.timesteps)
        else:
            per_sample = (pred.float() - eps).pow(2).mean(dim=(1, 2, 3))
        loss = per_sample.mean()
        self.opt.zero_grad(set_to_none=True)
        if self.acc is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
        else:
            self.acc.backward(loss)
            self.acc.clip_grad_norm_(self.unet.parameters(), 1.0)
        self.opt.step()
        with torch.no_grad():
            d = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
            for pe, p in zip(self.ema.parameters(), self.raw.parameters()):
                pe.lerp_(p, 1 - d)
        self.step += 1
        self._record(per_sample.detach(), i)

    def _record(self, ps, ii):
        """Loss per timestep bucket (a decaying average) and steps per second."""
        if self.acc is not None and self.world > 1:   # metrics of the whole global batch
            ps, ii = self.acc.gather(ps), self.acc.gather(ii)
        ps, b = ps.float().cpu().numpy(), (ii * BUCKETS // self.cfg.timesteps).cpu().numpy()
        self.ps = ps
        self.bucket_sum *= 0.98
        self.bucket_n *= 0.98
        np.add.at(self.bucket_sum, b, ps)
        np.add.at(self.bucket_n, b, 1)
        now = time.perf_counter()
        if now - self.last_t >= 1.0:
            self.rate = (self.step - self.last_step) / (now - self.last_t)
            self.last_t, self.last_step = now, self.step
        elif self.rate == 0.0:
            self.rate = self.step / max(now - self.t0, 1e-9) if self.step else 0.0

    def sample_due(self) -> bool:
        every, step = self.cfg.sample_every, self.step
        return every > 0 and (step == 1 or step % every == 0 or step == self.cfg.steps)

    # ---- outputs
    def metrics(self, event: str, grid) -> TrainMetrics:
        """The metrics of the step just taken."""
        buckets = np.where(self.bucket_n > 0, self.bucket_sum / np.maximum(self.bucket_n, 1e-9), np.nan)
        return TrainMetrics(self.step, self.cfg.steps, float(self.ps.mean()), self.lr, self.rate,
                            self.elapsed_before + time.perf_counter() - self.t0, list(buckets),
                            event, grid)

    def samples(self):
        return (sample_grid(self.ema, self.cfg, self.diffusion, self.device, getattr(self, "cancelled", None))
                if self.main else None)

    def save_state(self):
        """``checkpoint/state.pt`` + ``config.json`` and the EMA pipeline (main process only)."""
        import torch
        if not self.main:
            return
        elapsed = self.elapsed_before + time.perf_counter() - self.t0
        _atomic_torch_save({"unet": self.raw.state_dict(), "ema": self.ema.state_dict(),
                            "opt": self.opt.state_dict(), "rng": self.g.get_state(),
                            "step": torch.tensor(self.step), "elapsed_s": torch.tensor(elapsed)},
                           self.state_path)
        (self.out / "checkpoint" / "config.json").write_text(json.dumps(asdict(self.cfg), indent=2))
        save_pipeline(self.ema, self.cfg, self.out)

    def restore_threads(self):
        """Give torch back the thread count it had before this run (``cfg.threads`` only)."""
        import torch
        if self.cfg.threads:
            torch.set_num_threads(self._threads_before)

    def finish(self):
        if self.debug is not None:
            self.debug.final(self.raw)
        if self.main and not (self.out / "model_index.json").is_file():
            self.save_state()


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


def init_weights(unet, spec: str):
    """Copy into ``unet`` every weight of model ``spec`` with the same name and shape (a
    conditional network from an unconditional one: all but the class embedding, which starts at
    zero, so that training starts from the unconditional model's predictions). A learned-variance
    network (``2C`` outputs) from a fixed one (``C``): the output layer's prediction rows are
    copied and its ``v`` rows start at zero (sigma_t^2 the geometric mean of beta~_t and beta_t)."""
    import torch

    from .loader import load_model
    src = load_model(spec).unet.state_dict()
    own = unet.state_dict()
    same = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    if len(same) < len(own) // 2:
        raise InvalidParameter("init_from", f"{spec} does not share this network's architecture "
                                            f"({len(same)} of {len(own)} tensors match)")
    unet.load_state_dict(same, strict=False)
    with torch.no_grad():
        for name in ("conv_out.weight", "conv_out.bias"):
            w, c = own.get(name), src.get(name)
            if name not in same and w is not None and c is not None and w.shape[0] == 2 * c.shape[0] \
                    and w.shape[1:] == c.shape[1:]:
                w[:c.shape[0]].copy_(c)
                w[c.shape[0]:].zero_()
        if getattr(unet, "class_embedding", None) is not None and "class_embedding.weight" not in same:
            unet.class_embedding.weight.zero_()


def ema_unet_from(out_dir) -> object:
    """The EMA UNet saved in ``out_dir`` (a pipeline folder), for sampling during training."""
    from .loader import load_model
    return load_model(str(out_dir)).unet
