"""The compare grid: one x_T through several samplers, side by side.

Rows are sampler configurations (:class:`RowSpec`: DDPM over all T steps, DDPM respaced to N
steps, DDIM with N steps and a noise scale eta), columns are the samples of a batch. Every row is
one run of :func:`~diffusion_gui.sessions.sampling.make_sampler`, the very generator the Reverse
panel and ``diffusion-gui sample`` iterate, with the grid's seed: the seed's generator draws x_T
first, so **every row starts from the same x_T**, and then each step's noise in step order, so
rows with the same sampler and step count draw the same per-step noise and a row equals the
Reverse panel's run of the same settings and seed, image for image.

Each row records its trajectory as uint8 frames (at most :data:`ROW_FRAMES`, chosen by
:func:`~diffusion_gui.export.timeline.pick_frames`), its wall time and, for the built-in digits
model, the share of confident digits from the digits judge
(:func:`~diffusion_gui.models.quality.judge`). :meth:`CompareGrid.at` scrubs every row to the same
paper ``t`` (t = T noise ... 0 clean): each row shows the last frame it had reached at that noise
level, i.e. its recorded frame with the smallest visited ``t' >= t``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..core.images import tile, to_uint8
from ..errors import InvalidParameter
from .sampling import SamplingParams, make_sampler, visited_timesteps
from .settings import setting

__all__ = ["RowSpec", "RowResult", "CompareGrid", "DEFAULT_ROWS", "ROW_FRAMES", "parse_rows",
           "is_digits_model", "digits_judge", "judge_images", "run_row", "grid_image",
           "grid_frames", "stack_rows", "Tick",
           "without_ticks", "row_steps", "CompareSettings"]

#: most frames one row records for scrubbing and the GIF
ROW_FRAMES = 200
#: most samples (columns) a grid holds
MAX_COLUMNS = 16


@dataclass(frozen=True)
class RowSpec:
    """One row: ``sampler`` ``'ddpm'`` or ``'ddim'``, ``steps`` (None: all T, DDPM only; DDIM's
    default 50), DDIM's ``eta`` in [0, 1]."""

    sampler: str = "ddpm"
    steps: int | None = None
    eta: float = 0.0

    def params(self, batch: int, seed: int, clip: bool | None = None, device: str = "auto",
               dtype: str = "float32") -> SamplingParams:
        """The :class:`SamplingParams` of this row, as the Reverse panel builds them
        (:meth:`~diffusion_gui.sessions.reverse.ReverseSettings.sampling_params`)."""
        return SamplingParams(sampler=self.sampler, steps=self.steps,
                              eta=float(self.eta) if self.sampler == "ddim" else 0.0,
                              batch=int(batch), seed=int(seed), clip=clip, device=device, dtype=dtype)

    def label(self, T: int | None = None, plain: bool = False) -> str:
        """``'DDIM, 50 steps, η = 0'``; ``plain``: ``eta`` spelt out (for fonts without Greek)."""
        if self.sampler == "ddpm":
            return f"DDPM, all {T or 'T'} steps" if self.steps is None or (T and self.steps >= T) \
                else f"DDPM, {self.steps} steps (respaced)"
        return f"DDIM, {self.steps or 50} steps, {'eta' if plain else 'η'} = {self.eta:g}"


DEFAULT_ROWS = (RowSpec("ddpm"), RowSpec("ddpm", 50), RowSpec("ddim", 50, 0.0),
                RowSpec("ddim", 10, 0.0), RowSpec("ddim", 50, 1.0))


def parse_rows(text: str) -> list[RowSpec]:
    """``"ddpm, ddpm:50, ddim:50:0, ddim:10:1"`` -> rows (``kind[:steps[:eta]]``; ``ddpm`` alone
    is all T steps). Raises :class:`InvalidParameter` ``rows`` for a bad entry."""
    rows = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        bits = part.split(":")
        try:
            kind = bits[0].lower()
            steps = int(bits[1]) if len(bits) > 1 and bits[1] else None
            eta = float(bits[2]) if len(bits) > 2 else 0.0
        except ValueError:
            raise InvalidParameter("rows", "must be a list like ddpm, ddpm:50, ddim:50:0.5",
                                   subject=part) from None
        if kind not in ("ddpm", "ddim") or len(bits) > 3:
            raise InvalidParameter("rows", "entries are ddpm[:steps] or ddim[:steps[:eta]]", subject=part)
        rows.append(RowSpec(kind, steps, eta))
    if not rows:
        raise InvalidParameter("rows", "must name at least one sampler")
    return rows


@dataclass(frozen=True)
class Tick:
    """Progress of a long session generator, yielded after every network call so that a GUI
    worker can cancel between them: ``stage`` (e.g. the row), ``done`` of ``total`` steps."""

    stage: int
    done: int
    total: int


def without_ticks(gen):
    r"""The items of ``gen`` that are not :class:`Tick`\ s (what a headless caller wants)."""
    for item in gen:
        if not isinstance(item, Tick):
            yield item


