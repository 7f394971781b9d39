"""Discrete and Gaussian KL (core/kl.py) and the space-worms example."""
import json
import math

import numpy as np
import pytest
from scipy import stats

from diffusion_gui.core.kl import (
    SPACE_WORMS_COUNTS,
    binomial_pmf,
    discrete_kl,
    format_report,
    gaussian_kl,
    gaussian_kl_numerical,
    space_worms,
    to_json_dict,
)


def test_space_worms_numbers():
    r = space_worms()
    assert sum(SPACE_WORMS_COUNTS) == 100 and len(SPACE_WORMS_COUNTS) == 11
    np.testing.assert_allclose(r.true, np.array(SPACE_WORMS_COUNTS) / 100)
    np.testing.assert_allclose(r.uniform, 1 / 11)
    assert r.binomial_p == pytest.approx(0.544)
    np.testing.assert_allclose(r.binomial, stats.binom.pmf(np.arange(11), 10, 0.544), rtol=1e-12)
    assert r.kl_uniform == pytest.approx(0.1367, abs=5e-4)
    assert r.kl_binomial == pytest.approx(0.4273, abs=5e-4)
    assert r.kl_uniform_bits == pytest.approx(r.kl_uniform / math.log(2))
    assert r.kl_binomial_bits == pytest.approx(0.6165, abs=5e-4)
    assert r.kl_uniform < r.kl_binomial and r.best == "uniform"
    # the reverse direction is a different number (KL is not symmetric)
    assert r.kl_uniform_reverse == pytest.approx(stats.entropy(r.uniform, r.true))
    assert r.kl_binomial_reverse == pytest.approx(stats.entropy(r.binomial, r.true))
    assert abs(r.kl_binomial_reverse - r.kl_binomial) > 0.1


def test_discrete_kl_matches_scipy_and_is_nonnegative():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(7))
        kl = discrete_kl(p, q)
        assert kl >= 0
        assert kl == pytest.approx(stats.entropy(p, q), rel=1e-12)
        assert discrete_kl(p, p) == pytest.approx(0.0, abs=1e-15)


def test_discrete_kl_zero_conventions():
    assert discrete_kl([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(math.log(2))  # 0 log 0 = 0
    assert discrete_kl([0.5, 0.5], [1.0, 0.0]) == math.inf                              # q = 0 < p
    with pytest.raises(ValueError):
        discrete_kl([1.0], [0.5, 0.5])


def test_binomial_pmf():
    for n, p in [(10, 0.544), (5, 0.0), (5, 1.0), (0, 0.3), (30, 0.1)]:
        pmf = binomial_pmf(n, p)
        assert pmf.shape == (n + 1,)
        assert pmf.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(pmf, stats.binom.pmf(np.arange(n + 1), n, p), atol=1e-15)


@pytest.mark.parametrize("m1, v1, m2, v2", [(0, 1, 0, 1), (0, 1, 1, 2), (3, 0.01, 0, 4),
                                            (-2, 5, 1, 0.5), (0.5, 1e-4, 0.5, 1e-2)])
def test_gaussian_kl_closed_form_matches_numerical(m1, v1, m2, v2):
    closed = gaussian_kl(m1, v1, m2, v2)
    assert closed >= 0
    assert gaussian_kl_numerical(m1, v1, m2, v2) == pytest.approx(closed, rel=1e-7, abs=1e-10)
    if (m1, v1) == (m2, v2):
        assert closed == 0.0


def test_report_and_json():
    r = space_worms()
    text = format_report(r)
    for needle in ("uniform", "binomial", "nats", "bits", "0.1367", "0.4273", "0.1972", "0.6165"):
        assert needle in text
    assert len([ln for ln in text.splitlines() if ln.strip()[:2].strip().isdigit()]) >= 11
    d = json.loads(json.dumps(to_json_dict(r)))
    assert d["kl_nats"]["true||uniform"] == pytest.approx(r.kl_uniform)
    assert d["kl_bits"]["true||binomial"] == pytest.approx(r.kl_binomial_bits)
    assert d["counts"] == list(SPACE_WORMS_COUNTS) and d["best"] == "uniform"
