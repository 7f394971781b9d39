"""The train panel, offscreen: a tiny model on the digits at 8 px, a few dozen steps.

What issue #9 asks to show: train, pause (no step is taken while paused), resume, save (a
diffusers pipeline folder with its model card), use it as the app's model (``ctx.load_model`` +
``model_changed``) and generate with ``make_sampler``; the sample grids shown are exactly what
``make_sampler`` draws from the saved model with the same seed; closing mid-training offers to
save; a folder of images as data. The Qt-free session (the run, its history, the files it
writes, the settings) is tested in tests/sessions/test_training.py.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from diffusion_gui.gui.panels.train import TrainPanel  # noqa: E402
from diffusion_gui.gui.workers import running_jobs  # noqa: E402

TIMEOUT = 60000   # ms: a slow, shared CPU



def _configure(p, steps=400, every=4):
    p.preset.setCurrentIndex(p.preset.findData("tiny"))
    p.size.setCurrentIndex(p.size.findData(8))
    p.batch.setValue(8)
    p.steps.setValue(steps)
    p.sample_every.setValue(every)
    p.sample_steps.setValue(5)
    p.sample_n.setCurrentIndex(p.sample_n.findData(4))
    p.sample_seed.setValue(3)


@pytest.fixture
def panel(qtbot, ctx, tmp_path):
    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    p.runs_dir = tmp_path / "runs"
    _configure(p)
    # Start checks a step's memory estimate first, measured in the background as the settings
    # change: once it is known Start starts at once (tests/gui/test_train_memory.py for the rest)
    qtbot.waitUntil(lambda: p.info.step_memory(p.settings())[0], timeout=TIMEOUT)
    yield p
    p.shutdown()


def _steps_now(p):
    return p._step


def test_train_pause_resume_save_use_and_generate(qtbot, panel, ctx, tmp_path, errors):
    import torch

    from diffusion_gui.commands import make_sampler
    from diffusion_gui.core.images import tile, to_uint8
    from diffusion_gui.core.sampling import run
    from diffusion_gui.models.loader import load_model

    p = panel
    p.start_btn.click()
    assert p.state == "running"
    assert not p.start_btn.isEnabled() and p.pause_btn.isEnabled() and not p.size.isEnabled()
    qtbot.waitUntil(lambda: _steps_now(p) >= 3, timeout=TIMEOUT)

    # ---- pause: the worker stops between steps, and no step is taken while paused
    p.pause_btn.click()
    qtbot.waitUntil(lambda: p.state == "paused", timeout=TIMEOUT)
    assert p.resume_btn.isEnabled() and not p.pause_btn.isEnabled()
    s1, items = _steps_now(p), p._job.worker.items
    qtbot.wait(400)
    assert _steps_now(p) == s1 and p._job.worker.items == items

    # ---- save while paused: the state at s1 goes to a pipeline folder, still no step taken
    dest = tmp_path / "saved" / "my-digits"
    with qtbot.waitSignal(p.model_saved, timeout=TIMEOUT) as saved:
        p.save_model(str(dest))
    assert saved.args == [str(dest)]
    assert p.state == "paused" and _steps_now(p) == s1
    assert {"model_index.json", "unet", "scheduler", "model_card.md"} <= {f.name for f in dest.iterdir()}
    assert not (dest / "checkpoint").exists()
    card = (dest / "model_card.md").read_text()
    assert f"| steps | {s1:,} |" in card and "preset `tiny`" in card and "wall time" in card
    from diffusers import DDPMPipeline
    pipe = DDPMPipeline.from_pretrained(str(dest))
    assert pipe.unet.config.sample_size == 8

    # ---- "Sample now" while paused: the grid equals make_sampler on the saved model
    n_grids = len(p.strip.grids)
    p.sample_now_btn.click()
    qtbot.waitUntil(lambda: len(p.strip.grids) > n_grids, timeout=TIMEOUT)
    step, grid, _ = p.strip.grids[-1]
    assert step == s1 and _steps_now(p) == s1 and p.state == "paused"
    model = load_model(str(dest))
    gen, _ = make_sampler(model, sampler="ddim", steps=5, batch=4, seed=3)
    np.testing.assert_array_equal(grid, tile(to_uint8(run(gen))))
    np.testing.assert_array_equal(p.strip.view.image(), grid)

    # ---- resume, more steps, more grids (every 4 steps), then Stop saves the state
    p.resume_btn.click()
    assert p.state == "running"
    qtbot.waitUntil(lambda: _steps_now(p) >= s1 + 9, timeout=TIMEOUT)
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT) as ended:
        p.stop_btn.click()
    assert ended.args == ["stopped"] and p.state == "idle"
    final = _steps_now(p)
    st = torch.load(p._run.run_dir / "checkpoint" / "state.pt", weights_only=True)
    assert int(st["step"]) == final
    grid_steps = [g[0] for g in p.strip.grids]
    assert grid_steps[0] == 1 and grid_steps[-1] == final        # Stop draws a last grid
    assert all(s % 4 == 0 for s in grid_steps[1:-1] if s != s1)
    assert len({g[1].shape for g in p.strip.grids}) == 1           # comparable grids
    # the loss curve has every step, once
    xs, ys = p.raw_curve.getData()
    assert list(xs) == list(range(1, final + 1)) and np.isfinite(ys).all()
    assert np.isfinite(p.smooth_curve.getData()[1]).all()
    assert np.isfinite(p._bucket).sum() >= 5
    # scrubbing the strip shows an older grid and marks its step on the loss plot
    p.strip.select(0)
    np.testing.assert_array_equal(p.strip.view.image(), p.strip.grids[0][1])
    assert p.step_line.isVisible() and p.step_line.value() == 1
    # the seconds-per-step estimate was measured on the first steps (if they ran undisturbed)
    if p._run.s_per_step is not None:
        assert "measured" in p.estimate_label.text()

    # ---- Use in Reverse panel: the app's model becomes the run's (stopped) state; generate
    with qtbot.waitSignal(ctx.model_changed, timeout=TIMEOUT):
        p.use_btn.click()
    assert ctx.model is not None and ctx.model.source == str(p._run.run_dir.resolve())
    assert ctx.model_spec == str(p._run.run_dir)
    gen, shape = make_sampler(ctx.model, sampler="ddim", steps=5, batch=4, seed=0)
    x = run(gen)
    assert tuple(x.shape) == shape == (4, 1, 8, 8) and bool(torch.isfinite(x).all())
    assert not errors
    assert p.is_unsaved()                  # trained past the saved step


def test_use_in_reverse_panel_while_running_checkpoints_first(qtbot, panel, ctx, errors):
    p = panel
    p.start()
    qtbot.waitUntil(lambda: _steps_now(p) >= 2, timeout=TIMEOUT)
    with qtbot.waitSignal(ctx.model_changed, timeout=TIMEOUT):
        p.use_model()
    assert ctx.model.source == str(p._run.run_dir.resolve())
    assert p.state == "running"            # training goes on
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT):
        p.stop()
    assert not errors


def test_runs_to_the_end_and_writes_the_model_card(qtbot, panel, tmp_path, errors):
    p = panel
    p.steps.setValue(6)
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT) as ended:
        p.start()
    assert ended.args == ["finished"]
    assert p.progress.value() == p.progress.maximum() == 6
    run_dir = p._run.run_dir
    assert (run_dir / "model_index.json").is_file() and (run_dir / "checkpoint" / "state.pt").is_file()
    assert "| steps | 6 |" in (run_dir / "model_card.md").read_text()
    assert [g[0] for g in p.strip.grids] == [1, 4, 6]
    # idle: Save copies the finished run
    with qtbot.waitSignal(p.model_saved, timeout=TIMEOUT):
        p.save_model(str(tmp_path / "out"))
    assert (tmp_path / "out" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not p.is_unsaved()
    assert not errors


def test_closing_mid_training_offers_to_save(qtbot, panel, tmp_path):
    p = panel
    asked = []
    p.ask_save_on_close = lambda: asked.append(p.state) or answers.pop(0)
    p.choose_save_dir = lambda: str(tmp_path / "at-close")
    p.start()
    qtbot.waitUntil(lambda: _steps_now(p) >= 2, timeout=TIMEOUT)
    answers = ["cancel"]
    assert p.maybe_close() is False and p.state == "running"       # cancel: keep training
    answers = ["save"]
    assert p.maybe_close() is True
    assert asked == ["running", "running"]
    assert not p._job or not p._job.is_running()
    st_step = _saved_step(p._run.run_dir)
    assert (tmp_path / "at-close" / "model_index.json").is_file()
    assert f"| steps | {st_step:,} |" in (tmp_path / "at-close" / "model_card.md").read_text()
    p.shutdown()
    assert _eventually_no_jobs(qtbot)


def test_close_when_idle_and_saved_does_not_ask(qtbot, panel):
    p = panel
    p.ask_save_on_close = lambda: pytest.fail("must not ask")
    assert p.maybe_close() is True                                  # nothing trained


def test_close_discard_while_paused_then_shutdown_joins(qtbot, panel):
    p = panel
    p.ask_save_on_close = lambda: "discard"
    p.start()
    qtbot.waitUntil(lambda: _steps_now(p) >= 2, timeout=TIMEOUT)
    p.pause()
    qtbot.waitUntil(lambda: p.state == "paused", timeout=TIMEOUT)
    job = p._job
    assert p.maybe_close() is True
    p.shutdown()
    assert not job.is_running()


def test_folder_of_rgb_images(qtbot, panel, tmp_path, errors):
    from PIL import Image
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(5):
        a = rng.integers(0, 255, (20 + k, 30, 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / ("sub" if k % 2 else "") / f"im{k}.png")
    (folder / "notes.txt").write_text("not an image")
    p = panel
    p.set_data_folder(str(folder))
    assert p.channels.isEnabled()
    p.channels.setCurrentIndex(p.channels.findData(3))
    qtbot.waitUntil(lambda: p.preview.image() is not None and p.preview.image().shape[2] == 3,
                    timeout=TIMEOUT)
    img = p.preview.image()
    assert img.shape == (2 * 8 + 1, 3 * 8 + 2, 3)                    # 5 images: 2 rows of 3
    assert "5 training images" in p.data_info.text()
    p.steps.setValue(3)
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT) as ended:
        p.start()
    assert ended.args == ["finished"], errors
    assert p.strip.grids[-1][1].shape[2] == 3
    assert not errors


def test_empty_folder_is_a_message_not_a_traceback(qtbot, panel, tmp_path, errors):
    empty = tmp_path / "empty"
    empty.mkdir()
    p = panel
    p.set_data_folder(str(empty))
    qtbot.waitUntil(lambda: "no readable images" in p.data_info.text(), timeout=TIMEOUT)
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT) as ended:
        p.start()
    assert ended.args == ["failed"]
    assert errors and "no readable images" in errors[-1][1]
    assert p.state == "idle" and p.start_btn.isEnabled()


def test_settings_round_trip(qtbot, ctx, tmp_path):
    s = QSettings(str(tmp_path / "p.ini"), QSettings.IniFormat)
    a = TrainPanel(ctx)
    qtbot.addWidget(a)
    _configure(a, steps=1234, every=77)
    a.lr.setValue(0.0005)
    a.ema.setValue(0.995)
    a._timings["tiny/8/1/8"] = 0.0123
    a.save_settings(s)
    b = TrainPanel(ctx)
    qtbot.addWidget(b)
    b.restore_settings(s)
    assert (b.preset.currentData(), b.size.currentData(), b.batch.value(), b.steps.value(),
            b.sample_every.value(), b.sample_steps.value(), b.sample_n.currentData(),
            b.sample_seed.value()) == ("tiny", 8, 8, 1234, 77, 5, 4, 3)
    assert b.lr.value() == pytest.approx(0.0005) and b.ema.value() == pytest.approx(0.995)
    assert "12 ms/step" in b.estimate_label.text() and "15 s" in b.estimate_label.text()
    # malformed values fall back to the defaults
    bad = QSettings(str(tmp_path / "bad.ini"), QSettings.IniFormat)
    for k, v in {"size": "huge", "batch": "x", "preset": "giant", "timings": "a=b;;=", "lr": []}.items():
        bad.setValue(k, v)
    c = TrainPanel(ctx)
    qtbot.addWidget(c)
    c.restore_settings(bad)
    assert c.size.currentData() == 16 and c.batch.value() == 128 and c.preset.currentData() == "small"
    for p in (a, b, c):
        p.shutdown()


def _saved_step(run_dir):
    import torch
    return int(torch.load(run_dir / "checkpoint" / "state.pt", weights_only=True)["step"])


def _eventually_no_jobs(qtbot):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        qtbot.wait(50)
        if running_jobs() == 0:
            return True
    return False


# ------------------------------------------------------------------------------ issue #15
def test_before_any_run_the_bar_reads_0_of_steps(qtbot, ctx):
    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    assert (p.progress.value(), p.progress.maximum()) == (0, 10_000)
    assert p.progress.text() == "0 / 10000 steps"
    p.steps.setValue(1234)
    assert p.progress.maximum() == 1234 and p.progress.value() == 0
    p.shutdown()


def test_start_up_says_what_it_is_doing(qtbot, panel):
    p = panel
    p.steps.setValue(3)
    p.start()
    assert p.status_label.text().startswith("Starting (")
    qtbot.waitUntil(lambda: _steps_now(p) >= 1, timeout=TIMEOUT)
    assert not p._stage_timer.isActive() and p.status_label.text().startswith("step ")
    qtbot.waitUntil(lambda: p.state == "idle", timeout=TIMEOUT)


def test_the_runs_folder_names_the_app_once(monkeypatch):
    from diffusion_gui.gui.panels.train import default_runs_dir
    monkeypatch.delenv("DIFFUSION_GUI_RUNS", raising=False)
    d = default_runs_dir()
    assert d.name == "runs" and d.parts.count("diffusion-gui") == 1, d


def test_discard_at_quit_removes_the_runs_and_the_panel_shows_their_space(qtbot, panel, tmp_path):
    p = panel
    p.steps.setValue(2)
    assert "no runs yet" in p.runs_folder.label.text()
    runs = []
    for _ in range(2):
        with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT):
            p.start()
        runs.append(p._run.run_dir)
    assert all(r.is_dir() for r in runs)
    text = p.runs_folder.label.text()
    assert str(p.runs_dir) in text and "2 runs" in text and " MB" in text
    p.ask_save_on_close = lambda: "discard"
    assert p.maybe_close() is True
    assert all(r.is_dir() for r in runs)                # another panel may still keep the window
    p.shutdown()
    assert not any(r.exists() for r in runs)


def test_clean_up_keeps_the_current_run_when_it_is_the_apps_model(qtbot, panel, ctx):
    p = panel
    p.steps.setValue(2)
    for _ in range(2):
        with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT):
            p.start()
    old = p.session.created[0]
    with qtbot.waitSignal(ctx.model_changed, timeout=TIMEOUT):
        p.use_model()
    asked = []
    p.runs_folder.confirm_clean = lambda n, size: asked.append(n) or True
    assert p.runs_folder.clean() > 0 and asked == [1]
    assert not old.exists() and p._run.run_dir.is_dir()
    assert "1 run," in p.runs_folder.label.text() and not p.runs_folder.clean_btn.isEnabled()


def test_the_class_conditional_choice_reaches_the_config(qtbot, ctx):
    from diffusion_gui.gui.panels.train import TrainPanel
    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    assert not p.config().conditional
    p.conditional.setChecked(True)
    assert p.label_dropout.isEnabled()
    p.label_dropout.setValue(0.2)
    cfg = p.config()
    assert cfg.conditional and cfg.label_dropout == pytest.approx(0.2)
    assert p.settings().conditional
    p.shutdown()


def test_a_learned_variance_run_trains_with_l_hybrid_and_loads(qtbot, panel, ctx, tmp_path, errors):
    """The Variance choice 'learned': the run is trained with L_hybrid, its grids are drawn, and
    the model it writes is a learned_range one the app loads; the choice is remembered."""
    from diffusion_gui.models.loader import load_model
    p = panel
    p.variance.setCurrentIndex(p.variance.findData("learned_range"))
    assert p.config().variance == "learned_range"
    p.steps.setValue(6)
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT) as ended:
        p.start()
    assert ended.args == ["finished"] and not errors
    assert not p.variance.isEnabled() or p.state != "running"
    run_dir = p._run.run_dir
    m = load_model(str(run_dir))
    assert m.diffusion.variance == "learned_range" and m.unet.config.out_channels == 2
    assert "L_hybrid" in (run_dir / "model_card.md").read_text()
    assert [g[0] for g in p.strip.grids] == [1, 4, 6]
    assert p.plots.loss_plot.getPlotItem().getAxis("left").labelText == "L_hybrid"
    s = QSettings(str(tmp_path / "v.ini"), QSettings.IniFormat)
    p.save_settings(s)
    b = TrainPanel(ctx)
    qtbot.addWidget(b)
    b.restore_settings(s)
    assert b.variance.currentData() == "learned_range"
    b.shutdown()


def test_measure_runs_and_can_be_cancelled(qtbot, panel, errors):
    """Measure times a few steps in the background; while it runs the button reads Cancel and
    stops it between two steps (a big preset's step takes long: the exerciser found one holding
    the app's Stop for over 90 s)."""
    p = panel
    p.measure_btn.click()
    assert p.measure_btn.text() == "Cancel" and p.measure_btn.isEnabled()
    qtbot.waitUntil(lambda: p.measure_btn.text() == "Measure", timeout=TIMEOUT)
    assert "measured" in p.estimate_label.text() and p.settings().timing_key() in p._timings
    p.preset.setCurrentIndex(p.preset.findData("medium"))
    p.size.setCurrentIndex(p.size.findData(32))
    p.measure_btn.click()
    qtbot.wait(100)
    p.measure_btn.click()                       # Cancel
    assert not p.measure_btn.isEnabled()
    qtbot.waitUntil(lambda: p.measure_btn.text() == "Measure" and p.measure_btn.isEnabled(), timeout=TIMEOUT)
    assert p.settings().timing_key() not in p._timings and not errors
