"""The sampler generators (core/sampling.py): frames, timesteps, reproducibility.

Frames speak the paper's ``t`` (T = noise ... 0 = clean); the model receives the index ``i = t - 1``.
"""
import torch

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule, ddim_sample, ddpm_sample, run, sampler

SHAPE = (2, 1, 4, 4)


def _zeros(x, i):
    return torch.zeros_like(x)


def _fixed(x, i):
    """A deterministic eps prediction that depends on x and on the model index i."""
    return 0.5 * torch.tanh(x) + 1e-4 * i.to(x.dtype).reshape(-1, 1, 1, 1)


def _diffusion(T=50, name="linear"):
    return GaussianDiffusion(NoiseSchedule.from_name(name, T))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_ddpm_yields_T_plus_one_frames_from_T_down_to_0():
    frames = list(ddpm_sample(_zeros, _diffusion(50), SHAPE, generator=_gen()))
    assert len(frames) == 51
    assert [f.t for f in frames] == list(range(50, -1, -1))
    assert frames[-1].t == 0 and torch.equal(frames[-1].x_t, frames[-1].x0_pred)
    assert [f.step for f in frames] == list(range(51)) and {f.num_steps for f in frames} == {50}
    assert all(f.x_t.shape == SHAPE and torch.isfinite(f.x_t).all() for f in frames)


def test_model_sees_the_training_index():
    seen = []

    def model(x, i):
        seen.append(i.tolist())
        return _zeros(x, i)

    frames = list(ddpm_sample(model, _diffusion(50), SHAPE, num_steps=10, generator=_gen()))
    assert seen == [[f.t - 1] * SHAPE[0] for f in frames[:-1]]


def test_strided_ddpm_and_ddim_yield_num_steps_plus_one_frames():
    d = _diffusion(100)
    for frames in (list(ddpm_sample(_fixed, d, SHAPE, num_steps=10, generator=_gen())),
                   list(ddim_sample(_fixed, d, SHAPE, num_steps=10, generator=_gen())),
                   list(ddim_sample(_fixed, d, SHAPE, num_steps=10, eta=1.0, generator=_gen()))):
        assert len(frames) == 11
        ts = [f.t for f in frames]
        assert ts[0] == 91 and ts[-1] == 0 and ts == sorted(ts, reverse=True)
        assert ts[:-1] == list(range(91, 0, -10))


def test_start_t_starts_there():
    d = _diffusion(100)
    x_start = torch.randn(SHAPE, generator=_gen(5))
    full = list(ddpm_sample(_zeros, d, SHAPE, x_start=x_start, start_t=30, generator=_gen()))
    assert [f.t for f in full] == list(range(30, -1, -1))
    assert torch.equal(full[0].x_t, x_start)
    strided = list(ddpm_sample(_zeros, d, SHAPE, num_steps=10, x_start=x_start, start_t=37, generator=_gen()))
    assert strided[0].t == 37 and [f.t for f in strided[1:]] == [31, 21, 11, 1, 0]
    ddim = list(ddim_sample(_zeros, d, SHAPE, num_steps=10, x_start=x_start, start_t=37))
    assert ddim[0].t == 37 and ddim[-1].t == 0 and torch.equal(ddim[0].x_t, x_start)


def test_run_returns_the_last_frame():
    d = _diffusion(30)
    frames = list(ddpm_sample(_fixed, d, SHAPE, generator=_gen(3)))
    out = run(ddpm_sample(_fixed, d, SHAPE, generator=_gen(3)))
    assert torch.equal(out, frames[-1].x_t)
    out_ddim = run(sampler("ddim", _fixed, d, SHAPE, steps=5, generator=_gen(3)))
    assert torch.equal(out_ddim, list(ddim_sample(_fixed, d, SHAPE, num_steps=5, generator=_gen(3)))[-1].x_t)


def test_same_seed_same_output_and_different_seed_different_output():
    d = _diffusion(30)
    a = run(ddpm_sample(_fixed, d, SHAPE, generator=_gen(11)))
    b = run(ddpm_sample(_fixed, d, SHAPE, generator=_gen(11)))
    c = run(ddpm_sample(_fixed, d, SHAPE, generator=_gen(12)))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    e1 = run(ddim_sample(_fixed, d, SHAPE, num_steps=6, eta=0.5, generator=_gen(11)))
    e2 = run(ddim_sample(_fixed, d, SHAPE, num_steps=6, eta=0.5, generator=_gen(11)))
    assert torch.equal(e1, e2)


def test_ddim_eta0_is_deterministic_given_x_T():
    d = _diffusion(100, "cosine")
    x_T = torch.randn(SHAPE, generator=_gen(7))
    a = run(ddim_sample(_fixed, d, SHAPE, num_steps=20, eta=0.0, x_start=x_T, generator=_gen(1)))
    b = run(ddim_sample(_fixed, d, SHAPE, num_steps=20, eta=0.0, x_start=x_T, generator=_gen(2)))
    c = run(ddim_sample(_fixed, d, SHAPE, num_steps=20, eta=0.0, x_start=x_T))
    assert torch.equal(a, b) and torch.equal(a, c)
    noisy1 = run(ddim_sample(_fixed, d, SHAPE, num_steps=20, eta=1.0, x_start=x_T, generator=_gen(1)))
    noisy2 = run(ddim_sample(_fixed, d, SHAPE, num_steps=20, eta=1.0, x_start=x_T, generator=_gen(2)))
    assert not torch.allclose(noisy1, noisy2)


def test_full_ddpm_equals_a_hand_written_loop_of_ddpm_step():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 1000))
    got = run(ddpm_sample(_fixed, d, SHAPE, num_steps=None, generator=_gen(21)))
    ends = {}
    for index in ("int", "tensor"):      # one index for the batch, or a LongTensor [B]
        g = _gen(21)
        x = torch.randn(SHAPE, generator=g)
        for i in range(999, -1, -1):
            it = torch.full((SHAPE[0],), i, dtype=torch.long)
            # the sampler draws no noise at i = 0, where ddpm_step ignores it
            noise = torch.randn(SHAPE, generator=g) if i > 0 else None
            x = d.ddpm_step(_fixed(x, it), x, i if index == "int" else it, noise)
        ends[index] = x
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ends["int"], rtol=0, atol=0)
    # the same maths with per-sample coefficients: equal up to float32 rounding
    torch.testing.assert_close(got, ends["tensor"], rtol=1e-5, atol=1e-5)
