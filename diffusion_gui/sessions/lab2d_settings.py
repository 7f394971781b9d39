"""The 2-D lab's settings and names, torch-free: the panel builds and restores its settings at
start-up without importing torch (the session, which needs it, is made in the background).

The data set names and point limits repeat :mod:`diffusion_gui.core.toy2d`'s (which imports
torch); ``tests/sessions/test_lab2d_paths.py`` checks that they agree.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.names import SAMPLERS, SCHEDULE_NAMES
from .settings import setting

__all__ = ["Lab2DSettings", "MODELS", "DATA_CHOICES", "DATASETS", "CUSTOM_SOURCES", "REVERSE_VIEWS",
           "FIELDS", "MAX_POINTS", "DEFAULT_POINTS", "MIN_STD", "MAX_STD", "BOUND_PENDING"]

DATASETS = ("moons", "swissroll", "gaussians8", "checkerboard", "spiral", "gmm")
MAX_POINTS = 20_000
DEFAULT_POINTS = 2_000
MODELS = ("mlp", "exact", "empirical")
DATA_CHOICES = DATASETS + ("custom",)
#: where hand-made (``custom``) data came from
CUSTOM_SOURCES = ("draw", "image", "text")
#: which reverse run the lab shows
REVERSE_VIEWS = ("both", "ddpm", "ddim")
#: what the field arrows show: the step to the predicted x_0, or the score
FIELDS = ("x0", "score")
#: a mixture component's std, dragged or typed
MIN_STD, MAX_STD = 0.03, 3.0
#: what the numbers view shows in the place of the held-out bound before it is computed
BOUND_PENDING = ("Bound on held-out points (nats/dim, Gaussian decoder): compare the denoisers "
                 "to compute it")


#: the MLP's reverse variance: fixed (L_simple), or learned (improved DDPM, L_hybrid)
MLP_VARIANCES = ("fixed_small", "learned_range")


@dataclass
class Lab2DSettings:
    """The lab's settings (one dataclass, defaults written once)."""

    data: str = setting("moons", choices=DATA_CHOICES)
    n: int = setting(DEFAULT_POINTS, lo=1, hi=MAX_POINTS)
    seed: int = setting(0, lo=0, hi=2 ** 31 - 1)
    schedule: str = setting("linear", choices=SCHEDULE_NAMES)
    timesteps: int = setting(1000, lo=2, hi=1000)
    model: str = setting("mlp", choices=MODELS)
    sampler: str = setting("ddpm", choices=SAMPLERS)
    steps: int = setting(1000, lo=1, hi=1000)
    batch: int = setting(256, lo=8, hi=4096)
    lr: float = setting(1e-3, lo=1e-5, hi=1e-1)
    width: int = setting(128, lo=8, hi=1024)
    depth: int = setting(3, lo=1, hi=8)
    variance: str = setting("fixed_small", choices=MLP_VARIANCES)   # the MLP's: learned -> L_hybrid
    # the panel's view of it
    source: str = setting("draw", choices=CUSTOM_SOURCES)    # of custom data
    text: str = setting("DDPM")
    t: int = setting(0, lo=0, hi=1000)                       # the t slider
    particles: int = setting(2000, lo=10, hi=MAX_POINTS)    # of a reverse run
    view: str = setting("both", choices=REVERSE_VIEWS)
    field: str = setting("x0", choices=FIELDS)
    show_field: bool = setting(True)
    show_grid: bool = setting(False)
