"""One error family for everything a user can fix: bad input, a file that cannot be used, a
refused model, an export that cannot be written.

Library code raises a :class:`UserError` (or a subclass) with a message in *parameter* names
("batch must be in 1..1024"); the CLI (:mod:`diffusion_gui.cli`) turns it into one line on
stderr and exit status 2, with flag names where the parameter is a flag; the GUI shows
:func:`user_message` in its banner or dialog. Anything else is a bug and keeps its traceback.

This module imports nothing of ours: every layer may raise these.
"""
from __future__ import annotations

import os

__all__ = ["UserError", "InvalidParameter", "ImageLoadError", "ModelLoadError", "ExportError",
           "NonFiniteError", "user_message", "one_line"]


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


class UserError(Exception):
    """Something the user can act on. ``user_message()`` is one line, with no traceback."""

    def user_message(self) -> str:
        return one_line(str(self)) or type(self).__name__


class InvalidParameter(UserError, ValueError):
    """A parameter outside what it accepts: ``InvalidParameter("batch", "must be in 1..1024")``.

    ``name`` is the parameter's name in the Python API (the CLI maps it to its flag,
    :meth:`phrased`); ``subject`` (optional) names the value the problem is about, e.g. a path.
    """

    def __init__(self, name: str, requirement: str, *, subject: str | None = None):
        self.name, self.requirement, self.subject = name, requirement, subject
        super().__init__(self.phrased(name))

    def phrased(self, name: str) -> str:
        """The message with the parameter called ``name`` (e.g. ``'--batch'``)."""
        head = f"{self.subject}: " if self.subject else ""
        return f"{head}{name} {self.requirement}"


class ImageLoadError(UserError, ValueError):
    """A file could not be read as an image. ``str(e)`` is one line naming the file.

    Attributes: ``path`` (as given) and ``problem`` (the reason alone, for a message box).
    """

    def __init__(self, path, problem: str):
        self.path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
        self.problem = one_line(problem)
        super().__init__(f"cannot load image '{self.path}': {self.problem}")


class ModelLoadError(UserError, ValueError):
    """A checkpoint could not be found, read or trusted. The message says what and how to fix it."""


class ExportError(UserError, ValueError):
    """An export could not be written. ``str(e)`` is one line for the user."""


class NonFiniteError(UserError, ValueError):
    """NaN or infinity appeared in a computation (x_t or x0_pred while sampling, a loss)."""


def user_message(e: BaseException, *, memory_hint: str = "") -> str | None:
    """The one-line message for an error the user can act on; None for a bug.

    A :class:`UserError` says its own message; ``MemoryError`` says so, followed by
    ``memory_hint`` (e.g. "try a smaller batch"); an ``OSError`` names the file and the reason.
    """
    if isinstance(e, UserError):
        return e.user_message()
    if isinstance(e, MemoryError):
        return "not enough memory" + (f": {memory_hint}" if memory_hint else "")
    if isinstance(e, OSError):
        reason = one_line(e.strerror or str(e) or type(e).__name__)
        return f"{e.filename}: {reason}" if e.filename else reason
    return None
