"""The Forward panel's settings: its widgets <-> :class:`~diffusion_gui.sessions.forward.ForwardSettings`
<-> QSettings (through :mod:`diffusion_gui.gui.settings_io`; keys ``schedule``, ``T``, ``seed``,
``size``, ``t``, ``overlays``, plus the ``splitter`` layout)."""
from __future__ import annotations

from PySide6.QtCore import QSettings

from ....sessions.forward import SIZES, ForwardSettings
from ... import settings_io


def current(panel) -> ForwardSettings:
    """The panel's choices now."""
    return ForwardSettings(schedule=panel.schedule_name, T=panel.T, seed=panel.seed,
                           size=panel.working_size, t=panel.t,
                           overlays=panel.schedule_plots.overlays())


def apply(panel, s: ForwardSettings):
    """Set the panel's widgets to ``s`` (t last, clamped to the new 0..T)."""
    panel.schedule_combo.setCurrentText(s.schedule)
    panel.T_spin.setValue(s.T)
    panel.seed_spin.setValue(s.seed)
    panel.size_combo.setCurrentIndex(SIZES.index(s.size))
    panel.schedule_plots.set_overlays(s.overlays)
    panel.set_t(s.t)


def save(panel, settings: QSettings):
    settings_io.save(settings, current(panel))
    settings.setValue("splitter", panel.splitter.saveState())


def restore(panel, settings: QSettings):
    """Tolerates missing or malformed values (the defaults are used)."""
    s = settings_io.load(settings, ForwardSettings)
    st = settings.value("splitter")
    if st is not None:
        try:
            panel._splitter_set = bool(panel.splitter.restoreState(st))
        except TypeError:
            pass
    apply(panel, s)
