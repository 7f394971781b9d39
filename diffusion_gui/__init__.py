"""diffusion-gui: a desktop explorer for denoising diffusion probabilistic models (DDPM)."""
__version__ = "0.1.0"
