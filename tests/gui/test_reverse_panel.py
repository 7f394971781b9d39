"""The reverse panel, offscreen, with a tiny random diffusers checkpoint (tests/tiny_models.py).

What the issue asks to show: the GUI's final frame equals ``diffusion-gui sample``'s .npz for the
same model, sampler and seed; Stop before the next UNet call; Step / Continue; closing during a
run; two runs in quick succession; 50 Generate/Stop cycles without thread or memory growth;
NaN stops the run; denoising the forward panel's image.
"""
from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings, QThread  # noqa: E402
from PySide6.QtWidgets import QVBoxLayout, QWidget  # noqa: E402

from diffusion_gui.gui.context import AppContext  # noqa: E402
from diffusion_gui.gui.panels.reverse import ReversePanel  # noqa: E402
from diffusion_gui.gui.workers import running_jobs  # noqa: E402
from diffusion_gui.sessions.reverse import prepare_original  # noqa: E402

T = 20            # timesteps of the test model: fast runs
TIMEOUT = 30000   # ms


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def ckpt(checkpoints):
    return checkpoints(timesteps=T)


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model(timesteps=T)


class Wrapped:
    """A LoadedModel look-alike that counts UNet calls, can be slowed down or poisoned."""

    def __init__(self, inner, delay=0.0, nan_at=None, poison=float("nan")):
        self.inner, self.delay, self.nan_at, self.poison = inner, delay, nan_at, poison
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, x, i):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        out = self.inner(x, i)
        if self.nan_at is not None and self.calls >= self.nan_at:
            out = out * self.poison
        return out


def _set_model(ctx, m, spec="tiny"):
    ctx.model, ctx.model_spec = m, spec
    ctx.model_changed.emit()


@pytest.fixture
def panel(qtbot, ctx, model):
    p = ReversePanel(ctx)
    qtbot.addWidget(p)
    _set_model(ctx, model)
    p.batch.setValue(4)
    p.seed.setValue(5)
    yield p
    p.shutdown()


def _configure(p, sampler="ddpm", steps=None, eta=0.0, batch=4, seed=5):
    p.sampler.setCurrentIndex(p.sampler.findData(sampler))
    if steps is not None:
        p.steps.setValue(steps)
    p.eta.setValue(eta)
    p.batch.setValue(batch)
    p.seed.setValue(seed)


def _run_to_end(qtbot, p, button=None):
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT) as blocker:
        (button or p.generate_btn).click()
    return blocker.args


def _cli_images(ckpt, tmp_path, *args):
    from diffusion_gui.cli import main
    out = tmp_path / "cli.npz"
    assert main(["sample", "--model", str(ckpt), "-o", str(out), *args]) == 0
    with np.load(out) as z:
        return z["images"]


# ------------------------------------------------------------------------------ GUI == CLI
@pytest.mark.parametrize("sampler, steps, eta, cli", [
    ("ddpm", None, 0.0, ["--sampler", "ddpm"]),
    ("ddpm_strided", 7, 0.0, ["--sampler", "ddpm", "--steps", "7"]),
    ("ddim", 5, 0.5, ["--sampler", "ddim", "--steps", "5", "--eta", "0.5"]),
])
def test_final_frame_equals_cli_sample(qtbot, panel, ckpt, tmp_path, sampler, steps, eta, cli):
    _configure(panel, sampler, steps, eta, batch=4, seed=5)
    rid, how = _run_to_end(qtbot, panel)
    assert how == "finished"
    gui = panel.final_images()
    assert gui is not None and gui.dtype == np.uint8 and gui.shape == (4, 16, 16, 1)
    expected = _cli_images(ckpt, tmp_path, "--batch", "4", "--seed", "5", *cli)
    np.testing.assert_array_equal(gui, expected)
    # the last frame shown is the final sample, and the progress bar is full
    np.testing.assert_array_equal(panel.xt_view.image(), _tile(expected))
    assert panel.progress.value() == panel.progress.maximum()
    assert panel.t_label.text().startswith("t = 0")
    # the whole trajectory was recorded (it fits the budget) and can be scrubbed
    frames = panel.recorded_frames()
    n = {"ddpm": T, "ddpm_strided": 7, "ddim": 5}[sampler]
    assert [f.step for f in frames] == list(range(n + 1))
    assert frames[0].t == (T if sampler == "ddpm" else frames[0].t) and frames[-1].t == 0
    assert panel.slider.isEnabled() and panel.slider.maximum() == n
    panel.slider.setValue(0)
    assert panel.t_label.text() == f"t = {frames[0].t} / {T}"
    np.testing.assert_array_equal(panel.xt_view.image(), _tile(frames[0].xt))


