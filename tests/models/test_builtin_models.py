"""The built-in models that ship in assets/models load through the normal path."""
import pytest

from diffusion_gui.models.examples import heldout_examples, own_example_count
from diffusion_gui.models.loader import load_model
from diffusion_gui.models.registry import builtin_names


def test_the_built_in_models_are_listed():
    assert {"digits", "digits-cond", "emoji16"} <= set(builtin_names())


@pytest.mark.parametrize("name", ["digits", "digits-cond"])
def test_the_digit_models_ship_their_held_out_digits(name):
    m = load_model(name)
    assert own_example_count(m) == 200
    ex = heldout_examples(m)
    assert ex.own and ex.kind == "digit" and ex.images.shape == (200, 16, 16, 1)


def test_digits_cond_is_class_conditional_with_a_null_label():
    m = load_model("digits-cond")
    assert m.classes.names == tuple("0123456789") and m.classes.null_label == 10 and m.classes.can_guide
    assert m.unet.config.num_class_embeds == 11
    assert load_model("digits").classes is None


def test_the_colour_model_ships_held_out_emoji_that_the_losses_panel_scores():
    from diffusion_gui.sessions.losses import run_label, vlb_images
    m = load_model("emoji16")
    assert (m.in_channels, m.sample_size, m.classes) == (3, 16, None)
    ex = heldout_examples(m)
    assert ex.own and ex.kind == "emoji" and ex.images.shape == (140, 16, 16, 3)
    assert vlb_images(m, None, 4).shape == (4, 3, 16, 16)
    assert run_label("digits", 4, 0, ex.kind) == "4 held-out emoji"
