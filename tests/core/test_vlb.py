"""The variational bound (core/vlb.py) against independent numpy/scipy recomputations.

Timestep convention: ``i`` is the array index, the paper's ``t = i + 1``.
"""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule, vlb
from diffusion_gui.core.vlb import (
    VLBResult,
    compute_vlb,
    discretized_gaussian_log_likelihood,
    evaluated_indices,
    normal_kl,
    prior_bpd,
    stride_weights,
    vb_terms_bpd,
    vlb_terms,
    vlb_terms_unbatched,
)

LN2 = math.log(2)


def _pixels(g, shape):
    """Random 8-bit images rescaled to [-1, 1], float64."""
    return torch.randint(0, 256, shape, generator=g).double() / 127.5 - 1


def _toy_model(x, i):
    """A deterministic, batch-elementwise stand-in for a network (eps prediction)."""
    return 0.7 * torch.tanh(x) + 0.001 * i.to(x.dtype).reshape(-1, 1, 1, 1)


# ---------------------------------------------------------------- normal_kl
@pytest.mark.parametrize("m1, v1, m2, v2", [(0.0, 1.0, 0.0, 1.0), (0.3, 0.5, -1.0, 2.0),
                                            (2.0, 0.01, 1.9, 0.02), (-1.0, 3.0, 0.5, 0.7)])
def test_normal_kl_matches_numerical_integration(m1, v1, m2, v2):
    p, q = stats.norm(m1, math.sqrt(v1)), stats.norm(m2, math.sqrt(v2))
    ref, _ = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)),
                            m1 - 15 * math.sqrt(v1), m1 + 15 * math.sqrt(v1), epsabs=1e-12)
    got = normal_kl(torch.tensor(m1, dtype=torch.float64), torch.tensor(math.log(v1), dtype=torch.float64),
                    torch.tensor(m2, dtype=torch.float64), torch.tensor(math.log(v2), dtype=torch.float64))
    assert float(got) == pytest.approx(ref, abs=1e-9)
    assert float(got) >= 0


def test_normal_kl_is_elementwise_and_zero_on_itself():
    g = torch.Generator().manual_seed(0)
    m, lv = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    assert normal_kl(m, lv, m, lv).shape == (4, 3)
    torch.testing.assert_close(normal_kl(m, lv, m, lv), torch.zeros(4, 3))


# ---------------------------------------------------------------- discretized likelihood
def _scipy_discretized_ll(x, mean, sd):
    x, mean, sd = np.broadcast_arrays(np.asarray(x, float), np.asarray(mean, float), np.asarray(sd, float))
    upper = stats.norm.cdf(x + 1 / 255, loc=mean, scale=sd)
    lower = stats.norm.cdf(x - 1 / 255, loc=mean, scale=sd)
    prob = np.where(x <= -1 + 1e-9, upper, np.where(x >= 1 - 1e-9, 1 - lower, upper - lower))
    return np.log(prob)


def test_discretized_ll_matches_scipy_cdf_differences():
    g = torch.Generator().manual_seed(1)
    x = _pixels(g, (6, 50))
    x[0, :2] = -1.0
    x[0, 2:4] = 1.0
    mean = torch.rand(6, 50, generator=g, dtype=torch.float64) * 1.6 - 0.8
    sd = torch.tensor([0.005, 0.02, 0.1, 0.3, 0.6, 1.0], dtype=torch.float64).reshape(6, 1)
    # keep the probabilities where a 1e-12 floor cannot matter
    mean = torch.where((x - mean).abs() > 6 * sd, x - 0.5 * sd, mean)
    got = discretized_gaussian_log_likelihood(x, mean, torch.log(sd).expand_as(x))
    ref = _scipy_discretized_ll(x.numpy(), mean.numpy(), sd.numpy())
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("mean, sd", [(0.0, 0.5), (-0.9, 0.05), (0.97, 0.2), (0.3, 3.0)])
def test_discretized_ll_sums_to_one_over_256_levels(mean, sd):
    levels = torch.arange(256, dtype=torch.float64) / 127.5 - 1
    ll = discretized_gaussian_log_likelihood(levels, torch.full_like(levels, mean),
                                             torch.full_like(levels, math.log(sd)))
    assert float(ll.exp().sum()) == pytest.approx(1.0, abs=1e-9)


