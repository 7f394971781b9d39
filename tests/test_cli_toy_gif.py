"""diffusion-gui toy --gif: the particle animation of the 2-D lab, through the GIF writer."""
import json

import numpy as np

from diffusion_gui.cli import main
from tests.gif_files import read_gif


def test_toy_writes_the_forward_then_reverse_animation(tmp_path, capsys):
    out, gif = tmp_path / "p.npz", tmp_path / "a.gif"
    rc = main(["toy", "--data", "gaussians8", "--model", "exact", "--sampler", "ddim", "--steps", "10",
               "--n", "300", "-o", str(out), "--gif", str(gif), "--frames", "8", "--size", "96", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    frames, _, _ = read_gif(gif, "RGB")
    # 8 forward frames (t = 0 .. T), then 8 of the 11 steps a 10-step DDIM run visits (T .. 0)
    assert summary["gif_frames"] == len(frames) == 8 + 8
    assert frames[0].shape[1] == 96
    # the first forward frame is the data and the last reverse frame the samples: both clustered,
    # unlike the noise in the middle; measure as the share of white pixels
    white = [float(np.all(f > 245, axis=-1).mean()) for f in frames]
    assert white[0] > white[8] and white[-1] > white[8]


def test_toy_gif_options_are_checked_before_any_work(tmp_path, capsys):
    rc = main(["toy", "--data", "moons", "--model", "empirical", "-o", str(tmp_path / "p.npz"),
               "--gif", str(tmp_path / "a.mp3")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--gif" in err[0]


def test_toy_writes_an_mp4_through_the_animation_writer(tmp_path, capsys):
    import av
    mp4 = tmp_path / "a.mp4"
    rc = main(["toy", "--data", "gaussians8", "--model", "exact", "--sampler", "ddim", "--steps", "5",
               "--n", "200", "-o", str(tmp_path / "p.npz"), "--animation", str(mp4), "--frames", "4",
               "--size", "64", "--animate", "reverse"])
    assert rc == 0
    with av.open(str(mp4)) as f:
        n = sum(1 for _ in f.decode(video=0))
    assert n == 4 + 15                       # 4 frames, the last held one second (15 fps)
