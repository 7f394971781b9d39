"""write_gif: frames, timing, looping, enlargement, captions, palettes; checked by reading back."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from gif_files import read_gif
from PIL import Image

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
from diffusion_gui.core.images import enlarge, load_image, to_uint8
from diffusion_gui.export import forward_frames, frame_durations, timeline_steps, write_gif

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "images"


_read_gif = partial(read_gif, mode='RGB')


def _distinct_frames(n=5, h=6, w=8, c=3):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, c), dtype=np.uint8) for _ in range(n)]


def test_frames_size_loop_and_durations(tmp_path):
    p = tmp_path / "a.gif"
    out = write_gif(_distinct_frames(5), p, fps=10, hold_last_s=1.5)
    assert out == p
    frames, durations, info = _read_gif(p)
    assert len(frames) == 5 and frames[0].shape == (6, 8, 3)
    assert info["loop"] == 0
    assert durations == [100, 100, 100, 100, 1600]
    assert durations == frame_durations(5, 10, 1.5)


def test_duration_rounding_and_loop_none(tmp_path):
    assert frame_durations(3, fps=12, hold_last_s=0) == [80, 80, 80]
    assert frame_durations(2, fps=1000, hold_last_s=0.25) == [20, 270]   # >= 20 ms
    p = tmp_path / "once.gif"
    write_gif(_distinct_frames(3), p, loop=None)
    assert "loop" not in Image.open(p).info
    with pytest.raises(ValueError):
        frame_durations(3, fps=0)


def test_grey_frames_are_exact_and_scaled_crisply(tmp_path):
    frames = [f[:, :, :1] for f in _distinct_frames(4)]
    p = tmp_path / "grey.gif"
    write_gif(frames, p, scale=3)
    got, _, _ = _read_gif(p)
    assert got[0].shape == (18, 24, 3)
    for g, f in zip(got, frames):
        assert np.array_equal(g[:, :, 0], enlarge(f, 3)[:, :, 0])


def test_size_picks_integer_factor(tmp_path):
    p = tmp_path / "sized.gif"
    write_gif(_distinct_frames(2, 32, 20), p, size=100)     # 100 // 32 = 3
    assert Image.open(p).size == (60, 96)
    with pytest.raises(ValueError):
        write_gif(_distinct_frames(2), tmp_path / "x.gif", scale=2, size=100)


def test_captions_add_a_legible_strip(tmp_path):
    frames = _distinct_frames(3, 64, 64)
    caps = ["t = 0   abar_t = 1.0000", "t = 500   abar_t = 0.0795", None]
    p = tmp_path / "cap.gif"
    write_gif(frames, p, scale=4, captions=caps)
    got, _, _ = _read_gif(p)
    assert len(got) == 3
    h, w, _ = got[0].shape
    assert w == 256 and h > 256 + 10                          # the strip is below the picture
    strip = [g[256:].astype(int).sum(2) for g in got]
    assert (strip[0] < 200).sum() > 30                        # dark text pixels
    assert (strip[2] < 200).sum() == 0                        # no caption: plain white
    assert np.abs(got[0][:256].astype(int) - enlarge(frames[0], 4)).mean() < 25


def test_narrow_frames_get_a_wider_canvas_for_text(tmp_path):
    p = tmp_path / "narrow.gif"
    write_gif(_distinct_frames(2, 8, 8), p, captions=["t = 1000   abar_t = 0.0000"] * 2)
    w, h = Image.open(p).size
    assert w > 60 and h > 8 + 10


@pytest.mark.parametrize("palette", ["adaptive", "global"])
def test_forward_timeline_first_is_x0_last_is_xT(tmp_path, palette):
    T = 1000
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", timesteps=T))
    x0 = load_image(ASSETS / "chelsea.jpg", size=32)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    ts = timeline_steps(T, 8, "dense_start")
    out = list(forward_frames(x0, d, noise, ts, captions=False))
    p = tmp_path / f"forward_{palette}.gif"
    write_gif([f for _, f, _ in out], p, scale=2, palette=palette)
    got, durations, info = _read_gif(p)
    assert len(got) == len(ts) == 8 and info["loop"] == 0
    assert durations[-1] > durations[0]

    first_ref = enlarge(to_uint8(x0), 2).astype(int)
    x_T = d.q_sample(x0[None], T - 1, noise[None])[0]
    last_ref = enlarge(to_uint8(x_T), 2).astype(int)
    assert np.abs(got[0].astype(int) - first_ref).mean() < 6          # palette tolerance
    # Noise quantised to 256 colours and dithered: per pixel it wanders, 4x4 block means hold.
    assert np.abs(got[-1].astype(int) - last_ref).mean() < 25

    def blocks(a):
        return a.reshape(16, 4, 16, 4, 3).mean((1, 3))
    assert np.abs(blocks(got[-1]) - blocks(last_ref)).mean() < 8
    # ... and the last frame is noise, not the picture
    assert np.abs(got[-1].astype(int) - first_ref).mean() > 40


def test_progress_is_reported(tmp_path):
    calls = []
    write_gif(_distinct_frames(4), tmp_path / "p.gif", progress=lambda d, n: calls.append((d, n)))
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)


def test_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="same size"):
        write_gif([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)],
                  tmp_path / "x.gif")
    with pytest.raises(ValueError, match="uint8"):
        write_gif([np.zeros((4, 4, 3), np.float32)], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="no frames"):
        write_gif([], tmp_path / "x.gif")
    assert list(tmp_path.iterdir()) == []
