"""A corpus of small valid images, one for each Pillow mode the loader must handle, with the
pixels :func:`diffusion_gui.core.images.read_image` must give. Shared by
tests/core/test_images_modes.py and the GUI exerciser (tests/gui/test_exerciser.py).

``MODES[name] = (make, want_mode, want)``: ``make(folder)`` writes the file and returns its path;
``want`` maps a pixel ``(x, y)`` to the value (int for L, tuple for RGB) it must load as, within
:data:`TOLERANCE` grey levels (JPEG and YCbCr / CMYK round trips are not exact).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TOLERANCE = 3
W, H = 6, 4


def _save(im: Image.Image, folder, name, **kw) -> Path:
    p = Path(folder) / name
    im.save(p, **kw)
    return p


def _bilevel(folder):
    a = np.zeros((H, W), bool)
    a[:, 3:] = True
    return _save(Image.fromarray(a), folder, "m_1.png")


def _grey(folder):
    a = np.tile(np.array([0, 50, 100, 150, 200, 250], np.uint8), (H, 1))
    return _save(Image.fromarray(a, "L"), folder, "m_L.png")


def _la(folder):
    a = np.zeros((H, W, 2), np.uint8)
    a[..., 0] = 40
    a[:, :3, 1] = 255            # opaque dark grey on the left, transparent (white) right
    return _save(Image.fromarray(a, "LA"), folder, "m_LA.png")


def _palette(folder):
    im = Image.new("P", (W, H), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (3, 0, W, H))
    return _save(im, folder, "m_P.png")


def _palette_alpha(folder):
    """Mode PA, as Pillow's own ``Tests/images/rdf.tif``: a palette index and an alpha."""
    im = Image.new("PA", (W, H), (0, 255))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste((1, 0), (3, 0, W, H))    # right half: index 1 but fully transparent -> white
    return _save(im, folder, "m_PA.tif")


def _rgb(folder):
    a = np.zeros((H, W, 3), np.uint8)
    a[:, :3] = (10, 200, 30)
    a[:, 3:] = (250, 128, 0)
    return _save(Image.fromarray(a, "RGB"), folder, "m_RGB.png")


def _rgba(folder):
    a = np.zeros((H, W, 4), np.uint8)
    a[..., :3] = (0, 0, 255)
    a[:, :3, 3] = 255
    a[:, 3:, 3] = 0
    return _save(Image.fromarray(a, "RGBA"), folder, "m_RGBA.png")


def _i16_png(folder):
    a = np.tile(np.array([0, 257 * 10, 257 * 100, 257 * 200, 65535, 257], np.uint16), (H, 1))
    return _save(Image.fromarray(a), folder, "m_I16.png")


def _i16_tiff(folder):
    a = np.tile(np.array([0, 257 * 10, 257 * 100, 257 * 200, 65535, 257], np.uint16), (H, 1))
    return _save(Image.fromarray(a), folder, "m_I16.tif")


def _i32(folder):
    a = np.tile(np.array([0, 10, 100, 200, 255, 1], np.int32), (H, 1))
    return _save(Image.fromarray(a), folder, "m_I.tif")


def _float(folder):
    a = np.tile(np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], np.float32), (H, 1))
    return _save(Image.fromarray(a), folder, "m_F.tif")


def _cmyk(folder):
    im = Image.new("CMYK", (W, H), (0, 255, 255, 0))           # red
    im.paste((0, 0, 0, 255), (3, 0, W, H))                      # black
    return _save(im, folder, "m_CMYK.tif")


def _ycbcr(folder):
    im = Image.new("RGB", (W, H), (128, 128, 128)).convert("YCbCr")
    return _save(im, folder, "m_YCbCr.tif")


def _rgb48_png(folder):
    """A 16-bit-a-channel colour PNG (Pillow reads it as 8-bit RGB)."""
    import struct
    import zlib
    rows = b""
    for _ in range(H):
        rows += b"\x00" + b"".join(struct.pack(">HHH", 65535, 0, 32896) for _ in range(W))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    p = Path(folder) / "m_RGB48.png"
    p.write_bytes(png)
    return p


MODES = {
    "1": (_bilevel, "L", {(0, 0): 0, (5, 3): 255}),
    "L": (_grey, "L", {(0, 0): 0, (2, 1): 100, (5, 3): 250}),
    "LA": (_la, "L", {(0, 0): 40, (5, 0): 255}),
    "P": (_palette, "RGB", {(0, 0): (255, 0, 0), (5, 3): (0, 0, 255)}),
    "PA": (_palette_alpha, "RGB", {(0, 0): (255, 0, 0), (5, 3): (255, 255, 255)}),
    "RGB": (_rgb, "RGB", {(0, 0): (10, 200, 30), (5, 3): (250, 128, 0)}),
    "RGBA": (_rgba, "RGB", {(0, 0): (0, 0, 255), (5, 3): (255, 255, 255)}),
    "I;16 PNG": (_i16_png, "L", {(0, 0): 0, (1, 0): 10, (4, 0): 255, (5, 0): 1}),
    "I;16 TIFF": (_i16_tiff, "L", {(0, 0): 0, (3, 0): 200, (4, 0): 255}),
    "I": (_i32, "L", {(1, 0): 10, (4, 0): 255}),
    "F": (_float, "L", {(0, 0): 0, (1, 0): 51, (5, 0): 255}),
    "CMYK": (_cmyk, "RGB", {(0, 0): (255, 0, 0), (5, 3): (0, 0, 0)}),
    "YCbCr": (_ycbcr, "RGB", {(0, 0): (128, 128, 128)}),
    "RGB 16-bit PNG": (_rgb48_png, "RGB", {(0, 0): (255, 0, 128)}),
}


def make_all(folder) -> dict[str, Path]:
    """Write every image of :data:`MODES` into ``folder``; name -> path."""
    return {name: make(folder) for name, (make, _, _) in MODES.items()}
