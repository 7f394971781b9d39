"""Sampling parameters, make_sampler and the timesteps a run visits, without Qt."""
from __future__ import annotations

import pytest
import torch

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
from diffusion_gui.errors import InvalidParameter
from diffusion_gui.sessions.sampling import SamplingParams, make_sampler, visited_timesteps


class ZeroModel:
    """A LoadedModel look-alike that predicts zero noise: fast, for the timestep bookkeeping."""

    in_channels, sample_size, clip_sample = 1, 2, False

    def __init__(self, T):
        self.diffusion = GaussianDiffusion(NoiseSchedule.from_name("linear", T))
        self.num_timesteps = T

    def __call__(self, x, i):
        return torch.zeros_like(x)


@pytest.mark.parametrize("T", [20, 50, 1000])
@pytest.mark.parametrize("kw", [dict(), dict(steps=7), dict(steps=20), dict(sampler="ddim", steps=5),
                                dict(sampler="ddim", steps=20, eta=1.0), dict(sampler="ddim")])
@pytest.mark.parametrize("start_t", [None, 13])
def test_visited_timesteps_are_what_the_sampler_visits(T, kw, start_t):
    if kw.get("steps", 50 if kw.get("sampler") == "ddim" else 1) > T:
        pytest.skip("more steps than T")
    m = ZeroModel(T)
    p = SamplingParams(batch=1, **kw)
    gen, _ = make_sampler(m, p, start_t=start_t,
                          x_start=torch.zeros(1, 1, 2, 2) if start_t else None)
    got = [so.t for so in gen]
    assert visited_timesteps(T, p, start_t=start_t) == got
    assert got[-1] == 0 and (got[0] == start_t if start_t else got[0] <= T)
    assert got == sorted(got, reverse=True) and len(got) == len(set(got))


@pytest.mark.parametrize("kw, name", [
    (dict(batch=0), "batch"), (dict(batch=1025), "batch"), (dict(steps=0), "steps"),
    (dict(steps=21), "steps"), (dict(eta=1.5), "eta"), (dict(sampler="plms"), "sampler"),
    (dict(variance="huge"), "variance"), (dict(sampler="ddim"), "steps"),   # DDIM's 50 > T
])
def test_bad_parameters_are_named_as_parameters(kw, name):
    with pytest.raises(InvalidParameter) as e:
        make_sampler(ZeroModel(20), **kw)
    assert e.value.name == name and not str(e.value).startswith("-")
    assert str(e.value).startswith(name)


def test_params_from_a_mapping_or_keywords():
    p = SamplingParams.of({"sampler": "ddim", "steps": 4}, seed=3)
    assert (p.sampler, p.steps, p.seed, p.batch) == ("ddim", 4, 3, 16)
    assert SamplingParams.of(p) is p and SamplingParams.of(p, batch=2).batch == 2
    with pytest.raises(TypeError):
        SamplingParams.of({"nonsense": 1})


def test_same_seed_same_images():
    m = ZeroModel(20)
    runs = [list(make_sampler(m, sampler="ddpm", steps=5, batch=2, seed=s)[0])[-1].x_t
            for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
