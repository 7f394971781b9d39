"""Bad input through the GUI: each file either loads correctly or gives a clear, non-blocking
message, and the previous image stays on screen with the app still usable.

(The image-level corpus is tested in tests/core/test_images.py; this is the GUI path.)
"""
from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from diffusion_gui.gui import main_window as mw  # noqa: E402
from diffusion_gui.gui.context import AppContext  # noqa: E402
from diffusion_gui.gui.main_window import MainWindow  # noqa: E402


# ----------------------------------------------------------------------------- the corpus
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(w=30000, h=30000) -> bytes:
    """A valid-looking PNG header that claims w x h pixels (900 megapixels)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def _encoded(fmt, arr, mode=None, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, fmt, **kw) if mode else Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(h, w, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


BAD = {
    # name: (make(path) -> path, words one of which the message must contain)
    "missing": (lambda p: p.with_name("does-not-exist.png"), ("no such file",)),
    "folder": (lambda p: (p.mkdir(), p)[1], ("folder",)),
    "empty": (lambda p: (p.write_bytes(b""), p)[1], ("empty",)),
    "text": (lambda p: (p.write_text("this is not an image\n" * 20), p)[1], ("not an image",)),
    "random_bytes": (lambda p: (p.write_bytes(os.urandom(4096)), p)[1], ("not an image", "damaged")),
    "truncated_png": (lambda p: (p.write_bytes(_encoded("PNG", _noise(64, 64))[:1500]), p)[1],
                      ("truncated", "damaged")),
    "truncated_jpeg": (lambda p: (p.write_bytes(_encoded("JPEG", _noise(64, 64))[:900]), p)[1],
                       ("truncated", "damaged")),
    "bomb": (lambda p: (p.write_bytes(_bomb_png()), p)[1], ("megapixel", "too large")),
    "fifo": (lambda p: (os.mkfifo(p), p)[1], ("not a regular file",)),       # unreadable as root too
}
BAD_SUFFIX = {"missing": ".png", "folder": "", "empty": ".png", "text": ".png",
              "random_bytes": ".jpg", "truncated_png": ".png", "truncated_jpeg": ".jpg",
              "bomb": ".png", "fifo": ".png"}


def _good_16bit(p):
    a = (np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50).astype(np.uint16)
    im = Image.fromarray(a)
    assert im.mode.startswith("I;16")
    im.save(p)
    return p, (30, 40, 1)


def _good_cmyk(p):
    Image.new("CMYK", (33, 21), (0, 255, 255, 0)).save(p, "JPEG")
    return p, (21, 33, 3)


def _good_palette_transparent(p):
    im = Image.new("P", (25, 15), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * (3 * 254))
    im.paste(1, (0, 0, 10, 15))
    im.info["transparency"] = 0
    im.save(p, transparency=0)
    return p, (15, 25, 3)


def _good_exif_rotated(p):
    im = Image.fromarray(_noise(20, 40))                 # 40 wide, 20 tall as stored
    exif = Image.Exif()
    exif[0x0112] = 6                                     # orientation: rotate 90 CW to display
    im.save(p, "JPEG", exif=exif.tobytes())
    return p, (40, 20, 3)                                # displayed: 20 wide, 40 tall


def _good_rgba(p):
    a = np.zeros((12, 18, 4), np.uint8)
    a[..., 0] = 255
    a[..., 3] = 128
    Image.fromarray(a, "RGBA").save(p)
    return p, (12, 18, 3)


def _good_big(p):
    Image.fromarray(_noise(900, 1200)).save(p)           # shrunk to 512 on the long side
    return p, (384, 512, 3)


GOOD = {"16bit.png": _good_16bit, "cmyk.jpg": _good_cmyk, "palette.png": _good_palette_transparent,
        "exif6.jpg": _good_exif_rotated, "rgba.png": _good_rgba, "big.png": _good_big}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(mw, "PANELS", [("forward", "forward", "ForwardPanel")])
    ctx = AppContext(settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    first = tmp_path / "first.png"
    Image.fromarray(_noise(24, 32, seed=3)).save(first)
    assert win.open_image(first)
    fp = win.panel("forward")
    qtbot.waitUntil(fp.is_ready, timeout=60000)
    fp.set_t(250)
    yield win
    win.close()


def _snapshot(win):
    fp = win.panel("forward")
    return win.ctx.image.copy(), win.ctx.image_path, fp.view_xt.image().copy(), fp.t


def _assert_unchanged(win, snap):
    img, path, shown, t = snap
    fp = win.panel("forward")
    np.testing.assert_array_equal(win.ctx.image, img)
    assert win.ctx.image_path == path
    np.testing.assert_array_equal(fp.view_xt.image(), shown)
    assert fp.t == t


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_gives_message_and_keeps_image(window, tmp_path, name):
    make, words = BAD[name]
    path = make(tmp_path / f"bad_{name}{BAD_SUFFIX[name]}")
    snap = _snapshot(window)
    assert window.open_image(path) is False
    assert window.banner.isVisible(), "the error must be shown"
    assert window.banner.title == "Cannot open image"
    msg = window.banner.message.lower()
    assert any(w in msg for w in words), msg
    assert "\n" not in window.banner.message and "traceback" not in msg
    assert "Cannot open image" in window.statusBar().currentMessage()
    assert QApplication.activeModalWidget() is None          # nothing blocks
    _assert_unchanged(window, snap)
    # still usable: scrub and open a good image
    fp = window.panel("forward")
    fp.set_t(600)
    assert fp.t == 600
    good = tmp_path / "after.png"
    Image.fromarray(_noise(10, 14, seed=9)).save(good)
    assert window.open_image(good)
    assert window.banner.isHidden() and fp.view_xt.image().shape == (10, 14, 3)


def test_unreadable_file(window, tmp_path, monkeypatch):
    p = tmp_path / "secret.png"
    Image.fromarray(_noise(8, 8)).save(p)
    p.chmod(0)
    # tests run as root, who reads anything: make the open fail as it does for a user
    import errno

    from diffusion_gui.core import images
    real_open = images.Image.open

    def denied(fp, *a, **kw):
        if str(fp) == str(p):
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real_open(fp, *a, **kw)

    monkeypatch.setattr(images.Image, "open", denied)
    snap = _snapshot(window)
    assert window.open_image(p) is False
    assert "permission" in window.banner.message.lower()
    _assert_unchanged(window, snap)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_unusual_but_valid_files_load(window, tmp_path, qtbot, name):
    path, shape = GOOD[name](tmp_path / name)
    assert window.open_image(path), window.banner.message
    assert window.banner.isHidden()
    assert window.ctx.image.shape == shape
    fp = window.panel("forward")
    assert fp.x0_uint8().shape[2] == shape[2]
    assert fp.view_xt.image().shape[2] == shape[2]


def test_palette_transparency_is_composited_over_white(window, tmp_path):
    path, _ = _good_palette_transparent(tmp_path / "p.png")
    window.open_image(path)
    img = window.ctx.image
    assert tuple(img[0, 20]) == (255, 255, 255)       # transparent index 0 -> white
    assert tuple(img[0, 5]) == (0, 0, 255)            # opaque index 1 -> blue


def test_exif_rotation_is_applied(window, tmp_path):
    path, _ = _good_exif_rotated(tmp_path / "r.jpg")
    window.open_image(path)
    assert window.ctx.image.shape[:2] == (40, 20)


def test_bad_file_dropped(window, tmp_path, qtbot):
    import warnings

    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    p = tmp_path / "drop.png"
    p.write_bytes(b"GIF89a nope")
    snap = _snapshot(window)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton,
                                              Qt.NoModifier))
    # a drop decodes in the background: the banner comes when the decoder has failed
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10000)
    assert "drop.png" in window.banner.message
    _assert_unchanged(window, snap)


def test_recent_file_deleted_since(window, tmp_path, qtbot):
    p = tmp_path / "gone.png"
    Image.fromarray(_noise(8, 8)).save(p)
    assert window.open_image(p)
    window.open_image(tmp_path / "first.png")
    p.unlink()
    snap = _snapshot(window)
    entry = [a for a in window.recent_menu.actions() if a.statusTip() == str(p)][0]
    entry.trigger()                                   # decodes in the background
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10000)
    assert "no such file" in window.banner.message
    _assert_unchanged(window, snap)


def test_many_errors_in_a_row_stay_non_blocking(window, tmp_path):
    snap = _snapshot(window)
    for k in range(5):
        q = tmp_path / f"e{k}.png"
        q.write_bytes(b"")
        assert not window.open_image(q)
    assert len(window.errors) == 5 and window.banner.isVisible()
    assert "e4.png" in window.banner.message                 # the latest message is shown
    assert QApplication.activeModalWidget() is None
    _assert_unchanged(window, snap)
