"""The Train panel's session, without Qt: the settings, the run folders, ``export_model``, the
loss history, and a :class:`TrainRun` driven as the worker drives it (requests answered at a
step boundary, a last grid of the stopped weights, events for the GUI)."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from diffusion_gui.errors import ExportError, UserError, user_message
from diffusion_gui.sessions.settings import from_raw, to_raw
from diffusion_gui.sessions.training import (
    SMOOTH_BETA,
    Growing,
    LossHistory,
    TrainRun,
    TrainSession,
    TrainSettings,
    data_preview,
    export_model,
    format_timings,
    new_run_dir,
    parse_timings,
    runs_dir,
)

TINY = dict(preset="tiny", size=8, batch=8, sample_steps=5, sample_n=4, sample_seed=3)


# ------------------------------------------------------------------------------ settings
def test_settings_defaults_bounds_and_bad_values():
    d = TrainSettings()
    assert (d.size, d.batch, d.preset, d.lr, d.steps, d.sample_n) == (16, 128, "small", 2e-3, 10000, 16)
    bad = from_raw(TrainSettings, {"size": "huge", "batch": "x", "preset": "giant", "lr": [],
                                   "channels": "2", "steps": "0", "ema": "1.5", "augment": "no"})
    assert (bad.size, bad.batch, bad.preset, bad.lr, bad.channels) == (16, 128, "small", 2e-3, 1)
    assert bad.steps == 1 and bad.ema == 0.9999 and bad.augment is False      # clamped
    s = TrainSettings(preset="tiny", size=8, batch=8, steps=1234, lr=5e-4, timings="a=1")
    assert from_raw(TrainSettings, to_raw(s)) == s
    # the QSettings keys the panel always used
    assert set(to_raw(s)) == {"source", "folder", "size", "channels", "augment", "preset", "batch",
                              "lr", "steps", "ema", "seed", "sample_every", "sample_steps",
                              "sample_n", "sample_seed", "timings"}


def test_settings_config_and_a_folder_that_went_away(tmp_path):
    s = TrainSettings(source="folder", folder=str(tmp_path / "gone"), channels=3, **TINY)
    u = s.usable()
    assert (u.source, u.folder, u.data) == ("digits", "", "digits")
    here = TrainSettings(source="folder", folder=str(tmp_path), **TINY)
    assert here.usable() is here and here.data == str(tmp_path)
    c = here.config(tmp_path / "out")
    assert (c.out_dir, c.data, c.size, c.batch_size, c.sample_batch, c.sample_seed) == (
        str(tmp_path / "out"), str(tmp_path), 8, 8, 4, 3)
    assert here.timing_key() == "tiny/8/1/8"


def test_timings_parse_and_format():
    t = parse_timings("tiny/8/1/8=0.0123;a=b;;=;neg=-1;small/16/1/128=1.5")
    assert t == {"tiny/8/1/8": 0.0123, "small/16/1/128": 1.5}
    assert parse_timings(format_timings(t)) == t
    assert parse_timings(None) == {}


# ------------------------------------------------------------------------------ folders and files
def test_runs_dir_and_new_run_dirs(tmp_path, monkeypatch):
    monkeypatch.delenv("DIFFUSION_GUI_RUNS", raising=False)
    assert runs_dir(tmp_path) == tmp_path / "runs"
    monkeypatch.setenv("DIFFUSION_GUI_RUNS", str(tmp_path / "elsewhere"))
    assert runs_dir(tmp_path) == tmp_path / "elsewhere"
    cfg = TrainSettings(**TINY).config()
    a = new_run_dir(tmp_path, cfg)
    assert a.parent == tmp_path and a.name.endswith("-digits-8px-tiny")
    a.mkdir()
    b = new_run_dir(tmp_path, cfg)
    assert b != a and not b.exists()


def test_export_model_is_atomic_and_refuses_other_folders(tmp_path, checkpoints):
    run = tmp_path / "run"
    shutil.copytree(checkpoints(layout="pipeline"), run)
    (run / "checkpoint").mkdir()
    (run / "checkpoint" / "state.pt").write_bytes(b"x")
    out = export_model(run, tmp_path / "a" / "model")
    assert (out / "unet" / "config.json").is_file() and not (out / "checkpoint").exists()
    export_model(run, out)                                          # replacing a model folder is fine
    other = tmp_path / "docs"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(ValueError, match="not a model folder"):
        export_model(run, other)
    assert (other / "thesis.tex").read_text() == "keep me"
    assert [q.name for q in (tmp_path / "a").iterdir()] == ["model"]   # no temporary left over
    with pytest.raises(ValueError, match="nothing saved"):
        export_model(tmp_path / "docs", tmp_path / "x")
    with pytest.raises(ExportError) as e:                           # one line for the banner
        export_model(tmp_path / "docs", tmp_path / "x")
    assert user_message(e.value) == f"{tmp_path / 'docs'}: nothing saved yet"


def test_a_folder_without_images_is_a_user_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    cfg = TrainSettings(source="folder", folder=str(tmp_path), **TINY).config()
    with pytest.raises(UserError, match="no readable images"):
        data_preview(cfg)


def test_data_preview_of_the_digits():
    grid, n = data_preview(TrainSettings(**TINY).config(), n=4)
    assert n == 1597 and grid.dtype == np.uint8 and grid.shape == (2 * 8 + 1, 2 * 8 + 1, 1)


# ------------------------------------------------------------------------------ history
def test_growing_keeps_everything_past_its_first_block():
    g = Growing(np.int64)
    g.extend(np.arange(1000))
    g.extend(np.arange(1000, 2500))
    assert g.n == 2500 and list(g.data[[0, 999, 1000, 2499]]) == [0, 999, 1000, 2499]
    g.clear()
    assert g.data.size == 0


def test_loss_history_is_a_bias_corrected_geometric_mean():
    h = LossHistory()
    assert h.last_smoothed is None
    h.extend(np.array([1, 2]), np.array([0.5, 0.5]))
    assert h.smooth.data == pytest.approx([0.5, 0.5])               # no bias towards 0 at the start
    h.extend(np.array([3]), np.array([2.0]))
    w = np.array([SMOOTH_BETA ** 2, SMOOTH_BETA, 1.0]) * (1 - SMOOTH_BETA)
    expect = math.exp((w @ np.log([0.5, 0.5, 2.0])) / (1 - SMOOTH_BETA ** 3))
    assert h.last_smoothed == pytest.approx(expect)
    assert list(h.steps.data) == [1, 2, 3] and list(h.raw.data) == [0.5, 0.5, 2.0]
    h.clear()
    h.extend(np.array([1]), np.array([3.0]))
    assert h.last_smoothed == pytest.approx(3.0)


# ------------------------------------------------------------------------------ a run
def _drive(run: TrainRun, at_step=None, actions=()):
    """Iterate ``run`` as the worker does (observe every item, convert some); make a request
    after the item of ``at_step``. Returns the payloads."""
    payloads = []
    for m in run.make_gen():
        run.observe(m)
        payloads.append(run.convert(m))
        if m.step == at_step and actions:
            run.request(*actions)
            at_step = None
    return payloads


def test_a_run_saves_exports_and_stops_at_a_step_boundary(tmp_path):
    session = TrainSession(tmp_path / "runs")
    run = session.begin(TrainSettings(steps=50, sample_every=4, **TINY))
    assert run.run_dir.is_dir() and run.run_dir.parent == tmp_path / "runs" and session.total == 50
    dest = tmp_path / "saved"
    payloads = _drive(run, at_step=2, actions=(("checkpoint",), ("export", str(dest)), ("stop",)))
    for p in payloads:
        session.update(p)
    assert session.step == 2 and [p["step"] for p in payloads][:2] == [1, 2]
    events = [e for p in payloads for e in p["events"]] + run.drain_events()
    kinds = [e["kind"] for e in events]
    assert "checkpoint" in kinds and {"kind": "saved", "path": str(dest), "step": 2} in events
    assert (dest / "model_index.json").is_file() and "| steps | 2 |" in (dest / "model_card.md").read_text()
    grids = [g for p in payloads for g in p["grids"]]
    assert [g[0] for g in grids] == [1, 2]                          # step 1, then the stopped weights
    assert grids[-1][1].shape == (17, 17, 1) and len(grids[-1][2]) == 10
    assert list(session.history.steps.data) == [1, 2] and np.isfinite(session.history.raw.data).all()
    assert session.has_model() and session.is_unsaved(running=False)
    assert session.model_path() == str(run.run_dir)
    session.mark_saved(str(dest), 2)
    assert not session.is_unsaved(running=False) and session.is_unsaved(running=True)
    assert session.model_path() == str(dest)


def test_a_run_to_the_end_writes_its_card_and_reports_export_errors(tmp_path):
    session = TrainSession(tmp_path / "runs")
    run = session.begin(TrainSettings(steps=3, sample_every=100, **TINY))
    other = tmp_path / "docs"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    payloads = _drive(run, at_step=1, actions=(("checkpoint",), ("export", str(other))))
    assert [p["step"] for p in payloads] == [1, 1, 2, 3] and payloads[-1]["event"] == "done"
    events = [e for p in payloads for e in p["events"]] + run.drain_events()
    errors = [e for e in events if e["kind"] == "error"]
    assert len(errors) == 1 and "not a model folder" in errors[0]["message"]
    assert "| steps | 3 |" in (run.run_dir / "model_card.md").read_text()
    session.update(payloads[-1])
    session.record_timing(0.5)
    assert session.estimate(TrainSettings(steps=10, **TINY)) == (0.5, 5.0)
