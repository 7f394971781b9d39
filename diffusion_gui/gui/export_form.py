"""The Export dialog's middle column: :class:`OptionsForm`, the format and the options the
chosen source supports.

The form reads and writes an :class:`~diffusion_gui.sessions.export_sources.ExportOptions`;
it knows nothing of files, jobs or messages (that is :mod:`diffusion_gui.gui.export_dialog`).
"""
from __future__ import annotations

import math
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..sessions.export_settings import ExportSettings
from ..sessions.export_sources import ANIMATED, FORMATS, ExportOptions, ExportSource

__all__ = ["OptionsForm", "MAX_SIDE", "DEFAULT_MIN_SIDE"]

#: Largest long side offered by the size choice, in px.
MAX_SIDE = 2048
#: Small frames are enlarged to at least this long side by default (crisp pixels).
DEFAULT_MIN_SIDE = 256
#: A filmstrip wants a few frames: this many, when more were asked for.
FILMSTRIP_FRAMES = 8
KIND_TEXT = {
    "timeline": "Several frames: an animation (GIF; MP4 or WebM video for slides and web "
                "pages, much smaller; lossless WebP or APNG), one PNG a frame, or all of them "
                "in one filmstrip PNG.",
    "still": "One image, written as a PNG.",
    "plot": "The plot through pyqtgraph's exporters: a PNG picture, an SVG drawing or the CSV "
            "data.",
}


def _hbox(*items) -> QHBoxLayout:
    row = QHBoxLayout()
    for it in items:
        if isinstance(it, int):
            row.addStretch(it)
        else:
            row.addWidget(it)
    return row


