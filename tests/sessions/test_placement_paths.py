"""Every session that runs the network takes ``device`` / ``dtype`` (File > Device in the GUI):
the Compare grid, the forks, DDIM inversion and interpolation, the guidance sweep. Here the CPU
is the only device, so the other placement is bfloat16 on the CPU: the network is then a placed
copy (models/placement.PlacedUNet) that each path hands on to make_sampler, which must use it as
it is (not place it again), and what comes back is plain CPU numpy close to float32's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_gui.errors import InvalidParameter
from diffusion_gui.sessions.compare import CompareGrid, RowSpec
from diffusion_gui.sessions.forks import fork_curve
from diffusion_gui.sessions.guidance import guidance_sweep
from diffusion_gui.sessions.inversion import heldout_digits, interpolate, invert_reconstruct, round_trip
from diffusion_gui.sessions.sampling import SamplingParams, make_sampler

HALF = {"device": "cpu", "dtype": "bfloat16"}


@pytest.fixture
def model(tiny_model):
    return tiny_model(timesteps=20)


def test_a_placed_model_is_placed_from_its_original(model):
    half = model.on(**HALF)
    assert half.on(**HALF) is half                       # not wrapped a second time
    assert half.on("cpu", "float32") is model           # back to the CPU original
    assert model.on(**HALF) is half
    gen, _ = make_sampler(half, SamplingParams(sampler="ddim", steps=3, batch=2, **HALF))
    assert list(gen)[-1].x_t.dtype is torch.float32


def test_inversion_and_interpolation_on_another_placement(model):
    imgs = heldout_digits(model, 2)
    full = invert_reconstruct(model, imgs, 5, device="cpu")
    plain = invert_reconstruct(model, imgs, 5)
    assert np.array_equal(full.recon, plain.recon)       # "cpu" is what "auto" finds here
    half = invert_reconstruct(model, imgs, 5, **HALF)
    assert isinstance(half.latent, np.ndarray) and half.latent.dtype == np.float32
    assert np.abs(half.recon.astype(int) - full.recon.astype(int)).mean() < 8
    assert np.abs(half.psnr - full.psnr).max() < 6
    out = interpolate(model, imgs[:1], imgs[1:], steps=5, n_frames=3, **HALF)
    assert out["frames"].shape == (3, 16, 16, 1) and 0 < out["angle_deg"] < 180
    frames, caps = round_trip(model, imgs, 5, n_frames=6, **HALF)
    assert len(frames) == len(caps) > 2 and caps[0].startswith("inverting")


def test_the_grid_and_the_forks_on_another_placement(model):
    rows = [RowSpec("ddim", 4, 0.0)]
    grids = {}
    for name, where in (("full", {"device": "cpu"}), ("half", HALF)):
        g = CompareGrid(rows, batch=2, seed=3, **where)
        list(g.run(model, judge=False))
        grids[name] = g.results[0].xt[-1]
    assert grids["full"].shape == grids["half"].shape == (2, 16, 16, 1)
    assert 0 < np.abs(grids["full"].astype(int) - grids["half"].astype(int)).mean() < 16
    *_, curve = fork_curve(model, SamplingParams(sampler="ddim", steps=4, batch=1, seed=1, **HALF),
                           k=2, n_points=2, judge=False)
    assert curve.points and curve.points[-1].images.shape[0] == 2


def test_the_guidance_sweep_on_another_placement(tiny_model):
    from tests.sessions.test_guidance import _Judge
    m = tiny_model(classes=3, timesteps=20)
    rows = list(guidance_sweep(m, (0.0, 2.0), per_class=2, steps=3, judge=_Judge(), **HALF))
    assert [r.guidance for r in rows] == [0.0, 2.0] and all(0 <= r.accuracy <= 1 for r in rows)


def test_an_absent_device_is_one_user_error(model, no_gpu):
    imgs = heldout_digits(model, 1)
    with pytest.raises(InvalidParameter, match="cuda:0 is not available"):
        invert_reconstruct(model, imgs, 3, device="cuda")
    with pytest.raises(InvalidParameter, match="cuda:0 is not available"):
        list(CompareGrid([RowSpec("ddim", 3, 0.0)], batch=1, device="cuda").run(model, judge=False))
