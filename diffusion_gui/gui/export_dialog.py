"""File > Export...: write what the panels offer as a GIF, a PNG sequence, a filmstrip PNG, a PNG,
or a plot as PNG / SVG / CSV.

``ExportDialog(ctx, sources, parent)`` takes the main window's list of export sources (see
:mod:`diffusion_gui.gui.export_sources`; legacy ``(label, fn)`` tuples are wrapped). It is
non-modal (``open()`` / ``show()``) and never blocks:

- the options shown are the ones the chosen source supports; the preview is the first frame as it
  will be written (caption and enlargement included), with its size in px and an estimate of the
  file size (a few frames encoded in the background and extrapolated);
- *Export* renders and writes in a worker thread (:func:`~diffusion_gui.gui.workers.run_job`)
  with a progress bar and *Cancel*; files go to a temporary name in the target folder and are
  renamed when complete, so a cancelled or failed export leaves nothing behind and an existing
  file untouched. Plots are written in the GUI thread (pyqtgraph's exporters draw the scene);
- problems (an unknown extension, a missing or read-only folder, a full disk) appear as one line
  in the dialog, never as a traceback, and the app keeps working;
- the last folder and the GIF settings are remembered in ``ctx.settings`` (group ``export``).

For tests and scripts: :meth:`select_source`, :meth:`set_format`, :meth:`set_options`,
:meth:`set_target`, :meth:`start_export`, :meth:`cancel_export`, :meth:`wait` and the
``finished_export`` signal, ``status`` (``'idle'``, ``'running'``, ``'done'``, ``'cancelled'``,
``'failed'``), ``message`` and ``written``.
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..export import Cancelled, ExportError
from ..export.frames import compose
from .export_sources import (
    FORMATS,
    ExportOptions,
    ExportSource,
    as_source,
    describe_bytes,
    estimate_bytes,
    run_export,
    validate_target,
)
from .image_view import ImageView
from .workers import Job, call_in_background, run_job

#: Largest long side offered by the size choice, in px.
MAX_SIDE = 2048
#: Small frames are enlarged to at least this long side by default (crisp pixels).
DEFAULT_MIN_SIDE = 256
DEBOUNCE_MS = 150
POLL_MS = 50
_CANCELLED = "\x00cancelled"
KIND_NAMES = {"timeline": "frames", "still": "image", "plot": "plot"}


def _error_text(e: BaseException):
    if isinstance(e, Cancelled):
        return _CANCELLED
    if isinstance(e, (ExportError, ValueError)):
        return " ".join(str(e).split())
    if isinstance(e, MemoryError):
        return "not enough memory for this export; try fewer frames or a smaller size"
    if isinstance(e, OSError):
        from ..export.atomic import export_oserror
        return str(export_oserror(e, getattr(e, "filename", None) or "the target"))
    return None


class _Preview(ImageView):
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


class ExportDialog(QDialog):
    """The export dialog (see the module docstring)."""

    #: emitted when an export ends: ``status`` ('done', 'cancelled', 'failed')
    finished_export = Signal(str)

    def __init__(self, ctx, sources, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.settings = ctx.settings
        self.setWindowTitle("Export")
        self.setModal(False)
        self.sources: list[ExportSource] = []
        for s in sources or []:
            try:
                self.sources.append(as_source(s))
            except TypeError:
                continue
        self.status = "idle"
        self.message = ""
        self.written = None
        self.estimate: int | None = None
        self.estimate_ready = False
        self._job: Job | None = None
        self._est_job: Job | None = None
        self._est_gen = 0
        self._cancel = threading.Event()
        self._progress = {"done": 0, "total": 1, "phase": ""}
        self._source: ExportSource | None = None
        self._frame_hw: tuple[int, int] | None = None
        self._frames_before_film: int | None = None
        self._quiet = False
        self._closed = False

        self._refresh_timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._refresh_timer.timeout.connect(self.refresh_preview)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self._show_progress)

        self._build()
        self._restore()
        if self.sources:
            self.source_list.setCurrentRow(0)
        else:
            self._show_message("There is nothing to export yet: open an image first.", "error")
            self.export_btn.setEnabled(False)
        self.resize(1000, 600)

    # ================================================================== layout
    def _build(self):
        self.source_list = QListWidget()
        self.source_list.setMinimumWidth(250)
        self.source_list.setMaximumWidth(340)
        self.source_list.setWordWrap(True)
        self.source_list.setAlternatingRowColors(True)
        for s in self.sources:
            item = QListWidgetItem(s.label)
            item.setToolTip(s.label)
            self.source_list.addItem(item)
        self.source_list.currentRowChanged.connect(self._on_source_row)

        self.format_combo = QComboBox()
        self.format_combo.currentIndexChanged.connect(self._on_format)

        self.frames_spin = QSpinBox(minimum=1, maximum=100000, value=60)
        self.frames_spin.setKeyboardTracking(False)
        self.frames_spin.setToolTip("How many frames to write (t values picked by the spacing)")
        self.spacing_combo = QComboBox()
        self.spacing_combo.addItem("even in t", "even")
        self.spacing_combo.addItem("denser near t = 0", "dense_start")
        self.spacing_combo.setToolTip("Denser near t = 0, where the picture changes most")
        frames_row = QHBoxLayout()
        frames_row.addWidget(self.frames_spin)
        self.spaced_label = QLabel("spaced")
        frames_row.addWidget(self.spaced_label)
        frames_row.addWidget(self.spacing_combo, 1)

        self.t_from = QSpinBox(minimum=0, maximum=1000, value=0)
        self.t_to = QSpinBox(minimum=0, maximum=1000, value=1000)
        for w in (self.t_from, self.t_to):
            w.setKeyboardTracking(False)
        self.t_from.setPrefix("t = ")
        self.t_to.setPrefix("t = ")
        t_row = QHBoxLayout()
        t_row.addWidget(self.t_from, 1)
        t_row.addWidget(QLabel("to"))
        t_row.addWidget(self.t_to, 1)
        t_row_w = QWidget()
        t_row_w.setLayout(t_row)
        t_row.setContentsMargins(0, 0, 0, 0)

        self.which_combo = QComboBox()
        self.which_combo.addItem("x\u209c (the noisy sample)", "xt")
        self.which_combo.addItem("predicted x\u2080", "x0")
        self.which_combo.addItem("both, side by side", "both")
        self.image_combo = QComboBox()
        self.size_combo = QComboBox()
        self.size_combo.setToolTip("Integer enlargement: every pixel becomes a crisp square")
        self.caption_check = QCheckBox("write t and abar_t under each frame")
        self.caption_check.setChecked(True)

        self.fps_spin = QDoubleSpinBox(minimum=1.0, maximum=50.0, value=12.0, decimals=0)
        self.fps_spin.setSuffix(" fps")
        self.fps_spin.setKeyboardTracking(False)
        self.hold_spin = QDoubleSpinBox(minimum=0.0, maximum=10.0, value=1.0, singleStep=0.5,
                                        decimals=1)
        self.hold_spin.setSuffix(" s")
        self.hold_spin.setKeyboardTracking(False)
        self.loop_check = QCheckBox("loop")
        self.loop_check.setChecked(True)
        gif_row = QHBoxLayout()
        gif_row.addWidget(self.fps_spin)
        gif_row.addWidget(QLabel("hold last frame"))
        gif_row.addWidget(self.hold_spin)
        gif_row.addWidget(self.loop_check)
        gif_row.addStretch(1)

        self.width_spin = QSpinBox(minimum=0, maximum=8000, value=0, singleStep=100)
        self.width_spin.setSpecialValueText("as on screen")
        self.width_spin.setSuffix(" px")
        self.width_spin.setKeyboardTracking(False)

        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.form.addRow("Format", self.format_combo)
        self.form.addRow("Frames", frames_row)
        self.form.addRow("Range", t_row_w)
        self.form.addRow("Show", self.which_combo)
        self.form.addRow("Images", self.image_combo)
        self.form.addRow("Size", self.size_combo)
        self.form.addRow("Caption", self.caption_check)
        self.form.addRow("Timing", gif_row)
        self.form.addRow("Width", self.width_spin)
        self._rows = {"frames": frames_row, "t_range": t_row_w, "which": self.which_combo,
                      "image": self.image_combo, "size": self.size_combo,
                      "caption": self.caption_check, "gif": gif_row, "width": self.width_spin}

        self.kind_label = QLabel()
        self.kind_label.setStyleSheet("color: #666;")
        self.kind_label.setWordWrap(True)
        opts_box = QVBoxLayout()
        title = QLabel("<b>Options</b>")
        opts_box.addWidget(title)
        opts_box.addLayout(self.form)
        opts_box.addWidget(self.kind_label)
        opts_box.addStretch(1)

        self.preview = _Preview()
        self.preview.set_placeholder("no preview")
        self.info_label = QLabel()
        self.info_label.setAlignment(Qt.AlignHCenter)
        self.info_label.setWordWrap(True)
        prev_box = QVBoxLayout()
        prev_box.addWidget(QLabel("<b>First frame</b>"))
        prev_box.addWidget(self.preview, 1)
        prev_box.addWidget(self.info_label)

        top = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>What</b>"))
        left.addWidget(self.source_list, 1)
        top.addLayout(left)
        top.addSpacing(8)
        top.addLayout(opts_box, 3)
        top.addSpacing(8)
        top.addLayout(prev_box, 3)

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("file or folder to write")
        self.path_edit.setClearButtonEnabled(True)
        self.browse_btn = QPushButton("Browse\u2026")
        self.browse_btn.clicked.connect(self.browse)
        path_row = QHBoxLayout()
        path_row.addWidget(QLabel("Save to"))
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_btn)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setValue(0)
        sp = self.progress.sizePolicy()
        sp.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(sp)
        self.progress.setVisible(False)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop the export; nothing is written")
        self.cancel_btn.clicked.connect(self.cancel_export)
        self.cancel_btn.setEnabled(False)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message_label.setMinimumHeight(self.message_label.fontMetrics().height() * 2 + 4)
        self.export_btn = QPushButton("Export")
        self.export_btn.setDefault(True)
        self.export_btn.clicked.connect(self.start_export)
        self.close_btn = QPushButton("Close")
        self.close_btn.clicked.connect(self.close)

        run_row = QHBoxLayout()
        run_row.addWidget(self.progress, 1)
        run_row.addWidget(self.cancel_btn)
        run_row.addSpacing(16)
        run_row.addWidget(self.export_btn)
        run_row.addWidget(self.close_btn)

        line = QFrame()
        line.setFrameShape(QFrame.HLine)
        line.setFrameShadow(QFrame.Sunken)
        outer = QVBoxLayout(self)
        outer.addLayout(top, 1)
        outer.addWidget(line)
        outer.addLayout(path_row)
        outer.addWidget(self.message_label)
        outer.addLayout(run_row)

        for w in (self.frames_spin, self.t_from, self.t_to, self.fps_spin, self.hold_spin,
                  self.width_spin):
            w.valueChanged.connect(self._changed)
        for w in (self.spacing_combo, self.which_combo, self.image_combo, self.size_combo):
            w.currentIndexChanged.connect(self._changed)
        for w in (self.caption_check, self.loop_check):
            w.toggled.connect(self._changed)
        self.which_combo.currentIndexChanged.connect(self._rebuild_sizes)
        self.image_combo.currentIndexChanged.connect(self._rebuild_sizes)
        self.path_edit.textEdited.connect(lambda _=None: self._show_message(""))

    def _set_row(self, key: str, visible: bool):
        field = self._rows[key]
        self.form.setRowVisible(field, visible)

    # ================================================================== settings
    def _restore(self):
        s = self.settings

        def get(key, typ, default):
            try:
                v = s.value(f"export/{key}", default)
                return default if v is None or v == "" else typ(v)
            except (TypeError, ValueError):
                return default

        self._quiet = True
        self.fps_spin.setValue(min(max(get("fps", float, 12.0), 1.0), 50.0))
        self.hold_spin.setValue(min(max(get("hold_last_s", float, 1.0), 0.0), 10.0))
        self.loop_check.setChecked(str(get("loop", str, "true")).lower() in ("1", "true"))
        self.caption_check.setChecked(str(get("caption", str, "true")).lower() in ("1", "true"))
        self._quiet = False

    def _save(self):
        s = self.settings
        s.setValue("export/fps", float(self.fps_spin.value()))
        s.setValue("export/hold_last_s", float(self.hold_spin.value()))
        s.setValue("export/loop", bool(self.loop_check.isChecked()))
        s.setValue("export/caption", bool(self.caption_check.isChecked()))

    def last_folder(self) -> Path:
        for key in ("export/folder", "last_folder"):
            v = self.settings.value(key, "")
            if v and Path(str(v)).is_dir():
                return Path(str(v))
        return Path.home()

    # ================================================================== state
    def current_source(self) -> ExportSource | None:
        return self._source

    def current_format(self) -> str | None:
        return self.format_combo.currentData()

    def options(self) -> ExportOptions:
        """The options as set in the dialog."""
        src = self._source
        o = src.default_options() if src is not None else ExportOptions()
        lo, hi = self.t_from.value(), self.t_to.value()
        img = self.image_combo.currentData()
        return ExportOptions(
            t_range=(min(lo, hi), max(lo, hi)) if src is not None and "t_range" in src.options
            else None,
            n_frames=int(self.frames_spin.value()),
            spacing=self.spacing_combo.currentData() or o.spacing,
            which=self.which_combo.currentData() or o.which,
            image=None if img is None or img < 0 else int(img),
            caption=bool(self.caption_check.isChecked()),
            scale=int(self.size_combo.currentData() or 1),
            fps=float(self.fps_spin.value()),
            hold_last_s=float(self.hold_spin.value()),
            loop=bool(self.loop_check.isChecked()),
            width=int(self.width_spin.value()) or None)

    def target_path(self) -> str:
        return self.path_edit.text().strip()

    def is_running(self) -> bool:
        return self.status == "running"

    # ================================================================== public API
    def select_source(self, which) -> ExportSource:
        """Choose a source by index, label or label prefix."""
        if isinstance(which, int):
            row = which
        else:
            labels = [s.label for s in self.sources]
            row = labels.index(which) if which in labels else next(
                (k for k, lab in enumerate(labels) if lab.startswith(str(which))), -1)
            if row < 0:
                raise KeyError(f"no export source {which!r}; have {labels}")
        self.source_list.setCurrentRow(row)
        return self._source

    def set_format(self, fmt: str):
        k = self.format_combo.findData(fmt)
        if k < 0:
            raise KeyError(f"format {fmt!r} not offered for {self._source.label!r}")
        self.format_combo.setCurrentIndex(k)

    def set_options(self, **kw):
        """Set dialog widgets by option name: n_frames, spacing, t_range, which, image,
        caption, scale, fps, hold_last_s, loop, width."""
        scale = kw.pop("scale", None)
        self._quiet = True
        try:
            for key, v in kw.items():
                if key == "n_frames":
                    self.frames_spin.setValue(int(v))
                elif key == "spacing":
                    self.spacing_combo.setCurrentIndex(self.spacing_combo.findData(v))
                elif key == "t_range":
                    self.t_from.setValue(int(v[0]))
                    self.t_to.setValue(int(v[1]))
                elif key == "which":
                    self.which_combo.setCurrentIndex(self.which_combo.findData(v))
                elif key == "image":
                    self.image_combo.setCurrentIndex(
                        self.image_combo.findData(-1 if v is None else int(v)))
                elif key == "caption":
                    self.caption_check.setChecked(bool(v))
                elif key == "fps":
                    self.fps_spin.setValue(float(v))
                elif key == "hold_last_s":
                    self.hold_spin.setValue(float(v))
                elif key == "loop":
                    self.loop_check.setChecked(bool(v))
                elif key == "width":
                    self.width_spin.setValue(int(v or 0))
                else:
                    raise KeyError(key)
            self._quiet = False
            self._rebuild_sizes()
            self._quiet = True
            if scale is not None:
                k = self.size_combo.findData(int(scale))
                if k < 0:
                    raise ValueError(f"scale {scale} is not offered for this frame size")
                self.size_combo.setCurrentIndex(k)
        finally:
            self._quiet = False
        self.refresh_preview()

    def set_target(self, path):
        self.path_edit.setText(os.fspath(path))
        self._show_message("")

    def wait(self, timeout_ms: int = 60000) -> bool:
        """Block (processing events) until the running export ends. For tests and scripts."""
        from PySide6.QtCore import QCoreApplication, QElapsedTimer
        t = QElapsedTimer()
        t.start()
        while self.status == "running" and t.elapsed() < timeout_ms:
            QCoreApplication.processEvents()
            if self._job is not None:
                self._job.thread.wait(10)
        QCoreApplication.processEvents()
        return self.status != "running"

    # ================================================================== reactions
    def _on_source_row(self, row: int):
        if not 0 <= row < len(self.sources):
            return
        src = self.sources[row]
        src.prepare()
        self._source = src
        self._quiet = True
        try:
            prev = self.format_combo.currentData()
            self.format_combo.clear()
            for f in src.formats():
                self.format_combo.addItem(FORMATS[f][0], f)
            remembered = self.settings.value(f"export/format_{src.kind}", None)
            for want in (prev, remembered):
                k = self.format_combo.findData(want)
                if k >= 0:
                    self.format_combo.setCurrentIndex(k)
                    break
            d = src.default_options()
            opts = src.options
            mx = max(1, src.max_frames)
            self.frames_spin.setRange(min(2, mx), mx)
            self.frames_spin.setValue(min(d.n_frames, mx))
            self.spacing_combo.setCurrentIndex(max(0, self.spacing_combo.findData(d.spacing)))
            T = src.T if src.T is not None else 0
            for w in (self.t_from, self.t_to):
                w.setRange(0, T)
            self.t_from.setValue(0)
            self.t_to.setValue(T)
            self.which_combo.setCurrentIndex(max(0, self.which_combo.findData(d.which)))
            self.image_combo.clear()
            B = src.batch_size
            self.image_combo.addItem(f"all {B} images (grid)" if B > 1 else "the image", -1)
            for k in range(B if B > 1 else 0):
                self.image_combo.addItem(f"image {k + 1}", k)
            self._set_row("frames", "n_frames" in opts)
            self.spacing_combo.setVisible("spacing" in opts)
            self.spaced_label.setVisible("spacing" in opts)
            self._set_row("t_range", "t_range" in opts)
            self._set_row("which", "which" in opts)
            self._set_row("image", "image" in opts)
            self._set_row("size", "size" in opts)
            self._set_row("caption", "caption" in opts)
            self.kind_label.setText({"timeline": "Several frames: an animated GIF, one PNG a "
                                                 "frame, or all of them in one filmstrip PNG.",
                                     "still": "One image, written as a PNG.",
                                     "plot": "The plot through pyqtgraph's exporters: a PNG "
                                             "picture, an SVG drawing or the CSV data."
                                     }[src.kind])
        finally:
            self._quiet = False
        self._frame_hw = None
        self._frames_before_film = None
        self.size_combo.clear()                    # a new source starts at its default size
        self._rebuild_sizes()
        if self.current_format() == "filmstrip":
            self._enter_filmstrip()
        self._update_format_rows()
        self._retarget(new_source=True)
        reason = src.empty_reason()
        self.export_btn.setEnabled(reason is None and not self.is_running())
        self._show_message(f"{src.label}: {reason}" if reason else "", "error" if reason else "")
        self.refresh_preview()

    def _on_format(self, _=None):
        if self._quiet:
            return
        fmt = self.current_format()
        src = self._source
        if src is not None and fmt:
            self.settings.setValue(f"export/format_{src.kind}", fmt)
            if fmt == "filmstrip":
                self._enter_filmstrip()
            elif self._frames_before_film is not None:      # back from a filmstrip
                self._quiet = True
                self.frames_spin.setValue(self._frames_before_film)
                self._quiet = False
                self._frames_before_film = None
        self._update_format_rows()
        self._retarget()
        self._changed()

    def _enter_filmstrip(self):
        """A filmstrip wants a few frames: 8 unless fewer were asked for."""
        n = self.frames_spin.value()
        if n > 10:
            self._frames_before_film = n
            self._quiet = True
            self.frames_spin.setValue(min(8, self.frames_spin.maximum()))
            self._quiet = False

    def _update_format_rows(self):
        fmt = self.current_format()
        self._set_row("gif", fmt == "gif")
        self._set_row("width", self._source is not None and self._source.kind == "plot"
                      and fmt == "png")

    def _changed(self, *_):
        if self._quiet:
            return
        if self.status != "running":
            self._show_message("")
        self._refresh_timer.start()

    def _rebuild_sizes(self, *_):
        """Fill the size choice from the frame size (integer factors up to MAX_SIDE px)."""
        src = self._source
        if src is None or src.kind == "plot" or src.empty_reason():
            return
        try:
            o = self.options()
            f = src.preview(replace(o, caption=False, scale=1))
        except Exception:  # noqa: BLE001 - shown by refresh_preview
            return
        h, w = f.shape[:2]
        if self._frame_hw == (h, w) and self.size_combo.count():
            return
        old_hw, self._frame_hw = self._frame_hw, (h, w)
        keep = self.size_combo.currentData()
        long_side = max(h, w)
        kmax = max(1, MAX_SIDE // long_side)
        factors = [k for k in range(1, kmax + 1) if k <= 8 or k in (10, 12, 16, 20, 24, 32)]
        if keep is None or old_hw is None:           # a new source: at least 256 px
            need = max(1, math.ceil(DEFAULT_MIN_SIDE / long_side))
            want = next((k for k in factors if k >= need), factors[-1])
        else:                                        # same source, other layout: same px size
            side = max(old_hw) * int(keep)
            want = min(factors, key=lambda k: (abs(k * long_side - side), k))
        self._quiet = True
        try:
            self.size_combo.clear()
            for k in factors:
                label = "original" if k == 1 else f"\u00d7{k}"
                self.size_combo.addItem(f"{label}  ({w * k} \u00d7 {h * k} px)", k)
            self.size_combo.setCurrentIndex(factors.index(want))
        finally:
            self._quiet = False

    def _retarget(self, new_source: bool = False):
        """Put the right extension (and, for a new source, its name) on the target path."""
        src, fmt = self._source, self.current_format()
        if src is None or not fmt:
            return
        ext = FORMATS[fmt][1]
        text = self.target_path()
        if text:
            p = Path(text)
            folder = p.parent
            stem = src.name if new_source else (p.stem if p.suffix else p.name)
        else:
            folder, stem = self.last_folder(), src.name
        if fmt == "png_sequence":
            name = stem if stem.endswith("frames") else f"{stem}-frames"
        else:
            name = (stem[:-len("-frames")] if stem.endswith("-frames") else stem) + ext
        self.path_edit.setText(str(folder / name))

    def browse(self):
        src, fmt = self._source, self.current_format()
        if src is None or not fmt:
            return
        start = self.target_path() or str(self.last_folder())
        if fmt == "png_sequence":
            path = QFileDialog.getExistingDirectory(self, "Folder for the PNG frames",
                                                    str(Path(start).parent))
            if path:
                self.set_target(Path(path) / Path(start).name)
            return
        name, ext = FORMATS[fmt]
        path, _ = QFileDialog.getSaveFileName(self, f"Export {src.label}", start,
                                              f"{name} (*{ext})")
        if path:
            if not Path(path).suffix:
                path += ext
            self.set_target(path)

    # ================================================================== preview
    def refresh_preview(self):
        """The first frame as it will be written, its size, and (in the background) the
        estimated file size."""
        self._refresh_timer.stop()
        src, fmt = self._source, self.current_format()
        self.estimate, self.estimate_ready = None, False
        self._est_gen += 1
        if src is None or not fmt:
            return
        if src.empty_reason():
            self.preview.set_image(None)
            self.preview.set_placeholder(src.empty_reason())
            self.info_label.setText("")
            return
        opts = self.options()
        try:
            n = src.count(opts)
            if src.kind == "plot":
                shown = src.preview(opts)
            else:
                frame, cap = src.frame_at(opts, 0)
                shown = compose([frame], [cap] if opts.caption and cap else None,
                                max(1, opts.scale))[0]
        except Exception as e:  # noqa: BLE001 - a preview never takes the dialog down
            self.preview.set_image(None)
            self.preview.set_placeholder("no preview")
            self.info_label.setText("")
            self._show_message(f"Cannot preview {src.label}: {e}", "error")
            return
        self.preview.set_image(shown)
        h, w = shown.shape[:2]
        if src.kind == "plot":
            size = {"png": f"{w} \u00d7 {h} px", "svg": "vector drawing",
                    "csv": "x / y columns of every curve"}[fmt]
            self.info_label.setText(size)
            if fmt == "png":
                self._estimate_plot_png(shown)
            else:
                self.estimate_ready = True
            return
        what = "1 frame" if n == 1 else f"{n} frames"
        if fmt == "filmstrip":
            from .export_sources import filmstrip_columns
            cols = filmstrip_columns(n)
            rows = math.ceil(n / cols)
            what += f" in {rows} row{'s' if rows > 1 else ''} of {cols}"
            w, h = cols * w + (cols - 1) * 2, rows * h + (rows - 1) * 2   # the whole strip
        self._info_base = f"{what} \u00b7 {w} \u00d7 {h} px"
        self.info_label.setText(self._info_base + " \u00b7 estimating the size\u2026")
        self._start_estimate(src, opts, fmt)

    def _estimate_plot_png(self, rgb: np.ndarray):
        import io

        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, format="PNG")
        self.estimate, self.estimate_ready = buf.tell(), True
        self.info_label.setText(self.info_label.text() + f" \u00b7 {describe_bytes(buf.tell())}")

    def _start_estimate(self, src, opts, fmt):
        gen = self._est_gen

        def work():
            return estimate_bytes(src, opts, fmt, should_stop=lambda: gen != self._est_gen)

        def done(n):
            if gen != self._est_gen or self._closed:
                return
            self.estimate, self.estimate_ready = n, True
            if n is not None:
                self.info_label.setText(f"{self._info_base} \u00b7 {describe_bytes(n)}")

        def failed(msg):
            if gen == self._est_gen and not self._closed:
                self.estimate_ready = True
                self.info_label.setText(self._info_base)

        if self._est_job is not None and self._est_job.is_running():
            self._est_job.detach()
        self._est_job = call_in_background(work, on_done=done, on_failed=failed,
                                           error_text=lambda e: str(e))

    # ================================================================== export
    def start_export(self) -> bool:
        """Check the target and start the export (plots: written at once). False if it could
        not start (the reason is in the dialog)."""
        if self.is_running():
            return False
        src, fmt = self._source, self.current_format()
        if src is None or not fmt:
            return False
        reason = src.empty_reason()
        if reason:
            self._fail(f"{src.label}: {reason}")
            return False
        text = self.target_path()
        if fmt != "png_sequence" and text and not Path(text).suffix:
            text += FORMATS[fmt][1]                    # a name typed without its extension
            self.path_edit.setText(text)
        try:
            target = validate_target(fmt, text)
        except ExportError as e:
            self._fail(str(e))
            return False
        opts = self.options()
        self._save()
        if src.kind == "plot":
            try:
                out = src.export(fmt, target, opts)
            except (ExportError, ValueError, OSError) as e:
                msg = _error_text(e) or str(e)
                self._fail(msg)
                return False
            self._succeed(out)
            return True

        self._cancel = threading.Event()
        cancel = self._cancel
        state = self._progress = {"done": 0, "total": 1, "phase": "frames"}

        def progress(done, total, phase):
            state["done"], state["total"], state["phase"] = done, total, phase
            return not cancel.is_set()

        def gen():
            yield run_export(src, opts, fmt, target, progress)

        self.status = "running"
        self.written = None
        self._target = target
        self._target_existed = target.exists()
        self._show_message(f"Exporting {src.label}\u2026", "")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("starting\u2026")
        self.progress.setVisible(True)
        self.cancel_btn.setEnabled(True)
        self.export_btn.setEnabled(False)
        self._job = run_job(gen, on_finished=self._job_done, on_failed=self._job_failed,
                            max_rate=0, error_text=_error_text)
        self._poll.start()
        return True

    def cancel_export(self):
        """Stop the running export; nothing is written and an existing file stays as it was."""
        if self.is_running():
            self._cancel.set()
            self.cancel_btn.setEnabled(False)
            self.progress.setFormat("cancelling\u2026")

    def _show_progress(self):
        st = self._progress
        done, total = st["done"], max(1, st["total"])
        self.progress.setValue(int(1000 * done / total))
        n = total // 2
        if st["phase"] == "frames":
            self.progress.setFormat(f"rendering frame {min(done + 1, n)} of {n}")
        else:
            self.progress.setFormat(f"writing {FORMATS[self.current_format() or 'gif'][0]}"
                                    f" \u2014 {min(max(done - n, 0), n)} of {n}")

    def _end_run(self, status: str):
        self._poll.stop()
        self._job = None
        self.status = status
        self.cancel_btn.setEnabled(False)
        src = self._source
        self.export_btn.setEnabled(src is not None and src.empty_reason() is None)
        self.progress.setVisible(status == "done")
        self.finished_export.emit(status)

    def _job_done(self, out):
        self.progress.setValue(1000)
        self.progress.setFormat("done")
        self._succeed(out, from_job=True)

    def _job_failed(self, msg: str):
        if msg == _CANCELLED:
            kept = (f"'{self._target.name}' is unchanged" if self._target_existed
                    else "nothing was written")
            self.message = f"Export cancelled: {kept}."
            self._show_message(self.message, "")
            self._end_run("cancelled")
            return
        self._fail(msg, from_job=True)

    def _fail(self, msg: str, from_job: bool = False):
        self.message = f"Export failed: {msg}"
        self._show_message(self.message, "error")
        if from_job:
            self._end_run("failed")
        else:
            self.progress.setVisible(False)
            self.status = "failed"
            self.finished_export.emit("failed")

    def _succeed(self, out, from_job: bool = False):
        self.written = out
        first = Path(out[0]) if isinstance(out, list) else Path(out)
        if isinstance(out, list):
            folder = first.parent
            total = sum(p.stat().st_size for p in out if p.exists())
            what = f"{len(out)} PNG files into {folder}"
            self.settings.setValue("export/folder", str(folder.parent))
        else:
            total = first.stat().st_size if first.exists() else 0
            what = str(first)
            self.settings.setValue("export/folder", str(first.parent))
        size = describe_bytes(total).replace("about ", "")
        self.message = f"Wrote {what} ({size})."
        self._show_message(self.message, "ok")
        try:
            self.ctx.status.emit(self.message)
        except RuntimeError:
            pass
        if from_job:
            self._end_run("done")
        else:
            self.status = "done"
            self.finished_export.emit("done")

    def _show_message(self, text: str, kind: str = ""):
        color = {"error": "#b3261e", "ok": "#1b6e20"}.get(kind, "#444")
        self.message_label.setStyleSheet(f"color: {color};")
        self.message_label.setText(text)
        if kind == "error":
            self.message = text

    # ================================================================== closing
    def shutdown(self):
        """Cancel a running export and wait for its thread (and the estimate's). Idempotent."""
        self._closed = True
        self._refresh_timer.stop()
        self._poll.stop()
        if self._job is not None:
            self._cancel.set()
            self._job.detach()
            self._job.stop(timeout_ms=None)
            self._job = None
            if self.status == "running":
                self.status = "cancelled"
        if self._est_job is not None:
            self._est_gen += 1
            self._est_job.detach()
            self._est_job.stop(timeout_ms=None)
            self._est_job = None

    def closeEvent(self, ev):
        self.shutdown()
        super().closeEvent(ev)

    def done(self, r):
        self.shutdown()
        super().done(r)

    def open(self):
        """Show the dialog **non-modally** (QDialog.open() would make it window-modal): the
        panels stay usable while an export runs."""
        self.setModal(False)
        self.show()
        self.raise_()
        self.activateWindow()

    def showEvent(self, ev):
        self._closed = False
        super().showEvent(ev)


__all__ = ["ExportDialog"]
