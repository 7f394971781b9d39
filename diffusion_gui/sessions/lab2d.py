"""The 2-D lab's session: a point cloud, three denoisers, and the numbers beside the pictures.

Plain Python state that a panel views and a worker thread drives (no Qt):

- the data (:meth:`Lab2DSession.set_data`, :meth:`~Lab2DSession.set_mixture` for dragged
  components, :meth:`~Lab2DSession.set_points` for drawn points): float32 numpy ``[N, 2]``;
- the schedule (:meth:`~Lab2DSession.set_schedule`) and the MLP's training state;
  :meth:`~Lab2DSession.train` is a generator of :class:`~diffusion_gui.core.toy2d_mlp.TrainMetrics`
  (pause = stop asking, stop = drop it), which also records the loss history; changing the data
  keeps the network (training goes on on the new data), :meth:`~Lab2DSession.reset_model` starts
  afresh;
- :meth:`~Lab2DSession.denoiser` gives a sampler *model* for ``mlp``, ``exact`` (a mixture only)
  or ``empirical``; :meth:`~Lab2DSession.sample` is the core sampler generator itself (one
  ``StepOutput`` per step, ``x_t`` ``[B, 2]``), :meth:`~Lab2DSession.sample_points` exhausts it;
- :meth:`~Lab2DSession.quality` and :meth:`~Lab2DSession.loss_profile`: the numbers;
- for the panel: points from a picture or text (:meth:`~Lab2DSession.set_image_points`,
  :meth:`~Lab2DSession.set_text_points`), painting / erasing (:meth:`~Lab2DSession.paint`,
  :meth:`~Lab2DSession.erase`) and dragging / resizing mixture components
  (:meth:`~Lab2DSession.move_component`, :meth:`~Lab2DSession.scale_component`); the paths
  of :mod:`.lab2d_paths` (recorded reverse runs, traced particles), the field of
  :mod:`.lab2d_field` and the numbers of :mod:`.lab2d_numbers`.

Timesteps: the paper's ``t`` (``t = 0`` data, ``t = T`` noise) in every argument named ``t``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..core.diffusion import GaussianDiffusion
from ..core.names import SAMPLERS
from ..core.sampling import run, sampler
from ..core.schedule import NoiseSchedule
from ..core.toy2d import MAX_POINTS, GaussianMixture, mixture_of, toy_data
from ..core.toy2d_metrics import (
    MixtureDenoiser,
    data_std,
    energy_distance,
    energy_floor,
    eps_mse_per_t,
    gaussian_like,
    nearest_distances,
)
from ..core.toy2d_mlp import Sampled, TrainState, train_steps
from ..errors import InvalidParameter
from . import lab2d_edit as edit
from .lab2d_settings import CUSTOM_SOURCES, DATA_CHOICES, MODELS, REVERSE_VIEWS, Lab2DSettings

__all__ = ["Lab2DSettings", "Lab2DSession", "Quality", "MODELS", "DATA_CHOICES", "CUSTOM_SOURCES",
           "REVERSE_VIEWS"]


@dataclass
class Quality:
    """Sample quality beside its references. energy_distance: samples vs a fresh draw of the data;
    noise_floor: the expected distance of two fresh draws of those sizes; gaussian_baseline: a
    Gaussian with the data's mean and covariance vs the fresh draw; nearest_median_pct: the median
    distance of a sample to its nearest training point, in % of the data's std; nearest [B]."""

    energy_distance: float
    noise_floor: float
    gaussian_baseline: float
    nearest_median_pct: float
    nearest: np.ndarray = field(repr=False)


