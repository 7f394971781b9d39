"""DDIM inversion and slerp (core/inversion.py)."""
import math

import pytest
import torch

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule, ddim_sample, run, strided_indices
from diffusion_gui.core.inversion import ddim_invert, invert, slerp


def _exact_model(d, x0_true):
    """A 'network' that knows the data point: eps(x_t, i) = (x_t - sqrt(abar) x0) / sqrt(1 - abar)."""
    def model(x, i):
        return d.predict_eps(x, i, x0_true)
    return model


def test_inversion_visits_the_sampler_steps_in_reverse():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", timesteps=100))
    x0 = torch.rand(2, 1, 4, 4) * 2 - 1
    items = list(ddim_invert(lambda x, i: torch.zeros_like(x), d, x0, num_steps=10))
    keep = strided_indices(100, 10)
    assert [so.t for so in items[:-1]] == [0] + [i + 1 for i in keep[:-1]]
    assert items[-1].t == keep[-1] + 1 and items[-1].step == 10
    assert torch.equal(items[0].x_t, x0)


def test_with_a_perfect_network_inversion_is_exact_and_reconstruction_returns():
    """With eps known exactly, each inverted step lands on sqrt(abar) x0 + sqrt(1 - abar) eps*:
    the DDIM path of x0, and DDIM back from the latent recovers x0."""
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", timesteps=200))
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    model = _exact_model(d, x0)
    lat = invert(model, d, x0, num_steps=20)
    rec = run(ddim_sample(model, d, x0.shape, num_steps=20, eta=0.0, x_start=lat))
    assert torch.allclose(rec, x0, atol=1e-4)


def test_error_falls_with_the_step_count_for_an_imperfect_network():
    """A network that is smooth in x but not exact: the ODE's discretisation error shrinks."""
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", timesteps=400))
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1

    def model(x, i):   # the score of N(0, I) data: eps = sqrt(1 - abar) x
        ab = d.schedule.alpha_bars[i].float().reshape(-1, 1, 1, 1)
        return (1 - ab).sqrt() * x

    errs = []
    for n in (5, 20, 100):
        lat = invert(model, d, x0, num_steps=n)
        rec = run(ddim_sample(model, d, x0.shape, num_steps=n, eta=0.0, x_start=lat))
        errs.append(float(((rec - x0) ** 2).mean()))
    assert errs[0] > errs[1] > errs[2]


def test_slerp_ends_norms_and_angle():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3, 16, 16, generator=g), torch.randn(2, 3, 16, 16, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    # Gaussian latents of the same size are nearly orthogonal: the midpoint keeps their norm,
    # a straight line would shrink it by about 1/sqrt(2)
    na, nm = a[0].norm(), mid[0].norm()
    assert float(nm / na) == pytest.approx(1.0, abs=0.05)
    assert float(((a + b) / 2)[0].norm() / na) == pytest.approx(1 / math.sqrt(2), abs=0.05)
    assert torch.allclose(slerp(a, a, 0.3), a, atol=1e-5)     # parallel: falls back to a line
    with pytest.raises(ValueError):
        slerp(a, b[:1], 0.5)
