"""Start the explorer: QApplication, the main window, a clean shutdown.

Start-up order (the window must appear fast): Qt and pyqtgraph are imported, the window is shown,
and only then torch (and later diffusers, by the model loader) are imported in background
threads; the start-up image is read with numpy + Pillow only, so it shows at once.
"""
from __future__ import annotations

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

    ctx = AppContext()
    win = MainWindow(ctx, lazy=True)
    win.show()
    # after the first paint: the start-up image and torch in the background; the other panels
    # once torch is in (built on the GUI thread, they would slow the forward panel's start)
    from .panels.forward import ensure_backend
    win.call_after_first_paint(lambda: win.start(model=model, image=image))
    win.call_after_first_paint(lambda: ensure_backend(win.build_remaining_panels))
    rc = app.exec()
    win.shutdown()          # idempotent: closeEvent has usually done it already
    return int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_gui())
