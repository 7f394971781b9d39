"""Where the Train panel's runs live: one line with the folder and the space its runs take, a
button to open it and one to clean it up (every run but the current one, after asking).

The counting and the removing are the session's (:meth:`TrainSession.usage`,
:meth:`TrainSession.clean_runs`); only run folders are ever removed
(:func:`~diffusion_gui.sessions.training.is_run_dir`).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from ....sessions.training import runs_dir

APP_DIR = "diffusion-gui"     # the app's folder under the user's data folder, named once


def default_runs_dir() -> Path:
    """``$DIFFUSION_GUI_RUNS``, else ``<data folder>/diffusion-gui/runs`` (on Linux
    ``~/.local/share/diffusion-gui/runs``). Not ``AppLocalDataLocation``: with organisation and
    application both ``diffusion-gui`` it names the app twice (``.../diffusion-gui/diffusion-gui``)."""
    base = QStandardPaths.writableLocation(QStandardPaths.GenericDataLocation)
    return runs_dir(Path(base) / APP_DIR if base else None)


def megabytes(n_bytes: int) -> str:
    mb = n_bytes / 1e6
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


class RunsFolder(QWidget):
    """``label`` (folder, number of runs, MB), ``open_btn`` and ``clean_btn`` for panel ``p``
    (reads ``p.session``, ``p.state``, ``p.ctx``). :meth:`refresh` after a run begins or ends."""

    def __init__(self, p, parent=None):
        super().__init__(parent)
        self.p = p
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.open_btn = QPushButton("Open folder")
        self.open_btn.setToolTip("Show the runs folder in the file manager")
        self.clean_btn = QPushButton("Clean up…")
        self.clean_btn.setToolTip("Delete every run folder but the current run "
                                  "(saved models elsewhere are not touched)")
        self.open_btn.clicked.connect(lambda *_: self.open_folder())
        self.clean_btn.clicked.connect(lambda *_: self.clean())
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.open_btn)
        row.addWidget(self.clean_btn)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addLayout(row)

    def refresh(self):
        s = self.p.session
        n, size = s.usage()
        runs = "no runs yet" if n == 0 else f"{n} run{'s' if n != 1 else ''}, {megabytes(size)}"
        self.label.setText(f"Runs folder: {s.runs_dir}  ·  {runs}")
        self.label.setToolTip(str(s.runs_dir))
        self.clean_btn.setEnabled(s.usage(exclude=self._keep())[0] > 0)

    def _keep(self) -> list[Path]:
        """The current run while it trains or is the app's model is never cleaned up."""
        run = self.p.session.run
        if run is None:
            return []
        in_use = str(getattr(self.p.ctx, "model_spec", "") or "") == str(run.run_dir)
        return [run.run_dir] if self.p.state != "idle" or in_use else []

    def open_folder(self):
        d = self.p.session.runs_dir
        d.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(d)))

    def confirm_clean(self, n: int, size: int) -> bool:
        """Ask before deleting ``n`` run folders of ``size`` bytes (patched in tests)."""
        r = QMessageBox.question(self, "Delete old training runs?",
                                 f"Delete {n} run folder{'s' if n != 1 else ''} ({megabytes(size)}) "
                                 f"in {self.p.session.runs_dir}? Models you saved elsewhere are "
                                 "kept.", QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
        return r == QMessageBox.Yes

    def clean(self) -> int:
        """Delete every run folder but the kept one, if the user agrees; the bytes freed."""
        s = self.p.session
        n, size = s.usage(exclude=self._keep())
        if n <= 0 or not self.confirm_clean(n, size):
            return 0
        freed = s.clean_runs(keep=self._keep())
        self.p.ctx.status.emit(f"Deleted old training runs: {megabytes(freed)} freed")
        self.refresh()
        return freed
