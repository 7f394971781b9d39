"""``diffusion-gui forward ... -o OUT.gif|.png|FOLDER`` and ``diffusion-gui sample ... --gif``
with ``--frames``, ``--fps``, ``--size``, ``--caption``: the files read back with Pillow (frame
count, size, loop, per-frame durations, first and last frames), and bad targets (exit code 2,
one line on stderr, nothing written).

Grey images keep GIF frames exact (a grey palette), so first / last frames are compared pixel
for pixel with the core API. ``sample`` runs a tiny random UNet (tests/tiny_models.py).
"""
from __future__ import annotations

import os
from functools import partial

import numpy as np
import pytest
import torch
from gif_files import read_gif
from PIL import Image

from diffusion_gui.cli import main
from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
from diffusion_gui.core.images import load_image, tile, to_uint8
from diffusion_gui.export import frame_durations

T_SAMPLE = 20


_read_gif = partial(read_gif, mode='L')


def _enlarge(a, k):
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1)


def _one_line_error(capsys, text):
    err = [ln for ln in capsys.readouterr().err.splitlines()
           if ln.strip() and "%|" not in ln and "step/s]" not in ln and "it/s]" not in ln]
    assert len(err) == 1 and err[0].startswith("diffusion-gui: error:") and text in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def grey_image(tmp_path_factory):
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:30, 0:40]
    a = (xx * 6 + rng.integers(-20, 20, (30, 40))).clip(0, 255).astype(np.uint8)
    p = tmp_path_factory.mktemp("img") / "grey.png"
    Image.fromarray(a, "L").save(p)
    return p


def _forward_ref(image, size, seed=0, T=1000, schedule="linear"):
    x0 = load_image(image, max_side=size)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    d = GaussianDiffusion(NoiseSchedule.from_name(schedule, T))

    def xt(t):
        return to_uint8(x0 if t == 0 else d.q_sample(x0[None], t - 1, noise[None])[0])

    return xt


# ----------------------------------------------------------------------------- forward
def test_forward_gif_frames_fps_size_first_last(grey_image, tmp_path, capsys):
    out = tmp_path / "fwd.gif"
    code = main(["forward", str(grey_image), "-o", str(out), "--frames", "10", "--fps", "5",
                 "--size", "32", "--seed", "3"])
    assert code == 0 and "10 frame" in capsys.readouterr().out
    frames, durations, info = _read_gif(out)
    assert len(frames) == 10 and frames[0].shape == (24, 32)         # long side 32
    assert info["loop"] == 0
    assert durations == frame_durations(10, 5, 1.0) == [200] * 9 + [1200]
    xt = _forward_ref(grey_image, 32, seed=3)
    np.testing.assert_array_equal(frames[0], xt(0)[:, :, 0])          # x_0
    np.testing.assert_array_equal(frames[-1], xt(1000)[:, :, 0])      # x_T
    assert sorted(os.listdir(tmp_path)) == ["fwd.gif"]


def test_forward_gif_with_captions(grey_image, tmp_path, capsys):
    out = tmp_path / "cap.gif"
    assert main(["forward", str(grey_image), "-o", str(out), "--frames", "6", "--size", "64",
                 "--caption", "--spacing", "even"]) == 0
    frames, durations, _ = _read_gif(out)
    assert len(frames) == 6 and durations[0] == frame_durations(1, 12, 0)[0]
    h, w = frames[0].shape                       # 40 x 30: --size shrinks, never enlarges
    assert h > 30 and w >= 40                                        # a caption strip below
    ox = (w - 40) // 2                           # the canvas is widened for the caption text
    xt = _forward_ref(grey_image, 64)
    np.testing.assert_array_equal(frames[0][:30, ox:ox + 40], xt(0)[:, :, 0])
    strip = frames[0][30:]
    assert strip.min() < 60 and np.median(strip) == 255              # black text on white


def test_forward_single_png_and_png_sequence(grey_image, tmp_path, capsys):
    xt = _forward_ref(grey_image, 32)
    assert main(["forward", str(grey_image), "-o", str(tmp_path / "t300.png"), "--t", "300",
                 "--size", "32"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "t300.png")), xt(300)[:, :, 0])
    assert main(["forward", str(grey_image), "-o", str(tmp_path / "seq"), "--frames", "5",
                 "--size", "32", "--spacing", "even"]) == 0
    names = sorted(os.listdir(tmp_path / "seq"))
    assert names == [f"frame_{k:04d}.png" for k in range(5)]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "seq" / names[2])),
                                  xt(500)[:, :, 0])


@pytest.mark.parametrize("target, text", [
    ("missing/x.gif", "does not exist"),
    ("x.jpg", "unknown file type '.jpg'"),
    ("afile/x.gif", "is a file, not a folder"),
])
def test_forward_bad_targets_exit_2(grey_image, tmp_path, capsys, target, text):
    (tmp_path / "afile").write_text("not a folder")
    code = main(["forward", str(grey_image), "-o", str(tmp_path / target), "--frames", "4",
                 "--size", "16"])
    assert code == 2
    _one_line_error(capsys, text)
    assert sorted(os.listdir(tmp_path)) == ["afile"]                  # nothing written


