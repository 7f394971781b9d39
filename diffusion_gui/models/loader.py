"""Load a diffusers DDPM checkpoint into our maths: a UNet2DModel plus a GaussianDiffusion.

Accepted: a built-in name (``diffusion-gui models``), a local folder in either diffusers layout
— flat (``config.json``, ``diffusion_pytorch_model.safetensors`` or ``.bin``,
``scheduler_config.json``) or pipeline (``model_index.json``, ``unet/``, ``scheduler/``) — or a
hub id looked up in the local Hugging Face cache only (nothing is downloaded).

Weights load from safetensors, or from ``.bin`` only through ``torch.load(weights_only=True)``,
which refuses pickled code. ``import diffusers`` happens here, lazily, never at start-up.
"""
from __future__ import annotations

import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidParameter
from .conditioning import MAX_GUIDANCE, ClassInfo, guided_eps, labels_for, read_class_info
from .errors import ModelLoadError

WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
DDPM_DEFAULTS = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4,
                 "beta_end": 0.02, "variance_type": "fixed_small", "clip_sample": True,
                 "clip_sample_range": 1.0, "prediction_type": "epsilon"}
_BETA_SCHEDULES = {"linear": "linear", "scaled_linear": "scaled_linear", "squaredcos_cap_v2": "cosine",
                   "sigmoid": "sigmoid"}
_VARIANCES = {"fixed_small": "fixed_small", "fixed_small_log": "fixed_small",
              "fixed_large": "fixed_large", "fixed_large_log": "fixed_large",
              "learned_range": "learned_range"}


@dataclass
class LoadedModel:
    """A ready-to-sample model. ``model(x [B,C,H,W], i LongTensor [B]) -> output [B,C,H,W]``,
    with ``i = t - 1`` the training schedule's index."""

    name: str
    source: str
    unet: object
    diffusion: object
    scheduler_config: dict
    warnings: list = field(default_factory=list)
    classes: ClassInfo | None = None        # a class-conditional model's labels (conditioning.py)
    device: object = None                   # torch.device of the network (None: the CPU)
    _placed: dict = field(default_factory=dict, repr=False, compare=False)
    _origin: object = field(default=None, repr=False, compare=False)    # a placed copy's CPU model

    def on(self, device="cpu", dtype="float32") -> "LoadedModel":
        """This model with its network on ``device`` in ``dtype`` (names or torch objects, as
        :func:`~diffusion_gui.core.devices.resolve_device` / ``resolve_dtype`` take them): itself
        on the CPU in float32, else a copy made once and kept (the latest placement only, so a
        GPU holds one copy). Raises :class:`InvalidParameter` for a device this machine lacks."""
        import dataclasses

        from ..core.devices import resolve_device, resolve_dtype
        from .placement import PlacedUNet
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        base = self._origin or self                 # a placed copy places from its CPU original
        if dev.type == "cpu" and str(dt) == "torch.float32":
            return base
        key = (str(dev), str(dt))
        with _lock:
            if key not in base._placed:
                base._placed.clear()
                base._placed[key] = dataclasses.replace(base, unet=PlacedUNet(base.unet, dev, dt),
                                                        device=dev, _placed={}, _origin=base)
            return base._placed[key]

    def __call__(self, x, i):
        """The network's output; a class-conditional model predicts unconditionally (its null
        label) or, without one, for class ``k mod N`` in sample ``k``."""
        if self.classes is None:
            return self.unet(x, i).sample
        return self.conditioned("any")(x, i)

    def conditioned(self, class_label="any", guidance: float = 1.0):
        """``model(x [B,C,H,W], i [B]) -> eps`` for the class choice of
        :func:`~.conditioning.labels_for` (an index, ``"all"``, ``"any"``) guided with scale
        ``guidance`` (classifier-free; 1 = plain conditional). The labels follow the batch size
        of each call."""
        info, unet = self.classes, self.unet
        if info is None and (class_label not in (None, "any") or float(guidance) != 1.0):
            raise InvalidParameter("class_label" if class_label not in (None, "any") else "guidance",
                                   f"needs a class-conditional model; {self.name} is unconditional")
        if not 0 <= float(guidance) <= MAX_GUIDANCE:
            raise InvalidParameter("guidance", f"must be in 0..{MAX_GUIDANCE:g}")
        if info is not None and not info.can_guide and float(guidance) != 1.0:
            raise InvalidParameter("guidance", f"needs a model trained with a null label; {self.name} "
                                               f"has none (it samples at guidance 1 only)")
        labels_cache: dict = {1: labels_for(info, class_label, 1)}     # checks the choice now

        def model(x, i):
            b = x.shape[0]
            if b not in labels_cache:
                labels_cache[b] = labels_for(info, class_label, b)
            return guided_eps(unet, x, i, labels_cache[b], guidance,
                              None if info is None else info.null_label)
        return model

    @property
    def sample_size(self) -> int:
        s = self.unet.config.sample_size
        return int(s[0] if isinstance(s, (list, tuple)) else s)

    @property
    def in_channels(self) -> int:
        return int(self.unet.config.in_channels)

    @property
    def clip_sample(self) -> bool:
        return bool(self.scheduler_config.get("clip_sample", True))

    @property
    def num_timesteps(self) -> int:
        return self.diffusion.num_timesteps

    def info(self) -> dict:
        """Plain facts for display: resolution, channels, T, schedule, variance, parameters."""
        return {"name": self.name, "source": self.source,
                "resolution": self.sample_size, "channels": self.in_channels,
                "timesteps": self.num_timesteps,
                "schedule": self.scheduler_config.get("beta_schedule", "linear"),
                "variance": self.diffusion.variance,
                "prediction": self.diffusion.prediction_type,
                "clip_sample": self.clip_sample,
                "classes": None if self.classes is None else list(self.classes.names),
                "parameters": sum(p.numel() for p in self.unet.parameters())}


