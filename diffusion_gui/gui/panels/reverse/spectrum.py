"""The Reverse panel's power spectrum: x_t and the predicted x_0 at the frame shown, log-log.

Denoising is coarse-to-fine (Dieleman 2024): early on x_t is flat white noise and the predicted
x_0 holds only the low frequencies (a blurry mean); the high frequencies are filled in last.
The spectra are those of the recorded uint8 frames (the pictures shown: x_t clipped to
[-1, 1]), averaged over the batch and channels (:func:`diffusion_gui.core.spectrum.radial_power`);
they follow the displayed frame, at most as often as its numbers (``TEXT_RATE`` during a run).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ...spectrum_plot import SpectrumPlot

CURVES = (("xt", "x<sub>t</sub> (as shown, in [&minus;1, 1])", "red", False),
          ("x0", "predicted x<sub>0</sub>", "blue", False))


def _floats(u8: np.ndarray) -> np.ndarray:
    """uint8 ``[B, H, W, C]`` -> float ``[B, C, H, W]`` in [-1, 1]."""
    return np.asarray(u8, np.float64).transpose(0, 3, 1, 2) / 127.5 - 1.0


class ReverseSpectrumView(QWidget):
    """``show_frame(frame)`` (a :class:`~diffusion_gui.sessions.reverse.Frame`); ``reset()`` at
    a new run (the y range is fitted afresh)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = SpectrumPlot("Power spectrum", CURVES, "radially averaged; high frequencies "
                                 "come last", min_height=180)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self._shown = None

    def reset(self):
        self.view.reset_range()
        self._shown = None

    def show_frame(self, f) -> None:
        if f is None or (f.step, f.t) == self._shown:
            return
        from ....core.spectrum import radial_power, spectral_slope
        self._shown = (f.step, f.t)
        freqs, pt = radial_power(_floats(f.xt))
        _, p0 = radial_power(_floats(f.x0))
        slope = spectral_slope(freqs, p0)
        same = " · x<sub>t</sub> is the sample: the curves coincide" if f.t == 0 else ""
        self.view.set_curves(freqs, {"xt": pt, "x0": p0},
                             f"t = {f.t} · slope of pred x<sub>0</sub> {slope:+.2f} (noise: 0){same}")
