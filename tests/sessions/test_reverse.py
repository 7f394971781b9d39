"""The reverse panel's session, without Qt: the trajectory plan and recording, the update
formula, the denoise helpers, the settings, and that ``diffusion-gui sample --gif`` and the GUI's
export of the same run write identical frames (one selection rule, one composer)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageSequence

from diffusion_gui.sessions import reverse
from diffusion_gui.sessions.reverse import (
    Frame,
    ReverseRun,
    ReverseSettings,
    Trajectory,
    film_slots,
    keep_plan,
    prepare_original,
    psnr,
    update_formula,
)
from diffusion_gui.sessions.sampling import SamplingParams
from diffusion_gui.sessions.settings import from_raw, to_raw

T = 20


@pytest.fixture(scope="module")
def ckpt(checkpoints):
    return checkpoints(timesteps=T)


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model(timesteps=T)


def _record(model, params, **kw) -> ReverseRun:
    """A whole run as the GUI's worker drives it (observe every item), without a thread."""
    run = ReverseRun(model, params, **kw)
    for so in run.make_gen():
        run.observe(so)
    run.flush()
    return run


# ------------------------------------------------------------------------------ trajectory bound
def test_keep_plan():
    assert keep_plan(51, 100, 10_000) == list(range(51))
    plan = keep_plan(1001, 1_000, 100_000)              # room for 100 of 1001
    assert len(plan) <= 100 and plan[0] == 0 and plan[-1] == 1000
    assert plan[-25:] == list(range(976, 1001))         # every one of the last quarter
    assert plan == sorted(set(plan))
    assert keep_plan(10, 10**9, 1) == [0, 9]             # at least the first and the last


def test_trajectory_describe():
    tr = Trajectory(budget_bytes=2 ** 20)
    tr.plan(9, (1, 1, 4, 4))
    assert tr.keep == set(range(10)) and "0 frames" in tr.describe()


def test_film_slots():
    keys, nxt = film_slots(list(range(21)), 21, 10)
    assert keys[0] == 0 and keys[-1] == 20 and nxt is None and keys == sorted(keys)
    keys, nxt = film_slots([0, 1, 2], 21, 10, live=True)     # live: only the steps passed
    assert keys[:2] == [0, 2] and set(keys[2:]) == {-1} and nxt == 4
    assert film_slots([], 5, 4) == ([-1] * 4, None)


# ------------------------------------------------------------------------------ denoise helpers
def test_prepare_original_sizes_and_channels():
    rgb = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    grey = rgb[:, :, :1]
    assert prepare_original(rgb, 16, 1).shape == (16, 16, 1)
    assert prepare_original(rgb, 32, 3).shape == (32, 32, 3)
    g3 = prepare_original(grey, 16, 3)
    assert g3.shape == (16, 16, 3) and (g3[..., 0] == g3[..., 1]).all()
    assert prepare_original(grey[:, :, 0], 64, 1).shape == (64, 64, 1)
    same = prepare_original(rgb, 16, 3)
    assert np.isinf(psnr(same[None], same)).all() or (psnr(same[None], same) > 100).all()


# ------------------------------------------------------------------------------ settings
def test_settings_give_the_sampling_params():
    s = ReverseSettings(sampler="ddim", steps=12, eta=0.3, batch=9, seed=1234, clip="off")
    assert s.sampling_params().as_dict() == {"sampler": "ddim", "steps": 12, "eta": 0.3,
                                             "batch": 9, "seed": 1234, "clip": False,
                                             "variance": None, "clip_eps": "clipped",
                                             "class_label": "any", "guidance": 1.0,
                                             "device": "auto", "dtype": "float32"}
    assert s.sampling_params(device="cuda:1", dtype="float16").device == "cuda:1"
    c = ReverseSettings(class_label="3", guidance=4.0).sampling_params(conditional=True)
    assert (c.class_label, c.guidance) == ("3", 4.0)
    p = ReverseSettings(sampler="ddpm", steps=12, eta=0.3, variance="fixed_large").sampling_params()
    assert (p.steps, p.eta, p.variance, p.clip) == (None, 0.0, "fixed_large", None)
    assert from_raw(ReverseSettings, to_raw(s)) == s
    bad = from_raw(ReverseSettings, {"sampler": "nonsense", "steps": "x", "eta": "y", "seed": "-",
                                     "batch": [1], "clip": 3, "variance": "huge"})
    assert bad == ReverseSettings()


# ------------------------------------------------------------------------------ the update formula
def _coefs(html):
    import re
    return [float(x) for x in re.findall(r"<b style='color:#[0-9A-Fa-f]+'>([0-9.]+)</b>", html)]


