"""Settings I/O: the app's QSettings file, and one load / save for the settings dataclasses of
:mod:`diffusion_gui.sessions.settings` (the only place that moves them in and out of Qt)."""
from __future__ import annotations

import os
import warnings
from typing import TypeVar

from PySide6.QtCore import QSettings

from ..sessions.settings import from_raw, to_raw

S = TypeVar("S")

SETTINGS_VERSION = 1


def make_settings() -> QSettings:
    """The app's QSettings (INI). Tests set ``DIFFUSION_GUI_SETTINGS`` to keep theirs apart.

    A corrupt file, or one from another settings version, is set aside (renamed ``*.bad``) with
    a warning and defaults are used; an unwritable settings folder leaves the app running with
    settings kept in memory for the session.
    """
    suffix = os.environ.get("DIFFUSION_GUI_SETTINGS", "")
    name = "diffusion-gui" + (f"-{suffix}" if suffix else "")
    s = QSettings(QSettings.IniFormat, QSettings.UserScope, "diffusion-gui", name)
    problem = None
    if s.status() == QSettings.FormatError:
        problem = "is corrupt"
    elif s.allKeys() and not s.contains("settings_version"):
        problem = "has no version (corrupt, or from an older release)"
    else:
        try:
            v = int(s.value("settings_version", SETTINGS_VERSION))
        except (TypeError, ValueError):
            v = -1
        if v != SETTINGS_VERSION:
            problem = f"is from another version ({v})"
    if problem:
        path = s.fileName()
        warnings.warn(f"settings file {path} {problem}; using defaults", stacklevel=2)
        try:
            os.replace(path, path + ".bad")
        except OSError:
            pass
        s = QSettings(QSettings.IniFormat, QSettings.UserScope, "diffusion-gui", name)
        s.clear()
    s.setValue("settings_version", SETTINGS_VERSION)
    return s


def load(settings: QSettings, cls: type[S], group: str = "") -> S:
    """The ``cls`` settings stored under ``group/`` (defaults for what is missing or bad)."""
    prefix = f"{group}/" if group else ""
    return from_raw(cls, lambda key: settings.value(prefix + key, None))


def save(settings: QSettings, obj, group: str = "") -> None:
    """Store a settings dataclass under ``group/`` (a tuple as a list: PySide6 would pickle it)."""
    prefix = f"{group}/" if group else ""
    for key, value in to_raw(obj).items():
        settings.setValue(prefix + key, list(value) if isinstance(value, tuple) else value)
