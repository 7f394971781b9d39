"""pytest-qt tests of the Compare panel (grid, forks, inversion & interpolation) on a tiny model."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from diffusion_gui.gui.panels.compare import ComparePanel  # noqa: E402
from diffusion_gui.sessions.compare import CompareSettings  # noqa: E402
from diffusion_gui.sessions.reverse import ReverseRun, ReverseSettings  # noqa: E402

T = 20
TIMEOUT = 60000


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model(timesteps=T)


@pytest.fixture
def panel(qtbot, ctx, model):
    ctx.model, ctx.model_spec = model, "tiny"
    p = ComparePanel(ctx)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.show()
    ctx.model_changed.emit()
    yield p
    p.shutdown()


def _wait_idle(qtbot, page):
    qtbot.waitUntil(lambda: not page.busy(), timeout=TIMEOUT)
    qtbot.wait(50)


def test_grid_rows_scrub_and_equal_the_reverse_panel(qtbot, panel, model):
    g = panel.grid
    g.rows_edit.setText("ddpm, ddim:5:0, ddim:5:1")
    g.batch.setValue(3)
    g.seed.setValue(4)
    assert g.start_grid()
    _wait_idle(qtbot, g)
    assert len(g.strips) == 3 and g.slider.isEnabled()
    # the last row shown at t = 0 is the Reverse panel's run of the same settings
    run = ReverseRun(model, ReverseSettings(sampler="ddim", steps=5, eta=1.0, seed=4, batch=3).sampling_params())
    for so in run.make_gen():
        run.observe(so)
    run.flush()
    from diffusion_gui.core.images import tile
    assert np.array_equal(g.strips[2].image(), tile(run.final_images(), ncols=3))
    # every row scrubbed to t = T shows the same x_T
    g.slider.setValue(T)
    first = [s.image() for s in g.strips]
    assert all(np.array_equal(f, first[0]) for f in first[1:])
    assert "DDIM, 5 steps, η = 1" in g.strips[2].head.text()
    labels = [s.label for s in panel.export_sources()]
    assert any("grid at t" in x for x in labels) and any("GIF" in x for x in labels)


def test_bad_rows_are_reported_not_run(qtbot, panel):
    panel.grid.rows_edit.setText("plms:10")
    assert not panel.grid.start_grid()
    assert "rows" in panel.grid.run.status.text()


def test_forks_curve_and_results(qtbot, panel):
    f = panel.forks
    panel.set_mode("forks")
    f.sampler.setCurrentIndex(f.sampler.findData("ddpm"))
    f.k.setValue(4)
    f.points.setValue(3)
    assert f.start_forks()
    _wait_idle(qtbot, f)
    c = f.curve
    assert c is not None and len(c.points) == 3
    x, y = f.spread_curve.getData()
    assert list(x) == sorted(p.t for p in c.points) and len(y) == 3
    f.pick_t(1)
    assert f.picked == 1 and f.forks.image() is not None
    assert f.forks.image().shape[1] > 4 * 16          # K = 4 images side by side
    assert not f.changed_plot.isVisible()             # the tiny model is not the digits model


def test_inversion_error_curve_and_interpolation(qtbot, panel):
    i = panel.inversion
    panel.set_mode("inversion")
    i.source.setCurrentIndex(0)
    i.n_digits.setValue(2)
    i.steps_edit.setText("2, 5, 20, 999")
    assert i.start_inversion()
    _wait_idle(qtbot, i)
    assert [r.steps for r in i.recons] == [2, 5, 20]     # 999 > T is dropped
    x, y = i.psnr_curve.getData()
    assert len(x) == 3 and np.all(np.isfinite(y))
    i.pick(0)
    assert "N = 2" in i.recon.head.text()
    i.frames.setValue(4)
    i.interp_steps.setValue(5)
    assert i.start_interp()
    _wait_idle(qtbot, i)
    assert i.interp is not None and i.interp["frames"].shape[0] == 4
    labels = [s.label for s in panel.export_sources()]
    assert "Compare: interpolation (GIF)" in labels and "Compare: originals and reconstructions" in labels


def test_settings_round_trip(qtbot, panel, tmp_path):
    from PySide6.QtCore import QSettings
    s = QSettings(str(tmp_path / "c.ini"), QSettings.IniFormat)
    panel.grid.rows_edit.setText("ddim:7:0.3")
    panel.forks.k.setValue(5)
    panel.inversion.steps_edit.setText("3, 9")
    panel.save_settings(s)
    panel.apply_settings(CompareSettings())
    panel.restore_settings(s)
    got = panel.settings()
    assert got.rows == "ddim:7:0.3" and got.fork_k == 5 and got.inv_steps == "3, 9"
