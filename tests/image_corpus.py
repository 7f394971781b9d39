"""A generated corpus of good and bad image files, shared by the loader tests
(tests/core/test_images.py) and the CLI's end-to-end bad-input tests (tests/test_cli_bad_inputs.py).

Nothing is committed: every file is written into a folder the caller gives.

``BAD[name] = (suffix, make, words)``: ``make(path)`` creates the bad file at ``path`` (which
ends in ``suffix``) and returns the path to open (``missing`` returns one that does not exist);
the loader's one-line message must contain one of ``words`` (lower case).

``GOOD[name] = (suffix, make)``: ``make(path)`` writes an unusual but valid image and returns
``(mode, (w, h))``, what :func:`diffusion_gui.core.images.read_image` must give for it.

``make_bad(name, folder)`` / ``make_good(name, folder)`` do the naming.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


# ------------------------------------------------------------------------------------ bytes
def gradient_rgb(w=48, h=32) -> np.ndarray:
    """A uint8 ``[h, w, 3]`` gradient (red across, green down, blue 90)."""
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None]
    return np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)),
                     np.full((h, w), 90.0)], axis=2).round().astype(np.uint8)


def noise_rgb(h, w, c=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def png_bytes(img: Image.Image, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, format="PNG", **kw)
    return b.getvalue()


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, format="JPEG", quality=95, **kw)
    return b.getvalue()


def png_header_only(w: int, h: int, bit_depth=1, color_type=0) -> bytes:
    """A PNG that claims ``w x h`` pixels but carries (almost) no data: cheap to make."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


# ------------------------------------------------------------------------------------ bad files
def _write(data: bytes):
    def make(p: Path) -> Path:
        p.write_bytes(data)
        return p
    return make


def _half(data: bytes):
    return _write(data[: len(data) // 2])


def _missing(p: Path) -> Path:
    return p.with_name("does-not-exist" + p.suffix)


def _folder(p: Path) -> Path:
    p.mkdir()
    return p


def _through_a_file(p: Path) -> Path:
    p.write_bytes(png_bytes(Image.new("L", (4, 4))))
    return p / "inside.png"                     # a path that goes "through" a file


def _fifo(p: Path) -> Path:
    os.mkfifo(p)                                # a reader would block forever: must be refused
    return p


_NOISE = Image.fromarray(noise_rgb(64, 64))
_GIF = io.BytesIO()
_NOISE.save(_GIF, format="GIF")

BAD: dict[str, tuple] = {
    "missing": (".png", _missing, ("no such file",)),
    "path_through_a_file": (".png", _through_a_file, ("no such file",)),
    "folder": ("", _folder, ("folder",)),
    "zero_bytes": (".png", _write(b""), ("empty",)),
    "text_named_png": (".png", _write(b"this is not an image\n" * 20), ("not an image",)),
    "html_named_jpg": (".jpg", _write(b"<!doctype html><html><body>404</body></html>\n"),
                       ("not an image",)),
    "random_bytes": (".jpg", _write(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)
                                    .tobytes()), ("not an image", "damaged")),
    "truncated_png": (".png", _half(png_bytes(_NOISE)), ("truncated", "damaged")),
    "truncated_jpeg": (".jpg", _half(jpeg_bytes(_NOISE)), ("truncated", "damaged")),
    "truncated_gif": (".gif", _half(_GIF.getvalue()), ("truncated", "damaged")),
    "gif_header_only": (".gif", _write(b"GIF89a nope"), ("truncated", "damaged", "not an image")),
    "png_signature_only": (".png", _write(b"\x89PNG\r\n\x1a\n"), ("truncated", "damaged",
                                                                    "not an image")),
    # 20000^2: Pillow's own DecompressionBombError; 10000^2: Pillow's warning (made an error);
    # 9000^2 = 81 Mpx: below Pillow's limits, above ours. All refused from the header alone.
    "bomb_20000": (".png", _write(png_header_only(20000, 20000)), ("megapixel",)),
    "bomb_10000": (".png", _write(png_header_only(10000, 10000)), ("megapixel",)),
    "bomb_9000": (".png", _write(png_header_only(9000, 9000)), ("megapixel",)),
    "bomb_strip": (".png", _write(png_header_only(1_000_000, 100)), ("megapixel",)),
}
if hasattr(os, "mkfifo"):
    BAD["fifo"] = (".png", _fifo, ("not a regular file",))


# ------------------------------------------------------------------------------------ good files
def _one_pixel(p):
    Image.new("RGB", (1, 1), (10, 200, 30)).save(p)
    return "RGB", (1, 1)


def _wide_strip(p):
    Image.new("L", (10000, 10), 77).save(p)
    return "L", (10000, 10)


def _tall_strip(p):
    Image.fromarray(noise_rgb(3000, 7)).save(p)
    return "RGB", (7, 3000)


def _sixteen_bit(p):
    a = (np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50).astype(np.uint16)
    Image.fromarray(a).save(p)
    return "L", (40, 30)


def _float_tiff(p):
    Image.fromarray(np.linspace(0, 1, 33, dtype=np.float32)[None].repeat(5, 0), "F").save(p)
    return "L", (33, 5)


def _bilevel(p):
    im = Image.new("1", (5, 3), 0)
    im.putpixel((2, 1), 1)
    im.save(p)
    return "L", (5, 3)


def _cmyk(p):
    Image.new("CMYK", (33, 21), (0, 255, 255, 0)).save(p, "JPEG", quality=95)
    return "RGB", (33, 21)


def _la(p):
    a = np.zeros((12, 9, 2), np.uint8)
    a[:, 3:, 1] = 255
    Image.fromarray(a, "LA").save(p)
    return "L", (9, 12)


def _rgba(p):
    a = np.zeros((12, 18, 4), np.uint8)
    a[..., 0] = 255
    a[..., 3] = 128
    Image.fromarray(a, "RGBA").save(p)
    return "RGB", (18, 12)


def _palette_transparent(p):
    im = Image.new("P", (25, 15), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * (3 * 254))
    im.paste(1, (0, 0, 10, 15))
    im.save(p, transparency=0)
    return "RGB", (25, 15)


def _grey_palette(p):
    Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16, "L").convert("P").save(p)
    return "L", (4, 4)


