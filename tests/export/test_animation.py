"""write_animation: every format decoded again by an independent reader (PyAV for MP4 / WebM,
Pillow for GIF / WebP / APNG): frame count, size, timing, and the first and last frame against
the source (lossless formats exactly; video within a PSNR bound). Qt-free."""
from __future__ import annotations

import os

import av
import numpy as np
import pytest
from PIL import Image

from diffusion_gui.export import Cancelled, ExportError, export_frames, write_animation
from diffusion_gui.export.animation import animation_durations, pad_even, select_every

#: the least PSNR (dB) of a decoded video frame against its source, at the default quality
#: (H.264 CRF 18, VP9 CRF 30) on the smooth 27 x 33 test frames below, by channels: grey frames
#: measure 42-48 dB, colour ones 33-37 dB (yuv420p halves the chroma resolution)
VIDEO_PSNR_DB = {1: 38.0, 3: 30.0}


def _frames(n=6, h=27, w=33, c=3, seed=0):
    """Smooth, distinct frames (a moving blob on a gradient): what a denoising run looks like
    near its end, and what a video codec is made for. Odd size on purpose."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for k in range(n):
        cx, cy = w * (0.2 + 0.6 * k / max(n - 1, 1)), h / 2
        blob = 200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (h / 5) ** 2))
        base = 30 + 40 * xx / w
        chans = [base + blob, base + 0.5 * blob + 20 * yy / h, 90 - 0.3 * blob + 30 * yy / h]
        a = np.stack(chans[:c], axis=2)
        out.append(np.clip(np.rint(a), 0, 255).astype(np.uint8))
    return out


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def read_video(path):
    """Every frame as RGB uint8 [H, W, 3], and the stream's frame rate."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        rate = s.average_rate
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    return frames, rate


def read_pillow(path, fmt, mode):
    """Every stored frame converted to ``mode``, its duration (ms) and the loop count."""
    with Image.open(path) as im:
        assert im.format == fmt
        frames, durations = [], []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert(mode)).copy())
            durations.append(im.info.get("duration"))
        loop = im.info.get("loop")
    return frames, durations, loop


def _rgb(a):
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


@pytest.mark.parametrize("ext", [".mp4", ".webm"])
@pytest.mark.parametrize("c", [1, 3])
def test_video_frames_size_rate_and_psnr(tmp_path, ext, c):
    src = _frames(c=c)
    out = write_animation(tmp_path / f"run{ext}", src, fps=10, hold_first=2, hold_last=3)
    assert out == tmp_path / f"run{ext}" and os.listdir(tmp_path) == [f"run{ext}"]
    frames, rate = read_video(out)
    assert len(frames) == len(src) + 2 + 3                     # holds are repeated frames
    assert frames[0].shape == (28, 34, 3)                     # odd size padded to even
    assert float(rate) == pytest.approx(10.0)
    first, last = _rgb(src[0]), _rgb(src[-1])
    for k in (0, 1, 2):                                       # x_T held for 2 extra frames
        assert psnr(frames[k][:27, :33], first) > VIDEO_PSNR_DB[c]
    for k in (-1, -2, -3, -4):
        assert psnr(frames[k][:27, :33], last) > VIDEO_PSNR_DB[c]
    for k in range(1, len(src) - 1):                           # and the middle in order
        assert psnr(frames[k + 2][:27, :33], _rgb(src[k])) > VIDEO_PSNR_DB[c]
    # the padding repeats the edge: the extra row / column look like the last ones
    assert psnr(frames[-1][27], frames[-1][26]) > 25


@pytest.mark.parametrize("c", [1, 3])
def test_webp_and_apng_are_lossless_with_held_durations(tmp_path, c):
    src = _frames(n=5, c=c)
    for ext, fmt in ((".webp", "WEBP"), (".apng", "PNG")):
        out = write_animation(tmp_path / f"a{ext}", src, fps=20, hold_first=4, hold_last=10,
                              loop=None)
        mode = "RGB" if (c == 3 or fmt == "WEBP") else "L"
        frames, durations, loop = read_pillow(out, fmt, mode)
        assert len(frames) == 5
        for got, want in zip(frames, src):
            want = _rgb(want) if mode == "RGB" else want[:, :, 0]
            np.testing.assert_array_equal(got, want)           # exact, every frame
        assert durations == [250, 50, 50, 50, 550]             # 1 + 4 and 1 + 10 frame times
        assert loop == 1                                       # played once


