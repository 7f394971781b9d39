"""The Export dialog, driven headlessly: sources, options, files read back with Pillow, cancel,
errors, and the panels' export sources. (The sources and the export without Qt:
tests/sessions/test_export_sources.py.)

The dialog is never exec()-ed: it is shown and its methods are called directly
(``select_source``, ``set_format``, ``set_options``, ``set_target``, ``start_export``, ``wait``).
Forward frames are checked against the core API
(``to_uint8(GaussianDiffusion(...).q_sample(x0, t - 1, eps))``); grey images make GIF frames exact.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from gif_files import read_gif
from PIL import Image

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from diffusion_gui.export import frame_durations  # noqa: E402
from diffusion_gui.gui.context import AppContext  # noqa: E402
from diffusion_gui.gui.export_dialog import ExportDialog  # noqa: E402
from diffusion_gui.gui.export_sources import (  # noqa: E402
    ForwardTimelineSource,
    PlotSource,
    TimelineSource,
    TrajectorySource,
)

T = 1000


# ----------------------------------------------------------------------------- helpers
_read_gif = read_gif


def _grey_image(h=24, w=32, seed=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = (xx * 255 // (w - 1) + rng.integers(-30, 30, (h, w))).clip(0, 255).astype(np.uint8)
    return a[:, :, None]


def _rgb_image(h=24, w=32, seed=4):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 255 // (w - 1)).astype(np.uint8), (yy * 255 // (h - 1)).astype(np.uint8),
                     rng.integers(0, 256, (h, w), dtype=np.uint8)], axis=-1)


def _reference(image_u8, seed=0, T=T):
    """(x0 float32 HWC, eps float32 HWC, alpha_bars, fn(t) -> expected uint8 x_t) from core."""
    import torch

    from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
    from diffusion_gui.core.images import to_float_array, to_uint8
    s = NoiseSchedule.from_name("linear", T)
    d = GaussianDiffusion(s)
    x0c = torch.from_numpy(to_float_array(image_u8))
    eps = torch.randn(tuple(x0c.shape), generator=torch.Generator().manual_seed(seed))

    def xt(t):
        if t == 0:
            return to_uint8(x0c)
        return to_uint8(d.q_sample(x0c[None], t - 1, eps[None])[0])

    return (x0c.numpy().transpose(1, 2, 0), eps.numpy().transpose(1, 2, 0),
            s.alpha_bars.numpy(), xt)


def _enlarge(a, k):
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1)


def _files(folder):
    return sorted(os.listdir(folder))


@pytest.fixture
def ctx(tmp_path_factory):
    ini = tmp_path_factory.mktemp("settings") / "settings.ini"   # not among the exports
    c = AppContext(settings=QSettings(str(ini), QSettings.IniFormat))
    yield c
    c.shutdown()


@pytest.fixture
def make_dialog(qtbot, ctx):
    made = []

    def make(sources):
        d = ExportDialog(ctx, sources)
        qtbot.addWidget(d)
        d.show()
        made.append(d)
        return d

    yield make
    for d in made:
        d.shutdown()


@pytest.fixture
def forward_grey():
    img = _grey_image()
    x0, eps, ab, xt = _reference(img)
    return img, ForwardTimelineSource("Forward: timeline", x0, eps, ab), xt


def _export(d, timeout=60000):
    assert d.start_export(), d.message
    assert d.wait(timeout)
    return d.status


# ----------------------------------------------------------------------------- forward GIF
def test_forward_gif_frames_durations_loop_first_x0_last_xT(make_dialog, tmp_path, forward_grey):
    img, src, xt = forward_grey
    d = make_dialog([src])
    d.select_source(0)
    d.set_format("gif")
    d.set_options(n_frames=12, spacing="even", caption=False, scale=3, fps=10, hold_last_s=1.5,
                  loop=True)
    d.set_target(tmp_path / "forward.gif")
    assert _export(d) == "done", d.message
    frames, durations, info = _read_gif(tmp_path / "forward.gif")
    assert len(frames) == 12
    assert frames[0].shape[:2] == (24 * 3, 32 * 3)
    assert info["loop"] == 0
    assert durations == [100] * 11 + [1600] == frame_durations(12, 10, 1.5)
    np.testing.assert_array_equal(frames[0], _enlarge(img, 3)[:, :, 0])          # x_0 exactly
    np.testing.assert_array_equal(frames[-1], _enlarge(xt(T), 3)[:, :, 0])       # x_T exactly
    mid = src.steps(d.options())[5]
    np.testing.assert_array_equal(frames[5], _enlarge(xt(mid), 3)[:, :, 0])
    assert "Wrote" in d.message and _files(tmp_path) == ["forward.gif"]


def test_forward_gif_rgb_range_dense_caption_play_once(make_dialog, tmp_path):
    img = _rgb_image()
    x0, eps, ab, xt = _reference(img, seed=5)
    src = ForwardTimelineSource("Forward: timeline", x0, eps, ab)
    d = make_dialog([src])
    d.set_format("gif")
    d.set_options(t_range=(100, 600), n_frames=9, spacing="dense_start", caption=True, scale=2,
                  fps=25, hold_last_s=0, loop=False)
    ts = src.steps(d.options())
    assert ts[0] == 100 and ts[-1] == 600 and len(ts) == 9
    assert ts[1] - ts[0] < ts[-1] - ts[-2]                          # denser near the start
    d.set_target(tmp_path / "range.gif")
    assert _export(d) == "done", d.message
    frames, durations, info = _read_gif(tmp_path / "range.gif")
    assert len(frames) == 9 and "loop" not in info                 # plays once
    assert durations == [40] * 9
    h, w = frames[0].shape[:2]
    assert w >= 64 and h > 48                                      # caption strip under 48 px
    ox = (w - 64) // 2                 # the canvas is widened (picture centred) for the text
    def blocks(a):                     # 8 x 8 px means: dithering moves single pixels only
        return a.astype(float).reshape(6, 8, 8, 8, 3).mean((1, 3))

    first, last = frames[0][:48, ox:ox + 64], frames[-1][:48, ox:ox + 64]
    ref_first, ref_last = _enlarge(xt(100), 2), _enlarge(xt(600), 2)
    assert np.abs(blocks(first) - blocks(ref_first)).mean() < 6
    assert np.abs(blocks(last) - blocks(ref_last)).mean() < 6
    assert np.abs(blocks(first) - blocks(ref_last)).mean() > 15    # and they are told apart
    strip = frames[0][48:]
    assert strip.min() < 80 and np.median(strip) > 200             # dark text on white


def test_forward_panel_sources_are_what_the_panel_shows(qtbot, ctx, make_dialog, tmp_path):
    from diffusion_gui.gui.panels.forward import ForwardPanel
    Image.fromarray(_grey_image(30, 40)[:, :, 0], "L").save(tmp_path / "g.png")
    assert ctx.open_image(tmp_path / "g.png")
    p = ForwardPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    qtbot.waitUntil(p.is_ready, timeout=60000)
    try:
        p.set_t(250)
        d = make_dialog(p.export_sources())
        labels = [s.label for s in d.sources]
        assert labels[0] == "Forward: x_t at the current t"
        d.select_source("Forward: timeline")
        d.set_format("gif")
        d.set_options(n_frames=20, caption=False, scale=1)
        d.set_target(tmp_path / "panel.gif")
        assert _export(d) == "done", d.message
        frames, _, _ = _read_gif(tmp_path / "panel.gif")
        _, _, _, xt = _reference(p.x0_uint8(), seed=p.seed)
        assert len(frames) == 20
        np.testing.assert_array_equal(frames[0], p.x0_uint8()[:, :, 0])
        np.testing.assert_array_equal(frames[-1], xt(T)[:, :, 0])
        # the still is the x_t on screen, with t and abar_t under it
        d.select_source(0)
        assert d.current_source().kind == "still" and d.current_format() == "png"
        d.set_options(scale=1, caption=False)
        d.set_target(tmp_path / "now.png")
        assert _export(d) == "done", d.message
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "now.png")),
                                      p.view_xt.image()[:, :, 0])
        # the panel changed meanwhile: the source is a snapshot, the export is not affected
        src = d.sources[labels.index("Forward: timeline t = 0..T (linear, T = 1000)")]
        p.seed_spin.setValue(p.seed + 1)
        f0 = src.frame_at(src.default_options(), src.count(src.default_options()) - 1)[0]
        np.testing.assert_array_equal(f0, xt(T))
    finally:
        p.shutdown()


# ----------------------------------------------------------------------------- other formats
def test_png_sequence(make_dialog, tmp_path, forward_grey):
    img, src, xt = forward_grey
    d = make_dialog([src])
    d.set_format("png_sequence")
    d.set_options(n_frames=7, spacing="even", caption=False, scale=1)
    assert d.target_path().endswith("-frames")                     # a folder name
    d.set_target(tmp_path / "seq")
    assert _export(d) == "done", d.message
    names = _files(tmp_path / "seq")
    assert names == [f"frame_{k:04d}.png" for k in range(7)]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "seq" / names[0])), img[:, :, 0])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "seq" / names[-1])),
                                  xt(T)[:, :, 0])
    assert isinstance(d.written, list) and len(d.written) == 7


def test_filmstrip(make_dialog, tmp_path, forward_grey):
    img, src, xt = forward_grey
    d = make_dialog([src])
    d.set_format("filmstrip")
    assert d.frames_spin.value() == 8                               # a filmstrip wants a few
    d.set_options(spacing="even", caption=False, scale=2)
    d.set_target(tmp_path / "strip.png")
    assert _export(d) == "done", d.message
    a = np.asarray(Image.open(tmp_path / "strip.png"))
    assert a.shape == (48, 8 * 64 + 7 * 2)
    np.testing.assert_array_equal(a[:, :64], _enlarge(img, 2)[:, :, 0])
    np.testing.assert_array_equal(a[:, -64:], _enlarge(xt(T), 2)[:, :, 0])
    d.set_format("gif")                                             # back: the frame count too
    assert d.frames_spin.value() == 60


def _synthetic_trajectory(n_steps=1000, B=16, size=8, stride=1):
    """Steps t = T .. 0: x_t of image b filled with (t + 7 b) % 256, x0_pred with 255 - 9 b."""
    steps = []
    for t in range(n_steps, -1, -stride):
        xt = np.empty((B, size, size, 1), np.uint8)
        for b in range(B):
            xt[b] = (t + 7 * b) % 256
        x0 = np.stack([np.full((size, size, 1), 255 - 9 * b, np.uint8) for b in range(B)])
        steps.append((t, xt, x0))
    if steps[-1][0] != 0:
        steps.append((0, steps[-1][1], steps[-1][2]))
    return steps


def test_reverse_trajectory_gif_first_xT_last_x0(make_dialog, tmp_path):
    from diffusion_gui.core import NoiseSchedule
    steps = _synthetic_trajectory()
    ab = NoiseSchedule.from_name("linear", T).alpha_bars.numpy()
    src = TrajectorySource("Reverse: trajectory", steps, T=T, alpha_bars=ab)
    d = make_dialog([src])
    assert {"which", "image", "t_range", "n_frames"} <= src.options
    d.set_format("gif")
    d.set_options(n_frames=50, spacing="dense_start", which="xt", image=None, caption=False,
                  scale=2, fps=20, hold_last_s=2)
    d.set_target(tmp_path / "rev.gif")
    assert _export(d) == "done", d.message
    frames, durations, info = _read_gif(tmp_path / "rev.gif")
    grid = 4 * 8 + 3                                                # 4 x 4 images, 1 px gaps
    assert len(frames) == 50 and frames[0].shape == (2 * grid, 2 * grid)
    assert durations == [50] * 49 + [2050] and info["loop"] == 0
    from diffusion_gui.core.images import tile
    np.testing.assert_array_equal(frames[0], _enlarge(tile(steps[0][1]), 2)[:, :, 0])    # x_T
    np.testing.assert_array_equal(frames[-1], _enlarge(tile(steps[-1][1]), 2)[:, :, 0])  # x_0
    sel = src.selection(d.options())
    ts = [steps[i][0] for i in sel]
    assert ts[0] == T and ts[-1] == 0 and ts == sorted(ts, reverse=True)
    assert ts[-2] - ts[-1] < ts[0] - ts[1]                          # denser near t = 0


def test_reverse_trajectory_single_image_both_and_captions(make_dialog, tmp_path):
    steps = _synthetic_trajectory(n_steps=50, B=4, size=8, stride=5)      # 11 recorded steps
    src = TrajectorySource("Reverse: trajectory", steps, T=50, which="both")
    d = make_dialog([src])
    assert d.options().which == "both"
    d.set_format("gif")
    d.set_options(n_frames=60, image=2, which="both", caption=True, scale=4)
    assert d.frames_spin.maximum() == 11 and d.frames_spin.value() == 11
    d.set_target(tmp_path / "one.gif")
    assert _export(d) == "done", d.message
    frames, _, _ = _read_gif(tmp_path / "one.gif")
    assert len(frames) == 11
    f0 = frames[0]
    assert f0.shape[0] > 32                                         # the caption strip
    # image 2 only: x_t on the left, its x0_pred on the right, a white gap (4 px) between
    ox = (f0.shape[1] - 80) // 2                                    # centred if text is wider
    assert np.all(f0[:32, ox:ox + 32] == (50 + 14) % 256)
    assert np.all(f0[:32, ox + 32:ox + 48] == 255)
    assert np.all(f0[:32, ox + 48:ox + 80] == 255 - 18)
    _, cap = src.frame_at(d.options(), 0)
    assert cap.startswith("t = 50") and "x_t | x0_pred" in cap


def test_legacy_tuple_sources(make_dialog, tmp_path):
    grey = np.full((5, 7, 1), 99, np.uint8)
    seq = [np.full((5, 7, 3), v, np.uint8) for v in (0, 80, 160, 240)]
    d = make_dialog([("Old still", lambda: [grey]),
                     ("Old frames", lambda: (seq, [f"v = {k}" for k in range(4)])),
                     ("Old empty", lambda: [])])
    d.select_source("Old still")
    assert d.current_source().kind == "still" and d.current_format() == "png"
    d.set_options(scale=1)
    d.set_target(tmp_path / "still.png")
    assert _export(d) == "done"
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "still.png")), grey[:, :, 0])
    d.select_source("Old frames")
    d.set_format("gif")
    d.set_options(n_frames=4, caption=False, scale=1, fps=5, hold_last_s=0)
    d.set_target(tmp_path / "seq.gif")
    assert _export(d) == "done"
    frames, durations, _ = _read_gif(tmp_path / "seq.gif")
    assert len(frames) == 4 and durations == [200] * 4
    d.select_source("Old empty")
    assert not d.export_btn.isEnabled() and "nothing to export" in d.message
    assert d.start_export() is False


# ----------------------------------------------------------------------------- plots
def test_plot_png_svg_csv(make_dialog, tmp_path):
    from diffusion_gui.gui import plots
    w = plots.make_plot("A plot", "t", "y")
    w.plot(np.arange(50), np.arange(50) ** 0.5, pen=plots.pen("blue"), name="sqrt")
    w.resize(500, 300)
    src = PlotSource("A plot", w)
    d = make_dialog([src])
    assert d.current_source().kind == "plot"
    assert [d.format_combo.itemData(k) for k in range(d.format_combo.count())] == ["png", "svg",
                                                                                 "csv"]
    d.set_options(width=800)
    d.set_target(tmp_path / "plot.png")
    assert _export(d) == "done", d.message
    with Image.open(tmp_path / "plot.png") as im:
        assert im.format == "PNG" and im.size[0] == 800
    d.set_format("svg")
    assert d.target_path().endswith("plot.svg")
    assert _export(d) == "done", d.message
    assert "<svg" in (tmp_path / "plot.svg").read_text()
    d.set_format("csv")
    assert _export(d) == "done", d.message
    rows = (tmp_path / "plot.csv").read_text().splitlines()
    assert len(rows) == 51                                          # a header, 50 points
    x, y = (float(v) for v in rows[10].split(",")[:2])
    assert (x, round(y, 6)) == (9.0, 3.0)
    assert _files(tmp_path) == ["plot.csv", "plot.png", "plot.svg"]


def test_plot_export_of_a_plot_never_shown_and_bad_target(tmp_path):
    from diffusion_gui.export import ExportError
    from diffusion_gui.gui import plots
    w = plots.make_plot("hidden")
    w.plot([0, 1, 2], [1, 0, 1])
    out = plots.export_plot_widget(w, "png", tmp_path / "h.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] >= 100
    with pytest.raises(ExportError, match="does not exist"):
        plots.export_plot_widget(w, "svg", tmp_path / "no" / "h.svg")
    with pytest.raises(ExportError, match="unknown plot format"):
        plots.export_plot_widget(w, "jpg", tmp_path / "h.jpg")
    assert _files(tmp_path) == ["h.png"]


# ----------------------------------------------------------------------------- cancel
class _Gate:
    """A frame function that stops at paper step ``block_t`` until released (the export's
    worker asks for it; the preview and the size estimate ask only for the first, middle and
    last frames)."""

    def __init__(self, frame):
        self.frame = frame
        self.block_t = None
        self.seen = []
        self.reached = threading.Event()
        self.go = threading.Event()

    def __call__(self, t):
        self.seen.append(t)
        if t == self.block_t:
            self.reached.set()
            self.go.wait(30)
        return self.frame


OLD = b"an earlier export that must survive\n" * 100


@pytest.mark.parametrize("fmt, name, again", [("gif", "x.gif", "again.gif"),
                                              ("png_sequence", "frames", "again"),
                                              ("filmstrip", "x.png", "again.png")])
def test_cancel_while_rendering_leaves_the_target_untouched(make_dialog, tmp_path, fmt, name,
                                                            again):
    gate = _Gate(np.full((6, 6, 3), 50, np.uint8))
    src = TimelineSource("slow", 100, gate, lambda t: f"t = {t}")
    target = tmp_path / name
    if fmt == "png_sequence":
        target.mkdir()
        (target / "frame_0000.png").write_bytes(OLD)
    else:
        target.write_bytes(OLD)
    d = make_dialog([src])
    d.set_format(fmt)
    d.set_options(n_frames=20, spacing="even")
    steps = src.steps(d.options())
    gate.block_t = steps[3]
    d.set_target(target)
    assert d.start_export()
    assert gate.reached.wait(30)
    assert d.is_running() and d.cancel_btn.isEnabled() and not d.export_btn.isEnabled()
    d.cancel_export()
    gate.go.set()
    assert d.wait(30000)
    assert d.status == "cancelled" and "unchanged" in d.message, d.message
    if fmt == "png_sequence":
        assert _files(target) == ["frame_0000.png"]
        assert (target / "frame_0000.png").read_bytes() == OLD
    else:
        assert target.read_bytes() == OLD
    assert _files(tmp_path) == [name]                               # no temporary file left
    assert steps[15] not in gate.seen                               # it stopped part-way
    assert d.export_btn.isEnabled()                                 # and can export again
    gate.block_t = None
    d.set_target(tmp_path / again)
    assert _export(d) == "done", d.message


def test_cancel_while_writing_the_gif(make_dialog, qtbot, tmp_path, monkeypatch):
    import diffusion_gui.export.gif as gif_mod
    real = gif_mod._to_gif_frame
    reached, go = threading.Event(), threading.Event()
    calls = []

    def slow(a, pal):
        calls.append(1)
        if len(calls) == 5:
            reached.set()
            go.wait(30)
        return real(a, pal)

    img = _rgb_image()
    x0, eps, ab, _ = _reference(img)
    d = make_dialog([ForwardTimelineSource("fwd", x0, eps, ab)])
    target = tmp_path / "x.gif"
    target.write_bytes(OLD)
    d.set_options(n_frames=30)
    qtbot.waitUntil(lambda: d.estimate_ready, timeout=30000)       # the estimate encodes too
    monkeypatch.setattr(gif_mod, "_to_gif_frame", slow)
    d.set_target(target)
    assert d.start_export()
    assert reached.wait(30)
    d._show_progress()
    assert "writing" in d.progress.format()
    d.cancel_export()
    go.set()
    assert d.wait(30000) and d.status == "cancelled"
    assert target.read_bytes() == OLD and _files(tmp_path) == ["x.gif"]


def test_closing_the_dialog_cancels_and_joins(make_dialog, tmp_path):
    gate = _Gate(np.zeros((4, 4, 1), np.uint8))
    src = TimelineSource("slow", 50, gate)
    d = make_dialog([src])
    d.set_options(n_frames=20, spacing="even")
    gate.block_t = src.steps(d.options())[3]
    d.set_target(tmp_path / "c.gif")
    assert d.start_export() and gate.reached.wait(30)
    threading.Timer(0.2, gate.go.set).start()
    d.close()                                                       # joins the worker
    assert d.status == "cancelled" and d._export.job is None
    assert _files(tmp_path) == []


# ----------------------------------------------------------------------------- errors
def test_bad_targets_give_a_message_and_the_dialog_keeps_working(make_dialog, tmp_path,
                                                                 forward_grey):
    _, src, _ = forward_grey
    d = make_dialog([src])
    d.set_format("gif")
    d.set_options(n_frames=5)
    d.set_target(tmp_path / "x.jpg")
    assert d.start_export() is False
    assert "unknown file type '.jpg'" in d.message and ".gif" in d.message
    d.set_target(tmp_path / "missing" / "x.gif")
    assert d.start_export() is False and "does not exist" in d.message
    (tmp_path / "afile").write_text("x")
    d.set_target(tmp_path / "afile" / "x.gif")
    assert d.start_export() is False and "not a folder" in d.message
    d.set_format("png_sequence")
    d.set_target(tmp_path / "afile")
    assert d.start_export() is False and "is a file" in d.message
    d.set_format("gif")
    d.set_target(tmp_path / "noext")                                # the extension is added
    assert _export(d) == "done" and (tmp_path / "noext.gif").exists()
    assert "\n" not in d.message and "Traceback" not in d.message


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_read_only_folder(make_dialog, tmp_path, forward_grey, monkeypatch):
    import diffusion_gui.export.atomic as atomic_mod
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:              # root may write anywhere: pretend it may not
        real = atomic_mod.os.access
        monkeypatch.setattr(atomic_mod.os, "access",
                            lambda p, mode: False if os.fspath(p) == str(ro) else real(p, mode))
    try:
        d = make_dialog([forward_grey[1]])
        d.set_target(ro / "x.gif")
        assert d.start_export() is False and "permission denied" in d.message
        assert _files(ro) == []
    finally:
        ro.chmod(0o755)


def test_disk_full_during_the_write(make_dialog, tmp_path, monkeypatch, forward_grey):
    import errno

    import diffusion_gui.export.atomic as atomic_mod
    target = tmp_path / "full.gif"
    target.write_bytes(OLD)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_mod.os, "fsync", full)
    d = make_dialog([forward_grey[1]])
    d.set_options(n_frames=5)
    d.set_target(target)
    assert _export(d) == "failed"
    assert "disk is full" in d.message and "\n" not in d.message
    assert target.read_bytes() == OLD and _files(tmp_path) == ["full.gif"]


# ----------------------------------------------------------------------------- preview etc.
def test_preview_size_choice_and_estimate(make_dialog, qtbot, tmp_path, forward_grey):
    img, src, _ = forward_grey
    d = make_dialog([src])
    # a 32 px frame is enlarged by default to at least 256 px, in integer steps
    assert d.size_combo.currentData() == 8
    d.set_options(n_frames=40, caption=True, scale=4)
    shown = d.preview.image()
    assert shown.shape[1] >= 4 * 32 and shown.shape[0] > 4 * 24    # caption included
    ox = (shown.shape[1] - 128) // 2                                # centred if text is wider
    np.testing.assert_array_equal(shown[:96, ox:ox + 128], _enlarge(img, 4))
    assert "40 frames" in d.info_label.text()
    qtbot.waitUntil(lambda: d.estimate_ready, timeout=30000)
    est = d.estimate
    assert est and "about" in d.info_label.text()
    d.set_target(tmp_path / "e.gif")
    assert _export(d) == "done"
    real = (tmp_path / "e.gif").stat().st_size
    assert 0.5 < est / real < 2.0, (est, real)


def test_closing_does_not_wait_for_the_size_estimate(make_dialog, qtbot, forward_grey, monkeypatch):
    """One encoded frame of the estimate can take seconds: Close drops it and returns at once
    (the exerciser saw the window freeze 2.8 s); the estimate's thread ends by itself after."""
    import threading

    from diffusion_gui.gui import export_preview
    from diffusion_gui.gui.workers import running_jobs
    started, release = threading.Event(), threading.Event()

    def slow(src, opts, fmt, should_stop):
        started.set()
        release.wait(30)            # a long encoder call: it does not look at should_stop
        return 1234

    monkeypatch.setattr(export_preview, "estimate_bytes", slow)
    d = make_dialog([forward_grey[1]])
    d.set_options(n_frames=12)
    qtbot.waitUntil(started.is_set, timeout=10000)
    d.close()                       # returned while the estimate still runs: nothing joined it
    assert not release.is_set() and running_jobs() >= 1 and not d.estimate_ready
    release.set()
    qtbot.waitUntil(lambda: running_jobs() == 0, timeout=10000)
    assert not d.estimate_ready     # its result never arrived


