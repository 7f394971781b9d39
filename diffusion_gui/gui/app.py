"""Start the explorer: QApplication, the main window, a clean shutdown.

Start-up order (the window must appear fast): Qt and pyqtgraph are imported, the window is shown,
and only then torch (and later diffusers, by the model loader) are imported in background
threads; the start-up image is read with numpy + Pillow only, so it shows at once.

Quitting must be quick at any moment (tests/gui/test_quit.py: under 2 s). Closing the window
cancels and joins every job. Work that only reads and cannot be cancelled midway (importing
torch, loading a model: ``abandonable`` jobs, see :mod:`.workers`) is not waited for: if such a
job is still running after the shutdown, the process ends at once with ``os._exit`` (settings
are already written; the job has nothing to lose). Otherwise ``run_gui`` returns normally, and
the interpreter's final garbage collections, which took 1-2 s over the ~400 000 objects of
torch and diffusers, are skipped (``gc.freeze`` at exit; the memory goes back to the OS).
"""
from __future__ import annotations

import atexit
import gc
import os
import sys


def run_gui(model: str | None = None, image: str | None = None, argv=None) -> int:
    """Open the explorer on ``model`` (default: the built-in model) and ``image`` (default: a
    built-in sample photo); return the exit status when the window closes."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(list(sys.argv if argv is None else argv))
    app.setApplicationName("diffusion-gui")
    app.setApplicationDisplayName("diffusion-gui")
    app.setOrganizationName("diffusion-gui")

    from .context import AppContext
    from .main_window import MainWindow
    from .workers import abandon_at_quit, abandoned_jobs

    abandon_at_quit()       # at quit, an import or a model being read is not waited for
    ctx = AppContext()
    win = MainWindow(ctx, lazy=True)
    win.show()
    # after the first paint: the start-up image and torch in the background; the other panels
    # once torch is in (built on the GUI thread, they would slow the forward panel's start)
    from .backend import ensure_backend
    win.call_after_first_paint(lambda: win.start(model=model, image=image))
    win.call_after_first_paint(lambda: ensure_backend(win.build_remaining_panels))
    rc = app.exec()
    win.shutdown()          # idempotent: closeEvent has usually done it already
    if abandoned_jobs():    # e.g. quit while torch was still importing
        ctx.settings.sync()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(rc))
    atexit.register(gc.freeze)      # runs first at exit: no collection over torch's objects
    return int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_gui())
