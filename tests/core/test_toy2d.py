"""The 2-D lab's core: data sets, the exact mixture maths (against Monte Carlo), the empirical
denoiser, energy distance, and the core samplers on [B, 2] points."""
import math

import numpy as np
import pytest
import torch

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule, run, sampler
from diffusion_gui.core.toy2d import DATASETS, GaussianMixture, default_gmm, gaussians8, toy_data
from diffusion_gui.core.toy2d_metrics import (
    MixtureDenoiser,
    data_std,
    energy_distance,
    energy_floor,
    eps_mse_per_t,
    nearest_distances,
)
from diffusion_gui.errors import InvalidParameter


@pytest.fixture(scope="module")
def diffusion():
    return GaussianDiffusion(NoiseSchedule.from_name("linear", 1000))


@pytest.mark.parametrize("name", DATASETS)
def test_data_sets_are_seeded_float32_and_about_unit_variance(name):
    x = toy_data(name, 5000, seed=3)
    assert x.shape == (5000, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x, toy_data(name, 5000, seed=3))
    assert not np.array_equal(x, toy_data(name, 5000, seed=4))
    assert 0.8 < ((x - x.mean(0)) ** 2).mean() < 1.2
    assert np.abs(x.mean(0)).max() < 0.15


def test_data_rejects_bad_names_and_sizes():
    with pytest.raises(InvalidParameter, match="data"):
        toy_data("dino", 10)
    with pytest.raises(InvalidParameter, match="n must be in 1..20000"):
        toy_data("moons", 20001)


def test_gaussians8_has_unit_variance_exactly():
    np.testing.assert_allclose(gaussians8().covariance(), np.eye(2), atol=1e-12)


def test_marginal_matches_a_histogram_of_q_sample_draws(diffusion):
    g = default_gmm()
    i = 60
    abar = float(diffusion.schedule.alpha_bars[i])
    x0 = torch.from_numpy(g.sample(400_000, seed=0)).double()
    x_t = diffusion.q_sample(x0, torch.full((len(x0),), i), torch.randn(x0.shape, dtype=torch.float64,
                                                                     generator=torch.Generator().manual_seed(1)))
    edges = np.linspace(-3, 3, 31)
    counts, _, _ = np.histogram2d(x_t[:, 0].numpy(), x_t[:, 1].numpy(), bins=[edges, edges])
    h = edges[1] - edges[0]
    sub = (np.arange(4) + 0.5) / 4 * h        # 4 x 4 midpoints inside each bin
    cx = (edges[:-1, None] + sub[None, :]).ravel()
    gx, gy = np.meshgrid(cx, cx, indexing="ij")
    p = g.log_prob(np.stack([gx.ravel(), gy.ravel()], 1), abar).exp().numpy().reshape(30, 4, 30, 4)
    expected = p.mean(axis=(1, 3)) * h * h * len(x0)
    big = expected > 100
    assert big.sum() > 100
    z = (counts[big] - expected[big]) / np.sqrt(expected[big])
    assert np.abs(z).max() < 5, np.abs(z).max()
    assert abs(expected.sum() / len(x0) - (counts.sum() / len(x0))) < 0.01


def test_posterior_mean_matches_monte_carlo_over_a_neighbourhood(diffusion):
    g = default_gmm()
    abar = 0.5
    rng = np.random.default_rng(0)
    x0 = g.sample(2_000_000, seed=rng).astype(np.float64)
    x_t = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * rng.standard_normal(x0.shape)
    for point in ([0.0, 0.0], [-0.6, -0.4], [0.3, 0.9]):
        near = np.linalg.norm(x_t - point, axis=1) < 0.06
        assert near.sum() > 1000
        mc = x0[near].mean(0)
        se = x0[near].std(0) / math.sqrt(near.sum())
        exact = g.posterior_mean(np.array([point]), abar).numpy()[0]
        assert (np.abs(mc - exact) < 4 * se + 0.01).all(), (mc, exact, se)


@pytest.mark.parametrize("mix", [default_gmm(), gaussians8(), GaussianMixture.from_points(toy_data("moons", 300, 0))],
                         ids=["diagonal", "isotropic", "points"])
