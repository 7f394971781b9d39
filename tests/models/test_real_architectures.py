"""A model of real size through the normal paths: a random-weight checkpoint with the exact
config of google/ddpm-cifar10-32 (35.7 M parameters, flat layout, ``fixed_large``, clip;
tests/real_architectures.py) is loaded by ``load_model``, samples a few DDIM steps and a DDPM
step, scores a strided bound, and gets a cost estimate. The 256 px church model is too large
for the test run: benchmarks/big_model.py takes it through the same paths."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from real_architectures import PARAMETERS, make_real_checkpoint

from diffusion_gui.core.vlb import vlb_terms
from diffusion_gui.models.loader import load_model
from diffusion_gui.sessions.cost import sampling_cost, time_network_call
from diffusion_gui.sessions.sampling import SamplingParams, make_sampler


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return load_model(str(make_real_checkpoint(tmp_path_factory.mktemp("real") / "cifar10", "cifar10")))


def test_loads_with_the_published_architecture(cifar):
    info = cifar.info()
    assert info["parameters"] == PARAMETERS["cifar10"] == 35_746_307
    assert (info["resolution"], info["channels"], info["timesteps"]) == (32, 3, 1000)
    assert info["variance"] == "fixed_large" and info["clip_sample"] is True


@pytest.mark.parametrize("params", [SamplingParams(sampler="ddim", steps=3, batch=2, seed=1),
                                    SamplingParams(sampler="ddpm", steps=2, batch=1, seed=1)])
def test_samples_a_few_steps(cifar, params):
    gen, shape = make_sampler(cifar, params)
    frames = list(gen)
    assert shape == (params.batch, 3, 32, 32) and len(frames) == params.steps + 1
    last = frames[-1].x_t
    assert last.shape == shape and bool(torch.isfinite(last).all())
    assert float(last.abs().max()) <= 1.0 + 1e-6          # clip_sample: x_0 in [-1, 1]


@pytest.mark.parametrize("stride, respaced", [(100, False), (1, True)])
def test_a_strided_bound(cifar, stride, respaced):
    """The bound (the KL terms, the decoder, the prior) on the real network: every 100th t of
    the 1000-step schedule (the first 100 densely: 110 rows), and a 10-step respacing of it
    (its index map)."""
    d = cifar.diffusion.respace(list(range(0, 1000, 100))) if respaced else cifar.diffusion
    x0 = torch.rand(1, 3, 32, 32) * 2 - 1
    last = list(vlb_terms(cifar, d, x0, stride=stride, t_batch=32,
                          generator=torch.Generator().manual_seed(0)))[-1]
    r = last.result
    assert len(r.t) == (10 if respaced else 110)
    assert np.isfinite(r.vb_bpd).all() and math.isfinite(r.total_bpd) and r.total_bpd > 0


def test_cost_of_the_default_run_is_long_and_suggests_ddim(cifar):
    """One call at batch 2, timed: the panel's default DDPM-1000 of 16 images is far over the
    limit here and DDIM-50 is suggested (the estimate's accuracy: benchmarks/big_model.py)."""
    timing = time_network_call(cifar, 2, "cpu")
    c = sampling_cost(timing, cifar, SamplingParams(batch=16))
    assert c.calls == 1000 and c.long
    assert dict(c.suggestions)["DDIM-50"] == pytest.approx(c.seconds / 20)