def _tile(a):
    from diffusion_gui.core.images import tile
    return tile(a)


# ------------------------------------------------------------------------------ Stop
def test_stop_takes_effect_before_the_next_unet_call(qtbot, panel, ctx, model):
    slow = Wrapped(model, delay=0.05)
    _set_model(ctx, slow)
    panel.generate_btn.click()
    qtbot.waitUntil(lambda: slow.calls >= 4, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: panel.film[0].image() is not None, timeout=TIMEOUT)
    assert panel.film[-1].image() is None           # the live strip fills in as the run goes
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT) as blocker:
        panel.stop_btn.click()
    assert blocker.args[1] == "stopped"
    calls = slow.calls
    assert 4 <= calls < T
    qtbot.wait(200)
    assert slow.calls == calls                      # nothing ran after the stop
    frames = panel.recorded_frames()
    # every item is recorded except, possibly, the one computed while Stop was on its way
    assert calls - 1 <= len(frames) <= calls
    assert frames[0].t == T and [f.t for f in frames] == list(range(T, T - len(frames), -1))
    assert panel.final_images() is None             # a stopped run has no final sample
    assert panel.slider.isEnabled() and panel.stop_btn.isEnabled() is False
    assert not panel._run.job.is_running()
    assert "stopped after step" in panel.progress_text.text()


# ------------------------------------------------------------------------------ live display
def test_live_numbers_change_at_most_text_rate_and_the_end_shows_them_all(qtbot, panel, ctx,
                                                                         model, monkeypatch):
    """The pictures follow every live frame; the numbers beside them (formula, β/σ/ᾱ, captions,
    progress line) at most TEXT_RATE times a second; the final frame shows all of them."""
    from diffusion_gui.gui.panels import reverse
    monkeypatch.setattr(panel.pacer, "share", None)   # no pacing: up to 30 frames a second
    slow = Wrapped(model, delay=0.04)
    _set_model(ctx, slow)
    _configure(panel, "ddpm", batch=2)
    formulas, shown = [], []
    real = panel.formula.setText
    monkeypatch.setattr(panel.formula, "setText", lambda text: (formulas.append(text), real(text)))
    panel.frame_shown.connect(shown.append)
    t0 = time.monotonic()
    _run_to_end(qtbot, panel)
    elapsed = time.monotonic() - t0
    assert panel.pacer.share is None
    live = [f for f in formulas[:-1]]               # the last one: the final frame, after the run
    assert len(shown) >= 12                         # ~0.9 s of run at up to 30 frames a second
    assert len(live) <= reverse.TEXT_RATE * elapsed + 2 < len(shown)
    f = panel.recorded_frames()[-1]
    assert f.t == 0 and "final sample" in panel.numbers.text()
    assert panel.xt_view._caption == f"mean {f.stats[0]:+.3f}   std {f.stats[1]:.3f}"
    assert panel.progress.value() == panel.progress.maximum() == T


# ------------------------------------------------------------------------------ Step / Continue
def test_step_then_continue_gives_the_same_images(qtbot, panel, ctx, model, ckpt, tmp_path):
    counted = Wrapped(model)
    _set_model(ctx, counted)
    _configure(panel, "ddpm", batch=2, seed=11)
    for k in range(1, 4):
        panel.step_btn.click()
        qtbot.waitUntil(lambda: panel._state == "paused", timeout=TIMEOUT)
        assert counted.calls == k                   # one UNet call per Step
        assert panel.t_label.text() == f"t = {T - k + 1} / {T}"
        assert panel.continue_btn.isEnabled() and panel.step_btn.isEnabled()
        assert len(panel.recorded_frames()) == k
    assert panel.slider.isEnabled()                 # scrub while paused
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT) as blocker:
        panel.continue_btn.click()
    assert blocker.args[1] == "finished" and counted.calls == T
    expected = _cli_images(ckpt, tmp_path, "--batch", "2", "--seed", "11")
    np.testing.assert_array_equal(panel.final_images(), expected)


