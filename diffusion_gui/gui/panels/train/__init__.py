"""The Train panel: train a small DDPM on the digits or a folder of images, and watch it learn.

A view (``panel.py``; ``controls.py`` the settings column, ``views.py`` the preview, strip and
plots, ``strip.py`` the sample strip) over the Qt-free session
:mod:`diffusion_gui.sessions.training` (the run, its history, the files it writes, the settings).
"""
from __future__ import annotations

from .panel import TrainPanel
from .runs_folder import default_runs_dir
from .strip import SampleStrip

__all__ = ["TrainPanel", "SampleStrip", "default_runs_dir"]
