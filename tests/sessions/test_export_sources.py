"""The export sources and the export itself, without Qt: run_export, estimate_bytes,
validate_target, the dialog's path and size lines, and the remembered export settings.

Forward frames are checked against the core API
(``to_uint8(GaussianDiffusion(...).q_sample(x0, t - 1, eps))``, paper t: t = 0 clean); grey
images make GIF frames exact.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from gif_files import read_gif

from diffusion_gui.export import ExportError
from diffusion_gui.sessions.export_run import (
    describe_bytes,
    describe_frames,
    describe_written,
    estimate_bytes,
    run_export,
    suggest_target,
    validate_target,
)
from diffusion_gui.sessions.export_settings import ExportSettings
from diffusion_gui.sessions.export_sources import (
    ExportOptions,
    ForwardTimelineSource,
    FramesSource,
    as_source,
    as_sources,
)
from diffusion_gui.sessions.settings import from_raw, to_raw

T = 1000


_read_gif = partial(read_gif, mode='L')


def _grey_image(h=24, w=32, seed=3):
    rng = np.random.default_rng(seed)
    _, xx = np.mgrid[0:h, 0:w]
    a = (xx * 255 // (w - 1) + rng.integers(-30, 30, (h, w))).clip(0, 255).astype(np.uint8)
    return a[:, :, None]


@pytest.fixture
def forward_grey():
    """(image uint8 [H, W, 1], its forward timeline source, t -> expected uint8 x_t)."""
    import torch

    from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
    from diffusion_gui.core.images import to_float_array, to_uint8
    img = _grey_image()
    s = NoiseSchedule.from_name("linear", T)
    d = GaussianDiffusion(s)
    x0c = torch.from_numpy(to_float_array(img))
    eps = torch.randn(tuple(x0c.shape), generator=torch.Generator().manual_seed(0))

    def xt(t):
        return to_uint8(x0c) if t == 0 else to_uint8(d.q_sample(x0c[None], t - 1, eps[None])[0])

    src = ForwardTimelineSource("Forward: timeline", x0c.numpy().transpose(1, 2, 0),
                                eps.numpy().transpose(1, 2, 0), s.alpha_bars.numpy())
    return img, src, xt


# ----------------------------------------------------------------------------- run / estimate
def test_run_export_and_estimate_without_the_dialog(tmp_path, forward_grey):
    img, src, xt = forward_grey
    opts = ExportOptions(n_frames=10, spacing="even", caption=False, scale=1, fps=20,
                         hold_last_s=0)
    seen = []
    out = run_export(src, opts, "gif", tmp_path / "r.gif",
                     progress=lambda d, n, ph: seen.append((d, n, ph)))
    frames, durations, _ = _read_gif(out)
    assert len(frames) == 10 and durations == [50] * 10
    np.testing.assert_array_equal(frames[0], img[:, :, 0])                      # x_0 exactly
    np.testing.assert_array_equal(frames[-1], xt(T)[:, :, 0])                   # x_T exactly
    assert seen[0] == (0, 20, "frames") and seen[-1][0] == seen[-1][1] == 20
    assert {ph for _, _, ph in seen} == {"frames", "writing"}
    with pytest.raises(Exception, match="cancelled"):
        run_export(src, opts, "gif", tmp_path / "c.gif", progress=lambda d, n, ph: d < 4)
    assert not (tmp_path / "c.gif").exists()
    assert estimate_bytes(src, opts, "gif") > 0
    assert estimate_bytes(src, opts, "gif", should_stop=lambda: True) is None
    mixed = FramesSource("m", [np.zeros((4, 6, 1), np.uint8), np.zeros((8, 3, 3), np.uint8)])
    a, b = (mixed.frame_at(ExportOptions(), k)[0] for k in range(2))  # padded, centred on white
    assert a.shape == b.shape == (8, 6, 3) and a[0, 0, 0] == 255 and a[2, 0, 0] == 0
    fs = FramesSource("f", [img, img], ["a", "b"])
    assert fs.kind == "timeline" and "caption" in fs.options
    label, fn = fs
    frames, caps = fn()
    assert label == "f" and caps == ["a", "b"]


def test_run_export_refuses_what_it_cannot_write(tmp_path):
    still = FramesSource("one", [np.zeros((4, 4, 1), np.uint8)])
    with pytest.raises(ExportError, match="cannot be exported as Animated GIF"):
        run_export(still, ExportOptions(), "gif", tmp_path / "x.gif")
    with pytest.raises(ExportError, match="nothing to export"):
        run_export(FramesSource("empty", fn=lambda: []), ExportOptions(), "png",
                   tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_validate_target(tmp_path):
    assert validate_target("gif", tmp_path / "a.gif") == tmp_path / "a.gif"
    with pytest.raises(ExportError, match="unknown file type '.jpg'"):
        validate_target("gif", tmp_path / "a.jpg")
    with pytest.raises(ExportError, match="no file extension"):
        validate_target("filmstrip", tmp_path / "a")
    with pytest.raises(ExportError, match="choose where"):
        validate_target("gif", "  ")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        validate_target("png_sequence", tmp_path / "afile")
    with pytest.raises(ExportError, match="looks like a file"):
        validate_target("png_sequence", tmp_path / "x.png")
    with pytest.raises(ExportError, match="does not exist"):
        validate_target("gif", tmp_path / "missing" / "a.gif")
    # a name longer than the file system allows (found by benchmarks/exerciser.py): one line, no OSError
    for fmt, name in (("png_sequence", "x" * 300), ("gif", "x" * 300 + ".gif")):
        with pytest.raises(ExportError, match="cannot export to .*name too long") as e:
            validate_target(fmt, tmp_path / name)
        assert len(e.value.user_message()) < 200 and "\n" not in e.value.user_message()


def test_legacy_tuples_become_sources():
    grey = np.full((5, 7, 1), 99, np.uint8)
    srcs = as_sources([("Old still", lambda: [grey]), "not a source", None,
                       FramesSource("new", [grey])])
    assert [s.label for s in srcs] == ["Old still", "new"]
    assert srcs[0].kind == "still" and srcs[0].formats() == ("png",)
    assert as_sources(None) == []
    with pytest.raises(TypeError):
        as_source(42)
    broken = as_source(("broken", lambda: 1 / 0))
    broken.prepare()
    assert "ZeroDivisionError" in broken.empty_reason()


# ----------------------------------------------------------------------------- the dialog's lines
def test_suggest_target(tmp_path):
    f = tmp_path
    assert suggest_target("", "gif", "forward-timeline", f) == str(f / "forward-timeline.gif")
    assert suggest_target("", "png_sequence", "fwd", f) == str(f / "fwd-frames")
    assert suggest_target(str(f / "fwd-frames"), "gif", "x", f) == str(f / "fwd.gif")
    assert suggest_target(str(f / "a.gif"), "filmstrip", "x", f) == str(f / "a.png")
    assert suggest_target("/else/a.gif", "gif", "new", f, new_source=True) == "/else/new.gif"


def test_describe_frames_bytes_and_written(tmp_path):
    assert describe_frames(1, 24, 32, "gif") == "1 frame \u00b7 32 \u00d7 24 px"
    assert describe_frames(12, 24, 32, "filmstrip") == \
        "12 frames in 2 rows of 10 \u00b7 338 \u00d7 50 px"
    assert describe_bytes(None) == "" and describe_bytes(512) == "about 512 bytes"
    assert describe_bytes(3 * 1024 ** 2) == "about 3.0 MB"
    (tmp_path / "a.gif").write_bytes(b"x" * 2048)
    assert describe_written(tmp_path / "a.gif") == (f"Wrote {tmp_path / 'a.gif'} (2 KB).",
                                                    tmp_path)
    seq = tmp_path / "seq"
    seq.mkdir()
    files = [seq / f"frame_{k}.png" for k in range(3)]
    for p in files:
        p.write_bytes(b"y" * 100)
    msg, folder = describe_written(files)
    assert msg == f"Wrote 3 PNG files into {seq} (300 bytes)." and folder == tmp_path


# ----------------------------------------------------------------------------- settings
def test_export_settings_defaults_bounds_and_keys():
    d = ExportSettings()
    assert (d.fps, d.hold_last_s, d.loop, d.caption, d.folder) == (12.0, 1.0, True, True, None)
    assert d.format_for("timeline") == "gif" and d.format_for("plot") == "png"
    raw = {"fps": "99", "hold_last_s": "-3", "loop": "false", "caption": "garbage",
           "format_plot": "svg", "format_timeline": "jpeg", "folder": "/tmp"}
    s = from_raw(ExportSettings, raw)
    assert (s.fps, s.hold_last_s, s.loop, s.caption) == (50.0, 0.0, False, False)  # as of old
    assert s.format_plot == "svg" and s.format_timeline == "gif" and s.folder == "/tmp"
    stored = to_raw(s)
    assert set(stored) == {"fps", "hold_last_s", "loop", "caption", "folder", "format_timeline",
                           "format_still", "format_plot", "hold_first_s"}  # old keys + one
    assert "folder" not in to_raw(d)
    assert isinstance(Path(stored["folder"]), Path)
