"""Every Pillow mode loads with the right pixels, or is refused with a clear reason (issue #21:
Pillow's own ``rdf.tif``, mode PA, was refused with "can only concatenate tuple ...")."""
from __future__ import annotations

import io

import numpy as np
import pytest
from image_modes import MODES, TOLERANCE
from PIL import Image

from diffusion_gui.core.images import _convert, load_image, read_image
from diffusion_gui.errors import ImageLoadError


@pytest.mark.parametrize("name", list(MODES))
def test_mode_loads_with_the_right_pixels(tmp_path, name):
    make, want_mode, want = MODES[name]
    path = make(tmp_path)
    im = read_image(path)
    assert im.mode == want_mode and im.size == (6, 4)
    for (x, y), v in want.items():
        got = np.atleast_1d(np.asarray(im.getpixel((x, y)), dtype=int))
        assert np.abs(got - np.atleast_1d(v)).max() <= TOLERANCE, (name, (x, y), got, v)
    t = load_image(path)                               # and on to the float tensor
    assert t.shape == (1 if want_mode == "L" else 3, 4, 6)
    assert float(t.min()) >= -1 and float(t.max()) <= 1


def test_pa_tiff_like_pillows_rdf_tif(tmp_path):
    """The PA file of the issue: palette index + alpha; an opaque pixel keeps its colour, a
    transparent one is white, and a grey palette stays grey."""
    im = Image.new("PA", (3, 1), (0, 255))
    im.putpalette([90, 90, 90, 200, 200, 200] + [0] * 762)
    im.putpixel((1, 0), (1, 255))
    im.putpixel((2, 0), (1, 0))
    p = tmp_path / "rdf_like.tif"
    im.save(p)
    with Image.open(p) as check:
        assert check.mode == "PA"
    out = read_image(p)
    assert out.mode == "L" and np.asarray(out).tolist() == [[90, 200, 255]]


def _every_mode_file(mode, fmt):
    im = Image.new(mode, (5, 4))
    b = io.BytesIO()
    try:
        im.save(b, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        return None                                    # Pillow cannot write it: not our case
    return b.getvalue()


@pytest.mark.parametrize("mode", Image.MODES if hasattr(Image, "MODES") else
                         ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F"])
def test_every_pillow_mode_loads_or_is_refused_clearly(tmp_path, mode):
    """Whatever Pillow writes in any mode, in every format it will write it in, reads back
    through read_image as L or RGB, or as an ImageLoadError that names no Python exception;
    an image of that mode made in memory converts to L or RGB."""
    out = _convert(Image.new(mode, (5, 4)), None)
    assert out.mode in ("L", "RGB") and out.size == (5, 4)
    for fmt in ("PNG", "TIFF", "WEBP", "BMP", "GIF", "JPEG"):
        data = _every_mode_file(mode, fmt)
        if data is None:
            continue
        p = tmp_path / f"x_{fmt.lower()}.{fmt.lower()}"
        p.write_bytes(data)
        try:
            out = read_image(p)
        except ImageLoadError as e:
            msg = str(e)
            assert "Error" not in msg and "concatenate" not in msg, msg
            continue
        assert out.mode in ("L", "RGB") and out.size == (5, 4)
