"""The 2-D lab's panel logic without Qt: recorded runs, traced particles, forward paths, the
field, editing with the mouse, the numbers (also run in .venv-noqt)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_gui.core.toy2d_metrics import nearest_distances
from diffusion_gui.errors import InvalidParameter
from diffusion_gui.sessions.lab2d import Lab2DSession, Lab2DSettings
from diffusion_gui.sessions.lab2d_field import arrow_scale, arrow_segments, field_error, grid
from diffusion_gui.sessions.lab2d_numbers import compare_denoisers, fresh_nearest, step_numbers
from diffusion_gui.sessions.lab2d_paths import Trajectory, grid_points, run_ts
from diffusion_gui.sessions.settings import from_raw, to_raw


@pytest.fixture
def lab():
    return Lab2DSession(Lab2DSettings(n=300, timesteps=50, steps=50, width=32, depth=1, particles=64))


def test_trajectory_rows_and_snapshot():
    tr = Trajectory([5, 3, 0], 4)
    assert tr.count == 0 and not tr.complete
    tr.add(torch.ones(4, 2))
    tr.add(np.full((4, 2), 2.0))
    assert tr.row_of(0) == 1 and tr.row_of(5) == 0          # only written rows count
    snap = tr.snapshot()
    tr.add(np.zeros((4, 2)))
    assert tr.complete and snap.count == 2 and snap.xs.shape == (2, 4, 2)
    assert tr.row_of(0) == 2 and float(snap.xs[1, 0, 0]) == 2.0
    with pytest.raises(IndexError):
        tr.add(np.zeros((4, 2)))
    assert run_ts(1000, 50)[:2] == [981, 961] and run_ts(1000, 50)[-1] == 0
    assert run_ts(50, 50) == list(range(50, -1, -1))


def test_reverse_run_from_one_x_T_and_a_traced_particle_follows_the_ddim_path(lab):
    run, items = lab.reverse_run("empirical", steps=10, seed=3, grid=True)
    assert run.count == 0 and len(run.ts) == 11
    assert list(items) == list(range(11)) and run.complete
    np.testing.assert_array_equal(run.ddpm.xs[0], run.ddim.xs[0])         # the same x_T
    assert not np.allclose(run.ddpm.xs[-1], run.ddim.xs[-1])
    assert run.grid.xs.shape == (11, grid_points().reshape(-1, 2).shape[0], 2)
    np.testing.assert_allclose(run.grid.xs[0], grid_points().reshape(-1, 2))
    # DDIM (eta 0) is deterministic: the same run again ends at the same points
    run2, items2 = lab.reverse_run("empirical", steps=10, seed=3)
    list(items2)
    np.testing.assert_allclose(run2.ddim.xs, run.ddim.xs, atol=1e-6)
    # a particle launched from row k of the DDIM run at its t follows the run's path from there
    k, j = 4, 7
    t = int(run.ts[k])
    path = lab.trace(run.ddim.xs[k, j], t, "empirical", "ddim", steps=10)
    np.testing.assert_allclose(path, run.ddim.xs[k:, j], atol=1e-4)
    # the empirical denoiser memorises: its DDIM samples sit far closer to training points
    # than new data does
    d = nearest_distances(run.ddim.xs[-1], lab.data)
    ref = nearest_distances(lab.fresh(300, np.random.default_rng(5)), lab.data)
    assert np.median(d) < 0.5 * np.median(ref)
    assert lab.trace([0.5, 0.5], 0).shape == (1, 2)
    with pytest.raises(InvalidParameter):
        lab.trace([0, 0], 51)
    with pytest.raises(InvalidParameter):
        lab.reverse_run("mlp", steps=0)


def test_forward_paths_and_the_forward_cloud(lab):
    paths = lab.forward_paths(k=300, seed=1)
    assert paths.shape == (51, 300, 2)
    assert {tuple(p) for p in paths[0]} <= {tuple(p) for p in lab.data}  # they start on data
    # at t = T the chain is close to N(0, I) (abar_T of a 50-step linear schedule is small)
    abar_T = lab.abar(50)
    assert abar_T < 0.1
    assert abs(paths[-1].var() - 1) < 0.25
    cloud = lab.forward_cloud(seed=2)
    for t in (0, 17, 50):
        np.testing.assert_allclose(cloud.at(t), lab.forward(t, seed=2), atol=1e-6)
    np.testing.assert_array_equal(cloud.at(0), lab.data)


def test_the_exact_field_is_the_posterior_mean_step_and_the_score(lab):
    lab.set_data("gaussians8", n=300)
    t = 20
    pts = grid((-2, 2, -2, 2), 7)
    a = lab.abar(t)
    x0 = lab.field(t, "exact", points=pts, what="x0")
    mean = lab.mixture.posterior_mean(torch.from_numpy(pts).double(), a).numpy()
    np.testing.assert_allclose(x0.vectors, mean - pts, atol=1e-6)
    sc = lab.field(t, "exact", points=pts, what="score")
    h = 1e-4
    for axis in (0, 1):
        dp = pts.astype(np.float64).copy()
        dm = dp.copy()
        dp[:, axis] += h
        dm[:, axis] -= h
        fd = (lab.mixture.log_prob(dp, a) - lab.mixture.log_prob(dm, a)).numpy() / (2 * h)
        np.testing.assert_allclose(sc.vectors[:, axis], fd, rtol=1e-3, atol=1e-3)
    rms, rel = field_error(x0, x0)
    assert rms == 0 and rel == 0
    learned = lab.field(t, "mlp", points=pts, what="x0")            # untrained: far off
    rms, rel = field_error(learned, x0, lab.density(t, [0], [0]).repeat(len(pts)))
    assert rms > 0 and rel > 0.1
    with pytest.raises(InvalidParameter):
        lab.field(0, "exact")
    with pytest.raises(InvalidParameter):
        lab.field(5, "exact", what="velocity")


def test_arrow_segments():
    seg = arrow_segments([[0, 0], [1, 1]], [[1, 0], [0, 2]], scale=0.5)
    assert seg.shape == (12, 2)
    np.testing.assert_allclose(seg[1], [0.5, 0])                   # the first tip
    np.testing.assert_allclose(seg[7], [1, 2])                     # the second tip
    assert np.linalg.norm(seg[3] - seg[2]) == pytest.approx(0.3 * 0.5)
    assert arrow_scale(np.zeros((4, 2)), 0.2) == 1.0
    assert arrow_scale(np.ones((4, 2)), 0.2) == pytest.approx(0.9 * 0.2 / np.sqrt(2))


def test_painting_erasing_and_a_fresh_drawing(lab):
    n0 = len(lab.data)
    lab.paint([3.0, 3.0], seed=0)
    assert lab.settings.data == "custom" and lab.settings.source == "draw"
    assert len(lab.data) == n0 + 12 and not lab.has_exact
    lab.erase([3.0, 3.0])
    assert len(lab.data) == n0
    lab.start_drawing()
    lab.paint([0.0, 0.0], seed=1)
    assert len(lab.data) == 12 and np.abs(lab.data).max() < 1
    lab.erase([0.0, 0.0])                      # would empty the data: refused
    assert len(lab.data) == 12


def test_dragging_and_resizing_a_mixture_component(lab):
    assert lab.component_at([0, 0]) is None                # moons: no components
    lab.set_data("gmm", n=300, seed=4)
    m0 = lab.mixture
    k = lab.component_at(m0.means[1] + 0.05)
    assert k == 1
    lab.move_component(1, [2.0, 2.0])
    np.testing.assert_allclose(lab.mixture.means[1], [2, 2])
    np.testing.assert_allclose(lab.mixture.means[0], m0.means[0])
    assert lab.settings.data == "gmm" and len(lab.data) == 300
    lab.scale_component(0, 2.0)
    np.testing.assert_allclose(lab.mixture.stds[0], 2 * m0.stds[0])
    lab.set_component_std(2, 100.0)
    np.testing.assert_allclose(lab.mixture.stds[2], [3.0, 3.0])    # clamped
    lab.set_data("moons")
    with pytest.raises(InvalidParameter):
        lab.move_component(0, [0, 0])


def test_points_from_text_and_image(lab):
    p = lab.set_text_points("Hi", n=500)
    assert p.shape == (500, 2) and lab.settings.source == "text" and lab.settings.text == "Hi"
    img = np.full((40, 60), 255, np.uint8)
    img[10:30, 20:25] = 0
    p = lab.set_image_points(img, n=400)
    assert p.shape == (400, 2) and lab.settings.source == "image"
    assert p[:, 1].std() > p[:, 0].std()                    # a tall bar stays tall
    with pytest.raises(InvalidParameter):
        lab.set_image_points(None)
    with pytest.raises(InvalidParameter):
        lab.set_text_points("   ")


def test_step_numbers_and_the_memorisation_contrast(lab):
    n = step_numbers(lab, 0)
    assert n["abar"] == 1 and n["sqrt_1m_abar"] == 0 and n["snr"] == float("inf")
    n = step_numbers(lab, 25)
    assert n["sqrt_abar"] ** 2 == pytest.approx(n["abar"]) and n["T"] == 50
    lab.set_data("gaussians8", n=300)
    lab.set_schedule(timesteps=200)        # beta_1 small enough for the last step to collapse
    out = {c.kind: c for c in compare_denoisers(lab, n=200, steps=200)}
    assert set(out) == {"mlp", "exact", "empirical"}
    emp, exact = out["empirical"].quality, out["exact"].quality
    assert emp.nearest_median_pct < 2 and emp.nearest_median_pct < 0.5 * exact.nearest_median_pct
    assert exact.energy_distance < 3 * exact.noise_floor < exact.gaussian_baseline
    ref = fresh_nearest(lab, 200)
    assert ref.shape == (200,) and np.median(ref) > 0.01
    lab.paint([0, 0])
    assert fresh_nearest(lab) is None
    assert [c.kind for c in compare_denoisers(lab, n=50, steps=5)] == ["mlp", "empirical"]


def test_settings_round_trip_with_the_view_fields():
    s = Lab2DSettings(data="gmm", source="text", text="hello", t=300, particles=10000, view="ddim",
                      field="score", show_field=False, show_grid=True)
    assert from_raw(Lab2DSettings, {k: str(v) for k, v in to_raw(s).items()}) == s
    bad = from_raw(Lab2DSettings, {"view": "sideways", "particles": "999999", "show_grid": "maybe"})
    assert bad.view == "both" and bad.particles == 20000 and bad.show_grid is False


def test_the_torch_free_names_agree_with_the_core():
    from diffusion_gui.core import toy2d
    from diffusion_gui.sessions import lab2d_settings as names
    assert names.DATASETS == toy2d.DATASETS
    assert (names.MAX_POINTS, names.DEFAULT_POINTS) == (toy2d.MAX_POINTS, toy2d.DEFAULT_POINTS)


def test_the_overlay_draws_q_t_and_both_fields(lab):
    from diffusion_gui.sessions.lab2d_field import overlay
    xs = ys = np.linspace(-3, 3, 30)
    ov = overlay(lab, 0, xs, ys, "mlp")
    assert ov.log_q.shape == (30, 30) and ov.learned is None and ov.reference_name == "KDE"
    np.testing.assert_allclose(ov.log_q, lab.density(0, xs, ys), atol=1e-6)   # all points < 3000
    lab.set_data("gaussians8", n=300)
    ov = overlay(lab, 10, xs, ys, "exact", n_arrows=9)
    assert ov.reference_name == "exact" and ov.error == (0.0, 0.0)
    assert ov.learned.vectors.shape == (81, 2) and ov.scale > 0
    np.testing.assert_allclose(ov.log_q, lab.density(10, xs, ys))


def test_the_heldout_bound_in_nats_per_dimension(lab):
    from diffusion_gui.sessions.lab2d_numbers import heldout_bound
    lab.set_data("gaussians8", n=300)
    exact, mlp = heldout_bound(lab, "exact", n=200), heldout_bound(lab, "mlp", n=200)
    assert exact["held_out"] and np.isfinite(exact["total"])
    # a cross-entropy bounds the data's entropy (about 0.16 nats/dim for 8 separated N(., 0.1^2))
    assert 0.1 < exact["total"] < mlp["total"]
    assert exact["total"] == pytest.approx(exact["prior"] + exact["kl_sum"] + exact["decoder"])
    lab.paint([0, 0])
    assert heldout_bound(lab, "mlp", n=50)["held_out"] is False
