"""The forward session without Qt: x_t in closed form (one function for CLI, panel and export),
the step-by-step chain and its cache, the histogram, the settings."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
from diffusion_gui.core.images import to_float_array, to_uint8
from diffusion_gui.export.timeline import forward_coefficients, forward_frames, forward_xt
from diffusion_gui.sessions import forward as fs
from diffusion_gui.sessions.export_sources import ForwardTimelineSource
from diffusion_gui.sessions.settings import from_raw, to_raw


def _image(h=24, w=20, c=3, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _reference(image, t, seed, schedule):
    """``to_uint8(q_sample(x0, t - 1, eps))`` from the core API alone."""
    x0 = torch.from_numpy(to_float_array(image))[None]
    eps = torch.randn(tuple(x0.shape[1:]), generator=torch.Generator().manual_seed(seed))[None]
    if t == 0:
        return to_uint8(x0[0])
    return to_uint8(GaussianDiffusion(schedule).q_sample(x0, t - 1, eps)[0])


@pytest.mark.parametrize("name", fs.SCHEDULES)
def test_the_three_callers_of_forward_xt_agree_with_q_sample(name):
    """ForwardMath.frame (the panel), ForwardTimelineSource (the export) and forward_frames
    (the CLI) give the bytes of q_sample, for every t."""
    T = 100
    s = NoiseSchedule.from_name(name, T)
    img = _image(h=64, w=48)
    m = fs.ForwardMath(img, 3, s)
    src = ForwardTimelineSource("fwd", m.x0, m.eps, s.alpha_bars.numpy())
    ts = list(range(T + 1))
    cli = {t: f for t, f, _ in forward_frames(torch.from_numpy(m.x0_chw), GaussianDiffusion(s),
                                              torch.from_numpy(fs.draw_noise(m.shape_chw, 3)), ts)}
    for t in ts:
        ref = _reference(img, t, 3, s)
        np.testing.assert_array_equal(m.frame(t), ref)
        np.testing.assert_array_equal(src._frame(t), ref)
        np.testing.assert_array_equal(cli[t], ref)


def test_forward_coefficients_are_the_schedules():
    s = NoiseSchedule.from_name("cosine", 50)
    a, b = forward_coefficients(s.alpha_bars)
    assert a.shape == b.shape == (51,) and (a[0], b[0]) == (1.0, 0.0)
    np.testing.assert_array_equal(a[1:], s.sqrt_alpha_bars.numpy())
    np.testing.assert_array_equal(b[1:], s.sqrt_one_minus_alpha_bars.numpy())


def test_forward_xt_buffers_and_t0():
    x0 = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 4, 3)
    eps = np.ones_like(x0)
    np.testing.assert_array_equal(forward_xt(x0, eps, 1.0, 0.0), to_uint8(x0.transpose(2, 0, 1)))
    out, scratch = np.empty_like(x0), np.empty_like(x0)
    a = forward_xt(x0, eps, 0.6, 0.8, out=out, scratch=scratch)
    np.testing.assert_array_equal(a, forward_xt(x0, eps, 0.6, 0.8))
    assert a.dtype == np.uint8 and a.shape == x0.shape


def test_stats_and_theory():
    s = NoiseSchedule.from_name("linear", 1000)
    m = fs.ForwardMath(_image(), 0, s)
    for t in (0, 10, 500, 1000):
        x = m.a64[t] * m.x0.astype(np.float64) + m.b64[t] * m.eps.astype(np.float64)
        mean, std = m.stats(t)
        assert abs(mean - x.mean()) < 1e-9 and abs(std - x.std()) < 1e-9
    tm, ts = m.theory(1000)
    assert abs(tm) < 0.01 and abs(ts - 1) < 0.01
    r = m.readout(500)
    assert r["abar"] == pytest.approx(float(s.alpha_bars[499])) and r["a"] == float(m.a64[500])
    assert np.isnan(m.readout(0)["beta"]) and m.readout(0)["abar"] == 1.0


def test_histogram_density():
    e = fs.hist_edges()
    assert len(e) == fs.HIST_BINS + 1 and e[0] == -fs.HIST_RANGE
    h = fs.hist_density(np.random.default_rng(0).standard_normal(200_000))
    width = e[1] - e[0]
    assert abs(h.sum() * width - 1) < 0.01                  # nearly all mass inside +-4
    assert fs.hist_density(np.array([100.0])).sum() == 0    # out of range still normalises


def test_chain_cache_stride_for_big_images():
    c = fs.ChainCache("k", (3, 512, 512), 1000)
    assert c.stride > 1 and c.nbytes() <= fs.CHAIN_BUDGET_BYTES
    assert c.ts[0] == 0 and c.ts[-1] == 1000
    c.done = 1000
    assert c.frame_for(7)[0] == 7 // c.stride * c.stride
    assert c.frame_for(1000)[0] == 1000
    small = fs.ChainCache("k", (3, 256, 256), 1000)
    assert small.stride == 1                                   # every x_t kept up to 256 px RGB


def test_chain_generator_matches_q_step():
    T = 30
    s = NoiseSchedule.from_name("linear", T)
    img = _image(h=8, w=8)
    m = fs.ForwardMath(img, 5, s)
    cache = fs.ChainCache("k", m.shape_chw, T, budget=8 * 8 * 3 * 10)   # a stride > 1
    assert cache.stride > 1 and cache.frame_for(0) is None
    assert list(fs.chain_generator(cache, m.x0_chw, s, 5, m.sample_idx)) == list(range(T + 1))
    assert cache.is_complete()
    d, g = GaussianDiffusion(s), torch.Generator().manual_seed(fs.chain_seed(5))
    x = torch.from_numpy(m.x0_chw)[None]
    for i in range(T):
        x = d.q_step(x, i, torch.randn(x.shape, generator=g))
        t = i + 1
        shown, frame = cache.frame_for(t)
        if shown == t:
            np.testing.assert_array_equal(frame, to_uint8(x[0]))
        assert cache.mean[t] == pytest.approx(float(x.double().mean()))


def test_working_image_never_enlarges():
    img = _image(h=30, w=60)
    assert fs.working_image(img, 64) is not None and fs.working_image(img, 64).shape == (30, 60, 3)
    assert fs.working_image(img, 32).shape == (16, 32, 3)
    grey = _image(h=100, w=50, c=1)
    assert fs.working_image(grey, 64).shape == (64, 32, 1)
    assert fs.working_image(grey[:, :, 0], 512).shape == (100, 50, 1)


def test_settings_defaults_bounds_and_garbage():
    d = fs.ForwardSettings()
    assert (d.schedule, d.T, d.seed, d.size, d.t, d.overlays) == ("linear", 1000, 0, 256, 0, ())
    bad = from_raw(fs.ForwardSettings, {"schedule": "nope", "T": "many", "seed": -5, "size": 999,
                                        "t": "x", "overlays": 3})
    assert (bad.schedule, bad.T, bad.seed, bad.size, bad.t, bad.overlays) == \
        ("linear", 1000, 0, 256, 0, ())
    s = from_raw(fs.ForwardSettings, {"schedule": "cosine", "T": "5000", "size": "128",
                                      "overlays": "sigmoid"})
    assert (s.schedule, s.T, s.size, s.overlays) == ("cosine", fs.MAX_T, 128, ("sigmoid",))
    two = from_raw(fs.ForwardSettings, {"overlays": ["cosine", "linear"]})
    assert two.overlays == ("cosine", "linear")
    assert to_raw(two)["overlays"] == ("cosine", "linear")
    assert set(to_raw(d)) == {"schedule", "T", "seed", "size", "t", "overlays"}   # the keys kept


def test_chain_cache_says_how_much_it_keeps():
    """Issue #15: a 256 px RGB chain keeps 188 MB; the panel shows the note."""
    c = fs.ChainCache("k", (3, 256, 256), 1000)
    short, detail = c.memory_note()
    assert short == "chain cache: 188 MB" and c.nbytes() == 1001 * 256 * 256 * 3
    assert "1001 frames" in detail and "every x_t" in detail
    big = fs.ChainCache("k", (3, 512, 512), 1000)
    short, detail = big.memory_note()
    assert short == f"chain cache: {big.nbytes() / 2 ** 20:.0f} MB"
    assert f"every {big.stride}th x_t" in detail and big.nbytes() <= fs.CHAIN_BUDGET_BYTES
