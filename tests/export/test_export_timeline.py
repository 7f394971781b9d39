"""timeline_steps, forward_frames (q(x_t | x_0) frames) and reverse_frames (trajectory -> frames)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
from diffusion_gui.core.images import tile, to_uint8
from diffusion_gui.core.sampling import StepOutput
from diffusion_gui.export import forward_frames, reverse_frames, timeline_steps


@settings(max_examples=100, deadline=None)
@given(T=st.integers(1, 2000), n=st.integers(2, 300), spacing=st.sampled_from(["even", "dense_start"]))
def test_timeline_steps_properties(T, n, spacing):
    ts = timeline_steps(T, n, spacing)
    assert ts[0] == 0 and ts[-1] == T
    assert len(ts) == min(n, T + 1)
    assert all(a < b for a, b in zip(ts, ts[1:]))


def test_timeline_values():
    assert timeline_steps(1000, 5) == [0, 250, 500, 750, 1000]
    dense = timeline_steps(1000, 11, "dense_start")
    assert dense == sorted(set(dense)) and dense[0] == 0 and dense[-1] == 1000
    assert sum(t < 250 for t in dense) > sum(t < 250 for t in timeline_steps(1000, 11))
    assert timeline_steps(3, 10) == [0, 1, 2, 3]
    assert timeline_steps(1000, 20, "dense_start")[:4] == [0, 3, 11, 25]
    with pytest.raises(ValueError):
        timeline_steps(1000, 1)
    with pytest.raises(ValueError):
        timeline_steps(1000, 5, "log")


def test_forward_frames_match_q_sample():
    T = 100
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", timesteps=T))
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(3, 8, 8, generator=g)
    out = list(forward_frames(x0, d, noise, [0, 1, 50, T]))
    assert [t for t, _, _ in out] == [0, 1, 50, T]
    assert np.array_equal(out[0][1], to_uint8(x0))                          # t = 0 is x0
    for t, frame, cap in out[1:]:
        ref = to_uint8(d.q_sample(x0[None], t - 1, noise[None])[0])          # index i = t - 1
        assert np.array_equal(frame, ref) and frame.shape == (8, 8, 3)
        abar = float(d.schedule.alpha_bars[t - 1])
        assert cap == f"t = {t}   abar_t = {abar:.4f}"
    assert out[0][2] == "t = 0   abar_t = 1.0000"
    assert all(c is None for *_, c in forward_frames(x0, d, noise, [0, 5], captions=False))
    with pytest.raises(ValueError):
        list(forward_frames(x0, d, noise, [T + 1]))


def test_reverse_frames_layouts():
    B, C, H, W = 4, 1, 5, 6
    g = torch.Generator().manual_seed(0)
    steps = [StepOutput(t, torch.rand(B, C, H, W, generator=g) * 2 - 1,
                        torch.rand(B, C, H, W, generator=g) * 2 - 1, k, 3)
             for k, t in enumerate([30, 20, 10, 0])]
    xt = list(reverse_frames(steps, "xt"))
    assert [t for t, _, _ in xt] == [30, 20, 10, 0] and xt[0][2] == "t = 30"
    assert xt[0][1].shape == (2 * H + 1, 2 * W + 1, 1)                      # 2 x 2 grid
    assert np.array_equal(xt[1][1], tile(to_uint8(steps[1].x_t)))
    x0 = list(reverse_frames(steps, "x0", ncols=4, pad=0))
    assert np.array_equal(x0[2][1], tile(to_uint8(steps[2].x0_pred), ncols=4, pad=0))
    both = list(reverse_frames(steps, "both"))
    f = both[0][1]
    assert f.shape[0] == 2 * H + 1 and f.shape[1] > 2 * (2 * W + 1)
    assert np.array_equal(f[:, :2 * W + 1], xt[0][1])
    assert np.array_equal(f[:, -(2 * W + 1):], tile(to_uint8(steps[0].x0_pred)))


def test_reverse_frames_from_recorded_uint8():
    rec = [(t, np.full((2, 4, 4, 3), t, np.uint8), np.full((2, 4, 4, 3), 255 - t, np.uint8))
           for t in (9, 5, 0)]
    frames = list(reverse_frames(rec, "both", captions=False))
    assert len(frames) == 3 and frames[0][2] is None
    assert frames[0][1][0, 0, 0] == 9 and frames[0][1][0, -1, 0] == 255 - 9
    dicts = [{"t": 3, "x_t": np.zeros((1, 4, 4, 1), np.uint8)}]
    assert list(reverse_frames(dicts, "xt"))[0][1].shape == (4, 4, 1)
    with pytest.raises(ValueError, match="x0_pred"):
        list(reverse_frames(dicts, "x0"))
