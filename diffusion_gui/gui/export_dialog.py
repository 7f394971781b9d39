"""File > Export...: write what the panels offer as a GIF, a PNG sequence, a filmstrip PNG, a PNG,
or a plot as PNG / SVG / CSV.

``ExportDialog(ctx, sources, parent)`` takes the main window's list of export sources (see
:mod:`diffusion_gui.gui.export_sources`; legacy ``(label, fn)`` tuples are wrapped). It is
non-modal (``open()`` / ``show()``) and never blocks:

- the options shown are the ones the chosen source supports (:class:`~.export_form.OptionsForm`);
  the preview is the first frame as it will be written (caption and enlargement included), with
  its size in px and an estimate of the file size (a few frames encoded in the background and
  extrapolated, :func:`~diffusion_gui.sessions.export_run.estimate_bytes`);
- *Export* renders and writes in a worker thread
  (:func:`~diffusion_gui.sessions.export_run.run_export` through a
  :class:`~diffusion_gui.gui.workers.JobSlot`) with a progress bar and *Cancel*; files go to a
  temporary name in the target folder and are renamed when complete, so a cancelled or failed
  export leaves nothing behind and an existing file untouched. Plots are written in the GUI
  thread (pyqtgraph's exporters draw the scene);
- problems (an unknown extension, a missing or read-only folder, a full disk) appear as one line
  in the dialog (the one error policy, :func:`~diffusion_gui.gui.workers.error_text`), never as
  a traceback, and the app keeps working;
- the last folder, the GIF settings and the format of each kind of source are remembered in
  ``ctx.settings`` (group ``export``, :class:`~diffusion_gui.sessions.export_settings.ExportSettings`).

For tests and scripts: :meth:`select_source`, :meth:`set_format`, :meth:`set_options`,
:meth:`set_target`, :meth:`start_export`, :meth:`cancel_export`, :meth:`wait` and the
``finished_export`` signal, ``status`` (``'idle'``, ``'running'``, ``'done'``, ``'cancelled'``,
``'failed'``), ``message`` and ``written``.
"""
from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
)

from ..export import Cancelled, ExportError
from ..sessions.export_run import (
    describe_written,
    run_export,
    validate_target,
)
from ..sessions.export_settings import GROUP, ExportSettings
from ..sessions.export_sources import ExportOptions, ExportSource, as_sources
from . import settings_io
from .export_actions import RunBar, TargetRow
from .export_form import OptionsForm
from .export_preview import PreviewPane
from .workers import JobSlot, error_text

__all__ = ["ExportDialog"]

DEBOUNCE_MS = 150
POLL_MS = 50
MEMORY_HINT = "try fewer frames or a smaller size"
#: what the export job yields when it was cancelled (not an error: the target is unchanged)
_CANCELLED = object()