def _animated_gif(p):
    frames = [Image.new("RGB", (8, 6), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return "RGB", (8, 6)


def _animated_png(p):
    frames = [Image.new("L", (8, 6), v) for v in (30, 200)]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100)
    return "L", (8, 6)


def _exif_rotated(p):
    im = Image.fromarray(noise_rgb(20, 40))                # stored 40 wide, 20 tall
    exif = Image.Exif()
    exif[0x0112] = 6                                       # rotate 90 CW to display
    im.save(p, "JPEG", exif=exif.tobytes(), quality=95)
    return "RGB", (20, 40)                                 # displayed: 20 wide, 40 tall


def _png_named_jpg(p):
    p.write_bytes(png_bytes(Image.fromarray(gradient_rgb())))
    return "RGB", (48, 32)


def _jpeg_named_gif(p):
    p.write_bytes(jpeg_bytes(Image.fromarray(gradient_rgb(20, 12))))
    return "RGB", (20, 12)


def _webp(p):
    Image.fromarray(gradient_rgb(24, 16)).save(p, "WEBP")
    return "RGB", (24, 16)


def _big(p):
    Image.fromarray(noise_rgb(900, 1200)).save(p)
    return "RGB", (1200, 900)


GOOD: dict[str, tuple] = {
    "one_pixel": (".png", _one_pixel),
    "strip_10000x10": (".png", _wide_strip),
    "strip_7x3000": (".png", _tall_strip),
    "16bit": (".png", _sixteen_bit),
    "float_tiff": (".tif", _float_tiff),
    "bilevel": (".png", _bilevel),
    "cmyk": (".jpg", _cmyk),
    "la_transparent": (".png", _la),
    "rgba": (".png", _rgba),
    "palette_transparent": (".png", _palette_transparent),
    "grey_palette": (".png", _grey_palette),
    "animated_gif": (".gif", _animated_gif),
    "animated_png": (".png", _animated_png),
    "exif_rotated": (".jpg", _exif_rotated),
    "png_named_jpg": (".jpg", _png_named_jpg),
    "jpeg_named_gif": (".gif", _jpeg_named_gif),
    "webp": (".webp", _webp),
    "big_1200x900": (".png", _big),
}


def make_bad(name: str, folder) -> Path:
    """Create bad case ``name`` in ``folder``; the path to try to open."""
    suffix, make, _ = BAD[name]
    return make(Path(folder) / f"bad_{name}{suffix}")


def make_good(name: str, folder) -> tuple[Path, str, tuple[int, int]]:
    """Create good case ``name`` in ``folder``: ``(path, mode, (w, h))`` as read_image gives it."""
    suffix, make = GOOD[name]
    p = Path(folder) / f"good_{name}{suffix}"
    mode, size = make(p)
    return p, mode, size