def test_update_formula_uses_the_posterior_mean_coefficients():
    """The numbers shown for a DDPM step are the schedule's posterior-mean coefficients
    (computed in float64 in core/schedule.py), for every t and for a respaced (strided) run."""
    from diffusion_gui.core import GaussianDiffusion, NoiseSchedule, strided_indices
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 100))
    abar = d.schedule.alpha_bars.numpy()
    for j in (99, 50, 3, 1):
        s = d.schedule
        f = Frame(0, j + 1, float(s.betas[j]), float(s.posterior_variance[j].sqrt()), float(abar[j]),
                  None, None)
        c0, ct, sig = _coefs(update_formula(f, "ddpm", abar))
        assert abs(c0 - float(s.posterior_mean_coef1[j])) < 1e-4
        assert abs(ct - float(s.posterior_mean_coef2[j])) < 1e-4
        assert f"x<sub>{j}</sub>" in update_formula(f, "ddpm", abar)          # leads to t - 1
    r = d.respace(strided_indices(100, 10))
    rs = r.schedule
    for j in (9, 4, 1):
        t = int(r.index_map[j]) + 1
        f = Frame(0, t, float(rs.betas[j]), 0.0, float(abar[t - 1]), None, None)
        html = update_formula(f, "ddpm", abar)
        c0, ct, _ = _coefs(html)
        assert abs(c0 - float(rs.posterior_mean_coef1[j])) < 1e-4
        assert abs(ct - float(rs.posterior_mean_coef2[j])) < 1e-4
        assert f"x<sub>{int(r.index_map[j - 1]) + 1}</sub>" in html          # the next visited t
    last = Frame(0, 1, float(d.schedule.betas[0]), 0.0, float(abar[0]), None, None)
    assert _coefs(update_formula(last, "ddpm", abar))[:2] == [1.0, 0.0]
    assert "final sample" in update_formula(Frame(0, 0, 0, 0, 1, None, None), "ddpm", abar)


# ------------------------------------------------------------------------------ recording in batches
def test_kept_steps_are_recorded_in_batches_with_the_bytes_of_one_by_one(model):
    """The worker records kept steps RECORD_BATCH at a time (and at the last step); every frame
    holds exactly what converting that step alone gives."""
    from diffusion_gui.core.images import to_uint8

    params = dict(sampler="ddpm", steps=None, eta=0.0, batch=3, seed=5, clip=None, variance=None)
    run = ReverseRun(model, params)
    items = []
    for so in run.make_gen():
        run.observe(so)
        items.append(so)
        n = len(items)
        want = n if so.t == 0 else n - n % reverse.RECORD_BATCH
        assert len(run.traj) == want                  # nothing converted between batches
    frames = run.traj.snapshot()
    assert [f.step for f in frames] == [so.step for so in items]
    for f, so in zip(frames, items):
        assert np.array_equal(f.xt, to_uint8(so.x_t)) and np.array_equal(f.x0, to_uint8(so.x0_pred))
        m = so.x_t.double()
        assert f.stats[0] == pytest.approx(float(m.mean()), abs=1e-5)
        assert f.stats[1] == pytest.approx(float(m.std()), rel=1e-4)


def test_nan_stops_with_a_user_message(model):
    from diffusion_gui.errors import NonFiniteError, user_message

    class Poisoned:
        def __getattr__(self, name):
            return getattr(model, name)

        def __call__(self, x, i):
            return model(x, i) * float("nan")

    with pytest.raises(NonFiniteError) as e:
        _record(Poisoned(), SamplingParams(batch=1))
    assert "NaN or infinity" in user_message(e.value) and f"t = {T}" in user_message(e.value)


# ------------------------------------------------------------------------------ CLI GIF == GUI export
def _gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


