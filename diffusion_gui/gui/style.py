"""Small Qt helpers the panels share for a uniform look."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget


def heading(html: str) -> QLabel:
    """A rich-text heading over an image, centred and sitting on it, 15 % larger than the text."""
    lab = QLabel(html)
    lab.setAlignment(Qt.AlignHCenter | Qt.AlignBottom)
    lab.setTextFormat(Qt.RichText)
    f = lab.font()
    f.setPointSizeF(f.pointSizeF() * 1.15)
    lab.setFont(f)
    return lab


def control_column(boxes) -> tuple[QScrollArea, QWidget]:
    """A panel's left column: ``boxes`` (group boxes) stacked from the top, in a scroll area that
    scrolls only vertically. Returns ``(scroll_area, column)``; the caller sets the widths."""
    column = QWidget()
    lay = QVBoxLayout(column)
    lay.setContentsMargins(6, 6, 6, 6)
    for box in boxes:
        lay.addWidget(box)
    lay.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidget(column)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    return scroll, column
