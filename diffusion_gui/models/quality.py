"""Quality of a digits model: a classifier trained on the real digits judges generated samples.

Generated ``[N, 1, S, S]`` images in ``[-1, 1]`` are average-pooled to 8x8 and mapped to the
digits' 0..16 scale; a small MLP trained on the real training split classifies them (on the
200 held-out real digits it is 98.5% accurate and 95% of them get a probability >= 0.9; an RBF SVM
with Platt probabilities was as accurate but too unsure of real digits, 85.5%, to judge with). A sample counts as *confident* when its top class probability is >= 0.9.
"""
from __future__ import annotations

import numpy as np

CONFIDENCE = 0.9


def to_digit_features(x) -> np.ndarray:
    """``[N, 1, S, S]`` in [-1, 1] (S a multiple of 8) -> ``[N, 64]`` on the 0..16 scale."""
    x = np.asarray(x, dtype=np.float64)
    n, _, s, _ = x.shape
    f = s // 8
    pooled = x[:, 0].reshape(n, 8, f, 8, f).mean(axis=(2, 4))
    return ((pooled + 1) / 2 * 16).clip(0, 16).reshape(n, 64)


def digit_classifier(size: int = 16):
    """An MLP fitted on the training split, as seen through the same resize + pool as samples."""
    from sklearn.neural_network import MLPClassifier

    from .data import digits
    x, y = digits(size, "train")
    clf = MLPClassifier((128,), max_iter=2000, random_state=0)
    clf.fit(to_digit_features(x), y)
    return clf


def judge(clf, x) -> dict:
    """Figures for samples ``x`` ``[N, 1, S, S]``: share confident, class shares, mean confidence."""
    p = clf.predict_proba(to_digit_features(x))
    top = p.max(1)
    cls = clf.classes_[p.argmax(1)]
    shares = np.bincount(cls, minlength=10) / len(cls)
    return {"n": int(len(cls)), "confident_share": float((top >= CONFIDENCE).mean()),
            "mean_confidence": float(top.mean()), "class_shares": [round(float(s), 4) for s in shares],
            "min_class_share": float(shares.min()), "max_class_share": float(shares.max())}
