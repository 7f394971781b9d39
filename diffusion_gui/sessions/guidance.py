"""What classifier-free guidance does, measured: fidelity rises, diversity falls.

For each guidance scale ``w`` (``eps = eps_u + w (eps_c - eps_u)``; 0 unconditional, 1
conditional), ``per_class`` samples of every class from one seed (the same x_T for every ``w``,
so that the rows differ by the guidance only), judged by the digits classifier
(:mod:`diffusion_gui.models.quality`): the share in the requested class, the judge's mean
probability of it, and the mean pairwise pixel distance within a class. Qt-free; the Reverse
panel runs :func:`guidance_sweep` in a worker, ``benchmarks/guidance.py`` writes it into the
model card.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import InvalidParameter
from .sampling import SamplingParams, make_sampler

__all__ = ["GuidanceRow", "guidance_sweep", "DEFAULT_SCALES"]

DEFAULT_SCALES = (0.0, 1.0, 2.0, 4.0, 8.0)


@dataclass
class GuidanceRow:
    """One guidance scale's figures. accuracy: share of samples the judge puts in the requested
    class; confidence: its mean probability of that class; diversity: mean pairwise RMS pixel
    distance within a class; n: samples; seconds: sampling time."""

    guidance: float
    accuracy: float
    confidence: float
    diversity: float
    n: int
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


def guidance_sweep(model, scales: Sequence[float] = DEFAULT_SCALES, *, per_class: int = 10,
                   steps: int = 25, seed: int = 0, judge=None, device: str = "auto",
                   dtype: str = "float32",
                   cancelled: Callable[[], bool] = lambda: False) -> Iterator[GuidanceRow]:
    """One :class:`GuidanceRow` per scale, as each is done (DDIM ``steps``, eta 0, batch =
    ``per_class`` x classes, sample ``k`` of class ``k mod N``). ``judge``: a fitted digits
    classifier (built here when None: about a second). Stops early when ``cancelled()``. The
    network runs on ``device`` in ``dtype``; the images are judged on the CPU."""
    import time

    from ..core.sampling import run
    from ..models.quality import class_fidelity, digit_classifier, diversity
    info = getattr(model, "classes", None)
    if info is None or not info.can_guide:
        raise InvalidParameter("guidance", "needs a class-conditional model trained with a null label")
    if per_class < 2:
        raise InvalidParameter("per_class", "must be at least 2 (diversity needs pairs)")
    clf = judge if judge is not None else digit_classifier(model.sample_size)
    batch = per_class * info.n
    labels = np.arange(batch) % info.n
    for w in scales:
        if cancelled():
            return
        t0 = time.perf_counter()
        gen, _ = make_sampler(model, SamplingParams(sampler="ddim", steps=steps, batch=batch, seed=seed,
                                                    class_label="all", guidance=float(w),
                                                    device=device, dtype=dtype))
        x = run(gen).cpu().numpy()
        fid = class_fidelity(clf, x, labels)
        yield GuidanceRow(float(w), fid["accuracy"], fid["confidence"], diversity(x, labels), batch,
                          time.perf_counter() - t0)
