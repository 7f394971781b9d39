"""torch and the core maths, imported once per process off the GUI thread.

The main window starts the import after its first paint (:func:`ensure_backend`); the Forward
panel waits for it before it computes anything. What is imported is
:func:`diffusion_gui.sessions.forward.import_backend`.
"""
from __future__ import annotations

import sys
import threading
from typing import Callable

from ..sessions.forward import import_backend
from .workers import JobSlot

_ready = threading.Event()
_waiters: list[Callable[[], None]] = []
_slot = JobSlot()


def backend_ready() -> bool:
    """True once torch and the core maths are imported (see :func:`ensure_backend`)."""
    return _ready.is_set()


def backend_importing() -> bool:
    """True while the import job runs."""
    return _slot.is_running()


def _import():
    import_backend()
    _ready.set()            # in the worker: true as soon as the modules are there
    return True


def _done(_):
    from ..core.threads import limit_this_thread
    limit_this_thread(1)     # torch on the GUI thread never starts an OpenMP pool (core/threads.py)
    waiters = list(_waiters)
    _waiters.clear()
    for cb in waiters:
        try:
            cb()
        except RuntimeError:         # its widget was deleted meanwhile
            pass


def _failed(msg):
    print(f"diffusion-gui: cannot import torch: {msg}", file=sys.stderr)


def ensure_backend(callback: Callable[[], None] | None = None) -> None:
    """Import torch and ``diffusion_gui.core`` off the GUI thread (once), then call ``callback``
    in the GUI thread. Right away if they are already imported."""
    if _ready.is_set() and not _slot.is_running():
        if callback:
            callback()
        return
    if callback:
        _waiters.append(callback)
    if _slot.is_running():
        return
    # an import: read-only, not awaited at quit
    _slot.start(_import, background=True, on_done=_done, on_failed=_failed, abandonable=True)


def stop_backend_job():
    """Join the import thread if it is still running (called on shutdown)."""
    _slot.shutdown(timeout_ms=60000)
