"""The Reverse panel's cost line (:class:`~diffusion_gui.gui.cost_line.CostLine`): what a
Generate run as set up takes, first from one network call timed at its batch, then from the
last finished run of that batch (the click to its end, over its calls)."""
from __future__ import annotations

import time

from ...cost_line import CostLine


def cost_line(p) -> CostLine:
    """The line of Reverse panel ``p`` (its ``cost_text``), following its sampler controls."""
    from ....sessions.cost import sampling_cost, sampling_rows

    def plan():
        m = p.ctx.model
        params = p._sampling_params(p.guidance_box.conditional())
        return sampling_rows(m, params), lambda timing: sampling_cost(timing, m, params)

    return CostLine(p, p.cost_text, plan, (p.sampler.currentIndexChanged, p.steps.valueChanged,
                                           p.batch.valueChanged, p.guidance_box.w_spin.valueChanged))


def learn_from(line: CostLine, run, started: float) -> None:
    """After ``run`` finished unpaused (started at ``time.monotonic()`` = ``started``): its
    seconds per call become the estimate for its rows."""
    from ....sessions.cost import sampling_calls, sampling_rows
    calls = sampling_calls(run.T, run.params, run.start_t)
    line.learn(sampling_rows(run.model, run.params), (time.monotonic() - started) / max(1, calls))
