"""The main window: panels in tabs, menus, shortcuts, status bar, error banner, drag and drop.

No maths here. Panels follow the contract of :mod:`diffusion_gui.gui.panels`; a panel module
that is not there yet is skipped with a note in the status bar. Errors that panels or the context
report through ``ctx.error`` appear in a non-modal banner above the tabs (and the status bar), so
nothing ever blocks on a message box and the previous image / model stay in place.
"""
from __future__ import annotations

import html
import importlib
import traceback
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..paths import assets_dir
from .panels import PANELS

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


def _looks_like_model_folder(p: Path) -> bool:
    return p.is_dir() and any((p / n).exists() for n in ("model_index.json", "config.json", "unet"))


class _FirstPaint(QObject):
    """Event filter: calls ``fn`` at the first paint of the watched widget."""

    def __init__(self, fn, parent=None):
        super().__init__(parent)
        self.fn = fn

    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Paint:
            QTimer.singleShot(0, self.fn)
        return False


class _Placeholder(QWidget):
    """Stands in a tab until its panel is built (a fraction of a second after start-up)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel("Loading\u2026")
        self.label.setAlignment(Qt.AlignCenter)
        self.label.setStyleSheet("color: #888;")
        QVBoxLayout(self).addWidget(self.label)


class ErrorBanner(QFrame):
    """A non-modal error strip: title, one-line message, a close button."""

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


class MainWindow(QMainWindow):
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
        self.setWindowTitle("diffusion-gui")
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
        ctx.recent_changed.connect(self._rebuild_recent_menu)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        if self.skipped:
            names = ", ".join(self.skipped)
            self.statusBar().showMessage(f"Panels not available yet: {names}", 10000)

    # ================================================================== panels
    def _load_panels(self, lazy: bool):
        for key, mod_name, cls_name in PANELS:
            full = f"{__package__}.panels.{mod_name}"
            try:
                mod = importlib.import_module(full)
                cls = getattr(mod, cls_name)
            except ImportError as e:
                missing = getattr(e, "name", None) == full
                self.skipped[key] = "not written yet" if missing else f"import failed: {e}"
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
            self.tabs.addTab(_Placeholder(), getattr(cls, "title", key.title()))
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
            if isinstance(holder, _Placeholder):
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
            self._paint_watch = _FirstPaint(self._first_paint_done, self)
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

    # ================================================================== menus
    def _build_menus(self):
        mb = self.menuBar()

        def act(menu, text, slot, shortcut=None, tip=""):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            if tip:
                a.setStatusTip(tip)
            a.triggered.connect(slot)
            menu.addAction(a)
            return a

        # ---- File
        fm = mb.addMenu("&File")
        self.act_open = act(fm, "&Open image\u2026", self.open_image_dialog, QKeySequence.Open,
                            "Open an image file for the forward process")
        self.samples_menu = fm.addMenu("&Sample images")
        for p in sample_images():
            a = self.samples_menu.addAction(p.stem.replace("_", " "))
            a.setStatusTip(str(p))
            a.triggered.connect(lambda _=False, p=p: self.open_image(p))
        self.samples_menu.setEnabled(bool(sample_images()))
        self.recent_menu = fm.addMenu("Open &recent")
        self._rebuild_recent_menu()
        fm.addSeparator()
        self.act_open_model = act(fm, "Open &model folder\u2026", self.open_model_dialog,
                                  "Ctrl+Shift+O", "Load a diffusers UNet2DModel folder")
        self.builtin_menu = fm.addMenu("&Built-in models")
        self._fill_builtin_menu()
        fm.addSeparator()
        self.act_export = act(fm, "&Export\u2026", self.export_dialog, "Ctrl+E",
                              "Export images, filmstrips and GIFs")
        fm.addSeparator()
        self.act_quit = act(fm, "&Quit", self.close, QKeySequence.Quit)
        self.act_quit.setShortcuts([QKeySequence("Ctrl+Q")])
        self.act_quit.setMenuRole(QAction.QuitRole)

        # ---- View
        vm = mb.addMenu("&View")
        group = QActionGroup(self)
        group.setExclusive(True)
        self._tab_actions: list[QAction] = []
        for idx in range(self.tabs.count()):
            a = QAction(self.tabs.tabText(idx), self, checkable=True)
            a.setData(idx)
            if idx < 9:
                a.setShortcut(QKeySequence(f"Ctrl+{idx + 1}"))
            a.triggered.connect(lambda _=False, i=idx: self.tabs.setCurrentIndex(i))
            group.addAction(a)
            vm.addAction(a)
            self._tab_actions.append(a)
        if self._tab_actions:
            self._tab_actions[0].setChecked(True)
        self.view_menu = vm
        vm.addSeparator()
        self._view_end_sep = vm.addSeparator()     # panel submenus go in before this one
        for key in self._keys:
            if key in self.panels:
                self._add_panel_menu(key, self.panels[key])
        self.act_fullscreen = act(vm, "&Full screen", self.toggle_fullscreen, "F11")

        # ---- Help
        hm = mb.addMenu("&Help")
        self.act_shortcuts = act(hm, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self.act_about = act(hm, "&About diffusion-gui", self.show_about)

    def _add_panel_menu(self, key: str, panel: QWidget):
        """The panel's own actions (``actions()``) as a View submenu."""
        try:
            acts = panel.actions() if hasattr(type(panel), "actions") else []
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            acts = []
        acts = [a for a in (acts or []) if isinstance(a, QAction)]
        if acts:
            sub = QMenu(getattr(panel, "title", key), self.view_menu)
            for a in acts:
                sub.addAction(a)
            self.view_menu.insertMenu(self._view_end_sep, sub)

    def _fill_builtin_menu(self):
        self.builtin_menu.clear()
        try:
            from ..models.registry import DEFAULT_MODEL, builtin_names
            names = builtin_names()
        except Exception:  # noqa: BLE001
            names, DEFAULT_MODEL = [], "digits"
        for n in names:
            a = self.builtin_menu.addAction(n)
            a.triggered.connect(lambda _=False, n=n: self.ctx.load_model(n))
        if not names:
            a = self.builtin_menu.addAction(f"(none installed yet: {DEFAULT_MODEL})")
            a.setEnabled(False)

    def _rebuild_recent_menu(self):
        m = self.recent_menu
        m.clear()
        files = self.ctx.recent_files()
        for k, f in enumerate(files):
            label = f"&{k + 1}  {Path(f).name}" if k < 9 else Path(f).name
            a = m.addAction(label)
            a.setStatusTip(f)
            a.setToolTip(f)
            a.triggered.connect(lambda _=False, f=f: self.open_image(f))
        if files:
            m.addSeparator()
            m.addAction("Clear recent files", self._clear_recent)
        m.setEnabled(bool(files))

    def _clear_recent(self):
        self.settings.setValue("recent_files", [])
        self._rebuild_recent_menu()

    # ================================================================== actions
    def last_folder(self) -> str:
        v = self.settings.value("last_folder", "")
        return str(v) if v and Path(str(v)).is_dir() else str(Path.home())

    def open_image_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self.last_folder(), IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path) -> bool:
        """Open ``path`` as the current image; on failure the banner says why and the previous
        image stays."""
        ok = self.ctx.open_image(str(path))
        if ok:
            self.banner.hide()
        return ok

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
            self.show_error("Export", "the export dialog is not available yet in this build")
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

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(where, keys, what) for every action with a shortcut."""
        rows = []
        for a in (self.act_open, self.act_open_model, self.act_export, self.act_quit,
                  *self._tab_actions, self.act_fullscreen, self.act_shortcuts):
            keys = a.shortcut().toString(QKeySequence.NativeText)
            if keys:
                rows.append(("Window", keys, a.text().replace("&", "").replace("\u2026", "")))
        for key, panel in self.panels.items():
            try:
                acts = panel.actions() if callable(getattr(panel, "actions", None)) else []
            except Exception:  # noqa: BLE001
                acts = []
            for a in acts or []:
                if isinstance(a, QAction):
                    keys = ", ".join(s.toString(QKeySequence.NativeText) for s in a.shortcuts())
                    if keys:
                        rows.append((getattr(panel, "title", key), keys, a.text().replace("&", "")))
        rows.append(("Window", "drag & drop", "an image file opens it; a model folder loads it"))
        return rows

    def show_shortcuts(self):
        rows = "".join(f"<tr><td style='color:#666;padding-right:14px'>{html.escape(w)}</td>"
                       f"<td style='padding-right:14px'><b>{html.escape(k)}</b></td>"
                       f"<td>{html.escape(t)}</td></tr>" for w, k, t in self.shortcut_rows())
        dlg = QDialog(self)
        dlg.setWindowTitle("Keyboard shortcuts")
        text = QTextBrowser()
        text.setHtml(f"<table cellspacing='4'>{rows}</table>")
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(dlg.close)
        lay = QVBoxLayout(dlg)
        lay.addWidget(text)
        lay.addWidget(buttons)
        dlg.resize(520, 460)
        self._keep_dialog(dlg)
        self.shortcuts_dialog = dlg
        dlg.show()

    def show_about(self):
        box = QMessageBox(QMessageBox.Information, "About diffusion-gui",
                          f"<h3>diffusion-gui {__version__}</h3>"
                          "<p>A desktop explorer for denoising diffusion probabilistic models "
                          "(Ho, Jain &amp; Abbeel 2020): the forward process, the reverse process, "
                          "the loss and the variational bound, made visible.</p>"
                          "<p>Sample images and the built-in model carry their own licences, "
                          "listed in <tt>assets/</tt>.</p>", QMessageBox.Close, self)
        box.setModal(False)
        self._keep_dialog(box)
        self.about_box = box
        box.show()

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
        parts = ["diffusion-gui"]
        if self.ctx.image_path:
            parts.append(Path(self.ctx.image_path).name)
        if self.ctx.model is not None:
            parts.append(self.ctx.model.name)
        self.setWindowTitle(" \u2014 ".join(parts))

    # ================================================================== drag and drop
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

    def open_dropped(self, path: Path):
        path = Path(path)
        if _looks_like_model_folder(path):
            self.ctx.load_model(str(path))
        elif path.is_dir():
            self.show_error("Cannot open", f"'{path}' is a folder, but not a model folder "
                                           "(no model_index.json or config.json)")
        else:
            self.open_image(path)

    # ================================================================== start-up
    def start(self, model: str | None = None, image=None):
        """After ``show()``: open the start-up image (numpy + Pillow only, fast), import torch in
        the background, then load the model (in the background too)."""
        from ..models.registry import DEFAULT_MODEL
        from .panels.forward import ensure_backend

        img_path = Path(image) if image else default_image()
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

        ensure_backend(ready)

    # ================================================================== persistence
    def _restore(self):
        s = self.settings
        geo = s.value("window/geometry")
        restored = False
        if isinstance(geo, (QByteArray, bytes)):
            restored = self.restoreGeometry(geo)
        if not restored:
            screen = QApplication.primaryScreen()
            avail = screen.availableGeometry().size() if screen else DEFAULT_SIZE
            self.resize(min(DEFAULT_SIZE.width(), avail.width()),
                        min(DEFAULT_SIZE.height(), avail.height()))
        state = s.value("window/state")
        if isinstance(state, (QByteArray, bytes)):
            self.restoreState(state)
        key = s.value("window/tab", "forward")
        if key in self._keys:
            self.tabs.setCurrentIndex(self._keys.index(key))

    def save_settings(self):
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        idx = self.tabs.currentIndex()
        if 0 <= idx < len(self._keys):
            s.setValue("window/tab", self._keys[idx])
        for key, panel in self.panels.items():
            if not hasattr(panel, "save_settings"):
                continue
            s.beginGroup(key)
            try:
                panel.save_settings(s)
            except Exception:  # noqa: BLE001
                traceback.print_exc()
            finally:
                s.endGroup()
        s.sync()

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
        from .panels.forward import stop_backend_job
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