def test_forward_existing_target_survives_a_failed_write(grey_image, tmp_path, capsys,
                                                         monkeypatch):
    import errno

    import diffusion_gui.export.atomic as atomic_mod
    out = tmp_path / "keep.gif"
    out.write_bytes(b"old gif" * 50)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_mod.os, "fsync", full)
    assert main(["forward", str(grey_image), "-o", str(out), "--frames", "4", "--size", "16"]) == 2
    _one_line_error(capsys, "disk is full")
    assert out.read_bytes() == b"old gif" * 50 and os.listdir(tmp_path) == ["keep.gif"]


@pytest.mark.parametrize("args", [["--frames", "1"], ["--fps", "0"]])
def test_forward_bad_numbers_exit_2(grey_image, tmp_path, capsys, args):
    assert main(["forward", str(grey_image), "-o", str(tmp_path / "x.gif"), "--size", "16",
                 *args]) == 2


# ----------------------------------------------------------------------------- sample --gif
@pytest.fixture(scope="module")
def tiny_model(checkpoints):
    return checkpoints(size=16, channels=1, timesteps=T_SAMPLE)


def test_sample_gif_frames_fps_size_caption(tiny_model, tmp_path, capsys):
    gif, png = tmp_path / "traj.gif", tmp_path / "final.png"
    code = main(["sample", "--model", str(tiny_model), "--batch", "1", "--seed", "4", "-o",
                 str(png), "--gif", str(gif), "--frames", "6", "--fps", "10", "--size", "64"])
    assert code == 0 and "6 frames" in capsys.readouterr().out
    frames, durations, info = _read_gif(gif)
    assert len(frames) == 6 and frames[0].shape == (64, 64)          # 16 px x 4, crisp
    assert info["loop"] == 0 and durations == [100] * 5 + [1100]
    final = np.asarray(Image.open(png))                              # --size 64 enlarges it too
    assert final.shape == (64, 64)
    np.testing.assert_array_equal(frames[-1], final)                 # last frame = x_0
    # first frame = x_T, the sampler's first x_t for the same seed
    from diffusion_gui.commands import make_sampler
    from diffusion_gui.models.loader import load_model
    gen, _ = make_sampler(load_model(str(tiny_model)), batch=1, seed=4)
    first = next(gen)
    gen.close()
    assert first.t == T_SAMPLE
    np.testing.assert_array_equal(frames[0], _enlarge(tile(to_uint8(first.x_t)), 4)[:, :, 0])
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 10

    # --caption: a strip under each frame, t in it; --preview both: x_t and x0_pred side by side
    gif2 = tmp_path / "both.gif"
    assert main(["sample", "--model", str(tiny_model), "--batch", "4", "--seed", "4", "-o",
                 str(tmp_path / "f2.png"), "--gif", str(gif2), "--frames", "4", "--caption",
                 "--preview", "both"]) == 0
    frames2, _, _ = _read_gif(gif2)
    assert len(frames2) == 4
    assert frames2[0].shape[0] > 33 and frames2[0].shape[1] > 2 * 33   # caption, two grids


def test_sample_gif_bad_target_exits_2(tiny_model, tmp_path, capsys):
    code = main(["sample", "--model", str(tiny_model), "--batch", "1", "--steps", "3", "-o",
                 str(tmp_path / "x.png"), "--gif", str(tmp_path / "missing" / "t.gif")])
    assert code == 2
    _one_line_error(capsys, "does not exist")
    assert not (tmp_path / "missing").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []   # no temporary file
    code = main(["sample", "--model", str(tiny_model), "-o", str(tmp_path / "y.png"),
                 "--gif", str(tmp_path / "t.avi")])
    assert code == 2
    _one_line_error(capsys, "must end in .gif")


def test_sample_animation_over_the_record_budget_is_refused_before_sampling(tiny_model, tmp_path,
                                                                             capsys):
    """Every step of a batch of 16 at 16 px, both previews: 21 frames of 9 kB fit a 1 MB budget;
    the same run at batch 1024 (0.6 MB a frame) is refused before it samples, writing nothing."""
    args = ["sample", "--model", str(tiny_model), "--sampler", "ddim", "--steps", "20", "--every",
            "1", "--preview", "both", "--record-budget", "1"]
    assert main([*args, "--batch", "16", "-o", str(tmp_path / "a.png"), "--gif",
                 str(tmp_path / "a.gif")]) == 0
    capsys.readouterr()
    assert main([*args, "--batch", "1024", "-o", str(tmp_path / "b.png"), "--gif",
                 str(tmp_path / "b.gif")]) == 2
    _one_line_error(capsys, "--record-budget is 1 MB: 21 frames of 0.6 MB would take ≈ 12 MB; "
                            "keep at most 2 frames")
    assert not (tmp_path / "b.gif").exists() and not (tmp_path / "b.png").exists()
