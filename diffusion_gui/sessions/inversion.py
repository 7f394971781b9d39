"""DDIM inversion and interpolation for a loaded model (the Compare panel's third mode and
``diffusion-gui invert`` / ``interpolate``).

An image (the Forward panel's, fitted to the model by
:func:`~diffusion_gui.sessions.reverse.prepare_original`; or held-out digits for the digits
model, :func:`~diffusion_gui.models.data.digits`) is inverted with
:func:`~diffusion_gui.core.inversion.ddim_invert` to the top step of an N-step DDIM run and
decoded back by :func:`~diffusion_gui.sessions.sampling.make_sampler` (DDIM, the same N steps,
eta = 0, no clipping: clipping is not invertible). The reconstruction error falls with N, the
DDIM ODE's discretisation error. Two inverted latents are joined along a spherical path
(:func:`~diffusion_gui.core.inversion.slerp`) and every point decoded: the interpolation frames.

Images are uint8 ``[B, H, W, C]`` outside and float ``[B, C, H, W]`` in ``[-1, 1]`` inside;
PSNR is that of the uint8 images (:func:`~diffusion_gui.sessions.reverse.psnr`, peak 255).
``device`` / ``dtype`` (as :class:`~diffusion_gui.sessions.sampling.SamplingParams` takes them):
where the network runs, both ways; what is returned is on the CPU.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..core.images import to_uint8
from ..errors import InvalidParameter
from .compare import Tick, without_ticks
from .reverse import prepare_original, psnr
from .sampling import make_sampler, on_device

__all__ = ["Reconstruction", "STEP_COUNTS", "heldout_digits", "fit_image", "to_model_tensor",
           "invert_reconstruct", "error_vs_steps", "interpolate", "round_trip", "decode", "error_vs_steps_ticks", "sheet", "strip", "MAX_FRAMES"]

#: the step counts of the error-vs-steps curve (those above T are dropped)
STEP_COUNTS = (10, 20, 50, 100, 200, 500, 1000)
MAX_FRAMES = 64


@dataclass
class Reconstruction:
    """One inversion + reconstruction with ``steps`` DDIM steps: ``original`` / ``recon`` uint8
    ``[B, H, W, C]``, ``latent`` float32 ``[B, C, H, W]`` (the inverted x_T), ``mse`` per image
    (of the [-1, 1] floats), ``psnr`` per image (dB, uint8), ``seconds``."""

    steps: int
    original: np.ndarray
    recon: np.ndarray
    latent: np.ndarray
    mse: np.ndarray
    psnr: np.ndarray
    seconds: float

    def figures(self) -> dict:
        return {"steps": self.steps, "mse": round(float(self.mse.mean()), 7),
                "psnr_db": round(float(self.psnr.mean()), 3),
                "psnr_db_min": round(float(self.psnr.min()), 3),
                "latent_std": round(float(self.latent.std()), 4), "seconds": round(self.seconds, 3)}


def heldout_digits(model, n: int = 8, start: int = 0) -> np.ndarray:
    """``n`` of the model's held-out examples from ``start`` (its own ``heldout.npz``, else the
    held-out digits: the split the digits models were not trained on) at the model's size and
    channels: uint8 ``[n, S, S, C]`` (a colour model is never handed grey digits)."""
    from ..models.examples import heldout_examples
    x = heldout_examples(model).images
    if not 1 <= n <= len(x) - start:
        raise InvalidParameter("digits", f"must be in 1..{len(x) - start}")
    x = x[start:start + n]
    S, C = model.sample_size, model.in_channels
    if x.shape[1:] != (S, S, C):
        x = np.concatenate([fit_image(model, im) for im in x])
    return x


def fit_image(model, image: np.ndarray) -> np.ndarray:
    """Any uint8 image ``[H, W, C]`` -> the model's size and channels, ``[1, S, S, C]``."""
    return prepare_original(image, model.sample_size, model.in_channels)[None]


