"""FramePacer: live frames take at most a set share of the GUI thread's time."""
from __future__ import annotations

import pytest

from diffusion_gui.gui.frame_pacer import FramePacer


class Clocks:
    """A wall clock and a GUI-thread CPU clock the test advances."""

    def __init__(self):
        self.wall = 0.0
        self.cpu = 0.0

    def frame(self, wall_s: float, cpu_s: float):
        self.wall += wall_s
        self.cpu += cpu_s


def pacer(clocks, **kw):
    return FramePacer(clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu, **kw)


def run(p, clocks, cost_s: float, frames: int) -> float:
    """Show ``frames`` frames, each costing ``cost_s`` of GUI CPU, at the rate the pacer asks."""
    rate = p.start()
    for _ in range(frames):
        clocks.frame(1.0 / rate, cost_s)
        rate = p.shown()
    return rate


def test_no_share_keeps_the_maximum_rate():
    c = Clocks()
    assert run(pacer(c, max_rate=30), c, cost_s=0.010, frames=50) == 30


@pytest.mark.parametrize("cost_ms, expected", [(2.0, 12.5), (1.0, 25.0), (0.5, 30.0), (10.0, 5.0)])
def test_rate_is_share_over_cost_per_frame_within_bounds(cost_ms, expected):
    c = Clocks()
    p = pacer(c, max_rate=30, share=0.025, min_rate=5)
    rate = run(p, c, cost_s=cost_ms / 1000, frames=60)
    assert rate == pytest.approx(expected, rel=1e-6)
    if expected < 30 and expected > 5:       # the GUI share it settled at is the budget
        assert p.gui_share() == pytest.approx(0.025, rel=1e-3)


def test_background_work_of_the_gui_thread_counts_too():
    """Other GUI work between frames (events, a timer) is part of the cost: with 5 ms a second of
    it, frames of 1 ms settle where frames + background = share."""
    c = Clocks()
    p = pacer(c, max_rate=30, share=0.025, min_rate=1)
    rate = p.start()
    for _ in range(200):
        dt = 1.0 / rate
        c.frame(dt, 0.001 + 0.005 * dt)
        rate = p.shown()
    assert rate == pytest.approx((0.025 - 0.005) / 0.001, rel=0.02)   # 20 frames a second
    assert p.gui_share() == pytest.approx(0.025, rel=0.02)


def test_start_forgets_the_previous_run():
    c = Clocks()
    p = pacer(c, max_rate=30, share=0.025)
    assert run(p, c, cost_s=0.005, frames=30) == 5
    assert p.start() == 30
    assert p.shown() == 30                      # too few frames yet to judge


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        FramePacer(max_rate=10, min_rate=20)
    with pytest.raises(ValueError):
        FramePacer(min_rate=0)
