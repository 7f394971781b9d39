"""A model's own held-out examples (models/examples) and where the panels use them."""
import numpy as np

from diffusion_gui.models.examples import heldout_examples, heldout_kind, write_heldout
from diffusion_gui.sessions.losses import examples_to_x0, run_label, vlb_images


class _Model:
    def __init__(self, source, channels=3, size=8):
        self.source, self.in_channels, self.sample_size = str(source), channels, size


def test_a_model_folder_with_heldout_npz_gives_its_own_examples(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    write_heldout(tmp_path, imgs, "emoji")
    m = _Model(tmp_path)
    ex = heldout_examples(m)
    assert ex.kind == heldout_kind(m) == "emoji" and ex.plural == "emoji" and len(ex) == 5
    np.testing.assert_array_equal(ex.images, imgs)
    x = vlb_images(m, None, 3)                           # what the Losses panel scores
    assert x.shape == (3, 3, 8, 8)
    np.testing.assert_allclose((x.numpy() + 1) * 127.5, imgs[:3].transpose(0, 3, 1, 2), atol=1e-4)
    assert run_label("digits", 3, 0, ex.kind) == "3 held-out emoji"


def test_without_the_file_the_held_out_digits_serve_as_before(tmp_path):
    m = _Model(tmp_path, channels=1, size=16)
    ex = heldout_examples(m)
    assert ex.kind == heldout_kind(m) == "digit" and len(ex) == 200 and ex.images.shape[1:] == (16, 16, 1)
    assert run_label("digits", 1, 0) == "1 held-out digit" and run_label("digits", 2, 0) == "2 held-out digits"
    (tmp_path / "heldout.npz").write_bytes(b"not a zip")          # damaged: ignored
    assert heldout_examples(m).kind == "digit"


def test_examples_are_fitted_to_the_models_size_and_channels():
    grey = np.zeros((2, 4, 4, 1), np.uint8)
    assert examples_to_x0(grey, 8, 3).shape == (2, 3, 8, 8)
    rgb = np.full((1, 8, 8, 3), 255, np.uint8)
    x = examples_to_x0(rgb, 8, 1)
    assert x.shape == (1, 1, 8, 8) and float(x.min()) == 1.0
