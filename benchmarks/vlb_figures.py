"""The figures quoted about the bound, regenerated: the stride's effect and the decoder's CDF.

On the built-in digits model, ``N`` held-out digits (quantised to 8 bits), noise seed 0:

* the total bound in bits/dim with every timestep evaluated (stride 1) and with
  :func:`~diffusion_gui.core.vlb.evaluated_indices` at stride 10 and 50 (dense over the first
  ``stride`` indices, then every ``stride``-th, the rest interpolated by
  :func:`~diffusion_gui.core.vlb.stride_weights`);
* the decoder term L_0 with the exact normal CDF (ours) against improved-diffusion's tanh
  approximation of it, in bits/dim and relative.

    OMP_NUM_THREADS=2 python benchmarks/vlb_figures.py [--digits 20] [--model digits]

docs/performance.md quotes its output.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def tanh_cdf(x):
    """improved-diffusion's ``approx_standard_normal_cdf``."""
    import torch
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def tanh_log_likelihood(x, means, log_scales):
    """improved-diffusion's ``discretized_gaussian_log_likelihood`` (nats, elementwise)."""
    import torch
    centered = x - means
    inv = torch.exp(-log_scales)
    cdf_plus = tanh_cdf(inv * (centered + 1 / 255))
    cdf_min = tanh_cdf(inv * (centered - 1 / 255))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1 - cdf_min).clamp(min=1e-12))
    delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(delta.clamp(min=1e-12))))


def decoder_bpd(model, x0, seed: int):
    """L_0 per the exact CDF and per the tanh approximation, bits/dim averaged over images."""
    import torch

    from diffusion_gui.core.vlb import LN2, discretized_gaussian_log_likelihood
    d = model.diffusion
    g = torch.Generator().manual_seed(seed)
    x0 = x0.double()
    i = torch.zeros(x0.shape[0], dtype=torch.long)
    x1 = d.q_sample(x0, i, torch.randn(x0.shape, generator=g, dtype=x0.dtype))
    with torch.no_grad():
        out = model(x1.float(), i).double()
    mean, _, logvar, _ = d.p_mean_variance(out, x1, i, False)
    exact = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar).mean() / LN2
    approx = -tanh_log_likelihood(x0, mean, 0.5 * logvar).mean() / LN2
    return float(exact), float(approx)


def main(argv=None) -> int:
    import torch

    from diffusion_gui.core.vlb import compute_vlb, evaluated_indices
    from diffusion_gui.models.loader import load_model
    from diffusion_gui.models.registry import DEFAULT_MODEL
    from diffusion_gui.sessions.losses import vlb_images
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--digits", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strides", type=int, nargs="+", default=[1, 10, 50])
    args = ap.parse_args(argv)
    model = load_model(args.model)
    x0 = vlb_images(model, None, args.digits)
    T = model.diffusion.num_timesteps
    print(f"model {model.name}, {args.digits} held-out digits, seed {args.seed}, T = {T}")
    for stride in args.strides:
        r = compute_vlb(model, model.diffusion, x0, stride=stride,
                        generator=torch.Generator().manual_seed(args.seed))
        n = len(evaluated_indices(T, stride))
        print(f"stride {stride:>3}: total bound {r.total_bpd:.4f} bits/dim ({n} evaluated timesteps)")
    exact, approx = decoder_bpd(model, x0, args.seed)
    print(f"L_0 exact CDF {exact:.6f} bits/dim, tanh CDF {approx:.6f}: "
          f"difference {approx - exact:+.2e} bits/dim ({(approx - exact) / exact:+.1e} relative)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