# ---------------------------------------------------------------- locating
def resolve(spec: str) -> tuple[str, Path]:
    """``(display name, folder)`` for a built-in name, a folder, or a cached hub id."""
    from .registry import builtin_path
    spec = str(spec).strip()
    if not spec:
        raise ModelLoadError("no model given")
    p = builtin_path(spec)
    if p is not None:
        return spec, p
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{spec}: a model is a folder (config.json + weights), not a file")
        return path.name, path.resolve()
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return spec, _from_hf_cache(spec)
    raise ModelLoadError(f"{spec}: no such built-in model, folder or hub id "
                         f"(built-in: {', '.join(_builtin_names()) or 'none'})")


def _builtin_names():
    from .registry import builtin_names
    return builtin_names()


def _from_hf_cache(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        raise ModelLoadError(
            f"{repo_id} is not in the local Hugging Face cache and nothing is downloaded here; "
            f"on a machine with internet run `huggingface-cli download {repo_id}` (or "
            f"`hf download {repo_id}`), or pass the model's folder") from None


def _layout(folder: Path) -> tuple[Path, Path | None]:
    """(unet folder, scheduler_config.json or None) for flat or pipeline layouts."""
    if not os.access(folder, os.R_OK | os.X_OK):
        raise ModelLoadError(f"{folder}: folder is not readable")
    if (folder / "model_index.json").is_file() or (folder / "unet").is_dir():
        unet_dir = folder / "unet"
        sched = folder / "scheduler" / "scheduler_config.json"
    else:
        unet_dir = folder
        sched = folder / "scheduler_config.json"
    if not (unet_dir / "config.json").is_file():
        raise ModelLoadError(f"{folder}: no config.json (expected a diffusers UNet2DModel folder, "
                             f"flat or with unet/ and scheduler/)")
    return unet_dir, (sched if sched.is_file() else None)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path}: unreadable JSON ({type(e).__name__}: {e})".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return data


# ---------------------------------------------------------------- weights
def load_state_dict(unet_dir: Path) -> dict:
    """Tensors from safetensors, else from ``.bin`` with ``weights_only=True`` (no code runs)."""
    import torch
    st, binf = (unet_dir / n for n in WEIGHT_NAMES)
    if st.is_file():
        from safetensors.torch import load_file
        try:
            return load_file(str(st))
        except Exception as e:
            raise ModelLoadError(f"{st}: corrupt or truncated safetensors file ({str(e)[:120]})") from None
    if binf.is_file():
        try:
            sd = torch.load(str(binf), map_location="cpu", weights_only=True)
        except Exception as e:
            msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
            if "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e):
                raise ModelLoadError(f"{binf}: refused: the file contains pickled code or objects, "
                                     f"not just tensors (nothing was executed)") from None
            raise ModelLoadError(f"{binf}: corrupt or unreadable weights ({msg})") from None
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise ModelLoadError(f"{binf}: not a state dict of tensors")
        return sd
    raise ModelLoadError(f"{unet_dir}: no weights ({' or '.join(WEIGHT_NAMES)})")


