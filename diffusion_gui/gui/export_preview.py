"""The Export dialog's right column: :class:`PreviewPane`, the first frame as it will be written
(caption and enlargement included) and the line under it (frames, px, the estimated file size).

The size is estimated in the background (:func:`~diffusion_gui.sessions.export_run.estimate_bytes`
encodes a few frames and extrapolates) through one :class:`~diffusion_gui.gui.workers.JobSlot`:
a newer preview retires the estimate before it, whose result then never arrives.
"""
from __future__ import annotations

import io
import threading

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from ..export.frames import compose
from ..sessions.export_run import describe_bytes, describe_frames, estimate_bytes
from ..sessions.export_sources import ExportOptions, ExportSource
from .image_view import ImageView
from .workers import JobSlot

__all__ = ["PreviewPane", "ExportPreview"]

_PLOT_SIZE = {"svg": "vector drawing", "csv": "x / y columns of every curve"}


class ExportPreview(ImageView):
    """The first frame: crisp integer zoom for small frames, smooth reduction for large ones."""

    def __init__(self, parent=None):
        super().__init__(parent, min_size=220)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(360, 320)

    def _update_smooth(self):
        a = self.image()
        if a is not None:
            h, w = a.shape[:2]
            self._smooth = min(self.width() / w, max(self.height() - 24, 1) / h) < 1

    def set_image(self, arr):
        super().set_image(arr)
        self._update_smooth()

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._update_smooth()


class PreviewPane(QWidget):
    """``view`` (the first frame) and ``info_label``; ``estimate`` (bytes, or None) and
    ``estimate_ready`` (the estimate for the current preview has arrived, or failed)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = ExportPreview()
        self.view.set_placeholder("no preview")
        self.info_label = QLabel(wordWrap=True)
        self.info_label.setAlignment(Qt.AlignHCenter)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(QLabel("<b>First frame</b>"))
        box.addWidget(self.view, 1)
        box.addWidget(self.info_label)
        self.estimate: int | None = None
        self.estimate_ready = False
        self._slot = JobSlot()
        self._stop = threading.Event()       # estimate_bytes' should_stop: a newer one is wanted
        self._info_base = ""

    def show_export(self, src: ExportSource, opts: ExportOptions, fmt: str):
        """Show what ``src`` writes as ``fmt`` with ``opts`` and start estimating its size.
        A source that fails to render raises (the pane then shows no preview)."""
        self.forget_estimate()
        if src.empty_reason():
            self._blank(src.empty_reason())
            return
        try:
            n = src.count(opts)
            if src.kind == "plot":
                shown = src.preview(opts)
            else:
                frame, cap = src.frame_at(opts, 0)
                shown = compose([frame], [cap] if opts.caption and cap else None,
                                max(1, opts.scale))[0]
        except Exception:
            self._blank("no preview")
            raise
        self.view.set_image(shown)
        h, w = shown.shape[:2]
        if src.kind != "plot":
            self._info_base = describe_frames(n, h, w, fmt)
            self.info_label.setText(self._info_base + " \u00b7 estimating the size\u2026")
            self._start_estimate(src, opts, fmt)
        elif fmt == "png":
            self._estimate_png(shown, f"{w} \u00d7 {h} px")
        else:
            self.info_label.setText(_PLOT_SIZE[fmt])
            self.estimate_ready = True

    def _blank(self, placeholder: str):
        self.view.set_image(None)
        self.view.set_placeholder(placeholder)
        self.info_label.setText("")

    def _estimate_png(self, rgb: np.ndarray, size: str):
        """A plot's PNG: encode the picture itself (it is already rendered)."""
        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, format="PNG")
        self.estimate, self.estimate_ready = buf.tell(), True
        self.info_label.setText(f"{size} \u00b7 {describe_bytes(buf.tell())}")

    def forget_estimate(self):
        """Drop the estimate: a running one stops early and its result never arrives."""
        self.estimate, self.estimate_ready = None, False
        self._stop.set()
        self._slot.retire()

    def _start_estimate(self, src, opts, fmt):
        stop = self._stop = threading.Event()

        def done(n):
            self.estimate, self.estimate_ready = n, True
            if n is not None:
                self.info_label.setText(f"{self._info_base} \u00b7 {describe_bytes(n)}")

        def failed(_msg):
            self.estimate_ready = True
            self.info_label.setText(self._info_base)

        self._slot.start(lambda: estimate_bytes(src, opts, fmt, should_stop=stop.is_set),
                         background=True, on_done=done, on_failed=failed, abandonable=True)

    def shutdown(self):
        """Stop and join the estimate (idempotent)."""
        self._stop.set()
        self._slot.shutdown()