def test_step_while_running_pauses(qtbot, panel, ctx, model):
    slow = Wrapped(model, delay=0.05)
    _set_model(ctx, slow)
    panel.generate_btn.click()
    qtbot.waitUntil(lambda: slow.calls >= 2, timeout=TIMEOUT)
    assert panel.step_btn.text() == "Pause"
    panel.step_btn.click()
    qtbot.waitUntil(lambda: panel._state == "paused", timeout=TIMEOUT)
    calls = slow.calls
    qtbot.wait(150)
    assert slow.calls == calls
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT) as blocker:
        panel.stop_btn.click()
    assert blocker.args[1] == "stopped"


# ------------------------------------------------------------------------------ closing
class Host(QWidget):
    """What the main window does: panels' shutdown() on close."""

    def __init__(self, ctx):
        super().__init__()
        self.panel = ReversePanel(ctx)
        QVBoxLayout(self).addWidget(self.panel)

    def closeEvent(self, e):
        self.panel.shutdown()
        super().closeEvent(e)


def test_closing_the_window_during_a_run_stops_and_joins(qtbot, qtlog, ctx, model):
    slow = Wrapped(model, delay=0.05)
    host = Host(ctx)
    qtbot.addWidget(host)
    host.show()
    _set_model(ctx, slow)
    host.panel.generate_btn.click()
    qtbot.waitUntil(lambda: slow.calls >= 3, timeout=TIMEOUT)
    job = host.panel._run.job
    host.close()
    assert not job.is_running() and job.thread.isFinished()   # joined by close
    calls = slow.calls
    host.deleteLater()
    qtbot.wait(100)
    assert slow.calls == calls
    host.panel.shutdown()                                      # idempotent
    bad = [r.message for r in qtlog.records if "QThread" in r.message or "Destroyed" in r.message
           or "thread" in r.message.lower()]
    assert bad == []


# ------------------------------------------------------------------------------ quick succession
def test_two_runs_in_quick_succession(qtbot, panel, ctx, model, ckpt, tmp_path):
    slow = Wrapped(model, delay=0.01)
    _set_model(ctx, slow)
    ended = []
    panel.run_ended.connect(lambda rid, how: ended.append((rid, how)))
    _configure(panel, "ddpm", batch=3, seed=1)
    panel.generate_btn.click()
    job1 = panel._run.job
    _configure(panel, "ddpm", batch=3, seed=2)
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        panel.generate_btn.click()
    job2 = panel._run.job
    assert job1 is not job2 and job1.worker.is_cancelled
    qtbot.waitUntil(lambda: not job1.is_running(), timeout=TIMEOUT)
    assert ended == [(job2.run_id, "finished")]           # nothing of run 1 arrived
    assert job1.relay.cbs == (None,) * len(job1.relay.cbs)
    expected = _cli_images(ckpt, tmp_path, "--batch", "3", "--seed", "2")
    np.testing.assert_array_equal(panel.final_images(), expected)


# ------------------------------------------------------------------------------ no leaks
def _live_qthreads():
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is QThread)


RSS_GROWTH_LIMIT_MB = 40   # the stated bound for 50 Generate/Stop cycles (batch 16, 16 px, T = 20)


def test_fifty_generate_stop_cycles_leak_nothing(qtbot, panel, ctx, model):
    psutil = pytest.importorskip("psutil")
    proc = psutil.Process()
    _configure(panel, "ddpm", batch=16, seed=0)

    def cycle():
        with qtbot.waitSignal(panel.frame_shown, timeout=TIMEOUT):
            panel.generate_btn.click()
        with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
            panel.stop_btn.click()

    for _ in range(3):       # warm up: torch's thread pools, Qt's caches
        cycle()
    qtbot.waitUntil(lambda: running_jobs() == 0, timeout=TIMEOUT)
    gc.collect()
    base = (threading.active_count(), proc.num_threads(), _live_qthreads(), proc.memory_info().rss)
    for _ in range(50):
        cycle()
    qtbot.waitUntil(lambda: running_jobs() == 0, timeout=TIMEOUT)
    qtbot.wait(50)
    gc.collect()
    now = (threading.active_count(), proc.num_threads(), _live_qthreads(), proc.memory_info().rss)
    assert now[0] == base[0], "Python threads grew"
    assert now[1] <= base[1], f"OS threads grew: {base[1]} -> {now[1]}"
    assert now[2] <= base[2] + 1, f"QThread objects grew: {base[2]} -> {now[2]}"
    growth = (now[3] - base[3]) / 2 ** 20
    print(f"50 cycles: python threads {base[0]}->{now[0]}, OS threads {base[1]}->{now[1]}, "
          f"QThread objects {base[2]}->{now[2]}, RSS {base[3] / 2**20:.0f}->{now[3] / 2**20:.0f} MB")
    assert growth < RSS_GROWTH_LIMIT_MB, f"RSS grew by {growth:.1f} MB"


