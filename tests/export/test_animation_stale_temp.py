"""A killed export leaves ``.<stem>-<hex>.tmp<ext>``: the next export to that folder removes it
once it is stale (an hour unchanged), and touches nothing else. Qt-free."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from diffusion_gui.export import atomic, write_animation
from diffusion_gui.export.atomic import STALE_AFTER_S, remove_stale_temporaries


def _age(p, seconds):
    t = time.time() - seconds
    os.utime(p, (t, t))


def test_next_export_removes_stale_temporaries_only(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_swept", {})
    stale = tmp_path / ".run-0a1b2c3d.tmp.mp4"
    fresh = tmp_path / ".run-1111aaaa.tmp.gif"           # a writer that is still at work
    others = [tmp_path / ".hidden", tmp_path / ".run-0a1b2c3d.tmp.mp4.keep",
              tmp_path / "run-0a1b2c3d.tmp.mp4", tmp_path / ".notes-XYZW1234.tmp.txt"]
    for p in [stale, fresh, *others]:
        p.write_bytes(b"partial")
    for p in [stale, *others]:
        _age(p, STALE_AFTER_S + 60)
    folder = tmp_path / ".sub-deadbeef.tmp"                # a folder of that name stays too
    folder.mkdir()
    _age(folder, STALE_AFTER_S + 60)
    link = tmp_path / ".ln-cafebabe.tmp.gif"
    link.symlink_to(others[0])
    os.utime(link, (0, 0), follow_symlinks=False)
    write_animation(tmp_path / "out.webp", [np.zeros((4, 4, 1), np.uint8)] * 2, fps=5)
    left = set(os.listdir(tmp_path))
    assert stale.name not in left
    assert {fresh.name, folder.name, link.name, "out.webp", *(p.name for p in others)} == left


def test_killed_writer_leaves_a_temporary_that_a_later_export_sweeps(tmp_path, monkeypatch):
    """The real thing: a process killed inside atomic_path leaves its temporary file."""
    code = ("import os, sys\n"
            "from diffusion_gui.export.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'half a video')\n"
            "    os._exit(9)\n")
    target = tmp_path / "clip.mp4"
    r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True)
    assert r.returncode == 9
    left = [n for n in os.listdir(tmp_path) if n.startswith(".clip-")]
    assert len(left) == 1 and not target.exists()
    assert remove_stale_temporaries(tmp_path) == []        # not stale yet: kept
    _age(tmp_path / left[0], STALE_AFTER_S + 1)
    monkeypatch.setattr(atomic, "_swept", {})
    write_animation(target, [np.zeros((4, 4, 3), np.uint8)] * 2, fps=5)
    assert os.listdir(tmp_path) == ["clip.mp4"]


def test_sweep_is_rate_limited_per_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_swept", {})
    calls = []
    monkeypatch.setattr(atomic, "remove_stale_temporaries", lambda f, **k: calls.append(f))
    for k in range(5):
        atomic.write_text_atomic(tmp_path / f"f{k}.txt", "x")
    assert len(calls) == 1
