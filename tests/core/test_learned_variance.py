"""learned_range (improved DDPM): the variance interpolated between beta~_t and beta_t by the
network's second half of channels; L_hybrid's parts; the fixed overrides over such a network."""
import math

import pytest
import torch

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
from diffusion_gui.core.sampling import ddpm_sample, run
from diffusion_gui.core.vlb import HYBRID_LAMBDA, hybrid_loss, hybrid_terms, vb_terms_bpd

S = NoiseSchedule.from_name("linear", 100)


def _out(v: float, shape=(3, 1, 4, 4), seed=0):
    eps = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.cat([eps, torch.full(shape, v, dtype=torch.float64)], dim=1)


@pytest.mark.parametrize("v, fixed", [(-1.0, "fixed_small"), (1.0, None)])
def test_the_ends_of_the_range_are_beta_tilde_and_beta(v, fixed):
    d = GaussianDiffusion(S, variance="learned_range")
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    for i in (1, 50, 99):
        mean, var, logvar, _ = d.p_mean_variance(_out(v), x, torch.full((3,), i))
        if fixed:
            ref = GaussianDiffusion(S, variance=fixed).model_log_variance[i]
        else:
            ref = math.log(float(S.betas[i]))
        torch.testing.assert_close(logvar, torch.full_like(x, float(ref)))
        torch.testing.assert_close(var, logvar.exp())
        # the mean is the fixed-variance model's mean of the same prediction
        ref_mean = GaussianDiffusion(S).p_mean_variance(_out(v)[:, :1], x, i)[0]
        torch.testing.assert_close(mean, ref_mean)


def test_halfway_is_the_geometric_mean():
    d = GaussianDiffusion(S, variance="learned_range")
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    _, var, _, _ = d.p_mean_variance(_out(0.0), x, 40)
    ref = math.sqrt(float(S.posterior_variance[40]) * float(S.betas[40]))
    torch.testing.assert_close(var, torch.full_like(x, ref))


def test_a_learned_model_must_output_twice_the_channels():
    d = GaussianDiffusion(S, variance="learned_range")
    with pytest.raises(ValueError, match="2 channels"):
        d.p_mean_variance(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), 3)


def test_a_fixed_override_uses_the_prediction_half_only():
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    fixed = GaussianDiffusion(S, variance="fixed_large")
    a = fixed.p_mean_variance(_out(0.3), x, 20)
    b = fixed.p_mean_variance(_out(0.3)[:, :1], x, 20)
    for u, w in zip(a, b):
        torch.testing.assert_close(torch.as_tensor(u), torch.as_tensor(w))


def test_sampling_a_learned_model_runs_and_reports_a_float_sigma():
    d = GaussianDiffusion(S, variance="learned_range")

    def model(x, i):
        return torch.cat([torch.zeros_like(x), torch.full_like(x, 0.5)], dim=1)
    steps = list(ddpm_sample(model, d, (2, 1, 4, 4), generator=torch.Generator().manual_seed(0)))
    assert isinstance(steps[1].sigma, float)
    frac = 0.75
    ref = math.exp(0.5 * (frac * math.log(float(S.betas[98]))
                          + (1 - frac) * float(S.posterior_log_variance_clipped[98])))
    assert steps[1].sigma == pytest.approx(ref)
    assert torch.isfinite(run(ddpm_sample(model, d.respace(range(0, 100, 10)), (2, 1, 4, 4),
                                          generator=torch.Generator().manual_seed(0)))).all()


def test_hybrid_sends_the_bound_to_the_variance_only():
    d = GaussianDiffusion(S, variance="learned_range")
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(4, 1, 4, 4, generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    i = torch.tensor([0, 5, 50, 99])
    x_t = d.q_sample(x0, i, noise)
    out = (torch.randn(4, 2, 4, 4, generator=g) * 0.5).requires_grad_(True)
    mse, vb = hybrid_terms(d, out, x0, x_t, i, noise)
    torch.testing.assert_close(vb.double(), vb_terms_bpd(d, out.detach(), x0, x_t, i).double())
    torch.testing.assert_close(mse, ((out[:, :1] - noise) ** 2).mean(dim=(1, 2, 3)))
    vb.sum().backward()
    assert out.grad[:, :1].abs().max() == 0          # the mean's gradient is stopped
    assert out.grad[:, 1:].abs().max() > 0           # the variance gets one
    loss = hybrid_loss(mse, vb, 100)
    torch.testing.assert_close(loss, mse + HYBRID_LAMBDA * 100 * vb.float())
    with pytest.raises(ValueError, match="learned_range"):
        hybrid_terms(GaussianDiffusion(S), out[:, :1], x0, x_t, i, noise)
