"""File > Device and the status bar's device (gui/device_menu.py), and the "as set up, this run
takes ≈ ..." lines of the Reverse and Losses panels (gui/cost_line.py over sessions/cost.py).
The CPU is the only device here; the menu's other entries are those the context detected."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from diffusion_gui.gui.panels.losses import LossPanel  # noqa: E402
from diffusion_gui.gui.panels.reverse import ReversePanel  # noqa: E402

T = 20
TIMEOUT = 30000


def _set_model(ctx, m):
    ctx.model, ctx.model_spec = m, "tiny"
    ctx.model_changed.emit()


def test_reverse_panel_says_what_the_run_costs(qtbot, ctx, tiny_model, monkeypatch):
    m = tiny_model(timesteps=T)
    p = ReversePanel(ctx)
    qtbot.addWidget(p)
    _set_model(ctx, m)
    p.batch.setValue(3)
    qtbot.waitUntil(lambda: "As set up" in p.cost_text.text() and "scaled" not in p.cost_text.text(),
                    timeout=TIMEOUT)
    assert f"{T} calls" in p.cost_text.text() and "on cpu" in p.cost_text.text()
    assert (id(m), "cpu", "float32", 3) in p.cost.timings         # "auto", resolved
    p.sampler.setCurrentIndex(p.sampler.findData("ddim"))
    p.steps.setValue(5)
    assert "5 calls" in p.cost_text.text()                 # the same timing, no new one
    p.batch.setValue(6)                                     # another batch: scaled, then timed
    assert "scaled" in p.cost_text.text()
    qtbot.waitUntil(lambda: (id(m), "cpu", "float32", 6) in p.cost.timings, timeout=TIMEOUT)
    monkeypatch.setattr("diffusion_gui.sessions.cost.LONG_RUN_S", 0.0)
    _set_model(ctx, tiny_model(timesteps=200))
    p.sampler.setCurrentIndex(p.sampler.findData("ddpm"))
    qtbot.waitUntil(lambda: "Long. Try DDIM-50: ≈" in p.cost_text.text(), timeout=TIMEOUT)
    assert "200 calls" in p.cost_text.text()
    p.shutdown()


def test_loss_panel_says_what_the_bound_costs(qtbot, ctx, tiny_model):
    m = tiny_model(timesteps=T)
    p = LossPanel(ctx)
    qtbot.addWidget(p)
    _set_model(ctx, m)
    qtbot.waitUntil(lambda: "As set up" in p.cost_label.text(), timeout=TIMEOUT)
    assert "on cpu" in p.cost_label.text() and " calls × " in p.cost_label.text()
    qtbot.waitUntil(lambda: p.cost.slot.job is None, timeout=TIMEOUT)   # idle: no QThread kept
    p.shutdown()


def test_device_menu_and_status_bar(qtbot, ctx, tmp_path):
    from PySide6.QtCore import QSettings

    from diffusion_gui.gui.main_window import MainWindow
    win = MainWindow(ctx, lazy=True)
    qtbot.addWidget(win)
    assert win.device_label.text() == "Device: auto · float32"      # before detection
    ctx.detect_devices()
    qtbot.waitUntil(lambda: bool(ctx.devices), timeout=TIMEOUT)
    texts = [a.text() for a in win.device_menu.actions() if a.text()]
    assert texts[0] == f"&Auto ({ctx.devices[0]})" and "CPU" in texts
    assert win.device_label.text() == f"Device: {ctx.devices[0]} · float32"
    cpu = next(a for a in win.device_menu.actions() if a.text() == "CPU")
    cpu.trigger()                                   # the menu is rebuilt: find the next entry anew
    next(a for a in win.device_menu.actions() if a.text().startswith("bfloat16")).trigger()
    assert (ctx.device_name, ctx.dtype_name) == ("cpu", "bfloat16")
    assert win.device_label.text() == "Device: cpu · bfloat16"
    f16 = next(a for a in win.device_menu.actions() if a.text().startswith("float16"))
    assert not f16.isEnabled()                      # ~50x slower on the CPU: not offered
    ctx.set_device(dtype="float16")                 # remembered from a GPU machine, say
    assert ctx.dtype_name == "float32"
    next(a for a in win.device_menu.actions() if a.text().startswith("bfloat16")).trigger()
    ctx.settings.sync()
    s = QSettings(ctx.settings.fileName(), QSettings.IniFormat)
    assert (s.value("device"), s.value("dtype")) == ("cpu", "bfloat16")
    win.close()


def test_a_remembered_device_that_is_gone_falls_back_to_auto(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from diffusion_gui.gui.context import AppContext
    s = QSettings(str(tmp_path / "gone.ini"), QSettings.IniFormat)
    s.setValue("device", "cuda:7")
    c = AppContext(settings=s)
    said = []
    c.status.connect(said.append)
    c.detect_devices()
    qtbot.waitUntil(lambda: bool(c.devices), timeout=TIMEOUT)
    assert c.device_name == "auto" and said and "cuda:7 is not available here" in said[0]
    c.shutdown()


def test_a_finished_run_becomes_the_estimate(qtbot, ctx, tiny_model):
    """After an unpaused run, its own seconds per call (the click to its end, over its calls)
    replace the timed call for its batch; a Step run (paused at once) teaches nothing."""
    import time
    m = tiny_model(timesteps=T)
    p = ReversePanel(ctx)
    qtbot.addWidget(p)
    _set_model(ctx, m)
    p.batch.setValue(2)
    key = (id(m), "auto", "float32", 2)
    qtbot.waitUntil(lambda: key in p.cost.timings, timeout=TIMEOUT)
    timed = p.cost.timings[key]
    t0 = time.monotonic()
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT):
        p.generate()
    took = time.monotonic() - t0
    learned = p.cost.timings[key]
    assert learned is not timed and learned.rows == 2
    assert 0 < learned.seconds * T <= took
    p._start("generate", steps=1)              # what Step does: a run paused after one step
    qtbot.waitUntil(lambda: p._state == "paused", timeout=TIMEOUT)
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT):
        p.resume()
    assert p.cost.timings[key] is learned
    p.shutdown()
