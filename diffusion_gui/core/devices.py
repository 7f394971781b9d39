"""Where the network runs: device names (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) and
the network's precision (``float32``, ``float16``, ``bfloat16``).

Only the network moves: every sampler draws its noise on a CPU ``torch.Generator`` and moves it
to the device (:mod:`.sampling`), and the step's and the bound's maths stays float32 / float64,
so one seed gives the same images on every device, to float tolerance. ``auto`` is CUDA, then
Apple MPS, then the CPU. A name that cannot be used here raises
:class:`~diffusion_gui.errors.InvalidParameter` naming what is available.
"""
from __future__ import annotations

import torch

from ..errors import InvalidParameter

__all__ = ["DEVICE_CHOICES", "DTYPES", "available_devices", "resolve_device", "resolve_dtype",
           "device_label", "synchronize"]

#: what ``--device`` accepts (``cuda:N`` too)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
#: the network's precision, by name
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The devices of this machine, best first: ``cuda:0 .. cuda:N-1``, ``mps``, then ``cpu``."""
    found = [f"cuda:{k}" for k in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if _mps_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` for ``name``: ``auto`` (or None) picks the first of
    :func:`available_devices`; ``cuda`` means ``cuda:0``. Raises :class:`InvalidParameter`
    (``device``) for a malformed name or one this machine does not have."""
    if isinstance(name, torch.device):
        name = str(name)
    text = (name or "auto").strip().lower()
    have = available_devices()
    if text == "auto":
        return torch.device(have[0])
    if text == "cuda":
        text = "cuda:0"
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise InvalidParameter("device", f"must be auto, cpu, cuda, cuda:N or mps, not {name!r}")
    if text not in have:
        raise InvalidParameter("device", f"{text} is not available on this machine "
                                         f"(available: {', '.join(have)})")
    return torch.device(text)


def resolve_dtype(name: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The network's ``torch.dtype`` for ``name`` (None: float32) on ``device``; raises
    :class:`InvalidParameter` (``dtype``) for an unknown name or one the device cannot run."""
    if isinstance(name, torch.dtype):
        return name
    key = (name or "float32").strip().lower()
    if key not in DTYPES:
        raise InvalidParameter("dtype", f"must be one of {', '.join(DTYPES)}, not {name!r}")
    dtype = DTYPES[key]
    if dtype is torch.float16 and device.type == "cpu":
        raise InvalidParameter("dtype", "float16 is for GPUs: on the CPU it runs about 50 times "
                                        "slower than float32 (use float32, or bfloat16)")
    if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InvalidParameter("dtype", f"bfloat16 is not supported by {device}; use float16")
    return dtype


def device_label(device: torch.device) -> str:
    """A short name for display: ``CPU``, ``MPS``, or ``cuda:0 (NVIDIA H200)``."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return device.type.upper()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (for timing); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
