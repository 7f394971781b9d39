"""What the Compare panel's three pages share: a labelled strip of images, the run row (button,
progress bar, status line), and the worker plumbing (one :class:`JobSlot` a page)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ....core.images import tile
from ....sessions.compare import Tick
from ...image_view import ImageView
from ...workers import JobSlot


def rich(text: str = "", *, wrap: bool = False, grey: bool = False) -> QLabel:
    lab = QLabel(text)
    lab.setTextFormat(Qt.RichText)
    lab.setWordWrap(wrap)
    if grey:
        lab.setStyleSheet("color: #555;")
    return lab


class Strip(QWidget):
    """A heading over a row of images (uint8 ``[B, H, W, C]`` tiled in one line, crisp pixels)."""

    def __init__(self, title: str = "", parent=None, min_height: int = 72):
        super().__init__(parent)
        self.head = rich(title)
        self.view = ImageView(smooth="auto", min_size=min_height, fit_height=True)
        self.view.setMinimumHeight(min_height)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.head)
        lay.addWidget(self.view, 1)

    def set_images(self, images: np.ndarray | None, title: str | None = None, pad: int = 1):
        if title is not None:
            self.head.setText(title)
        self.view.set_image(None if images is None else tile(images, ncols=len(images), pad=pad))

    def image(self):
        return self.view.image()


class RunRow(QWidget):
    """``button`` (Run / Stop), ``bar`` and ``status``: the run controls of a page."""

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        self.text = text
        self.button = QPushButton(text)
        self.button.setDefault(True)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(10)
        self.status = rich("", wrap=True, grey=True)
        self.status.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addWidget(self.bar, 1)
        lay.addLayout(row)
        lay.addWidget(self.status)

    def running(self, on: bool):
        self.button.setText("Stop" if on else self.text)
        if not on:
            self.bar.setRange(0, 1)
            self.bar.setValue(1)

    def tick(self, t: Tick, stages: int, what: str = "step"):
        """Progress of stage ``t.stage`` (0-based) of ``stages``."""
        total = max(1, t.total) * max(1, stages)
        done = max(0, t.stage) * max(1, t.total) + t.done
        self.bar.setRange(0, total)
        self.bar.setValue(min(done, total))


class Page(QWidget):
    """A page with one background job: ``start(make_gen, observe, done)``; ``stop()``."""

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.slot = JobSlot(memory_hint="try a smaller batch")

    def placement(self) -> dict:
        """Where the page's runs put the network: File > Device (``device``, ``dtype``)."""
        return {"device": self.ctx.device_name, "dtype": self.ctx.dtype_name}

    def model(self):
        m = self.ctx.model
        if m is None:
            self.ctx.error.emit("Compare", "No model is loaded yet (choose one in the Reverse panel).")
        return m

    def start(self, row: RunRow, make_gen, *, on_progress, on_done, observe=None):
        row.running(True)

        def finished(payload):
            row.running(False)
            on_done(payload)

        def failed(msg):
            row.running(False)
            row.status.setText(f"<span style='color:#b00'>{msg}</span>")
            self.ctx.error.emit("Compare", msg)

        def cancelled():
            row.running(False)
            row.status.setText("stopped")

        self.slot.start(make_gen, on_progress=on_progress, on_finished=finished, on_failed=failed,
                        on_cancelled=cancelled, observe=observe, max_rate=15)

    def busy(self) -> bool:
        return self.slot.is_running()

    def stop(self):
        self.slot.cancel()

    def shutdown(self):
        self.slot.shutdown()
