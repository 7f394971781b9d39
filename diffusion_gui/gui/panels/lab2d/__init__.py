"""The 2-D lab panel (issue #16): a whole 2-D distribution diffusing, learned by three denoisers
and sampled back, with the exact reference where there is one. A view over
:class:`diffusion_gui.sessions.lab2d.Lab2DSession`; building it imports no torch (the session is
made in the background)."""
from .panel import Lab2DPanel

__all__ = ["Lab2DPanel"]
