"""Errors of the models package (the one family lives in :mod:`diffusion_gui.errors`)."""
from ..errors import ModelLoadError

__all__ = ["ModelLoadError"]
