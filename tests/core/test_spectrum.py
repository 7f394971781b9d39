"""The radially averaged power spectrum (core/spectrum.py)."""
import numpy as np
import pytest

from diffusion_gui.core.spectrum import ForwardSpectrum, power_spectrum, radial_bins, radial_power, spectral_slope


def test_white_noise_is_flat_at_its_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.5, size=(4, 3, 64, 64))
    f, p = radial_power(x)
    assert f[0] == pytest.approx(1 / 64) and f[-1] == pytest.approx(0.5)
    assert len(f) == len(p) == 32
    assert np.allclose(p, 0.25, rtol=0.25)          # flat at sigma^2 = 0.25
    assert abs(spectral_slope(f, p)) < 0.15


def test_parseval_total_power_is_the_variance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 32))
    ps = power_spectrum(x)
    assert ps.sum() / x.size == pytest.approx((x ** 2).mean())


def test_a_pure_cosine_lands_in_its_ring():
    n = 64
    yy, xx = np.mgrid[0:n, 0:n]
    x = np.cos(2 * np.pi * 8 * xx / n)
    f, p = radial_power(x)
    assert int(np.argmax(p)) == 7                    # ring k = 8 -> index 7
    assert f[7] == pytest.approx(8 / n)
    assert p[7] > 1e3 * np.delete(p, 7).max()


def test_smooth_images_fall_steeply():
    rng = np.random.default_rng(2)
    n = 64
    f = np.fft.fftfreq(n)
    r = np.sqrt(f[:, None] ** 2 + f[None] ** 2)
    r[0, 0] = 1
    x = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) / r).real   # power ~ f^-2
    fr, p = radial_power(x)
    assert spectral_slope(fr, p) == pytest.approx(-2.0, abs=0.3)


def test_shapes_and_bins():
    ring, counts, freqs = radial_bins(16, 24)
    assert ring.shape == (16 * 24,) and counts.shape == (9,) and freqs.shape == (8,)
    assert counts[1:].min() > 0
    for shape in [(16, 16), (3, 16, 16), (2, 3, 16, 16)]:
        assert radial_power(np.zeros(shape))[1].shape == (8,)
    with pytest.raises(ValueError):
        radial_power(np.zeros((1, 1, 1, 4, 4)))


def test_forward_spectrum_matches_the_direct_fft_at_every_t():
    rng = np.random.default_rng(3)
    x0 = rng.uniform(-1, 1, size=(3, 32, 32))
    eps = rng.normal(size=(3, 32, 32))
    fs = ForwardSpectrum(x0, eps)
    for abar in (1.0, 0.9, 0.3, 0.01, 0.0):
        got = fs.at(abar)
        xt = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * eps
        assert np.allclose(got["xt"], radial_power(xt)[1], rtol=1e-9, atol=1e-12)
        assert np.allclose(got["noise"], radial_power(np.sqrt(1 - abar) * eps)[1])
        assert np.allclose(got["x0"], radial_power(x0)[1])
    assert fs.crossover(1.0) is None
    lo, hi = fs.crossover(0.5), fs.crossover(0.01)
    assert hi is not None and (lo is None or hi <= lo)   # more noise drowns lower frequencies


def test_torch_input_works():
    torch = pytest.importorskip("torch")
    f, p = radial_power(torch.zeros(1, 1, 8, 8))
    assert p.shape == (4,) and np.all(p == 0)


def test_log_binning_keeps_the_weighted_mean():
    from diffusion_gui.core.spectrum import log_binned
    _, counts, freqs = radial_bins(128, 96)
    counts = counts[1:]
    p = np.random.default_rng(0).uniform(1, 2, len(freqs))
    fn, centres = log_binned(freqs, counts, 20)
    b = fn(p)
    assert len(b) == len(centres) <= 20 and np.all(np.diff(centres) > 0)
    assert np.allclose(fn(np.full_like(p, 3.0)), 3.0)                 # a weighted average
    # the total power (mean times frequencies) over all rings is kept by the bins
    total = (p * counts).sum()
    members = _bin_members(freqs, centres, fn)
    assert sorted(j for m in members for j in m) == list(range(len(freqs)))   # each ring once
    assert all(np.all(np.diff(m) == 1) for m in members)                       # adjacent rings
    per_bin = [counts[m].sum() for m in members]
    assert np.isclose((b * np.array(per_bin)).sum(), total)
    fn2, c2 = log_binned(freqs[:10], counts[:10], 20)                  # few rings: unchanged
    assert np.array_equal(fn2(p[:10]), p[:10]) and np.array_equal(c2, freqs[:10])


def _bin_members(freqs, centres, fn):
    """Which rings went into each bin: the bin whose average moves when a ring's value does."""
    base = fn(np.zeros(len(freqs)))
    members = [[] for _ in centres]
    for j in range(len(freqs)):
        e = np.zeros(len(freqs))
        e[j] = 1.0
        members[int(np.argmax(fn(e) - base))].append(j)
    return members
