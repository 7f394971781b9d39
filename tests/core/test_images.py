"""diffusion_gui.core.images: loading any file safely, conversions, grids.

The corpus of good and bad files is generated in temporary folders; nothing is committed.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# the corpus generators are shared with the CLI's end-to-end tests (tests/test_cli_bad_inputs.py)
from image_corpus import BAD, GOOD, make_bad, make_good
from image_corpus import gradient_rgb as _gradient_rgb
from image_corpus import jpeg_bytes as _jpeg_bytes
from image_corpus import png_bytes as _png_bytes
from image_corpus import png_header_only as _png_header_only
from PIL import Image

from diffusion_gui.core.images import (
    MAX_PIXELS,
    ImageLoadError,
    enlarge,
    fit_size,
    load_image,
    read_image,
    resize_image,
    tile,
    to_float_array,
    to_uint8,
)

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "images"


# ------------------------------------------------------------------------------------ helpers
def _refused(path, *words):
    with pytest.raises(ImageLoadError) as ei:
        read_image(path)
    msg = str(ei.value)
    assert str(path) in msg, msg
    assert "\n" not in msg
    for w in words:
        assert w in msg.lower(), msg
    return msg


# ------------------------------------------------------------------------------------ refusals
def test_missing_file(tmp_path):
    _refused(tmp_path / "nope.png", "no such file")


def test_directory(tmp_path):
    _refused(tmp_path, "folder")


def test_zero_bytes(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    _refused(p, "empty")


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated(tmp_path, fmt):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = _png_bytes(img) if fmt == "png" else _jpeg_bytes(img)
    p = tmp_path / f"cut.{fmt}"
    p.write_bytes(data[: len(data) // 2])
    _refused(p, "truncated")


def test_text_named_png_is_refused(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("hello, I am not a picture\n")
    _refused(p, "not an image")


def test_random_bytes_are_refused(tmp_path):
    p = tmp_path / "blob.bin"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _refused(p, "not an image")


@pytest.mark.parametrize("side", [20000, 10000, 9000])
def test_decompression_bomb_refused_before_decoding(tmp_path, side):
    # 20000^2: Pillow's own DecompressionBombError; 10000^2: Pillow's warning (made an error);
    # 9000^2 = 81 Mpx: below Pillow's limits, above ours.
    assert side * side > MAX_PIXELS
    p = tmp_path / f"bomb{side}.png"
    p.write_bytes(_png_header_only(side, side))
    assert p.stat().st_size < 200
    _refused(p, "megapixels")


def test_message_attributes(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageLoadError) as ei:
        read_image(p)
    assert ei.value.path == str(p) and ei.value.problem
    assert isinstance(ei.value, ValueError)


@pytest.mark.parametrize("name", sorted(BAD))
def test_corpus_bad_files_are_refused_in_one_line(tmp_path, name):
    path = make_bad(name, tmp_path)
    msg = _refused(path)
    assert any(w in msg.lower() for w in BAD[name][2]), msg


@pytest.mark.parametrize("name", sorted(GOOD))
def test_corpus_good_files_load(tmp_path, name):
    path, mode, size = make_good(name, tmp_path)
    im = read_image(path)
    assert (im.mode, im.size) == (mode, size)


# ------------------------------------------------------------------------------------ loading
def test_png_named_jpg_loads(tmp_path):
    a = _gradient_rgb()
    p = tmp_path / "really_a_png.jpg"
    p.write_bytes(_png_bytes(Image.fromarray(a)))
    im = read_image(p)
    assert im.mode == "RGB" and np.array_equal(np.asarray(im), a)


def test_one_pixel(tmp_path):
    p = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (10, 200, 30)).save(p)
    im = read_image(p)
    assert im.size == (1, 1) and im.getpixel((0, 0)) == (10, 200, 30)
    x = load_image(p, size=4)
    assert x.shape == (3, 4, 4)
    assert torch.allclose(x[:, 0, 0], torch.tensor([10, 200, 30]) / 127.5 - 1, atol=1e-2)


def test_long_strip(tmp_path):
    p = tmp_path / "strip.png"
    Image.new("L", (10000, 10), 77).save(p)
    im = read_image(p)
    assert im.size == (10000, 10) and im.mode == "L"
    assert resize_image(im, max_side=256).size == (256, 1)  # never below one pixel
    assert load_image(p, size=(32, 32)).shape == (1, 32, 32)


def test_16bit_is_scaled_not_clipped(tmp_path):
    row = np.array([0, 257 * 64, 32768, 257 * 200, 65535], dtype=np.uint16)
    a = np.tile(row, (4, 1))
    p = tmp_path / "deep.png"
    Image.fromarray(a).save(p)
    assert Image.open(p).mode.startswith("I")
    im = read_image(p)
    assert im.mode == "L"
    got = np.asarray(im)[0]
    assert got[0] == 0 and got[-1] == 255
    assert got[1] == 64 and got[3] == 200
    assert abs(int(got[2]) - 128) <= 1


def test_float_tiff_in_unit_range(tmp_path):
    a = np.linspace(0, 1, 11, dtype=np.float32)[None].repeat(3, 0)
    p = tmp_path / "float.tif"
    Image.fromarray(a, "F").save(p)
    got = np.asarray(read_image(p))[0]
    assert got[0] == 0 and got[-1] == 255 and abs(int(got[5]) - 128) <= 1


def test_cmyk_jpeg(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(p, quality=95)   # pure red
    assert Image.open(p).mode == "CMYK"
    im = read_image(p)
    assert im.mode == "RGB"
    r, g, b = np.asarray(im).reshape(-1, 3).mean(0)
    assert r > 240 and g < 15 and b < 15


def test_la_transparent_is_white(tmp_path):
    a = np.zeros((4, 3, 2), np.uint8)          # black everywhere
    a[:, 0, 1] = 0                              # column 0: fully transparent
    a[:, 1, 1] = 255                            # column 1: opaque black
    a[:, 2, 1] = 128                            # column 2: half
    p = tmp_path / "la.png"
    Image.fromarray(a, "LA").save(p)
    im = read_image(p)
    assert im.mode == "L"
    row = np.asarray(im)[0]
    assert row[0] == 255 and row[1] == 0 and abs(int(row[2]) - 127) <= 2


def test_rgba_transparent_is_white(tmp_path):
    a = np.zeros((2, 2, 4), np.uint8)
    a[0, 0] = (255, 0, 0, 255)
    p = tmp_path / "rgba.png"
    Image.fromarray(a, "RGBA").save(p)
    got = np.asarray(read_image(p))
    assert tuple(got[0, 0]) == (255, 0, 0) and tuple(got[1, 1]) == (255, 255, 255)


def test_palette_with_transparency_is_white(tmp_path):
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 0, 0, 255] + [0] * (254 * 3))   # 0 black, 1 blue
    im.putpixel((1, 1), 1)
    p = tmp_path / "pal.png"
    im.save(p, transparency=0)
    got = np.asarray(read_image(p))
    assert got.shape == (4, 4, 3)
    assert tuple(got[0, 0]) == (255, 255, 255)     # transparent black -> white
    assert tuple(got[1, 1]) == (0, 0, 255)


def test_grey_palette_stays_grey(tmp_path):
    im = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16, "L").convert("P")
    p = tmp_path / "greypal.png"
    im.save(p)
    assert Image.open(p).mode == "P"
    assert read_image(p).mode == "L"
    assert read_image(p, channels="RGB").mode == "RGB"


def test_bilevel(tmp_path):
    p = tmp_path / "bw.png"
    im = Image.new("1", (5, 3), 0)
    im.putpixel((2, 1), 1)
    im.save(p)
    got = np.asarray(read_image(p))
    assert got.dtype == np.uint8 and got[1, 2] == 255 and got[0, 0] == 0


def test_animated_gif_first_frame(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (8, 6), c) for c in colours]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(p).n_frames == 3
    got = np.asarray(read_image(p))
    assert got.shape == (6, 8, 3) and tuple(got[3, 4]) == (255, 0, 0)


def test_animated_png_first_frame(tmp_path):
    frames = [Image.new("L", (8, 6), v) for v in (30, 200)]
    p = tmp_path / "anim.png"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(p), "n_frames", 1) == 2
    assert np.asarray(read_image(p))[0, 0] == 30


def test_exif_orientation_6(tmp_path):
    # Stored 40 wide x 20 high; a red block in the stored top-left corner. Orientation 6 means
    # "rotate 90 degrees clockwise to display": the display is 20 x 40 with red top-right.
    a = np.full((20, 40, 3), 255, np.uint8)
    a[:8, :8] = (255, 0, 0)
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "rotated.jpg"
    im.save(p, exif=exif.tobytes(), quality=95)
    got = read_image(p)
    assert got.size == (20, 40)
    g = np.asarray(got).astype(int)
    assert g[3, 16, 0] > 200 and g[3, 16, 1] < 60                  # top-right is red
    assert g[3, 3, 1] > 200 and g[36, 3, 1] > 200 and g[36, 16, 1] > 200  # other corners white


def test_channels_option(tmp_path):
    p = tmp_path / "c.png"
    Image.fromarray(_gradient_rgb()).save(p)
    assert read_image(p, channels="L").mode == "L"
    assert load_image(p, channels="L").shape == (1, 32, 48)
    q = tmp_path / "g.png"
    Image.new("L", (5, 5), 9).save(q)
    assert read_image(q).mode == "L"
    assert load_image(q, channels="RGB").shape == (3, 5, 5)
    with pytest.raises(ValueError):
        read_image(q, channels="RGBA")


def test_bundled_assets_load():
    names = sorted(p.name for p in ASSETS.iterdir() if p.suffix in (".jpg", ".png"))
    assert len(names) >= 3
    for n in names:
        im = read_image(ASSETS / n)
        assert max(im.size) <= 512 and (ASSETS / n).stat().st_size < 200_000
    digit = read_image(ASSETS / "digit_7.png")
    assert digit.mode == "L" and digit.size == (64, 64)


# ------------------------------------------------------------------------------------ resizing
def test_fit_size():
    assert fit_size(400, 200, 100) == (100, 50)
    assert fit_size(200, 400, 100) == (50, 100)
    assert fit_size(30, 20, 100) == (30, 20)          # never enlarges
    assert fit_size(10000, 10, 256) == (256, 1)
    with pytest.raises(ValueError):
        fit_size(0, 10, 5)


def test_resize_exact_size_center_crops():
    a = np.zeros((20, 60, 3), np.uint8)
    a[:, 20:40] = 255                                  # a white square in the middle third
    out = resize_image(Image.fromarray(a), size=(10, 10))
    assert out.size == (10, 10)
    assert np.asarray(out).min() >= 230                # only the centred square is kept (Lanczos
    #                                                    lobes reach a little past the crop box)
    assert resize_image(Image.fromarray(a), size=8).size == (8, 8)
    with pytest.raises(ValueError):
        resize_image(Image.fromarray(a), max_side=5, size=5)


# ------------------------------------------------------------------------------------ arrays
def test_float_array_and_back():
    a = _gradient_rgb()
    f = to_float_array(Image.fromarray(a))
    assert f.dtype == np.float32 and f.shape == (3, 32, 48)
    assert f.min() == -1.0 and f.max() == 1.0
    assert np.array_equal(to_uint8(f), a)
    assert np.array_equal(to_uint8(torch.from_numpy(f)[None])[0], a)
    g = to_float_array(a[:, :, 0])
    assert g.shape == (1, 32, 48)


def test_to_uint8_clamps_and_rounds():
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 5.0, float("nan")]).reshape(1, 1, 6)
    u = to_uint8(x)
    assert u.shape == (1, 6, 1) and u.dtype == np.uint8
    assert u[0, :, 0].tolist() == [0, 0, 128, 255, 255, 0]
    b = to_uint8(np.zeros((2, 3, 4, 5), np.float32))
    assert b.shape == (2, 4, 5, 3)
    with pytest.raises(ValueError):
        to_uint8(np.zeros((4, 5)))


def test_to_uint8_scratch_gives_the_same_bytes_in_place():
    x = np.random.default_rng(0).normal(0, 1.5, (3, 2, 5, 7)).astype(np.float32)
    want = to_uint8(x)
    assert np.array_equal(want, to_uint8(x.copy()))            # x itself is left alone
    buf = x.copy()
    assert np.array_equal(to_uint8(buf, scratch=True), want)
    assert not np.array_equal(buf, x)                           # ... the scratch buffer is used


def test_tile_and_enlarge():
    imgs = np.stack([np.full((4, 3, 1), k, np.uint8) for k in range(5)])
    g = tile(imgs)                                     # 5 -> 3 columns, 2 rows
    assert g.shape == (2 * 4 + 1, 3 * 3 + 2, 1)
    assert g[0, 0, 0] == 0 and g[0, 4, 0] == 1 and g[5, 0, 0] == 3
    assert g[4, 0, 0] == 255 and g[5, 8, 0] == 255     # pad row, empty last cell
    assert tile(imgs, ncols=5, pad=0).shape == (4, 15, 1)
    e = enlarge(np.arange(6, dtype=np.uint8).reshape(2, 3, 1), 3)
    assert e.shape == (6, 9, 1) and e[5, 8, 0] == 5 and e[2, 2, 0] == 0 and e[3, 3, 0] == 4


def test_module_imports_without_torch():
    src = Path(__file__).resolve().parents[2] / "diffusion_gui" / "core" / "images.py"
    # the package ``diffusion_gui.core`` stands in empty, so that its __init__ (torch) never runs
    code = ("import importlib.util, sys, types\n"
            "import diffusion_gui\n"
            "core = types.ModuleType('diffusion_gui.core'); core.__path__ = []\n"
            "sys.modules['diffusion_gui.core'] = core\n"
            f"spec = importlib.util.spec_from_file_location('diffusion_gui.core.images', r'{src}')\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "assert not [k for k in sys.modules if k.startswith('PySide6')]\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------ fuzzing
@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _only_image_load_error(path: Path, data: bytes):
    path.write_bytes(data)
    try:
        im = read_image(path)
    except ImageLoadError as e:
        assert "\n" not in str(e) and str(path) in str(e)
    else:
        assert im.mode in ("L", "RGB")


_SEEDS = {
    "png": _png_bytes(Image.fromarray(_gradient_rgb(24, 16))),
    "jpg": _jpeg_bytes(Image.fromarray(_gradient_rgb(24, 16))),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(min_size=0, max_size=2048))
def test_fuzz_random_bytes(fuzz_dir, data):
    _only_image_load_error(fuzz_dir / "random.png", data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(_SEEDS)),
       edits=st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert"]),
                                st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=6))
def test_fuzz_mutated_images(fuzz_dir, kind, edits):
    data = bytearray(_SEEDS[kind])
    for op, where, value in edits:
        if not data:
            break
        k = int(where * len(data))
        if op == "flip":
            data[k] ^= value or 1
        elif op == "cut":
            del data[k:]
        else:
            data[k:k] = bytes([value]) * 4
    _only_image_load_error(fuzz_dir / f"mutated.{kind}", bytes(data))
