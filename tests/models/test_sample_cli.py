"""``diffusion-gui sample`` on tiny random checkpoints: outputs, samplers, GIF, and bad input.

Most runs call :func:`diffusion_gui.cli.main` in-process (importing diffusers once); one test runs
the real entry point in a subprocess.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from diffusion_gui.cli import main

T = 20


@pytest.fixture(scope="module")
def models(checkpoints):
    return {(layout, c, s): checkpoints(size=s, channels=c, timesteps=T, layout=layout)
            for layout, c, s in [("flat", 1, 16), ("pipeline", 3, 32), ("flat", 3, 64),
                                 ("pipeline", 1, 64)]}


def _sample(capsys, model, out, *args) -> tuple[int, str, str]:
    code = main(["sample", "--model", str(model), "-o", str(out), *args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _npz(path):
    with np.load(path) as z:
        assert list(z.keys()) == ["images"]
        return z["images"]


@pytest.mark.parametrize("key", [("flat", 1, 16), ("pipeline", 3, 32), ("flat", 3, 64),
                                 ("pipeline", 1, 64)])
def test_npz_and_png(models, tmp_path, capsys, key):
    _, c, s = key
    b = 4 if s < 64 else 2
    code, out, _ = _sample(capsys, models[key], tmp_path / "x.npz", "--batch", str(b), "--steps", "5")
    assert code == 0 and "wrote" in out
    imgs = _npz(tmp_path / "x.npz")
    assert imgs.dtype == np.uint8 and imgs.shape == (b, s, s, c)
    assert imgs.std() > 0                                    # not a blank image
    code, _, _ = _sample(capsys, models[key], tmp_path / "x.png", "--batch", str(b), "--steps", "5")
    assert code == 0
    with Image.open(tmp_path / "x.png") as im:
        cols = int(np.ceil(np.sqrt(b)))
        rows = int(np.ceil(b / cols))
        w, h = cols * s + cols - 1, rows * s + rows - 1
        k = max(1, 512 // max(w, h))                         # enlarged to about 512 px, crisp
        assert im.size == (k * w, k * h) and max(im.size) > 512 - max(w, h)
        assert im.mode == ("L" if c == 1 else "RGB")
        grid = np.asarray(im)[::k, ::k]
    # the PNG grid holds the same images as the NPZ (same seed)
    first = grid[:s, :s] if c == 3 else grid[:s, :s, None]
    np.testing.assert_array_equal(first, imgs[0])


def test_same_seed_same_images_other_seed_other_images(models, tmp_path, capsys):
    m = models[("flat", 1, 16)]
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert _sample(capsys, m, tmp_path / f"{name}.npz", "--batch", "3", "--seed", str(seed))[0] == 0
    a, b, c = (_npz(tmp_path / f"{n}.npz") for n in "abc")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cli_equals_make_sampler(models, tmp_path, capsys):
    """The CLI is a thin shell around make_sampler, which the GUI iterates too."""
    from diffusion_gui.core import run
    from diffusion_gui.core.images import to_uint8
    from diffusion_gui.models.loader import load_model
    from diffusion_gui.sessions.sampling import make_sampler
    m = models[("pipeline", 3, 32)]
    assert _sample(capsys, m, tmp_path / "x.npz", "--batch", "2", "--seed", "9", "--sampler", "ddim",
                   "--steps", "4", "--eta", "0.3")[0] == 0
    gen, shape = make_sampler(load_model(str(m)), sampler="ddim", steps=4, eta=0.3, batch=2, seed=9)
    assert shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(_npz(tmp_path / "x.npz"), to_uint8(run(gen)))


@pytest.mark.parametrize("args", [["--sampler", "ddim", "--steps", "5"],
                                  ["--sampler", "ddim", "--steps", "5", "--eta", "1.0"],
                                  ["--sampler", "ddpm", "--steps", "7"],
                                  ["--variance", "fixed_large"],
                                  ["--no-clip"]])
def test_sampler_options(models, tmp_path, capsys, args):
    m = models[("flat", 1, 16)]
    assert _sample(capsys, m, tmp_path / "ref.npz", "--batch", "2")[0] == 0
    assert _sample(capsys, m, tmp_path / "x.npz", "--batch", "2", *args)[0] == 0
    x = _npz(tmp_path / "x.npz")
    assert x.shape == (2, 16, 16, 1)
    assert not np.array_equal(x, _npz(tmp_path / "ref.npz"))   # the option changed something


def test_gif(models, tmp_path, capsys):
    m = models[("pipeline", 3, 32)]
    gif = tmp_path / "traj.gif"
    code, out, _ = _sample(capsys, m, tmp_path / "x.png", "--batch", "4", "--sampler", "ddim",
                           "--steps", "10", "--gif", str(gif), "--frames", "6", "--preview", "both")
    assert code == 0 and "6 frames" in out
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 6
        assert im.size[0] > 2 * (2 * 32 + 1)                   # x_t and x0_pred side by side


@pytest.mark.parametrize("args, text", [
    (["-o", "{tmp}/x.txt"], "must end in .png or .npz"),
    (["-o", "{tmp}/x.npz", "--gif", "{tmp}/x.avi"], "must end in .gif"),
    (["-o", "{tmp}/x.npz", "--steps", "0"], "--steps must be in 1..20"),
    (["-o", "{tmp}/x.npz", "--steps", "21"], "--steps must be in 1..20"),
    (["-o", "{tmp}/x.npz", "--batch", "0"], "--batch must be in"),
    (["-o", "{tmp}/x.npz", "--model", "{tmp}/no-such-model"], "no such built-in model"),
    (["-o", "{tmp}/x.npz", "--model", "nobody/nothing"], "not in the local Hugging Face cache"),
    (["-o", "{tmp}/missing-folder/x.npz"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(models, tmp_path, capsys, args, text):
    m = models[("flat", 1, 16)]
    argv = ["sample", "--model", str(m)] + [a.format(tmp=tmp_path) for a in args]
    code = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "it/s]" not in ln and "step/s]" not in ln
             and "%|" not in ln]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("diffusion-gui: error:") and text in lines[0], err
    assert not list(tmp_path.glob("x.*"))                      # nothing half-written


def test_a_broken_model_exits_2(models, tmp_path, capsys):
    import shutil
    d = tmp_path / "broken"
    shutil.copytree(models[("flat", 1, 16)], d)
    (d / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 100)
    code = main(["sample", "--model", str(d), "-o", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "corrupt or truncated" in err[0]


def test_the_real_entry_point(models, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    m = models[("flat", 1, 16)]
    ok = subprocess.run([sys.executable, "-m", "diffusion_gui", "sample", "--model", str(m),
                         "--batch", "2", "--steps", "3", "-o", str(tmp_path / "x.npz")],
                        capture_output=True, text=True, env=env, timeout=240)
    assert ok.returncode == 0, ok.stderr
    assert _npz(tmp_path / "x.npz").shape == (2, 16, 16, 1)
    bad = subprocess.run([sys.executable, "-m", "diffusion_gui", "sample", "--model", str(m),
                          "-o", str(tmp_path / "x.jpg")], capture_output=True, text=True, env=env,
                         timeout=240)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"diffusion-gui: error: {tmp_path / 'x.jpg'}: -o must end in .png or .npz"]


def test_argparse_errors_are_one_line(capsys):
    from diffusion_gui.cli import main
    with pytest.raises(SystemExit) as e:
        main(["sample", "--sampler", "xyz", "-o", "x.png"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice" in err[0]


def test_png_grid_size_follows_size(models, tmp_path, capsys):
    m = models[("flat", 1, 16)]
    code, out, _ = _sample(capsys, m, tmp_path / "x.png", "--batch", "16", "--steps", "2",
                           "--size", "200")
    assert code == 0 and "67x67" not in out
    with Image.open(tmp_path / "x.png") as im:
        assert im.size == (134, 134)                          # the 67 px grid, 2x (not over 200)


def test_progress_lines_when_stderr_is_not_a_terminal(monkeypatch):
    import io

    import diffusion_gui.commands.progress  # noqa: F401 - the module patched below
    from diffusion_gui import commands
    monkeypatch.setattr(commands.progress, "LOG_INTERVAL_S", 0.0)
    buf = io.StringIO()                                       # not a TTY
    with commands.progress._Progress("sampling", "steps", 10, stream=buf) as bar:
        for k in range(1, 11):
            bar.set(k)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("sampling: 10/10 steps (100 %)")
    assert "\r" not in buf.getvalue() and "left" in lines[0]


def test_ddim_clip_eps_raw_and_clipped_differ_on_a_clipping_model(models, tmp_path, capsys):
    m = models[("flat", 1, 16)]
    runs = {}
    for how in ("clipped", "raw"):
        code, _, err = _sample(capsys, m, tmp_path / f"{how}.npz", "--sampler", "ddim",
                               "--steps", "10", "--batch", "2", "--ddim-clip-eps", how)
        assert code == 0, err
        runs[how] = _npz(tmp_path / f"{how}.npz")
    assert (runs["clipped"] != runs["raw"]).any()
    with pytest.raises(SystemExit) as e:
        _sample(capsys, m, tmp_path / "x.npz", "--ddim-clip-eps", "sometimes")
    assert e.value.code == 2 and "--ddim-clip-eps" in capsys.readouterr().err