# ------------------------------------------------------------------------------ NaN
def test_nan_stops_the_run_with_a_message(qtbot, panel, ctx, model):
    poisoned = Wrapped(model, nan_at=4)
    _set_model(ctx, poisoned)
    errors = []
    ctx.error.connect(lambda title, msg: errors.append(msg))
    rid, how = _run_to_end(qtbot, panel)
    assert how == "failed"
    assert len(errors) == 1 and "NaN or infinity" in errors[0] and f"t = {T - 3}" in errors[0]
    assert poisoned.calls == 4                      # no call after the bad one
    frames = panel.recorded_frames()
    assert [f.t for f in frames] == [T, T - 1, T - 2]   # the garbage step is neither kept nor shown
    assert panel.t_label.text() == f"t = {T - 2} / {T}"
    assert "NaN" in panel.progress_text.text()
    assert panel.generate_btn.isEnabled()           # the panel stays usable
    _set_model(ctx, model)
    assert _run_to_end(qtbot, panel)[1] == "finished"


def test_infinity_stops_the_run_too(qtbot, panel, ctx, model):
    _set_model(ctx, Wrapped(model, nan_at=2, poison=float("inf")))
    panel.clip.setCurrentIndex(2)                   # off: clipping would tame an infinite x0
    errors = []
    ctx.error.connect(lambda title, msg: errors.append(msg))
    assert _run_to_end(qtbot, panel)[1] == "failed"
    assert len(errors) == 1 and "NaN or infinity" in errors[0]
    assert [f.t for f in panel.recorded_frames()] == [T]


# ------------------------------------------------------------------------------ denoise
def test_denoise_from_the_forward_panel(qtbot, panel, ctx):
    yy, xx = np.mgrid[0:40, 0:60]
    ctx.image = np.stack([xx * 4, yy * 6, 255 - xx * 4], axis=-1).astype(np.uint8)
    ctx.image_changed.emit()
    ctx.set_forward_t(8)
    assert panel.denoise_t.value() == 8
    ctx.set_forward_t(500)                          # beyond the model's T: clamped
    assert panel.denoise_t.value() == T
    panel.denoise_t.setValue(8)
    assert panel.denoise_btn.isEnabled()
    _configure(panel, "ddpm", batch=3, seed=4)
    assert _run_to_end(qtbot, panel, panel.denoise_btn)[1] == "finished"
    frames = panel.recorded_frames()
    assert frames[0].t == 8 and len(frames) == 9 and frames[-1].t == 0
    assert not panel.orig_view.isHidden()
    orig = panel.orig_view.image()
    assert orig.shape == (16, 16, 1) and orig.dtype == np.uint8
    np.testing.assert_array_equal(orig, prepare_original(ctx.image, 16, 1))
    assert "PSNR" in panel.result_label.text()
    # the start really is the original noised to t = 8 (same noise, computed independently)
    import torch

    from diffusion_gui.core.images import to_float_array, to_uint8
    m = ctx.model
    x0 = torch.from_numpy(to_float_array(orig))[None].repeat(3, 1, 1, 1)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4 + 7919))
    xt = m.diffusion.q_sample(x0, torch.full((3,), 7), noise).float()
    np.testing.assert_array_equal(frames[0].xt, to_uint8(xt))
    labels = [label for label, _ in panel.export_sources()]
    assert "Reverse: original and denoised" in labels
    # a Generate run hides the original again
    assert _run_to_end(qtbot, panel)[1] == "finished"
    assert panel.orig_view.isHidden()


# ------------------------------------------------------------------------------ trajectory bound
def test_long_run_is_decimated_within_the_budget(qtbot, panel):
    _configure(panel, "ddpm", batch=4)
    frame_bytes = 2 * 4 * 16 * 16                        # x_t and x0_pred, uint8
    panel.budget_bytes = 8 * frame_bytes                 # room for 8 of 21 frames
    assert _run_to_end(qtbot, panel)[1] == "finished"
    frames = panel.recorded_frames()
    assert len(frames) == 8 and frames[0].t == T and frames[-1].t == 0
    assert [f.t for f in frames[-2:]] == [1, 0]
    assert sum(f.xt.nbytes + (f.x0.nbytes if f.x0 is not f.xt else 0) for f in frames) \
        <= panel.budget_bytes
    assert "kept 8 of 21" in panel.traj_note.text()