# ------------------------------------------------------------------------------ the digits judge
def is_digits_model(model) -> bool:
    """Whether ``model`` is the built-in digits model (1 channel, the judge's resolution)."""
    from ..models.registry import DEFAULT_MODEL, builtin_path
    p = builtin_path(DEFAULT_MODEL)
    try:
        same = p is not None and str(p.resolve()) == str(type(p)(model.source).resolve())
    except (OSError, TypeError, ValueError):
        same = False
    return same and model.in_channels == 1 and model.sample_size % 8 == 0


@lru_cache(maxsize=2)
def digits_judge(size: int = 16):
    """The digits classifier of :mod:`diffusion_gui.models.quality`, fitted once per size."""
    from ..models.quality import digit_classifier
    return digit_classifier(size)


def judge_images(images: np.ndarray, size: int) -> dict:
    """The judge's figures for uint8 ``[B, S, S, 1]`` samples: ``confident_share``, ``classes``
    (the top class of each image) and ``confidence`` (its probability)."""
    from ..models.quality import judge, to_digit_features
    x = images.astype(np.float64)[..., 0][:, None] / 127.5 - 1.0
    clf = digits_judge(size)
    p = clf.predict_proba(to_digit_features(x))
    out = judge(clf, x)
    out["classes"] = [int(c) for c in clf.classes_[p.argmax(1)]]
    out["confidence"] = [round(float(v), 4) for v in p.max(1)]
    return out


# ------------------------------------------------------------------------------ one row
@dataclass
class RowResult:
    """A finished row: ``ts`` paper t of each recorded frame (descending, ending at 0), ``xt`` /
    ``x0`` uint8 ``[B, H, W, C]`` per recorded frame, ``seconds`` of wall time, ``steps`` network
    calls, ``quality`` the judge's figures (digits model) or None."""

    spec: RowSpec
    label: str
    ts: list[int]
    xt: list[np.ndarray]
    x0: list[np.ndarray]
    seconds: float
    steps: int
    quality: dict | None = None

    @property
    def final(self) -> np.ndarray:
        return self.xt[-1]

    def index_at(self, t: int) -> int:
        """The recorded frame shown at paper step ``t``: the last one with ``t' >= t``."""
        k = 0
        for j, tj in enumerate(self.ts):
            if tj >= t:
                k = j
        return k

    def readout(self, with_steps: bool = True) -> str:
        """``'50 steps · 0.71 s · 88% confident digits'`` (the judge's share for the digits model)."""
        q = "" if self.quality is None else f" · {100 * self.quality['confident_share']:.0f}% confident digits"
        return (f"{self.steps} steps · " if with_steps else "") + f"{self.seconds:.2f} s{q}"


def run_row(model, spec: RowSpec, batch: int, seed: int, **kw) -> RowResult:
    """Run one row with :func:`make_sampler` (keywords of :func:`row_steps`)."""
    gen = row_steps(model, spec, batch, seed, **kw)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            return done.value


def row_steps(model, spec: RowSpec, batch: int, seed: int, *, clip: bool | None = None,
              judge: bool | None = None, max_frames: int = ROW_FRAMES, stage: int = 0,
              device: str = "auto", dtype: str = "float32"):
    """Run one row (the network on ``device`` in ``dtype``): yields a :class:`Tick` after every
    network call, returns the :class:`RowResult` (``result = yield from row_steps(...)``)."""
    from ..export.timeline import pick_frames
    params = spec.params(batch, seed, clip, device, dtype).check(model.num_timesteps)
    ts_all = visited_timesteps(model.num_timesteps, params)
    keep = set(pick_frames(ts_all, min(max_frames, len(ts_all)), "even"))
    keep.add(len(ts_all) - 1)
    gen, _ = make_sampler(model, params)
    ts, xt, x0 = [], [], []
    t0 = time.perf_counter()
    for so in gen:
        if so.step in keep:
            ts.append(int(so.t))
            xt.append(to_uint8(so.x_t))
            x0.append(to_uint8(so.x0_pred))
        yield Tick(stage, so.step, so.num_steps)
    seconds = time.perf_counter() - t0
    if judge is None:
        judge = is_digits_model(model)
    quality = judge_images(xt[-1], model.sample_size) if judge else None
    return RowResult(spec, spec.label(model.num_timesteps), ts, xt, x0, seconds, len(ts_all) - 1, quality)


