"""The forward-process maths (schedule.py, diffusion.py) against independent derivations.

Timestep convention: ``i`` is the array index, the paper's ``t = i + 1``.
"""
import math

import numpy as np
import pytest
import torch

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
from diffusion_gui.core.schedule import named_betas

X0 = torch.tensor([-1.0, -0.3, 0.5, 1.0], dtype=torch.float64)  # four "pixels"


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_chained_q_step_matches_q_sample_in_distribution(name):
    """t applications of q(x_t | x_{t-1}) have the moments of q(x_t | x_0) in closed form."""
    T = 200  # the default range scales by 1000 / T, so x_T is still near pure noise
    d = GaussianDiffusion(NoiseSchedule.from_name(name, T))
    s = d.schedule
    S = 20000
    g = torch.Generator().manual_seed(0)
    x0 = X0.expand(1, S, 4).clone()  # one batch element of S x 4 "pixels": one gather per step
    check_t = {1, 2, 10, 50, 120, T}
    x, checked = x0, 0
    for i in range(T):
        x = d.q_step(x, torch.tensor([i]), torch.randn(x.shape, generator=g, dtype=torch.float64))
        t = i + 1
        if t not in check_t:
            continue
        direct = d.q_sample(x0, torch.tensor([i]), torch.randn(x.shape, generator=g, dtype=torch.float64))
        mean, var = math.sqrt(float(s.alpha_bars[i])) * X0, 1.0 - float(s.alpha_bars[i])
        se_mean, se_var = math.sqrt(var / S), var * math.sqrt(2.0 / S)
        for sample in (x[0], direct[0]):
            np.testing.assert_allclose(sample.mean(0).numpy(), mean.numpy(), atol=5 * se_mean)
            np.testing.assert_allclose(sample.var(0).numpy(), var, atol=5 * se_var)
        np.testing.assert_allclose(x[0].mean(0).numpy(), direct[0].mean(0).numpy(), atol=7 * se_mean)
        checked += 1
    assert checked == len(check_t)


