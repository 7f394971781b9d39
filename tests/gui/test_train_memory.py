"""The Train panel and a step's memory, offscreen: the parameters line shows the estimated peak
of one training step against the memory free, following the batch; Start refuses, with the
message and no run, a step that does not fit (the memory available is patched to something
small rather than building a huge network), also when pressed before the estimate is known."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from diffusion_gui.gui.panels.train import TrainPanel  # noqa: E402
from diffusion_gui.models import step_memory  # noqa: E402

TIMEOUT = 60000   # ms: a slow, shared CPU



@pytest.fixture
def panel(qtbot, ctx, tmp_path):
    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    p.runs_dir = tmp_path / "runs"
    p.preset.setCurrentIndex(p.preset.findData("tiny"))
    p.size.setCurrentIndex(p.size.findData(8))
    p.batch.setValue(8)
    p.steps.setValue(3)
    p.sample_every.setValue(1000)
    yield p
    p.shutdown()


def _known(p) -> bool:
    return p.info.step_memory(p.settings())[0]


def test_the_parameters_line_shows_a_step_against_the_memory_free(qtbot, panel):
    p = panel
    qtbot.waitUntil(lambda: _known(p), timeout=TIMEOUT)
    text = p.params_label.text()
    est = step_memory.step_memory_bytes("tiny", 8, 1, 8)
    assert f"a step needs ≈ {step_memory.format_bytes(est)} of " in text and text.endswith(" free")
    p.batch.setValue(1024)                     # the same network: no new job, the line follows
    big = step_memory.step_memory_bytes("tiny", 8, 1, 1024)
    assert f"≈ {step_memory.format_bytes(big)} of" in p.params_label.text()
    p.variance.setCurrentIndex(p.variance.findData("learned_range"))    # another network
    qtbot.waitUntil(lambda: _known(p), timeout=TIMEOUT)
    assert p.info.step_memory(p.settings())[1] == step_memory.step_memory_bytes(
        "tiny", 8, 1, 1024, "learned_range")


def test_start_refuses_a_step_too_big_for_the_memory(qtbot, panel, errors, monkeypatch, tmp_path):
    p = panel
    qtbot.waitUntil(lambda: _known(p), timeout=TIMEOUT)
    monkeypatch.setattr(step_memory, "available_memory_bytes", lambda: 20 * 10 ** 6)
    p.start_btn.click()
    assert p.state == "idle" and p.session.run is None and p.start_btn.isEnabled()
    assert len(errors) == 1 and errors[0][0] == "Cannot start training"
    assert "a training step would need about" in errors[0][1] and "of the 20 MB available" in errors[0][1]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_start_before_the_estimate_is_known_waits_for_it_then_refuses(qtbot, panel, errors,
                                                                     monkeypatch):
    p = panel
    monkeypatch.setattr(step_memory, "available_memory_bytes", lambda: 20 * 10 ** 6)
    p.size.setCurrentIndex(p.size.findData(24))        # a network not measured in this process
    assert not _known(p)
    p.start()
    assert p.state == "idle" and not errors            # not refused blind: measured first
    qtbot.waitUntil(lambda: bool(errors), timeout=TIMEOUT)
    assert errors[0][0] == "Cannot start training" and p.state == "idle" and p.session.run is None


def test_start_before_the_estimate_is_known_starts_once_it_fits(qtbot, panel, errors):
    p = panel
    p.size.setCurrentIndex(p.size.findData(16))
    assert not _known(p)
    p.start()
    qtbot.waitUntil(lambda: p.session.run is not None, timeout=TIMEOUT)
    assert not errors
    qtbot.waitUntil(lambda: p.state == "idle", timeout=TIMEOUT)     # 3 steps, then done
    assert p.session.step == 3