def build_unet_from_config(config: dict, where: Path):
    from .hf import diffusers_class
    UNet2DModel = diffusers_class("UNet2DModel")
    cls = config.get("_class_name", "UNet2DModel")
    if cls == "UNet2DConditionModel":
        raise ModelLoadError(f"{where}: a UNet2DConditionModel (text-conditional, e.g. Stable "
                             f"Diffusion), which is not supported: pixel-space UNet2DModel DDPMs "
                             f"only, unconditional or class-conditional")
    if cls != "UNet2DModel":
        raise ModelLoadError(f"{where}: a {cls}, but only UNet2DModel (DDPM) models are supported, "
                             f"unconditional or class-conditional")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return UNet2DModel.from_config(config)
    except Exception as e:
        raise ModelLoadError(f"{where}: invalid UNet config ({str(e).splitlines()[0][:160]})") from None


def _check_size(config: dict, unet_dir: Path):
    """Refuse, before any memory is allocated, a config.json that describes a bigger network
    than the weights file can hold: built for real, a lying config (say block_out_channels
    [4096, 4096]) would make diffusers allocate and randomly initialise gigabytes first. The
    network is built on torch's ``meta`` device (shapes only) and its parameters counted; a
    stored parameter takes at least 2 bytes (float16)."""
    import torch
    weights = next((unet_dir / n for n in WEIGHT_NAMES if (unet_dir / n).is_file()), None)
    if weights is None:
        raise ModelLoadError(f"{unet_dir}: no weights ({' or '.join(WEIGHT_NAMES)})")
    with torch.device("meta"):
        n = sum(p.numel() for p in build_unet_from_config(config, unet_dir / "config.json").parameters())
    size = weights.stat().st_size
    if 2 * n > size + 2 ** 20:
        raise ModelLoadError(f"{unet_dir}: weights do not match config.json (it describes "
                             f"{n / 1e6:.1f} M parameters; {weights.name} holds at most "
                             f"{size / 2e6:.1f} M)")


def _load_unet(unet_dir: Path):
    import torch
    config = _read_json(unet_dir / "config.json")
    _check_config(config, unet_dir / "config.json")
    _check_size(config, unet_dir)
    unet = build_unet_from_config(config, unet_dir / "config.json")
    sd = load_state_dict(unet_dir)
    try:
        missing, unexpected = unet.load_state_dict(sd, strict=False)
    except RuntimeError as e:
        first = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), str(e).splitlines()[0])
        raise ModelLoadError(f"{unet_dir}: weights do not match config.json ({first[:200]})") from None
    if missing or unexpected:
        raise ModelLoadError(f"{unet_dir}: weights do not match config.json "
                             f"({len(missing)} missing, {len(unexpected)} unexpected tensors)")
    for k, v in sd.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ModelLoadError(f"{unet_dir}: weights contain NaN or infinity ({k})")
    return unet.float().eval().requires_grad_(False)


