"""The memory check before a training run, without Qt: a step whose estimated peak is over
``MEMORY_SHARE`` of the memory available is refused with one line that says the estimate, what
is available and what to lower; ``diffusion-gui train`` refuses the same way (exit 2, one line
on stderr) before it writes anything."""
from __future__ import annotations

import pytest

from diffusion_gui.errors import UserError
from diffusion_gui.models import step_memory
from diffusion_gui.sessions.training import (
    MEMORY_SHARE,
    TrainSession,
    TrainSettings,
    check_step_memory,
    memory_refusal,
)

GB = 10 ** 9


def test_a_step_that_fits_is_not_refused():
    cfg = TrainSettings(preset="small", size=16, batch=128).config()
    assert memory_refusal(cfg, 1 * GB, 16 * GB) is None
    assert memory_refusal(cfg, int(MEMORY_SHARE * 10 * GB), 10 * GB) is None    # at the limit


def test_a_step_over_the_share_is_refused_with_one_line_naming_what_to_lower():
    cfg = TrainSettings(preset="medium", size=64, channels=3, batch=512).config()
    msg = memory_refusal(cfg, int(21.4 * GB), 18 * GB)
    assert msg is not None and "\n" not in msg
    assert "about 21.4 GB" in msg and "more than 80% of the 18.0 GB available" in msg
    assert "batch (512)" in msg and "size (64 px)" in msg and "preset (medium)" in msg
    assert memory_refusal(cfg, int(MEMORY_SHARE * 10 * GB) + 1, 10 * GB) is not None


def test_the_session_checks_its_settings(tmp_path):
    s = TrainSession(tmp_path / "runs")
    st = TrainSettings(preset="tiny", size=8, batch=8)
    assert s.memory_check(st, 100 * 10 ** 6, 16 * GB) is None
    assert "batch (8)" in s.memory_check(st, 20 * GB, 16 * GB)


def test_check_step_memory_estimates_and_raises_a_user_error():
    cfg = TrainSettings(preset="tiny", size=8, batch=8).config()
    estimate = check_step_memory(cfg, available_bytes=100 * GB)
    assert estimate == step_memory.step_memory_of(cfg) > 0
    with pytest.raises(UserError, match="a training step would need about"):
        check_step_memory(cfg, available_bytes=estimate)       # over 80% of it


def test_the_cli_refuses_a_step_too_big_for_the_memory(tmp_path, capsys, monkeypatch):
    from diffusion_gui.cli import main
    monkeypatch.setattr(step_memory, "available_memory_bytes", lambda: 50 * 10 ** 6)
    out = tmp_path / "run"
    rc = main(["train", "--preset", "tiny", "--size", "8", "--batch", "8", "--steps", "2",
               "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("diffusion-gui: error: a training step would need about")
    assert "of the 50 MB available" in err[0]
    assert not out.exists()                 # refused before anything was written
