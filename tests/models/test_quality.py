"""The digits judge used for the built-in model's quality figures."""
import numpy as np

from diffusion_gui.models.data import digits
from diffusion_gui.models.quality import digit_classifier, judge, to_digit_features


def test_features_undo_the_resize():
    x, _ = digits(16, "heldout")
    raw8, _ = digits(8, "heldout")
    f = to_digit_features(x)
    assert f.shape == (200, 64) and 0 <= f.min() and f.max() <= 16
    # bilinear 8 -> 16 then 2x2 average pooling is close to the original 8x8 digit
    assert np.abs(f - to_digit_features(raw8)).mean() < 1.5   # of 16


def test_judge_is_accurate_and_sure_of_real_digits():
    clf = digit_classifier(16)
    x, y = digits(16, "heldout")
    r = judge(clf, x)
    pred = clf.predict(to_digit_features(x))
    assert (pred == y).mean() >= 0.97
    assert r["confident_share"] >= 0.95
    assert abs(sum(r["class_shares"]) - 1) < 1e-9


def test_judge_is_less_sure_of_noise_than_of_digits():
    # an MLP is overconfident out of distribution (about 60% of uniform noise images get a
    # probability >= 0.9), so the confidence share is read together with the class balance
    clf = digit_classifier(16)
    noise = np.random.default_rng(0).uniform(-1, 1, (100, 1, 16, 16))
    real = judge(clf, digits(16, "heldout")[0])
    r = judge(clf, noise)
    assert r["confident_share"] < real["confident_share"] - 0.2
    assert r["max_class_share"] > 0.2        # noise collapses onto a few classes
