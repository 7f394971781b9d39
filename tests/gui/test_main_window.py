"""The main window: panels, menus, shortcuts, start-up, drag and drop, settings, clean close."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QTextBrowser, QToolButton, QWidget  # noqa: E402

from diffusion_gui.gui import main_window as mw  # noqa: E402
from diffusion_gui.gui.context import AppContext  # noqa: E402
from diffusion_gui.gui.main_window import MainWindow  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FORWARD = ("forward", "forward", "ForwardPanel")
DUMMY_MODULE = "diffusion_gui.gui.panels._test_dummy"


class DummyPanel(QWidget):
    """A minimal panel following the contract of diffusion_gui.gui.panels."""

    title = "Dummy"
    instances: list = []

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.value = 0
        self.shut = 0
        self.saved_group = None
        DummyPanel.instances.append(self)

    def shutdown(self):
        self.shut += 1

    def save_settings(self, settings):
        self.saved_group = settings.group()
        settings.setValue("value", self.value)

    def restore_settings(self, settings):
        self.value = int(settings.value("value", 0))

    def export_sources(self):
        return [("Dummy: grey", lambda: [np.full((4, 4, 1), 128, np.uint8)])]


@pytest.fixture
def dummy_module(monkeypatch):
    mod = types.ModuleType(DUMMY_MODULE)
    mod.DummyPanel = DummyPanel
    monkeypatch.setitem(sys.modules, DUMMY_MODULE, mod)
    DummyPanel.instances.clear()
    return mod


@pytest.fixture
def settings_file(tmp_path):
    return tmp_path / "settings.ini"


@pytest.fixture
def make_window(qtbot, monkeypatch, settings_file):
    made = []

    def make(panels=(FORWARD,), show=True):
        monkeypatch.setattr(mw, "PANELS", list(panels))
        ctx = AppContext(settings=QSettings(str(settings_file), QSettings.IniFormat))
        win = MainWindow(ctx)
        qtbot.addWidget(win)
        made.append(win)
        if show:
            win.show()
            qtbot.waitExposed(win)
        return win

    yield make
    for w in made:
        w.close()


def _img(path, w=24, h=16, color=(200, 30, 30)):
    Image.new("RGB", (w, h), color).save(path)
    return path


def _menu(win, title):
    for a in win.menuBar().actions():
        if a.text().replace("&", "") == title:
            return a.menu()
    raise AssertionError(f"no menu {title}")


def _texts(menu):
    return [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]


# ----------------------------------------------------------------------------- structure
def test_menus_and_shortcuts(make_window):
    win = make_window([FORWARD, ("nope", "does_not_exist", "Nope")])
    assert list(win.panels) == ["forward"]
    assert win.skipped == {"nope": "not installed"}
    assert "nope" in win.statusBar().currentMessage()
    file_items = _texts(_menu(win, "File"))
    for want in ("Open image\u2026", "Sample images", "Open recent", "Open model folder\u2026",
                 "Built-in models", "Export\u2026", "Quit"):
        assert want in file_items
    assert "Keyboard shortcuts" in _texts(_menu(win, "Help"))
    assert "About diffusion-gui" in _texts(_menu(win, "Help"))
    assert win.act_open.shortcut().toString() == "Ctrl+O"
    assert win.act_open_model.shortcut().toString() == "Ctrl+Shift+O"
    assert win.act_export.shortcut().toString() == "Ctrl+E"
    assert win.act_quit.shortcut().toString() == "Ctrl+Q"
    assert win._tab_actions[0].shortcut().toString() == "Ctrl+1"
    assert win.act_shortcuts.shortcut().toString() == "F1"
    view = _texts(_menu(win, "View"))
    assert "Forward" in view                         # the tab action and the panel's submenu


def test_sample_images_menu_lists_assets(make_window, qtbot):
    win = make_window()
    files = mw.sample_images()
    assert files, "assets/images/ should hold sample images"
    items = win.samples_menu.actions()
    assert [a.statusTip() for a in items] == [str(p) for p in files]
    assert mw.default_image() is not None and mw.default_image().suffix.lower() in (".jpg", ".jpeg")
    target = items[-1]
    target.trigger()                                  # decodes in the background
    qtbot.waitUntil(lambda: win.ctx.image_path == str(files[-1]), timeout=10000)
    assert win.ctx.recent_files()[0] == str(files[-1])


def test_start_opens_sample_and_survives_missing_model(make_window, qtbot):
    win = make_window()
    win.start()
    fp = win.panel("forward")
    assert win.ctx.image_path == str(mw.default_image())
    qtbot.waitUntil(fp.is_ready, timeout=60000)
    qtbot.waitUntil(lambda: not win.model_label.text().startswith("Model: loading")
                    and win.model_label.text() != "Model: \u2014", timeout=120000)
    if win.ctx.model is None:                       # the built-in model is not shipped yet
        assert win.model_label.text() == "Model: none"
        assert "Cannot load model" in win.statusBar().currentMessage()
        assert win.banner.isHidden()                # start-up model error: status bar only
    assert win.isVisible() and fp.view_xt.image() is not None


def test_model_error_after_startup_shows_banner(make_window, qtbot):
    win = make_window()
    win._startup_model = False
    win.ctx.error.emit("Cannot load model", "x: no such built-in model")
    assert win.banner.isVisible() and "no such built-in model" in win.banner.message
    assert QApplication.activeModalWidget() is None


def test_tabs_and_ctrl_numbers(make_window, dummy_module, qtbot):
    win = make_window([FORWARD, ("dummy", "_test_dummy", "DummyPanel")])
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())] == ["Forward", "Dummy"]
    win._tab_actions[1].trigger()
    assert win.tabs.currentIndex() == 1
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=3000)
    qtbot.keyClick(win, Qt.Key_1, Qt.ControlModifier)
    assert win.tabs.currentIndex() == 0
    qtbot.keyClick(win, Qt.Key_2, Qt.ControlModifier)
    assert win.tabs.currentIndex() == 1
    assert win._tab_actions[1].isChecked()


def test_settings_persist(make_window, dummy_module, qtbot, settings_file):
    panels = [FORWARD, ("dummy", "_test_dummy", "DummyPanel")]
    win = make_window(panels)
    win.panel("forward").seed_spin.setValue(5)
    win.panel("forward").schedule_combo.setCurrentText("cosine")
    win.panel("dummy").value = 42
    win.tabs.setCurrentIndex(1)
    win.resize(1300, 850)
    size = (win.width(), win.height())       # the offscreen screen may clamp it
    win.close()
    assert win.panel("dummy").saved_group == "dummy" and win.panel("dummy").shut == 1
    s = QSettings(str(settings_file), QSettings.IniFormat)
    assert s.value("forward/seed") in (5, "5") and s.value("window/tab") == "dummy"

    win2 = make_window(panels)
    assert win2.panel("forward").seed == 5
    assert win2.panel("forward").schedule_name == "cosine"
    assert win2.panel("dummy").value == 42
    assert win2.tabs.currentIndex() == 1
    avail = QApplication.primaryScreen().availableGeometry()
    if avail.width() >= 1300 and avail.height() >= 900:
        assert (win2.width(), win2.height()) == size
    else:                                   # a small virtual screen clamps restored geometry
        assert len(bytes(s.value("window/geometry"))) > 0


def test_recent_files(make_window, tmp_path, qtbot):
    win = make_window()
    a, b = _img(tmp_path / "a.png"), _img(tmp_path / "b.png", color=(0, 0, 255))
    assert win.open_image(a) and win.open_image(b)
    tips = [x.statusTip() for x in win.recent_menu.actions() if not x.isSeparator()]
    assert tips[:2] == [str(b), str(a)]
    win.recent_menu.actions()[1].trigger()          # reopen a.png from the menu (background)
    qtbot.waitUntil(lambda: win.ctx.image_path == str(a), timeout=10000)
    clear = [x for x in win.recent_menu.actions() if x.text() == "Clear recent files"][0]
    clear.trigger()
    assert win.ctx.recent_files() == [] and not win.recent_menu.isEnabled()


# ----------------------------------------------------------------------------- drag and drop
def _drag_enter(pos, mime):
    with warnings.catch_warnings():          # the QPoint constructor is deprecated in Qt 6.12
        warnings.simplefilter("ignore", DeprecationWarning)
        return QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)


def _drop(win, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = _drag_enter(QPoint(50, 50), mime)
    QApplication.sendEvent(win, enter)
    accepted = enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(win, drop)
    return accepted


def test_drop_image_file(make_window, tmp_path, qtbot):
    win = make_window()
    p = _img(tmp_path / "dropped.png", 30, 20)
    assert _drop(win, [p])
    qtbot.waitUntil(lambda: win.ctx.image_path == str(p), timeout=10000)   # decoded in the background
    assert win.ctx.image.shape == (20, 30, 3)
    fp = win.panel("forward")
    qtbot.waitUntil(fp.is_ready, timeout=60000)
    assert fp.view_xt.image().shape == (20, 30, 3)


def test_drop_model_folder_loads_model(make_window, tmp_path, monkeypatch):
    win = make_window()
    calls = []
    monkeypatch.setattr(win.ctx, "load_model", lambda spec: calls.append(spec))
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    _drop(win, [folder])
    assert calls == [str(folder)]
    plain = tmp_path / "plain"
    plain.mkdir()
    _drop(win, [plain])
    assert calls == [str(folder)] and win.banner.isVisible() and "folder" in win.banner.message


def test_drag_without_files_is_refused(make_window):
    win = make_window()
    mime = QMimeData()
    mime.setText("hello")
    ev = _drag_enter(QPoint(5, 5), mime)
    QApplication.sendEvent(win, ev)
    assert not ev.isAccepted()


# ----------------------------------------------------------------------------- dialogs
def test_export_without_dialog_module(make_window, monkeypatch, tmp_path):
    win = make_window()
    win.open_image(_img(tmp_path / "e.png"))
    monkeypatch.setitem(sys.modules, "diffusion_gui.gui.export_dialog", None)   # import fails
    win.act_export.trigger()
    assert win.banner.isVisible() and win.banner.title == "Export"
    assert QApplication.activeModalWidget() is None


def test_export_collects_sources(make_window, dummy_module, monkeypatch, qtbot, tmp_path):
    got = {}

    class FakeDialog(QWidget):
        def __init__(self, ctx, sources, parent=None):
            super().__init__(parent)
            got["sources"] = sources

        def open(self):
            got["opened"] = True

    fake = types.ModuleType("diffusion_gui.gui.export_dialog")
    fake.ExportDialog = FakeDialog
    monkeypatch.setitem(sys.modules, "diffusion_gui.gui.export_dialog", fake)
    win = make_window([FORWARD, ("dummy", "_test_dummy", "DummyPanel")])
    win.open_image(_img(tmp_path / "e.png"))
    qtbot.waitUntil(win.panel("forward").is_ready, timeout=60000)
    win.tabs.setCurrentIndex(1)                              # the current panel comes first
    win.export_dialog()
    labels = [lab for lab, _ in got["sources"]]
    assert got["opened"] and labels[0] == "Dummy: grey"
    assert any(lab.startswith("Forward") for lab in labels)
    assert all(callable(fn) for _, fn in got["sources"])


def test_shortcuts_and_about_do_not_block(make_window):
    win = make_window()
    win.act_shortcuts.trigger()
    assert win.shortcuts_dialog.isVisible() and not win.shortcuts_dialog.isModal()
    text = win.shortcuts_dialog.findChild(QTextBrowser).toPlainText()
    for k in ("Ctrl+O", "Ctrl+E", "Ctrl+Q", "Ctrl+1", "Space", "Right", "PgUp"):
        assert k in text
    win.act_about.trigger()
    assert win.about_box.isVisible() and QApplication.activeModalWidget() is None


# ----------------------------------------------------------------------------- shutdown
def test_close_stops_every_thread(make_window, qtbot, tmp_path):
    win = make_window()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)).save(
        tmp_path / "n.png")
    win.open_image(tmp_path / "n.png")
    fp = win.panel("forward")
    qtbot.waitUntil(fp.is_ready, timeout=60000)
    fp._chain_timer.stop()
    fp._start_chain()
    job = fp._chain_job
    assert job.is_running()
    win.close()
    assert not job.is_running() and fp._chain_job is None and win.ctx._jobs == []


def test_real_panel_list_builds(qtbot, settings_file):
    """The real panel list builds; a panel that cannot be built would be listed as skipped."""
    ctx = AppContext(settings=QSettings(str(settings_file), QSettings.IniFormat))
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    assert "forward" in win.panels
    assert set(win.panels) | set(win.skipped) == {k for k, _, _ in mw.PANELS}
    win.close()


START_SCRIPT = textwrap.dedent("""
    import sys, time
    t0 = time.perf_counter()
    from diffusion_gui.gui import main_window as mw
    mw.PANELS[:] = [("forward", "forward", "ForwardPanel")]
    from PySide6.QtCore import QTimer
    orig_show = mw.MainWindow.show
    def show(self):
        orig_show(self)
        print("torch_at_show", "torch" in sys.modules, "diffusers_at_show", "diffusers" in sys.modules)
        fp = self.panel("forward")
        def poll():
            label = self.model_label.text()
            if fp.is_ready() and not label.startswith("Model: loading") and label != "Model: \\u2014":
                print("ready", fp.view_xt.image().shape, label)
                self.close()
            else:
                QTimer.singleShot(100, poll)
        QTimer.singleShot(100, poll)
    mw.MainWindow.show = show
    from diffusion_gui.cli import main
    rc = main([])
    print("rc", rc)