def test_remembers_folder_and_gif_settings(make_dialog, ctx, tmp_path, forward_grey):
    out = tmp_path / "out"
    out.mkdir()
    d = make_dialog([forward_grey[1]])
    d.set_options(n_frames=4, fps=7, hold_last_s=2.5, loop=False)
    d.set_target(out / "a.gif")
    assert _export(d) == "done"
    d2 = make_dialog([forward_grey[1]])
    assert os.path.dirname(d2.target_path()) == str(out)
    assert d2.fps_spin.value() == 7 and d2.hold_spin.value() == 2.5
    assert not d2.loop_check.isChecked()


def test_no_sources(make_dialog):
    d = make_dialog([])
    assert not d.export_btn.isEnabled() and "nothing to export" in d.message.lower()
    assert d.start_export() is False


def test_main_window_opens_the_real_dialog(qtbot, ctx, tmp_path, monkeypatch):
    import diffusion_gui.gui.main_window as mw
    monkeypatch.setattr(mw, "PANELS", [("forward", "forward", "ForwardPanel"),
                                       ("kl", "kl", "KLPanel")])
    win = mw.MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    Image.fromarray(_rgb_image()).save(tmp_path / "i.png")
    assert win.open_image(tmp_path / "i.png")
    qtbot.waitUntil(win.panel("forward").is_ready, timeout=60000)
    win.act_export.trigger()
    dlg = next(x for x in win._dialogs if isinstance(x, ExportDialog))
    assert dlg.isVisible() and not dlg.isModal() and QApplication.activeModalWidget() is None
    labels = [s.label for s in dlg.sources]
    assert labels[0].startswith("Forward") and "KL: space worms bars" in labels
    dlg.select_source("KL: space worms bars")
    dlg.set_format("csv")
    dlg.set_target(tmp_path / "worms.csv")
    assert _export(dlg) == "done", dlg.message
    assert (tmp_path / "worms.csv").read_text().startswith("teeth,true,uniform,binomial")
    win.shutdown()
    assert not dlg.isVisible()


