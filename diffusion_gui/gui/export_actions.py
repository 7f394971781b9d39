"""The Export dialog's bottom rows: :class:`TargetRow` (where to write) and :class:`RunBar`
(progress, Cancel, Export, Close). They hold widgets and their states only; what happens on a
click is the dialog's (:mod:`diffusion_gui.gui.export_dialog`)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QWidget

from ..sessions.export_run import suggest_target
from ..sessions.export_sources import FORMATS, ExportSource

__all__ = ["TargetRow", "RunBar"]


class TargetRow(QWidget):
    """"Save to" [path] [Browse...]. ``edited``: the user typed in the path."""

    edited = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.path_edit = QLineEdit(placeholderText="file or folder to write")
        self.path_edit.setClearButtonEnabled(True)
        self.path_edit.textEdited.connect(lambda _=None: self.edited.emit())
        self.browse_btn = QPushButton("Browse\u2026")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Save to"))
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_btn)

    def text(self) -> str:
        return self.path_edit.text().strip()

    def set_text(self, path: str):
        self.path_edit.setText(path)

    def retarget(self, src: ExportSource, fmt: str, folder: Path, *, new_source: bool = False):
        """Put ``fmt``'s extension (and, for a new source, its name) on the path; ``folder``
        when the path is empty."""
        self.set_text(suggest_target(self.text(), fmt, src.name, folder, new_source=new_source))

    def with_extension(self, fmt: str) -> str:
        """The path, with ``fmt``'s extension added when it was typed without one."""
        text = self.text()
        if fmt != "png_sequence" and text and not Path(text).suffix:
            text += FORMATS[fmt][1]
            self.set_text(text)
        return text

    def ask(self, src: ExportSource, fmt: str, folder: Path) -> str | None:
        """A file dialog for the target (a folder for a PNG sequence); None if cancelled."""
        start = self.text() or str(folder)
        if fmt == "png_sequence":
            path = QFileDialog.getExistingDirectory(self, "Folder for the PNG frames",
                                                    str(Path(start).parent))
            return str(Path(path) / Path(start).name) if path else None
        name, ext = FORMATS[fmt]
        path, _ = QFileDialog.getSaveFileName(self, f"Export {src.label}", start,
                                              f"{name} (*{ext})")
        if not path:
            return None
        return path if Path(path).suffix else path + ext


class RunBar(QWidget):
    """[progress] [Cancel]  [Export] [Close]. The progress shows ``(done, total, phase)`` of
    :func:`~diffusion_gui.sessions.export_run.run_export` (total = 2 x frames)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.progress = QProgressBar(textVisible=True, format="", value=0)
        sp = self.progress.sizePolicy()
        sp.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(sp)
        self.progress.setVisible(False)
        self.cancel_btn = QPushButton("Cancel", enabled=False)
        self.cancel_btn.setToolTip("Stop the export; nothing is written")
        self.export_btn = QPushButton("Export", default=True)
        self.close_btn = QPushButton("Close")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_btn)
        row.addSpacing(16)
        row.addWidget(self.export_btn)
        row.addWidget(self.close_btn)

    def begin(self):
        """An export starts: progress from 0, Cancel on, Export off."""
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("starting\u2026")
        self.progress.setVisible(True)
        self.cancel_btn.setEnabled(True)
        self.export_btn.setEnabled(False)

    def show_progress(self, done: int, total: int, phase: str, fmt: str):
        total = max(1, total)
        self.progress.setValue(int(1000 * done / total))
        n = total // 2
        if phase == "frames":
            self.progress.setFormat(f"rendering frame {min(done + 1, n)} of {n}")
        else:
            self.progress.setFormat(f"writing {FORMATS[fmt][0]} \u2014 "
                                    f"{min(max(done - n, 0), n)} of {n}")

    def cancelling(self):
        self.cancel_btn.setEnabled(False)
        self.progress.setFormat("cancelling\u2026")

    def end(self, status: str, can_export: bool):
        """The export ended with ``status`` ('done' keeps the full bar in view)."""
        if status == "done":
            self.progress.setValue(1000)
            self.progress.setFormat("done")
        self.cancel_btn.setEnabled(False)
        self.export_btn.setEnabled(can_export)
        self.progress.setVisible(status == "done")
