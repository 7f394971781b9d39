"""The guidance sweep (sessions/guidance) and its measures (models/quality)."""
import numpy as np
import pytest

from diffusion_gui.errors import InvalidParameter
from diffusion_gui.models.quality import class_fidelity, diversity
from diffusion_gui.sessions.guidance import guidance_sweep


class _Judge:
    """A stand-in classifier: class = the sign pattern of the mean pixel (fixed probabilities)."""

    classes_ = np.arange(10)

    def predict_proba(self, feats):
        p = np.full((len(feats), 10), 0.02)
        p[np.arange(len(feats)), (feats.mean(1) > 8).astype(int)] = 0.82
        return p


def test_fidelity_counts_the_requested_class_and_its_probability():
    x = np.stack([np.full((1, 16, 16), -1.0), np.full((1, 16, 16), 1.0)])   # dark -> 0, bright -> 1
    f = class_fidelity(_Judge(), x, [0, 0])
    assert f["accuracy"] == 0.5 and f["confidence"] == pytest.approx((0.82 + 0.02) / 2)


def test_diversity_is_the_mean_rms_distance_within_a_class():
    a, b, c = np.zeros((1, 2, 2)), np.ones((1, 2, 2)), np.full((1, 2, 2), 3.0)
    # class 0: a and b, RMS distance 1; class 1: a and c, distance 3 -> mean 2
    assert diversity(np.stack([a, b, a, c]), [0, 0, 1, 1]) == pytest.approx(2.0)
    assert np.isnan(diversity(np.stack([a, b]), [0, 1]))          # no pairs


def test_the_sweep_gives_a_row_per_scale_from_one_seed(tiny_model):
    m = tiny_model(classes=3, timesteps=20)
    rows = list(guidance_sweep(m, (0.0, 1.0, 4.0), per_class=2, steps=3, judge=_Judge()))
    assert [r.guidance for r in rows] == [0.0, 1.0, 4.0] and all(r.n == 6 for r in rows)
    assert all(0 <= r.accuracy <= 1 and r.diversity > 0 for r in rows)
    assert rows[0].to_json()["guidance"] == 0.0
    assert len(list(guidance_sweep(m, (0.0, 1.0), per_class=2, steps=3, judge=_Judge(),
                                   cancelled=lambda: True))) == 0


def test_the_sweep_needs_a_guidable_model(tiny_model):
    with pytest.raises(InvalidParameter, match="class-conditional"):
        next(guidance_sweep(tiny_model(timesteps=20), judge=_Judge()))
