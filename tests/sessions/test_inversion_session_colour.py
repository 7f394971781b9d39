"""The inversion session's held-out inputs fit the model (found by the exerciser, seed 3: the
Compare panel's interpolation handed a colour model grey digits and failed in its first conv)."""
import numpy as np
import torch


def test_a_colour_model_gets_colour_inputs_of_its_size(tiny_model):
    from diffusion_gui.sessions.inversion import heldout_digits, interpolate
    m = tiny_model(channels=3, size=16, timesteps=20)
    x = heldout_digits(m, 2, start=3)
    assert x.shape == (2, 16, 16, 3) and x.dtype == np.uint8
    res = interpolate(m, x[:1], x[1:], steps=4, n_frames=3)
    assert len(res["frames"]) == 3 and np.isfinite(np.asarray(res["frames"], float)).all()


def test_a_grey_model_gets_the_same_held_out_digits_as_before(tiny_model):
    from diffusion_gui.core.images import to_uint8
    from diffusion_gui.models.data import digits
    from diffusion_gui.sessions.inversion import heldout_digits
    m = tiny_model(channels=1, size=16, timesteps=20)
    x, _ = digits(16, "heldout")
    np.testing.assert_array_equal(heldout_digits(m, 4, start=2), to_uint8(torch.as_tensor(x[2:6])))
