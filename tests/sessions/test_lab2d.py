"""The 2-D lab's session (no Qt) and ``diffusion-gui toy``."""
import json

import numpy as np
import pytest
import torch

from diffusion_gui.cli import main
from diffusion_gui.core.toy2d import gaussians8
from diffusion_gui.errors import InvalidParameter
from diffusion_gui.sessions.lab2d import Lab2DSession, Lab2DSettings


@pytest.fixture
def lab():
    return Lab2DSession(Lab2DSettings(n=300, timesteps=100, steps=100, batch=64))


def test_training_is_a_generator_that_restores_the_thread_count(lab):
    before = torch.get_num_threads()
    ms = []
    for m in lab.train(max_steps=60, report_every=20):
        assert torch.get_num_threads() == before
        ms.append(m)
    assert [m.step for m in ms] == [20, 40, 60] and lab.trained_steps == 60
    assert ms[-1].bucket_loss.shape == (10,) and np.isfinite(ms[-1].loss)
    assert lab.loss_steps == [20, 40, 60] and len(lab.losses) == 3


def test_changing_data_keeps_the_network_and_reset_starts_afresh(lab):
    list(lab.train(max_steps=10))
    lab.set_data("gaussians8")
    assert lab.trained_steps == 10 and lab.has_exact and lab.data.shape == (300, 2)
    list(lab.train(max_steps=10))
    assert lab.trained_steps == 20
    lab.reset_model()
    assert lab.trained_steps == 0 and lab.losses == []


def test_exact_needs_a_mixture(lab):
    with pytest.raises(InvalidParameter, match="model"):
        lab.denoiser("exact")
    lab.set_mixture(gaussians8(0.2))
    assert lab.settings.data == "gmm" and lab.denoiser("exact") is not None


def test_sampling_yields_core_step_outputs_and_launches_particles_anywhere(lab):
    frames = list(lab.sample("empirical", sampler_kind="ddim", steps=10, n=50))
    assert len(frames) == 11 and frames[0].x_t.shape == (50, 2)
    one = list(lab.sample("empirical", sampler_kind="ddpm", x_start=[[0.5, 0.5]], start_t=40))
    assert one[0].t == 40 and one[-1].x_t.shape == (1, 2)
    with pytest.raises(InvalidParameter, match="steps"):
        lab.sample("mlp", steps=101)


def test_forward_density_and_custom_points(lab):
    assert lab.forward(50).shape == (300, 2)
    np.testing.assert_allclose(lab.forward(0), lab.data, atol=1e-6)
    xs = np.linspace(-3, 3, 20)
    assert np.isfinite(lab.density(10, xs, xs[:15])).all() and lab.density(10, xs, xs[:15]).shape == (15, 20)
    lab.set_points(np.random.default_rng(0).normal(size=(40, 2)))
    assert lab.settings.data == "custom" and not lab.has_exact
    q = lab.quality(lab.sample_points("empirical", n=40))
    assert q.nearest_median_pct < 5


def test_quality_and_loss_profile_on_a_mixture(lab):
    lab.set_data("gaussians8", n=1000)
    q = lab.quality(lab.sample_points("exact", n=1000))
    assert q.energy_distance < 3 * q.noise_floor < q.gaussian_baseline
    mse, floor = lab.loss_profile([1, 50, 100], kind="exact", n=500)
    np.testing.assert_allclose(mse, floor, rtol=1e-3)
    mse, floor = lab.loss_profile([50], kind="mlp", n=500)
    assert mse[0] > floor[0]


def test_cli_toy_writes_points_and_json(tmp_path, capsys):
    out = tmp_path / "p.npz"
    rc = main(["toy", "--data", "moons", "--train-steps", "30", "--n", "200", "--sampler", "ddim",
               "--steps", "20", "-o", str(out), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("train_seconds", "steps", "final_loss", "energy_distance", "baseline_energy_distance"):
        assert key in summary
    assert summary["steps"] == 30
    z = np.load(out)
    assert z["samples"].shape == (200, 2) and z["data"].dtype == np.float32


def test_cli_toy_refuses_exact_on_a_shape(tmp_path, capsys):
    rc = main(["toy", "--data", "moons", "--model", "exact", "-o", str(tmp_path / "p.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--model exact" in err[0]


def test_a_learned_variance_mlp_trains_with_l_hybrid_and_every_view_takes_it():
    """settings variance learned_range: a 4-output MLP, trained with L_hybrid; sampling, the
    paths, the field, the loss profile and the held-out bound all read its (eps, v)."""
    from diffusion_gui.sessions.lab2d_field import field
    from diffusion_gui.sessions.lab2d_numbers import heldout_bound
    from diffusion_gui.sessions.lab2d_paths import reverse_run, trace_particle
    lab = Lab2DSession(Lab2DSettings(data="gaussians8", n=300, timesteps=50, steps=50, batch=64))
    fixed_net = lab.train_state.net
    lab.set_variance("learned_range")
    assert lab.train_state.net is not fixed_net and lab.train_state.net.learned_variance
    assert lab.diffusion_for("mlp").variance == "learned_range"
    assert lab.diffusion_for("exact").variance == "fixed_small"
    for _ in lab.train(max_steps=40, report_every=20):
        pass
    pts = lab.sample_points(n=64, seed=0)
    assert pts.shape == (64, 2) and np.isfinite(pts).all()
    run, items = reverse_run(lab, n=32, steps=10)
    for _ in items:
        pass
    assert np.isfinite(trace_particle(lab, [0.5, 0.5], 20)).all()
    assert field(lab, 10, "mlp", what="x0").vectors.shape[1] == 2
    mse, _ = lab.loss_profile([1, 25, 50], n=100)
    assert np.isfinite(mse).all()
    b = heldout_bound(lab, n=100)
    assert np.isfinite(b["total"])
    # the same net scored with the fixed variance: another figure (the variance counts)
    from diffusion_gui.core.toy2d_bound import bound_terms_nats
    from diffusion_gui.sessions.lab2d_paths import frozen
    x0 = lab.fresh(100, np.random.default_rng(11))
    fixed = bound_terms_nats(lab.diffusion, frozen(lab.denoiser("mlp")), x0, seed=11)["total"]
    assert abs(fixed - b["total"]) > 1e-6
    lab.set_variance("fixed_small")
    assert not lab.train_state.net.learned_variance and lab.trained_steps == 0
