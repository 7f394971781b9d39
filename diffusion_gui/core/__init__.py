"""Pure torch + numpy maths of DDPM. Never imports Qt or the GUI.

Names are imported lazily, so that ``diffusion_gui.core.images`` (numpy + Pillow) can be used
during GUI start-up without paying for ``import torch``.
"""
from importlib import import_module

_EXPORTS = {
    "GaussianDiffusion": "diffusion", "NoiseSchedule": "schedule", "extract": "schedule",
    "SCHEDULE_NAMES": "schedule", "StepOutput": "sampling", "ddpm_sample": "sampling",
    "ddim_sample": "sampling", "sampler": "sampling", "run": "sampling", "strided_indices": "sampling",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
