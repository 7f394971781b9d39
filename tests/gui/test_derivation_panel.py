"""The Derivation panel, offscreen: every step computes in a worker and shows its numbers, the
equation arrives, the link asks the main window for another tab, shutdown joins."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from diffusion_gui.gui.panels.derivation import DerivationPanel  # noqa: E402
from diffusion_gui.gui.panels.derivation.panel import numbers_html  # noqa: E402


@pytest.fixture
def panel(qtbot, ctx):
    p = DerivationPanel(ctx)
    p.session.settings.lab_steps = 100
    p.lab_steps.setValue(100)
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def _wait(qtbot, p, key):
    qtbot.waitUntil(lambda: key in p.session.results and not p._job.is_running(), timeout=120_000)
    qtbot.waitUntil(lambda: p.verdict.text() == p.session.results[key].verdict, timeout=10_000)


def test_every_step_shows_its_numbers(qtbot, panel):
    assert panel.title == "Derivation" and panel.steps.count() == 8
    for row, step in enumerate(panel.session.steps):
        panel.steps.setCurrentRow(row)
        _wait(qtbot, panel, step.key)
        r = panel.session.results[step.key]
        html = panel.numbers.text()
        assert r.numbers[0][0].split(":")[0][:10] in html or "&" in html
        assert numbers_html(r.numbers) == html
        assert panel.plot.getPlotItem().listDataItems()            # something drawn
        assert panel.heading.text() == step.title
        assert panel.link.isVisible() is False or step.link_label in panel.link.text()
    qtbot.waitUntil(lambda: panel.equation.pixmap() is not None and not panel.equation.pixmap().isNull(),
                    timeout=30_000)


def test_link_switches_tabs(qtbot, ctx):
    from diffusion_gui.gui.main_window import MainWindow
    win = MainWindow(ctx, lazy=True)
    qtbot.addWidget(win)
    try:
        p = win.build_panel("derivation")
        win.show_panel("derivation")
        assert win.current_panel() is p
        p.steps.setCurrentRow(p.session.keys.index("kl_mse"))
        _wait(qtbot, p, "kl_mse")
        p.link.click()
        assert win._keys[win.tabs.currentIndex()] == "kl"
    finally:
        for panel in win.panels.values():
            panel.shutdown()


def test_shutdown_joins_a_running_step(qtbot, panel):
    panel.steps.setCurrentRow(panel.session.keys.index("simple"))
    qtbot.waitUntil(panel._job.is_running, timeout=5000)
    panel.shutdown()
    assert not panel._job.is_running()
    panel.shutdown()                                   # idempotent


def test_settings_round_trip(qtbot, panel, ctx):
    panel.seed.setValue(7)
    panel.save_settings(ctx.settings)
    other = DerivationPanel(ctx)
    qtbot.addWidget(other)
    other.restore_settings(ctx.settings)
    assert other.seed.value() == 7 and other.session.settings.seed == 7
    other.shutdown()


def test_numbers_html_headings():
    html = numbers_html([("a heading", ""), ("x < y", "1 & 2")])
    assert 'colspan="2"' in html and "x &lt; y" in html and "1 &amp; 2" in html
