"""Thread-safe access to diffusers classes.

``diffusers`` resolves its classes lazily on first attribute access, and that is not thread-safe:
two threads doing ``from diffusers import UNet2DModel`` at once (a model loading in the
background while the train panel builds one) can get ``ImportError``/``AttributeError``. Every
diffusers class this package uses is fetched through :func:`diffusers_class`, under one lock.
"""
from __future__ import annotations

import importlib
import threading

_lock = threading.Lock()


def diffusers_class(name: str):
    """``diffusers.<name>`` (e.g. ``"UNet2DModel"``), resolved under a process-wide lock."""
    with _lock:
        return getattr(importlib.import_module("diffusers"), name)
