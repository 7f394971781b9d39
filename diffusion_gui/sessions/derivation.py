"""The Derivation panel's session: the steps of the DDPM bound, each with its equation, one plot
and the numbers that check it, for the current image model and the 2-D lab's models.

Qt-free. A :class:`Step` names its equation (mathtext, rendered by :func:`render_equation`), the
panel that shows it at full size (``link``: a PANELS key) and a ``compute(session)`` generator
(:mod:`diffusion_gui.sessions.derivation_steps`) that yields :class:`Progress` and finally one
:class:`StepResult`: numbers as ``(label, value)`` strings, a :class:`PlotData` (plain numpy
series) and a one-line verdict read off the numbers. :meth:`DerivationSession.run` is that
generator (a worker iterates it and stops between items to cancel);
:meth:`DerivationSession.compute` exhausts it (tests, scripts).

Timesteps are the paper's ``t`` (``t = 0`` clean, ``t = T`` noise) in every label.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .derivation_steps import STEPS
from .derivation_types import PlotData, Progress, Series, Step, StepResult
from .lab2d_settings import DATASETS
from .settings import setting

__all__ = ["DerivationSettings", "DerivationSession", "Step", "StepResult", "PlotData", "Series",
           "Progress", "render_equation"]


@dataclass
class DerivationSettings:
    """The panel's settings (QSettings keys = field names)."""

    seed: int = setting(0, lo=0, hi=2 ** 31 - 1)
    trajectories: int = setting(16, lo=2, hi=256)       # image trajectories of step 3
    lab_steps: int = setting(1500, lo=100, hi=20000)    # training steps per objective, steps 6 and 8
    toy: str = setting("gaussians8", choices=DATASETS)  # step 2's 2-D data (its mixture, or a KDE)
    step: str = setting("chaining")


def render_equation(lines, *, fontsize: float = 17, dpi: int = 110, gap: int = 10) -> np.ndarray:
    """The lines (matplotlib mathtext, ``$...$`` inside), each rendered on its own and stacked,
    centred, on white: uint8 RGBA ``[H, W, 4]``. Agg only (no TeX, no display); safe in a worker
    thread."""
    from matplotlib.figure import Figure
    from PIL import Image
    images = []
    for line in lines:
        fig = Figure(figsize=(1, 1), dpi=dpi, facecolor="white")
        fig.text(0.0, 0.0, line, fontsize=fontsize, color="#1a1a1a")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.06, facecolor="white")
        buf.seek(0)
        images.append(np.asarray(Image.open(buf).convert("RGBA")))
    w = max(im.shape[1] for im in images)
    h = sum(im.shape[0] for im in images) + gap * (len(images) - 1)
    out = np.full((h, w, 4), 255, dtype=np.uint8)
    y = 0
    for im in images:
        x = (w - im.shape[1]) // 2
        out[y:y + im.shape[0], x:x + im.shape[1]] = im
        y += im.shape[0] + gap
    return out


class DerivationSession:
    """State: the current image model (a ``LoadedModel`` or None), the results computed so far
    and the rendered equations (cached)."""

    def __init__(self, settings: DerivationSettings | None = None):
        self.settings = settings or DerivationSettings()
        self.steps: list[Step] = list(STEPS)
        self.model = None
        self.results: dict[str, StepResult] = {}
        self._equations: dict[str, np.ndarray] = {}
        self._cache: dict = {}

    def step(self, key: str) -> Step:
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.steps]

    def set_model(self, model):
        """A new image model: the results of the steps that use it are dropped."""
        self.model = model
        self._cache.pop("digits", None)
        for s in self.steps:
            if s.uses_image_model:
                self.results.pop(s.key, None)

    def run(self, key: str) -> Iterator:
        """The computation of step ``key``: :class:`Progress` items, then its :class:`StepResult`
        (also stored in ``results``)."""
        for item in self.step(key).compute(self):
            if isinstance(item, StepResult):
                self.results[key] = item
            yield item

    def compute(self, key: str) -> StepResult:
        last = None
        for last in self.run(key):
            pass
        return last

    def equation(self, key: str, dpi: int = 110) -> np.ndarray:
        """The rendered equation of step ``key`` (cached), uint8 RGBA ``[H, W, 4]``."""
        ck = (key, dpi)
        if ck not in self._equations:
            self._equations[ck] = render_equation(self.step(key).equation, dpi=dpi)
        return self._equations[ck]

    # ---------------------------------------------------------------- shared inputs
    def digits(self, n: int):
        """The first ``n`` held-out digits at the model's size, float64 ``[n, C, H, W]``."""
        import torch

        from .losses import vlb_images
        got = self._cache.get("digits")
        if got is None or got.shape[0] < n:
            got = vlb_images(self.model, None, max(n, 8)).to(torch.float64)
            self._cache["digits"] = got
        return got[:n]