def to_model_tensor(images: np.ndarray):
    """uint8 ``[B, H, W, C]`` -> float32 ``[B, C, H, W]`` in [-1, 1]."""
    import torch
    a = np.asarray(images, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def _placed(model, device, dtype):
    """``(model on the device, the torch.device)``: both directions run there."""
    from ..core.devices import resolve_device
    dev = resolve_device(device)
    return on_device(model, dev, dtype), dev


def _check_steps(model, steps: int) -> int:
    T = model.num_timesteps
    if not 1 <= int(steps) <= T:
        raise InvalidParameter("steps", f"must be in 1..{T}")
    return int(steps)


def _ticked(gen, stage: int, offset: int = 0, total: int | None = None):
    last = None
    for last in gen:
        yield Tick(stage, offset + last.step, total or last.num_steps)
    return last


def decode(model, latent, steps: int, *, device="auto", dtype="float32"):
    """DDIM (eta = 0, no clipping) from the latent ``[B, C, H, W]`` at the top of ``steps`` strided
    steps down to x_0, through :func:`make_sampler` (the sampler the Reverse panel runs); the
    decoded ``[B, C, H, W]`` on the CPU."""
    net, dev = _placed(model, device, dtype)
    return _value(_decode(net, latent, steps, dev=dev)).cpu()


def _value(gen):
    while True:
        try:
            next(gen)
        except StopIteration as done:
            return done.value


def _decode(model, latent, steps: int, stage: int = 0, offset: int = 0, total: int | None = None,
            *, dev):
    gen, _ = make_sampler(model, sampler="ddim", steps=int(steps), eta=0.0, batch=latent.shape[0],
                          clip=False, x_start=latent.to(dev), device=str(dev),
                          dtype=_dtype_name(model))
    last = yield from _ticked(gen, stage, offset, total)
    return last.x_t


def _dtype_name(model) -> str:
    """The precision a (placed) model's network runs in, as SamplingParams names it."""
    dt = getattr(getattr(model, "unet", None), "dtype", None)
    return "float32" if dt is None else str(dt).replace("torch.", "")


def _invert(model, x0, steps: int, stage: int = 0, total: int | None = None, *, dev):
    from ..core.inversion import ddim_invert
    last = yield from _ticked(ddim_invert(model, model.diffusion, x0, num_steps=steps, device=dev),
                              stage, 0, total)
    return last.x_t


def invert_reconstruct(model, images: np.ndarray, steps: int, *, device="auto",
                       dtype="float32") -> Reconstruction:
    """Invert uint8 ``images`` ``[B, H, W, C]`` with ``steps`` DDIM steps and decode them back."""
    net, dev = _placed(model, device, dtype)
    return _value(_invert_reconstruct(net, images, steps, dev=dev))


def _invert_reconstruct(model, images, steps, stage: int = 0, *, dev):
    steps = _check_steps(model, steps)
    t0 = time.perf_counter()
    x0 = to_model_tensor(images)
    lat = yield from _invert(model, x0, steps, stage, 2 * steps, dev=dev)
    rec = yield from _decode(model, lat, steps, stage, steps, 2 * steps, dev=dev)
    rec, lat = rec.cpu(), lat.cpu()
    mse = ((rec.clamp(-1, 1) - x0) ** 2).reshape(len(x0), -1).mean(1).double().numpy()
    r8 = to_uint8(rec)
    orig = np.asarray(images, np.uint8)
    db = np.array([psnr(r8[j:j + 1], orig[j])[0] for j in range(len(orig))])
    return Reconstruction(steps, orig, r8, lat.float().numpy(), mse, db, time.perf_counter() - t0)


def error_vs_steps(model, images: np.ndarray, step_counts=STEP_COUNTS, **placement):
    """Yields a :class:`Reconstruction` for each step count (those in ``1..T``), in order."""
    return without_ticks(error_vs_steps_ticks(model, images, step_counts, **placement))


def error_vs_steps_ticks(model, images: np.ndarray, step_counts=STEP_COUNTS, *, device="auto",
                         dtype="float32"):
    """:func:`error_vs_steps` with a :class:`~.compare.Tick` after every network call (``stage``:
    the step count's number; ``done`` of ``2 N`` calls, there and back)."""
    T = model.num_timesteps
    net, dev = _placed(model, device, dtype)
    for k, n in enumerate([int(s) for s in step_counts if 1 <= int(s) <= T]):
        yield (yield from _invert_reconstruct(net, images, n, k, dev=dev))


def interpolate(model, a: np.ndarray, b: np.ndarray, steps: int = 50, n_frames: int = 9, *,
                device="auto", dtype="float32") -> dict:
    """Invert uint8 images ``a`` and ``b`` (``[1, H, W, C]`` each, at the model's size), walk the
    spherical path between their latents in ``n_frames`` points and decode each (one batch).
    Returns ``{"frames": uint8 [n, H, W, C], "weights": [n], "ends": uint8 [2, H, W, C] (the
    reconstructions of a and b), "angle_deg": the angle between the latents}``."""
    import torch

    from ..core.inversion import invert, slerp
    steps = _check_steps(model, steps)
    if not 2 <= int(n_frames) <= MAX_FRAMES:
        raise InvalidParameter("frames", f"must be in 2..{MAX_FRAMES}")
    x = to_model_tensor(np.concatenate([a, b]))
    net, dev = _placed(model, device, dtype)
    lat = invert(net, net.diffusion, x, num_steps=steps, device=dev).cpu()
    la, lb = lat[:1], lat[1:2]
    ws = np.linspace(0.0, 1.0, int(n_frames))
    path = torch.cat([slerp(la, lb, float(w)) for w in ws])
    frames = to_uint8(_value(_decode(net, path, steps, dev=dev)))
    fa, fb = la.flatten().double(), lb.flatten().double()
    cos = float((fa @ fb) / (fa.norm() * fb.norm()))
    return {"frames": frames, "weights": ws.tolist(), "ends": frames[[0, -1]],
            "angle_deg": float(np.degrees(np.arccos(np.clip(cos, -1, 1))))}


def round_trip(model, images: np.ndarray, steps: int, n_frames: int = 40, *, device="auto",
               dtype="float32") -> tuple[list, list]:
    """The inversion x_0 -> x_T and the decoding x_T -> x_0 of uint8 ``images`` ``[B, H, W, C]``
    with ``steps`` DDIM steps, as frames of the batch grid: ``(frames uint8 [H', W', C],
    captions)``, about ``n_frames // 2`` frames each way (evenly picked steps; both ends kept)."""
    from ..core.images import tile
    from ..core.inversion import ddim_invert
    steps = _check_steps(model, steps)
    half = max(2, int(n_frames) // 2)
    keep = set(np.round(np.linspace(0, steps, half)).astype(int).tolist())
    frames, caps = [], []
    last = None
    model, dev = _placed(model, device, dtype)
    for so in ddim_invert(model, model.diffusion, to_model_tensor(images), num_steps=steps, device=dev):
        if so.step in keep:
            frames.append(tile(to_uint8(so.x_t)))
            caps.append(f"inverting: t = {so.t}")
        last = so
    gen, _ = make_sampler(model, sampler="ddim", steps=steps, eta=0.0, batch=len(images),
                          clip=False, x_start=last.x_t, device=str(dev), dtype=_dtype_name(model))
    for so in gen:
        if so.step in keep and so.step > 0:
            frames.append(tile(to_uint8(so.x_t)))
            caps.append(f"decoding: t = {so.t}")
    return frames, caps


def sheet(recons: list, scale: int | None = None, original: str = "original") -> np.ndarray:
    """The originals and their reconstructions for each step count, one captioned row each:
    uint8 ``[H, W, C]`` (what ``diffusion-gui invert -o X.png`` writes)."""
    from ..core.images import tile
    from ..export.frames import compose
    from .compare import stack_rows
    if not recons:
        raise InvalidParameter("steps", "no step count in 1..T was given")
    first = recons[0]
    s = scale or max(1, 64 // first.original.shape[1])
    strips = [tile(first.original, ncols=len(first.original))] + \
             [tile(r.recon, ncols=len(r.recon)) for r in recons]
    caps = [original] + \
           [f"DDIM {r.steps} steps there and back · PSNR {r.psnr.mean():.1f} dB" for r in recons]
    return stack_rows(compose(strips, caps, scale=s))


def strip(frames: np.ndarray, weights, scale: int | None = None) -> np.ndarray:
    """Interpolation frames uint8 ``[n, H, W, C]`` in one captioned row (``w`` under each)."""
    from ..export.frames import compose
    s = scale or max(1, 64 // frames.shape[1])
    cells = compose(list(frames), [f"w = {w:.2f}" for w in weights], scale=s)
    gap = np.full((cells[0].shape[0], 4, cells[0].shape[2]), 255, np.uint8)
    parts = []
    for c in cells:
        parts += [c, gap]
    return np.concatenate(parts[:-1], axis=1)
