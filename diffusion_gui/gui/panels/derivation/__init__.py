"""The Derivation panel (a view over :mod:`diffusion_gui.sessions.derivation`): ``panel.py``
binds the list of steps, the equation, the numbers and the link; ``plot.py`` draws a step's
plot data."""
from .panel import DerivationPanel

__all__ = ["DerivationPanel"]
