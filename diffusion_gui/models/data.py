"""Training and evaluation data: scikit-learn's bundled digits (offline) or a folder of images.

Arrays are float32 ``[N, C, H, W]`` in ``[-1, 1]``; digits are white strokes on black.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

HELD_OUT = 200          # digits kept out of training, for evaluation
SPLIT_SEED = 0          # the split is fixed: permutation of the 1797 digits with this seed
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@functools.lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images [1797, 8, 8] float64 in 0..16, labels [1797])``, read once per process.

    The same arrays as ``sklearn.datasets.load_digits()``, read from the file it reads
    (``sklearn/datasets/data/digits.csv.gz``) without importing ``sklearn.datasets``, which
    costs about a second of start-up (it loads most of scikit-learn). The arrays are shared:
    read-only."""
    import importlib.util
    spec = importlib.util.find_spec("sklearn")
    roots = list(spec.submodule_search_locations or []) if spec else []
    csv = next((Path(r) / "datasets" / "data" / "digits.csv.gz" for r in roots
                if (Path(r) / "datasets" / "data" / "digits.csv.gz").is_file()), None)
    if csv is not None:
        data = np.loadtxt(csv, delimiter=",")
        images, target = data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    else:                                     # a scikit-learn that keeps it elsewhere
        from sklearn.datasets import load_digits
        d = load_digits()
        images, target = d.images, d.target
    images.setflags(write=False)
    target.setflags(write=False)
    return images, target


def digits_split():
    """``(train_idx, heldout_idx)`` into the 1797 digits: a fixed permutation, last 200 held out."""
    n = len(_load_digits()[1])
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    return np.sort(perm[:-HELD_OUT]), np.sort(perm[-HELD_OUT:])


def digits(size: int = 16, split: str = "train"):
    """``(images [N, 1, size, size] float32 in [-1, 1], labels [N])`` of the ``train``,
    ``heldout`` or ``all`` split; 8x8 digits (0..16) are resized bilinearly."""
    import torch
    import torch.nn.functional as F
    images, target = _load_digits()
    x = torch.from_numpy(images.astype(np.float32) / 16.0)[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    x = x.numpy() * 2 - 1
    if split == "all":
        return x, target.copy()
    train, held = digits_split()
    idx = {"train": train, "heldout": held}[split]
    return x[idx], target[idx]


def image_folder(folder, size: int, channels: int):
    """Every image below ``folder`` centre-cropped and resized to ``size`` px: ``[N, C, size, size]``."""
    from ..core.images import ImageLoadError, load_image
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    out = []
    for f in files:
        try:
            out.append(load_image(f, channels="L" if channels == 1 else "RGB", size=(size, size)).numpy())
        except ImageLoadError:
            continue
    if not out:
        from ..errors import UserError
        raise UserError(f"{folder}: no readable images")
    return np.stack(out).astype(np.float32)
