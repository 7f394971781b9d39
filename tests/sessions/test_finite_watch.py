"""The NaN / infinity watch (sessions/finite_watch.py): read at once on the CPU (the error names
the step), accumulated and read every few steps off it (the error names the steps between two
reads). The lazy mode is forced here with ``every``; a GPU picks it by itself."""
from __future__ import annotations

import pytest
import torch

from diffusion_gui.core.sampling import StepOutput
from diffusion_gui.errors import NonFiniteError, user_message
from diffusion_gui.sessions.finite_watch import FiniteWatch

N = 10      # steps: t = 10 .. 1, then 0


def _steps(bad_t=None, value=float("nan")):
    for step in range(N + 1):
        t = N - step
        x = torch.randn(2, 1, 4, 4)
        if t == bad_t:
            x[1, 0, 2, 3] = value
        yield StepOutput(t, x, x.clone(), step, N, 0.1, 0.1)


def _run(watch, steps):
    seen = []
    for so in steps:
        seen.append(so.t)
        watch.observe(so)
    return seen


def test_on_the_cpu_every_step_is_read_and_named():
    w = FiniteWatch()
    with pytest.raises(NonFiniteError) as e:
        _run(w, _steps(bad_t=7))
    assert "at t = 7 (step 4 of 10)" in user_message(e.value)
    assert _run(FiniteWatch(), _steps()) == list(range(N, -1, -1))     # clean: no error


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_accumulated_reads_name_the_steps_between_them(value):
    w, seen = FiniteWatch(every=4), []
    with pytest.raises(NonFiniteError) as e:
        for so in _steps(bad_t=8, value=value):
            seen.append(so.t)
            w.observe(so)
    assert seen == [10, 9, 8, 7]                   # read after the 4th step, not before
    assert "between t = 10 and t = 7 (steps 1-4 of 10)" in user_message(e.value)


def test_a_read_on_demand_and_the_last_step():
    w = FiniteWatch(every=100)
    steps = list(_steps(bad_t=0))
    for so in steps[:3]:
        w.observe(so)
    w.check()                                       # the caller copies a step: read now
    w.check()                                       # nothing unread: a no-op
    with pytest.raises(NonFiniteError) as e:
        for so in steps[3:]:
            w.observe(so)                           # t = 0 is always read
    assert "between t = 7 and t = 0 (steps 4-10 of 10)" in user_message(e.value)