# ------------------------------------------------------------------------------ the grid
@dataclass
class CompareGrid:
    """Rows run from one seed and batch (the columns)."""

    rows: list[RowSpec] = field(default_factory=lambda: list(DEFAULT_ROWS))
    batch: int = 8
    seed: int = 0
    clip: bool | None = None
    results: list[RowResult] = field(default_factory=list)
    T: int = 1000
    device: str = "auto"            # where the rows run (SamplingParams.device / dtype)
    dtype: str = "float32"

    def check(self) -> "CompareGrid":
        if not 1 <= int(self.batch) <= MAX_COLUMNS:
            raise InvalidParameter("batch", f"must be in 1..{MAX_COLUMNS}")
        if not self.rows:
            raise InvalidParameter("rows", "must name at least one sampler")
        return self

    def run(self, model, *, judge: bool | None = None):
        """Run every row: yields a :class:`Tick` (``stage`` = the row) after every network call
        and each :class:`RowResult` as it finishes, which is also appended to ``results`` (the
        GUI thread reads them from there as they come)."""
        self.check()
        for spec in self.rows:
            spec.params(self.batch, self.seed, self.clip).check(model.num_timesteps)
        self.T = int(model.num_timesteps)
        self.results = []
        for r, spec in enumerate(self.rows):
            res = yield from row_steps(model, spec, self.batch, self.seed, clip=self.clip, judge=judge,
                                       stage=r, device=self.device, dtype=self.dtype)
            self.results.append(res)
            yield res

    def at(self, t: int, which: str = "xt") -> list[np.ndarray]:
        """Each row's batch (uint8 ``[B, H, W, C]``) at paper step ``t``: x_t or predicted x_0."""
        out = []
        for r in self.results:
            k = r.index_at(t)
            out.append((r.xt if which == "xt" else r.x0)[k])
        return out

    def figures(self) -> list[dict]:
        """Plain figures of every row (``--json``)."""
        return [{"row": r.label, "sampler": r.spec.sampler, "steps": r.steps, "eta": r.spec.eta,
                 "seconds": round(r.seconds, 4),
                 "confident_share": None if r.quality is None else r.quality["confident_share"],
                 "classes": None if r.quality is None else r.quality["classes"]}
                for r in self.results]

    def export_ts(self, n_frames: int = 60) -> list[int]:
        """The common t of a GIF's frames: T down to 0, evenly spaced."""
        n = max(2, int(n_frames))
        return sorted({int(round(v)) for v in np.linspace(self.T, 0, n)}, reverse=True)


def grid_image(grid: CompareGrid, t: int = 0, which: str = "xt", scale: int | None = None) -> np.ndarray:
    """The whole grid at paper step ``t`` as one uint8 image ``[H, W, C]``: each row's batch in
    one line, enlarged, with the row's sampler, time and quality in a caption strip under it."""
    from ..export.frames import compose
    batches = grid.at(t, which)
    if not batches:
        raise InvalidParameter("rows", "the grid has no finished rows")
    strips = [tile(b, ncols=len(b), pad=1) for b in batches]
    s = scale or max(1, 96 // max(1, batches[0].shape[1]))
    caps = [f"{r.spec.label(grid.T, plain=True)}  ·  {r.readout(with_steps=False)}" for r in grid.results]
    return stack_rows(compose(strips, caps, scale=s))


def stack_rows(rows: list, gap: int = 6) -> np.ndarray:
    """uint8 images ``[h_k, w_k, C]`` stacked top to bottom, each centred on a white canvas as
    wide as the widest, ``gap`` px of white under each."""
    w = max(r.shape[1] for r in rows)
    out = []
    for r in rows:
        canvas = np.full((r.shape[0] + gap, w, r.shape[2]), 255, np.uint8)
        x = (w - r.shape[1]) // 2
        canvas[:r.shape[0], x:x + r.shape[1]] = r
        out.append(canvas)
    return np.concatenate(out, axis=0)


def grid_frames(grid: CompareGrid, n_frames: int = 60, which: str = "xt") -> tuple[list, list]:
    """The grid scrubbed from T to 0 (``n_frames`` common t): ``(frames, captions)``."""
    ts = grid.export_ts(n_frames)
    frames = [grid_image(grid, t, which) for t in ts]
    return frames, [f"t = {t}" for t in ts]


# ------------------------------------------------------------------------------ the panel's settings
@dataclass
class CompareSettings:
    """The Compare panel's controls, as stored (QSettings keys = field names). ``rows``: as
    :func:`parse_rows` reads them. ``fork_sampler``: a Reverse-panel sampler key (``ddpm``,
    ``ddpm_strided``, ``ddim``). ``inv_steps``: step counts, comma-separated."""

    rows: str = setting("ddpm, ddpm:50, ddim:50:0, ddim:10:0, ddim:50:1")
    batch: int = setting(8, lo=1, hi=MAX_COLUMNS)
    seed: int = setting(0, lo=0, hi=2 ** 31 - 1)
    fork_sampler: str = setting("ddpm_strided", choices=("ddpm", "ddpm_strided", "ddim"))
    fork_steps: int = setting(100, lo=1, hi=1000)
    fork_eta: float = setting(1.0, lo=0.0, hi=1.0)
    fork_k: int = setting(8, lo=2, hi=32)
    fork_points: int = setting(10, lo=2, hi=40)
    inv_digits: int = setting(6, lo=1, hi=16)
    inv_steps: str = setting("10, 20, 50, 100, 200")
    interp_frames: int = setting(9, lo=2, hi=64)
    interp_steps: int = setting(50, lo=1, hi=1000)