def test_gif_through_write_animation_and_holds(tmp_path):
    src = _frames(n=4, c=1)
    out = write_animation(tmp_path / "a.gif", src, fps=10, hold_first=3, hold_last=5, loop=0)
    frames, durations, loop = read_pillow(out, "GIF", "L")
    assert len(frames) == 4 and durations == [400, 100, 100, 600] and loop == 0
    np.testing.assert_array_equal(frames[0], src[0][:, :, 0])   # grey GIF frames are exact
    np.testing.assert_array_equal(frames[-1], src[-1][:, :, 0])


def test_every_keeps_the_last_frame_and_captions_follow(tmp_path):
    assert select_every(10, 3) == [0, 3, 6, 9] and select_every(11, 3) == [0, 3, 6, 9, 10]
    assert select_every(1, 5) == [0]
    src = _frames(n=11, c=1)
    caps = [f"t = {k}" for k in range(11)]
    out = write_animation(tmp_path / "e.apng", src, fps=10, every=3, captions=caps, scale=2)
    frames, _, _ = read_pillow(out, "PNG", "L")
    assert len(frames) == 5
    assert frames[0].shape[0] > 2 * 27 and frames[0].shape[1] >= 2 * 33   # enlarged + a strip
    np.testing.assert_array_equal(frames[-1][:54:2, :66:2], src[10][:, :, 0])
    # the captions of the kept frames differ: the strips are not all the same
    strips = {frames[k][54:].tobytes() for k in range(5)}
    assert len(strips) == 5


def test_apng_rule_png_stays_a_filmstrip(tmp_path):
    src = _frames(n=3, c=3)
    write_animation(tmp_path / "x.png", src, fps=5, format="apng")     # forced
    with Image.open(tmp_path / "x.png") as im:
        assert im.n_frames == 3
    export_frames(src, tmp_path / "strip.png")                        # a .png: one still strip
    with Image.open(tmp_path / "strip.png") as im:
        assert getattr(im, "n_frames", 1) == 1 and im.width > 3 * 33
    export_frames(src, tmp_path / "y.mp4", fps=5)                     # by extension
    assert len(read_video(tmp_path / "y.mp4")[0]) == 3


def test_single_frame_video_and_tiny_odd_size(tmp_path):
    src = [np.full((3, 5, 1), 128, np.uint8)]
    frames, _ = read_video(write_animation(tmp_path / "one.mp4", src, fps=1, hold_last=1))
    assert len(frames) == 2 and frames[0].shape == (4, 6, 3)
    assert abs(int(frames[0][1, 1, 0]) - 128) <= 3


def test_errors_leave_nothing(tmp_path):
    src = _frames(n=3)
    with pytest.raises(ExportError, match="supported: .gif, .mp4, .webm, .webp, .apng"):
        write_animation(tmp_path / "a.avi", src, fps=5)
    with pytest.raises(ExportError, match="does not exist"):
        write_animation(tmp_path / "missing" / "a.mp4", src, fps=5)
    with pytest.raises(ValueError, match="fps"):
        write_animation(tmp_path / "a.mp4", src, fps=0)
    with pytest.raises(ValueError, match="hold_last"):
        write_animation(tmp_path / "a.mp4", src, fps=5, hold_last=-1)
    with pytest.raises(ValueError, match="quality"):
        write_animation(tmp_path / "a.mp4", src, fps=5, quality=99)
    old = tmp_path / "keep.mp4"
    old.write_bytes(b"old")
    for ext in (".mp4", ".webm", ".webp", ".apng", ".gif"):
        target = tmp_path / f"keep{ext}" if ext == ".mp4" else tmp_path / f"c{ext}"
        with pytest.raises(Cancelled):
            write_animation(target, src, fps=5, progress=lambda d, t: d < 2)
    assert old.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["keep.mp4"]            # no temporary file left


def test_progress_reports_every_frame_then_done(tmp_path):
    seen = []
    write_animation(tmp_path / "p.webm", _frames(n=4), fps=5,
                    progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_helpers():
    assert animation_durations(3, 10, 1, 2) == [200, 100, 300]
    assert animation_durations(1, 10, 1, 2) == [400]
    a = np.arange(15, dtype=np.uint8).reshape(3, 5, 1)
    p = pad_even(a)
    assert p.shape == (4, 6, 1) and (p[3] == p[2]).all() and (p[:, 5] == p[:, 4]).all()
    assert pad_even(p) is p