# ------------------------------------------------------------------------------ settings, exports
def test_settings_round_trip(qtbot, panel, ctx, tmp_path):
    _configure(panel, "ddim", steps=12, eta=0.3, batch=9, seed=1234)
    panel.clip.setCurrentIndex(2)                      # off
    s = QSettings(str(tmp_path / "panel.ini"), QSettings.IniFormat)
    s.beginGroup("reverse")
    panel.save_settings(s)
    s.endGroup()
    s.sync()
    other = ReversePanel(ctx)
    qtbot.addWidget(other)
    s2 = QSettings(str(tmp_path / "panel.ini"), QSettings.IniFormat)
    s2.beginGroup("reverse")
    other.restore_settings(s2)
    assert other.params() == panel.params() == {
        "sampler": "ddim", "steps": 12, "eta": 0.3, "batch": 9, "seed": 1234, "clip": False,
        "variance": None, "clip_eps": "clipped", "class_label": "any", "guidance": 1.0,
        "device": "auto", "dtype": "float32"}
    bad = QSettings(str(tmp_path / "bad.ini"), QSettings.IniFormat)
    for k, v in {"sampler": "nonsense", "steps": "x", "eta": "y", "seed": "-", "batch": [1],
                 "clip": 3, "variance": "huge"}.items():
        bad.setValue(k, v)
    other.restore_settings(bad)                          # falls back, does not raise
    assert other.params()["sampler"] == "ddpm"
    other.shutdown()


def test_export_sources(qtbot, panel):
    assert panel.export_sources() == []
    _configure(panel, "ddim", steps=4, batch=4)
    assert _run_to_end(qtbot, panel)[1] == "finished"
    src = dict(panel.export_sources())
    final = src["Reverse: final samples (grid)"]()
    assert len(final) == 1 and final[0].dtype == np.uint8 and final[0].shape == (33, 33, 1)
    frames, captions = src["Reverse: trajectory, x_t and predicted x₀ side by side"]()
    assert len(frames) == len(captions) == 5 and frames[0].shape[1] > 2 * 33
    assert captions[-1].startswith("t = 0")


def test_exported_gif_equals_the_cli_gif(qtbot, panel, ckpt, tmp_path):
    """The panel's trajectory export and ``sample --gif`` of the same run: identical frames."""
    from PIL import Image, ImageSequence

    from diffusion_gui.cli import main
    from diffusion_gui.sessions.export_run import run_export
    from diffusion_gui.sessions.export_sources import ExportOptions
    _configure(panel, "ddpm_strided", steps=9, batch=4, seed=3)
    assert _run_to_end(qtbot, panel)[1] == "finished"
    src = {s.label: s for s in panel.export_sources()}[
        "Reverse: trajectory, x_t and predicted x₀ side by side"]
    run_export(src, ExportOptions(n_frames=5, spacing="even", which="both", caption=True), "gif",
               tmp_path / "gui.gif")
    assert main(["sample", "--model", str(ckpt), "--steps", "9", "--batch", "4", "--seed", "3",
                 "-o", str(tmp_path / "x.png"), "--gif", str(tmp_path / "cli.gif"), "--frames", "5",
                 "--preview", "both", "--caption"]) == 0

    def frames(path):
        with Image.open(path) as im:
            return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]

    a, b = frames(tmp_path / "cli.gif"), frames(tmp_path / "gui.gif")
    assert len(a) == len(b) == 5
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------------ model chooser
def test_model_loads_off_the_gui_thread_and_shows_its_facts(qtbot, panel, ctx, ckpt, monkeypatch):
    import diffusion_gui.models.loader as loader
    threads = []
    real = loader.load_model

    def spy(spec):
        threads.append(threading.get_ident())
        return real(spec)

    monkeypatch.setattr(loader, "load_model", spy)
    ctx.model = None
    ctx.model_changed.emit()
    assert not panel.generate_btn.isEnabled()
    with qtbot.waitSignal(ctx.model_changed, timeout=TIMEOUT):
        panel.picker.load(str(ckpt))
    assert threads and threads[0] != threading.get_ident()
    assert ctx.model is not None and panel.generate_btn.isEnabled()
    facts = {k: v.text() for k, v in panel.picker._fact_labels.items()}
    assert facts["Resolution"] == "16 × 16 px" and facts["Timesteps T"] == str(T)
    assert facts["Channels"].startswith("1") and facts["Variance"] == "fixed_small"
    assert facts["β schedule"] == "linear" and facts["Parameters"].endswith("k")
    assert panel.picker.combo.currentData() == str(ckpt)


