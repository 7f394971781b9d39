"""The main window: panels in tabs, menus, shortcuts, status bar, error banner, drag and drop.

No maths here. Panels follow the contract of :mod:`diffusion_gui.gui.panels`; a panel that
cannot be imported or built is skipped with a note in the status bar (the others still work). Errors that panels or the context
report through ``ctx.error`` appear in a non-modal banner above the tabs (and the status bar), so
nothing ever blocks on a message box and the previous image / model stay in place.
"""
from __future__ import annotations

import importlib
import traceback
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QMainWindow, QTabWidget, QVBoxLayout, QWidget

from . import help, menus, window_state
from .panels import PANELS
from .window_parts import (  # noqa: F401 - re-exported for scripts and tests
    BANNER_MS,
    DEFAULT_SIZE,
    IMAGE_EXTENSIONS,
    IMAGE_FILTER,
    ErrorBanner,
    FileDrops,
    FirstPaint,
    Placeholder,
    default_image,
    looks_like_model_folder,
    sample_images,
)

APP_NAME = "diffusion-gui"


class MainWindow(FileDrops, QMainWindow):
    """``MainWindow(ctx)``; call :meth:`start` once shown to load the start-up image and model.

    ``lazy=True`` (the app) builds only the current tab's panel before the window is shown and
    the others right after its first paint (or at once when their tab is chosen), so that the
    window appears fast; ``lazy=False`` (tests) builds every panel in the constructor.
    """

    def __init__(self, ctx, parent=None, *, lazy: bool = False):
        super().__init__(parent)
        self.ctx = ctx
        self.settings = ctx.settings
        self.panels: dict[str, QWidget] = {}
        self.skipped: dict[str, str] = {}
        self._keys: list[str] = []                 # one per tab, in tab order
        self._classes: dict[str, type] = {}
        self._pending: set[str] = set()            # tabs whose panel is not built yet
        self._painted = False
        self._after_paint: list = []
        self._paint_watch = None
        self.errors: list[tuple[str, str]] = []
        self._dialogs: list[QWidget] = []
        self._startup_model = True
        self._closed = False
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)

        self.banner = ErrorBanner()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(6, 4, 6, 0)
        lay.setSpacing(4)
        lay.addWidget(self.banner)
        lay.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.model_label = QLabel("Model: \u2014")
        self.model_label.setStyleSheet("padding: 0 8px;")
        self.statusBar().addPermanentWidget(self.model_label)

        self._load_panels(lazy)
        self._build_menus()
        self._restore()

        ctx.error.connect(self.show_error)
        ctx.status.connect(lambda m: self.statusBar().showMessage(m, 10000))
        ctx.model_loading.connect(self._on_model_loading)
        ctx.model_changed.connect(self._on_model_changed)
        ctx.image_changed.connect(self._update_title)
        ctx.image_changed.connect(self.banner.hide)      # a good image clears an old error
        ctx.recent_changed.connect(self._rebuild_recent_menu)
        ctx.show_panel.connect(self.show_panel)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.tabs.currentChanged.connect(lambda _: self.statusBar().clearMessage())   # not another panel's
        self.banner.dismissed.connect(self._clear_error_status)
        if self.skipped:
            names = ", ".join(self.skipped)
            self.statusBar().showMessage(f"Panels not available: {names}", 10000)

    # ================================================================== panels
    def _load_panels(self, lazy: bool):
        for key, mod_name, cls_name in PANELS:
            full = f"{__package__}.panels.{mod_name}"
            try:
                mod = importlib.import_module(full)
                cls = getattr(mod, cls_name)
            except ImportError as e:
                missing = getattr(e, "name", None) == full
                self.skipped[key] = "not installed" if missing else f"import failed: {e}"
                if not missing:
                    traceback.print_exc()
                continue
            except Exception as e:  # noqa: BLE001 - a broken panel must not take the window down
                self.skipped[key] = f"{type(e).__name__}: {e}"
                traceback.print_exc()
                continue
            self._keys.append(key)
            self._classes[key] = cls
            self._pending.add(key)
            self.tabs.addTab(Placeholder(), getattr(cls, "title", key.title()))
        first = self.settings.value("window/tab", None)
        first = first if first in self._keys else (self._keys[0] if self._keys else None)
        for key in list(self._keys):
            if not lazy or key == first:
                self.build_panel(key)

    def build_panel(self, key: str) -> QWidget | None:
        """Construct the panel of tab ``key`` now (if not yet), restore its settings."""
        if key not in self._pending:
            return self.panels.get(key)
        self._pending.discard(key)
        index = self._keys.index(key)
        cls = self._classes[key]
        try:
            panel = cls(self.ctx, self)
        except Exception as e:  # noqa: BLE001 - a broken panel must not take the window down
            self.skipped[key] = f"failed to start: {type(e).__name__}: {e}"
            traceback.print_exc()
            holder = self.tabs.widget(index)
            if isinstance(holder, Placeholder):
                holder.label.setText(f"This panel could not start: {type(e).__name__}: {e}")
            self.statusBar().showMessage(f"Panel {key}: {self.skipped[key]}", 15000)
            return None
        self.settings.beginGroup(key)
        try:
            if hasattr(panel, "restore_settings"):
                panel.restore_settings(self.settings)
        except Exception:  # noqa: BLE001 - bad settings: keep the defaults
            traceback.print_exc()
        finally:
            self.settings.endGroup()
        self.panels[key] = panel
        current = self.tabs.currentIndex()
        old = self.tabs.widget(index)
        self.tabs.blockSignals(True)
        self.tabs.removeTab(index)
        self.tabs.insertTab(index, panel, getattr(cls, "title", key.title()))
        self.tabs.setCurrentIndex(current)
        self.tabs.blockSignals(False)
        old.deleteLater()
        if hasattr(self, "view_menu"):
            self._add_panel_menu(key, panel)
        if index == current:
            panel.setFocus(Qt.OtherFocusReason)
        return panel

    def build_remaining_panels(self):
        """Build the pending panels one per event-loop turn (the window stays responsive)."""
        for key in self._keys:
            if key in self._pending:
                self.build_panel(key)
                if self._pending:
                    QTimer.singleShot(0, self.build_remaining_panels)
                return

    def call_after_first_paint(self, fn, fallback_ms: int = 3000):
        """Run ``fn`` once the window has painted (right away if it has; after ``fallback_ms``
        at the latest, for platforms that never paint)."""
        if self._painted:
            fn()
            return
        if self._paint_watch is None:
            self._paint_watch = FirstPaint(self._first_paint_done, self)
            self.installEventFilter(self._paint_watch)
        self._after_paint.append(fn)
        QTimer.singleShot(fallback_ms, self._first_paint_done)

    def _first_paint_done(self):
        if self._painted:
            return
        self._painted = True
        if self._paint_watch is not None:
            self.removeEventFilter(self._paint_watch)
        for fn in self._after_paint:
            QTimer.singleShot(0, fn)
        self._after_paint.clear()

    def show_panel(self, key: str):
        """Make the tab of panel ``key`` current (panels ask through ``ctx.show_panel``)."""
        if key in self._keys:
            self.tabs.setCurrentIndex(self._keys.index(key))

    def panel(self, key: str) -> QWidget | None:
        return self.panels.get(key)

    def current_panel(self) -> QWidget | None:
        return self.tabs.currentWidget()

    def _on_tab_changed(self, index: int):
        if 0 <= index < len(self._keys) and self._keys[index] in self._pending:
            self.build_panel(self._keys[index])
        w = self.tabs.widget(index)
        if w is not None:
            w.setFocus(Qt.OtherFocusReason)
            for a in self._tab_actions:
                if a.data() == index:
                    a.setChecked(True)

    # ================================================================== actions
    def last_folder(self) -> str:
        v = self.settings.value("last_folder", "")
        return str(v) if v and Path(str(v)).is_dir() else str(Path.home())

    def open_image_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self.last_folder(), IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path, *, wait: bool = True) -> bool | None:
        """Open ``path`` as the current image, decoded in the background (see
        :meth:`AppContext.open_image`); on failure the banner says why and the previous image
        stays. Menus and drops pass ``wait=False``."""
        return self.ctx.open_image(str(path), wait=wait)

    def open_model_dialog(self):
        start = str(self.settings.value("last_model_folder", "") or self.last_folder())
        path = QFileDialog.getExistingDirectory(self, "Open model folder", start)
        if path:
            self.settings.setValue("last_model_folder", path)
            self.ctx.load_model(path)

    def export_dialog(self):
        try:
            from .export_dialog import ExportDialog
        except ImportError:
            self.show_error("Export", "the export dialog could not be loaded (see the terminal)")
            traceback.print_exc()
            return
        sources = []
        ordered = [self.current_panel()] + [p for p in self.panels.values() if p is not self.current_panel()]
        for p in ordered:
            if p is not None and hasattr(p, "export_sources"):
                try:
                    sources.extend(p.export_sources() or [])
                except Exception as e:  # noqa: BLE001
                    self.show_error("Export", f"{getattr(p, 'title', 'panel')}: {e}")
        if not sources:
            self.show_error("Export", "nothing to export yet: open an image first")
            return
        try:
            dlg = ExportDialog(self.ctx, sources, self)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            self.show_error("Export", f"cannot open the export dialog ({type(e).__name__}: {e})")
            return
        self._keep_dialog(dlg)
        dlg.open() if hasattr(dlg, "open") else dlg.show()

    def _keep_dialog(self, dlg):
        # A closed dialog is a hidden child of the window: delete it, or every File > Export
        # would keep its widgets, preview and frames alive until the app quits.
        keep = []
        for d in self._dialogs:
            running = getattr(d, "is_running", None)
            if d.isVisible() or (callable(running) and running()):
                keep.append(d)
            else:
                d.deleteLater()
        self._dialogs = keep + [dlg]
        dlg.setAttribute(Qt.WA_DeleteOnClose, False)

    def toggle_fullscreen(self):
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def _build_menus(self):
        menus.build_menus(self)

    def _add_panel_menu(self, key: str, panel: QWidget):
        menus.add_panel_menu(self, key, panel)

    def _rebuild_recent_menu(self):
        menus.rebuild_recent_menu(self)

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(where, keys, what) for every action with a shortcut."""
        return help.shortcut_rows(self)

    def show_shortcuts(self):
        help.show_shortcuts(self)

    def show_about(self):
        help.show_about(self)

    # ================================================================== feedback
    def show_error(self, title: str, message: str):
        """Non-blocking: the banner (and the status bar) show the message."""
        self.errors.append((title, message))
        if title == "Cannot load model":
            self.model_label.setText("Model: none")
            self.model_label.setToolTip(message)
            self.model_label.setStyleSheet("padding: 0 8px; color: #b3261e;")
            self.statusBar().showMessage(f"{title}: {message}", 30000)
            if self._startup_model:        # the start-up model: the status bar is enough
                self._startup_model = False
                return
        else:
            self.statusBar().showMessage(f"{title}: {message}", 15000)
        self.banner.show_error(title, message)

    def _clear_error_status(self):
        """The banner was closed: its message leaves the status bar too."""
        if self.banner.title and self.statusBar().currentMessage().startswith(self.banner.title):
            self.statusBar().clearMessage()

    def _on_model_loading(self, spec: str):
        self.model_label.setText(f"Model: loading {spec}\u2026")
        self.model_label.setStyleSheet("padding: 0 8px; color: #666;")

    def _on_model_changed(self):
        m = self.ctx.model
        if m is not None:
            self._startup_model = False
            self.model_label.setText(f"Model: {m.name} ({m.sample_size} px, "
                                     f"{m.in_channels} ch, T = {m.num_timesteps})")
            self.model_label.setToolTip(str(getattr(m, "source", "")))
            self.model_label.setStyleSheet("padding: 0 8px;")
        self._update_title()

    def _update_title(self):
        # Qt adds the application's display name itself (" — diffusion-gui"), where one is set
        parts = [] if QApplication.applicationDisplayName() == APP_NAME else [APP_NAME]
        if self.ctx.image_path:
            parts.append(Path(self.ctx.image_path).name)
        if self.ctx.model is not None:
            parts.append(self.ctx.model.name)
        self.setWindowTitle(" \u2014 ".join(parts) or APP_NAME)

    def open_dropped(self, path: Path):
        path = Path(path)
        if looks_like_model_folder(path):
            self.ctx.load_model(str(path))
        elif path.is_dir():
            self.show_error("Cannot open", f"'{path}' is a folder, but not a model folder "
                                           "(no model_index.json or config.json)")
        else:
            self.open_image(path, wait=False)

    # ================================================================== start-up
    def start(self, model: str | None = None, image=None):
        """After ``show()``: open the start-up image (numpy + Pillow only, fast), import torch in
        the background, then load the model (in the background too)."""
        from ..models.registry import DEFAULT_MODEL
        from .backend import ensure_backend

        img_path = Path(image) if image else self.startup_image()
        self.statusBar().showMessage("Loading torch\u2026")
        if self.current_panel() is not None:      # keys (Space, arrows) go to the panel at once
            self.current_panel().setFocus(Qt.OtherFocusReason)
        if img_path is not None:
            ok = self.open_image(img_path)
            if not ok and image:                       # a bad --image: fall back to a sample
                fallback = default_image()
                if fallback is not None:
                    self.ctx.open_image(str(fallback))

        def ready():
            if not self._closed:
                self.ctx.load_model(model or DEFAULT_MODEL)
                self.ctx.detect_devices()

        ensure_backend(ready)

    def startup_image(self) -> Path | None:
        """The image of the last session (the most recent file that still exists), else a
        built-in sample."""
        for f in self.ctx.recent_files()[:1]:
            if Path(f).is_file():
                return Path(f)
        return default_image()

    # ================================================================== persistence
    def _restore(self):
        window_state.restore(self)

    def save_settings(self):
        """The window's layout and every panel's settings (each in its own group)."""
        window_state.save(self)

    def shutdown(self):
        """Save settings, stop every panel's threads and the context's. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.save_settings()
        for panel in self.panels.values():
            try:
                if hasattr(panel, "shutdown"):
                    panel.shutdown()
            except Exception:  # noqa: BLE001
                traceback.print_exc()
        for d in self._dialogs:
            d.close()
        self.ctx.shutdown()
        from .backend import stop_backend_job
        stop_backend_job()

    def closeEvent(self, ev):
        # a panel with unsaved work (training) may ask first, and may veto the close
        for panel in list(self.panels.values()):
            ask = getattr(panel, "maybe_close", None)
            if ask is not None and not ask():
                ev.ignore()
                return
        self.shutdown()
        super().closeEvent(ev)


__all__ = ["MainWindow", "ErrorBanner", "sample_images", "default_image"]
