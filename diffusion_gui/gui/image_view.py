"""Widgets that show a uint8 image enlarged, aspect kept: :class:`ImageView` and the filmstrip's
:class:`Thumbnail`."""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

#: Qt's QWIDGETSIZE_MAX: no maximum height.
_NO_MAX = 16777215


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
    """``set_image(uint8 [H, W, C])``; ``caption`` is drawn under the image.

    ``smooth``: ``False`` (default) enlarges with nearest neighbour at an integer zoom, so that a
    16 px model's pixels stay sharp squares; ``True`` scales smoothly; ``"auto"`` chooses per
    image and size: smooth fractional scaling for photos (96 px or more) when an integer zoom
    would leave much of the slot empty (a zoom below 2.5), crisp squares otherwise.
    ``fit_height``: cap the widget's height at the picture's height for its width, so that a
    heading above and numbers below stay next to the picture. ``fill``: always fill the slot
    (fractional scale, nearest neighbour too) inside a 3 px margin, for thumbnails.

    The picture is kept as 32-bit RGB: scaled drawing is 2-4x faster than from Grayscale8 /
    RGB888 (the conversion costs about 0.05 ms), and painting holds the GIL, which worker
    threads need too.
    """

    def __init__(self, parent=None, *, smooth: bool | str = False, caption: str = "",
                 min_size: int = 128, fit_height: bool = False, fill: bool = False):
        super().__init__(parent)
        if smooth not in (False, True, "auto"):
            raise ValueError(f"smooth must be False, True or 'auto', not {smooth!r}")
        self._img: QImage | None = None
        self._array: np.ndarray | None = None
        self._auto_smooth = smooth == "auto"
        self._smooth = bool(smooth) and not self._auto_smooth
        self._caption = caption
        self._placeholder = ""
        self._fit_height = fit_height
        self._fill = fill
        self.setMinimumSize(min_size, min_size)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        # paintEvent fills its whole rect: nothing beneath needs repainting
        self.setAttribute(Qt.WA_OpaquePaintEvent, True)

    def sizeHint(self) -> QSize:
        return QSize(320, 340)

    def set_image(self, arr: np.ndarray | None):
        self._array = None if arr is None else np.asarray(arr)
        self._img = (None if arr is None
                     else qimage_from_array(self._array).convertToFormat(QImage.Format_RGB32))
        self._fit()
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

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._fit()

    def _fit(self):
        """After a new image or size: the choice of ``smooth="auto"``, the cap of ``fit_height``."""
        img = self._img
        if img is None:
            if self._fit_height:
                self.setMaximumHeight(_NO_MAX)
            return
        iw, ih = img.width(), img.height()
        if self._auto_smooth:
            s = min(self.width() / max(iw, 1), self.height() / max(ih, 1))
            self._smooth = max(iw, ih) >= 96 and s < 2.5
        if self._fit_height:
            want = max(self.minimumHeight(), math.ceil(self.zoom_for_width() * ih) + 2)
            if self.maximumHeight() != want:
                self.setMaximumHeight(want)

    def zoom_for_width(self) -> float:
        """The zoom :meth:`image_rect` draws at for this width when the height does not limit
        it (1.0 without an image; not for ``fill``)."""
        if self._img is None:
            return 1.0
        s = self.width() / max(self._img.width(), 1)
        if not self._smooth and s >= 1:
            s = int(s)                     # the integer zoom image_rect draws
        return s

    def image_rect(self) -> QRectF:
        cap_h = self.fontMetrics().height() + 6 if self._caption else 0
        if self._img is None:
            return QRectF(0, 0, 0, 0)
        iw, ih = self._img.width(), self._img.height()
        if self._fill:
            m = 3                          # room for a thumbnail's "current frame" outline
            W, H = self.width() - 2 * m, self.height() - cap_h - 2 * m
            s = max(min(W / iw, H / ih), 1e-6)
            w, h = iw * s, ih * s
            return QRectF(m + (W - w) / 2, m + (H - h) / 2, w, h)
        W, H = self.width(), self.height() - cap_h
        if W <= 0 or H <= 0:
            return QRectF(0, 0, 0, 0)
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


class Thumbnail(ImageView):
    """A filmstrip frame: a left click emits ``clicked(key)``; the current one
    (:meth:`set_current`) is outlined in ``outline``.

    ``key``: what the panel needs back from a click (the forward panel's t, the reverse panel's
    recorded frame). ``size_hint``: (width, height). Other keywords go to :class:`ImageView`.
    """

    clicked = Signal(int)

    def __init__(self, parent=None, *, key: int = -1, outline: str = "#D55E00",
                 size_hint: tuple[int, int] = (96, 110), min_size: int = 56, **kw):
        super().__init__(parent, min_size=min_size, **kw)
        self.key = key
        self.current = False
        self._outline = QColor(outline)
        self._size_hint = QSize(*size_hint)
        self.setCursor(Qt.PointingHandCursor)

    def sizeHint(self) -> QSize:
        return self._size_hint

    def set_current(self, on: bool):
        if on != self.current:
            self.current = on
            self.update()

    def mousePressEvent(self, ev):
        if ev.button() == Qt.LeftButton:
            self.clicked.emit(self.key)
        super().mousePressEvent(ev)

    def paintEvent(self, ev):
        super().paintEvent(ev)
        if self.current and self.image() is not None:
            p = QPainter(self)
            p.setPen(QPen(self._outline, 3))
            p.drawRect(self.image_rect().adjusted(-2, -2, 2, 2))
            p.end()
