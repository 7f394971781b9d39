"""pytest-qt tests that drive the forward panel: load, scrub, schedule, seed, play, keys, plots.

The reference pixels are computed here independently from the core API:
``to_uint8(GaussianDiffusion(NoiseSchedule.from_name(...)).q_sample(x0, t - 1, eps))`` with
``eps = torch.randn((C, H, W), generator=torch.Generator().manual_seed(seed))``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from diffusion_gui.gui.panels import forward as fwd  # noqa: E402
from diffusion_gui.gui.panels.forward import ForwardPanel  # noqa: E402
from diffusion_gui.sessions import forward as fs  # noqa: E402


# ----------------------------------------------------------------------------- helpers
def _write_image(path, w=40, h=30, mode="RGB", seed=1):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
    if mode == "L":
        a = np.clip(base.astype(int) + rng.integers(-20, 20, (h, w)), 0, 255).astype(np.uint8)
    else:
        a = np.stack([base, (yy * 255 // max(h - 1, 1)).astype(np.uint8),
                      rng.integers(0, 256, (h, w), dtype=np.uint8)], axis=-1)
    Image.fromarray(a, mode).save(path)
    return path


def expected_xt(image_u8, t, seed, schedule="linear", T=1000, size=256):
    """x_t as the panel must show it, from the core API only."""
    import torch

    from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
    from diffusion_gui.core.images import resize_image, to_float_array, to_uint8
    a = np.asarray(image_u8)
    if max(a.shape[:2]) > size:
        im = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
        a = np.asarray(resize_image(im, max_side=size))
    x0 = torch.from_numpy(to_float_array(a))[None]
    eps = torch.randn(tuple(x0.shape[1:]), generator=torch.Generator().manual_seed(seed))[None]
    if t == 0:
        return to_uint8(x0[0])
    d = GaussianDiffusion(NoiseSchedule.from_name(schedule, T))
    return to_uint8(d.q_sample(x0, t - 1, eps)[0])


@pytest.fixture
def image_path(tmp_path):
    return _write_image(tmp_path / "img.png")


def make_panel(qtbot, ctx, show=True):
    p = ForwardPanel(ctx)
    qtbot.addWidget(p)
    if show:
        p.resize(1200, 800)
        p.show()
        qtbot.waitExposed(p)
    return p


@pytest.fixture
def panel(qtbot, ctx, image_path):
    assert ctx.open_image(image_path)
    p = make_panel(qtbot, ctx)
    qtbot.waitUntil(p.is_ready, timeout=60000)
    yield p
    p.shutdown()


def shown(p):
    return p.view_xt.image()


# ----------------------------------------------------------------------------- tests
def test_load_shows_x0_at_t0(panel, ctx):
    assert panel.t == 0
    np.testing.assert_array_equal(shown(panel), ctx.image)
    np.testing.assert_array_equal(panel.x0_uint8(), ctx.image)
    np.testing.assert_array_equal(panel.view_x0.image(), ctx.image)     # filmstrip frame t = 0


@pytest.mark.parametrize("t", [1, 2, 37, 250, 999, 1000])
def test_scrub_matches_q_sample(panel, ctx, t):
    panel.slider.setValue(t)
    assert panel.t == t and panel.t_spin.value() == t and ctx.forward_t == t
    np.testing.assert_array_equal(shown(panel), expected_xt(ctx.image, t, seed=0))


def test_spin_box_drives_slider(panel, ctx):
    panel.t_spin.setValue(123)
    assert panel.slider.value() == 123 and panel.t == 123
    np.testing.assert_array_equal(shown(panel), expected_xt(ctx.image, 123, seed=0))


def test_scrubbing_changes_only_t(panel, ctx):
    """One eps per seed: going away and back reproduces the same pixels exactly."""
    panel.set_t(400)
    first = shown(panel).copy()
    for t in (1, 999, 37, 640):
        panel.set_t(t)
    panel.set_t(400)
    np.testing.assert_array_equal(shown(panel), first)


def test_change_schedule_and_T(panel, ctx, qtbot):
    panel.set_t(500)
    panel.schedule_combo.setCurrentText("cosine")
    panel.T_spin.setValue(200)
    assert panel.slider.maximum() == 200 and panel.t_spin.maximum() == 200
    assert panel.t == 100                                       # t keeps its place in 0..T
    for t in (0, 1, 100, 200):
        panel.set_t(t)
        np.testing.assert_array_equal(shown(panel), expected_xt(ctx.image, t, 0, "cosine", 200))
    for name in fs.SCHEDULES:
        panel.schedule_combo.setCurrentText(name)
        panel.set_t(57)
        np.testing.assert_array_equal(shown(panel), expected_xt(ctx.image, 57, 0, name, 200))


def test_seed_and_new_noise(panel, ctx, qtbot):
    panel.set_t(300)
    before = shown(panel).copy()
    panel.seed_spin.setValue(7)
    np.testing.assert_array_equal(shown(panel), expected_xt(ctx.image, 300, seed=7))
    assert not np.array_equal(shown(panel), before)
    qtbot.mouseClick(panel.new_noise_button, Qt.LeftButton)
    assert panel.seed == 8
    np.testing.assert_array_equal(shown(panel), expected_xt(ctx.image, 300, seed=8))


def test_working_size(qtbot, ctx, tmp_path):
    ctx.open_image(_write_image(tmp_path / "big.png", w=300, h=200))
    p = make_panel(qtbot, ctx)
    qtbot.waitUntil(p.is_ready, timeout=60000)
    assert shown(p).shape == (171, 256, 3)                      # default working size 256
    p.size_combo.setCurrentIndex(fs.SIZES.index(64))
    p.set_t(420)
    assert shown(p).shape == (43, 64, 3)
    np.testing.assert_array_equal(shown(p), expected_xt(ctx.image, 420, 0, size=64))
    p.size_combo.setCurrentIndex(fs.SIZES.index(512))
    assert shown(p).shape == (200, 300, 3)
    np.testing.assert_array_equal(shown(p), expected_xt(ctx.image, 420, 0, size=512))
    p.shutdown()


def test_grey_image(qtbot, ctx, tmp_path):
    ctx.open_image(_write_image(tmp_path / "grey.png", w=28, h=28, mode="L"))
    assert ctx.image.shape == (28, 28, 1)
    p = make_panel(qtbot, ctx)
    qtbot.waitUntil(p.is_ready, timeout=60000)
    p.set_t(150)
    assert shown(p).shape == (28, 28, 1)
    np.testing.assert_array_equal(shown(p), expected_xt(ctx.image, 150, 0))
    p.shutdown()


def test_play_animates_to_T_and_stops(panel, ctx, qtbot):
    panel.T_spin.setValue(40)
    panel.set_t(0)
    qtbot.mouseClick(panel.play_button, Qt.LeftButton)
    assert panel.is_playing()
    qtbot.waitUntil(lambda: panel.t > 0, timeout=5000)
    qtbot.waitUntil(lambda: not panel.is_playing(), timeout=20000)
    assert panel.t == 40 and not panel.play_button.isChecked()
    np.testing.assert_array_equal(shown(panel), expected_xt(ctx.image, 40, 0, T=40))
    # play again from the end restarts at 0; pause stops
    panel.toggle_play()
    assert panel.is_playing()
    qtbot.waitUntil(lambda: 0 < panel.t < 40, timeout=5000)
    panel.toggle_play()
    t = panel.t
    qtbot.wait(150)
    assert not panel.is_playing() and panel.t == t


def test_keyboard(panel, qtbot):
    panel.activateWindow()
    panel.slider.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.slider, timeout=3000)
    qtbot.keyClick(panel.slider, Qt.Key_Right)
    assert panel.t == 1
    qtbot.keyClick(panel.slider, Qt.Key_PageUp)
    assert panel.t == 101
    qtbot.keyClick(panel.slider, Qt.Key_Left)
    assert panel.t == 100
    qtbot.keyClick(panel.slider, Qt.Key_PageDown)
    assert panel.t == 0
    qtbot.keyClick(panel.slider, Qt.Key_End)
    assert panel.t == 1000
    qtbot.keyClick(panel.slider, Qt.Key_Home)
    assert panel.t == 0
    qtbot.keyClick(panel.slider, Qt.Key_Space)
    assert panel.is_playing()
    qtbot.keyClick(panel.slider, Qt.Key_Space)
    assert not panel.is_playing()


def test_actions_carry_the_shortcuts(panel):
    keys = {a.text(): [s.toString() for s in a.shortcuts()] for a in panel.actions()}
    assert keys["Play / Pause"] == ["Space"]
    assert keys["Next step"] == ["Right"] and keys["Previous step"] == ["Left"]
    assert keys["First step (t = 0)"] == ["Home"] and keys["Last step (t = T)"] == ["End"]


def _click_plot(qtbot, plot, t):
    vb = plot.getPlotItem().vb
    (x0, x1), (y0, y1) = vb.viewRange()
    y = (y0 + y1) / 2                      # view coordinates (already log10 in log mode)
    scene_pt = vb.mapViewToScene(QPointF(t, y))
    pos = plot.mapFromScene(scene_pt)
    qtbot.mouseClick(plot.viewport(), Qt.LeftButton, pos=pos)


@pytest.mark.parametrize("which", ["beta", "abar", "snr"])
def test_click_on_plot_sets_t(panel, qtbot, which):
    plot = panel.plots[which]
    _click_plot(qtbot, plot, 600)
    assert abs(panel.t - 600) <= 8                            # a pixel is a few timesteps
    qtbot.waitUntil(lambda: abs(panel.cursors[which].line.value() - panel.t) < 1e-9, timeout=2000)


def test_dragging_the_cursor_sets_t(panel):
    panel.cursors["abar"].line.setValue(321.4)               # what a drag does
    assert panel.t == 321


def test_filmstrip_click_sets_t(panel, qtbot):
    fr = panel.film[3]
    assert fr.key == panel._film_ts[3] and fr.image() is not None
    qtbot.mouseClick(fr, Qt.LeftButton)
    assert panel.t == fr.key
    qtbot.waitUntil(lambda: fr.current, timeout=2000)
    assert sum(f.current for f in panel.film) == 1
    assert [f.key for f in panel.film] == [0, 143, 286, 429, 571, 714, 857, 1000]


def test_formula_readout(panel):
    from diffusion_gui.core import NoiseSchedule
    s = NoiseSchedule.from_name("linear", 1000)
    panel.set_t(500)
    text = panel.formula.text()
    a, b = float(s.sqrt_alpha_bars[499]), float(s.sqrt_one_minus_alpha_bars[499])
    assert f"{a:.3f}" in text and f"{b:.3f}" in text
    assert f"{float(s.alpha_bars[499]):.4f}" in text
    assert f"{float(s.snr_db[499]):+.1f}".replace("-", "&minus;") in text
    panel.set_t(0)
    assert "1.000" in panel.formula.text() and "0.000" in panel.formula.text()


def test_overlay_schedules(panel):
    cur = panel.curves[("abar", "linear")]
    other = panel.curves[("abar", "cosine")]
    assert cur.isVisible() and not other.isVisible()
    assert not panel.overlay_checks["linear"].isEnabled()
    panel.overlay_checks["cosine"].setChecked(True)
    assert other.isVisible()
    assert other.opts["pen"].style() == Qt.DashLine and cur.opts["pen"].style() == Qt.SolidLine
    x, y = other.getData()
    assert len(x) == 1000 and y[0] > 0.99
    panel.overlay_checks["cosine"].setChecked(False)
    assert not other.isVisible()


def test_histogram_converges_to_standard_normal(panel, qtbot):
    def hist_at(t):
        panel.set_t(t)
        panel._refresh_slow()
        return panel.hist_xt.getData()[1]

    centres = (fs.hist_edges()[:-1] + fs.hist_edges()[1:]) / 2
    gauss = np.exp(-centres ** 2 / 2) / math.sqrt(2 * math.pi)
    width = fs.hist_edges()[1] - fs.hist_edges()[0]
    far = np.abs(hist_at(0) - gauss).sum() * width
    near = np.abs(hist_at(1000) - gauss).sum() * width
    assert far > 0.5 and near < 0.25          # 3600 samples: sampling noise only
    assert abs(hist_at(1000).sum() * width - 1) < 0.01


def test_chain_agrees_in_distribution_and_matches_q_step(panel, ctx):
    """The step-by-step chain uses its own noise: same distribution, different pixels."""
    import torch

    from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
    from diffusion_gui.core.images import to_float_array, to_uint8

    panel.T_spin.setValue(100)
    assert panel.wait_for_chain(60000)
    QApplication.processEvents()
    assert panel.chain_done()
    cache = panel._chain
    assert cache.stride == 1
    # recompute the chain independently
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 100))
    g = torch.Generator().manual_seed(fs.chain_seed(0))
    x = torch.from_numpy(to_float_array(ctx.image))[None]
    ref = {0: to_uint8(x[0])}
    for i in range(100):
        x = d.q_step(x, i, torch.randn(x.shape, generator=g))
        ref[i + 1] = to_uint8(x[0])
    for t in (0, 1, 50, 100):
        panel.set_t(t)
        np.testing.assert_array_equal(panel.view_chain.image(), ref[t])
    # agree in distribution: per-image mean / std of closed form and chain
    for t in (10, 50, 100):
        m1, s1 = panel._math.stats(t)
        m2, s2 = cache.mean[t], cache.std[t]
        assert abs(m1 - m2) < 0.08 and abs(s1 - s2) < 0.08, (t, m1, m2, s1, s2)
    assert not np.array_equal(panel.view_chain.image(), shown(panel))   # its own noise
    assert "mean" in panel.stats_chain.text() and "mean" in panel.stats_xt.text()


def test_settings_roundtrip(panel, qtbot, ctx, tmp_path):
    panel.schedule_combo.setCurrentText("sigmoid")
    panel.T_spin.setValue(300)
    panel.seed_spin.setValue(42)
    panel.size_combo.setCurrentIndex(fs.SIZES.index(128))
    panel.overlay_checks["cosine"].setChecked(True)
    panel.set_t(77)
    s = QSettings(str(tmp_path / "round.ini"), QSettings.IniFormat)
    s.beginGroup("forward")
    panel.save_settings(s)
    s.endGroup()
    s.sync()
    p2 = make_panel(qtbot, ctx)
    s2 = QSettings(str(tmp_path / "round.ini"), QSettings.IniFormat)
    s2.beginGroup("forward")
    p2.restore_settings(s2)
    s2.endGroup()
    qtbot.waitUntil(p2.is_ready, timeout=60000)
    assert (p2.schedule_name, p2.T, p2.seed, p2.working_size) == ("sigmoid", 300, 42, 128)
    assert p2.overlay_checks["cosine"].isChecked() and not p2.overlay_checks["linear"].isChecked()
    assert p2.t == 77
    np.testing.assert_array_equal(shown(p2), expected_xt(ctx.image, 77, 42, "sigmoid", 300, 128))
    p2.shutdown()


def test_restore_tolerates_garbage(qtbot, ctx, tmp_path):
    s = QSettings(str(tmp_path / "bad.ini"), QSettings.IniFormat)
    for k, v in {"schedule": "nope", "T": "many", "seed": -5, "size": 999, "t": "x",
                 "overlays": 3}.items():
        s.setValue(k, v)
    p = make_panel(qtbot, ctx, show=False)
    p.restore_settings(s)
    assert p.schedule_name == "linear" and p.T == 1000 and p.working_size == 256
    p.shutdown()


def test_export_sources(panel):
    sources = panel.export_sources()
    kinds = [s.kind for s in sources]
    assert kinds[:3] == ["still", "timeline", "timeline"] and kinds.count("plot") == 4
    panel.set_t(10)
    for label, fn in panel.export_sources():
        got = fn()
        if isinstance(got, tuple):                   # images: (frames, captions)
            frames, captions = got
            assert frames and len(frames) == len(captions)
        else:                                        # plots: a picture of the plot
            frames = got
        assert all(f.dtype == np.uint8 and f.ndim == 3 for f in frames)
    frames, _ = panel.export_sources()[0][1]()
    np.testing.assert_array_equal(frames[0], shown(panel))


def test_image_change_rebuilds(panel, ctx, tmp_path):
    panel.set_t(200)
    ctx.open_image(_write_image(tmp_path / "other.png", w=20, h=36, seed=5))
    assert shown(panel).shape == (36, 20, 3)
    np.testing.assert_array_equal(shown(panel), expected_xt(ctx.image, 200, 0))


def test_shutdown_stops_the_chain_job(qtbot, ctx, tmp_path):
    ctx.open_image(_write_image(tmp_path / "big.png", w=500, h=500))
    p = make_panel(qtbot, ctx)
    qtbot.waitUntil(p.is_ready, timeout=60000)
    p.size_combo.setCurrentIndex(fs.SIZES.index(512))
    p._chain_timer.stop()
    p._start_chain()
    job = p._chain_job
    assert job is not None and job.is_running()
    p.shutdown()
    assert not job.is_running() and p._chain_job is None
    p.shutdown()                                           # idempotent


def test_placeholder_without_image(qtbot, ctx):
    p = make_panel(qtbot, ctx)
    qtbot.waitUntil(fwd.backend_ready, timeout=60000)
    qtbot.wait(50)
    assert not p.is_ready() and p.view_xt.image() is None
    p.set_t(5)                                            # harmless without an image
    p.shutdown()


# ----------------------------------------------------------------------------- issue #15
def test_new_image_chain_label_agrees_with_its_bar(panel, ctx, qtbot, tmp_path):
    """While the chain of a newly opened image runs, the step-by-step label says how far it
    has got, the number its progress bar shows (it used to stay at "t = 0" beside 100 / 1000)."""
    panel.T_spin.setValue(300)
    assert panel.wait_for_chain(60000)
    panel.set_t(300)
    seen = []
    report = panel.chain._on_progress

    def spy(t):
        report(t)
        seen.append((panel.chain_progress.value(), panel.stats_chain.text()))

    panel.chain._on_progress = spy
    assert ctx.open_image(_write_image(tmp_path / "second.png", w=256, h=256, seed=9))
    qtbot.waitUntil(panel.chain_done, timeout=60000)
    qtbot.waitUntil(lambda: not panel.chain_progress.isVisibleTo(panel), timeout=10000)
    pending = [(v, text) for v, text in seen if v < 300]
    assert any(v > 0 for v, _ in pending), seen          # progress arrived while it ran
    for v, text in pending:
        assert f"computed up to t = {v} so far" in text, (v, text)
    assert "mean" in panel.stats_chain.text()            # done: the numbers of x_300
    c = panel._chain
    assert panel.xt_columns.chain_memory.text() == c.memory_note()[0] == \
        f"chain cache: {c.nbytes() / 2 ** 20:.0f} MB"
    assert "every x_t" in panel.xt_columns.chain_memory.toolTip()


def test_every_schedule_has_its_own_pen(panel):
    """Overlays: one colour (from plots.COLORS, never the cursor's) and one dash per schedule."""
    from diffusion_gui.gui import plots
    from diffusion_gui.gui.panels.forward.views import CURSOR_COLOR
    for cb in panel.overlay_checks.values():
        cb.setChecked(True)
    palette = {c.lower() for c in plots.COLORS.values()}
    for current in ("linear", "sigmoid", "cosine"):
        panel.schedule_combo.setCurrentText(current)
        pens = {n: panel.curves[("abar", n)].opts["pen"] for n in fs.SCHEDULES}
        assert all(panel.curves[("abar", n)].isVisible() for n in fs.SCHEDULES)
        colours = {n: p.color().name() for n, p in pens.items()}
        assert len(set(colours.values())) == len(fs.SCHEDULES), colours
        assert set(colours.values()) <= palette and CURSOR_COLOR.lower() not in colours.values()
        dashes = {(p.style(), tuple(p.dashPattern())) for n, p in pens.items() if n != current}
        assert len(dashes) == len(fs.SCHEDULES) - 1
        assert pens[current].style() == Qt.SolidLine
        assert all(p.style() != Qt.SolidLine for n, p in pens.items() if n != current)


def test_no_band_above_the_images(panel, qtbot):
    """The headings sit under the controls and the pictures under the headings; spare height
    goes below the filmstrip (the picture is capped at its width's height)."""
    from PySide6.QtCore import QPoint
    qtbot.wait(50)

    def top(w):
        return w.mapTo(panel, QPoint(0, 0)).y()

    def bottom(w):
        return top(w) + w.height()

    assert panel.view_xt.height() < 500                    # capped: 40 x 30 px at its width
    assert top(panel.xt_columns.head_xt) - bottom(panel.controls) < 16
    assert top(panel.view_xt) - bottom(panel.xt_columns.head_xt) < 8
    assert top(panel.time_row) - bottom(panel.view_chain) < 60
    assert top(panel.filmstrip) + panel.filmstrip.height() < panel.height() - 20   # spare: below


# ----------------------------------------------------------------------------- power spectrum
def test_spectrum_tab_shows_x0_xt_and_noise_and_follows_t(panel, qtbot):
    """The spectrum view draws the radially averaged power of x_0, x_t and the noise term at the
    panel's t, the same numbers as a direct FFT of the float x_t (core/spectrum.py)."""
    from diffusion_gui.core.spectrum import radial_power
    panel.plot_tabs.setCurrentWidget(panel.spectrum)
    qtbot.waitUntil(lambda: panel.spectrum.spectrum is not None, timeout=20000)
    m = panel._math

    def curves_at(t):
        panel.set_t(t)
        panel._refresh_slow()
        items = panel.spectrum.view.items      # the data as given (getData is log10 in log mode)
        return {k: (items[k].xData, items[k].yData) for k in ("x0", "xt", "noise")}

    c = curves_at(300)
    abar = float(m.a64[300]) ** 2
    x0 = m.x0_chw.astype(np.float64)
    eps = m.eps.transpose(2, 0, 1).astype(np.float64)
    f, want = radial_power(np.sqrt(abar) * x0 + np.sqrt(1 - abar) * eps)
    assert np.allclose(c["xt"][0], f) and np.allclose(c["xt"][1], want, rtol=1e-6)
    assert np.allclose(c["noise"][1], (1 - abar) * radial_power(eps)[1], rtol=1e-6)
    assert np.allclose(c["x0"][1], radial_power(x0)[1], rtol=1e-6)
    assert "noise wins above" in panel.spectrum.view.readout.text()
    assert panel.spectrum.view.marker.isVisible()
    # t = 0: x_t is x_0, no noise; t = T: x_t is (nearly) the noise
    c0 = curves_at(0)
    assert np.allclose(c0["xt"][1], c0["x0"][1]) and not panel.spectrum.view.marker.isVisible()
    cT = curves_at(1000)
    assert np.allclose(cT["xt"][1], cT["noise"][1], rtol=0.05)


def test_spectrum_is_recomputed_for_a_new_seed(panel, qtbot):
    panel.plot_tabs.setCurrentWidget(panel.spectrum)
    qtbot.waitUntil(lambda: panel.spectrum.spectrum is not None, timeout=20000)
    before = panel.spectrum.spectrum
    panel.seed_spin.setValue(panel.seed_spin.value() + 1)
    qtbot.waitUntil(lambda: panel.spectrum.spectrum is not None and panel.spectrum.spectrum is not before,
                    timeout=20000)
    assert not np.allclose(before.p_eps, panel.spectrum.spectrum.p_eps)
