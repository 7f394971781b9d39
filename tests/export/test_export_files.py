"""PNG / PNG sequence / filmstrip / NPZ writers, the dispatcher, atomic writes and errors."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image

import diffusion_gui.export.atomic as atomic_mod
from diffusion_gui.export import (
    Cancelled,
    ExportError,
    atomic_path,
    export_frames,
    write_filmstrip,
    write_gif,
    write_npz,
    write_png,
    write_png_sequence,
)

OLD = b"previous export, must survive\n" * 10


def _frames(n=5, h=6, w=8, c=3):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, c), dtype=np.uint8) for _ in range(n)]


def _existing(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(OLD)
    return p


def _only(tmp_path, *names):
    assert sorted(os.listdir(tmp_path)) == sorted(names)


# ------------------------------------------------------------------------------------ writers
def test_png_roundtrip(tmp_path):
    f = _frames(1)[0]
    write_png(f, tmp_path / "one.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "one.png")), f)
    write_png(f[:, :, :1], tmp_path / "grey.png")
    assert Image.open(tmp_path / "grey.png").mode == "L"


def test_written_file_has_normal_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    write_png(_frames(1)[0], tmp_path / "perm.png")
    assert (tmp_path / "perm.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_npz_roundtrip(tmp_path):
    imgs = np.stack(_frames(3))
    write_npz(imgs, tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:
        assert list(z.keys()) == ["images"]
        assert z["images"].dtype == np.uint8 and np.array_equal(z["images"], imgs)
    _only(tmp_path, "s.npz")


def test_png_sequence_names_and_count(tmp_path):
    folder = tmp_path / "seq"                    # created
    paths = write_png_sequence(_frames(12), folder, prefix="fwd")
    assert [p.name for p in paths] == [f"fwd_{k:04d}.png" for k in range(12)]
    assert sorted(os.listdir(folder)) == [p.name for p in paths]
    assert np.array_equal(np.asarray(Image.open(paths[3])), _frames(12)[3])
    # into an existing folder, other files are left alone
    (folder / "notes.txt").write_text("keep")
    write_png_sequence(_frames(2), folder, prefix="rev", scale=2)
    assert (folder / "notes.txt").read_text() == "keep"
    assert Image.open(folder / "rev_0001.png").size == (16, 12)


def test_png_sequence_cancel_removes_what_it_created(tmp_path):
    folder = tmp_path / "seq"
    with pytest.raises(Cancelled):
        write_png_sequence(_frames(6), folder, progress=lambda d, n: d < 3)
    _only(tmp_path)                               # the new folder is gone again
    folder.mkdir()
    keep = _existing(folder, "frame_0001.png")
    with pytest.raises(Cancelled):
        write_png_sequence(_frames(6), folder, progress=lambda d, n: d < 3)
    assert sorted(os.listdir(folder)) == ["frame_0001.png"]   # overwritten one stays (new data)
    assert keep.exists()


def test_filmstrip_size(tmp_path):
    p = tmp_path / "strip.png"
    write_filmstrip(_frames(5), p, pad=2)
    assert Image.open(p).size == (5 * 8 + 4 * 2, 6)
    write_filmstrip(_frames(5), p, ncols=2, pad=1, scale=2)
    assert Image.open(p).size == (2 * 16 + 1, 3 * 12 + 2 * 1)
    write_filmstrip(_frames(3, 32, 32), p, labels=["t = 0", "t = 10", "t = 1000"])
    w, h = Image.open(p).size
    assert h > 32 + 10 and w >= 3 * 32 + 2 * 2
    _only(tmp_path, "strip.png")


# ------------------------------------------------------------------------------------ dispatcher
def test_dispatch_by_extension(tmp_path):
    fr = _frames(3)
    assert export_frames(fr, tmp_path / "a.GIF").exists()
    assert Image.open(tmp_path / "a.GIF").n_frames == 3
    export_frames(fr, tmp_path / "b.png", captions=None)
    assert Image.open(tmp_path / "b.png").size == (3 * 8 + 2 * 2, 6)
    export_frames(fr, tmp_path / "c.npz")
    assert np.load(tmp_path / "c.npz")["images"].shape == (3, 6, 8, 3)
    paths = export_frames(fr, tmp_path / "frames")
    assert len(paths) == 3 and all(p.parent.name == "frames" for p in paths)


def test_unknown_extension_lists_supported(tmp_path):
    with pytest.raises(ExportError) as ei:
        export_frames(_frames(2), tmp_path / "out.jpg")
    msg = str(ei.value)
    assert "'.jpg'" in msg and ".gif" in msg and ".png" in msg and ".npz" in msg
    assert "\n" not in msg
    _only(tmp_path)


# ------------------------------------------------------------------------------------ errors
def test_missing_folder(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        write_gif(_frames(2), tmp_path / "nope" / "a.gif")
    with pytest.raises(ExportError, match="does not exist"):
        write_png_sequence(_frames(2), tmp_path / "nope" / "deeper")


def test_parent_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        write_png(_frames(1)[0], f / "a.png")
    with pytest.raises(ExportError, match="is a file"):
        write_png_sequence(_frames(2), f)


def test_target_is_a_folder(tmp_path):
    (tmp_path / "x.gif").mkdir()
    with pytest.raises(ExportError, match="folder"):
        write_gif(_frames(2), tmp_path / "x.gif")


def test_unwritable_folder(tmp_path, monkeypatch):
    # Tests run as root, which may write anywhere: simulate the folder check failing.
    monkeypatch.setattr(atomic_mod.os, "access", lambda *a, **k: False)
    with pytest.raises(ExportError, match="permission denied") as ei:
        write_gif(_frames(2), tmp_path / "a.gif")
    assert str(tmp_path) in str(ei.value)


def test_permission_error_on_rename(tmp_path, monkeypatch):
    target = _existing(tmp_path, "a.gif")

    def deny(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))
    monkeypatch.setattr(atomic_mod.os, "replace", deny)
    with pytest.raises(ExportError, match="permission denied"):
        write_gif(_frames(3), target)
    assert target.read_bytes() == OLD
    _only(tmp_path, "a.gif")


# ------------------------------------------------------------------------------------ atomicity
def test_cancel_leaves_existing_target_untouched(tmp_path):
    target = _existing(tmp_path, "out.gif")
    seen = []

    def progress(done, total):
        seen.append(done)
        return done < 2                            # cancel part-way
    with pytest.raises(Cancelled):
        write_gif(_frames(6), target, progress=progress)
    assert seen == [0, 1, 2]
    assert target.read_bytes() == OLD
    _only(tmp_path, "out.gif")


def test_cancel_after_the_file_is_written_still_leaves_target(tmp_path):
    target = _existing(tmp_path, "out.gif")
    with pytest.raises(Cancelled):
        write_gif(_frames(4), target, progress=lambda d, n: d < n)   # refuses only (4, 4)
    assert target.read_bytes() == OLD
    _only(tmp_path, "out.gif")


def test_disk_full_mid_write_leaves_existing_target_untouched(tmp_path, monkeypatch):
    target = _existing(tmp_path, "out.gif")

    def half_then_enospc(self, fp, format=None, **kw):
        with open(fp, "wb") as fh:
            fh.write(b"GIF89a partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Image.Image, "save", half_then_enospc)
    with pytest.raises(ExportError, match="disk is full") as ei:
        write_gif(_frames(4), target)
    assert str(target) in str(ei.value)
    assert target.read_bytes() == OLD
    _only(tmp_path, "out.gif")


def test_npz_disk_full(tmp_path, monkeypatch):
    target = _existing(tmp_path, "s.npz")

    def boom(fh, **kw):
        fh.write(b"PK partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(ExportError, match="disk is full"):
        write_npz(np.stack(_frames(2)), target)
    assert target.read_bytes() == OLD
    _only(tmp_path, "s.npz")


def test_atomic_path_on_any_exception(tmp_path):
    target = _existing(tmp_path, "x.png")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".")
            tmp.write_bytes(b"half")
            raise RuntimeError("writer crashed")
    assert target.read_bytes() == OLD
    _only(tmp_path, "x.png")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    _only(tmp_path, "x.png")
