"""A model's own kind of picture: held-out examples shipped beside its weights.

A model folder may hold ``heldout.npz`` with ``images`` (uint8 ``[N, H, W, C]``, pictures of the
data it was trained on that it never saw) and ``kind`` (a noun for one of them: ``"emoji"``).
The panels use them as the default picture to denoise and to score, so that a demo shows the
model on its own kind of data; a photo still works. Models without the file (the digits models,
someone else's checkpoint) fall back on scikit-learn's held-out digits
(:func:`diffusion_gui.models.data.digits`; grey, repeated for a colour model), as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["HELDOUT_FILE", "Examples", "heldout_examples", "heldout_kind", "has_own_examples", "own_example_count", "plural", "counted",
           "write_heldout"]

HELDOUT_FILE = "heldout.npz"


@dataclass(frozen=True)
class Examples:
    """``images`` uint8 ``[N, H, W, C]``; ``kind``: a noun for one (``"digit"``, ``"emoji"``);
    ``plural`` its plural; ``own``: the model's own (its ``heldout.npz``), not the fallback."""

    images: np.ndarray
    kind: str
    own: bool = True

    @property
    def plural(self) -> str:
        return plural(self.kind)

    def __len__(self) -> int:
        return len(self.images)


def write_heldout(folder, images, kind: str) -> Path:
    """Write ``heldout.npz`` (uint8 ``[N, H, W, C]``) into a model ``folder``."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be uint8 [N, H, W, C] with C = 1 or 3, not {images.dtype} {images.shape}")
    path = Path(folder) / HELDOUT_FILE
    with open(path, "wb") as f:
        np.savez_compressed(f, images=images, kind=np.array(kind))
    return path


def heldout_examples(model) -> Examples:
    """The held-out examples of a loaded model: its ``heldout.npz``, else the held-out digits."""
    path = Path(getattr(model, "source", "") or ".") / HELDOUT_FILE
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                images, kind = z["images"], str(z["kind"])
            if images.dtype == np.uint8 and images.ndim == 4 and len(images):
                return Examples(images, kind)
        except (OSError, ValueError, KeyError):
            pass                                  # a damaged file: as if there were none
    from .data import digits
    x, _ = digits(int(getattr(model, "sample_size", 16)), "heldout")
    return Examples(np.round((x[:, 0, :, :, None] + 1) * 127.5).astype(np.uint8), "digit", own=False)


def has_own_examples(model) -> bool:
    """Whether the model ships its own held-out examples (cheap: the file is there)."""
    return (Path(getattr(model, "source", "") or ".") / HELDOUT_FILE).is_file()


def own_example_count(model) -> int:
    """How many held-out examples the model ships (0: none, or a damaged file)."""
    path = Path(getattr(model, "source", "") or ".") / HELDOUT_FILE
    if not path.is_file():
        return 0
    try:
        with np.load(path, allow_pickle=False) as z:
            return int(z["images"].shape[0])
    except (OSError, ValueError, KeyError):
        return 0


def heldout_kind(model) -> str:
    """The noun for one of the model's held-out examples (``"digit"``, ``"emoji"``), cheaply:
    reads only the ``kind`` entry of ``heldout.npz``, for labels in the GUI thread."""
    path = Path(getattr(model, "source", "") or ".") / HELDOUT_FILE
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return str(z["kind"])
        except (OSError, ValueError, KeyError):
            pass
    return "digit"


def plural(kind: str) -> str:
    """The plural of a noun of ours: ``"digits"``, ``"frames"``; ``"emoji"`` stays ``"emoji"``."""
    return kind if kind.endswith(("s", "emoji")) else kind + "s"


def counted(n: int, noun: str) -> str:
    """``'1 digit'``, ``'2 digits'``, ``'3 emoji'``."""
    return f"{n} {noun if n == 1 else plural(noun)}"
