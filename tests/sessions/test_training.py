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
                              "sample_n", "sample_seed", "timings", "conditional", "label_dropout",
                              "variance"}
    assert TrainSettings(conditional=True).config().conditional
    assert not TrainSettings(conditional=True, source="folder", folder="/x").config().conditional


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


# ------------------------------------------------------------------------------ issue #15
def test_rate_and_eta_are_smoothed_over_recent_steps():
    """Steps alternating 0.2 s and 1.4 s (a grid, a checkpoint) used to read 1.3 / 0.1
    steps/s; over a window of recent steps the rate and the ETA hold still."""
    from diffusion_gui.sessions.training import RATE_WINDOW, RateMeter
    m = RateMeter()
    assert m.rate() is None and m.eta(0, 100) is None
    steps = np.arange(1, 401)
    times = np.cumsum(np.where(steps % 2, 0.2, 1.4))
    rates, etas = [], []
    for k in range(0, 400, 5):                       # payloads of ~5 steps, as the worker sends
        m.add(steps[k:k + 5], times[k:k + 5])
        if steps[k] > RATE_WINDOW:
            rates.append(m.rate())
            etas.append(m.eta(int(steps[k + 4]), 10_000) / (10_000 - steps[k + 4]))
    assert max(rates) / min(rates) < 1.05 and np.mean(rates) == pytest.approx(1 / 0.8, rel=0.03)
    assert max(etas) / min(etas) < 1.05                # seconds a step, as the ETA sees it
    m.add([3], [1e6])                                  # an old step is ignored
    assert m.rate() == pytest.approx(rates[-1], rel=0.05)
    m.restart()                                        # after a pause: measured afresh
    assert m.rate() is None


def test_session_rate_comes_from_the_window_and_restarts_after_a_pause(tmp_path):
    session = TrainSession(tmp_path / "runs")
    session.begin(TrainSettings(steps=1000, **TINY))
    p = {"step": 1, "elapsed": 1.0, "rate": 7.0, "bucket": np.full(10, np.nan),
         "hist": (np.array([1]), np.array([1.0])), "times": np.array([1.0])}
    session.update(p)
    assert session.rate == 7.0                         # one step: the loop's own figure
    session.update({**p, "step": 11, "elapsed": 6.0, "rate": 0.1,
                    "hist": (np.arange(2, 12), np.ones(10)), "times": np.linspace(1.5, 6.0, 10)})
    assert session.rate == pytest.approx(2.0) and session.eta() == pytest.approx(989 / 2.0)
    session.resumed()
    assert session.meter.rate() is None


def test_run_reports_its_start_up_stages(tmp_path):
    session = TrainSession(tmp_path / "runs")
    run = session.begin(TrainSettings(steps=2, sample_every=1, **TINY))
    seen = []
    orig = run._set_stage
    run._set_stage = lambda text: (seen.append(text), orig(text))
    text, secs = run.stage()
    assert text and secs >= 0
    _drive(run)
    assert seen == ["starting", "loading the data", "building the model", "taking the first step",
                    "drawing the first samples", None]
    assert run.stage()[0] is None


def test_runs_leave_the_disk_when_discarded_or_cleaned(tmp_path):
    root = tmp_path / "runs"
    session = TrainSession(root)
    assert session.usage() == (0, 0)
    a = session.begin(TrainSettings(steps=2, sample_every=100, **TINY)).run_dir
    _drive(session.run)
    b = session.begin(TrainSettings(steps=1, sample_every=100, **TINY)).run_dir
    _drive(session.run)
    n, size = session.usage()
    assert n == 2 and size > 100_000
    assert session.usage(exclude=[b])[0] == 1
    mine = root / "notes"                              # not a run: never removed
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    assert session.clean_runs(keep=[b]) > 0
    assert not a.exists() and b.exists() and (mine / "keep.txt").exists()
    assert session.discard_runs() > 0 and not b.exists()
    assert session.usage() == (0, 0) and (mine / "keep.txt").exists()


def test_a_failed_run_leaves_no_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    session = TrainSession(tmp_path / "runs")
    run = session.begin(TrainSettings(source="folder", folder=str(empty), **TINY))
    with pytest.raises(UserError):
        _drive(run)
    session.drop_failed()
    assert not run.run_dir.exists()


def test_the_panel_trains_with_a_core_to_spare():
    import os

    from diffusion_gui.models.train import spare_core_threads
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert spare_core_threads() == max(1, n - 1)
    assert TrainSettings().config().threads == spare_core_threads()