@pytest.mark.parametrize("cli, params, which, caption", [
    (["--sampler", "ddpm"], SamplingParams(batch=4, seed=5), "both", False),
    (["--sampler", "ddpm", "--steps", "7"], SamplingParams(steps=7, batch=4, seed=5), "xt", True),
    (["--sampler", "ddim", "--steps", "5", "--eta", "0.5"],
     SamplingParams(sampler="ddim", steps=5, eta=0.5, batch=3, seed=2), "x0", False),
    (["--sampler", "ddim", "--steps", "9"], SamplingParams(sampler="ddim", steps=9, batch=2, seed=1),
     "both", True),
])
def test_cli_gif_and_gui_export_write_the_same_frames(ckpt, model, tmp_path, capsys, cli, params,
                                                      which, caption):
    """``diffusion-gui sample --gif`` and the export of the same run's TrajectorySource (as the
    reverse panel builds it) pick the same steps and compose the same frames."""
    from diffusion_gui.cli import main
    from diffusion_gui.sessions.export_run import run_export
    from diffusion_gui.sessions.export_sources import ExportOptions
    n = 6
    argv = ["sample", "--model", str(ckpt), "--batch", str(params.batch), "--seed", str(params.seed),
            *cli, "-o", str(tmp_path / "x.npz"), "--gif", str(tmp_path / "cli.gif"),
            "--frames", str(n), "--preview", which] + (["--caption"] if caption else [])
    assert main(argv) == 0
    capsys.readouterr()
    run = _record(model, params)
    label = {"xt": "Reverse: trajectory of x_t", "x0": "Reverse: trajectory of predicted x₀",
             "both": "Reverse: trajectory, x_t and predicted x₀ side by side"}[which]
    src = {s.label: s for s in run.export_sources()}[label]
    opts = ExportOptions(n_frames=n, spacing="even", which=which, caption=caption, scale=1)
    assert src.count(opts) == n
    run_export(src, opts, "gif", tmp_path / "gui.gif")
    cli_frames, gui_frames = _gif_frames(tmp_path / "cli.gif"), _gif_frames(tmp_path / "gui.gif")
    # (Pillow merges a frame identical to the one before it: DDIM's last x0_pred is x_0)
    assert len(cli_frames) == len(gui_frames) >= n - 1
    for a, b in zip(cli_frames, gui_frames):
        np.testing.assert_array_equal(a, b)
    with np.load(tmp_path / "x.npz") as z:                          # and the same final samples
        np.testing.assert_array_equal(z["images"], run.final_images())


# ------------------------------------------------------------------------------ the words (issue #15)
def test_one_count_one_wording():
    """Paused after the first Step of a 1000-step run: the run box and the scrubber say the same
    step count (network steps done) and name the frame by its t."""
    assert reverse.steps_done(0, 1000) == 1 and reverse.steps_done(142, 1000) == 143
    assert reverse.steps_done(1000, 1000) == 1000          # the final frame: no call more
    where = reverse.where_text(1000, 0, 1000)
    assert where == "step 1 / 1000 · t = 1000"
    assert reverse.run_text("paused", 1000, 0, 1000).startswith(f"paused after {where}")
    assert reverse.run_text("paused", 858, 142, 1000).startswith(
        "paused after " + reverse.where_text(858, 142, 1000))
    assert "step 143 / 1000" in reverse.where_text(858, 142, 1000)
    assert reverse.run_text("stopped", 858, 142, 1000) == "stopped after step 143 / 1000 · t = 858"
    assert reverse.run_text("done", 0, 20, 20) == "done after step 20 / 20 · t = 0"
    assert reverse.run_text("running", 858, 142, 1000) == reverse.where_text(858, 142, 1000)
    with pytest.raises(ValueError):
        reverse.run_text("nonsense", 0, 0, 1)


def test_plural_and_describe_say_1_frame():
    assert reverse.plural(1, "frame") == "1 frame" and reverse.plural(2, "frame") == "2 frames"
    tr = Trajectory(budget_bytes=2 ** 20)
    tr.plan(9, (1, 1, 4, 4))
    z = np.zeros((1, 4, 4, 1), np.uint8)
    tr.add(Frame(0, 9, 0.1, 0.1, 0.5, z, z))
    assert tr.describe().startswith("1 frame recorded")


def test_the_strip_outlines_the_nearest_frame_by_t():
    ts = [1000, 983, 966, 950, 948, 900]
    keys = [0, 2, 4, 5, -1]                 # the strip shows t = 1000, 966, 948, 900
    assert reverse.nearest_slot(keys, ts, 3) == 4        # t = 950: 948 is nearer than 966
    assert reverse.nearest_slot(keys, ts, 2) == 2 and reverse.nearest_slot(keys, ts, 5) == 5
    assert reverse.nearest_slot([0, 2], [10, 8, 6], 1) == 0   # a tie: the earlier one
    assert reverse.nearest_slot(keys, ts, -1) == -1 and reverse.nearest_slot([-1], ts, 0) == -1


def test_original_title_and_caption_agree():
    title, caption = reverse.original_labels(16, 600)
    assert "clean" in title and "clean" in caption and "x<sub>0</sub>" in title
    assert "noised to" not in title and "t = 600" in caption and "16 px" in title


def test_a_guided_runs_formula_says_how_epsilon_is_made():
    from diffusion_gui.models.conditioning import ClassInfo
    from diffusion_gui.sessions.reverse import guidance_text
    info = ClassInfo(("zero", "one"), 2, 0.15)
    assert guidance_text(SamplingParams(class_label="1", guidance=3.0), None) == ""
    text = guidance_text(SamplingParams(class_label="1", guidance=3.0), info)
    assert "<b>3</b>" in text and "class one" in text
    assert "unconditional" in guidance_text(SamplingParams(class_label="any"), info)
