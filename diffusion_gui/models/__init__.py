"""Qt-free model loading, training and the built-in registry."""
from .errors import ModelLoadError
from .registry import DEFAULT_MODEL, builtin_names, list_models

__all__ = ["ModelLoadError", "DEFAULT_MODEL", "builtin_names", "list_models", "load_model"]


def load_model(spec):
    """See :func:`diffusion_gui.models.loader.load_model` (imported lazily: it pulls in torch)."""
    from .loader import load_model as _load
    return _load(spec)