def test_discretized_ll_keeps_float32_and_stays_finite():
    x = torch.tensor([-1.0, 0.0, 1.0])
    ll = discretized_gaussian_log_likelihood(x, torch.tensor([1.0, -1.0, -1.0]), torch.full((3,), math.log(1e-3)))
    assert ll.dtype == torch.float32
    assert torch.isfinite(ll).all()
    assert float(ll.max()) == pytest.approx(math.log(1e-12), rel=1e-5)  # floored, as improved-diffusion


# ---------------------------------------------------------------- vb terms, recomputed by hand
def _ref_vb_bpd(betas, x0, x_t, eps_pred, i, variance):
    """improved-diffusion's _vb_terms_bpd, rewritten in numpy from the paper's formulas."""
    betas = betas.numpy()
    alphas = 1 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.append(1.0, abar[:-1])
    post_var = betas * (1 - abar_prev) / (1 - abar)
    post_logvar = np.log(np.append(post_var[1], post_var[1:]))
    if variance == "fixed_small":
        model_logvar = post_logvar
    else:
        model_logvar = np.log(np.append(post_var[1], betas[1:]))
    out = []
    for b in range(x0.shape[0]):
        k = int(i[b])
        x0b, xtb, eb = x0[b].numpy(), x_t[b].numpy(), eps_pred[b].numpy()
        c1 = betas[k] * np.sqrt(abar_prev[k]) / (1 - abar[k])
        c2 = (1 - abar_prev[k]) * np.sqrt(alphas[k]) / (1 - abar[k])
        true_mean = c1 * x0b + c2 * xtb
        x0_hat = (xtb - np.sqrt(1 - abar[k]) * eb) / np.sqrt(abar[k])
        model_mean = c1 * x0_hat + c2 * xtb
        if k == 0:
            sd = np.exp(0.5 * model_logvar[0])
            out.append(-_scipy_discretized_ll(x0b, model_mean, sd).mean() / LN2)
        else:
            lv1, lv2 = post_logvar[k], model_logvar[k]
            kl = 0.5 * (-1 + lv2 - lv1 + np.exp(lv1 - lv2) + (true_mean - model_mean) ** 2 * np.exp(-lv2))
            out.append(kl.mean() / LN2)
    return np.array(out)


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_vb_terms_bpd_matches_independent_formula(name, variance):
    d = GaussianDiffusion(NoiseSchedule.from_name(name, 1000), variance=variance)
    g = torch.Generator().manual_seed(2)
    i = torch.tensor([0, 0, 1, 7, 250, 999])
    x0 = _pixels(g, (6, 3, 4, 4))
    x_t = d.q_sample(x0, i, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    eps_pred = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    got = vb_terms_bpd(d, eps_pred, x0, x_t, i)
    ref = _ref_vb_bpd(d.schedule.betas, x0, x_t, eps_pred, i, variance)
    assert got.shape == (6,)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6, atol=1e-10)
    # the method on GaussianDiffusion is the same function
    torch.testing.assert_close(vlb.vb_terms_bpd(d, eps_pred, x0, x_t, i), got)


def test_vb_terms_bpd_is_zero_for_the_true_posterior_mean():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 1000))
    g = torch.Generator().manual_seed(3)
    x0 = _pixels(g, (4, 1, 5, 5))
    i = torch.tensor([1, 10, 500, 999])
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    vb = vb_terms_bpd(d, eps, x0, d.q_sample(x0, i, eps), i)
    np.testing.assert_allclose(vb.numpy(), 0.0, atol=1e-9)


def test_prior_bpd_matches_hand_formula():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 1000))
    x0 = _pixels(torch.Generator().manual_seed(4), (3, 2, 4, 4))
    abar_T = float(np.prod(1 - np.linspace(1e-4, 0.02, 1000)))
    x = x0.reshape(3, -1).numpy()
    # KL(N(sqrt(abar) x0, 1 - abar) || N(0, 1)) = 0.5 (-1 - log(1 - abar) + (1 - abar) + abar x0^2)
    ref = (0.5 * (-1 - math.log(1 - abar_T) + (1 - abar_T) + abar_T * x ** 2)).mean(1) / LN2
    got = prior_bpd(d, x0)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6)
    assert float(got.max()) < 1e-4
    torch.testing.assert_close(vlb.prior_bpd(d, x0), got)


# ---------------------------------------------------------------- the whole bound
def test_stride_weights_sum_to_T_and_match_linear_interpolation():
    T = 20
    idx = evaluated_indices(T, 4)
    assert idx.tolist() == [0, 1, 2, 3, 4, 8, 12, 16, 19]  # dense below the stride
    w = stride_weights(idx, T)
    assert w.sum() == pytest.approx(T)
    assert w[0] == 1.0
    vals = np.random.default_rng(0).random(len(idx))
    ref = vals[0] + np.interp(np.arange(1, T), idx[1:], vals[1:]).sum()
    assert float((w * vals).sum()) == pytest.approx(ref)
    assert np.array_equal(stride_weights(evaluated_indices(T, 1), T), np.ones(T))


