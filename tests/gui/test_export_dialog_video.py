"""The Export dialog writes MP4, WebM, animated WebP and APNG for a timeline: the format list,
the timing row (hold first / last, loop hidden for videos), the size estimate, and the files
read back with PyAV / Pillow."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import av  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from diffusion_gui.gui.context import AppContext  # noqa: E402
from diffusion_gui.gui.export_dialog import ExportDialog  # noqa: E402
from diffusion_gui.gui.export_sources import ForwardTimelineSource  # noqa: E402
from diffusion_gui.sessions.export_sources import KIND_FORMATS  # noqa: E402


@pytest.fixture
def dialog(qtbot, tmp_path_factory):
    ini = tmp_path_factory.mktemp("settings") / "s.ini"
    ctx = AppContext(settings=QSettings(str(ini), QSettings.IniFormat))
    from diffusion_gui.core import NoiseSchedule
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:15, 0:21]
    x0 = np.stack([xx / 10 - 1, yy / 7 - 1, 0 * xx], axis=2).astype(np.float32)   # odd size
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    ab = NoiseSchedule.from_name("linear", 100).alpha_bars.numpy()
    src = ForwardTimelineSource("Forward: timeline", x0, eps, ab)
    d = ExportDialog(ctx, [src])
    qtbot.addWidget(d)
    d.show()
    yield d, src
    d.shutdown()
    ctx.shutdown()


def _export(d, path):
    d.set_target(path)
    assert d.start_export(), d.message
    assert d.wait(60000)
    assert d.status == "done", d.message


def test_formats_offered_and_timing_row(dialog, qtbot):
    d, _ = dialog
    offered = [d.form.format_combo.itemData(k) for k in range(d.form.format_combo.count())]
    assert offered == list(KIND_FORMATS["timeline"])
    assert {"mp4", "webm", "webp", "apng"} <= set(offered)
    for fmt, loop_shown in (("mp4", False), ("webm", False), ("webp", True), ("apng", True),
                            ("gif", True)):
        d.set_format(fmt)
        assert d.form.form.isRowVisible(d.form._rows["gif"])
        assert d.form.loop_check.isVisibleTo(d.form) == loop_shown
    d.set_format("filmstrip")
    assert not d.form.form.isRowVisible(d.form._rows["gif"])


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_video_export_holds_and_frames(dialog, tmp_path, fmt):
    d, src = dialog
    d.set_format(fmt)
    d.set_options(n_frames=8, caption=False, scale=1, fps=10, hold_first_s=0.3, hold_last_s=0.5)
    out = tmp_path / f"fwd.{fmt}"
    _export(d, out)
    assert os.listdir(tmp_path) == [out.name]
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 8 + 3 + 5 and frames[0].shape == (16, 22, 3)
    x0 = src.frame_at(d.options(), 0)[0]
    err = np.abs(frames[0][:15, :21].astype(int) - x0.astype(int)).mean()
    assert err < 6                                                   # x_0 first, held
    assert np.abs(frames[3][:15, :21].astype(int) - x0.astype(int)).mean() < 6


def test_webp_and_apng_export_exact(dialog, tmp_path):
    d, src = dialog
    for fmt in ("webp", "apng"):
        d.set_format(fmt)
        d.set_options(n_frames=5, caption=True, scale=2, fps=5, hold_first_s=0, hold_last_s=1,
                      loop=False)
        out = tmp_path / f"fwd.{fmt}"
        _export(d, out)
        opts = d.options()
        with Image.open(out) as im:
            assert im.n_frames == 5 and im.info["loop"] == 1                  # played once
            im.seek(4)
            last = np.asarray(im.convert("RGB"))
            assert im.info["duration"] == 200 + 1000
        want = src.frame_at(opts, 4)[0]
        x = (last.shape[1] - 42) // 2                  # a wide caption centres the picture
        np.testing.assert_array_equal(last[:30, x:x + 42], np.repeat(np.repeat(want, 2, 0), 2, 1))
        assert last.shape[0] > 30                                            # a caption strip


def test_estimate_for_every_animated_format(dialog, qtbot):
    from diffusion_gui.sessions.export_run import estimate_bytes
    d, src = dialog
    opts = d.options()
    for fmt in ("gif", "mp4", "webm", "webp", "apng"):
        n = estimate_bytes(src, opts, fmt)
        assert n is not None and n > 100, fmt
