"""The loss panel, offscreen, on a tiny random diffusers checkpoint (tests/tiny_models.py).

What issue #6 asks to show: the curves plotted are compute_vlb's arrays; cancel mid-run; the
cursor follows ctx.set_forward_t and a dragged cursor sets it; a clear hint without a model.
Timesteps are the paper's t (1..T).
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from diffusion_gui.gui.panels.losses import LossPanel  # noqa: E402
from diffusion_gui.sessions.losses import T_BATCH, bucket_shares, vlb_images  # noqa: E402

T = 50
TIMEOUT = 60000   # ms


@pytest.fixture(scope="module")
def model(checkpoints):
    from diffusion_gui.models.loader import load_model
    return load_model(str(checkpoints(timesteps=T)))


class Slow:
    """A LoadedModel look-alike whose UNet calls take ``delay`` seconds (and can fail)."""

    def __init__(self, inner, delay=0.0, fail=False):
        self.inner, self.delay, self.fail = inner, delay, fail
        self.calls = 0
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, x, i):
        with self.lock:
            self.calls += 1
        if self.fail:
            raise RuntimeError("the UNet exploded")
        time.sleep(self.delay)
        return self.inner(x, i)


@pytest.fixture
def panel(qtbot, ctx):
    p = LossPanel(ctx)
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def _set_model(ctx, m):
    ctx.model = m
    ctx.model_changed.emit()


def _digits(panel, n=2, stride=5, seed=0):
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("digits"))
    panel.digits_spin.setValue(n)
    panel.stride_spin.setValue(stride)
    panel.seed_spin.setValue(seed)


def _run(qtbot, panel):
    assert panel.compute()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=TIMEOUT)


def _reference(model, n, stride, seed=0):
    import torch

    from diffusion_gui.core.vlb import compute_vlb
    x0 = vlb_images(model, None, n).float()
    return compute_vlb(model, model.diffusion, x0, stride=stride, t_batch=T_BATCH,
                       generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ no model
def test_hint_without_model(panel, ctx):
    assert ctx.model is None
    assert panel.stack.currentWidget() is panel.hint
    assert "No model loaded" in panel.hint.text()
    assert not panel.compute_btn.isEnabled()
    assert panel.compute() is False


# ------------------------------------------------------------------------------ the curves
def test_plotted_curves_are_compute_vlbs_arrays(qtbot, panel, ctx, model):
    _set_model(ctx, model)
    assert panel.stack.currentWidget() is not panel.hint
    _digits(panel, n=2, stride=5, seed=3)
    panel.log_check.setChecked(False)
    _run(qtbot, panel)
    ref = _reference(model, 2, 5, seed=3)
    r = panel.result
    assert r is not None and r.timesteps == T and r.stride == 5 and r.num_images == 2
    np.testing.assert_array_equal(r.t, ref.t)
    for name in ("vb_bpd", "eps_mse", "x0_mse", "weights"):
        np.testing.assert_allclose(getattr(r, name), getattr(ref, name), rtol=1e-9, atol=1e-12)
    assert r.total_bpd == pytest.approx(ref.total_bpd, rel=1e-9)

    x, y = panel.kl_curve.getData()                 # L_{t-1}: t >= 2
    np.testing.assert_array_equal(x, ref.t[1:])
    np.testing.assert_allclose(y, ref.vb_bpd[1:], rtol=1e-9)
    x, y = panel.decoder_pt.getData()               # L_0 at t = 1
    assert list(x) == [1] and y[0] == pytest.approx(ref.decoder_bpd, rel=1e-9)
    x, y = panel.prior_pt.getData()                 # L_T at t = T
    assert list(x) == [T] and y[0] == pytest.approx(ref.prior_bpd, rel=1e-9)
    np.testing.assert_allclose(panel.eps_curve.getData()[1], ref.eps_mse, rtol=1e-9)
    np.testing.assert_allclose(panel.x0_curve.getData()[1], ref.x0_mse, rtol=1e-9)
    np.testing.assert_array_equal(panel.eps_curve.getData()[0], ref.t)
    # the cumulative bound ends at the total; the ten shares add up to 100 %
    assert panel.cum_curve.getData()[1][-1] == pytest.approx(ref.total_bpd, rel=1e-9)
    edges, pct = bucket_shares(ref)
    assert len(pct) == 10 and pct.sum() == pytest.approx(100.0)
    np.testing.assert_allclose(panel.bars.opts["height"], pct)
    # the formula and the figures are on screen
    text = panel.summary.text()
    assert "L<sub>T</sub> + Σ" in text and f"{ref.total_bpd:.4f}" in text
    assert "2 held-out digits" in text


def test_log_toggle_and_stride_one_is_exact(qtbot, panel, ctx, model):
    _set_model(ctx, model)
    _digits(panel, n=1, stride=1)
    panel.log_check.setChecked(True)
    _run(qtbot, panel)
    assert panel.terms_plot.getPlotItem().ctrl.logYCheck.isChecked()
    r = panel.result
    assert len(r.t) == T and np.all(r.weights == 1)
    assert r.total_bpd == pytest.approx(r.prior_bpd + r.vb_bpd.sum())
    np.testing.assert_allclose(panel.kl_curve.yData, r.vb_bpd[1:])   # raw data, not log10
    panel.log_check.setChecked(False)
    assert not panel.terms_plot.getPlotItem().ctrl.logYCheck.isChecked()
    assert not panel.mse_plot.getPlotItem().ctrl.logYCheck.isChecked()


def test_forward_image_and_generated_sample(qtbot, panel, ctx, model):
    _set_model(ctx, model)
    assert not panel.source_combo.model().item(0).isEnabled()      # no image yet
    ctx.image = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    ctx.image_changed.emit()
    assert panel.source_combo.model().item(0).isEnabled()
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("image"))
    panel.stride_spin.setValue(10)
    _run(qtbot, panel)
    assert panel.result.num_images == 1
    assert panel.thumb.image().shape == (16, 16, 1)               # the model's size and channels
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("sample"))
    _run(qtbot, panel)
    assert panel.result.num_images == 1 and "DDPM sample" in panel.result_label


# ------------------------------------------------------------------------------ cancel, failure
def test_cancel_mid_run(qtbot, panel, ctx, model):
    slow = Slow(model, delay=0.05)
    _set_model(ctx, slow)
    _digits(panel, n=T_BATCH, stride=1)          # one timestep per UNet call: T calls
    panel.compute()
    assert panel.is_running() and panel.cancel_btn.isEnabled() and not panel.compute_btn.isEnabled()
    qtbot.waitUntil(lambda: panel._partial is not None and panel._partial["done"] >= 2, timeout=TIMEOUT)
    panel.cancel_btn.click()
    assert not panel.is_running()
    assert panel.compute_btn.isEnabled() and not panel.cancel_btn.isEnabled()
    assert panel.result is None
    assert "Cancelled" in panel.summary.text()
    job = panel._job
    assert job.thread.wait(10000)                 # the worker stops after the current call
    calls = slow.calls
    assert calls < T
    qtbot.wait(200)
    assert slow.calls == calls                    # no UNet call after the cancel
    x, _ = panel.kl_curve.getData()
    assert x is None or len(x) == 0              # no stale partial curve left


def test_cancel_brings_back_the_previous_result(qtbot, panel, ctx, model):
    slow = Slow(model)
    _set_model(ctx, slow)
    _digits(panel, n=1, stride=10)
    _run(qtbot, panel)
    before = panel.result
    ctx.model_changed.emit()                      # the same model again: the result is kept
    assert panel.result is before
    slow.delay = 0.05
    _digits(panel, n=T_BATCH, stride=1)
    panel.compute()
    qtbot.waitUntil(lambda: panel._partial is not None, timeout=TIMEOUT)
    panel.cancel()
    assert panel.result is before and "Cancelled" in panel.summary.text()
    np.testing.assert_array_equal(panel.kl_curve.getData()[0], before.t[1:])


def test_failure_reports_and_keeps_the_panel_usable(qtbot, panel, ctx, model):
    _set_model(ctx, Slow(model, fail=True))
    _digits(panel, n=1, stride=10)
    with qtbot.waitSignal(ctx.error, timeout=TIMEOUT) as sig:
        panel.compute()
    assert sig.args[0] == "Loss computation failed" and "exploded" in sig.args[1]
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=TIMEOUT)
    assert panel.compute_btn.isEnabled() and panel.result is None


def test_model_change_clears_the_result(qtbot, panel, ctx, model, checkpoints):
    from diffusion_gui.models.loader import load_model
    _set_model(ctx, model)
    _digits(panel, n=1, stride=10)
    _run(qtbot, panel)
    other = load_model(str(checkpoints(timesteps=20, seed=1)))
    _set_model(ctx, other)
    assert panel.result is None
    assert "Model changed" in panel.summary.text()
    assert panel.stride_spin.maximum() == 19


# ------------------------------------------------------------------------------ the t cursor
def test_cursor_follows_forward_t_and_sets_it(qtbot, panel, ctx, model):
    _set_model(ctx, model)
    ctx.set_forward_t(17)
    assert all(round(c.line.value()) == 17 for c in panel.cursors)
    assert "t = 17" in panel.readout.text()
    with qtbot.waitSignal(ctx.forward_t_changed, timeout=1000) as sig:
        panel.cursors[1].line.setValue(23.4)       # a drag on the MSE plot
    assert sig.args == [23] and ctx.forward_t == 23
    assert all(round(c.line.value()) == 23 for c in panel.cursors)
    panel.cursors[0].line.setValue(10 * T)         # clamped to T
    assert ctx.forward_t == T
    _digits(panel, n=1, stride=10)
    _run(qtbot, panel)
    ctx.set_forward_t(21)                          # evaluated with stride 10: 1, 2, 11, 21, ...
    assert "t = 21" in panel.readout.text() and "nearest" not in panel.readout.text()
    ctx.set_forward_t(24)                          # the read-out names the nearest evaluated t
    assert "nearest evaluated: 21" in panel.readout.text()


# ------------------------------------------------------------------------------ settings, export
def test_settings_round_trip_and_bad_values(qtbot, ctx, model, tmp_path):
    s = QSettings(str(tmp_path / "p.ini"), QSettings.IniFormat)
    a = LossPanel(ctx)
    qtbot.addWidget(a)
    _set_model(ctx, model)
    _digits(a, n=7, stride=4, seed=11)
    a.log_check.setChecked(False)
    a.save_settings(s)
    b = LossPanel(ctx)
    qtbot.addWidget(b)
    b.restore_settings(s)
    assert (b.source_combo.currentData(), b.digits_spin.value(), b.stride_spin.value(),
            b.seed_spin.value(), b.log_check.isChecked()) == ("digits", 7, 4, 11, False)
    for k, v in {"digits": "many", "stride": -3, "seed": "x", "log_y": "maybe", "source": 42}.items():
        s.setValue(k, v)
    c = LossPanel(ctx)
    qtbot.addWidget(c)
    c.restore_settings(s)
    assert c.digits_spin.value() == 16 and c.stride_spin.value() == 1 and c.seed_spin.value() == 0
    assert c.log_check.isChecked() is False


def test_export_plots(qtbot, panel, ctx, model, tmp_path):
    _set_model(ctx, model)
    _digits(panel, n=1, stride=10)
    _run(qtbot, panel)
    panel.resize(1200, 800)
    for fmt in ("png", "svg", "csv"):
        out = panel.export_plot(fmt, tmp_path / f"terms.{fmt}")
        assert out.stat().st_size > 100
    assert (tmp_path / "terms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "terms.svg").read_text()
    table = (tmp_path / "all.csv")
    panel.export_plot("csv", table, which="all")
    lines = table.read_text().splitlines()
    assert lines[0] == "t,vb_bpd,eps_mse,x0_mse,weight" and len(lines) == len(panel.result.t) + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.csv", "terms.csv", "terms.png",
                                                          "terms.svg"]   # no temporary left
    for label, fn in panel.export_sources():
        frames = fn()
        assert frames[0].dtype == np.uint8 and frames[0].ndim == 3 and frames[0].shape[2] == 3


def test_hover_reads_out_the_values_under_the_pointer(qtbot, panel, ctx, model):
    from PySide6.QtCore import QPointF
    _set_model(ctx, model)
    panel.resize(1200, 800)
    panel.show()
    qtbot.waitExposed(panel)
    _digits(panel, n=1, stride=1)
    _run(qtbot, panel)
    vb = panel.mse_plot.getPlotItem().vb
    y = vb.viewRange()[1][0] + 0.5 * (vb.viewRange()[1][1] - vb.viewRange()[1][0])
    panel._hover(panel.mse_plot, vb.mapViewToScene(QPointF(30, y)))
    r = panel.result
    text = panel.readout.text()
    assert "pointer: <b>t = 30</b>" in text
    assert f"{r.eps_mse[29]:.4f}" in text and f"{r.x0_mse[29]:.4f}" in text
    panel._hover(panel.mse_plot, QPointF(-500, -500))        # outside: back to the cursor
    assert panel.readout.text().startswith("cursor")
