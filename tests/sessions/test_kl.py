"""The KL session (diffusion_gui.sessions.kl), without Qt: the numbers the KL panel shows."""
from __future__ import annotations

import math

import numpy as np
import pytest

from diffusion_gui.core.kl import binomial_pmf, discrete_kl, gaussian_kl, space_worms
from diffusion_gui.sessions.kl import (
    GAUSS_DEFAULTS,
    X_GRID,
    KLSettings,
    discrete_kls,
    distributions,
    fitted_p,
    gauss_view,
    worms_csv,
)
from diffusion_gui.sessions.settings import from_raw


def test_the_example_at_the_fitted_p():
    w = space_worms()
    kl = discrete_kls(10, fitted_p(10))
    assert round(kl["uniform"], 3) == 0.137 and round(kl["binomial"], 3) == 0.427
    assert fitted_p(10) == pytest.approx(w.binomial_p)
    rev = discrete_kls(10, w.binomial_p, reverse=True)
    assert rev["uniform"] == pytest.approx(discrete_kl(w.uniform, w.true))


def test_a_wider_binomial_pads_the_support():
    k, true, uni, binom = distributions(12, 0.4)
    assert list(k) == list(range(13)) and true[-2:].tolist() == [0, 0] and uni[-1] == 0
    np.testing.assert_allclose(binom, binomial_pmf(12, 0.4))
    # KL(Q || P): the binomial puts mass on 11 and 12 teeth, which no worm has
    assert discrete_kls(12, 0.4, reverse=True)["binomial"] == math.inf
    assert discrete_kls(12, 0.4)["binomial"] < math.inf


def test_worms_csv():
    lines = worms_csv(10, 0.5).splitlines()
    assert lines[0] == "teeth,true,uniform,binomial" and len(lines) == 12


def test_gauss_view():
    g = gauss_view(0.0, 1.0, 1.0, 2.0)
    assert g.closed == pytest.approx(gaussian_kl(0.0, 1.0, 1.0, 2.0))
    assert g.numerical == pytest.approx(g.closed, abs=1e-4)
    assert np.trapezoid(g.integrand, X_GRID) == pytest.approx(g.closed, abs=1e-4)
    swapped = gauss_view(0.0, 1.0, 1.0, 2.0, swap=True)
    assert swapped.closed == pytest.approx(gaussian_kl(1.0, 2.0, 0.0, 1.0))
    np.testing.assert_array_equal(swapped.p, g.p)


def test_settings_defaults_and_bounds():
    d = KLSettings()
    assert (d.n, d.p) == (10, space_worms().binomial_p)
    assert (d.mu1, d.var1, d.mu2, d.var2) == GAUSS_DEFAULTS
    bad = from_raw(KLSettings, {"n": "ten", "p": "nan", "mu1": "99", "var1": "-1", "reverse": "??"})
    assert (bad.n, bad.p, bad.mu1, bad.var1, bad.reverse) == (10, d.p, 4.0, 0.05, False)


def test_gauss_y_range_shows_every_curve():
    """Issue #15: for a narrow p the integrand's peak (~10.4) is far above the densities' (1.78)."""
    from diffusion_gui.sessions.kl import LEGEND_ROOM, gauss_view, gauss_y_range
    for args in ((0.0, 0.05, 4.0, 2.0), (0.0, 1.0, 1.0, 2.0), (-1.0, 3.0, 2.0, 0.05)):
        for swap in (False, True):
            g = gauss_view(*args, swap)
            lo, hi = gauss_y_range(g)
            top = max(g.p.max(), g.q.max(), g.integrand.max())
            assert lo <= g.integrand.min() and lo <= 0
            assert hi == top * LEGEND_ROOM
    g = gauss_view(0.0, 0.05, 4.0, 2.0)
    assert g.integrand.max() > 5 * g.p.max() and gauss_y_range(g)[1] > g.integrand.max()
