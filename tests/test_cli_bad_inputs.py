"""Bad input, end to end, through the CLI: every file of the image corpus (tests/image_corpus.py)
given to ``diffusion-gui forward FILE -o out.png --t 10`` and to
``diffusion-gui vlb FILE --model TINY -o x.csv``.

A bad file exits with status 2 and exactly one line on stderr (``diffusion-gui: error: ...``
naming the file), writes nothing and never hangs; a good one exits 0 and writes a readable
output. The whole corpus runs in-process through ``cli.main`` (fast; a Python warning would be
one more stderr line in a real process, so warnings are counted as lines); a few cases also run
the installed entry point in a real process to pin what a user sees on the terminal.
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from image_corpus import BAD, GOOD, make_bad, make_good
from PIL import Image

from diffusion_gui.cli import main

T = 20
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(checkpoints):
    return checkpoints(timesteps=T)


def _argv(cmd, image, out_dir, model):
    if cmd == "forward":
        return ["forward", str(image), "-o", str(out_dir / "out.png"), "--t", "10"]
    return ["vlb", str(image), "--model", str(model), "-o", str(out_dir / "x.csv")]


def _run(argv):
    """``(exit status, stderr lines, stdout)`` of ``cli.main(argv)`` in this process; each
    Python warning counts as a stderr line (a real process would print it there)."""
    err, out = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        try:
            rc = main(argv)
        except SystemExit as e:          # argparse; never expected here
            rc = e.code
    lines = err.getvalue().splitlines() + [f"warning: {w.message}" for w in caught]
    return rc, lines, out.getvalue()


def _outputs(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------ bad files
@pytest.mark.timeout(60)
@pytest.mark.parametrize("cmd", ["forward", "vlb"])
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_exits_2_with_one_line(tmp_path, tiny, name, cmd):
    src = tmp_path / "in"
    src.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    path = make_bad(name, src)
    rc, lines, stdout = _run(_argv(cmd, path, out, tiny))
    assert rc == 2, (rc, lines)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("diffusion-gui: error: cannot load image "), line
    assert str(path) in line
    assert any(w in line.lower() for w in BAD[name][2]), line
    assert "Traceback" not in line and stdout == ""
    assert _outputs(out) == []                         # nothing written, not even a temp file


# ------------------------------------------------------------------------------ good files
def _check_forward_png(out, name, mode, size):
    with Image.open(out / "out.png") as im:
        im.load()
        w, h = im.size
    # the working image: the long side shrunk to --size (default 256), never enlarged
    long = max(size)
    want = size if long <= 256 else tuple(max(1, round(s * 256 / long)) for s in size)
    assert (w, h) == want, (name, (w, h), want)
    assert im.mode == ("L" if mode == "L" else "RGB")


def _check_vlb_csv(out):
    rows = list(csv.reader((out / "x.csv").read_text().splitlines()))
    assert rows[0] == ["t", "vb_bpd", "eps_mse", "x0_mse"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, T + 1))
    assert all(math.isfinite(float(v)) for r in rows[1:] for v in r[1:])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cmd", ["forward", "vlb"])
@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_file_succeeds(tmp_path, tiny, name, cmd):
    src = tmp_path / "in"
    src.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    path, mode, size = make_good(name, src)
    rc, lines, stdout = _run(_argv(cmd, path, out, tiny))
    assert rc == 0 and lines == [], (rc, lines)
    assert "wrote" in stdout
    if cmd == "forward":
        assert _outputs(out) == ["out.png"]
        _check_forward_png(out, name, mode, size)
    else:
        assert _outputs(out) == ["x.csv"]
        _check_vlb_csv(out)


# ------------------------------------------------------------------------------ a real process
def _entry(*args, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", "diffusion_gui", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("cmd, bad, good", [
    ("forward", ("truncated_jpeg", "bomb_20000"), "cmyk"),
    ("vlb", ("text_named_png", "fifo" if "fifo" in BAD else "zero_bytes"), "exif_rotated"),
])
@pytest.mark.slow
def test_real_process(tmp_path, tiny, cmd, bad, good):
    """What a user sees: the real entry point, its exit status and its terminal output."""
    out = tmp_path / "out"
    out.mkdir()
    for name in bad:
        path = make_bad(name, tmp_path)
        r = _entry(*_argv(cmd, path, out, tiny))
        lines = r.stderr.splitlines()
        assert r.returncode == 2 and len(lines) == 1, (name, r.returncode, r.stderr[-2000:])
        assert lines[0].startswith("diffusion-gui: error: cannot load image ") and str(path) in lines[0]
        assert r.stdout == "" and _outputs(out) == []
    path, _, _ = make_good(good, tmp_path)
    r = _entry(*_argv(cmd, path, out, tiny))
    assert r.returncode == 0 and r.stderr == "", r.stderr[-2000:]
    assert _outputs(out) == (["out.png"] if cmd == "forward" else ["x.csv"])
