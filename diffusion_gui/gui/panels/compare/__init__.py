"""The Compare panel: one x_T through several samplers (the grid), forks of a run (when does a
sample commit?), and DDIM inversion with interpolation. A view over
:mod:`diffusion_gui.sessions.compare`, :mod:`~diffusion_gui.sessions.forks` and
:mod:`~diffusion_gui.sessions.inversion`."""
from __future__ import annotations

from .panel import ComparePanel

__all__ = ["ComparePanel"]
