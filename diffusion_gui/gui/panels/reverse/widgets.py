"""Small widgets of the reverse panel: a rich-text line that never re-lays out the panel, and an
image view whose picture hangs from the top."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QColor, QFont, QPainter, QPalette, QPen, QTextDocument
from PySide6.QtWidgets import QComboBox, QSizePolicy, QWidget

from ...image_view import ImageView


class Line(QWidget):
    """A one- (or few-) line rich-text label that never re-lays out the panel: ``setText`` only
    repaints (a QLabel asks its parent layout to recompute on every new text, which at 30 frames
    a second costs the GUI thread more than the pictures). ``box``: drawn as a formula box."""

    def __init__(self, lines: int = 1, *, font: QFont | None = None, box: bool = False,
                 align=Qt.AlignLeft):
        super().__init__()
        if font is not None:
            self.setFont(font)
        self._box = box
        self._pad = (12, 5) if box else (0, 1)
        self._doc = QTextDocument(self)
        self._doc.setDocumentMargin(0)
        self._doc.setDefaultFont(self.font())
        opt = self._doc.defaultTextOption()
        opt.setAlignment(align)
        self._doc.setDefaultTextOption(opt)
        self._text = ""
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.set_lines(lines)
        # it paints its whole rect (the window colour first), so a new text repaints only this
        # widget, not the panel, splitter and window beneath it as well
        self.setAttribute(Qt.WA_OpaquePaintEvent, True)

    def set_lines(self, n: int):
        self.setFixedHeight(self.fontMetrics().lineSpacing() * n + 2 * self._pad[1] + 2)

    def setText(self, text: str):
        if text != self._text:
            self._text = text
            self._doc.setHtml(text)
            self.update()

    def text(self) -> str:
        """The plain text shown."""
        return self._doc.toPlainText()

    def paintEvent(self, ev):
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(QPalette.Window))
        p.setRenderHint(QPainter.Antialiasing, True)
        if self._box:
            p.setPen(QPen(QColor("#dddddd"), 1))
            p.setBrush(QColor("#f7f7f4"))
            p.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        px, py = self._pad
        self._doc.setTextWidth(max(10, self.width() - 2 * px))
        p.translate(px, py)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.palette.setColor(QPalette.Text, self.palette().color(QPalette.WindowText))
        self._doc.documentLayout().draw(p, ctx)
        p.end()


class TopView(ImageView):
    """An ImageView whose picture hangs from the top, right under its heading (the slack of an
    integer zoom goes below the caption, not between the heading and the picture)."""

    def image_rect(self):
        r = super().image_rect()
        if r.isEmpty():
            return r
        return QRectF(r.x(), 0.0, r.width(), r.height())


def select_data(combo: QComboBox, value):
    """Select the item whose data is ``value`` (None included); the first item otherwise."""
    for k in range(combo.count()):
        if combo.itemData(k) == value and (value is not None or combo.itemData(k) is None):
            combo.setCurrentIndex(k)
            return
    combo.setCurrentIndex(0)
