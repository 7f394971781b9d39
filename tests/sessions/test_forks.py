"""Forks (sessions/forks.py): K runs continued from one recorded x_t."""
import numpy as np
import pytest

from diffusion_gui.errors import InvalidParameter
from diffusion_gui.sessions.forks import fork_curve, fork_from, fork_times, replay
from diffusion_gui.sessions.sampling import SamplingParams, make_sampler


def test_fork_times_are_visited_steps(tiny_model):
    p = SamplingParams(sampler="ddim", steps=5, batch=1)
    ts = fork_times(20, p, 8)
    assert ts == [17, 13, 9, 5, 1]
    assert fork_times(20, SamplingParams(batch=1), 3) == [20, 10, 1]


def test_replay_is_the_original_run(tiny_model):
    model = tiny_model(timesteps=20)
    p = SamplingParams(sampler="ddpm", batch=3, seed=4)
    states, final = replay(model, p, [20, 7], image=1)
    items = list(make_sampler(model, p)[0])
    assert np.allclose(states[7].numpy(), items[20 - 7].x_t[1:2].numpy())
    assert np.allclose(final.numpy(), items[-1].x_t[1:2].numpy())


def test_a_fork_from_t_1_barely_moves_and_one_from_T_spreads(tiny_model):
    model = tiny_model(timesteps=20)
    p = SamplingParams(sampler="ddpm", batch=1, seed=0)
    curve = None
    for curve in fork_curve(model, p, k=6, ts=[20, 10, 1], judge=False):
        pass
    t, spread = curve.curve()
    assert t.tolist() == [1, 10, 20]
    assert spread[0] < spread[2]
    assert spread[0] < 1e-6      # the last DDPM step (t = 1) adds no noise: all forks agree
    assert curve.points[0].images.shape == (6, 16, 16, 1)
    assert curve.original.shape == (16, 16, 1)
    figs = curve.figures()
    assert [q["t"] for q in figs["points"]] == [20, 10, 1] and figs["forks"] == 6


def test_deterministic_ddim_forks_do_not_spread(tiny_model):
    model = tiny_model(timesteps=20)
    p = SamplingParams(sampler="ddim", steps=5, eta=0.0, batch=1, seed=0)
    states, _ = replay(model, p, [13])
    out = fork_from(model, p, states[13], 13, 4, 99)
    assert float(out.std(dim=0).max()) == 0.0


def test_bad_fork_settings(tiny_model):
    model = tiny_model(timesteps=20)
    p = SamplingParams(batch=2)
    with pytest.raises(InvalidParameter):
        next(fork_curve(model, p, k=1))
    with pytest.raises(InvalidParameter):
        next(fork_curve(model, p, image=2))
    with pytest.raises(InvalidParameter):
        next(fork_curve(model, p, ts=[21]))
