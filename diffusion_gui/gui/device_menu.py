"""File > Device: where the networks run (Auto, the CPU, each CUDA device, Apple MPS) and in
what precision, and the status bar's "Device: ..." label. The choice is the context's
(:meth:`AppContext.set_device`), remembered, and applies from the next run on; the list comes
from :meth:`AppContext.detect_devices` once torch is loaded."""
from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QLabel

PRECISIONS = (("float32", "float32 (exact)"), ("float16", "float16 (GPU: faster, half the memory)"),
              ("bfloat16", "bfloat16"))


def build_device_menu(win, parent_menu):
    """The submenu, rebuilt whenever the context's devices or choice change, and the label."""
    win.device_menu = parent_menu.addMenu("&Device")
    win.device_label = QLabel()
    win.device_label.setStyleSheet("padding: 0 8px;")
    win.device_label.setToolTip("Where the networks run (File ▸ Device)")
    win.statusBar().addPermanentWidget(win.device_label)
    win.ctx.device_changed.connect(lambda: fill_device_menu(win))
    fill_device_menu(win)


def _group(win, menu, items, current, choose, disabled=()):
    group = QActionGroup(menu)
    group.setExclusive(True)
    for key, text in items:
        a = QAction(text, menu, checkable=True)
        a.setChecked(key == current)
        a.setEnabled(key not in disabled)
        a.triggered.connect(lambda _=False, k=key: choose(k))
        group.addAction(a)
        menu.addAction(a)


def fill_device_menu(win):
    ctx, menu = win.ctx, win.device_menu
    on_cpu = ctx.device_in_use() == "cpu"
    menu.clear()
    found = ctx.devices or ["cpu"]
    best = found[0]
    names = [("auto", f"&Auto ({best})" if ctx.devices else "&Auto (detecting…)")]
    names += [(d, d.upper() if d in ("cpu", "mps") else d) for d in found]
    _group(win, menu, names, ctx.device_name, lambda k: ctx.set_device(name=k))
    menu.addSeparator()
    menu.addSection("Network precision")
    _group(win, menu, PRECISIONS, ctx.dtype_name, lambda k: ctx.set_device(dtype=k),
           disabled=("float16",) if on_cpu else ())
    win.device_label.setText(f"Device: {ctx.device_in_use()} · {ctx.dtype_name}")
