"""The loss computation: every term of the variational bound of some images, timestep by timestep.

For an image, N held-out real digits, or a freshly generated sample, every term of the bound
(Ho et al. 2020, eq. 5)

    L = L_T + sum_{t=2}^{T} L_{t-1} + L_0            (bits/dim)

comes from :func:`diffusion_gui.core.vlb.vlb_terms` -- the generator ``diffusion-gui vlb``
exhausts -- together with the training losses L_simple (the eps MSE) and the x_0 MSE. Several
timesteps share one UNet call; a stride evaluates every k-th t for a quick preview (the skipped
KL terms are interpolated, see ``stride_weights``).

Timesteps are the paper's ``t`` (1..T; ``t = 0`` is the clean image); the arrays of a
:class:`~diffusion_gui.core.vlb.VLBResult` are indexed ``i = t - 1`` of the evaluated steps.
The loss panel (``diffusion_gui.gui.panels.losses``) and ``diffusion-gui vlb`` both call this.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParameter, UserError
from .settings import setting

__all__ = ["T_BATCH", "N_BUCKETS", "SOURCES", "LossSettings", "vlb_images", "image_to_x0",
           "loss_generator", "loss_payload", "bucket_shares", "run_label", "result_csv",
           "kl_sum"]

#: Timesteps x images stacked into one UNet call (``vlb_terms(t_batch=...)``): the CLI's value,
#: so the panel and ``diffusion-gui vlb`` give the same numbers to the last bit (see
#: docs/performance.md, "The loss panel's batched bound").
T_BATCH = 32
#: The share plot's ranges of t.
N_BUCKETS = 10
#: What can be scored: the forward panel's image, held-out digits, a generated DDPM sample.
SOURCES = ("image", "digits", "sample")


@dataclass
class LossSettings:
    """The loss panel's settings (QSettings keys = the field names)."""

    source: str = setting("digits", choices=SOURCES)
    digits: int = setting(16, lo=1, hi=200)
    seed: int = setting(0, lo=0, hi=2 ** 31 - 1)
    stride: int = setting(10, lo=1, hi=1000)
    log_y: bool = setting(True)


# ---------------------------------------------------------------- the images scored
def vlb_images(model, image, n_digits):
    """``[N, C, H, W]`` in [-1, 1] at the model's size and channels: the image file ``image``,
    or (``n_digits`` not None) the first ``n_digits`` held-out examples of the model's own data
    (:func:`~diffusion_gui.models.examples.heldout_examples`: its ``heldout.npz``, else the
    held-out digits), 8-bit pixels, so that L_0 is a true discrete likelihood.

    Raises :class:`InvalidParameter` ``("digits", ...)`` for a count outside 1..N and :class:`~diffusion_gui.errors.ImageLoadError` for a file that
    is not an image.
    """

    from ..core.images import load_image
    from ..models.examples import heldout_examples
    if n_digits is not None:
        ex = heldout_examples(model)
        if not 1 <= n_digits <= len(ex):
            raise InvalidParameter("digits", f"must be in 1..{len(ex)}")
        return examples_to_x0(ex.images[:n_digits], model.sample_size, model.in_channels)
    ch = "L" if model.in_channels == 1 else "RGB"
    return load_image(image, channels=ch, size=model.sample_size)[None]


def examples_to_x0(images, size: int, channels: int):
    """uint8 ``[N, H, W, C]`` -> float ``[N, channels, size, size]`` in [-1, 1] (grey repeated
    to RGB or RGB averaged to grey; resized with Lanczos only if the size differs)."""
    import torch
    from PIL import Image
    a = np.asarray(images)
    if a.shape[1] != size or a.shape[2] != size:
        a = np.stack([np.asarray(Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im)
                                 .resize((size, size), Image.LANCZOS)).reshape(size, size, -1) for im in a])
    x = torch.from_numpy(a.astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
    if x.shape[1] == 1 and channels == 3:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] == 3 and channels == 1:
        x = x.mean(1, keepdim=True)
    return x.contiguous()


def image_to_x0(image: np.ndarray, size: int, channels: int):
    """uint8 ``[H, W, C]`` -> float tensor ``[1, channels, size, size]`` in [-1, 1] (centred
    square crop, Lanczos), the way ``diffusion-gui vlb IMAGE`` loads a file."""
    import torch
    from PIL import Image

    from ..core.images import resize_image, to_float_array
    a = np.asarray(image, dtype=np.uint8)
    im = Image.fromarray(a[:, :, 0] if a.ndim == 3 and a.shape[2] == 1 else a)
    im = im.convert("L" if channels == 1 else "RGB")
    return torch.from_numpy(to_float_array(resize_image(im, size=size)))[None]