@pytest.mark.parametrize("name", ["linear", "cosine", "quadratic"])
def test_q_posterior_is_gaussian_conditioning(name):
    """q(x_{t-1} | x_t, x_0) from the joint Gaussian of (x_{t-1}, x_t) given x_0."""
    T = 100
    d = GaussianDiffusion(NoiseSchedule.from_name(name, T))
    betas = d.schedule.betas.numpy()
    abar = np.cumprod(1 - betas)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(8, 2, 3, 3, generator=g, dtype=torch.float64)
    x_t = torch.randn(8, 2, 3, 3, generator=g, dtype=torch.float64)
    i = torch.tensor([0, 1, 2, 10, 50, 98, 99, 37])
    mean, var, logvar = d.q_posterior(x0, x_t, i)
    for b, k in enumerate(i.tolist()):
        ab_prev = abar[k - 1] if k > 0 else 1.0
        # x_{t-1} = sqrt(ab_prev) x0 + sqrt(1 - ab_prev) e1;  x_t = sqrt(1 - beta) x_{t-1} + sqrt(beta) e2
        var_prev = 1 - ab_prev
        cov = math.sqrt(1 - betas[k]) * var_prev
        var_t = (1 - betas[k]) * var_prev + betas[k]
        assert var_t == pytest.approx(1 - abar[k], rel=1e-10)
        mu_prev, mu_t = math.sqrt(ab_prev) * x0[b].numpy(), math.sqrt(abar[k]) * x0[b].numpy()
        ref_mean = mu_prev + cov / var_t * (x_t[b].numpy() - mu_t)
        ref_var = var_prev - cov ** 2 / var_t
        np.testing.assert_allclose(mean[b].numpy(), ref_mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(var[b].numpy(), ref_var, rtol=1e-9, atol=1e-15)
        if k > 0:
            np.testing.assert_allclose(logvar[b].numpy(), math.log(ref_var), rtol=1e-9)
        else:  # beta~_1 = 0; the log is clipped to beta~_2 (improved-diffusion)
            np.testing.assert_allclose(logvar[b].numpy(), math.log(float(d.schedule.posterior_variance[1])))
    assert float(var[0].max()) == 0.0 and torch.allclose(mean[0], x0[0])  # t = 1: x_0 itself


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_predict_x0_inverts_q_sample(name):
    d = GaussianDiffusion(NoiseSchedule.from_name(name, 1000))
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(6, 3, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    i = torch.tensor([0, 1, 100, 500, 900, 999])
    x_t = d.q_sample(x0, i, eps)
    torch.testing.assert_close(d.predict_x0(x_t, i, eps), x0, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(d.predict_eps(x_t, i, x0), eps, atol=1e-9, rtol=1e-9)


def test_respace_keeps_alpha_bars_at_kept_indices():
    d = GaussianDiffusion(NoiseSchedule.from_name("cosine", 1000))
    keep = [0, 9, 99, 250, 500, 998, 999]
    r = d.respace(keep)
    assert r.num_timesteps == len(keep)
    assert r.index_map.tolist() == keep
    torch.testing.assert_close(r.schedule.alpha_bars, d.schedule.alpha_bars[keep], rtol=1e-10, atol=0)
    # the same x_t is produced from the same x_0 and noise at new index j / old index keep[j]
    x0 = torch.linspace(-1, 1, 7, dtype=torch.float64).reshape(7, 1)
    eps = torch.ones_like(x0)
    torch.testing.assert_close(r.q_sample(x0, torch.arange(7), eps), d.q_sample(x0, torch.tensor(keep), eps))


def test_schedule_sanity():
    cos = NoiseSchedule.from_name("cosine", 1000)
    assert float(cos.betas.max()) == pytest.approx(0.999) and float(cos.betas.max()) <= 0.999
    for name in ("linear", "cosine", "quadratic", "sigmoid", "scaled_linear"):
        s = NoiseSchedule.from_name(name, 1000)
        assert s.betas.dtype == torch.float64 and s.betas.shape == (1000,)
        assert bool((s.alpha_bars[1:] < s.alpha_bars[:-1]).all()), name
        assert 0 < float(s.alpha_bars[-1]) < float(s.alpha_bars[0]) < 1
    lin = NoiseSchedule.from_name("linear", 1000)
    assert float(lin.betas[0]) == pytest.approx(1e-4) and float(lin.betas[-1]) == pytest.approx(0.02)
    np.testing.assert_allclose(lin.betas.numpy(), np.linspace(1e-4, 0.02, 1000))


@pytest.mark.parametrize("T", [50, 250, 2000])
def test_default_ranges_scale_with_T(T):
    b = named_betas("linear", T)
    scale = 1000 / T
    assert float(b[0]) == pytest.approx(1e-4 * scale) and float(b[-1]) == pytest.approx(min(0.02 * scale, 0.999))
    # an explicit range is kept as given
    e = named_betas("linear", T, beta_start=1e-4, beta_end=0.02)
    assert float(e[0]) == pytest.approx(1e-4) and float(e[-1]) == pytest.approx(0.02)
    # scaling keeps the end of the chain near pure noise whatever T
    assert float(NoiseSchedule.from_name("linear", T).alpha_bars[-1]) < 1e-3


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_an_int_index_is_the_same_maths_as_a_batch_of_it(prediction, variance):
    """Samplers pass one Python int for the whole batch (Python-float coefficients, no gathers);
    every formula must give what a LongTensor [B] of that index gives."""
    d = GaussianDiffusion(NoiseSchedule.from_name("cosine", 200), variance=variance,
                          prediction_type=prediction)
    g = torch.Generator().manual_seed(3)
    x_t = torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64)
    out = torch.randn(x_t.shape, generator=g, dtype=torch.float64)
    noise = torch.randn(x_t.shape, generator=g, dtype=torch.float64)
    for i in (0, 1, 57, 199):
        it = torch.full((4,), i, dtype=torch.long)
        for clip in (False, True):
            for a, b in zip(d.x0_and_eps(out, x_t, i, clip), d.x0_and_eps(out, x_t, it, clip)):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
            mean, var, logvar, x0 = d.p_mean_variance(out, x_t, i, clip)
            ref = d.p_mean_variance(out, x_t, it, clip)
            torch.testing.assert_close(mean, ref[0], rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(x0, ref[3], rtol=1e-12, atol=1e-12)
            assert isinstance(var, float) and isinstance(logvar, float)
            assert var == pytest.approx(float(ref[1][0, 0, 0, 0]), rel=1e-12)
            assert logvar == pytest.approx(float(ref[2][0, 0, 0, 0]), rel=1e-12)
            torch.testing.assert_close(d.ddpm_step(out, x_t, i, noise, clip),
                                       d.ddpm_step(out, x_t, it, noise, clip), rtol=1e-12, atol=1e-12)
        for i_prev in (-1, 0, i // 2):
            if i_prev >= i:
                continue
            for eta in (0.0, 0.5, 1.0):
                torch.testing.assert_close(
                    d.ddim_step(out, x_t, i, i_prev, eta, noise),
                    d.ddim_step(out, x_t, it, torch.full((4,), i_prev), eta, noise),
                    rtol=1e-12, atol=1e-12)
                s_int = d.ddim_sigma(i, i_prev, eta, x_t)
                s_ref = d.ddim_sigma(it, torch.full((4,), i_prev), eta, x_t)
                assert s_int == pytest.approx(float(s_ref[0]), rel=1e-12, abs=1e-15)
        torch.testing.assert_close(d.q_sample(x_t, i, noise), d.q_sample(x_t, it, noise),
                                   rtol=1e-12, atol=1e-12)


def test_p_sample_step_adds_no_noise_at_i_0_and_needs_it_elsewhere():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 10))
    mean = torch.ones(2, 1, 2, 2)
    assert d.p_sample_step(mean, -3.0, 0, None) is mean
    assert torch.equal(d.p_sample_step(mean, -3.0, torch.zeros(2, dtype=torch.long), None), mean)
    with pytest.raises(ValueError):
        d.p_sample_step(mean, torch.full((2, 1, 1, 1), -3.0), torch.ones(2, dtype=torch.long), None)
    z = torch.full_like(mean, 2.0)
    torch.testing.assert_close(d.p_sample_step(mean, -3.0, 4, z), mean + math.exp(-1.5) * z)
