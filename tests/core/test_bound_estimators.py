"""The maths of the derivation steps against independent computations: Monte Carlo, closed
forms, scipy-free quadrature and the existing core/vlb.py for the image model."""
import math

import numpy as np
import pytest
import torch

from diffusion_gui.core import bound_estimators as be
from diffusion_gui.core.diffusion import GaussianDiffusion
from diffusion_gui.core.schedule import NoiseSchedule
from diffusion_gui.core.toy2d import gaussians8
from diffusion_gui.core.toy2d_metrics import MixtureDenoiser
from diffusion_gui.core.vlb import LN2, compute_vlb, prior_bpd, vb_terms_bpd


def _d(T=20, variance="fixed_small"):
    return GaussianDiffusion(NoiseSchedule.from_name("linear", T), variance=variance)


def test_gaussian_log_prob_matches_torch_normal():
    x, m = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    ref = torch.distributions.Normal(m, math.exp(0.5 * -0.7)).log_prob(x).sum(1)
    assert torch.allclose(be.gaussian_log_prob(x, m, -0.7), ref)


def test_lambda_is_the_paper_formula_and_kl_is_weighted_mse():
    d = _d(30)
    s = d.schedule
    sig2 = s.posterior_variance.clone()
    sig2[0] = s.posterior_variance[1]
    lam = (s.betas ** 2 / (2 * sig2 * s.alphas * (1 - s.alpha_bars))).numpy()
    assert np.allclose(be.lambda_weights(d), lam, rtol=1e-12)
    assert np.allclose(be.kl_constant(d)[1:], 0, atol=1e-12)
    mix = be.Mixture1D()
    x0 = torch.from_numpy(mix.sample(64, 0))
    r = be.kl_vs_weighted_mse(be.Mixture1DDenoiser(mix, d), d, x0, [2, 5, 15, 30],
                              generator=torch.Generator().manual_seed(0), model_dtype=torch.float64)
    assert r["max_rel"] < 1e-6
    # fixed_large: a constant apart, and that constant is positive
    dl = _d(30, "fixed_large")
    r2 = be.kl_vs_weighted_mse(be.Mixture1DDenoiser(mix, dl), dl, x0, [2, 5, 15],
                               generator=torch.Generator().manual_seed(0), model_dtype=torch.float64)
    assert r2["max_rel"] < 1e-6
    assert (r2["constant"] > 0).all()
    assert np.all(np.abs(r2["kl"] - r2["lambda"] * r2["mse"]) > 0.5 * r2["constant"])


def test_step_terms_equal_vb_terms_bpd_on_an_image_model(tiny_model):
    m = tiny_model(timesteps=20)
    d = m.diffusion
    g = torch.Generator().manual_seed(1)
    x0 = (torch.rand(3, 1, 16, 16, generator=g) * 2 - 1).double()
    for i in (0, 1, 7, 19):
        x_t = d.q_sample(x0, torch.full((3,), i), torch.randn(x0.shape, generator=g, dtype=torch.float64))
        with torch.no_grad():
            out = m(x_t.float(), torch.full((3,), i)).double()
        _, rb = be.step_terms(d, out, x0, x0, x_t, i, "discretized")
        ref = vb_terms_bpd(d, out, x0, x_t, torch.full((3,), i)).double() * 256 * LN2
        assert torch.allclose(rb, ref, rtol=1e-9, atol=1e-9)
    assert torch.allclose(be.prior_kl(d, x0) / (256 * LN2), prior_bpd(d, x0).double(), rtol=1e-9)


def test_both_estimators_agree_with_compute_vlb(tiny_model):
    m = tiny_model(timesteps=20)
    d = m.diffusion
    x0 = torch.round((torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1) * 127.5) / 127.5
    tt = be.run_terms(be.trajectory_terms(m, d, x0.double().repeat(64, 1, 1, 1), decoder="discretized",
                                          generator=torch.Generator().manual_seed(3), t_batch=256))
    f = 1 / (256 * LN2)
    a, b = tt.plain * f, tt.rao_blackwell * f
    ref = np.mean([compute_vlb(m, d, x0, generator=torch.Generator().manual_seed(s)).total_bpd for s in range(8)])
    se = math.sqrt(a.var() / 64 + b.var() / 64)
    assert abs(a.mean() - b.mean()) < 4 * se
    assert abs(b.mean() - ref) < 4 * b.std() / 8 + 1e-3
    assert tt.plain_step_std.shape == (20,) and (tt.rb_step_std >= 0).all()


def test_exact_1d_nll_is_a_density_and_iwae_falls_to_it():
    d = _d(20)
    mix = be.Mixture1D()
    model = be.Mixture1DDenoiser(mix, d)
    xs = np.linspace(-5, 5, 801)
    nll = be.exact_nll_1d(model, d, xs)
    assert abs(np.exp(-nll).sum() * (xs[1] - xs[0]) - 1) < 1e-3     # p_theta(x_0) integrates to 1
    exact = float(be.exact_nll_1d(model, d, [0.5])[0])
    tt = be.run_terms(be.trajectory_terms(model, d, torch.full((4096, 1), 0.5, dtype=torch.float64),
                                          generator=torch.Generator().manual_seed(0), model_dtype=torch.float64,
                                          t_batch=10 ** 6))
    c = be.iwae_curve(tt.log_weights, [1, 4, 16, 64, 256])
    assert c["mean"][0] > exact + 0.1                                  # the gap (a KL) at K = 1
    assert abs(c["mean"][0] - tt.rao_blackwell.mean()) < 4 * c["se"][0]
    assert np.all(np.diff(c["mean"]) < 3 * (c["se"][1:] + c["se"][:-1]))   # never rises beyond its SE
    assert abs(c["mean"][-1] - exact) < 4 * c["se"][-1] + 0.02


def test_iwae_curve_by_hand():
    lw = np.log(np.array([1.0, 3.0, 2.0, 2.0]))
    c = be.iwae_curve(lw, [1, 2, 4])
    assert np.allclose(c["mean"], [-np.mean(lw), -(np.log(2) + np.log(2)) / 2, -np.log(2)])
    assert list(c["groups"]) == [4, 2, 1] and np.isnan(c["se"][-1])


def test_telescoping_at_T4_on_a_mixture():
    d = _d(4)
    r = be.telescoping(MixtureDenoiser(gaussians8(), d), d, torch.tensor([[1.0, 0.2]]),
                       generator=torch.Generator().manual_seed(4))
    assert r["residual"] < 1e-9 and r["bayes_residual"] < 1e-9
    assert abs(r["product_of_ratios"] - r["cancelled"]) < 1e-12
    assert len(r["telescoped_ratios"]) == 3


def test_weight_shares():
    assert np.allclose(be.weight_shares(np.ones(100)), 0.1)
    w = be.lambda_weights(_d(100))
    sh = be.weight_shares(w)
    assert abs(sh.sum() - 1) < 1e-12 and sh[0] > sh[-1]


@pytest.mark.parametrize("bad", ["nope"])
def test_bad_decoder(bad):
    with pytest.raises(ValueError):
        next(be.trajectory_terms(lambda x, i: x, _d(4), torch.zeros(2, 1), decoder=bad))
