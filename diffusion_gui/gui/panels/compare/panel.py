"""The Compare panel: three pages over one model (the context's), each with its own job slot.

- **Grid**: rows = samplers (DDPM all T, DDPM N respaced, DDIM N with eta), columns = samples,
  all from one x_T (:mod:`diffusion_gui.sessions.compare`); one slider scrubs all rows to a t.
- **Forks**: K continuations of one run from several steps t; their spread over t
  (:mod:`diffusion_gui.sessions.forks`).
- **Inversion & interpolation**: DDIM inversion and reconstruction, error vs steps; the
  spherical path between two inverted images (:mod:`diffusion_gui.sessions.inversion`).

Timesteps are the paper's ``t`` (0 clean, T noise).
"""
from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from ....sessions.compare import CompareSettings, is_digits_model
from ... import settings_io
from .forks import SAMPLERS, ForksPage
from .grid import GridPage
from .inversion import InversionPage

MODES = ("grid", "forks", "inversion")


class ComparePanel(QWidget):
    """``tabs`` with ``grid``, ``forks`` and ``inversion`` pages (module docstring)."""

    title = "Compare"

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.grid = GridPage(ctx)
        self.forks = ForksPage(ctx)
        self.inversion = InversionPage(ctx)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.grid, "Grid: one noise, many samplers")
        self.tabs.addTab(self.forks, "Forks: when does it commit?")
        self.tabs.addTab(self.inversion, "DDIM inversion && interpolation")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.tabs)
        self._closed = False
        ctx.model_changed.connect(self._on_model_changed)
        self.apply_settings(CompareSettings())
        self._on_model_changed()

    def pages(self):
        return (self.grid, self.forks, self.inversion)

    def set_mode(self, mode: str):
        self.tabs.setCurrentIndex(MODES.index(mode))

    def _on_model_changed(self):
        m = self.ctx.model
        if m is None:
            return
        T = int(m.num_timesteps)
        self.forks.steps.setMaximum(T)
        self.inversion.interp_steps.setMaximum(T)
        digits = is_digits_model(m) or m.in_channels == 1
        self.inversion.source.setCurrentIndex(0 if digits else 1)
        for w in (self.inversion.a_index, self.inversion.b_index, self.inversion.n_digits):
            w.setEnabled(digits)

    # ------------------------------------------------------------------ settings
    def settings(self) -> CompareSettings:
        g, f, i = self.grid, self.forks, self.inversion
        return CompareSettings(rows=g.rows_edit.text(), batch=g.batch.value(), seed=g.seed.value(),
                               fork_sampler=f.sampler.currentData(), fork_steps=f.steps.value(),
                               fork_eta=f.eta.value(), fork_k=f.k.value(), fork_points=f.points.value(),
                               inv_digits=i.n_digits.value(), inv_steps=i.steps_edit.text(),
                               interp_frames=i.frames.value(), interp_steps=i.interp_steps.value())

    def apply_settings(self, s: CompareSettings):
        g, f, i = self.grid, self.forks, self.inversion
        g.rows_edit.setText(s.rows)
        g.rows_edit.setCursorPosition(0)
        g.batch.setValue(s.batch)
        g.seed.setValue(s.seed)
        f.sampler.setCurrentIndex(max(0, [k for _, k in SAMPLERS].index(s.fork_sampler)))
        f.steps.setValue(s.fork_steps)
        f.eta.setValue(s.fork_eta)
        f.k.setValue(s.fork_k)
        f.points.setValue(s.fork_points)
        i.n_digits.setValue(s.inv_digits)
        i.steps_edit.setText(s.inv_steps)
        i.frames.setValue(s.interp_frames)
        i.interp_steps.setValue(s.interp_steps)

    def save_settings(self, settings: QSettings):
        settings_io.save(settings, self.settings())

    def restore_settings(self, settings: QSettings):
        self.apply_settings(settings_io.load(settings, CompareSettings))

    # ------------------------------------------------------------------ export, shutdown
    def export_sources(self) -> list:
        """The current page's sources first, then the others'."""
        current = self.tabs.currentWidget()
        ordered = [current] + [p for p in self.pages() if p is not current]
        return [s for p in ordered for s in p.export_sources()]

    def shutdown(self):
        if self._closed:
            return
        self._closed = True
        for p in self.pages():
            p.shutdown()
