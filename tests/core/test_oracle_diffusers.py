"""Our maths against diffusers' schedulers as an oracle (tolerance 1e-5 or tighter)."""
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule, strided_indices

TOL = 1e-5  # absolute and relative: diffusers computes its coefficients in float32


@pytest.mark.parametrize("ours, theirs", [("linear", "linear"), ("scaled_linear", "scaled_linear"),
                                          ("cosine", "squaredcos_cap_v2")])
def test_alpha_bars_match_diffusers(ours, theirs):
    kw = {"beta_start": 0.00085, "beta_end": 0.012} if ours == "scaled_linear" else {}
    s = NoiseSchedule.from_name(ours, 1000)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs, **kw).alphas_cumprod
    assert s.alpha_bars.dtype == torch.float64
    torch.testing.assert_close(s.alpha_bars.float(), ref, atol=TOL, rtol=TOL)


def test_sigmoid_betas_match_diffusers():
    s = NoiseSchedule.from_name("sigmoid", 1000)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="sigmoid").betas
    torch.testing.assert_close(s.betas.float(), ref, atol=TOL, rtol=TOL)


def test_q_sample_matches_add_noise():
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(8, 3, 8, 8, generator=g) * 2 - 1
    eps = torch.randn(x0.shape, generator=g)
    i = torch.randint(0, 1000, (8,), generator=g)
    d = GaussianDiffusion(NoiseSchedule.from_name("linear"))
    ref = DDPMScheduler(num_train_timesteps=1000).add_noise(x0, eps, i)
    torch.testing.assert_close(d.q_sample(x0, i, eps), ref, atol=TOL, rtol=TOL)


def _float64(sched):
    """The scheduler's own betas, accumulated in float64 (its float32 cumprod is off by ~1e-5
    relative at t = T, which the ~158x coefficient of x_0 there would amplify)."""
    sched.betas = sched.betas.double()
    sched.alphas = 1.0 - sched.betas
    sched.alphas_cumprod = torch.cumprod(sched.alphas, 0)
    return sched


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_ddpm_step_matches_scheduler_step(variance, clip, prediction):
    sched = _float64(DDPMScheduler(num_train_timesteps=1000, variance_type=variance,
                                   clip_sample=clip, prediction_type=prediction))
    d = GaussianDiffusion(NoiseSchedule.from_name("linear"), variance=variance, prediction_type=prediction)
    g = torch.Generator().manual_seed(2)
    for t in (999, 500, 10, 1, 0):
        # float64 inputs: near t = T the x_0 coefficient is ~158, and float32 rounding alone
        # would differ by more than the tolerance
        x = torch.randn(2, 1, 6, 6, generator=g, dtype=torch.float64)
        out = torch.randn(2, 1, 6, 6, generator=g, dtype=torch.float64)
        # diffusers draws its noise from the generator we hand it; replay the same draw
        ref = sched.step(out, t, x, generator=torch.Generator().manual_seed(7)).prev_sample
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
        ours = d.ddpm_step(out, x, t, noise, clip_x0=clip)
        torch.testing.assert_close(ours, ref, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("clip_eps", ["clipped", "raw"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("clip", [True, False])
def test_ddim_step_matches_scheduler_over_50_steps(eta, clip, clip_eps):
    sched = DDIMScheduler(num_train_timesteps=1000, clip_sample=clip)
    sched.set_timesteps(50)
    d = GaussianDiffusion(NoiseSchedule.from_name("linear"))
    ours_ts = sorted(strided_indices(1000, 50), reverse=True)
    assert ours_ts == [int(t) for t in sched.timesteps]
    g = torch.Generator().manual_seed(3)
    x_ref = torch.randn(2, 3, 5, 5, generator=g)
    for k, t in enumerate(ours_ts):
        out = torch.sin(3 * x_ref) + 0.01 * t  # a deterministic stand-in for a network
        noise = torch.randn(x_ref.shape, generator=torch.Generator().manual_seed(k))
        # "clipped" (ours by default, like improved-diffusion) re-derives eps from a clipped x_0:
        # diffusers' use_clipped_model_output=True; "raw" keeps it: diffusers' default
        ref = sched.step(out, t, x_ref, eta=eta, variance_noise=noise,
                         use_clipped_model_output=clip_eps == "clipped").prev_sample
        i_prev = ours_ts[k + 1] if k + 1 < len(ours_ts) else -1
        ours = d.ddim_step(out, x_ref, t, i_prev, eta, noise, clip_x0=clip, clip_eps=clip_eps)
        torch.testing.assert_close(ours, ref, atol=TOL, rtol=TOL)
        x_ref = ref


def test_the_two_clip_eps_conventions_differ_only_when_x0_is_clipped():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear"))
    g = torch.Generator().manual_seed(5)
    x = 3 * torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)    # x0 outside [-1, 1]
    out = torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
    a = d.ddim_step(out, x, 500, 480, clip_x0=True, clip_eps="clipped")
    b = d.ddim_step(out, x, 500, 480, clip_x0=True, clip_eps="raw")
    assert (a - b).abs().max() > 1e-3
    torch.testing.assert_close(d.ddim_step(out, x, 500, 480, clip_eps="clipped"),
                               d.ddim_step(out, x, 500, 480, clip_eps="raw"))
    with pytest.raises(ValueError, match="clip_eps"):
        d.ddim_step(out, x, 500, 480, clip_x0=True, clip_eps="sometimes")


@pytest.mark.parametrize("respaced", [False, True])
def test_learned_range_ddpm_step_matches_scheduler_step(respaced):
    """A learned-variance network's 2C channels: diffusers' DDPMScheduler(variance_type=
    "learned_range") steps as we do at every t >= 2 (at t = 1 no noise is added either way),
    on the full schedule and on a respaced one (its betas 1 - abar_t / abar_prev)."""
    d = GaussianDiffusion(NoiseSchedule.from_name("linear"), variance="learned_range")
    sched = _float64(DDPMScheduler(num_train_timesteps=1000, variance_type="learned_range",
                                   clip_sample=False))
    if respaced:
        keep = strided_indices(1000, 25)
        d = d.respace(keep)
        sched.set_timesteps(25)
        pairs = list(zip(range(len(keep) - 1, -1, -1), sched.timesteps.tolist()))
        assert [int(d.index_map[j]) for j, _ in pairs] == [int(t) for _, t in pairs]
    else:
        pairs = [(t, t) for t in (999, 500, 10, 1, 0)]
    g = torch.Generator().manual_seed(3)
    for j, t in pairs:
        x = torch.randn(2, 1, 6, 6, generator=g, dtype=torch.float64)
        out = torch.randn(2, 2, 6, 6, generator=g, dtype=torch.float64)
        out[:, 1:] = out[:, 1:].clamp(-1, 1)
        ref = sched.step(out, t, x, generator=torch.Generator().manual_seed(7)).prev_sample
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=x.dtype)
        ours = d.ddpm_step(out, x, torch.full((2,), j), noise)
        torch.testing.assert_close(ours, ref, atol=TOL, rtol=TOL)