class OptionsForm(QWidget):
    """Format, frames (count and spacing), paper-t range (t = 0 clean .. T noise), x_t / x0,
    image of the batch, size, caption, GIF timing, plot width. Only the rows that apply to the
    source (:meth:`configure`) and format are shown.

    ``changed``: an option changed (not while the form sets itself up). ``format_changed(fmt)``:
    the format changed (after the form adapted its rows)."""

    changed = Signal()
    format_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.source: ExportSource | None = None
        self._quiet = False
        self._frame_hw: tuple[int, int] | None = None
        self._frames_before_film: int | None = None
        self._make_widgets()
        self._lay_out()
        self._connect()

    # ---------------------------------------------------------------- building
    def _make_widgets(self):
        self.format_combo = QComboBox()
        self.frames_spin = QSpinBox(minimum=1, maximum=100000, value=60)
        self.frames_spin.setToolTip("How many frames to write (t values picked by the spacing)")
        self.spacing_combo = QComboBox()
        self.spacing_combo.addItem("even in t", "even")
        self.spacing_combo.addItem("denser near t = 0", "dense_start")
        self.spacing_combo.setToolTip("Denser near t = 0, where the picture changes most")
        self.spaced_label = QLabel("spaced")
        self.t_from = QSpinBox(minimum=0, maximum=1000, value=0, prefix="t = ")
        self.t_to = QSpinBox(minimum=0, maximum=1000, value=1000, prefix="t = ")
        self.which_combo = QComboBox()
        self.which_combo.addItem("x\u209c (the noisy sample)", "xt")
        self.which_combo.addItem("predicted x\u2080", "x0")
        self.which_combo.addItem("both, side by side", "both")
        self.image_combo = QComboBox()
        self.size_combo = QComboBox()
        self.size_combo.setToolTip("Integer enlargement: every pixel becomes a crisp square")
        self.caption_check = QCheckBox("write t, abar_t and what the frame shows under it", checked=True)
        self.fps_spin = QDoubleSpinBox(minimum=1.0, maximum=50.0, value=12.0, decimals=0,
                                       suffix=" fps")
        self.hold_spin = QDoubleSpinBox(minimum=0.0, maximum=10.0, value=1.0, singleStep=0.5,
                                        decimals=1, suffix=" s")
        self.hold_spin.setToolTip("Seconds the last frame stays on screen longer")
        self.hold_first_spin = QDoubleSpinBox(minimum=0.0, maximum=10.0, value=0.0,
                                              singleStep=0.5, decimals=1, suffix=" s")
        self.hold_first_spin.setToolTip("Seconds the first frame stays on screen longer")
        self.loop_check = QCheckBox("loop", checked=True)
        self.width_spin = QSpinBox(minimum=0, maximum=8000, value=0, singleStep=100,
                                   suffix=" px")
        self.width_spin.setSpecialValueText("as on screen")
        self.kind_label = QLabel()
        self.kind_label.setStyleSheet("color: #666;")
        self.kind_label.setWordWrap(True)
        for w in self._spins():
            w.setKeyboardTracking(False)

    def _spins(self):
        return (self.frames_spin, self.t_from, self.t_to, self.fps_spin, self.hold_spin,
                self.hold_first_spin, self.width_spin)

    def _lay_out(self):
        frames_row = _hbox(self.frames_spin, self.spaced_label)
        frames_row.addWidget(self.spacing_combo, 1)
        t_row = QHBoxLayout()
        t_row.addWidget(self.t_from, 1)
        t_row.addWidget(QLabel("to"))
        t_row.addWidget(self.t_to, 1)
        t_row.setContentsMargins(0, 0, 0, 0)
        t_row_w = QWidget()
        t_row_w.setLayout(t_row)
        gif_row = _hbox(self.fps_spin, QLabel("hold first"), self.hold_first_spin,
                        QLabel("last"), self.hold_spin, self.loop_check, 1)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self._rows = {"frames": frames_row, "t_range": t_row_w, "which": self.which_combo,
                      "image": self.image_combo, "size": self.size_combo,
                      "caption": self.caption_check, "gif": gif_row, "width": self.width_spin}
        self.form.addRow("Format", self.format_combo)
        for label, key in (("Frames", "frames"), ("Range", "t_range"), ("Show", "which"),
                           ("Images", "image"), ("Size", "size"), ("Caption", "caption"),
                           ("Timing", "gif"), ("Width", "width")):
            self.form.addRow(label, self._rows[key])
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(QLabel("<b>Options</b>"))
        box.addLayout(self.form)
        box.addWidget(self.kind_label)
        box.addStretch(1)

    def _connect(self):
        self.format_combo.currentIndexChanged.connect(self._on_format)
        for w in self._spins():
            w.valueChanged.connect(self._changed)
        for w in (self.spacing_combo, self.which_combo, self.image_combo, self.size_combo):
            w.currentIndexChanged.connect(self._changed)
        for w in (self.caption_check, self.loop_check):
            w.toggled.connect(self._changed)
        self.which_combo.currentIndexChanged.connect(self.rebuild_sizes)
        self.image_combo.currentIndexChanged.connect(self.rebuild_sizes)

    def _set_row(self, key: str, visible: bool):
        self.form.setRowVisible(self._rows[key], visible)

    def _changed(self, *_):
        if not self._quiet:
            self.changed.emit()

    # ---------------------------------------------------------------- settings
    def restore(self, prefs: ExportSettings):
        """Show the remembered GIF timing and caption choice."""
        self._quiet = True
        try:
            self.fps_spin.setValue(prefs.fps)
            self.hold_spin.setValue(prefs.hold_last_s)
            self.hold_first_spin.setValue(prefs.hold_first_s)
            self.loop_check.setChecked(prefs.loop)
            self.caption_check.setChecked(prefs.caption)
        finally:
            self._quiet = False

    def remembered(self, prefs: ExportSettings) -> ExportSettings:
        """``prefs`` with the GIF timing and caption choice as set now."""
        return replace(prefs, fps=float(self.fps_spin.value()),
                       hold_last_s=float(self.hold_spin.value()),
                       hold_first_s=float(self.hold_first_spin.value()),
                       loop=self.loop_check.isChecked(), caption=self.caption_check.isChecked())

    # ---------------------------------------------------------------- the source
    def configure(self, src: ExportSource, remembered_format: str | None = None):
        """Offer ``src``'s formats (the current one kept if offered, else ``remembered_format``)
        and options, at the source's defaults."""
        self.source = src
        self._quiet = True
        try:
            self._fill_formats(src, remembered_format)
            self._set_defaults(src)
            opts = src.options
            for key in ("t_range", "which", "image", "size", "caption"):
                self._set_row(key, key in opts)
            self._set_row("frames", "n_frames" in opts)
            self.spacing_combo.setVisible("spacing" in opts)
            self.spaced_label.setVisible("spacing" in opts)
            self.kind_label.setText(KIND_TEXT[src.kind])
        finally:
            self._quiet = False
        self._frame_hw = None
        self._frames_before_film = None
        self.size_combo.clear()                    # a new source starts at its default size
        self.rebuild_sizes()
        if self.current_format() == "filmstrip":
            self._enter_filmstrip()
        self._update_format_rows()

    def _fill_formats(self, src, remembered):
        prev = self.format_combo.currentData()
        self.format_combo.clear()
        for f in src.formats():
            self.format_combo.addItem(FORMATS[f][0], f)
        for want in (prev, remembered):
            k = self.format_combo.findData(want)
            if k >= 0:
                self.format_combo.setCurrentIndex(k)
                break

    def _set_defaults(self, src):
        d = src.default_options()
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

    # ---------------------------------------------------------------- format
    def current_format(self) -> str | None:
        return self.format_combo.currentData()

    def set_format(self, fmt: str):
        k = self.format_combo.findData(fmt)
        if k < 0:
            label = self.source.label if self.source is not None else None
            raise KeyError(f"format {fmt!r} not offered for {label!r}")
        self.format_combo.setCurrentIndex(k)

    def _on_format(self, _=None):
        fmt = self.current_format()
        if self._quiet or self.source is None or not fmt:
            return
        if fmt == "filmstrip":
            self._enter_filmstrip()
        elif self._frames_before_film is not None:      # back from a filmstrip
            self._quiet = True
            self.frames_spin.setValue(self._frames_before_film)
            self._quiet = False
            self._frames_before_film = None
        self._update_format_rows()
        self.format_changed.emit(fmt)

    def _enter_filmstrip(self):
        """A filmstrip wants a few frames: 8 unless fewer were asked for."""
        n = self.frames_spin.value()
        if n > 10:
            self._frames_before_film = n
            self._quiet = True
            self.frames_spin.setValue(min(FILMSTRIP_FRAMES, self.frames_spin.maximum()))
            self._quiet = False

    def _update_format_rows(self):
        fmt = self.current_format()
        self._set_row("gif", fmt in ANIMATED)
        self.loop_check.setVisible(fmt in ("gif", "webp", "apng"))   # a video's player loops
        self._set_row("width", self.source is not None and self.source.kind == "plot"
                      and fmt == "png")

    # ---------------------------------------------------------------- options
    def options(self) -> ExportOptions:
        """The options as set in the form."""
        src = self.source
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
            hold_first_s=float(self.hold_first_spin.value()),
            loop=bool(self.loop_check.isChecked()),
            width=int(self.width_spin.value()) or None)

    def set_values(self, **kw):
        """Set widgets by option name: n_frames, spacing, t_range, which, image, caption,
        scale, fps, hold_first_s, hold_last_s, loop, width (no ``changed`` signal)."""
        scale = kw.pop("scale", None)
        setters = {
            "n_frames": lambda v: self.frames_spin.setValue(int(v)),
            "spacing": lambda v: self.spacing_combo.setCurrentIndex(
                self.spacing_combo.findData(v)),
            "t_range": lambda v: (self.t_from.setValue(int(v[0])), self.t_to.setValue(int(v[1]))),
            "which": lambda v: self.which_combo.setCurrentIndex(self.which_combo.findData(v)),
            "image": lambda v: self.image_combo.setCurrentIndex(
                self.image_combo.findData(-1 if v is None else int(v))),
            "caption": lambda v: self.caption_check.setChecked(bool(v)),
            "fps": lambda v: self.fps_spin.setValue(float(v)),
            "hold_last_s": lambda v: self.hold_spin.setValue(float(v)),
            "hold_first_s": lambda v: self.hold_first_spin.setValue(float(v)),
            "loop": lambda v: self.loop_check.setChecked(bool(v)),
            "width": lambda v: self.width_spin.setValue(int(v or 0)),
        }
        self._quiet = True
        try:
            for key, v in kw.items():
                if key not in setters:
                    raise KeyError(key)
                setters[key](v)
            self._quiet = False
            self.rebuild_sizes()
            self._quiet = True
            if scale is not None:
                k = self.size_combo.findData(int(scale))
                if k < 0:
                    raise ValueError(f"scale {scale} is not offered for this frame size")
                self.size_combo.setCurrentIndex(k)
        finally:
            self._quiet = False

    def rebuild_sizes(self, *_):
        """Fill the size choice from the frame size (integer factors up to MAX_SIDE px): at
        least DEFAULT_MIN_SIDE px for a new source, the same px size for another layout."""
        src = self.source
        if src is None or src.kind == "plot" or src.empty_reason():
            return
        try:
            f = src.preview(replace(self.options(), caption=False, scale=1))
        except Exception:  # noqa: BLE001 - the dialog's preview says what went wrong
            return
        h, w = f.shape[:2]
        if self._frame_hw == (h, w) and self.size_combo.count():
            return
        old_hw, self._frame_hw = self._frame_hw, (h, w)
        keep = self.size_combo.currentData()
        long_side = max(h, w)
        kmax = max(1, MAX_SIDE // long_side)
        factors = [k for k in range(1, kmax + 1) if k <= 8 or k in (10, 12, 16, 20, 24, 32)]
        if keep is None or old_hw is None:
            need = max(1, math.ceil(DEFAULT_MIN_SIDE / long_side))
            want = next((k for k in factors if k >= need), factors[-1])
        else:
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
