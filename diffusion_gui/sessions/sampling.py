"""Sampling parameters and the one sampler factory that ``diffusion-gui sample``, the reverse
panel, the training panel's previews and the benchmarks all iterate.

Timesteps are the paper's ``t``: ``t = T`` is pure noise, ``t = 0`` the clean sample; the
schedule's arrays are indexed ``i = t - 1``. Bad parameters raise
:class:`~diffusion_gui.errors.InvalidParameter` named as here ("batch must be in 1..1024"); the
CLI spells the names as its flags.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

from ..core.names import CLIP_EPS
from ..errors import InvalidParameter

__all__ = ["SAMPLER_KINDS", "VARIANCES", "MAX_BATCH", "SamplingParams", "make_sampler",
           "visited_timesteps", "DDIM_STEPS"]

SAMPLER_KINDS = ("ddpm", "ddim")
VARIANCES = ("fixed_small", "fixed_large")
#: most images one run may sample at once
MAX_BATCH = 1024
#: the network's precisions (``diffusion_gui.core.devices.DTYPES``)
DTYPE_NAMES = ("float32", "float16", "bfloat16")
#: DDIM's steps when none are given (``diffusion_gui.core.sampling.sampler``)
DDIM_STEPS = 50


@dataclass(frozen=True)
class SamplingParams:
    """What a sampler run is made of.

    sampler: ``'ddpm'`` (ancestral; all T steps unless ``steps``) or ``'ddim'`` (``steps``
    strided steps, default 50). steps: network evaluations, None for all T (DDPM). eta: DDIM's
    noise scale in [0, 1] (0: deterministic). batch: images sampled at once. seed: seeds x_T
    and every step's noise. clip: clamp x0_pred to [-1, 1] (None: the model's config).
    variance: the DDPM step's sigma_t^2, ``'fixed_small'`` / ``'fixed_large'`` (None: the model's).
    clip_eps: with clipping, DDIM's eps re-derived from the clipped x0 (``'clipped'``, ours and
    improved-diffusion's) or the network's (``'raw'``, a stock diffusers ``DDIMPipeline``).
    class_label (a class-conditional model): a class index, ``'all'`` (sample k gets class
    k mod N) or ``'any'`` (unconditional). guidance: the classifier-free guidance scale w,
    ``eps_u + w (eps_c - eps_u)`` (0 unconditional, 1 conditional). device: where the network
    runs (``auto``: CUDA, then MPS, then the CPU; ``cpu``, ``cuda``, ``cuda:N``, ``mps``);
    dtype: the network's precision (``float32``, ``float16``, ``bfloat16``), the step's maths
    staying float32. Neither changes the noise: the same seed gives the same images anywhere.
    """

    sampler: str = "ddpm"
    steps: int | None = None
    eta: float = 0.0
    batch: int = 16
    seed: int = 0
    clip: bool | None = None
    variance: str | None = None
    clip_eps: str = "clipped"
    class_label: int | str = "any"
    guidance: float = 1.0
    device: str = "auto"
    dtype: str = "float32"

    @classmethod
    def of(cls, params: "SamplingParams | Mapping | None" = None, **kw) -> "SamplingParams":
        """``params`` as is, a mapping of the fields, or the fields given as keywords."""
        if isinstance(params, SamplingParams):
            return dataclasses.replace(params, **kw) if kw else params
        names = {f.name for f in dataclasses.fields(cls)}
        merged = {**dict(params or {}), **kw}
        unknown = sorted(set(merged) - names)
        if unknown:
            raise TypeError(f"unknown sampling parameter(s) {unknown}")
        return cls(**merged)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self, T: int | None = None) -> "SamplingParams":
        """Raise :class:`InvalidParameter` for a value outside what it accepts (``steps`` only
        once the model's ``T`` is known); returns ``self``."""
        if self.sampler not in SAMPLER_KINDS:
            raise InvalidParameter("sampler", f"must be one of {', '.join(SAMPLER_KINDS)}, "
                                              f"not {self.sampler!r}")
        if not 1 <= int(self.batch) <= MAX_BATCH:
            raise InvalidParameter("batch", f"must be in 1..{MAX_BATCH}")
        if not 0.0 <= float(self.eta) <= 1.0:
            raise InvalidParameter("eta", "must be in [0, 1]")
        if self.variance not in (None, *VARIANCES):
            raise InvalidParameter("variance", f"must be one of {', '.join(VARIANCES)}")
        if not 0.0 <= float(self.guidance) <= 20.0:
            raise InvalidParameter("guidance", "must be in 0..20")
        if self.clip_eps not in CLIP_EPS:
            raise InvalidParameter("clip_eps", f"must be one of {', '.join(CLIP_EPS)}")
        if self.dtype not in DTYPE_NAMES:
            raise InvalidParameter("dtype", f"must be one of {', '.join(DTYPE_NAMES)}")
        steps = self.steps if self.steps is not None or self.sampler == "ddpm" else DDIM_STEPS
        if T is not None and steps is not None and not 1 <= int(steps) <= T:
            raise InvalidParameter("steps", f"must be in 1..{T}")
        return self


def on_device(model, device, dtype: str = "float32"):
    """``model`` with its network on ``device`` (a ``torch.device``) in ``dtype``: the model as
    given on the CPU in float32 (a wrapper of a loaded model too), else ``model.on(...)``."""
    if device.type == "cpu" and dtype == "float32":
        return model
    return model.on(device, dtype)


def make_sampler(model, params: SamplingParams | Mapping | None = None, *, x_start=None,
                 start_t: int | None = None, **kw):
    """The core sampler generator for a loaded model: the one the CLI and the GUI both iterate.

    ``params`` (or the same fields as keywords: ``sampler``, ``steps``, ``eta``, ``batch``,
    ``seed``, ``clip``, ``variance``; see :class:`SamplingParams`). ``x_start`` ``[B, C, H, W]``
    at paper step ``start_t`` starts the chain from an intermediate ``x_t`` (a noised image).
    ``seed`` seeds a CPU ``torch.Generator`` that draws x_T and every step's noise, so the same
    arguments give the same images everywhere (on every ``device``, to float tolerance: frames
    live on that device, ``.cpu()`` them to show them). Returns ``(generator_of_StepOutput, shape)``
    with ``shape = (B, C, H, W)``.
    """
    import torch

    from ..core import sampler as core_sampler
    from ..core.devices import resolve_device
    p = SamplingParams.of(params, **kw)
    d = model.diffusion
    p.check(d.num_timesteps)
    device = resolve_device(p.device)
    model = on_device(model, device, p.dtype)
    if p.variance and p.variance != d.variance:
        from ..core import GaussianDiffusion
        d = GaussianDiffusion(d.schedule, variance=p.variance, prediction_type=d.prediction_type,
                              clip_range=d.clip_range)
    shape = (int(p.batch), model.in_channels, model.sample_size, model.sample_size)
    g = torch.Generator().manual_seed(int(p.seed))
    clip_x0 = model.clip_sample if p.clip is None else bool(p.clip)
    # a class-conditional model (or a class asked of one that is not: conditioned() says why)
    plain = p.class_label == "any" and float(p.guidance) == 1.0
    net = model if plain and getattr(model, "classes", None) is None else model.conditioned(p.class_label, p.guidance)
    gen = core_sampler(p.sampler, net, d, shape, steps=p.steps, eta=p.eta, generator=g,
                       clip_x0=clip_x0, clip_eps=p.clip_eps, x_start=x_start, start_t=start_t,
                       device=device)
    return gen, shape


def visited_timesteps(T: int, params: SamplingParams | Mapping | None = None, *,
                      start_t: int | None = None, **kw) -> list[int]:
    """The paper's ``t`` of every frame a run yields, in playing order: from the first step
    visited (``T`` over all steps; a strided run's highest step, e.g. 951 of 1000 in 20 steps;
    ``start_t`` when given) down to ``0``; ``len = steps + 1``. What the sampler of :func:`make_sampler`
    visits (``diffusion_gui.core.sampling``), known before it runs, so that a GIF's frames can
    be chosen up front (:func:`~diffusion_gui.export.timeline.pick_frames`)."""
    from ..core import strided_indices
    p = SamplingParams.of(params, **kw).check(T)
    if p.sampler == "ddpm" and (p.steps is None or p.steps >= T):
        keep = list(range(T))
    else:
        keep = strided_indices(T, p.steps or DDIM_STEPS)
    if start_t is not None:
        if not 1 <= start_t <= T:
            raise InvalidParameter("start_t", f"must be in 1..{T}")
        keep = [i for i in keep if i < start_t - 1] + [start_t - 1]
    return [i + 1 for i in sorted(set(keep), reverse=True)] + [0]
