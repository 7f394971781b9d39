"""The names the core accepts, torch-free, for the CLI's --help and the GUI's menus at start-up."""

#: beta schedules of :meth:`diffusion_gui.core.NoiseSchedule.from_name`
SCHEDULE_NAMES = ("linear", "scaled_linear", "quadratic", "cosine", "sigmoid")
#: reverse samplers of :func:`diffusion_gui.core.sampler`
SAMPLERS = ("ddpm", "ddim")
#: fixed reverse variances of :class:`diffusion_gui.core.GaussianDiffusion`
VARIANCES = ("fixed_small", "fixed_large")
#: where DDIM takes eps after x_0 is clipped: re-derived from the clipped x_0, or the network's
CLIP_EPS = ("clipped", "raw")
