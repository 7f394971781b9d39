"""The bound of continuous points in nats/dim: per-t terms, against the trajectory estimator and
Monte Carlo, and the two training objectives."""
import numpy as np
import torch

from diffusion_gui.core import bound_estimators as be
from diffusion_gui.core.diffusion import GaussianDiffusion
from diffusion_gui.core.schedule import NoiseSchedule
from diffusion_gui.core.toy2d import gaussians8, toy_data
from diffusion_gui.core.toy2d_bound import bound_terms_nats, objective_weights, train_objective
from diffusion_gui.core.toy2d_metrics import MixtureDenoiser


def test_bound_terms_shape_and_sum():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 40))
    pts = gaussians8().sample(300, 0)
    r = bound_terms_nats(d, MixtureDenoiser(gaussians8(), d), pts, seed=1, model_dtype=torch.float64)
    assert r["terms"].shape == (40,) and r["dims"] == 2 and r["per_point"].shape == (300,)
    assert np.isclose(r["total"], r["prior"] + r["terms"].sum())
    assert np.isclose(r["per_point"].mean(), r["total"])
    assert (r["terms"][1:] >= 0).all()           # KLs
    again = bound_terms_nats(d, MixtureDenoiser(gaussians8(), d), pts, seed=1, model_dtype=torch.float64, rows=50)
    assert np.allclose(again["terms"], r["terms"])      # chunking does not change the noise


def test_bound_is_above_the_exact_nll_in_1d():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 20))
    mix = be.Mixture1D()
    m = be.Mixture1DDenoiser(mix, d)
    x = torch.full((4000, 1), -1.0, dtype=torch.float64)
    r = bound_terms_nats(d, m, x, seed=0, model_dtype=torch.float64)
    exact = float(be.exact_nll_1d(m, d, [-1.0])[0])
    tt = be.run_terms(be.trajectory_terms(m, d, x, generator=torch.Generator().manual_seed(5),
                                          model_dtype=torch.float64, t_batch=10 ** 6))
    se = r["per_point"].std() / np.sqrt(4000) + tt.rao_blackwell.std() / np.sqrt(4000)
    assert abs(r["total"] - tt.rao_blackwell.mean()) < 4 * se
    assert r["total"] > exact


def test_objectives_train_and_differ():
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", 50))
    assert np.allclose(objective_weights(d, "simple"), 1)
    w = objective_weights(d, "vlb")
    assert abs(w.mean() - 1) < 1e-12 and w[1] > w[-1]
    rng = np.random.default_rng(0)
    items = list(train_objective(d, lambda: torch.from_numpy(toy_data("gaussians8", 64, rng)), "simple",
                                 steps=60, width=16, depth=1, report_every=20))
    assert [s for s, _ in items[:-1]] == [20, 40, 60]
    state = items[-1]
    assert state.step == 60 and all(np.isfinite(loss) for _, loss in items[:-1])
