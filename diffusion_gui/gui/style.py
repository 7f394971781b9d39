"""Small Qt helpers the panels share for a uniform look."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def heading(html: str) -> QLabel:
    """A rich-text heading over an image, centred and sitting on it, 15 % larger than the text."""
    lab = QLabel(html)
    lab.setAlignment(Qt.AlignHCenter | Qt.AlignBottom)
    lab.setTextFormat(Qt.RichText)
    f = lab.font()
    f.setPointSizeF(f.pointSizeF() * 1.15)
    lab.setFont(f)
    return lab
