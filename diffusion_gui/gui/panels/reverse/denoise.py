"""The Reverse panel's *Denoise a picture* box: which picture, and the note under it.

A model that ships held-out examples of its own data (``heldout.npz``: the digits models, the
emoji model) denoises one of them by default, so that the demo shows the model on its own kind of
picture; any other model the forward panel's image. Functions of the panel ``p``.
"""
from __future__ import annotations


def denoise_default(p, m):
    """A model with held-out examples of its own (digits, emoji) denoises one by default, so
    that the demo shows it on its own kind of data; any other model the forward image."""
    from ....models.data import HELD_OUT
    from ....models.examples import own_example_count
    n = own_example_count(m) if m is not None else 0
    p.denoise_example.setMaximum(max(1, n or HELD_OUT))
    p.denoise_source.setCurrentIndex(p.denoise_source.findData("example" if n else "image"))


def denoise_note(p, has_model: bool, has_image: bool) -> str:
    from ....models.examples import has_own_examples, heldout_kind, plural
    if not has_image:
        return "Open an image in the forward panel first."
    if not has_model:
        return ""
    m, ft = p.ctx.model, p.ctx.forward_t
    extra = f" The forward panel is at t = {ft}." if ft else ""
    own, kind = has_own_examples(m), heldout_kind(m)
    if p.denoise_source.currentData() == "example":
        first = (f"Held-out {kind} #{p.denoise_example.value()}: the model never saw it in training. "
                 if own else f"A held-out {kind} (scikit-learn's): this model may never have seen one. ")
        return f"{first}Noised with the model's schedule (T = {m.num_timesteps}).{extra}"
    never = (f" The model was trained on {plural(kind)}: it has never seen a picture like this, "
             f"so expect one of its {plural(kind)} back." if own else "")
    return (f"Centre-cropped to {m.sample_size} px{', grey' if m.in_channels == 1 else ''}; "
            f"noised with the model's schedule (T = {m.num_timesteps}).{never}{extra}")
