"""The 2-D lab panel, offscreen: built without torch on the GUI thread, data changed (data sets,
text, the app's image, a drawing, a dragged and resized mixture component), the MLP trained,
paused, resumed and reset, DDPM and DDIM sampled from one x_T, the trajectory scrubbed, a particle
launched by a click, export sources rendering frames, settings round-tripped, shutdown joining
every job. The logic is tested without Qt in tests/sessions/test_lab2d*.py."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt  # noqa: E402

from diffusion_gui.gui.panels.lab2d import Lab2DPanel  # noqa: E402
from diffusion_gui.gui.workers import running_jobs  # noqa: E402

TIMEOUT = 60000



@pytest.fixture
def panel(qtbot, ctx):
    p = Lab2DPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.show()
    qtbot.waitUntil(p.is_ready, timeout=TIMEOUT)
    p.n_spin.setValue(300)
    p.T_spin.setValue(50)
    p.steps_spin.setValue(10)
    p.particles_spin.setValue(200)
    yield p
    p.shutdown()


def _select(combo, key):
    combo.setCurrentIndex(combo.findData(key))


def _click(view, xy, button=Qt.LeftButton, qtbot=None):
    """A real mouse click at data point ``xy`` of a CloudView."""
    scene = view.vb.mapViewToScene(QPointF(*xy))
    pos = view.mapFromScene(scene)
    qtbot.mouseClick(view.viewport(), button, pos=QPoint(pos.x(), pos.y()))


def _n(curve) -> int:
    x = curve.getData()[0]
    return 0 if x is None else len(x)


def _exact_enabled(p):
    return p.model_combo.model().item(p.model_combo.findData("exact")).isEnabled()


def test_data_choices_and_the_exact_denoiser(qtbot, panel, ctx, errors):
    p = panel
    s = p.session
    assert s.timesteps == 50 and len(s.data) == 300 and p.forward_view.data_points.count == 300
    assert not _exact_enabled(p)
    _select(p.data_combo, "gaussians8")
    assert s.settings.data == "gaussians8" and _exact_enabled(p)
    _select(p.model_combo, "exact")
    _select(p.data_combo, "spiral")
    assert p.model_combo.currentData() == "mlp" and not _exact_enabled(p)
    _select(p.data_combo, "text")
    p.text_edit.setText("Hi")
    p.text_edit.returnPressed.emit()
    assert s.settings.data == "custom" and s.settings.source == "text" and len(s.data) == 300
    img = np.full((30, 30, 3), 255, np.uint8)
    img[5:25, 12:18] = 0
    ctx.image = img
    _select(p.data_combo, "image")
    assert s.settings.source == "image" and s.data[:, 1].std() > s.data[:, 0].std()
    ctx.image = None
    p.apply_data()                      # no image: an error, the data stays
    assert errors and errors[-1][0] == "2-D lab: data" and s.settings.source == "image"


def test_draw_your_own_and_drag_a_mixture_component(qtbot, panel):
    p = panel
    s = p.session
    _select(p.data_combo, "draw")
    p.clear_btn.click()
    _click(p.forward_view, (1.0, 1.0), qtbot=qtbot)
    assert s.settings.data == "custom" and len(s.data) == 12
    assert np.abs(s.data - [1.0, 1.0]).max() < 1.0
    _click(p.forward_view, (-1.0, 0.0), qtbot=qtbot)
    assert len(s.data) == 24 and p.forward_view.data_points.count == 24
    _click(p.forward_view, (1.0, 1.0), Qt.RightButton, qtbot=qtbot)       # erase
    assert 12 <= len(s.data) < 24 and np.abs(s.data - [-1.0, 0.0]).max(1).min() < 1.0
    # the mixture: drag component 0's mean, resize it with the wheel and the spin box
    _select(p.data_combo, "gmm")
    m0 = s.mixture.means.copy()
    vb = p.forward_view.vb
    x, y = m0[0]
    vb.dragged.emit(x, y, Qt.LeftButton, Qt.NoModifier, "start")
    vb.dragged.emit(x + 0.5, y, Qt.LeftButton, Qt.NoModifier, "move")
    vb.dragged.emit(x + 1.0, y + 0.5, Qt.LeftButton, Qt.NoModifier, "finish")
    np.testing.assert_allclose(s.mixture.means[0], [x + 1.0, y + 0.5])
    np.testing.assert_allclose(s.mixture.means[1:], m0[1:])
    np.testing.assert_allclose(p.forward_view.handles.data["x"], s.mixture.means[:, 0])
    std0 = s.mixture.stds[0].copy()
    vb.wheeled.emit(x + 1.0, y + 0.5, 2.0)
    np.testing.assert_allclose(s.mixture.stds[0], std0 * 1.21)
    assert p.std_spin.isEnabled()
    p.std_spin.setValue(0.4)
    np.testing.assert_allclose(s.mixture.stds[0], [0.4, 0.4])
    p.n_spin.setValue(400)                # more points: the dragged mixture stays
    assert len(s.data) == 400 and np.allclose(s.mixture.means[0], [x + 1.0, y + 0.5])


def test_train_pause_resume_reset(qtbot, panel):
    p = panel
    s = p.session
    p.train_btn.click()
    qtbot.waitUntil(lambda: s.trained_steps >= 20 and len(s.losses) >= 2, timeout=TIMEOUT)
    assert p.status_text() == "training" and not p.train_btn.isEnabled()
    qtbot.waitUntil(lambda: _n(p.loss_curve) >= 1, timeout=TIMEOUT)
    p.pause_btn.click()
    qtbot.waitUntil(lambda: p.pause_btn.text() == "Resume", timeout=TIMEOUT)
    steps = s.trained_steps
    qtbot.wait(300)
    assert s.trained_steps == steps and p.status_text() == "training paused"
    _select(p.data_combo, "gaussians8")           # change the data: training goes on
    p.pause_btn.click()
    qtbot.waitUntil(lambda: s.trained_steps > steps + 10, timeout=TIMEOUT)
    p.reset_btn.click()                            # a fresh network; training goes on
    qtbot.waitUntil(lambda: 0 < s.trained_steps < steps, timeout=TIMEOUT)
    assert p._train.is_running()


def test_sample_scrub_launch_and_export(qtbot, panel, errors):
    from diffusion_gui.sessions.export_sources import ExportOptions
    p = panel
    _select(p.data_combo, "gaussians8")
    _select(p.model_combo, "exact")
    p.grid_check.setChecked(True)
    p.sample_btn.click()
    qtbot.waitUntil(lambda: p.run is not None and p.run.complete and not p.is_sampling(),
                    timeout=TIMEOUT)
    run = p.run
    assert run.ddpm.xs.shape == (11, 200, 2) and run.kind == "exact" and p.t == 0
    np.testing.assert_array_equal(run.ddpm.xs[0], run.ddim.xs[0])
    np.testing.assert_array_equal(p.ddim_view.particles.points, run.ddim.xs[-1])
    # scrub: the views show the recorded row nearest to t
    p.t_slider.setValue(26)
    k = run.ddpm.row_of(26)
    np.testing.assert_array_equal(p.ddpm_view.particles.points, run.ddpm.xs[k])
    assert _n(p.ddim_view.grid_lines) == 30 * 62                         # the warped grid
    p.step_t(+1)
    assert p.t == int(run.ts[k - 1])
    # click the DDIM view at the current t: one particle runs the remaining steps
    with qtbot.waitSignal(p.particle_launched, timeout=TIMEOUT) as sig:
        _click(p.ddim_view, (0.5, -0.5), qtbot=qtbot)
    key, length = sig.args
    assert key == "ddim" and length == int(np.sum(run.ts[:-1] <= p.t)) + 1
    path = p._traces[-1][1]
    np.testing.assert_allclose(path[0], [0.5, -0.5], atol=0.05)
    assert p.ddim_view.path_heads.data["x"].size == 1
    # the overlay: q_t and both fields at t (exact vs exact: no error)
    qtbot.waitUntil(lambda: p._overlay is not None and p._overlay.t == p.t, timeout=TIMEOUT)
    assert p._overlay.error == (0.0, 0.0) and _n(p.forward_view.arrows) > 0
    # export: timelines of the forward and the reverse particles render frames
    sources = p.export_sources()
    labels = [src.label for src in sources]
    assert any("forward particles" in lab for lab in labels)
    for src in sources:
        if src.kind == "timeline":
            frame, cap = src.frame_at(ExportOptions(n_frames=5), 0)
            assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8 and cap
            assert (frame != 255).any()
    assert sum(src.kind == "timeline" for src in sources) == 3
    assert not errors


def test_compare_the_denoisers(qtbot, panel):
    p = panel
    _select(p.data_combo, "gaussians8")
    p.compare_btn.click()
    qtbot.waitUntil(lambda: len(p._quality.get("bound", {})) == 2, timeout=TIMEOUT)
    assert {"fresh", "mlp", "exact", "empirical"} <= set(p._quality)
    assert "energy distance" in p.numbers.text()
    assert p.hist_curves["empirical"].isVisible() and _n(p.floor_curve) > 0
    assert "nats/dim" in p.bound_label.text() and "exact" in p.bound_label.text()


def test_settings_round_trip_and_play(qtbot, ctx, panel, tmp_path):
    p = panel
    _select(p.data_combo, "spiral")
    _select(p.view_combo, "ddim")
    p.grid_check.setChecked(True)
    p.set_t(20)
    st = QSettings(str(tmp_path / "lab.ini"), QSettings.IniFormat)
    p.save_settings(st)
    assert not p.ddpm_view.isVisible() and p.ddim_view.isVisible()
    q = Lab2DPanel(ctx)
    qtbot.addWidget(q)
    q.restore_settings(st)
    qtbot.waitUntil(q.is_ready, timeout=TIMEOUT)
    try:
        assert q.session.settings.data == "spiral" and q.session.timesteps == 50
        assert q.view_combo.currentData() == "ddim" and q.grid_check.isChecked() and q.t == 20
        assert len(q.session.data) == 300
        q.toggle_play()
        qtbot.waitUntil(lambda: q.t == 0 and not q._playing, timeout=TIMEOUT)
        assert q.frames_drawn > 2
    finally:
        q.shutdown()


def test_shutdown_joins_every_job(qtbot, ctx):
    p = Lab2DPanel(ctx)
    qtbot.addWidget(p)
    qtbot.waitUntil(p.is_ready, timeout=TIMEOUT)
    p.T_spin.setValue(50)
    p.train_btn.click()
    p.steps_spin.setValue(50)
    p.particles_spin.setValue(5000)
    p.sample_btn.click()
    p.compare_btn.click()
    assert "training" in p.status_text()
    p.shutdown()
    p.shutdown()                                # idempotent
    assert not p._train.is_running() and not p._sample.is_running() and not p._compare.is_running()
    qtbot.waitUntil(lambda: running_jobs() == 0, timeout=TIMEOUT)


def test_a_learned_variance_mlp_from_the_panel(qtbot, ctx, panel, tmp_path):
    """The MLP box's variance choice: a learned one resets to a 4-output network, trains with
    L_hybrid, samples and is scored in Compare; the choice is remembered."""
    p = panel
    s = p.session
    _select(p.data_combo, "gaussians8")
    _select(p.variance_combo, "learned_range")
    assert s.train_state.net.learned_variance and s.settings.variance == "learned_range"
    assert p.loss_plot.getPlotItem().getAxis("left").labelText == "L_hybrid"
    p.train_btn.click()
    qtbot.waitUntil(lambda: s.trained_steps >= 20, timeout=TIMEOUT)
    p.pause_btn.click()
    qtbot.waitUntil(lambda: p.pause_btn.text() == "Resume", timeout=TIMEOUT)
    p.sample_btn.click()
    qtbot.waitUntil(lambda: p.run is not None and p.run.complete and not p.is_sampling(), timeout=TIMEOUT)
    p.compare_btn.click()
    qtbot.waitUntil(lambda: len(p._quality.get("bound", {})) == 2, timeout=TIMEOUT)
    assert np.isfinite(p._quality["bound"]["mlp"]["total"])
    st = QSettings(str(tmp_path / "lab.ini"), QSettings.IniFormat)
    p.save_settings(st)
    q = Lab2DPanel(ctx)
    qtbot.addWidget(q)
    q.restore_settings(st)
    qtbot.waitUntil(q.is_ready, timeout=TIMEOUT)
    try:
        assert q.variance_combo.currentData() == "learned_range"
        assert q.session.train_state.net.learned_variance
        assert q.loss_plot.getPlotItem().getAxis("left").labelText == "L_hybrid"
    finally:
        q.shutdown()