def test_batched_equals_one_call_per_timestep():
    d = GaussianDiffusion(NoiseSchedule.from_name("cosine", 20))
    x0 = _pixels(torch.Generator().manual_seed(5), (3, 1, 6, 6)).float()
    calls = []

    def model(x, i):
        calls.append(x.shape[0])
        return _toy_model(x, i)

    batched = compute_vlb(model, d, x0, t_batch=10, generator=torch.Generator().manual_seed(9))
    assert max(calls) == 9 and len(calls) == 7          # 3 timesteps x 3 images per call, 20 = 6*3 + 2
    calls.clear()
    single = vlb_terms_unbatched(model, d, x0, generator=torch.Generator().manual_seed(9))
    assert len(calls) == 20 and set(calls) == {3}
    assert isinstance(single, VLBResult)
    assert single.t.tolist() == list(range(1, 21))
    for name in ("vb_bpd", "eps_mse", "x0_mse"):
        np.testing.assert_allclose(getattr(batched, name), getattr(single, name), rtol=1e-6, atol=1e-12)
    assert batched.total_bpd == pytest.approx(single.total_bpd, rel=1e-9)
    assert single.total_bpd == pytest.approx(single.prior_bpd + single.vb_bpd.sum(), rel=1e-12)


def test_progress_yields_and_cancel():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 30))
    x0 = _pixels(torch.Generator().manual_seed(6), (2, 1, 4, 4)).float()
    steps = list(vlb_terms(_toy_model, d, x0, stride=3, t_batch=8, generator=torch.Generator().manual_seed(1)))
    # indices 0, 1, 2, 3, 6, ..., 27, 29: 13 steps, 4 per call -> 4 yields
    assert [s.done for s in steps] == [4, 8, 12, 13] and {s.total for s in steps} == {13}
    assert [s.finished for s in steps] == [False, False, False, True]
    assert steps[0].t.tolist() == [1, 2, 3, 4] and len(steps[1].vb_bpd) == 8
    res = steps[-1].result
    assert res.t[0] == 1 and res.t[-1] == 30 and res.stride == 3 and res.num_images == 2
    assert res.total_bpd == pytest.approx(res.prior_bpd + float((res.weights * res.vb_bpd).sum()))

    calls = []
    gen = vlb_terms(lambda x, i: calls.append(1) or _toy_model(x, i), d, x0, t_batch=2)
    first = next(gen)
    gen.close()                                          # the GUI cancels by stopping iteration
    assert first.done == 1 and len(calls) == 1


def test_oracle_model_scores_zero_eps_mse_and_zero_kl():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 50))
    x0 = _pixels(torch.Generator().manual_seed(7), (1, 2, 4, 4))
    s = d.schedule

    def oracle(x_t, i):  # knows x_0, so it returns the noise that was used
        return d.predict_eps(x_t, i, x0.expand_as(x_t))

    res = compute_vlb(oracle, d, x0, t_batch=16, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(res.eps_mse, 0.0, atol=1e-18)
    np.testing.assert_allclose(res.x0_mse, 0.0, atol=1e-18)
    np.testing.assert_allclose(res.vb_bpd[1:], 0.0, atol=1e-9)   # model mean = posterior mean
    assert res.decoder_bpd > 0
    assert res.total_bpd == pytest.approx(res.prior_bpd + res.decoder_bpd)
    assert s.timesteps == len(res.t)


def test_total_bound_is_finite_and_positive_and_reproducible():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 1000))
    x0 = _pixels(torch.Generator().manual_seed(8), (2, 1, 8, 8)).float()
    a = compute_vlb(_toy_model, d, x0, t_batch=500, generator=torch.Generator().manual_seed(3))
    b = compute_vlb(_toy_model, d, x0, t_batch=500, generator=torch.Generator().manual_seed(3))
    assert math.isfinite(a.total_bpd) and a.total_bpd > 0
    assert np.isfinite(a.vb_bpd).all() and (a.vb_bpd >= 0).all()
    assert a.t.tolist() == list(range(1, 1001))
    np.testing.assert_array_equal(a.vb_bpd, b.vb_bpd)
    js = a.to_json_dict()
    assert js["total_bpd"] == a.total_bpd and len(js["vb_bpd"]) == 1000