def _thumb(x0) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] -> one uint8 grid ``[H', W', C]`` of at most 16 images."""
    from ..core.images import tile, to_uint8
    return tile(to_uint8(x0[:16]), pad=1, pad_value=255)


def _sampled_x0(model, seed: int, device="cpu", dtype="float32"):
    """Draw one ancestral DDPM sample (all T steps, seeded): yields ``("sample", StepOutput)``
    per step, returns the sample quantised to 8 bits as ``[1, C, H, W]`` in [-1, 1]."""
    import torch

    from ..core.images import to_float_array, to_uint8
    from .sampling import SamplingParams, make_sampler
    gen, _ = make_sampler(model, SamplingParams(sampler="ddpm", batch=1, seed=int(seed),
                                                device=str(device), dtype=dtype))
    x = None
    for so in gen:
        x = so.x_t
        yield ("sample", so)
    # the decoder scores 8-bit pixels: quantise the sample as a saved PNG would be
    return torch.from_numpy(to_float_array(to_uint8(x[0])))[None]


# ---------------------------------------------------------------- the computation
def loss_generator(model, source: str, *, image=None, n_digits: int = 16, stride: int = 10,
                   seed: int = 0, t_batch: int = T_BATCH, device: str = "cpu", dtype: str = "float32"):
    """The loss panel's computation (run it in a worker thread); pair it with :func:`loss_payload`.

    source: ``"image"`` (``image``, uint8 ``[H, W, C]``, resized to the model), ``"digits"``
    (``n_digits`` held-out digits) or ``"sample"``. Yields ``("sample", StepOutput)`` while a
    generated sample is drawn (ancestral DDPM, all T steps, seeded), then ``("bound",
    VLBProgress, x0)`` after every UNet call of :func:`diffusion_gui.core.vlb.vlb_terms`, with
    its noise drawn from ``torch.Generator().manual_seed(seed)`` as ``diffusion-gui vlb`` does.
    ``x0``: the ``[N, C, H, W]`` images scored, in [-1, 1], on the CPU. The network runs on
    ``device`` in ``dtype`` (:mod:`diffusion_gui.core.devices`); the bound's maths stays float64.
    """
    import torch

    from ..core.devices import resolve_device
    from ..core.vlb import vlb_terms
    from .sampling import on_device
    dev = resolve_device(device)
    if source == "image":
        if image is None:
            raise UserError("open an image first (File ▸ Open image…), or choose another source")
        x0 = image_to_x0(image, model.sample_size, model.in_channels)
    elif source == "digits":
        x0 = vlb_images(model, None, int(n_digits)).float()
    elif source == "sample":
        x0 = yield from _sampled_x0(model, seed, dev, dtype)
    else:
        raise InvalidParameter("source", f"must be one of {', '.join(SOURCES)}, not {source!r}")
    g = torch.Generator().manual_seed(int(seed))
    net = on_device(model, dev, dtype)
    for p in vlb_terms(net, model.diffusion, x0.to(dev), stride=int(stride), t_batch=t_batch,
                       generator=g):
        yield ("bound", p, x0)


def loss_payload(item) -> dict:
    """An item of :func:`loss_generator` as plain numpy for the GUI thread (runs in the worker).

    Keys: ``stage`` (``"sample"`` / ``"bound"``), ``done``, ``total``, ``thumb`` (uint8 grid of
    the image(s)); for the bound also the partial arrays ``t``, ``vb_bpd``, ``eps_mse``,
    ``x0_mse``, ``num_images`` and ``result`` (the numpy-only ``VLBResult`` at the end, else None).
    """
    if item[0] == "sample":
        so = item[1]
        return {"stage": "sample", "done": so.step, "total": so.num_steps, "thumb": _thumb(so.x_t),
                "result": None}
    _, p, x0 = item
    return {"stage": "bound", "done": p.done, "total": p.total, "thumb": _thumb(x0),
            "t": p.t, "vb_bpd": p.vb_bpd, "eps_mse": p.eps_mse, "x0_mse": p.x0_mse,
            "result": p.result, "num_images": int(x0.shape[0])}


# ---------------------------------------------------------------- reading a result
def run_label(source: str, n_digits: int, seed: int, kind: str = "digit") -> str:
    """What a run scores, in words (``"2 held-out digits"``); ``kind``: the noun of the model's
    held-out examples (:func:`~diffusion_gui.models.examples.heldout_kind`)."""
    from ..models.examples import plural
    n = int(n_digits)
    return {"image": "image", "digits": f"{n} held-out {kind if n == 1 else plural(kind)}",
            "sample": f"a DDPM sample (seed {seed})"}[source]


def bucket_shares(result, n_buckets: int = N_BUCKETS):
    """Share (percent) of the total bound spent in each of ``n_buckets`` equal ranges of t.

    Each evaluated term counts with its stride weight in the bucket of its t; the decoder term
    L_0 (t = 1) falls in the first bucket, the prior L_T in the last. Returns
    ``(edges [n + 1], percent [n])`` with ``edges`` in the paper's t (bucket b covers
    ``edges[b] < t <= edges[b + 1]``).
    """
    T = int(result.timesteps)
    edges = np.linspace(0, T, n_buckets + 1)
    b = np.clip(np.searchsorted(edges, result.t, side="left") - 1, 0, n_buckets - 1)
    bits = np.bincount(b, weights=result.weights * result.vb_bpd, minlength=n_buckets)
    bits[-1] += result.prior_bpd
    total = float(bits.sum())
    pct = 100.0 * bits / total if total > 0 else np.zeros(n_buckets)
    return edges, pct


def kl_sum(result) -> float:
    """``sum_{t=2}^{T} L_{t-1}`` in bits/dim (stride-weighted: interpolated when stride > 1)."""
    return float((result.weights[1:] * result.vb_bpd[1:]).sum())


def result_csv(result) -> str:
    """The full result table as CSV text: ``t,vb_bpd,eps_mse,x0_mse,weight`` (t: the paper's)."""
    r = result
    lines = ["t,vb_bpd,eps_mse,x0_mse,weight"]
    lines += [f"{int(a)},{b:.8g},{c:.8g},{d:.8g},{w:.8g}"
              for a, b, c, d, w in zip(r.t, r.vb_bpd, r.eps_mse, r.x0_mse, r.weights)]
    return "\n".join(lines) + "\n"
