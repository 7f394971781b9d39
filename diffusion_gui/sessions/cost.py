"""What a run costs, known before it is clicked: one network call timed at the run's batch on
its device, times the calls the run makes (the Reverse panel's sampling, the Losses panel's
bound), and what to change when that is long.

A run's time is almost all network calls (the step's maths is a few element-wise operations),
so ``calls x seconds per call`` is the estimate; benchmarks/big_model.py measures how close it
comes on a cifar10-sized model. Timesteps are the paper's ``t`` (``T`` noise ... ``0`` clean).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .sampling import DDIM_STEPS, SamplingParams, visited_timesteps

__all__ = ["LONG_RUN_S", "CallTiming", "time_network_call", "sampling_rows", "sampling_calls",
           "bound_calls", "RunCost", "sampling_cost", "bound_cost"]

#: a run longer than this (seconds) comes with a suggestion
LONG_RUN_S = 180.0


@dataclass(frozen=True)
class CallTiming:
    """``seconds`` of one network call on ``rows`` images on ``device`` (a resolved name) in
    ``dtype``."""

    seconds: float
    rows: int
    device: str
    dtype: str

    def at(self, rows: int) -> float:
        """Seconds of a call on ``rows`` images: this one scaled linearly (a call's time grows
        about linearly with its batch once the batch fills the device)."""
        return self.seconds * max(1, int(rows)) / max(1, self.rows)


def time_network_call(model, rows: int, device: str = "auto", dtype: str = "float32") -> CallTiming:
    """Time one call of ``model``'s network on ``rows`` images ``[rows, C, S, S]`` at the middle
    timestep, on ``device`` in ``dtype``, after one warm-up call of the same size (the first
    call at a size pays for allocations and, on a GPU, for kernel selection). Seconds of wall
    time, the device synchronised. Runs for about two calls: run it in the background."""
    import torch

    from ..core.devices import resolve_device, synchronize
    dev = resolve_device(device)
    net = model.on(dev, dtype)
    rows = max(1, int(rows))
    x = torch.zeros((rows, model.in_channels, model.sample_size, model.sample_size), device=dev)
    i = torch.full((rows,), model.num_timesteps // 2, dtype=torch.long, device=dev)
    with torch.no_grad():
        net(x, i)
        synchronize(dev)
        t0 = time.perf_counter()
        net(x, i)
        synchronize(dev)
    return CallTiming(time.perf_counter() - t0, rows, str(dev), str(dtype))


def sampling_rows(model, params: SamplingParams) -> int:
    """Images in each network call of a sampling run: the batch, doubled where classifier-free
    guidance evaluates the conditional and the unconditional prediction together."""
    p = SamplingParams.of(params)
    info = getattr(model, "classes", None)
    guided = (info is not None and info.null_label is not None and p.class_label != "any"
              and float(p.guidance) not in (0.0, 1.0))
    return int(p.batch) * (2 if guided else 1)


def sampling_calls(T: int, params: SamplingParams, start_t: int | None = None) -> int:
    """Network calls of a sampling run: one per step visited (``visited_timesteps`` minus t = 0)."""
    return len(visited_timesteps(T, params, start_t=start_t)) - 1


def bound_calls(T: int, stride: int, n_images: int, t_batch: int) -> tuple[int, int]:
    """``(calls, rows per call)`` of :func:`~diffusion_gui.core.vlb.vlb_terms`: the evaluated
    timesteps, ``max(1, t_batch // N)`` of them stacked into a call of that many times N rows."""
    from ..core.vlb import evaluated_indices
    k = len(evaluated_indices(T, int(stride)))
    per = max(1, int(t_batch) // max(1, int(n_images)))
    return math.ceil(k / per), min(per, k) * int(n_images)


@dataclass(frozen=True)
class RunCost:
    """A run as set up: ``calls`` network calls of ``rows`` images, ``seconds`` in all, and
    ``suggestions`` (``[(what, seconds)]``) where it is longer than :data:`LONG_RUN_S`."""

    calls: int
    rows: int
    seconds: float
    per_call: float
    device: str
    suggestions: tuple = ()

    @property
    def long(self) -> bool:
        return self.seconds > LONG_RUN_S


def sampling_cost(timing: CallTiming, model, params: SamplingParams,
                  start_t: int | None = None) -> RunCost:
    """The cost of sampling ``params`` with ``model``; when long: DDIM-50 (if it is not the run
    already), the largest batch that fits in :data:`LONG_RUN_S`, and where neither is enough
    the largest batch with which DDIM-50 fits, or the DDIM steps that fit with one image."""
    p = SamplingParams.of(params)
    T = int(model.num_timesteps)
    rows = sampling_rows(model, p)
    calls = sampling_calls(T, p, start_t)
    per = timing.at(rows)
    total = calls * per
    tips = []
    if total > LONG_RUN_S:
        k = min(DDIM_STEPS, T)
        n_ddim = sampling_calls(T, SamplingParams.of(p, sampler="ddim", steps=k), start_t)
        if n_ddim < calls:
            tips.append((f"DDIM-{k}", n_ddim * per))
        fits = _batch_that_fits(timing, rows, p.batch, calls)
        if fits:
            tips.append((f"a batch of {fits}", calls * timing.at(rows * fits // p.batch)))
        if n_ddim < calls and n_ddim * per > LONG_RUN_S and not fits:
            both = _batch_that_fits(timing, rows, p.batch, n_ddim)
            one = timing.at(rows // p.batch)                   # a call on one image
            steps = min(k - 1, int(LONG_RUN_S // max(one, 1e-9)))
            if both:
                tips.append((f"DDIM-{k} with a batch of {both}", n_ddim * timing.at(rows * both // p.batch)))
            elif steps >= 5:                                   # not even one image in 50 calls
                tips.append((f"DDIM-{steps} with a batch of 1", steps * one))
    return RunCost(calls, rows, total, per, timing.device, tuple(tips))


def _batch_that_fits(timing: CallTiming, rows: int, batch: int, calls: int) -> int:
    """The largest batch below ``batch`` whose ``calls`` fit in :data:`LONG_RUN_S`, or 0."""
    per_image = timing.at(rows) / max(1, batch)
    fits = int(LONG_RUN_S // max(per_image * calls, 1e-9))
    return fits if 1 <= fits < batch else 0


def bound_cost(timing: CallTiming, T: int, stride: int, n_images: int, t_batch: int) -> RunCost:
    """The cost of the Losses panel's bound; when long, a stride that fits in :data:`LONG_RUN_S`."""
    calls, rows = bound_calls(T, stride, n_images, t_batch)
    per = timing.at(rows)
    tips = []
    if calls * per > LONG_RUN_S:
        for s in (2, 5, 10, 20, 50, 100, 200):
            if s > stride:
                c, r = bound_calls(T, s, n_images, t_batch)
                if c * timing.at(r) <= LONG_RUN_S:
                    tips.append((f"stride {s}", c * timing.at(r)))
                    break
    return RunCost(calls, rows, calls * per, per, timing.device, tuple(tips))