def test_train_and_loss_panels_offer_their_plots(qtbot, ctx, make_dialog, tmp_path):
    from diffusion_gui.gui.panels.losses import LossPanel
    from diffusion_gui.gui.panels.train import TrainPanel
    panels = [TrainPanel(ctx), LossPanel(ctx)]
    try:
        for p in panels:
            qtbot.addWidget(p)
            p.resize(1100, 700)
        sources = [s for p in panels for s in p.export_sources()]
        plots = [s for s in sources if s.kind == "plot"]
        assert {s.label for s in plots} >= {"Training loss plot", "Loss: terms of the bound at each t"}
        d = make_dialog(sources)
        d.select_source("Training samples")                          # nothing trained yet
        assert not d.export_btn.isEnabled() and "nothing to export" in d.message
        for label in ("Training loss plot", "Loss: share of the bound"):
            d.select_source(label)
            for fmt in ("png", "svg"):
                d.set_format(fmt)
                d.set_target(tmp_path / f"{d.current_source().name}.{fmt}")
                assert _export(d) == "done", d.message
        assert _files(tmp_path) == ["loss-share.png", "loss-share.svg", "training-loss.png",
                                    "training-loss.svg"]
    finally:
        for p in panels:
            p.shutdown()


def test_default_folder_is_not_the_opened_image_folder(make_dialog, ctx, tmp_path, forward_grey):
    images = tmp_path / "images"
    images.mkdir()
    ctx.settings.setValue("last_folder", str(images))         # where the last image came from
    d = make_dialog([forward_grey[1]])
    folder = Path(d.target_path()).parent
    assert folder != images
    from PySide6.QtCore import QStandardPaths
    pictures = QStandardPaths.writableLocation(QStandardPaths.PicturesLocation)
    assert folder == (Path(pictures) if pictures and Path(pictures).is_dir() else Path.home())


def test_a_reverse_run_exports_about_100_frames_by_default(make_dialog):
    from diffusion_gui.sessions.export_sources import TrajectorySource
    from diffusion_gui.sessions.reverse import EXPORT_FRAMES
    steps = _synthetic_trajectory(n_steps=600, B=1)
    src = TrajectorySource("Reverse: trajectory", steps, T=600, n_frames=EXPORT_FRAMES)
    d = make_dialog([src])
    assert EXPORT_FRAMES == 100 and d.frames_spin.value() == 100
    assert src.count(d.options()) == 100
