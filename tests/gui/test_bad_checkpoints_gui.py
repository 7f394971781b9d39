"""Bad checkpoints through the real main window: with a good model loaded, File > Open model
folder on each damaged checkpoint (tests/tiny_models.py DAMAGES: missing files, wrong shapes,
NaN weights, lying configs, a pickle payload, ...) plus an unreadable and a vanished folder.

Each must give the error banner with a one-line message, execute nothing, keep the previous
model (the same object, its spec and the status bar label), and leave generating working.
(tests/models/test_loader.py covers the loader's refusals one by one.)
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from tiny_models import DAMAGES, damaged_copy, make_checkpoint, pickle_marker  # noqa: E402

from diffusion_gui.gui import main_window as mw  # noqa: E402
from diffusion_gui.gui.context import AppContext  # noqa: E402

T = 20
TIMEOUT = 60000


@pytest.fixture(scope="module")
def good(checkpoints):
    return checkpoints(timesteps=T)


@pytest.fixture
def window(qtbot, tmp_path, good):
    """The real window (every panel of PANELS) with the good model loaded through the context."""
    ctx = AppContext(settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    win = mw.MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(ctx.model_changed, timeout=TIMEOUT):
        ctx.load_model(str(good))
    assert ctx.model is not None and ctx.model_spec == str(good)
    yield win
    win.close()


def _open_model(qtbot, win, monkeypatch, folder):
    """File > Open model folder..., the dialog answering ``folder``."""
    monkeypatch.setattr(mw.QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    with qtbot.waitSignal(win.ctx.model_changed, timeout=TIMEOUT):
        win.act_open_model.trigger()


def _generate(qtbot, win):
    rp = win.panel("reverse")
    rp.sampler.setCurrentIndex(rp.sampler.findData("ddim"))
    rp.steps.setValue(4)
    rp.batch.setValue(2)
    with qtbot.waitSignal(rp.run_ended, timeout=TIMEOUT) as blocker:
        rp.generate_btn.click()
    return blocker.args[1]


def _cases(tmp_path, good, monkeypatch):
    """(name, folder, a word of the message) for every damage, plus two the OS causes."""
    out = [(name, damaged_copy(good, tmp_path / name, name), word)
           for name, (_, word) in DAMAGES.items()]
    unreadable = tmp_path / "locked"               # a good checkpoint the OS will not let us read
    shutil.copytree(good, unreadable)
    import diffusion_gui.models.loader as loader
    real = loader.os.access                      # tests may run as root, who reads anything
    monkeypatch.setattr(loader.os, "access", lambda p, mode: False
                        if Path(p) == unreadable.resolve() else real(p, mode))
    out.append(("unreadable_folder", unreadable, "not readable"))
    gone = tmp_path / "gone"
    gone.mkdir()                                 # chosen in the dialog, deleted before the load
    out.append(("vanished_folder", gone, "no such built-in model, folder or hub id"))
    return out


def test_bad_checkpoints_are_refused_and_the_model_is_kept(qtbot, window, tmp_path, good,
                                                           monkeypatch):
    ctx = window.ctx
    before, spec = ctx.model, ctx.model_spec
    label = window.model_label.text()
    assert label.startswith("Model: tiny") and _generate(qtbot, window) == "finished"
    cases = _cases(tmp_path, good, monkeypatch)
    tried = []
    for name, folder, word in cases:
        if name == "vanished_folder":
            folder.rmdir()
        window.banner.hide()
        n_errors = len(window.errors)
        _open_model(qtbot, window, monkeypatch, folder)
        new = window.errors[n_errors:]
        assert [t for t, _ in new] == ["Cannot load model"], (name, new)
        msg = new[0][1]
        assert word in msg and "\n" not in msg and "Traceback" not in msg, (name, msg)
        assert window.banner.isVisible() and window.banner.message == msg, name
        assert QApplication.activeModalWidget() is None, name           # nothing blocks
        assert ctx.model is before and ctx.model_spec == spec, name     # the previous model
        assert window.model_label.text() == label, (name, window.model_label.text())
        assert not pickle_marker(folder).exists(), f"{name}: the pickle payload ran"
        assert _generate(qtbot, window) == "finished", name             # still works
        tried.append(name)
    assert len(tried) == len(DAMAGES) + 2
    # and a good model still loads after all that
    other = make_checkpoint(tmp_path / "other", channels=3, timesteps=T, seed=3)
    _open_model(qtbot, window, monkeypatch, other)
    assert ctx.model is not before and ctx.model.in_channels == 3
    assert _generate(qtbot, window) == "finished"
