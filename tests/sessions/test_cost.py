"""A run's cost before it is clicked (sessions/cost.py): the calls a run makes, the rows of
each call, the estimate from one timed call and the suggestions when it is long. How close the
estimate comes to a real run is measured by benchmarks/big_model.py, not asserted here (the
machine is noisy)."""
from __future__ import annotations

import pytest

from diffusion_gui.core.vlb import evaluated_indices
from diffusion_gui.sessions.cost import (
    LONG_RUN_S,
    CallTiming,
    bound_calls,
    bound_cost,
    sampling_calls,
    sampling_cost,
    sampling_rows,
    time_network_call,
)
from diffusion_gui.sessions.sampling import SamplingParams, make_sampler


def test_calls_are_the_steps_a_run_visits(tiny_model):
    m = tiny_model(timesteps=20)
    for p, start_t in ((SamplingParams(), None), (SamplingParams(sampler="ddim", steps=5), None),
                       (SamplingParams(sampler="ddpm", steps=7), None), (SamplingParams(), 9)):
        gen, _ = make_sampler(m, p, start_t=start_t, x_start=None if start_t is None else _x(m, p))
        assert sampling_calls(20, p, start_t) == len(list(gen)) - 1


def _x(m, p):
    import torch
    return torch.zeros(p.batch, m.in_channels, m.sample_size, m.sample_size)


def test_guidance_doubles_the_rows(tiny_model):
    plain = tiny_model(timesteps=20)
    cond = tiny_model(timesteps=20, classes=3)
    p = SamplingParams(batch=4, class_label=1, guidance=3.0)
    assert sampling_rows(plain, SamplingParams(batch=4)) == 4
    assert sampling_rows(cond, p) == 8
    assert sampling_rows(cond, SamplingParams.of(p, guidance=1.0)) == 4


def test_a_long_run_suggests_ddim_and_a_smaller_batch():
    class M:                                    # what sampling_cost reads of a model
        num_timesteps, classes = 1000, None
    timing = CallTiming(seconds=1.0, rows=16, device="cpu", dtype="float32")
    c = sampling_cost(timing, M, SamplingParams(batch=16))
    assert (c.calls, c.rows, c.seconds, c.per_call) == (1000, 16, pytest.approx(1000.0), 1.0)
    assert c.long and dict(c.suggestions) == {"DDIM-50": pytest.approx(50.0),
                                              "a batch of 2": pytest.approx(125.0)}
    short = sampling_cost(timing, M, SamplingParams(sampler="ddim", steps=50, batch=16))
    assert not short.long and short.suggestions == () and short.seconds == pytest.approx(50.0)
    assert short.seconds <= LONG_RUN_S


def test_bound_calls_and_a_stride_that_fits():
    k = len(evaluated_indices(1000, 10))
    calls, rows = bound_calls(1000, 10, 4, 32)
    assert rows == 32 and calls == -(-k // 8)
    c = bound_cost(CallTiming(4.0, 32, "cpu", "float32"), 1000, 1, 4, 32)
    assert c.calls == 125 and c.long
    (what, secs), = c.suggestions
    assert what.startswith("stride ") and secs <= LONG_RUN_S


def test_time_network_call_times_the_batch(tiny_model):
    m = tiny_model(timesteps=20, classes=3)           # a conditional model is timed too
    t = time_network_call(m, 5, "cpu")
    assert t.rows == 5 and t.device == "cpu" and 0 < t.seconds < 30
    assert t.at(10) == pytest.approx(2 * t.seconds)


@pytest.mark.parametrize("seconds, want", [
    (2.0, {"DDIM-50", "DDIM-50 with a batch of 1"}),        # DDIM-50 fits with one image
    (5.14, {"DDIM-50", "DDIM-35 with a batch of 1"}),       # not even that: fewer DDIM steps
])
def test_when_nothing_alone_fits_the_two_are_combined(seconds, want):
    class M:
        num_timesteps, classes = 1000, None
    c = sampling_cost(CallTiming(seconds, 1, "cpu", "float32"), M, SamplingParams(batch=16))
    assert set(dict(c.suggestions)) == want
    assert all(s <= LONG_RUN_S for what, s in c.suggestions if "with a batch" in what)
