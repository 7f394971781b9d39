"""The Train panel's sample strip: the grids a run drew every K steps, one shown large, a
slider and a row of thumbnails to scrub them."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QSlider, QVBoxLayout, QWidget

from ....core.images import enlarge
from ...image_view import ImageView, qimage_from_array

THUMB = 64               # thumbnail size in the strip, px
MAX_GRIDS = 400          # grids kept in the strip; beyond, every other older grid is dropped


class SampleStrip(QWidget):
    """The sample grids of a run: the selected one large, a slider and a strip of thumbnails to
    scrub them. ``selected(int)`` carries the training step of the grid shown.

    ``grids``: ``(step, uint8 grid [H, W, C], loss per timestep bucket [10])``, oldest first;
    past :data:`MAX_GRIDS` every other grid of the older half is dropped."""

    selected = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grids: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.view = ImageView(caption="", min_size=150)
        self.view.set_placeholder("Sample grids appear here every K steps while training")
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.slider.setToolTip("Scrub through the sample grids of this run")
        self.slider.valueChanged.connect(self._show)
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.IconMode)
        self.thumbs.setFlow(QListView.LeftToRight)
        self.thumbs.setWrapping(False)
        self.thumbs.setMovement(QListView.Static)
        self.thumbs.setIconSize(QSize(THUMB, THUMB))
        self.thumbs.setSpacing(2)
        self.thumbs.setFixedHeight(THUMB + self.fontMetrics().height() + 30)
        self.thumbs.setHorizontalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.thumbs.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.thumbs.setSelectionMode(QAbstractItemView.SingleSelection)
        self.thumbs.currentRowChanged.connect(self._thumb_picked)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.slider)
        lay.addWidget(self.thumbs)
        self.caption_extra = ""

    def clear(self):
        self.grids.clear()
        self.thumbs.clear()
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.view.set_image(None)
        self.view.set_caption("")

    def add(self, step: int, grid: np.ndarray, buckets: np.ndarray):
        follow = not self.grids or self.slider.value() == len(self.grids) - 1
        if len(self.grids) >= MAX_GRIDS:   # thin out the older half, keep the newest grids all
            keep = list(range(0, MAX_GRIDS // 2, 2)) + list(range(MAX_GRIDS // 2, len(self.grids)))
            self.grids = [self.grids[k] for k in keep]
            self.thumbs.blockSignals(True)
            self.thumbs.clear()
            for s, g, _ in self.grids:
                self._add_thumb(s, g)
            self.thumbs.blockSignals(False)
        self.grids.append((int(step), grid, buckets))
        self._add_thumb(step, grid)
        n = len(self.grids)
        self.slider.blockSignals(True)
        self.slider.setRange(0, n - 1)
        self.slider.setEnabled(n > 1)
        self.slider.blockSignals(False)
        if follow:
            self.slider.setValue(n - 1)
            self._show(n - 1)

    def _add_thumb(self, step, grid):
        h, w = grid.shape[:2]
        f = max(1, round(THUMB / max(h, w)))    # crisp: whole-pixel enlargement
        pm = QPixmap.fromImage(qimage_from_array(enlarge(grid, f)))
        if max(h, w) * f > 1.25 * THUMB:        # a big grid: shrink it smoothly
            pm = pm.scaled(THUMB, THUMB, Qt.KeepAspectRatio, Qt.SmoothTransformation)
        if self.thumbs.count() == 0:
            self.thumbs.setIconSize(pm.size())
            self.thumbs.setFixedHeight(pm.height() + self.fontMetrics().height() + 30)
        item = QListWidgetItem(QIcon(pm), f"{step:,}")
        item.setTextAlignment(Qt.AlignHCenter)
        item.setToolTip(f"samples at step {step:,}")
        self.thumbs.addItem(item)

    def index(self) -> int:
        return self.slider.value() if self.grids else -1

    def current(self):
        k = self.index()
        return self.grids[k] if 0 <= k < len(self.grids) else None

    def select(self, k: int):
        self.slider.setValue(k)

    def _thumb_picked(self, row):
        if 0 <= row < len(self.grids) and row != self.slider.value():
            self.slider.setValue(row)

    def _show(self, k):
        if not 0 <= k < len(self.grids):
            return
        step, grid, _ = self.grids[k]
        self.view.set_image(grid)
        self.view.set_caption(f"step {step:,}  ·  grid {k + 1} of {len(self.grids)}{self.caption_extra}")
        if self.thumbs.currentRow() != k:
            self.thumbs.blockSignals(True)
            self.thumbs.setCurrentRow(k)
            self.thumbs.blockSignals(False)
        self.thumbs.scrollToItem(self.thumbs.item(k))
        self.selected.emit(step)
