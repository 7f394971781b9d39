"""Pure torch + numpy maths of DDPM. Never imports Qt or the GUI."""
from .diffusion import GaussianDiffusion
from .sampling import StepOutput, ddim_sample, ddpm_sample, run, sampler, strided_indices
from .schedule import SCHEDULE_NAMES, NoiseSchedule, extract

__all__ = ["NoiseSchedule", "GaussianDiffusion", "StepOutput", "ddpm_sample", "ddim_sample",
           "sampler", "run", "strided_indices", "extract", "SCHEDULE_NAMES"]