def test_a_failed_load_keeps_the_model(qtbot, panel, ctx, tmp_path):
    before = ctx.model
    errors = []
    ctx.error.connect(lambda title, msg: errors.append(msg))
    (tmp_path / "empty").mkdir()
    with qtbot.waitSignal(ctx.model_changed, timeout=TIMEOUT):
        panel.picker.load(str(tmp_path / "empty"))
    assert ctx.model is before and len(errors) == 1 and "config.json" in errors[0]
    assert panel.picker.combo.isEnabled() and panel.generate_btn.isEnabled()


# ------------------------------------------------------------------------------ in the real window
def test_in_the_main_window_close_during_a_run_and_settings_persist(qtbot, qtlog, model, tmp_path,
                                                                    monkeypatch):
    from diffusion_gui.gui import main_window as mw
    monkeypatch.setattr(mw, "PANELS", [("reverse", "reverse", "ReversePanel")])
    ini = str(tmp_path / "win.ini")
    ctx = AppContext(settings=QSettings(ini, QSettings.IniFormat))
    win = mw.MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    panel = win.panels["reverse"]
    assert isinstance(panel, ReversePanel)
    slow = Wrapped(model, delay=0.05)
    _set_model(ctx, slow)
    panel.seed.setValue(77)
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddim"))
    panel.generate_btn.click()
    qtbot.waitUntil(lambda: slow.calls >= 2, timeout=TIMEOUT)
    job = panel._run.job
    win.close()
    assert not job.is_running()
    calls = slow.calls
    qtbot.wait(100)
    assert slow.calls == calls
    assert not [r.message for r in qtlog.records if "thread" in r.message.lower()]
    ctx2 = AppContext(settings=QSettings(ini, QSettings.IniFormat))
    win2 = mw.MainWindow(ctx2)
    qtbot.addWidget(win2)
    p2 = win2.panels["reverse"]
    assert p2.seed.value() == 77 and p2.sampler.currentData() == "ddim"
    win2.close()


def test_trajectory_strip_follows_the_clicked_sample(qtbot, panel):
    from PySide6.QtCore import QPoint, Qt
    panel.resize(1200, 800)
    panel.show()
    qtbot.waitExposed(panel)
    _configure(panel, "ddpm", batch=4, seed=5)
    assert _run_to_end(qtbot, panel)[1] == "finished"
    frames = panel.recorded_frames()
    shown = [fr for fr in panel.film if fr.key >= 0]
    assert len(shown) == 10 and shown[0].key == 0 and shown[-1].key == len(frames) - 1
    np.testing.assert_array_equal(shown[-1].image(), frames[-1].xt[0])
    assert shown[-1].current                              # the slider sits on the last frame
    # click the second sample (row 0, column 1 of the 2 x 2 grid)
    r = panel.xt_view.image_rect()
    qtbot.mouseClick(panel.xt_view, Qt.LeftButton,
                     pos=QPoint(int(r.left() + r.width() * 0.75), int(r.top() + r.height() * 0.25)))
    np.testing.assert_array_equal(shown[-1].image(), frames[-1].xt[1])
    assert "sample 2" in panel.film_head.text()
    qtbot.mouseClick(shown[0], Qt.LeftButton)             # jump to the first frame
    assert panel.slider.value() == 0 and panel.t_label.text() == f"t = {T} / {T}"
    assert shown[0].current and not shown[-1].current


# ------------------------------------------------------------------------------ first use (issue #15)
def _shown(qtbot, p):
    p.resize(1200, 800)
    p.show()
    qtbot.waitExposed(p)
    p.activateWindow()
    qtbot.waitUntil(lambda: p.isActiveWindow(), timeout=TIMEOUT)


def test_the_run_box_and_the_trajectory_say_the_same_count(qtbot, panel):
    from diffusion_gui.sessions.reverse import where_text
    _configure(panel, "ddpm", batch=2)
    for k in range(1, 3):
        panel.step_btn.click()
        qtbot.waitUntil(lambda: panel._state == "paused", timeout=TIMEOUT)
        where = where_text(T - k + 1, k - 1, T)         # k network steps done, at t = T - k + 1
        assert panel.progress_text.text().startswith(f"paused after {where}")
        assert panel.slider_label.text() == where
        assert panel.progress.value() == k
    panel.step_btn.click()
    qtbot.waitUntil(lambda: panel._state == "paused", timeout=TIMEOUT)
    panel.slider.setValue(0)                            # scrubbing names the frame the same way
    assert panel.slider_label.text() == where_text(T, 0, T)
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        panel.stop_btn.click()


