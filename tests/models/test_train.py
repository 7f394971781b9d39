"""``diffusion-gui train`` and the training generator, on the CPU, a tiny model for a few steps.

- the output folder is a diffusers pipeline ``DDPMPipeline.from_pretrained`` loads, with a model
  card naming the data, architecture, steps and wall time;
- ``--resume`` continues from the saved step, and 3 + 3 resumed steps equal 6 straight steps;
- the sample grids the GUI shows are exactly ``make_sampler`` on the saved model, and drawing
  them does not change the training;
- ``send("checkpoint")`` saves the current step without taking another; Ctrl-C in the middle of a
  step keeps the last completed one.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from diffusion_gui.cli import main
from diffusion_gui.models.train import TrainConfig, train

TINY = ["--preset", "tiny", "--size", "8", "--batch", "8", "--threads", "1"]


def _state(folder):
    return torch.load(folder / "checkpoint" / "state.pt", map_location="cpu", weights_only=True)


def _cfg(tmp_path, name="run", **kw):
    base = dict(out_dir=str(tmp_path / name), preset="tiny", size=8, batch_size=8, steps=4, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_cli_train_writes_a_pipeline_with_a_model_card(tmp_path, capsys):
    from diffusers import DDPMPipeline
    out = tmp_path / "digits-tiny"
    assert main(["train", *TINY, "--steps", "4", "-o", str(out)]) == 0
    assert "saved" in capsys.readouterr().out
    pipe = DDPMPipeline.from_pretrained(str(out))
    assert pipe.unet.config.sample_size == 8 and pipe.unet.config.in_channels == 1
    assert pipe.scheduler.config.num_train_timesteps == 1000
    x = pipe.unet(torch.zeros(2, 1, 8, 8), torch.tensor([0, 999])).sample
    assert x.shape == (2, 1, 8, 8) and bool(torch.isfinite(x).all())
    card = (out / "model_card.md").read_text()
    assert "scikit-learn's bundled digits" in card                     # data
    assert "UNet2DModel, preset `tiny`" in card and re.search(r"[\d,]+ parameters", card)
    assert "| steps | 4 |" in card
    assert re.search(r"\| wall time \| [\d.]+ min", card)
    assert int(_state(out)["step"]) == 4
    # the app's own loader reads it too
    from diffusion_gui.models.loader import load_model
    assert load_model(str(out)).sample_size == 8


def test_cli_resume_continues_from_the_saved_step(tmp_path, capsys):
    a, b = tmp_path / "straight", tmp_path / "resumed"
    assert main(["train", *TINY, "--steps", "6", "-o", str(a)]) == 0
    assert main(["train", *TINY, "--steps", "3", "-o", str(b)]) == 0
    assert int(_state(b)["step"]) == 3
    capsys.readouterr()
    assert main(["train", *TINY, "--steps", "6", "-o", str(b), "--resume"]) == 0
    assert "(step 6," in capsys.readouterr().out
    sa, sb = _state(a), _state(b)
    assert int(sb["step"]) == 6
    for k in ("unet", "ema"):                 # the same computation as an uninterrupted run
        for name, v in sa[k].items():
            torch.testing.assert_close(sb[k][name], v, rtol=0, atol=0, msg=f"{k}.{name}")
    assert "| steps | 6 |" in (b / "model_card.md").read_text()
    # resuming a finished run does nothing
    assert main(["train", *TINY, "--steps", "6", "-o", str(b), "--resume"]) == 0
    assert "already trained" in capsys.readouterr().out


def test_sample_grids_match_make_sampler_and_leave_training_alone(tmp_path):
    from diffusion_gui.commands import make_sampler
    from diffusion_gui.core.images import to_uint8
    from diffusion_gui.core.sampling import run
    from diffusion_gui.models.loader import load_model
    plain = list(train(_cfg(tmp_path, "plain")))
    sampled = list(train(_cfg(tmp_path, "sampled", sample_every=2, sample_steps=5, sample_batch=4,
                              sample_seed=7)))
    assert [m.step for m in sampled if m.samples is not None] == [1, 2, 4]
    assert all(m.samples is None for m in plain)
    assert [m.loss for m in plain] == [m.loss for m in sampled]
    a, b = _state(tmp_path / "plain"), _state(tmp_path / "sampled")
    for name, v in a["ema"].items():
        torch.testing.assert_close(b["ema"][name], v, rtol=0, atol=0)
    grid = sampled[-1].samples
    assert grid.dtype == np.uint8 and grid.shape == (4, 8, 8, 1)
    gen, _ = make_sampler(load_model(str(tmp_path / "sampled")), sampler="ddim", steps=5, batch=4, seed=7)
    np.testing.assert_array_equal(grid, to_uint8(run(gen)))


def test_requests_answer_without_taking_a_step(tmp_path):
    gen = train(_cfg(tmp_path, steps=5, checkpoint_every=1000, sample_steps=3, sample_batch=2))
    m = next(gen)
    m = next(gen)
    assert m.step == 2 and not (tmp_path / "run" / "model_index.json").exists()
    ack = gen.send("checkpoint")
    assert (ack.step, ack.event) == (2, "checkpoint")
    assert int(_state(tmp_path / "run")["step"]) == 2
    ans = gen.send("sample")
    assert (ans.step, ans.event) == (2, "sample") and ans.samples.shape == (2, 8, 8, 1)
    rest = list(gen)
    assert [x.step for x in rest] == [3, 4, 5] and rest[-1].event == "done"
    assert all(len(x.bucket_loss) == 10 for x in rest)


def test_ctrl_c_during_a_step_keeps_the_last_completed_one(tmp_path, monkeypatch, capsys):
    import diffusion_gui.models.train as tr
    calls = {"n": 0}
    real = tr.random_shift

    def shift(x, g, *edge):
        calls["n"] += 1
        if calls["n"] == 4:                  # in the middle of step 4
            raise KeyboardInterrupt
        return real(x, g, *edge)

    monkeypatch.setattr(tr, "random_shift", shift)
    out = tmp_path / "interrupted"
    assert main(["train", *TINY, "--steps", "10", "-o", str(out)]) == 130
    assert int(_state(out)["step"]) == 3
    assert "state saved at step 3" in capsys.readouterr().err
    monkeypatch.setattr(tr, "random_shift", real)
    assert main(["train", *TINY, "--steps", "5", "-o", str(out), "--resume"]) == 0
    assert int(_state(out)["step"]) == 5


def test_batch_must_split_evenly_across_processes(tmp_path):
    class FakeAccelerator:
        is_main_process, process_index, num_processes, device = True, 0, 3, "cpu"
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        next(train(_cfg(tmp_path), FakeAccelerator()))


def test_time_steps_measures_something():
    from diffusion_gui.models.train import timed_steps
    s = list(timed_steps("tiny", 8, 1, 4, steps=1))[-1]
    assert 0 < s < 60


def test_a_big_batch_is_timed_on_a_few_images_and_scaled(monkeypatch):
    """A batch over TIMED_BATCH is timed on TIMED_BATCH images (bounded time and memory) and the
    time scaled by batch / TIMED_BATCH; the generator pauses between steps."""
    import diffusion_gui.models.train as tr
    shapes = []
    from diffusion_gui.models import unet as unet_mod
    built = unet_mod.build_unet("tiny", 8, 1)
    orig_forward = built.forward

    def forward(x, i, *a, **k):
        shapes.append(x.shape[0])
        return orig_forward(x, i, *a, **k)
    built.forward = forward
    monkeypatch.setattr(unet_mod, "build_unet", lambda *a, **k: built)
    items = list(tr.timed_steps("tiny", 8, 1, 4 * tr.TIMED_BATCH, steps=2))
    assert items[:-1] == [None, None] and items[-1] > 0
    assert set(shapes) == {tr.TIMED_BATCH}


def test_learning_rate_schedules():
    from diffusion_gui.models.train import TrainConfig, learning_rate
    c = TrainConfig(out_dir="x", lr=1e-3, warmup=10, steps=100)
    assert learning_rate(c, 0) == pytest.approx(1e-4)          # warm-up
    assert learning_rate(c, 50) == pytest.approx(1e-3)         # constant
    c.lr_schedule = "cosine"
    assert learning_rate(c, 50) == pytest.approx(0.5e-3)       # half-way down the cosine
    assert learning_rate(c, 100) == pytest.approx(0.0, abs=1e-12)
    c.lr_schedule = "bogus"
    with pytest.raises(ValueError):
        learning_rate(c, 5)


def test_train_says_what_its_start_up_is_doing_and_gives_its_threads_back(tmp_path):
    seen = []
    before = torch.get_num_threads()
    gen = train(_cfg(tmp_path, steps=2, sample_every=1, sample_steps=2, sample_batch=1,
                     threads=max(1, before - 1) if before > 1 else 2), on_stage=seen.append)
    first = next(gen)
    assert first.step == 1 and first.samples is not None
    assert seen == ["loading the data", "building the model", "taking the first step",
                    "drawing the first samples", None]
    list(gen)
    assert seen[-1] is None and len(seen) == 5             # no stage after the first step
    assert torch.get_num_threads() == before


def test_the_digits_are_read_without_importing_sklearn_datasets():
    import subprocess
    import sys
    code = ("import sys, numpy as np\n"
            "from diffusion_gui.models.data import digits\n"
            "x, y = digits(8, 'all')\n"
            "assert 'sklearn.datasets' not in sys.modules\n"
            "from sklearn.datasets import load_digits\n"
            "d = load_digits()\n"
            "assert np.array_equal(y, d.target)\n"
            "assert np.allclose(x, d.images[:, None] / 8.0 - 1, atol=1e-6)\n"
            "print(len(digits(16, 'train')[0]), len(digits(16, 'heldout')[0]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1597", "200"]


def test_a_sample_grid_is_abandoned_when_cancelled(tmp_path):
    """A big preview grid (many DDIM steps, a large batch) can take minutes: cancelled() between
    two of its steps abandons it, so that quitting or a second Stop never waits for it."""
    from diffusion_gui.models.train import TrainConfig, sample_grid
    from diffusion_gui.models.unet import build_unet
    cfg = TrainConfig(out_dir=str(tmp_path), preset="tiny", sample_steps=50, sample_batch=2)
    unet = build_unet("tiny", 16, 1)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) >= 3
    assert sample_grid(unet, cfg, cancelled=cancelled) is None and len(calls) == 3
    assert sample_grid(unet, cfg, cancelled=lambda: False).shape == (2, 16, 16, 1)


def test_cli_trains_a_learned_variance_with_the_hybrid_loss(tmp_path, capsys):
    """``--variance learned_range``: a 2C-channel UNet, L_hybrid (the default loss for it), a
    learned_range scheduler the app's loader reads; the variance half is trained (its output moves
    away from the untrained network's) and sampling it gives finite images."""
    from diffusion_gui.core.sampling import ddpm_sample, run
    from diffusion_gui.models.loader import load_model
    out = tmp_path / "lr"
    assert main(["train", *TINY, "--steps", "6", "--variance", "learned_range", "-o", str(out)]) == 0
    m = load_model(str(out))
    assert m.unet.config.out_channels == 2 and m.diffusion.variance == "learned_range"
    card = (out / "model_card.md").read_text()
    assert "L_hybrid" in card and "learned_range" in card
    x = run(ddpm_sample(m, m.diffusion.respace(range(0, 1000, 100)), (2, 1, 8, 8),
                        generator=torch.Generator().manual_seed(0)))
    assert torch.isfinite(x).all()


