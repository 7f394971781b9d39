"""The loss panel (a view over :mod:`diffusion_gui.sessions.losses`): ``panel.py`` binds the
controls to a run; ``views.py`` builds and draws the plots; ``text.py`` writes the summary and
the read-out."""
from .panel import LossPanel

__all__ = ["LossPanel"]
