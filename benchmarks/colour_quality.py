"""Quality of the colour (emoji) model, for its model card: samples, the bound on held-out emoji
in bits/dim, and whether it memorises.

    python benchmarks/colour_quality.py [MODEL] --train DIR [--n 140] [--vlb-n 64] [--no-write]

- ``samples.png``: 64 samples, DDIM 50 steps, seed 0, enlarged 4x;
- the variational bound (``core.vlb``, stride 1: every t) of ``--vlb-n`` held-out emoji (the
  model's ``heldout.npz``) in bits/dim;
- memorisation: for ``--n`` samples and for the held-out emoji alike, the RMS pixel distance
  to the nearest training image (``--train``: the folder it was trained on, at the model's
  size). A model that memorised would put its samples far nearer the training set than new
  emoji are; one that generalises puts them about as near or farther.

Writes ``quality.json`` beside the model and its "Quality" section into ``model_card.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from diffusion_gui.core.images import enlarge, tile, to_uint8
from diffusion_gui.core.sampling import run
from diffusion_gui.core.vlb import compute_vlb
from diffusion_gui.export import write_png
from diffusion_gui.models.data import image_folder
from diffusion_gui.models.examples import heldout_examples
from diffusion_gui.models.loader import load_model
from diffusion_gui.sessions.losses import examples_to_x0
from diffusion_gui.sessions.sampling import SamplingParams, make_sampler


def nearest_rms(x, train) -> np.ndarray:
    """Per image of ``x`` ``[N, C, H, W]``, the RMS distance to its nearest image of ``train``."""
    a = np.asarray(x, np.float64).reshape(len(x), -1)
    b = np.asarray(train, np.float64).reshape(len(train), -1)
    d2 = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2.min(1), 0) / a.shape[1])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="emoji16")
    ap.add_argument("--train", required=True, help="the folder of training images")
    ap.add_argument("--n", type=int, default=140)
    ap.add_argument("--vlb-n", type=int, default=64)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    model = load_model(a.model)
    size, ch = model.sample_size, model.in_channels
    held = examples_to_x0(heldout_examples(model).images, size, ch)
    train = image_folder(a.train, size, ch)
    t0 = time.perf_counter()
    gen, _ = make_sampler(model, SamplingParams(sampler="ddim", steps=50, batch=a.n, seed=0))
    samples = run(gen).numpy()
    print(f"{a.n} DDIM-50 samples in {time.perf_counter() - t0:.0f} s", flush=True)
    d_s, d_h = nearest_rms(samples, train), nearest_rms(held.numpy(), train)
    print(f"nearest training image, RMS: samples median {np.median(d_s):.4f}, held-out median "
          f"{np.median(d_h):.4f}; samples under 0.02: {(d_s < 0.02).mean():.1%}", flush=True)
    t0 = time.perf_counter()
    vlb = compute_vlb(model, model.diffusion, held[: a.vlb_n], stride=1, t_batch=100,
                      generator=torch.Generator().manual_seed(0))
    print(f"bound on {a.vlb_n} held-out: {vlb.total_bpd:.3f} bits/dim (L_0 {vlb.decoder_bpd:.3f}, "
          f"L_T {vlb.prior_bpd:.1e}) in {time.perf_counter() - t0:.0f} s", flush=True)
    figures = {
        f"variational bound, {a.vlb_n} held-out emoji": (
            f"{vlb.total_bpd:.3f} bits/dim (L_T {vlb.prior_bpd:.1e}, L_0 {vlb.decoder_bpd:.3f}; T = "
            f"{vlb.timesteps}, stride 1)"),
        f"nearest training image, {a.n} samples (DDIM 50)": (
            f"median RMS distance {np.median(d_s):.4f} (10th percentile {np.quantile(d_s, 0.1):.4f})"),
        f"nearest training image, {len(d_h)} held-out emoji": (
            f"median RMS distance {np.median(d_h):.4f} (10th percentile {np.quantile(d_h, 0.1):.4f})"),
    }
    q = {"method": "Pixels in [-1, 1]; RMS distance = Euclidean distance over sqrt(C H W). "
                   "`python benchmarks/colour_quality.py emoji16 --train DIR`.",
         "figures": figures}
    if not a.no_write:
        folder = Path(model.source)
        g, _ = make_sampler(model, SamplingParams(sampler="ddim", steps=50, batch=64, seed=0))
        write_png(enlarge(tile(to_uint8(run(g))), 4), folder / "samples.png")
        (folder / "quality.json").write_text(json.dumps(q, indent=2))
        card = folder / "model_card.md"
        if card.is_file():
            head = card.read_text().split("\n## Quality")[0].split("\n## Licence")[0].rstrip()
            tail = card.read_text().split("\n## Licence", 1)
            lines = [head, "", "## Quality", "", "![64 samples, 50-step DDIM, seed 0](samples.png)", "",
                     q["method"], "", "| measure | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in figures.items()]
            if len(tail) == 2:
                lines += ["", "## Licence" + tail[1].rstrip()]
            card.write_text("\n".join(lines) + "\n")
        print(f"wrote {folder / 'quality.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
