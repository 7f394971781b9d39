"""Point clouds from the dark pixels of an image or of typed text (core/toy2d_points)."""
import numpy as np
import pytest

from diffusion_gui.core.toy2d_points import darkness, points_from_image, points_from_text, text_image
from diffusion_gui.errors import InvalidParameter


def _square_image():
    """White 40 x 80 (H x W) with a black 10 x 20 block at rows 5..14, columns 50..69."""
    img = np.full((40, 80, 3), 255, np.uint8)
    img[5:15, 50:70] = 0
    return img


def test_points_fall_inside_the_dark_block_and_are_scaled_like_the_data_sets():
    pts = points_from_image(_square_image(), n=3000, seed=1)
    assert pts.shape == (3000, 2) and pts.dtype == np.float32
    np.testing.assert_allclose(pts.mean(0), 0.0, atol=1e-5)
    assert abs(float((pts ** 2).mean()) - 1.0) < 1e-4            # unit mean variance per coordinate
    # the block is twice as wide as high: the x spread is about twice the y spread (aspect kept)
    ratio = pts[:, 0].std() / pts[:, 1].std()
    assert 1.8 < ratio < 2.2
    # uniform inside the block: a uniform of width w has std w / sqrt(12); 20 px wide, 10 high
    scale = 20 / np.sqrt(12) / pts[:, 0].std()
    assert abs(pts[:, 1].std() * scale - 10 / np.sqrt(12)) < 0.2


def test_y_points_up_and_the_draw_is_seeded():
    img = np.full((60, 60), 255, np.uint8)
    img[2:10, 2:10] = 0          # top left, heavy
    img[50:52, 50:52] = 0        # bottom right, light
    pts = points_from_image(img, n=2000, seed=3)
    light = pts[:, 0] > pts[:, 0].min() + 0.5 * np.ptp(pts[:, 0])   # the right-hand block
    assert 0.03 < light.mean() < 0.09                  # 4 of the 68 dark pixels
    assert pts[light, 1].max() < pts[~light, 1].min()  # and it lies below: y points up
    np.testing.assert_array_equal(pts, points_from_image(img, n=2000, seed=3))
    assert not np.array_equal(pts, points_from_image(img, n=2000, seed=4))


def test_darkness_weights_and_alpha_composite_over_white():
    grey = np.array([[0, 64, 128, 255]], np.uint8)
    w = darkness(grey)
    assert w[0, 0] == 1.0 and w[0, 3] == 0.0 and 0 < w[0, 1] < 1 and w[0, 2] == 0.0
    rgba = np.zeros((2, 2, 4), np.uint8)                 # black but fully transparent: white
    rgba[0, 0, 3] = 255                                  # one opaque black pixel
    w = darkness(rgba)
    assert w[0, 0] == 1.0 and w.sum() == 1.0


def test_uniform_images_and_blank_text_are_refused_clearly():
    with pytest.raises(InvalidParameter, match="no dark pixels"):
        points_from_image(np.full((8, 8), 200, np.uint8))
    with pytest.raises(InvalidParameter, match="text"):
        points_from_text("   ")
    with pytest.raises(InvalidParameter, match="n must be"):
        points_from_image(_square_image(), n=0)


def test_text_is_rendered_and_its_points_spread_wide_for_a_long_word():
    img = text_image("DDPM")
    assert img.ndim == 2 and img.min() == 0 and img.max() == 255 and img.shape[1] > 2 * img.shape[0]
    pts = points_from_text("DDPM", n=4000, seed=0)
    assert pts.shape == (4000, 2)
    assert pts[:, 0].std() > 2 * pts[:, 1].std()          # a wide word: wider than tall
