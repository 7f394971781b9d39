"""A widget that shows a uint8 image crisply enlarged (nearest neighbour), aspect kept."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget


def qimage_from_array(arr: np.ndarray) -> QImage:
    """uint8 ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` -> a QImage that owns a copy of the pixels."""
    a = np.ascontiguousarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    h, w = a.shape[:2]
    if a.ndim == 2:
        q = QImage(a.data, w, h, a.strides[0], QImage.Format_Grayscale8)
    else:
        q = QImage(a.data, w, h, a.strides[0], QImage.Format_RGB888)
    return q.copy()


class ImageView(QWidget):
    """``set_image(uint8 [H, W, C])``; ``smooth=False`` (default) enlarges with nearest neighbour
    so that a 16 px model's pixels stay sharp squares. ``caption`` is drawn under the image."""

    def __init__(self, parent=None, *, smooth: bool = False, caption: str = "", min_size: int = 128):
        super().__init__(parent)
        self._img: QImage | None = None
        self._array: np.ndarray | None = None
        self._smooth = smooth
        self._caption = caption
        self._placeholder = ""
        self.setMinimumSize(min_size, min_size)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setAttribute(Qt.WA_OpaquePaintEvent, False)

    def sizeHint(self) -> QSize:
        return QSize(320, 340)

    def set_image(self, arr: np.ndarray | None):
        self._array = None if arr is None else np.asarray(arr)
        self._img = None if arr is None else qimage_from_array(self._array)
        self.update()

    def image(self) -> np.ndarray | None:
        """The uint8 array last shown (what the user sees, before enlargement)."""
        return self._array

    def set_caption(self, text: str):
        self._caption = text
        self.update()

    def set_placeholder(self, text: str):
        self._placeholder = text
        self.update()

    def image_rect(self) -> QRectF:
        cap_h = self.fontMetrics().height() + 6 if self._caption else 0
        W, H = self.width(), self.height() - cap_h
        if self._img is None or W <= 0 or H <= 0:
            return QRectF(0, 0, 0, 0)
        iw, ih = self._img.width(), self._img.height()
        s = min(W / iw, H / ih)
        if not self._smooth and s >= 1:
            s = max(1, int(s))  # integer zoom keeps every source pixel the same size
        w, h = iw * s, ih * s
        # the image and its caption are centred together, the caption right under the image
        return QRectF((W - w) / 2, (self.height() - h - cap_h) / 2, w, h)

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(QPalette.Window))
        if self._img is None:
            p.setPen(self.palette().color(QPalette.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignCenter, self._placeholder)
        else:
            p.setRenderHint(QPainter.SmoothPixmapTransform, self._smooth)
            r = self.image_rect()
            p.drawImage(r, self._img)
            p.setPen(QColor(120, 120, 120))
            p.drawRect(r.adjusted(-0.5, -0.5, 0.5, 0.5))
        if self._caption:
            p.setPen(self.palette().color(QPalette.WindowText))
            fh = self.fontMetrics().height()
            y = self.height() - fh - 3
            if self._img is not None:
                y = min(y, int(self.image_rect().bottom()) + 4)
            p.drawText(0, y, self.width(), fh + 3, Qt.AlignHCenter | Qt.AlignTop, self._caption)
        p.end()
