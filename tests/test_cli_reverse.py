"""``diffusion-gui compare``, ``invert`` and ``interpolate`` end to end on a tiny checkpoint: the
files they write, the figures of ``--json`` (the same numbers as the sessions compute), and one
line plus exit status 2 for bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from diffusion_gui.cli import main
from diffusion_gui.sessions.compare import CompareGrid, RowSpec, grid_image, without_ticks
from diffusion_gui.sessions.inversion import heldout_digits, invert_reconstruct

T = 20


@pytest.fixture(scope="module")
def ckpt(checkpoints):
    return checkpoints(timesteps=T)


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model(timesteps=T)


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_compare_png_is_the_sessions_grid(ckpt, model, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["compare", "--model", str(ckpt), "--rows", "ddpm,ddim:4:0", "--batch", "3",
                 "--seed", "2", "-o", str(out), "--json"]) == 0
    figs = _json(capsys)
    assert [r["row"] for r in figs["rows"]] == ["DDPM, all 20 steps", "DDIM, 4 steps, η = 0"]
    assert [r["steps"] for r in figs["rows"]] == [20, 4] and figs["rows"][0]["confident_share"] is None
    g = CompareGrid([RowSpec("ddpm"), RowSpec("ddim", 4, 0.0)], batch=3, seed=2)
    list(without_ticks(g.run(model, judge=False)))
    got = np.asarray(Image.open(out))
    want = grid_image(g, 0)
    assert got.shape[:2] == want.shape[:2]
    # the pictures are identical; only the captions' timings may differ
    h = g.results[0].final.shape[1] * max(1, 96 // 16)
    assert np.array_equal(got[:h, ..., None] if got.ndim == 2 else got[:h], want[:h])


def test_compare_gif(ckpt, tmp_path):
    out = tmp_path / "grid.gif"
    assert main(["compare", "--model", str(ckpt), "--rows", "ddim:3", "--batch", "2", "-o", str(out),
                 "--frames", "5"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 5


def test_invert_json_and_sheet(ckpt, model, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["invert", "--model", str(ckpt), "--digits", "2", "--steps", "2,5", "-o", str(out),
                 "--json"]) == 0
    figs = _json(capsys)
    assert [r["steps"] for r in figs["reconstructions"]] == [2, 5]
    want = invert_reconstruct(model, heldout_digits(model, 2), 5).figures()
    assert figs["reconstructions"][1]["psnr_db"] == pytest.approx(want["psnr_db"], abs=1e-3)
    assert out.exists() and Image.open(out).size[1] > 3 * 16


def test_invert_an_image_to_a_round_trip_gif(ckpt, tmp_path):
    img = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(img)
    out = tmp_path / "trip.gif"
    assert main(["invert", str(img), "--model", str(ckpt), "--steps", "4", "-o", str(out),
                 "--frames", "6"]) == 0
    with Image.open(out) as im:
        assert im.n_frames >= 4


def test_interpolate(ckpt, tmp_path, capsys):
    out = tmp_path / "strip.png"
    assert main(["interpolate", "digit:0", "digit:3", "--model", str(ckpt), "--steps", "4",
                 "--frames", "5", "-o", str(out), "--json"]) == 0
    figs = _json(capsys)
    assert figs["frames"] == 5 and 0 < figs["angle_deg"] < 180
    assert Image.open(out).size[0] > 5 * 16
    gif = tmp_path / "path.gif"
    assert main(["interpolate", "digit:0", "digit:3", "--model", str(ckpt), "--steps", "4",
                 "--frames", "4", "-o", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 6            # there and back: 0 1 2 3 2 1


@pytest.mark.parametrize("argv, flag", [
    (["compare", "--rows", "plms", "-o", "x.png"], "--rows"),
    (["compare", "-o", "x.jpg"], "-o"),
    (["compare", "--batch", "0", "-o", "x.png"], "--batch"),
    (["invert", "-o", "x.png"], "IMAGE or --digits"),
    (["invert", "--digits", "2", "--steps", "2,x", "-o", "x.png"], "--steps"),
    (["invert", "--digits", "2", "--steps", "99", "-o", "x.png"], "--steps"),
    (["interpolate", "digit:0", "digit:999", "-o", "x.png"], "B"),
    (["interpolate", "digit:0", "digit:1", "--steps", "4", "--frames", "1", "-o", "x.png"], "--frames"),
])
def test_bad_input_is_one_line_and_exit_2(ckpt, tmp_path, capsys, argv, flag):
    argv = [a if a != "x.png" and a != "x.jpg" else str(tmp_path / a) for a in argv]
    assert main(argv[:1] + ["--model", str(ckpt)] + argv[1:]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0], err
    assert not list(tmp_path.glob("x.*"))
