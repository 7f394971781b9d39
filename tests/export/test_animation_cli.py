"""``sample --animation`` (alias ``--gif``) and ``forward -o`` write any animation format by
extension, with --fps, --hold-first / --hold-last and --every. Qt-free."""
from __future__ import annotations

import os

import av
import numpy as np
import pytest
from PIL import Image

from diffusion_gui.cli import main

T = 20


@pytest.fixture(scope="module")
def model(checkpoints):
    return str(checkpoints(size=16, channels=1, timesteps=T))


def _video_frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_sample_animation_mp4_every_and_holds(model, tmp_path, capsys):
    out = tmp_path / "run.mp4"
    assert main(["sample", "--model", model, "--batch", "1", "--seed", "1", "-o",
                 str(tmp_path / "x.png"), "--animation", str(out), "--every", "3",
                 "--hold-first", "2", "--hold-last", "4", "--fps", "8"]) == 0
    kept = len(range(0, T + 1, 3)) + (T % 3 != 0)     # steps T..0 visited: 21, every 3rd + last
    assert f"{kept} frames" in capsys.readouterr().out
    frames = _video_frames(out)
    assert len(frames) == kept + 2 + 4
    assert frames[0].shape == (16, 16, 3)
    final = np.asarray(Image.open(tmp_path / "x.png").convert("L").resize((16, 16),
                                                                            Image.NEAREST))
    assert np.abs(frames[-1][:, :, 0].astype(int) - final.astype(int)).mean() < 6
    assert sorted(os.listdir(tmp_path)) == ["run.mp4", "x.png"]


def test_gif_flag_still_works_and_takes_any_format(model, tmp_path, capsys):
    for name in ("old.gif", "new.webp"):
        out = tmp_path / name
        assert main(["sample", "--model", model, "--batch", "2", "--steps", "4", "--sampler",
                     "ddim", "-o", str(tmp_path / "x.npz"), "--gif", str(out), "--frames", "5",
                     "--fps", "10", "--hold-last", "0"]) == 0
        with Image.open(out) as im:
            assert im.n_frames == 5
            im.seek(4)
            im.load()                                    # WebP fills in info on load
            assert im.info["duration"] == 100            # no hold: 1000 / 10
    capsys.readouterr()
    assert main(["sample", "--model", model, "-o", str(tmp_path / "y.npz"),
                 "--gif", str(tmp_path / "t.mov")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--animation must end in .gif, .mp4, .webm, .webp" in err
    assert main(["sample", "--model", model, "-o", str(tmp_path / "y.npz"), "--every", "0",
                 "--animation", str(tmp_path / "t.gif")]) == 2
    assert "--every must be at least 1" in capsys.readouterr().err


def test_forward_to_webm_and_apng(tmp_path, capsys):
    img = tmp_path / "in.png"
    Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1)), "L").save(img)
    for name in ("f.webm", "f.apng"):
        out = tmp_path / name
        assert main(["forward", str(img), "-o", str(out), "--frames", "6", "--size", "25",
                     "--fps", "6", "--hold-first", "1", "--hold-last", "2"]) == 0
        if name.endswith(".webm"):
            frames = _video_frames(out)
            assert len(frames) == 6 + 1 + 2 and frames[0].shape == (20, 26, 3)   # 25 -> even
            assert np.abs(frames[0][:, :25, 0].astype(int)
                          - np.asarray(Image.open(img)).astype(int)).mean() < 3    # x_0 first
        else:
            with Image.open(out) as im:
                assert im.format == "PNG" and im.n_frames == 6
                np.testing.assert_array_equal(np.asarray(im.convert("L")), np.asarray(Image.open(img)))
                assert im.info["duration"] == pytest.approx(2 * 1000 / 6, abs=1)
    assert main(["forward", str(img), "-o", str(tmp_path / "s.png"), "--frames", "3",
                 "--size", "25"]) == 0                        # a .png is still a filmstrip
    with Image.open(tmp_path / "s.png") as im:
        assert getattr(im, "n_frames", 1) == 1 and im.width > 3 * 25