def test_eps_star_is_consistent_with_the_posterior_mean_and_the_score(mix):
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1.5
    for abar in (0.999, 0.7, 0.05):
        eps = mix.eps(x, abar)
        x0 = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
        torch.testing.assert_close(x0, mix.posterior_mean(x, abar), rtol=1e-9, atol=1e-9)
        h = 1e-5
        fd = torch.stack([(mix.log_prob(x + h * e, abar) - mix.log_prob(x - h * e, abar)) / (2 * h)
                          for e in torch.eye(2, dtype=torch.float64)], 1)
        torch.testing.assert_close(mix.score(x, abar), fd, rtol=1e-4, atol=1e-4)


def test_the_shared_width_fast_path_agrees_with_the_general_one():
    mix = GaussianMixture(np.array([1, 2, 3.0]), np.array([[0, 0], [1, 0], [0, 1.0]]), np.full(3, 0.3))
    x = torch.randn(50, 2, dtype=torch.float64)
    abar = torch.rand(50, dtype=torch.float64) * 0.98 + 0.01
    assert mix._shared
    for what in ("log_prob", "score", "posterior_mean"):
        torch.testing.assert_close(mix._shared_stats(x, abar, what), mix._diag_stats(x, abar, what))


def test_empirical_denoiser_is_the_softmax_weighted_mean_of_the_points():
    pts = toy_data("spiral", 200, 1).astype(np.float64)
    x = np.array([[0.3, -0.2]])
    abar = 0.6
    logits = -((x - math.sqrt(abar) * pts) ** 2).sum(1) / (2 * (1 - abar))
    w = np.exp(logits - logits.max())
    want = (w / w.sum()) @ pts
    got = GaussianMixture.from_points(pts).posterior_mean(x, abar).numpy()[0]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_energy_distance():
    a, b = toy_data("moons", 500, 0), toy_data("moons", 500, 1)
    assert energy_distance(a, a) == pytest.approx(0, abs=1e-12)
    assert energy_distance(a, b) == pytest.approx(energy_distance(b, a))
    assert 0 < energy_distance(a, b) < energy_distance(a, b + 0.5)


def test_the_core_samplers_run_on_points_and_the_exact_denoiser_matches_fresh_data(diffusion):
    """DDPM with all 1000 steps and the exact eps* on gaussians8: as close to the data as a fresh
    draw (energy distance within 1.5x the expected distance of two fresh draws)."""
    g = gaussians8()
    model = MixtureDenoiser(g, diffusion)
    frames = list(sampler("ddpm", model, diffusion, (4000, 2), generator=torch.Generator().manual_seed(0)))
    assert len(frames) == 1001 and frames[0].x_t.shape == (4000, 2) and frames[0].t == 1000
    samples = frames[-1].x_t
    assert samples.dtype == torch.float32
    ref = g.sample(16000, seed=5)
    ed = energy_distance(samples, ref)
    floor = energy_floor(ref, 4000, 16000)
    assert ed < 1.5 * floor, (ed, floor)


def test_the_energy_floor_is_the_mean_distance_of_two_fresh_draws():
    g = gaussians8()
    rng = np.random.default_rng(0)
    eds = [energy_distance(g.sample(500, rng), g.sample(1000, rng)) for _ in range(60)]
    assert np.mean(eds) == pytest.approx(energy_floor(g.sample(4000, rng), 500, 1000), rel=0.15)


def test_the_empirical_denoiser_memorises_its_training_points(diffusion):
    pts = toy_data("moons", 500, 0)
    model = MixtureDenoiser(GaussianMixture.from_points(pts), diffusion)
    samples = run(sampler("ddpm", model, diffusion, (500, 2), generator=torch.Generator().manual_seed(0)))
    near = nearest_distances(samples, pts)
    assert np.median(near) < 0.02 * data_std(pts)


def test_the_loss_floor_is_the_exact_denoisers_loss(diffusion):
    g = gaussians8()
    exact = MixtureDenoiser(g, diffusion)
    x0 = torch.from_numpy(g.sample(4000, seed=0))
    mse, floor = eps_mse_per_t(exact, diffusion, x0, [1, 100, 500, 1000], reference=exact,
                               generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(mse, floor, rtol=1e-4)
    assert floor[0] > 0.9       # t = 1: noise of std 0.01 inside components of std 0.1: unguessable
    assert floor[-1] < 0.01     # t = T: x_t is the noise
    assert (np.diff(floor) < 0).all() and (floor <= 1.0 + 1e-3).all()