class Lab2DSession:
    """State of the 2-D lab; see the module docstring."""

    def __init__(self, settings: Lab2DSettings | None = None):
        self.settings = settings or Lab2DSettings()
        self.mixture: GaussianMixture | None = None
        self.losses: list[float] = []          # one per report of train()
        self.loss_steps: list[int] = []
        self._fresh_drawing = False
        self._set_diffusion()
        self.reset_model()
        self.set_data("moons" if self.settings.data == "custom" else self.settings.data)

    # ---------------------------------------------------------------- data
    def set_data(self, name: str, n: int | None = None, seed: int | None = None,
                 mixture: GaussianMixture | None = None) -> np.ndarray:
        """Draw data set ``name`` (``n`` points, ``seed``; ``mixture`` for ``gmm``). The network is
        kept. Returns the points, float32 ``[N, 2]`` (also ``self.data``)."""
        if name == "custom":
            return self.set_points(self.data)
        n = self.settings.n if n is None else int(n)
        seed = self.settings.seed if seed is None else int(seed)
        self.data = toy_data(name, n, seed, mixture)
        self.mixture = mixture_of(name, mixture)
        self.settings = replace(self.settings, data=name, n=n, seed=seed)
        return self.data

    def set_mixture(self, mixture: GaussianMixture) -> np.ndarray:
        """Use ``mixture`` (e.g. after a drag or resize of a component) as the ``gmm`` data."""
        return self.set_data("gmm", mixture=mixture)

    def set_points(self, points) -> np.ndarray:
        """Use the given points ``[N, 2]`` (drawn by hand, from an image, ...) as the data."""
        p = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        if not 1 <= len(p) <= MAX_POINTS or not np.isfinite(p).all():
            raise InvalidParameter("points", f"must be 1..{MAX_POINTS} finite points")
        self.data, self.mixture = p, None
        self.settings = replace(self.settings, data="custom", n=len(p))
        return self.data

    def set_image_points(self, image, n: int | None = None) -> np.ndarray:
        """Points drawn from the dark pixels of ``image`` (uint8 ``[H, W]`` or ``[H, W, C]``,
        e.g. the app's current image) as the data (``custom``, source ``image``)."""
        from ..core.toy2d_points import points_from_image
        if image is None:
            raise InvalidParameter("image", "is needed: open an image first (File > Open)")
        p = self.set_points(points_from_image(image, n=n or self.settings.n, seed=self.settings.seed))
        self.settings = replace(self.settings, source="image")
        return p

    def set_text_points(self, text: str, n: int | None = None) -> np.ndarray:
        """Points drawn from ``text`` as rendered (``custom``, source ``text``)."""
        from ..core.toy2d_points import points_from_text
        p = self.set_points(points_from_text(text, n=n or self.settings.n, seed=self.settings.seed))
        self.settings = replace(self.settings, source="text", text=str(text))
        return p

    # ---------------------------------------------------------------- editing with the mouse
    def start_drawing(self):
        """The next :meth:`paint` replaces the data (a fresh drawing) instead of adding to it."""
        self._fresh_drawing = True

    def paint(self, at, seed=None) -> np.ndarray:
        """Add a brush stroke of points around ``at`` ``[2]`` (the data becomes ``custom``)."""
        base = self.data[:0] if getattr(self, "_fresh_drawing", False) else self.data
        self._fresh_drawing = False
        p = self.set_points(edit.spray(base, at, seed=seed))
        self.settings = replace(self.settings, source="draw")
        return p

    def erase(self, at) -> np.ndarray:
        """Remove the points near ``at``; the last points are never removed (data is never empty)."""
        left = edit.erase(self.data, at)
        if len(left) == 0 or len(left) == len(self.data):
            return self.data
        p = self.set_points(left)
        self.settings = replace(self.settings, source="draw")
        return p

    def component_at(self, at) -> int | None:
        """The mixture component under ``at`` (None: none, or the data is not a mixture)."""
        if self.settings.data != "gmm" or self.mixture is None:
            return None
        return edit.nearest_component(self.mixture, at)

    def move_component(self, k: int, mean) -> np.ndarray:
        """Drag component ``k``'s mean to ``mean`` (``gmm`` data; redrawn with the same seed)."""
        return self.set_mixture(edit.move_component(self._gmm(), k, mean))

    def scale_component(self, k: int, factor: float) -> np.ndarray:
        """Resize component ``k`` (its stds times ``factor``; e.g. the mouse wheel)."""
        return self.set_mixture(edit.scale_component(self._gmm(), k, factor))

    def set_component_std(self, k: int, std: float) -> np.ndarray:
        """Make component ``k`` isotropic of width ``std`` (a spin box)."""
        return self.set_mixture(edit.set_component_std(self._gmm(), k, std))

    def _gmm(self) -> GaussianMixture:
        if self.settings.data != "gmm" or self.mixture is None:
            raise InvalidParameter("data", "must be gmm to edit its components")
        return self.mixture

    def fresh(self, n: int | None = None, seed=None) -> np.ndarray:
        """A fresh draw of the current data set (the training points themselves for ``custom``)."""
        s = self.settings
        if s.data == "custom":
            return self.data
        return toy_data(s.data, n or len(self.data), seed, self.mixture)

    @property
    def has_exact(self) -> bool:
        """Whether the exact denoiser exists (the data is a Gaussian mixture)."""
        return self.mixture is not None

    # ---------------------------------------------------------------- schedule and forward
    def set_schedule(self, name: str | None = None, timesteps: int | None = None):
        """Change the schedule; a new T resets the network (its embedding is of ``t / T``)."""
        old_t = self.settings.timesteps
        self.settings = replace(self.settings, schedule=name or self.settings.schedule,
                                timesteps=timesteps or old_t)
        self._set_diffusion()
        if self.settings.timesteps != old_t:
            self.reset_model()

    def _set_diffusion(self):
        s = self.settings
        self.diffusion = GaussianDiffusion(NoiseSchedule.from_name(s.schedule, s.timesteps))
        self._learned = GaussianDiffusion(self.diffusion.schedule, variance="learned_range")

    def diffusion_for(self, kind: str | None = None) -> GaussianDiffusion:
        """The diffusion denoiser ``kind`` samples and is scored with: the learned-variance one
        for an MLP trained that way (settings ``variance``), else :attr:`diffusion` (fixed_small)."""
        if (kind or self.settings.model) == "mlp" and self.train_state.net.learned_variance:
            return self._learned
        return self.diffusion

    def set_variance(self, variance: str) -> bool:
        """The MLP's variance: ``fixed_small`` (trained with L_simple) or ``learned_range``
        (a 4-output MLP trained with L_hybrid). A change resets the network (True)."""
        if variance == self.settings.variance:
            return False
        self.reset_model(variance)
        return True

    @property
    def timesteps(self) -> int:
        return self.diffusion.num_timesteps

    def abar(self, t: int) -> float:
        """alpha_bar of the paper's step ``t`` (1 at ``t = 0``)."""
        self._check_t(t, lo=0)
        return 1.0 if t == 0 else float(self.diffusion.schedule.alpha_bars[t - 1])

    def forward(self, t: int, seed: int = 0) -> np.ndarray:
        """The cloud at paper step ``t``: ``sqrt(abar) x_0 + sqrt(1 - abar) eps``, float32 ``[N, 2]``
        (one fixed noise per ``seed``, so that scrubbing t moves each point smoothly)."""
        a = self.abar(t)
        eps = np.random.default_rng(seed).standard_normal(self.data.shape)
        return (np.sqrt(a) * self.data + np.sqrt(1 - a) * eps).astype(np.float32)

    def density(self, t: int, xs, ys, bandwidth: float | None = None) -> np.ndarray:
        """log q_t on the grid ``xs`` x ``ys``: ``[len(ys), len(xs)]`` float64. Exact for a mixture;
        otherwise the kernel density estimate of the data (Scott's bandwidth unless given),
        diffused in closed form (a KDE is a mixture)."""
        a = self.abar(t)
        mix = self.mixture
        if mix is None:
            h = bandwidth or data_std(self.data) * len(self.data) ** (-1 / 6)
            mix = GaussianMixture.from_points(self.data, h)
        gx, gy = np.meshgrid(np.asarray(xs, float), np.asarray(ys, float))
        pts = np.stack([gx.ravel(), gy.ravel()], 1)
        return mix.log_prob(pts, a).numpy().reshape(gx.shape)

    def _check_t(self, t: int, lo: int = 1):
        if not lo <= int(t) <= self.timesteps:
            raise InvalidParameter("t", f"must be in {lo}..{self.timesteps}")

    # ---------------------------------------------------------------- the MLP
    def reset_model(self, variance: str | None = None):
        """A fresh network, optimizer and loss history (``variance``: of that kind, see
        :meth:`set_variance`)."""
        if variance is not None:
            self.settings = replace(self.settings, variance=variance)
        s = self.settings
        self.train_state = TrainState.new(s.timesteps, width=s.width, depth=s.depth, lr=s.lr, seed=s.seed,
                                          learned_variance=s.variance == "learned_range")
        self.losses, self.loss_steps = [], []
        self._gen = torch.Generator().manual_seed(s.seed)

    def train(self, max_steps: int | None = None, seconds: float | None = None,
              report_every: int = 10):
        """Train the MLP on the current data (batches drawn from ``self.data`` at every step, so a
        change of data between reports takes effect): a generator of ``TrainMetrics``, endless
        unless ``max_steps`` or ``seconds`` is given."""
        if max_steps is not None and max_steps < 0:
            raise InvalidParameter("train_steps", "must be at least 0")
        g = self._gen

        def batch():
            d = torch.from_numpy(self.data)
            return d[torch.randint(0, d.shape[0], (self.settings.batch,), generator=g)]

        for m in train_steps(self.train_state, self.diffusion_for("mlp"), batch, max_steps=max_steps,
                             seconds=seconds, batch=self.settings.batch, report_every=report_every,
                             generator=g):
            self.losses.append(m.loss)
            self.loss_steps.append(m.step)
            yield m

    @property
    def trained_steps(self) -> int:
        return self.train_state.step

    # ---------------------------------------------------------------- denoisers and sampling
    def denoiser(self, kind: str | None = None):
        """The model ``(x [B, 2], i [B]) -> eps [B, 2]`` of ``kind`` (default: the settings')."""
        kind = kind or self.settings.model
        if kind == "mlp":
            return Sampled(self.train_state.ema)
        if kind == "exact":
            if self.mixture is None:
                raise InvalidParameter("model", f"exact needs a Gaussian mixture (gaussians8 or gmm), "
                                                f"not {self.settings.data}")
            return MixtureDenoiser(self.mixture, self.diffusion)
        if kind == "empirical":
            return MixtureDenoiser(GaussianMixture.from_points(self.data), self.diffusion)
        raise InvalidParameter("model", f"must be one of {', '.join(MODELS)}, not {kind!r}")

    def sample(self, kind: str | None = None, *, n: int | None = None, sampler_kind: str | None = None,
               steps: int | None = None, eta: float = 0.0, seed: int = 0, x_start=None,
               start_t: int | None = None):
        """The core sampler generator over ``n`` particles (``StepOutput`` with ``x_t`` ``[n, 2]``).
        ``steps``: network calls (DDPM: all T unless fewer; DDIM default 50); ``x_start`` ``[B, 2]``
        at paper step ``start_t`` launches particles from anywhere at any t (e.g. a click)."""
        kind_s = sampler_kind or self.settings.sampler
        if kind_s not in SAMPLERS:
            raise InvalidParameter("sampler", f"must be one of {', '.join(SAMPLERS)}")
        if steps is not None and not 1 <= steps <= self.timesteps:
            raise InvalidParameter("steps", f"must be in 1..{self.timesteps}")
        if x_start is not None:
            x_start = torch.as_tensor(np.asarray(x_start, np.float32)).reshape(-1, 2)
            n = x_start.shape[0]
        n = n or len(self.data)
        if not 1 <= n <= MAX_POINTS:
            raise InvalidParameter("n", f"must be in 1..{MAX_POINTS}")
        if start_t is not None:
            self._check_t(start_t)
        model = self.denoiser(kind)
        return sampler(kind_s, model, self.diffusion_for(kind), (n, 2), steps=steps, eta=eta,
                       generator=torch.Generator().manual_seed(seed), x_start=x_start, start_t=start_t)

    def sample_points(self, kind: str | None = None, **kw) -> np.ndarray:
        """:meth:`sample` run to the end: float32 ``[n, 2]``."""
        return run(self.sample(kind, **kw)).numpy().astype(np.float32)

    # ---------------------------------------------------------------- numbers
    def quality(self, samples, *, seed: int = 1) -> Quality:
        """Energy distance of ``samples`` ``[B, 2]`` to one fresh draw of ``M = min(4 B, 20000)``
        points, beside the noise floor (the expected distance of two fresh draws of sizes B and
        M, :func:`energy_floor`) and the Gaussian baseline (B draws of a Gaussian with the data's
        mean and covariance vs the same fresh draw); and the nearest-training-point distances.
        For ``custom`` data (no fresh draws) the training points stand in for the fresh draw."""
        samples = np.asarray(samples, np.float32)
        rng = np.random.default_rng(seed)
        b = len(samples)
        ref = self.fresh(min(4 * b, MAX_POINTS), rng)
        ed = energy_distance(samples, ref)
        base = energy_distance(gaussian_like(self.data, b, rng), ref)
        near = nearest_distances(samples, self.data)
        return Quality(float(ed), float(energy_floor(ref, b, len(ref))), float(base),
                       float(100 * np.median(near) / data_std(self.data)), near)

    def loss_profile(self, t_values, kind: str = "mlp", n: int = 2000, seed: int = 0):
        """Per paper step ``t`` in ``t_values``: the epsilon-MSE per coordinate of ``kind`` on fresh
        data and, for a mixture, the loss floor ``E||eps - eps*||^2 / 2`` (None otherwise).
        Returns ``(mse [len], floor [len] or None)``."""
        for t in t_values:
            self._check_t(t)
        x0 = torch.from_numpy(self.fresh(n, np.random.default_rng(seed)))
        ref = MixtureDenoiser(self.mixture, self.diffusion) if self.mixture is not None else None
        return eps_mse_per_t(self.denoiser(kind), self.diffusion, x0, t_values, reference=ref,
                             generator=torch.Generator().manual_seed(seed))

    # ---------------------------------------------------------------- paths and fields (views)
    def forward_cloud(self, seed: int = 0):
        """A :class:`~.lab2d_paths.ForwardCloud` snapshot (the same points as :meth:`forward`)."""
        from .lab2d_paths import ForwardCloud
        return ForwardCloud(self.data, self.diffusion.schedule.alpha_bars.numpy(), seed)

    def forward_paths(self, k: int = 6, seed: int = 0) -> np.ndarray:
        """``k`` particles' forward chains, float32 ``[T + 1, k, 2]`` (:func:`~.lab2d_paths.forward_paths`)."""
        from .lab2d_paths import forward_paths
        return forward_paths(self.data, self.diffusion, k, seed)

    def reverse_run(self, kind: str | None = None, **kw):
        """``(ReverseRun, items)``: DDPM and DDIM from one x_T (:func:`~.lab2d_paths.reverse_run`)."""
        from .lab2d_paths import reverse_run
        kw.setdefault("n", self.settings.particles)
        return reverse_run(self, kind, **kw)

    def trace(self, xy, t: int, kind: str | None = None, sampler_kind: str = "ddim",
              steps: int | None = None, seed: int = 0) -> np.ndarray:
        """One particle from ``xy`` at paper step ``t`` to 0: float32 ``[L, 2]``."""
        from .lab2d_paths import trace_particle
        return trace_particle(self, xy, t, kind, sampler_kind, steps, seed)

    def field(self, t: int, kind: str | None = None, **kw):
        """The denoiser's field at paper step ``t`` (:func:`~.lab2d_field.field`)."""
        from .lab2d_field import field
        kw.setdefault("what", self.settings.field)
        return field(self, t, kind or self.settings.model, **kw)
