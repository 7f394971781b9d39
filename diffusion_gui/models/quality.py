"""Quality of a digits model: a classifier trained on the real digits judges generated samples.

Generated ``[N, 1, S, S]`` images in ``[-1, 1]`` are average-pooled to 8x8 and mapped to the
digits' 0..16 scale; a small MLP trained on the real training split classifies them.

The judge sees the training digits together with 4 randomly shifted copies of each (the same
+-1 px shifts the generator is trained with): a judge trained on unshifted digits only is unsure
of *real* digits moved by one pixel (75.5% of the shifted held-out digits got a probability
>= 0.9, against 95% unshifted), so it would score the augmentation, not the digits. With the
shifted copies it is 99% accurate on the 200 held-out real digits and confident on 98% of them
(93.5% of their shifted versions). An RBF SVM with Platt probabilities was as accurate but
unsure of real digits (85.5%), so it was not used. A sample counts as *confident* when its top class probability is >= 0.9.
"""
from __future__ import annotations

import numpy as np

CONFIDENCE = 0.9
SHIFTED_COPIES = 4


def to_digit_features(x) -> np.ndarray:
    """``[N, 1, S, S]`` in [-1, 1] (S a multiple of 8) -> ``[N, 64]`` on the 0..16 scale."""
    x = np.asarray(x, dtype=np.float64)
    n, _, s, _ = x.shape
    f = s // 8
    pooled = x[:, 0].reshape(n, 8, f, 8, f).mean(axis=(2, 4))
    return ((pooled + 1) / 2 * 16).clip(0, 16).reshape(n, 64)


def digit_classifier(size: int = 16):
    """An MLP fitted on the training split (plus shifted copies), seen through the same resize +
    pool as the samples."""
    import torch
    from sklearn.neural_network import MLPClassifier

    from .data import digits
    from .train import random_shift
    x, y = digits(size, "train")
    g = torch.Generator().manual_seed(0)
    shifted = [random_shift(torch.from_numpy(x), g).numpy() for _ in range(SHIFTED_COPIES)]
    clf = MLPClassifier((128,), max_iter=2000, random_state=0)
    clf.fit(to_digit_features(np.concatenate([x, *shifted])), np.concatenate([y] * (1 + SHIFTED_COPIES)))
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


def class_fidelity(clf, x, labels) -> dict:
    """For samples ``x`` ``[N, 1, S, S]`` asked to be classes ``labels`` ``[N]``: the share the
    judge puts in the requested class (``accuracy``) and its mean probability of that class
    (``confidence``)."""
    p = clf.predict_proba(to_digit_features(x))
    labels = np.asarray(labels)
    col = np.searchsorted(clf.classes_, labels)
    pred = clf.classes_[p.argmax(1)]
    return {"accuracy": float((pred == labels).mean()),
            "confidence": float(p[np.arange(len(labels)), col].mean())}


def diversity(x, labels) -> float:
    """Mean pairwise distance between samples of the same class, in pixels' RMS units: the
    Euclidean distance of two ``[C, S, S]`` images in ``[-1, 1]`` over ``sqrt(C S S)``, averaged
    over the pairs within each class, then over the classes (``x`` ``[N, C, S, S]``)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    labels = np.asarray(labels)
    per = []
    for c in np.unique(labels):
        v = x[labels == c]
        if len(v) < 2:
            continue
        sq = (v ** 2).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * v @ v.T, 0.0)
        iu = np.triu_indices(len(v), 1)
        per.append(float(np.sqrt(d2[iu]).mean() / np.sqrt(x.shape[1])))
    return float(np.mean(per)) if per else float("nan")
