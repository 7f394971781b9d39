"""The plain data of the Derivation session: a step, its result, its plot (numpy only, no Qt)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

__all__ = ["Series", "PlotData", "StepResult", "Progress", "Step"]


@dataclass
class Series:
    """One thing drawn: ``style`` ``line``, ``dashed``, ``points``, ``bars`` or ``band`` (``err``
    a +- band around ``y``); ``err`` error bars for ``points``; ``color`` a plots.COLORS key."""

    name: str
    x: np.ndarray
    y: np.ndarray
    style: str = "line"
    color: str = "blue"
    err: np.ndarray | None = None
    width: float = 0.8      # bars only


@dataclass
class PlotData:
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    log_x: bool = False
    log_y: bool = False
    note: str = ""          # said on the plot (under its title)
    x_ticks: list[tuple[float, str]] | None = None
    legend: str = "top-right"     # or top-left, bottom-right, bottom-left, middle-right


@dataclass
class StepResult:
    key: str
    numbers: list[tuple[str, str]]
    plot: PlotData
    verdict: str
    raw: dict = field(default_factory=dict, repr=False)


@dataclass
class Progress:
    fraction: float
    text: str


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    equation: tuple[str, ...]
    compute: Callable[..., Iterator]
    link: str | None = None
    link_label: str = ""
    uses_image_model: bool = False
    blurb: str = ""
