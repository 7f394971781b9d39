"""DDIM inversion for a loaded model (sessions/inversion.py)."""
import numpy as np
import pytest

from diffusion_gui.errors import InvalidParameter
from diffusion_gui.sessions.inversion import (
    error_vs_steps,
    fit_image,
    heldout_digits,
    interpolate,
    invert_reconstruct,
    to_model_tensor,
)


def test_heldout_digits_are_the_held_out_split(tiny_model):
    from diffusion_gui.core.images import to_uint8
    from diffusion_gui.models.data import digits
    model = tiny_model(timesteps=20)
    got = heldout_digits(model, 3)
    held, _ = digits(16, "heldout")
    assert got.shape == (3, 16, 16, 1) and got.dtype == np.uint8
    assert np.array_equal(got, to_uint8(held[:3]))
    with pytest.raises(InvalidParameter):
        heldout_digits(model, 0)


def test_fit_image_and_tensor_round_trip(tiny_model):
    model = tiny_model(timesteps=20, channels=3, size=16)
    img = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    fitted = fit_image(model, img)
    assert fitted.shape == (1, 16, 16, 3)
    x = to_model_tensor(fitted)
    assert tuple(x.shape) == (1, 3, 16, 16) and float(x.min()) >= -1 and float(x.max()) <= 1


def test_reconstruction_figures_and_error_curve(tiny_model):
    model = tiny_model(timesteps=40)
    imgs = heldout_digits(model, 2)
    r = invert_reconstruct(model, imgs, 4)
    assert r.recon.shape == imgs.shape and r.latent.shape == (2, 1, 16, 16)
    assert r.psnr.shape == (2,) and np.all(np.isfinite(r.psnr))
    f = r.figures()
    assert set(f) >= {"steps", "mse", "psnr_db", "latent_std", "seconds"} and f["steps"] == 4
    curve = list(error_vs_steps(model, imgs, (2, 8, 40, 1000)))
    assert [c.steps for c in curve] == [2, 8, 40]      # 1000 > T is dropped
    with pytest.raises(InvalidParameter):
        invert_reconstruct(model, imgs, 41)


def test_interpolation_ends_are_the_reconstructions(tiny_model):
    model = tiny_model(timesteps=20)
    a, b = heldout_digits(model, 2)[:1], heldout_digits(model, 2)[1:]
    out = interpolate(model, a, b, steps=5, n_frames=5)
    assert out["frames"].shape == (5, 16, 16, 1)
    ra = invert_reconstruct(model, a, 5).recon[0]
    assert np.abs(out["frames"][0].astype(int) - ra.astype(int)).max() <= 1
    assert out["weights"][0] == 0.0 and out["weights"][-1] == 1.0
    assert 0 < out["angle_deg"] < 180
    with pytest.raises(InvalidParameter):
        interpolate(model, a, b, n_frames=1)