def test_one_step_says_1_frame(qtbot, panel):
    panel.step_btn.click()
    qtbot.waitUntil(lambda: panel._state == "paused", timeout=TIMEOUT)
    assert panel.traj_note.text().startswith("1 frame recorded")
    assert "step 1 / 20 · t = 20" in panel.progress_text.text()
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        panel.stop_btn.click()


def test_step_after_stop_asks_before_discarding_the_run(qtbot, panel, ctx, model):
    slow = Wrapped(model, delay=0.03)
    _set_model(ctx, slow)
    panel.generate_btn.click()
    qtbot.waitUntil(lambda: slow.calls >= 3, timeout=TIMEOUT)
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        panel.stop_btn.click()
    run, frames = panel._run, panel.recorded_frames()
    calls = slow.calls
    assert panel.step_btn.isEnabled()
    panel.step_btn.click()                              # asks, non-blocking; nothing is lost yet
    box = panel.confirm_box
    assert box is not None and box.isVisible() and "discarded" in box.text()
    qtbot.wait(100)
    assert panel._run is run and len(panel.recorded_frames()) == len(frames) and slow.calls == calls
    keep = [b for b in box.buttons() if b.text() == "Keep the run"][0]
    keep.click()
    assert panel.confirm_box is None and panel._run is run and panel.slider.isEnabled()
    panel.step_btn.click()
    new = [b for b in panel.confirm_box.buttons() if b.text().startswith("Discard")][0]
    new.click()
    assert panel._run is not run
    qtbot.waitUntil(lambda: panel._state == "paused", timeout=TIMEOUT)
    assert len(panel.recorded_frames()) == 1 and panel.recorded_frames()[0].t == T
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        panel.stop_btn.click()


@pytest.mark.parametrize("how", ["pause", "stop"])
def test_pause_and_stop_focus_the_trajectory(qtbot, panel, ctx, model, how):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication
    _shown(qtbot, panel)
    slow = Wrapped(model, delay=0.03)
    _set_model(ctx, slow)
    qtbot.mouseClick(panel.generate_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: slow.calls >= 3, timeout=TIMEOUT)
    if how == "pause":
        qtbot.mouseClick(panel.step_btn, Qt.LeftButton)
        qtbot.waitUntil(lambda: panel._state == "paused", timeout=TIMEOUT)
    else:
        with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
            qtbot.mouseClick(panel.stop_btn, Qt.LeftButton)
    assert QApplication.focusWidget() is panel.slider
    k = panel.slider.value()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Left)   # the next arrow key scrubs
    assert panel.slider.value() == k - 1 and panel.denoise_t.value() == 1
    if how == "pause":
        with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
            panel.stop_btn.click()


def test_denoise_mode_moves_nothing_and_its_labels_agree(qtbot, panel, ctx):
    from PySide6.QtCore import QPoint
    _shown(qtbot, panel)
    _configure(panel, "ddim", steps=4, batch=4)
    assert _run_to_end(qtbot, panel)[1] == "finished"
    qtbot.wait(50)
    y = panel.xt_view.mapTo(panel, QPoint(0, 0)).y()
    below = panel.slider.mapTo(panel, QPoint(0, 0)).y()
    ctx.image = np.full((40, 60, 3), 128, np.uint8)
    ctx.image_changed.emit()
    panel.denoise_t.setValue(10)
    assert _run_to_end(qtbot, panel, panel.denoise_btn)[1] == "finished"
    qtbot.wait(50)
    assert not panel.orig_view.isHidden() and panel.result_label.isVisible()
    assert panel.xt_view.mapTo(panel, QPoint(0, 0)).y() == y
    assert panel.slider.mapTo(panel, QPoint(0, 0)).y() == below
    title, caption = panel.orig_head.text(), panel.orig_view._caption
    assert "clean" in title and "clean" in caption and "noised to" not in title
    assert "t = 10" in caption


def test_f1_lists_the_reverse_shortcuts(qtbot, ctx, monkeypatch):
    from diffusion_gui.gui import main_window as mw
    monkeypatch.setattr(mw, "PANELS", [("reverse", "reverse", "ReversePanel")])
    win = mw.MainWindow(ctx)
    qtbot.addWidget(win)
    rows = [r for r in win.shortcut_rows() if r[0] == "Reverse"]
    what = {r[2] for r in rows}
    assert {"Reverse: Generate", "Reverse: Stop", "Reverse: Step / Pause",
            "Reverse: Continue"} <= what
    assert any("Left" in r[1] for r in rows)
    win.close()


