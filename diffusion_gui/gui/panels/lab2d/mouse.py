"""The 2-D lab's mouse: paint and erase points (draw your own), drag and resize mixture
components (the forward view), click a reverse view to launch a traced particle at the current t.
Functions of the panel; the maths is the session's (:mod:`diffusion_gui.sessions.lab2d_edit`)."""
from __future__ import annotations

from PySide6.QtCore import Qt

WHEEL_FACTOR = 1.1        # a component's std per wheel step


def connect(panel):
    fv = panel.forward_view.vb
    fv.pressed.connect(lambda x, y, b, m: forward_press(panel, x, y, b, m))
    fv.dragged.connect(lambda x, y, b, m, ph: forward_drag(panel, x, y, b, m, ph))
    fv.wheeled.connect(lambda x, y, steps: forward_wheel(panel, x, y, steps))
    for key in ("ddpm", "ddim"):
        panel.views[key].vb.pressed.connect(
            lambda x, y, b, m, key=key: reverse_press(panel, key, x, y, b))


def _erasing(button, mods) -> bool:
    return button == Qt.RightButton or bool(mods & Qt.ShiftModifier)


def forward_press(panel, x, y, button, mods):
    s = panel.session
    if s is None:
        return
    if panel.data_key() == "draw":
        (s.erase if _erasing(button, mods) else s.paint)((x, y))
        panel.data_changed()
    elif s.settings.data == "gmm" and button == Qt.LeftButton:
        panel.select_component(s.component_at((x, y)))


def forward_drag(panel, x, y, button, mods, phase):
    s = panel.session
    if s is None:
        return
    if panel.data_key() == "draw":
        if phase != "finish":
            (s.erase if _erasing(button, mods) else s.paint)((x, y))
            panel.data_changed(light=True)
        else:
            panel.data_changed()
        return
    if s.settings.data != "gmm" or button != Qt.LeftButton:
        return
    if phase == "start":
        panel._dragging = s.component_at((x, y))
        panel.select_component(panel._dragging)
        return
    k = panel._dragging
    if k is None:
        return
    s.move_component(k, (x, y))
    panel.data_changed(light=phase != "finish")
    if phase == "finish":
        panel._dragging = None


def forward_wheel(panel, x, y, steps):
    s = panel.session
    if s is None or s.settings.data != "gmm":
        return
    k = s.component_at((x, y))
    if k is None:
        return
    s.scale_component(k, WHEEL_FACTOR ** steps)
    panel.select_component(k)
    panel.data_changed()


def reverse_press(panel, key, x, y, button):
    if button == Qt.LeftButton:
        panel.launch_particle(key, (x, y))