class ExportDialog(QDialog):
    """The export dialog (see the module docstring)."""

    #: emitted when an export ends: ``status`` ('done', 'cancelled', 'failed')
    finished_export = Signal(str)

    def __init__(self, ctx, sources, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.settings = ctx.settings
        self.prefs = settings_io.load(self.settings, ExportSettings, GROUP)
        self.setWindowTitle("Export")
        self.setModal(False)
        self.sources: list[ExportSource] = as_sources(sources)
        self.status = "idle"
        self.message = ""
        self.written = None
        self._export = JobSlot(memory_hint=MEMORY_HINT)      # the running export
        self._cancel = threading.Event()                    # asked by run_export's progress
        self._progress = {"done": 0, "total": 1, "phase": ""}

        self._refresh_timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._refresh_timer.timeout.connect(self.refresh_preview)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self._show_progress)

        self._build()
        self.form.restore(self.prefs)
        if self.sources:
            self.source_list.setCurrentRow(0)
        else:
            self._show_message("There is nothing to export yet: open an image first.", "error")
            self.export_btn.setEnabled(False)
        self.resize(1000, 600)

    # ================================================================== layout
    def _build(self):
        top = QHBoxLayout()
        top.addLayout(self._build_sources())
        top.addSpacing(8)
        top.addWidget(self._build_options(), 3)
        top.addSpacing(8)
        top.addWidget(self._build_preview(), 3)
        line = QFrame()
        line.setFrameShape(QFrame.HLine)
        line.setFrameShadow(QFrame.Sunken)
        self._build_actions()
        outer = QVBoxLayout(self)
        outer.addLayout(top, 1)
        outer.addWidget(line)
        outer.addWidget(self.target)
        outer.addWidget(self.message_label)
        outer.addWidget(self.bar)

    def _build_sources(self) -> QVBoxLayout:
        """The list of what can be exported."""
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
        box = QVBoxLayout()
        box.addWidget(QLabel("<b>What</b>"))
        box.addWidget(self.source_list, 1)
        return box

    def _build_options(self) -> OptionsForm:
        """The format and options (the widgets tests drive are named on the dialog too)."""
        f = self.form = OptionsForm()
        self.format_combo, self.frames_spin, self.size_combo = (f.format_combo, f.frames_spin,
                                                                f.size_combo)
        self.fps_spin, self.hold_spin, self.loop_check = f.fps_spin, f.hold_spin, f.loop_check
        f.changed.connect(self._changed)
        f.format_changed.connect(self._on_format)
        return f

    def _build_preview(self) -> PreviewPane:
        """The first frame and the line under it (frames, px, estimated size)."""
        self.pane = PreviewPane()
        self.preview, self.info_label = self.pane.view, self.pane.info_label
        return self.pane

    def _build_actions(self):
        """The target row, the message line, and the progress / Cancel / Export / Close row."""
        self.target = TargetRow()
        self.target.edited.connect(lambda: self._show_message(""))
        self.target.browse_btn.clicked.connect(self.browse)
        self.path_edit = self.target.path_edit
        self.message_label = QLabel(wordWrap=True)
        self.message_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message_label.setMinimumHeight(self.message_label.fontMetrics().height() * 2 + 4)
        self.bar = RunBar()
        self.progress, self.cancel_btn = self.bar.progress, self.bar.cancel_btn
        self.export_btn, self.close_btn = self.bar.export_btn, self.bar.close_btn
        self.cancel_btn.clicked.connect(self.cancel_export)
        self.export_btn.clicked.connect(self.start_export)
        self.close_btn.clicked.connect(self.close)

    # ================================================================== state
    def last_folder(self) -> Path:
        """Where exports go: the folder of the last export, else the user's pictures folder
        (never the folder of the opened image: for the samples that is the app's own assets)."""
        if self.prefs.folder and Path(str(self.prefs.folder)).is_dir():
            return Path(str(self.prefs.folder))
        pictures = QStandardPaths.writableLocation(QStandardPaths.PicturesLocation)
        return Path(pictures) if pictures and Path(pictures).is_dir() else Path.home()

    def _remember(self, **changes):
        """Store ``self.prefs`` (with ``changes``) in the settings."""
        self.prefs = replace(self.prefs, **changes)
        settings_io.save(self.settings, self.prefs, GROUP)

    def current_source(self) -> ExportSource | None:
        return self.form.source

    def current_format(self) -> str | None:
        return self.form.current_format()

    def options(self) -> ExportOptions:
        """The options as set in the dialog."""
        return self.form.options()

    def target_path(self) -> str:
        return self.target.text()

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
        return self.current_source()

    def set_format(self, fmt: str):
        self.form.set_format(fmt)

    def set_options(self, **kw):
        """Set dialog widgets by option name: n_frames, spacing, t_range, which, image,
        caption, scale, fps, hold_first_s, hold_last_s, loop, width."""
        self.form.set_values(**kw)
        self.refresh_preview()

    def set_target(self, path):
        self.target.set_text(os.fspath(path))
        self._show_message("")

    def wait(self, timeout_ms: int = 60000) -> bool:
        """Block (processing events) until the running export ends. For tests and scripts."""
        t = QElapsedTimer()
        t.start()
        while self.status == "running" and t.elapsed() < timeout_ms:
            QCoreApplication.processEvents()
            job = self._export.job
            if job is not None:
                job.thread.wait(10)
        QCoreApplication.processEvents()
        return self.status != "running"

    # ================================================================== reactions
    def _on_source_row(self, row: int):
        if not 0 <= row < len(self.sources):
            return
        src = self.sources[row]
        src.prepare()
        self.form.configure(src, self.prefs.format_for(src.kind))
        self._retarget(new_source=True)
        reason = src.empty_reason()
        self.export_btn.setEnabled(reason is None and not self.is_running())
        self._show_message(f"{src.label}: {reason}" if reason else "", "error" if reason else "")
        self.refresh_preview()

    def _on_format(self, fmt: str):
        self._remember(**{f"format_{self.current_source().kind}": fmt})
        self._retarget()
        self._changed()

    def _changed(self):
        if self.status != "running":
            self._show_message("")
        self._refresh_timer.start()

    def _retarget(self, new_source: bool = False):
        """Put the right extension (and, for a new source, its name) on the target path."""
        src, fmt = self.current_source(), self.current_format()
        if src is not None and fmt:
            self.target.retarget(src, fmt, self.last_folder(), new_source=new_source)

    def browse(self):
        src, fmt = self.current_source(), self.current_format()
        if src is not None and fmt:
            path = self.target.ask(src, fmt, self.last_folder())
            if path:
                self.set_target(path)

    # ================================================================== preview
    def refresh_preview(self):
        """The first frame as it will be written, its size, and (in the background) the
        estimated file size."""
        self._refresh_timer.stop()
        src, fmt = self.current_source(), self.current_format()
        if src is None or not fmt:
            self.pane.forget_estimate()
            return
        try:
            self.pane.show_export(src, self.options(), fmt)
        except Exception as e:  # noqa: BLE001 - a preview never takes the dialog down
            self._show_message(f"Cannot preview {src.label}: {e}", "error")

    @property
    def estimate(self) -> int | None:
        """The estimated size of the export in bytes (None: not known)."""
        return self.pane.estimate

    @property
    def estimate_ready(self) -> bool:
        return self.pane.estimate_ready

    # ================================================================== export
    def _checked_target(self, src, fmt) -> Path | None:
        """The target, validated before any work; None (and the reason shown) when it cannot
        be written. A name typed without its extension gets it."""
        reason = src.empty_reason()
        if reason:
            self._fail(f"{src.label}: {reason}")
            return None
        try:
            return validate_target(fmt, self.target.with_extension(fmt))
        except ExportError as e:
            self._fail(e.user_message())
            return None

    def start_export(self) -> bool:
        """Check the target and start the export (plots: written at once). False if it could
        not start (the reason is in the dialog)."""
        src, fmt = self.current_source(), self.current_format()
        if self.is_running() or src is None or not fmt:
            return False
        target = self._checked_target(src, fmt)
        if target is None:
            return False
        opts = self.options()
        self.prefs = self.form.remembered(self.prefs)
        self._remember()
        if src.kind == "plot":
            return self._export_plot(src, fmt, target, opts)
        self._start_job(src, opts, fmt, target)
        return True

    def _export_plot(self, src, fmt, target, opts) -> bool:
        try:
            out = src.export(fmt, target, opts)
        except (ExportError, ValueError, OSError) as e:
            self._fail(error_text(e) or f"{type(e).__name__}: {e}")
            return False
        self._succeed(out)
        return True

    def _start_job(self, src, opts, fmt, target):
        cancel = self._cancel = threading.Event()
        state = self._progress = {"done": 0, "total": 1, "phase": "frames"}

        def progress(done, total, phase):
            state["done"], state["total"], state["phase"] = done, total, phase
            return not cancel.is_set()

        def gen():
            try:
                yield run_export(src, opts, fmt, target, progress)
            except Cancelled:
                yield _CANCELLED

        self.status = "running"
        self.written = None
        self._run_target, self._run_target_existed = target, target.exists()
        self._show_message(f"Exporting {src.label}\u2026", "")
        self.bar.begin()
        self._export.start(gen, on_finished=self._job_done, on_failed=self._job_failed,
                           max_rate=0)
        self._poll.start()

    def cancel_export(self):
        """Stop the running export; nothing is written and an existing file stays as it was."""
        if self.is_running():
            self._cancel.set()
            self.bar.cancelling()

    def _show_progress(self):
        st = self._progress
        self.bar.show_progress(st["done"], st["total"], st["phase"], self.current_format() or "gif")

    def _end_run(self, status: str):
        self._poll.stop()
        self._export.retire()
        self.status = status
        src = self.current_source()
        self.bar.end(status, src is not None and src.empty_reason() is None)
        self.finished_export.emit(status)

    def _job_done(self, out):
        if out is _CANCELLED:
            kept = (f"'{self._run_target.name}' is unchanged" if self._run_target_existed
                    else "nothing was written")
            self.message = f"Export cancelled: {kept}."
            self._show_message(self.message, "")
            self._end_run("cancelled")
            return
        self._succeed(out)
        self._end_run("done")

    def _job_failed(self, msg: str):
        self._fail(msg)
        self._end_run("failed")

    def _fail(self, msg: str):
        """Say why the export failed (one line). Outside a job: the status is 'failed' now."""
        self.message = f"Export failed: {msg}"
        self._show_message(self.message, "error")
        if not self.is_running():
            self.progress.setVisible(False)
            self.status = "failed"
            self.finished_export.emit("failed")

    def _succeed(self, out):
        """Say what was written and remember its folder. Outside a job: 'done' now."""
        self.written = out
        self.message, folder = describe_written(out)
        self._remember(folder=str(folder))
        self._show_message(self.message, "ok")
        try:
            self.ctx.status.emit(self.message)
        except RuntimeError:
            pass
        if not self.is_running():
            self.status = "done"
            self.finished_export.emit("done")

    def _show_message(self, text: str, kind: str = ""):
        color = {"error": "#b3261e", "ok": "#1b6e20"}.get(kind, "#444")
        self.message_label.setStyleSheet(f"color: {color};")
        self.message_label.setText(text)
        if kind == "error":
            self.message = text

    # ================================================================== closing
    def shutdown(self, join_estimate: bool = True):
        """Cancel a running export and wait for its thread; the size estimate's too, or with
        ``join_estimate=False`` (closing the dialog) drop it without waiting: it is read-only
        work whose result nobody wants now, and one encoded frame of it can take seconds (the
        random exerciser saw the window freeze 2.8 s on *Close*). Idempotent."""
        self._refresh_timer.stop()
        self._poll.stop()
        self._cancel.set()
        self._export.shutdown()
        if join_estimate:
            self.pane.shutdown()
        else:
            self.pane.forget_estimate()
        if self.status == "running":
            self.status = "cancelled"

    def closeEvent(self, ev):
        self.shutdown(join_estimate=False)
        super().closeEvent(ev)

    def done(self, r):
        self.shutdown(join_estimate=False)
        super().done(r)

    def open(self):
        """Show the dialog **non-modally** (QDialog.open() would make it window-modal): the
        panels stay usable while an export runs."""
        self.setModal(False)
        self.show()
        self.raise_()
        self.activateWindow()
