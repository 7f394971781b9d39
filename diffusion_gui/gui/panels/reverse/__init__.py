"""The reverse panel (a view over :mod:`diffusion_gui.sessions.reverse`): ``panel.py`` binds the
widgets of ``layout.py`` to a run; ``display.py`` and ``film.py`` show it."""
from .panel import LIVE_RATE, TEXT_RATE, ReversePanel

__all__ = ["ReversePanel", "LIVE_RATE", "TEXT_RATE"]