# ---------------------------------------------------------------- scheduler
def diffusion_from_scheduler_config(cfg: dict):
    """Our ``GaussianDiffusion`` from a diffusers DDPM scheduler config (missing keys: DDPM defaults)."""
    from ..core import GaussianDiffusion, NoiseSchedule
    c = {**DDPM_DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    T = int(c["num_train_timesteps"])
    if c.get("trained_betas"):
        schedule = NoiseSchedule(c["trained_betas"], name="trained")
    else:
        name = _BETA_SCHEDULES.get(c["beta_schedule"])
        if name is None:
            raise ModelLoadError(f"unsupported beta_schedule {c['beta_schedule']!r}")
        kw = {} if name == "cosine" else {"beta_start": float(c["beta_start"]), "beta_end": float(c["beta_end"])}
        schedule = NoiseSchedule.from_name(name, T, **kw)
    variance = _VARIANCES.get(c["variance_type"])
    if variance is None:
        raise ModelLoadError(f"unsupported variance_type {c['variance_type']!r} (supported: "
                             f"fixed_small, fixed_large, learned_range)")
    return GaussianDiffusion(schedule, variance=variance, prediction_type=c["prediction_type"],
                             clip_range=float(c["clip_sample_range"]))


MAX_SAMPLE_SIZE = 2048


def _check_config(config: dict, where: Path):
    """Refuse, before anything is built, a config.json whose size or channels cannot be sampled:
    a missing / non-integer / non-positive / absurd / non-square ``sample_size``, or channels other
    than 1 (grey) or 3 (RGB), e.g. a latent-diffusion UNet that would need a VAE. A learned-variance
    model outputs twice its input channels (2 or 6)."""
    size = config.get("sample_size")
    if isinstance(size, (list, tuple)):
        if len(size) != 2 or size[0] != size[1]:
            raise ModelLoadError(f"{where}: sample_size {list(size)} is not square; only square "
                                 f"models are supported")
        size = size[0]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SAMPLE_SIZE:
        raise ModelLoadError(f"{where}: sample_size {size!r} is not a resolution in pixels "
                             f"(expected a whole number 1..{MAX_SAMPLE_SIZE})")
    for key, allowed in (("in_channels", (1, 3)), ("out_channels", (1, 2, 3, 6))):
        c = config.get(key, 3)
        if isinstance(c, bool) or not isinstance(c, int) or c not in allowed:
            raise ModelLoadError(f"{where}: {key} {c!r}; only pixel-space models with 1 (grey) or "
                                 f"3 (RGB) channels (twice that out, with a learned variance) are supported")


def _check_consistent(unet, folder: Path, variance: str):
    """The UNet's output channels must be what the scheduler's ``variance`` reads: ``C`` for a
    fixed variance, ``2C`` (prediction, then v) for ``learned_range``."""
    cfg = unet.config
    want = 2 * cfg.in_channels if variance == "learned_range" else cfg.in_channels
    if cfg.out_channels != want:
        raise ModelLoadError(f"{folder}: out_channels {cfg.out_channels} with in_channels {cfg.in_channels} "
                             f"and variance_type {variance}; that needs out_channels {want}")
    size = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
    n_down = len(cfg.down_block_types) - 1
    if size % (2 ** n_down):
        raise ModelLoadError(f"{folder}: sample_size {size} is not divisible by 2^{n_down}")


# ---------------------------------------------------------------- public entry
_cache: dict = {}          # key -> LoadedModel, least recently used first
_lock = threading.Lock()
#: models kept loaded: the one in use and the one before it (switching back is instant). A
#: cache of every model ever loaded kept each one for good: a few of google/ddpm-church-256's
#: 455 MB, or every checkpoint a training run rewrote (a new modification time, a new key).
CACHE_MODELS = 2


def _remember(key, model):
    """Keep ``model`` as the most recent; drop an older version of its folder and the least
    recently used beyond :data:`CACHE_MODELS`. Call under ``_lock``."""
    for k in [k for k in _cache if k[0] == key[0] and k != key]:
        del _cache[k]
    _cache.pop(key, None)
    _cache[key] = model
    while len(_cache) > CACHE_MODELS:
        del _cache[next(iter(_cache))]


def load_model(spec: str) -> LoadedModel:
    """Load (once; cached by folder and modification time, the last :data:`CACHE_MODELS`) the
    model named by ``spec``.

    Raises :class:`ModelLoadError` with a one-line message on any problem.
    """
    name, folder = resolve(spec)
    unet_dir, sched_path = _layout(folder)
    key = (str(folder), *(_mtime(p) for p in (unet_dir / "config.json", sched_path, *(unet_dir / n for n in WEIGHT_NAMES))))
    with _lock:
        if key in _cache:
            _remember(key, _cache[key])
            return _cache[key]
    notes = []
    if sched_path is None:
        sched_cfg = dict(DDPM_DEFAULTS)
        notes.append(f"{folder}: no scheduler_config.json; using DDPM defaults "
                     f"(linear 1e-4..0.02, T=1000, fixed_small, epsilon)")
        warnings.warn(notes[-1], stacklevel=2)
    else:
        sched_cfg = _read_json(sched_path)
    unet = _load_unet(unet_dir)
    try:
        diffusion = diffusion_from_scheduler_config(sched_cfg)
    except (ValueError, TypeError, KeyError) as e:
        raise ModelLoadError(f"{sched_path}: {e}") from None
    _check_consistent(unet, folder, diffusion.variance)
    model = LoadedModel(name, str(folder), unet, diffusion, {**DDPM_DEFAULTS, **sched_cfg}, notes,
                        read_class_info(folder, unet.config))
    with _lock:
        _remember(key, model)
    return model


def _mtime(p):
    try:
        return None if p is None else os.stat(p).st_mtime_ns
    except OSError:
        return None


def clear_cache():
    with _lock:
        _cache.clear()
