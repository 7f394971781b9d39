"""Reading GIFs back in tests: every frame as a uint8 array, with its duration."""
from __future__ import annotations

import numpy as np
from PIL import Image


def is_grey(im: Image.Image) -> bool:
    """The first frame of a GIF is grey (mode L, or a palette of greys only)."""
    pal = im.getpalette()
    if im.mode == "L" or pal is None:
        return True
    p = np.asarray(pal).reshape(-1, 3)
    return bool(np.all(p[:, 0] == p[:, 1]) and np.all(p[:, 1] == p[:, 2]))


def read_gif(path, mode: str | None = None):
    """``(frames, durations_ms, info)`` of the GIF at ``path``: frames converted to ``mode``
    (``"L"`` [H, W] or ``"RGB"`` [H, W, 3]; None: L for a grey GIF, else RGB), info of frame 0."""
    with Image.open(path) as im:
        assert im.format == "GIF"
        info = dict(im.info)
        mode = mode or ("L" if is_grey(im) else "RGB")
        frames, durations = [], []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert(mode)).copy())
            durations.append(im.info["duration"])
    return frames, durations, info
