"""Small pieces of the main window: the error banner, tab placeholders, the first-paint hook and
the built-in sample images."""
from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from ..paths import assets_dir

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm", ".pnm", ".tga", ".ico")
IMAGE_FILTER = ("Images (" + " ".join(f"*{e}" for e in IMAGE_EXTENSIONS) + ");;All files (*)")
PREFERRED_SAMPLE = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")
DEFAULT_SIZE = QSize(1600, 1000)
BANNER_MS = 20000


def sample_images() -> list[Path]:
    """The built-in sample images in ``assets/images/``, sorted by name."""
    d = assets_dir() / "images"
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def default_image() -> Path | None:
    """The start-up image: a photo from ``assets/images/`` (or whatever is there)."""
    files = sample_images()
    by_name = {p.name: p for p in files}
    for name in PREFERRED_SAMPLE:
        if name in by_name:
            return by_name[name]
    photos = [p for p in files if p.suffix.lower() in (".jpg", ".jpeg")]
    return (photos or files or [None])[0]


def looks_like_model_folder(p: Path) -> bool:
    return p.is_dir() and any((p / n).exists() for n in ("model_index.json", "config.json", "unet"))


class FirstPaint(QObject):
    """Event filter: calls ``fn`` at the first paint of the watched widget."""

    def __init__(self, fn, parent=None):
        super().__init__(parent)
        self.fn = fn

    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Paint:
            QTimer.singleShot(0, self.fn)
        return False


class Placeholder(QWidget):
    """Stands in a tab until its panel is built (a fraction of a second after start-up)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel("Loading\u2026")
        self.label.setAlignment(Qt.AlignCenter)
        self.label.setStyleSheet("color: #888;")
        QVBoxLayout(self).addWidget(self.label)


class ErrorBanner(QFrame):
    """A non-modal error strip: title, one-line message, a close button (``dismissed`` when the
    user closes it)."""

    dismissed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet("#errorBanner { background: #fdecea; border: 1px solid #e0a39b; "
                           "border-radius: 4px; } QLabel { color: #611a15; }")
        self.label = QLabel()
        self.label.setTextFormat(Qt.RichText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        close = QToolButton()
        close.setText("\u2715")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        close.clicked.connect(self.dismissed)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 4, 4)
        icon = QLabel("\u26a0")
        icon.setStyleSheet("font-size: 16px; color: #b3261e;")
        lay.addWidget(icon)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self.title = ""
        self.message = ""
        self._timer = QTimer(self, singleShot=True, interval=BANNER_MS)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_error(self, title: str, message: str):
        self.title, self.message = title, message
        self.label.setText(f"<b>{html.escape(title)}</b> &mdash; {html.escape(message)}")
        self.show()
        self._timer.start()


class FileDrops:
    """Drag and drop of local files for a window: the first dropped path goes to
    ``self.open_dropped(path)``; drags without local files are refused."""

    def _local_paths(self, mime) -> list[Path]:
        if not mime.hasUrls():
            return []
        return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]

    def dragEnterEvent(self, ev):
        if self._local_paths(ev.mimeData()):
            ev.acceptProposedAction()
        else:
            ev.ignore()

    def dragMoveEvent(self, ev):
        self.dragEnterEvent(ev)

    def dropEvent(self, ev):
        paths = self._local_paths(ev.mimeData())
        if not paths:
            ev.ignore()
            return
        ev.acceptProposedAction()
        self.open_dropped(paths[0])