# ------------------------------------------------------------------------------ power spectrum
def test_spectrum_follows_the_shown_frame(qtbot, panel):
    """The spectrum box shows the radially averaged power of the shown frame's x_t and predicted
    x_0 (the uint8 pictures, as floats in [-1, 1]), and follows the scrubber."""
    from diffusion_gui.core.spectrum import radial_power
    _configure(panel, "ddim", steps=5)
    _run_to_end(qtbot, panel)
    frames = panel._run.traj.snapshot()
    items = panel.spectrum.view.items

    def want(u8):
        return radial_power(u8.astype(np.float64).transpose(0, 3, 1, 2) / 127.5 - 1)[1]

    for k in (0, len(frames) - 1):
        panel.slider.setValue(k)
        f = frames[k]
        assert np.allclose(items["xt"].yData, np.maximum(want(f.xt), 1e-8))
        assert np.allclose(items["x0"].yData, np.maximum(want(f.x0), 1e-8))
        assert f"t = {f.t}" in panel.spectrum.view.readout.text()
    # at t = T the picture is noise: flat; at t = 0 x_t is the sample itself
    first, last = frames[0], frames[-1]
    assert np.allclose(want(last.xt), want(last.x0))
    flat = want(first.xt)
    assert flat.max() / flat.min() < 4


def test_a_class_conditional_model_gets_class_and_guidance_controls(qtbot, ctx, tiny_model):
    panel = ReversePanel(ctx)
    qtbot.addWidget(panel)
    box = panel.guidance_box
    assert not box.class_combo.isEnabled() and not box.w_spin.isEnabled()
    assert panel.params()["class_label"] == "any"            # unconditional: no class asked
    ctx.model = tiny_model(classes=3, timesteps=20)
    ctx.model_changed.emit()
    assert box.class_combo.isEnabled() and box.w_spin.isEnabled()
    assert [box.class_combo.itemData(k) for k in range(box.class_combo.count())] == ["any", "rows", "all", "0", "1", "2"]
    box.set_class_choice("2")
    box.w_spin.setValue(3.0)
    assert (panel.params()["class_label"], panel.params()["guidance"]) == ("2", 3.0)
    _configure(panel, "ddim", steps=3, eta=0.0, batch=2, seed=0)
    _run_to_end(qtbot, panel)
    assert panel._run.traj.snapshot()[-1].t == 0              # the guided run went to the end
    ctx.model = tiny_model(timesteps=20)                      # back to unconditional: the choice is kept
    ctx.model_changed.emit()
    assert panel.settings().class_label == "2" and panel.params()["class_label"] == "any"
    panel.shutdown()


def test_a_model_with_its_own_examples_denoises_one_by_default(qtbot, ctx, checkpoints, tmp_path):
    """The demo shows the model on its own kind of data: a held-out example, unless the user
    picks the forward panel's image, which the note says the model has never seen the like of."""
    import shutil

    from diffusion_gui.models.examples import write_heldout
    from diffusion_gui.models.loader import load_model
    d = shutil.copytree(checkpoints(timesteps=T), tmp_path / "own")
    pics = np.zeros((3, 16, 16, 1), np.uint8)
    pics[1, 4:12, 4:12] = 255                                # example #2: a white square
    write_heldout(d, pics, "glyph")
    p = ReversePanel(ctx)
    qtbot.addWidget(p)
    _set_model(ctx, load_model(str(d)))
    assert p.denoise_source.currentData() == "example" and p.denoise_example.maximum() == 3
    assert p.denoise_btn.isEnabled() and "Held-out glyph #1" in p.denoise_note.text()
    p.denoise_example.setValue(2)
    p.denoise_t.setValue(5)
    with qtbot.waitSignal(p.run_ended, timeout=TIMEOUT):
        p.denoise_btn.click()
    np.testing.assert_array_equal(p._run.original, pics[1])
    p.denoise_source.setCurrentIndex(p.denoise_source.findData("image"))
    ctx.image = np.full((32, 32, 3), 128, np.uint8)
    ctx.image_changed.emit()
    assert "never seen a picture like this" in p.denoise_note.text()
    _set_model(ctx, load_model(str(checkpoints(timesteps=T))))   # no examples of its own: the image
    assert p.denoise_source.currentData() == "image"
    p.shutdown()
