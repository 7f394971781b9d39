"""Forks: when does a sample commit?

A run of :func:`~diffusion_gui.sessions.sampling.make_sampler` (one image of it, ``image``) is
replayed deterministically with its own settings and seed, and its float ``x_t`` is kept at a
few visited steps. From each such paper step ``t`` (t = T noise ... 0 clean), ``K`` new runs
continue the same sampler from that ``x_t`` with other seeds (one batch of K, its generator
seeded with ``seed + 1 + the fork's number``, so every fork draws its own noise, and the
original run is not one of them). Their **spread** is the mean over pixels of the standard
deviation across the K forks (in the model's [-1, 1] units); for the digits model also the
share of forks whose digit (the judge's top class) differs from the original's. Over ``t`` it
makes a curve: forks from late steps agree, forks from early ones do not.

DDIM with eta = 0 is deterministic: every fork is the original and the spread is 0.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..core.images import to_uint8
from ..errors import InvalidParameter
from .compare import Tick, without_ticks
from .sampling import SamplingParams, make_sampler, visited_timesteps

__all__ = ["ForkPoint", "ForkCurve", "fork_times", "replay", "fork_from", "fork_curve", "fork_curve_steps",
           "MAX_FORKS"]

MAX_FORKS = 32


@dataclass
class ForkPoint:
    """The K forks from paper step ``t``: ``images`` uint8 ``[K, H, W, C]``, ``spread`` (mean
    pixel std across forks), ``changed`` (share of forks whose digit differs from the
    original's; None without the judge), ``classes`` the forks' digits."""

    t: int
    images: np.ndarray
    spread: float
    changed: float | None = None
    classes: list | None = None


@dataclass
class ForkCurve:
    """Forks of one image at several steps. ``original`` uint8 ``[H, W, C]`` (the run's final
    image), ``original_class`` its digit (or None), ``points`` by descending ``t``."""

    params: SamplingParams
    image: int
    k: int
    original: np.ndarray | None = None
    original_class: int | None = None
    points: list[ForkPoint] = field(default_factory=list)
    seconds: float = 0.0

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(t [n], spread [n])`` ascending in t, for a plot."""
        pts = sorted(self.points, key=lambda p: p.t)
        return np.array([p.t for p in pts], float), np.array([p.spread for p in pts], float)

    def figures(self) -> dict:
        return {"sampler": self.params.sampler, "steps": self.params.steps, "eta": self.params.eta,
                "seed": self.params.seed, "image": self.image, "forks": self.k,
                "original_class": self.original_class, "seconds": round(self.seconds, 3),
                "points": [{"t": p.t, "spread": round(p.spread, 5), "class_changed": p.changed}
                           for p in self.points]}


def fork_times(T: int, params: SamplingParams, n: int = 8) -> list[int]:
    """``n`` visited paper steps of the run to fork from, evenly spread over its steps (the
    first step, at noise, included; t = 0 left out: nothing is left to fork), descending."""
    ts = [t for t in visited_timesteps(T, params) if t > 0]
    idx = np.unique(np.round(np.linspace(0, len(ts) - 1, max(1, min(n, len(ts))))).astype(int))
    return [ts[i] for i in idx]


def _ticked(gen, stage: int):
    """Iterate a sampler generator: yields a :class:`Tick` per item, returns the last item."""
    last = None
    for last in gen:
        yield Tick(stage, last.step, last.num_steps)
    return last


def replay(model, params: SamplingParams, ts, image: int = 0):
    """Rerun ``params`` (same seed: the same images as the first run) and keep image ``image``'s
    float ``x_t`` ``[1, C, H, W]`` at each paper step in ``ts``: ``({t: x_t}, final [1, C, H, W])``."""
    gen = _replay(model, params, ts, image)
    return _value(gen)


def _value(gen):
    while True:
        try:
            next(gen)
        except StopIteration as done:
            return done.value


def _replay(model, params, ts, image):
    want = set(int(t) for t in ts)
    gen, _ = make_sampler(model, params)
    got, last = {}, None
    for so in gen:
        if so.t in want and so.t > 0:
            got[so.t] = so.x_t[image:image + 1].clone()
        last = so
        yield Tick(-1, so.step, so.num_steps)
    return got, last.x_t[image:image + 1]


def fork_from(model, params: SamplingParams, x_t, t: int, k: int, fork_seed: int):
    """K runs of ``params``' sampler from ``x_t`` ``[1, C, H, W]`` at paper step ``t``: the final
    images ``[K, C, H, W]`` (one batch of K, seeded with ``fork_seed``)."""
    return _value(_fork_steps(model, params, x_t, t, k, fork_seed, 0))


def _fork_steps(model, params, x_t, t, k, fork_seed, stage):
    p = SamplingParams.of(params, batch=int(k), seed=int(fork_seed))
    gen, _ = make_sampler(model, p, x_start=x_t.repeat(int(k), 1, 1, 1), start_t=int(t))
    last = yield from _ticked(gen, stage)
    return last.x_t


def fork_curve(model, params: SamplingParams | dict, **kw):
    """The :class:`ForkCurve` after each fork point (:func:`fork_curve_steps` without ticks)."""
    return without_ticks(fork_curve_steps(model, params, **kw))


def fork_curve_steps(model, params: SamplingParams | dict, *, image: int = 0, k: int = 8,
                     n_points: int = 8, ts=None, judge: bool | None = None):
    """Forks of image ``image`` of the run ``params`` at ``n_points`` steps (or the paper steps
    ``ts``). A generator: a :class:`~.compare.Tick` after every network call (``stage`` -1 for
    the replay, then the fork point's number), and the :class:`ForkCurve` after each fork point
    (the same object, one point longer: the GUI draws the curve as it grows)."""
    from .compare import is_digits_model, judge_images
    p = SamplingParams.of(params).check(model.num_timesteps)
    if not 2 <= int(k) <= MAX_FORKS:
        raise InvalidParameter("forks", f"must be in 2..{MAX_FORKS}")
    if not 0 <= int(image) < p.batch:
        raise InvalidParameter("image", f"must be in 0..{p.batch - 1}")
    ts = sorted({int(t) for t in (ts or fork_times(model.num_timesteps, p, n_points))}, reverse=True)
    T = model.num_timesteps
    if any(not 1 <= t <= T for t in ts):
        raise InvalidParameter("t", f"fork steps must be in 1..{T}")
    if judge is None:
        judge = is_digits_model(model)
    t0 = time.perf_counter()
    states, final = yield from _replay(model, p, ts, image)
    res = ForkCurve(p, int(image), int(k), original=to_uint8(final)[0])
    if judge:
        res.original_class = judge_images(to_uint8(final), model.sample_size)["classes"][0]
    for n, t in enumerate(ts):
        x_t = states.get(t)
        if x_t is None:     # a step this run does not visit
            continue
        out = yield from _fork_steps(model, p, x_t, t, k, p.seed + 1 + n, n)
        spread = float(out.double().std(dim=0, unbiased=True).mean())
        imgs = to_uint8(out)
        changed = classes = None
        if judge:
            classes = judge_images(imgs, model.sample_size)["classes"]
            changed = float(np.mean([c != res.original_class for c in classes]))
        res.points.append(ForkPoint(t, imgs, spread, changed, classes))
        res.seconds = time.perf_counter() - t0
        yield res