""")


@pytest.mark.slow
def test_run_gui_starts_and_quits_cleanly(tmp_path):
    """``diffusion-gui`` with no arguments: window first, torch after, sample image, clean exit."""
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen",
           "DIFFUSION_GUI_SETTINGS": f"test-run-{tmp_path.name}", "XDG_CONFIG_HOME": str(tmp_path),
           "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", START_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=240)
    out = r.stdout
    assert r.returncode == 0, r.stderr[-2000:]
    assert "torch_at_show False diffusers_at_show False" in out
    assert "ready (" in out and "rc 0" in out
    assert "QThread" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_lazy_panels_build_after_first_paint(qtbot, monkeypatch, settings_file, dummy_module):
    monkeypatch.setattr(mw, "PANELS", [FORWARD, ("dummy", "_test_dummy", "DummyPanel")])
    ctx = AppContext(settings=QSettings(str(settings_file), QSettings.IniFormat))
    win = MainWindow(ctx, lazy=True)
    qtbot.addWidget(win)
    assert list(win.panels) == ["forward"] and win.tabs.count() == 2
    assert win.tabs.tabText(1) == "Dummy"
    called = []
    win.call_after_first_paint(lambda: called.append(1))
    win.call_after_first_paint(win.build_remaining_panels)
    win.show()
    qtbot.waitUntil(lambda: "dummy" in win.panels, timeout=10000)
    assert called == [1] and win.tabs.widget(1) is win.panel("dummy")
    assert win.tabs.currentIndex() == 0
    win.close()
    assert win.panel("dummy").shut == 1


def test_lazy_tab_builds_when_chosen(qtbot, monkeypatch, settings_file, dummy_module):
    monkeypatch.setattr(mw, "PANELS", [FORWARD, ("dummy", "_test_dummy", "DummyPanel")])
    ctx = AppContext(settings=QSettings(str(settings_file), QSettings.IniFormat))
    win = MainWindow(ctx, lazy=True)
    qtbot.addWidget(win)
    assert "dummy" not in win.panels
    win._tab_actions[1].trigger()
    assert win.tabs.currentIndex() == 1 and win.tabs.currentWidget() is win.panel("dummy")
    win.close()


def test_panel_can_veto_close(make_window, monkeypatch):
    """A panel with unsaved work (the Train panel) is asked first; its 'cancel' keeps the window."""
    win = make_window()
    win.show()
    fp = win.panel("forward")
    answers = [False, True]
    monkeypatch.setattr(fp, "maybe_close", lambda: answers.pop(0), raising=False)
    assert win.close() is False and win.isVisible()
    assert win.close() is True and answers == []


# ----------------------------------------------------------------------------- first-use fixes
def test_title_names_the_app_once(make_window, tmp_path):
    win = make_window()
    win.open_image(_img(tmp_path / "cat.png"))
    old = QApplication.applicationDisplayName()
    try:
        QApplication.setApplicationDisplayName("diffusion-gui")   # as run_gui does: Qt adds it
        win._update_title()
        assert win.windowTitle() == "cat.png"
        QApplication.setApplicationDisplayName("something else")  # nobody adds it: we do
        win._update_title()
        assert win.windowTitle() == "diffusion-gui \u2014 cat.png"
    finally:
        QApplication.setApplicationDisplayName(old)


def test_relaunch_reopens_the_last_image(make_window, tmp_path, qtbot):
    win = make_window()
    last = _img(tmp_path / "last.png")
    assert win.open_image(last)
    win.close()
    win2 = make_window()
    assert win2.startup_image() == last
    last.unlink()                                   # gone since: a built-in sample instead
    assert win2.startup_image() == mw.default_image()


def test_status_bar_drops_stale_messages(make_window, dummy_module, tmp_path, qtbot):
    win = make_window([FORWARD, ("dummy", "_test_dummy", "DummyPanel")])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert win.open_image(bad) is False
    assert win.statusBar().currentMessage().startswith("Cannot open image")
    win.banner.findChild(QToolButton).click()       # the user closes the banner
    assert win.banner.isHidden() and win.statusBar().currentMessage() == ""
    win.statusBar().showMessage("Forward: chain computed up to t = 1000", 10000)
    win.tabs.setCurrentIndex(1)                     # another panel: not its message
    assert win.statusBar().currentMessage() == ""
