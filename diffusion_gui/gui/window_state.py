"""The main window's remembered state: geometry, dock state, current tab, and each panel's
settings (``panel.save_settings(qsettings)`` inside the panel's own group)."""
from __future__ import annotations

import traceback

from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QApplication

from .window_parts import DEFAULT_SIZE


def restore(win):
    s = win.settings
    geo = s.value("window/geometry")
    restored = False
    if isinstance(geo, (QByteArray, bytes)):
        restored = win.restoreGeometry(geo)
    if not restored:
        screen = QApplication.primaryScreen()
        avail = screen.availableGeometry().size() if screen else DEFAULT_SIZE
        win.resize(min(DEFAULT_SIZE.width(), avail.width()),
                    min(DEFAULT_SIZE.height(), avail.height()))
    state = s.value("window/state")
    if isinstance(state, (QByteArray, bytes)):
        win.restoreState(state)
    key = s.value("window/tab", "forward")
    if key in win._keys:
        win.tabs.setCurrentIndex(win._keys.index(key))


def save(win):
    s = win.settings
    s.setValue("window/geometry", win.saveGeometry())
    s.setValue("window/state", win.saveState())
    idx = win.tabs.currentIndex()
    if 0 <= idx < len(win._keys):
        s.setValue("window/tab", win._keys[idx])
    for key, panel in win.panels.items():
        if not hasattr(panel, "save_settings"):
            continue
        s.beginGroup(key)
        try:
            panel.save_settings(s)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        finally:
            s.endGroup()
    s.sync()
