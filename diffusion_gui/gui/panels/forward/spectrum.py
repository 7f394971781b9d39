"""The Forward panel's power spectrum: x_0, x_t and the noise term at the current t, log-log.

Why denoising is coarse-to-fine (Dieleman 2024): an image's radially averaged power falls as a
power law in frequency while the noise term ``sqrt(1 - abar_t) eps`` is flat, so as t grows the
noise drowns the high frequencies first; the dashed line marks the lowest frequency where it
already wins. The three ring averages of :class:`~diffusion_gui.core.spectrum.ForwardSpectrum`
are computed once per image and seed in the panel's background slot (about 0.2 s at 512 px
RGB); after that a t costs O(frequencies), so the slider stays fast.
"""
from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from ...spectrum_plot import SpectrumPlot
from ...workers import JobSlot

CURVES = (("x0", "x<sub>0</sub>", "blue", False),
          ("xt", "x<sub>t</sub>", "red", False),
          ("noise", "noise &radic;(1&minus;&alpha;&#772;<sub>t</sub>)&thinsp;&epsilon;", "grey", True))


#: points drawn per curve: the rings averaged into log-spaced bins (a 512 px image has 256 rings)
DRAWN_BINS = 64


class ForwardSpectrumView(QWidget):
    """``set_source(math)`` when x_0 or eps change; ``show_t(t, abar)`` whenever t does."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = SpectrumPlot("Radially averaged power spectrum", CURVES,
                                 "noise drowns the high frequencies first")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self.slot = JobSlot()
        self.spectrum = None            # ForwardSpectrum of the current source, once computed
        self._bin, self._freqs = None, None
        self._key = None
        self._t = (0, 1.0)

    def set_source(self, math) -> None:
        """Recompute the FFTs in the background when x_0 or eps changed (not for a schedule)."""
        key = (id(math.x0_chw), math.seed, math.x0_chw.shape)
        if key == self._key:
            return
        self._key = key
        self.spectrum = None
        x0, eps = math.x0_chw.copy(), math.eps.transpose(2, 0, 1).copy()

        def compute():
            from ....core.spectrum import ForwardSpectrum
            return ForwardSpectrum(x0, eps)

        self.slot.start(compute, background=True, on_done=lambda s, k=key: self._ready(s, k))

    def _ready(self, spectrum, key):
        if key != self._key:
            return
        from ....core.spectrum import log_binned
        self.spectrum = spectrum
        self._bin, self._freqs = log_binned(spectrum.freqs, spectrum.counts, DRAWN_BINS)
        self.view.reset_range()
        self._draw()

    def show_t(self, t: int, abar: float) -> None:
        self._t = (int(t), float(abar))
        if self.isVisible():
            self._draw()

    def showEvent(self, ev):
        super().showEvent(ev)
        self._draw()

    def _draw(self):
        s = self.spectrum
        if s is None:
            return
        t, abar = self._t
        curves = s.at(abar)
        if self.view._y is None:   # once per image and seed: x_0, and the noise down to 1e-3 of eps
            lo = min(float(s.p_x0.min()), 1e-3 * float(s.p_eps.min()))
            self.view.fix_y_range(0.5 * lo, 2.0 * max(float(s.p_x0.max()), float(s.p_eps.max())))
        cross = s.crossover(abar) if t > 0 else None
        self.view.set_marker(cross)
        if t == 0:
            text = "t = 0: x<sub>t</sub> is x<sub>0</sub>, no noise"
        elif cross is None:
            text = f"t = {t}: the image is above the noise at every frequency"
        else:
            text = f"t = {t}: noise wins above {cross:.3g} cycles/px (dashed)"
        self.view.set_curves(self._freqs, {k: self._bin(v) for k, v in curves.items()}, text)

    def shutdown(self):
        self.slot.shutdown()
