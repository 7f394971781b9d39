"""Headless subcommands behind ``diffusion-gui`` (argparse lives in :mod:`diffusion_gui.cli`).

One module a family of commands; ``cmd_<name>(args, model_spec)`` for each subcommand, which
:func:`diffusion_gui.cli.main` finds here by name.
"""
from __future__ import annotations

from ..sessions.sampling import make_sampler
from .common import GRID_PX, grid_scale
from .derive import cmd_derive
from .images import cmd_forward, cmd_sample, cmd_vlb
from .reverse import cmd_compare, cmd_interpolate, cmd_invert
from .toy import cmd_kl, cmd_toy
from .train import cmd_models, cmd_train

__all__ = ["make_sampler", "GRID_PX", "grid_scale", "cmd_forward", "cmd_sample", "cmd_vlb",
           "cmd_kl", "cmd_toy", "cmd_models", "cmd_train", "cmd_compare", "cmd_invert",
           "cmd_interpolate", "cmd_derive"]
