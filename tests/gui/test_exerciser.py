"""The app under random use (issue #21): benchmarks/exerciser.py drives the real main window at
random for ``EXERCISER_SECONDS`` (default 60) with seed ``EXERCISER_SEED`` (default 1), and no
failure may be found: no exception reaching Qt's event loop, no traceback printed, no message
naming a Python exception, no stall over 2 s, no growth of threads, and RSS within
``exerciser.RSS_GROWTH_MB`` of the first cycle. The benchmark runs it for 10 minutes and prints
its figures (docs/performance.md)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # a minute of random use: `make test-fast` leaves it out

pytest.importorskip("pytestqt")
pytest.importorskip("psutil")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import exerciser  # noqa: E402

SECONDS = float(os.environ.get("EXERCISER_SECONDS", "60"))
SEED = int(os.environ.get("EXERCISER_SEED", "1"))


@pytest.mark.timeout(int(SECONDS) + 600)
def test_random_use_finds_nothing(qapp, tmp_path, monkeypatch):
    home = tmp_path / "home"
    for var in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(var, str(home))
    monkeypatch.setenv("DIFFUSION_GUI_RUNS", str(tmp_path / "runs"))
    lines = []
    ex = exerciser.Exerciser(tmp_path / "work", seed=SEED, out=lines.append)
    try:
        res = ex.run(SECONDS, cycle_s=max(10.0, SECONDS / 4))
    finally:
        ex.close()
    exerciser.report(res, out=lines.append)
    print("\n".join(lines))
    assert res["actions"] > SECONDS, "\n".join(lines)        # it did drive the window
    assert len({k for k, v in res["counts"].items() if v}) >= 8, res["counts"]
    assert res["failures"] == [], "\n".join(lines)


def test_bug_text_pattern():
    """What counts as the GUI's message for a bug (gui.workers: ``f"{type(e).__name__}: {e}"``)
    and what is a user's message."""
    bug = ["TypeError: can only concatenate tuple (not \"int\") to tuple",
           "cannot load image 'x.tif': the file is damaged or unsupported (TypeError: can only)",
           "Traceback (most recent call last):\n  File ..."]
    user = ["batch must be in 1..1024", "cannot load image 'a.png': not an image file",
            "the folder '/x' does not exist", "not enough memory: try a smaller batch"]
    assert all(exerciser.BUG_TEXT.search(t) for t in bug)
    assert not any(exerciser.BUG_TEXT.search(t) for t in user)