def test_a_learned_variance_gets_a_gradient_only_from_the_hybrid_loss(tmp_path):
    from diffusion_gui.models.train import _Loop
    loop = _Loop(_cfg(tmp_path, variance="learned_range"))
    assert loop.loss == "hybrid"
    loop.opt.zero_grad()
    x0, i, eps = loop._batch()
    x_t = loop.diffusion.q_sample(x0, i, eps)
    from diffusion_gui.core.vlb import hybrid_terms
    _, vb = hybrid_terms(loop.diffusion, loop.unet(x_t, i).sample, x0, x_t, i, eps)
    vb.mean().backward()
    head = loop.unet.conv_out.weight.grad          # [2C, ch, 3, 3]: the eps row, then the v row
    assert head[:1].abs().max() == 0 and head[1:].abs().max() > 0


@pytest.mark.parametrize("flags, text", [
    (["--variance", "learned_range", "--loss", "simple"], "--loss simple cannot train a learned variance"),
    (["--loss", "hybrid"], "--loss hybrid goes with --variance learned_range"),
])
def test_a_loss_that_does_not_fit_the_variance_is_refused(tmp_path, capsys, flags, text):
    assert main(["train", *TINY, "--steps", "2", *flags, "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert text in err and len(err.strip().splitlines()) == 1


def test_a_learned_variance_run_can_start_from_a_fixed_model(tmp_path, capsys):
    """--init-from a fixed-variance model: the eps rows of the output layer are the source's, the
    v rows start at zero, so the first predictions are the source's eps and v = 0."""
    from diffusion_gui.models.loader import load_model
    src = tmp_path / "fixed"
    assert main(["train", *TINY, "--steps", "2", "-o", str(src)]) == 0
    loop_unet = __import__("diffusion_gui.models.unet", fromlist=["build_unet"]).build_unet(
        "tiny", 8, 1, out_channels=2)
    from diffusion_gui.models.train import init_weights
    init_weights(loop_unet, str(src))
    fixed = load_model(str(src)).unet
    x, i = torch.randn(2, 1, 8, 8), torch.tensor([3, 700])
    with torch.no_grad():
        out, ref = loop_unet(x, i).sample, fixed(x, i).sample
    torch.testing.assert_close(out[:, :1], ref)
    assert out[:, 1:].abs().max() == 0


def test_resuming_another_network_names_the_settings_that_differ(tmp_path, capsys):
    """A run resumed with a learned variance (or another preset, size, ...) than it was trained
    with: one line naming what differs, exit 2, the checkpoint untouched (it was PyTorch's
    state-dict error, dozens of lines of missing and mismatched keys)."""
    b = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "2", "-o", str(b)]) == 0
    before = (b / "checkpoint" / "state.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", *TINY, "--steps", "4", "-o", str(b), "--resume",
                 "--variance", "learned_range"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "step/s" not in ln]   # not tqdm's
    assert len(err) == 1 and err[0].startswith("diffusion-gui: error: ") and "cannot continue this run" in err[0]
    assert "variance fixed_small (now learned_range)" in err[0]
    assert (b / "checkpoint" / "state.pt").read_bytes() == before
