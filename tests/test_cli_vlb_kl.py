"""``diffusion-gui vlb`` and ``diffusion-gui kl`` end to end, on a tiny random checkpoint.

vlb: the CSV (t, vb_bpd, eps_mse, x0_mse) equals compute_vlb's arrays for the same images and
seed; --json prints a summary that parses; --stride; --digits N and an IMAGE; bad input exits 2
with one line on stderr and writes nothing. kl: both KLs printed; --json parses.
Timesteps in the CSV are the paper's t = i + 1.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from diffusion_gui.cli import main
from diffusion_gui.core.vlb import compute_vlb, evaluated_indices
from diffusion_gui.sessions.losses import vlb_images

T = 50


@pytest.fixture(scope="module")
def ckpt(checkpoints):
    """The tiny checkpoint of the issue: UNet2DModel 16 px, 1 channel, (8, 16), T = 50."""
    return checkpoints(timesteps=T)


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model(timesteps=T)


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    from PIL import Image
    p = tmp_path_factory.mktemp("img") / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(p)
    return p


def _csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(v) for v in r] for r in rows[1:]])


def _reference(model, x0, stride, seed=0):
    return compute_vlb(model, model.diffusion, x0, stride=stride,
                       generator=torch.Generator().manual_seed(seed))


def test_vlb_digits_json_matches_compute_vlb(ckpt, model, tmp_path, capsys):
    out = tmp_path / "terms.csv"
    rc = main(["vlb", "--model", str(ckpt), "--digits", "3", "--stride", "5", "-o", str(out), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    ref = _reference(model, vlb_images(model, None, 3), 5)
    assert summary["images"] == 3 and summary["timesteps"] == T and summary["stride"] == 5
    assert summary["total_bpd"] == pytest.approx(ref.total_bpd, rel=1e-9)
    assert summary["prior_bpd"] == pytest.approx(ref.prior_bpd, rel=1e-9)
    assert summary["decoder_bpd"] == pytest.approx(ref.decoder_bpd, rel=1e-9)
    assert summary["prior_bpd"] + summary["decoder_bpd"] + summary["kl_sum_bpd"] == \
        pytest.approx(summary["total_bpd"], rel=1e-9)
    assert summary["csv"] == str(out)
    header, data = _csv(out)
    assert header == ["t", "vb_bpd", "eps_mse", "x0_mse"]
    np.testing.assert_array_equal(data[:, 0], evaluated_indices(T, 5) + 1)
    np.testing.assert_allclose(data[:, 1], ref.vb_bpd, rtol=1e-7)      # written with 8 digits
    np.testing.assert_allclose(data[:, 2], ref.eps_mse, rtol=1e-7)
    np.testing.assert_allclose(data[:, 3], ref.x0_mse, rtol=1e-7)


def test_vlb_image_stride_one_is_every_t(ckpt, model, png, tmp_path, capsys):
    from diffusion_gui.core.images import load_image
    out = tmp_path / "img.csv"
    assert main(["vlb", str(png), "--model", str(ckpt), "--stride", "1", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "L_T (prior)" in text and "L_0 (decoder)" in text and "total bound" in text
    _, data = _csv(out)
    assert data.shape == (T, 4) and list(data[:, 0]) == list(range(1, T + 1))
    x0 = load_image(png, channels="L", size=16)[None]        # the model's size and channels
    ref = _reference(model, x0, 1)
    np.testing.assert_allclose(data[:, 1], ref.vb_bpd, rtol=1e-7)
    assert f"{ref.total_bpd:.5f}" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.csv"]       # no temporary left


def test_vlb_stride_and_seed_change_the_estimate(ckpt, tmp_path, capsys):
    runs = {}
    for stride, seed in ((1, 0), (10, 0), (1, 1)):
        out = tmp_path / f"s{stride}_{seed}.csv"
        assert main(["vlb", "--model", str(ckpt), "--digits", "1", "--stride", str(stride),
                     "--seed", str(seed), "-o", str(out), "--json"]) == 0
        runs[stride, seed] = json.loads(capsys.readouterr().out)
        assert len(_csv(out)[1]) == len(evaluated_indices(T, stride))
    assert runs[10, 0]["stride"] == 10
    assert runs[1, 0]["total_bpd"] != runs[1, 1]["total_bpd"]
    assert runs[10, 0]["prior_bpd"] == runs[1, 0]["prior_bpd"]          # no noise in L_T


@pytest.mark.parametrize("args, needle", [
    ([], "IMAGE or --digits"),
    (["IMG", "--digits", "2"], "not both"),
    (["--digits", "2", "--stride", "0"], "--stride"),
    (["--digits", "0"], "--digits"),
    (["--digits", "201"], "--digits"),
    (["--digits", "2", "-o", "OUT.txt"], ".csv"),
    (["MISSING"], "missing.png"),
    (["NOTIMG"], "not_an_image.png"),
    (["--digits", "2", "--model", "NOMODEL"], "no_such_model"),
    (["--digits", "2", "-o", "NODIR/terms.csv"], "does not exist"),
])
def test_vlb_bad_input_exits_2_with_one_line(ckpt, png, tmp_path, capsys, args, needle):
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello, I am text")
    subs = {"IMG": str(png), "MISSING": str(tmp_path / "missing.png"), "NOTIMG": str(bad),
            "OUT.txt": str(tmp_path / "out.txt"), "NOMODEL": str(tmp_path / "no_such_model"),
            "NODIR/terms.csv": str(tmp_path / "nodir" / "terms.csv")}
    args = [subs.get(a, a) for a in args]
    out = tmp_path / "terms.csv"
    argv = ["vlb"] + args
    if "-o" not in args:
        argv += ["-o", str(out)]
    if "--model" not in args:
        argv += ["--model", str(ckpt)]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffusion-gui: error:"), err
    assert needle.lower() in lines[0].lower()
    assert not out.exists() and not (tmp_path / "out.txt").exists()


def test_kl_prints_both_kls(capsys):
    assert main(["kl"]) == 0
    text = capsys.readouterr().out
    assert "KL(true || uniform)" in text and "0.1367" in text
    assert "KL(true || binomial)" in text and "0.4273" in text
    assert "best fit (least information lost): uniform" in text


def test_kl_json_parses():
    # the real entry point, in a fresh interpreter
    r = subprocess.run([sys.executable, "-m", "diffusion_gui", "kl", "--json"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert round(d["kl_nats"]["true||uniform"], 3) == 0.137
    assert round(d["kl_nats"]["true||binomial"], 3) == 0.427
    assert d["kl_nats"]["uniform||true"] > 0 and d["best"] == "uniform"
    assert len(d["true"]) == len(d["uniform"]) == len(d["binomial"]) == 11
    assert sum(d["true"]) == pytest.approx(1.0)
