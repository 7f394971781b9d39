"""The KL panel, offscreen: the numbers on screen are core.kl's.

Issue #6: the initial KLs are 0.137 / 0.427 nats; the p slider moves the binomial KL to
discrete_kl(true, binomial_pmf(n, p)); the reverse toggle; the Gaussian KL equals gaussian_kl.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from diffusion_gui.core.kl import binomial_pmf, discrete_kl, gaussian_kl, gaussian_kl_numerical, space_worms  # noqa: E402
from diffusion_gui.gui.panels.kl import P_STEPS, KLPanel  # noqa: E402


@pytest.fixture
def panel(qtbot, ctx):
    p = KLPanel(ctx)
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def test_initial_kls_are_the_examples(panel):
    w = space_worms()
    assert panel.kl["uniform"] == pytest.approx(w.kl_uniform)
    assert panel.kl["binomial"] == pytest.approx(w.kl_binomial)
    assert round(panel.kl["uniform"], 3) == 0.137 and round(panel.kl["binomial"], 3) == 0.427
    text = panel.discrete_values.text()
    assert "0.137" in text and "0.427" in text
    assert "loses less" in text and text.index("uniform") < text.index("loses less")
    assert "KL(P ‖ Q) = Σ" in panel.discrete_formula.text()
    # the bars are the three distributions
    np.testing.assert_allclose(panel.true_bars.opts["height"], w.true)
    np.testing.assert_allclose(panel.uniform_bars.opts["height"], w.uniform)
    np.testing.assert_allclose(panel.binom_bars.opts["height"], w.binomial)


@pytest.mark.parametrize("v", [300, 500, 720])
def test_p_slider_moves_the_binomial_kl(panel, v):
    w = space_worms()
    panel.p_slider.setValue(v)
    p = v / P_STEPS
    want = discrete_kl(w.true, binomial_pmf(10, p))
    assert panel.p == p
    assert panel.kl["binomial"] == pytest.approx(want, rel=1e-12)
    assert f"{want:.3f}" in panel.discrete_values.text()
    assert f"p = {p:.3f}" in panel.p_label.text()
    np.testing.assert_allclose(panel.binom_bars.opts["height"], binomial_pmf(10, p))
    assert panel.kl["uniform"] == pytest.approx(w.kl_uniform)       # unchanged


def test_n_changes_the_support(panel):
    w = space_worms()
    panel.n_spin.setValue(12)          # support 0..12: P padded with zeros
    true12 = np.concatenate([w.true, [0, 0]])
    assert panel.kl["binomial"] == pytest.approx(discrete_kl(true12, binomial_pmf(12, panel.p)))
    assert len(panel.binom_bars.opts["height"]) == 13
    panel.n_spin.setValue(8)           # Q(9) = Q(10) = 0 < P: infinite
    assert panel.kl["binomial"] == math.inf
    assert "∞" in panel.discrete_values.text()
    panel.fit_btn.click()
    assert panel.n == 10 and panel.kl["binomial"] == pytest.approx(w.kl_binomial)


def test_reverse_direction(panel):
    w = space_worms()
    panel.reverse_check.setChecked(True)
    assert panel.kl["uniform"] == pytest.approx(w.kl_uniform_reverse)
    assert panel.kl["binomial"] == pytest.approx(w.kl_binomial_reverse)
    assert "KL(Q ‖ P) = Σ" in panel.discrete_formula.text()
    assert f"{w.kl_binomial_reverse:.3f}" in panel.discrete_values.text()
    panel.p_slider.setValue(400)
    assert panel.kl["binomial"] == pytest.approx(discrete_kl(binomial_pmf(10, 0.4), w.true))
    panel.reverse_check.setChecked(False)
    assert panel.kl["uniform"] == pytest.approx(w.kl_uniform)


def test_gaussian_kl_label_equals_gaussian_kl(panel):
    assert panel.gauss_params() == (0.0, 1.0, 1.0, 2.0)
    assert panel.kl["gauss"] == pytest.approx(gaussian_kl(0, 1, 1, 2))
    panel.mu1.set_value(-0.5)
    panel.var1.set_value(0.4)
    panel.mu2.set_value(1.25)
    panel.var2.set_value(2.5)
    m1, v1, m2, v2 = panel.gauss_params()
    assert (m1, v1, m2, v2) == (-0.5, 0.4, 1.25, 2.5)
    want = gaussian_kl(m1, v1, m2, v2)
    assert panel.kl["gauss"] == pytest.approx(want, rel=1e-12)
    assert panel.kl["gauss_numerical"] == pytest.approx(gaussian_kl_numerical(m1, v1, m2, v2))
    text = panel.gauss_values.text()
    assert f"<b>{want:.4f}</b> nats" in text
    assert f"{panel.kl['gauss_numerical']:.4f}" in text
    assert "½ [ log σ" in panel.gauss_formula.text()
    # the densities drawn are N(mu1, var1) and N(mu2, var2)
    x, y = panel.p_curve.getData()
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=1e-6)
    assert x[np.argmax(y)] == pytest.approx(m1, abs=0.03)
    x, y = panel.q_curve.getData()
    assert x[np.argmax(y)] == pytest.approx(m2, abs=0.03)
    # the reverse direction swaps the arguments
    panel.swap_check.setChecked(True)
    assert panel.kl["gauss"] == pytest.approx(gaussian_kl(m2, v2, m1, v1))
    assert "KL(q ‖ p)" in panel.gauss_values.text()
    panel.reset_btn.click()
    assert panel.gauss_params() == (0.0, 1.0, 1.0, 2.0)


def test_settings_round_trip_and_bad_values(qtbot, ctx, tmp_path):
    s = QSettings(str(tmp_path / "p.ini"), QSettings.IniFormat)
    a = KLPanel(ctx)
    qtbot.addWidget(a)
    a.n_spin.setValue(12)
    a.p_slider.setValue(333)
    a.reverse_check.setChecked(True)
    a.mu1.set_value(1.5)
    a.var2.set_value(0.25)
    a.swap_check.setChecked(True)
    a.save_settings(s)
    b = KLPanel(ctx)
    qtbot.addWidget(b)
    b.restore_settings(s)
    assert (b.n, b.p, b.reverse_check.isChecked(), b.swap_check.isChecked()) == (12, 0.333, True, True)
    assert b.gauss_params() == a.gauss_params()
    assert b.kl == pytest.approx(a.kl)
    for k, v in {"n": "ten", "p": "nan", "mu1": 99, "var1": -1, "reverse": "??"}.items():
        s.setValue(k, v)
    c = KLPanel(ctx)
    qtbot.addWidget(c)
    c.restore_settings(s)
    assert c.n == 10 and c.p == pytest.approx(space_worms().binomial_p)
    assert c.mu1.value() == 4.0 and c.var1.value() == 0.05
    assert c.reverse_check.isChecked() is False


def test_export(panel, tmp_path):
    panel.resize(1200, 700)
    for which in ("worms", "gauss"):
        for fmt in ("png", "svg", "csv"):
            out = panel.export_plot(fmt, tmp_path / f"{which}.{fmt}", which=which)
            assert out.exists()
    assert (tmp_path / "worms.png").read_bytes()[:4] == b"\x89PNG"
    header = (tmp_path / "worms.csv").read_text().splitlines()[0]
    assert "true" in header and "binomial" in header
    assert len((tmp_path / "gauss.csv").read_text().splitlines()) > 100
    assert len(list(tmp_path.iterdir())) == 6
    for label, fn in panel.export_sources():
        assert fn()[0].dtype == np.uint8


@pytest.mark.parametrize("swap", [False, True])
def test_narrow_p_integrand_fits_the_view(panel, swap):
    """Issue #15: sigma1^2 = 0.05, mu2 = 4: the integrand (its area is the KL) peaks at ~10,
    six times the densities; the y range shows all of it, and the densities too."""
    panel.var1.set_value(0.05)
    panel.mu2.set_value(4.0)
    panel.swap_check.setChecked(swap)
    (_, _), (y0, y1) = panel.gauss_plot.getPlotItem().vb.viewRange()
    integrand = panel.integrand_curve.getData()[1]
    if not swap:
        assert integrand.max() > 10
    assert y0 <= integrand.min() and integrand.max() <= y1
    for c in (panel.p_curve, panel.q_curve):
        assert c.getData()[1].max() <= y1
    assert integrand.max() < 0.9 * y1                 # room left at the top for the legend
    panel.reset_btn.click()                           # and back: the range follows the curves
    (_, _), (y0, y1) = panel.gauss_plot.getPlotItem().vb.viewRange()
    assert y1 < 1.0 and panel.p_curve.getData()[1].max() <= y1
