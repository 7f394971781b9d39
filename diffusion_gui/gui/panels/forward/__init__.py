"""The Forward panel: scrub the noising q(x_t | x_0) of an image and see the numbers behind it.

A view (``panel.py``, ``views.py``, ``sources.py``) over the Qt-free session
:mod:`diffusion_gui.sessions.forward` (the maths, the chain and its cache, the settings), plus
the process-wide background import of torch (``gui/backend.py``, re-exported). Timesteps are the paper's ``t``:
``t = 0`` is the clean image, ``t = T`` (nearly) pure noise.
"""
from __future__ import annotations

from ....sessions.forward import (  # noqa: F401 - re-exported for tests, benchmarks, scripts
    CHAIN_BUDGET_BYTES,
    SCHEDULES,
    SIZES,
    ChainCache,
    ForwardMath,
    ForwardSettings,
    chain_seed,
    draw_noise,
    hist_edges,
)
from ...backend import backend_importing, backend_ready, ensure_backend, stop_backend_job
from .panel import ForwardPanel

__all__ = ["ForwardPanel", "ensure_backend", "backend_ready", "backend_importing",
           "stop_backend_job"]
