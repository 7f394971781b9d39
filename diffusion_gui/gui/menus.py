"""The main window's menus (File, View, Help), its recent-files and built-in-model submenus.

Functions of the window (``win``), kept out of :mod:`main_window` so that the window class
stays a short list of what it does."""
from __future__ import annotations

import traceback
from pathlib import Path

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from .device_menu import build_device_menu
from .window_parts import sample_images


def build_menus(win):
    mb = win.menuBar()

    def act(menu, text, slot, shortcut=None, tip=""):
        a = QAction(text, win)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    # ---- File
    fm = mb.addMenu("&File")
    win.act_open = act(fm, "&Open image\u2026", win.open_image_dialog, QKeySequence.Open,
                        "Open an image file for the forward process")
    win.samples_menu = fm.addMenu("&Sample images")
    for p in sample_images():
        a = win.samples_menu.addAction(p.stem.replace("_", " "))
        a.setStatusTip(str(p))
        a.triggered.connect(lambda _=False, p=p: win.open_image(p, wait=False))
    win.samples_menu.setEnabled(bool(sample_images()))
    win.recent_menu = fm.addMenu("Open &recent")
    rebuild_recent_menu(win)
    fm.addSeparator()
    win.act_open_model = act(fm, "Open &model folder\u2026", win.open_model_dialog,
                              "Ctrl+Shift+O", "Load a diffusers UNet2DModel folder")
    win.builtin_menu = fm.addMenu("&Built-in models")
    fill_builtin_menu(win)
    build_device_menu(win, fm)
    fm.addSeparator()
    win.act_export = act(fm, "&Export\u2026", win.export_dialog, "Ctrl+E",
                          "Export images, filmstrips and GIFs")
    fm.addSeparator()
    win.act_quit = act(fm, "&Quit", win.close, QKeySequence.Quit)
    win.act_quit.setShortcuts([QKeySequence("Ctrl+Q")])
    win.act_quit.setMenuRole(QAction.QuitRole)

    # ---- View
    vm = mb.addMenu("&View")
    group = QActionGroup(win)
    group.setExclusive(True)
    win._tab_actions: list[QAction] = []
    for idx in range(win.tabs.count()):
        a = QAction(win.tabs.tabText(idx), win, checkable=True)
        a.setData(idx)
        if idx < 9:
            a.setShortcut(QKeySequence(f"Ctrl+{idx + 1}"))
        a.triggered.connect(lambda _=False, i=idx: win.tabs.setCurrentIndex(i))
        group.addAction(a)
        vm.addAction(a)
        win._tab_actions.append(a)
    if win._tab_actions:
        win._tab_actions[0].setChecked(True)
    win.view_menu = vm
    vm.addSeparator()
    win._view_end_sep = vm.addSeparator()     # panel submenus go in before this one
    for key in win._keys:
        if key in win.panels:
            add_panel_menu(win, key, win.panels[key])
    win.act_fullscreen = act(vm, "&Full screen", win.toggle_fullscreen, "F11")

    # ---- Help
    hm = mb.addMenu("&Help")
    win.act_shortcuts = act(hm, "&Keyboard shortcuts", win.show_shortcuts, "F1")
    win.act_about = act(hm, "&About diffusion-gui", win.show_about)

def add_panel_menu(win, key: str, panel: QWidget):
    """The panel's own actions (``actions()``) as a View submenu."""
    try:
        acts = panel.actions() if hasattr(type(panel), "actions") else []
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        acts = []
    acts = [a for a in (acts or []) if isinstance(a, QAction)]
    if acts:
        sub = QMenu(getattr(panel, "title", key), win.view_menu)
        for a in acts:
            sub.addAction(a)
        win.view_menu.insertMenu(win._view_end_sep, sub)

def fill_builtin_menu(win):
    win.builtin_menu.clear()
    try:
        from ..models.registry import DEFAULT_MODEL, builtin_names
        names = builtin_names()
    except Exception:  # noqa: BLE001
        names, DEFAULT_MODEL = [], "digits"
    for n in names:
        a = win.builtin_menu.addAction(n)
        a.triggered.connect(lambda _=False, n=n: win.ctx.load_model(n))
    if not names:
        a = win.builtin_menu.addAction(f"(none installed yet: {DEFAULT_MODEL})")
        a.setEnabled(False)

def rebuild_recent_menu(win):
    m = win.recent_menu
    m.clear()
    files = win.ctx.recent_files()
    for k, f in enumerate(files):
        label = f"&{k + 1}  {Path(f).name}" if k < 9 else Path(f).name
        a = m.addAction(label)
        a.setStatusTip(f)
        a.setToolTip(f)
        a.triggered.connect(lambda _=False, f=f: win.open_image(f, wait=False))
    if files:
        m.addSeparator()
        m.addAction("Clear recent files", lambda: clear_recent(win))
    m.setEnabled(bool(files))

def clear_recent(win):
    win.settings.setValue("recent_files", [])
    rebuild_recent_menu(win)
