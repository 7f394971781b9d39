"""Errors of the models package: one clear line each, never a traceback for the user."""


class ModelLoadError(ValueError):
    """A checkpoint could not be found, read or trusted. The message says what and how to fix it."""
