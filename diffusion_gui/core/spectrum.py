"""The radially averaged power spectrum of images (Dieleman 2024, "Diffusion is spectral
autoregression"): natural images' power falls as a power law in spatial frequency, white
Gaussian noise is flat, so noising drowns the high frequencies first and denoising restores
them last.

Images are numpy (or torch) arrays ``[H, W]``, ``[C, H, W]`` or ``[B, C, H, W]`` in ``[-1, 1]``
(any real values work). The power at frequency ``(u, v)`` is ``|FFT(x)|^2 / (H W)`` (so white
noise of variance ``s^2`` has power ``s^2`` at every frequency), averaged over the batch, the
channels and the rings ``k - 1/2 <= |f| H < k + 1/2`` for ``k = 1 .. min(H, W) // 2`` (DC is
left out: it is the mean, not structure). Frequencies are in cycles per pixel, ``k / min(H, W)``,
up to 0.5 (Nyquist).

:class:`ForwardSpectrum` uses that the FFT is linear: ``x_t = sqrt(abar_t) x_0 + sqrt(1 -
abar_t) eps`` has ``|X_t|^2 = abar |X_0|^2 + (1 - abar) |E|^2 + 2 sqrt(abar (1 - abar))
Re(X_0 E*)``, so three ring averages computed once give the spectrum of x_t at any t in
microseconds (the forward panel's slider stays fast).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["radial_bins", "ring_mean", "power_spectrum", "radial_power", "ForwardSpectrum",
           "spectral_slope", "log_binned"]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").float().numpy()
    return np.asarray(x, dtype=np.float64)


def _as_bchw(x) -> np.ndarray:
    a = _np(x)
    if a.ndim == 2:
        return a[None, None]
    if a.ndim == 3:
        return a[None]
    if a.ndim == 4:
        return a
    raise ValueError(f"expected [H, W], [C, H, W] or [B, C, H, W], not shape {a.shape}")


@lru_cache(maxsize=16)
def radial_bins(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For an ``h x w`` FFT: ``(ring, counts, freqs)``: the ring index of every frequency
    (``[h * w]``, 0 for DC and for the corners beyond the last ring), the number of frequencies
    in each ring (``[K + 1]``, ring 0 unused) and each ring's frequency in cycles/pixel
    (``[K]``, ``k / min(h, w)`` for ``k = 1..K``, ``K = min(h, w) // 2``)."""
    n = min(h, w)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    r = np.rint(np.sqrt(fy ** 2 + fx ** 2) * n).astype(np.int64)
    k = n // 2
    r[r > k] = 0
    ring = r.ravel()
    counts = np.bincount(ring, minlength=k + 1).astype(np.float64)
    return ring, counts, np.arange(1, k + 1) / n


def ring_mean(field: np.ndarray) -> np.ndarray:
    """The mean of a real ``[H, W]`` field (e.g. ``|FFT|^2``, in numpy's FFT layout) over each
    ring ``k = 1..K``: ``[K]``."""
    h, w = field.shape
    ring, counts, _ = radial_bins(h, w)
    sums = np.bincount(ring, weights=np.asarray(field, dtype=np.float64).ravel(), minlength=len(counts))
    return sums[1:] / np.maximum(counts[1:], 1)


def power_spectrum(x) -> np.ndarray:
    """``|FFT2(x)|^2 / (H W)`` of ``x`` ``[B, C, H, W]`` (or ``[H, W]``, ``[C, H, W]``),
    averaged over batch and channels: ``[H, W]`` in numpy's FFT layout."""
    a = _as_bchw(x)
    f = np.fft.fft2(a, axes=(-2, -1))
    h, w = a.shape[-2:]
    return (np.abs(f) ** 2).mean(axis=(0, 1)) / (h * w)


def radial_power(x) -> tuple[np.ndarray, np.ndarray]:
    """The radially averaged power spectrum of ``x``: ``(freqs [K], power [K])``, freqs in
    cycles/pixel ``1/min(H, W) .. 0.5``; see the module docstring."""
    a = _as_bchw(x)
    h, w = a.shape[-2:]
    return radial_bins(h, w)[2], ring_mean(power_spectrum(a))


def spectral_slope(freqs: np.ndarray, power: np.ndarray) -> float:
    """The least-squares slope of ``log power`` against ``log freq`` (a power law ``f^slope``;
    natural images are near -2, white noise 0). Non-positive powers are left out."""
    f, p = np.asarray(freqs, float), np.asarray(power, float)
    ok = (f > 0) & (p > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(f[ok]), np.log(p[ok]), 1)[0])


def log_binned(freqs: np.ndarray, counts: np.ndarray, n_bins: int = 48):
    """A function that averages a ring spectrum ``[K]`` into at most ``n_bins`` log-spaced
    frequency bins (each ring weighted by ``counts``, its number of frequencies: ``radial_bins``'
    second array without ring 0), and the bins' centres: ``(bin_fn, centres)``. Fewer, evenly
    spaced points on a log axis: the same curve, cheaper to draw. ``K <= n_bins``: no merging."""
    f = np.asarray(freqs, dtype=np.float64)
    if len(f) <= n_bins:
        return (lambda p: np.asarray(p, dtype=np.float64)), f
    w = np.asarray(counts, dtype=np.float64)
    edges = np.geomspace(f[0], f[-1] * (1 + 1e-9), n_bins + 1)
    idx = np.clip(np.searchsorted(edges, f, side="right") - 1, 0, n_bins - 1)
    remap = np.searchsorted(np.unique(idx), idx)
    wsum = np.bincount(remap, weights=w)
    centres = np.bincount(remap, weights=w * f) / wsum

    def bin_fn(p):
        return np.bincount(remap, weights=w * np.asarray(p, dtype=np.float64)) / wsum

    return bin_fn, centres


class ForwardSpectrum:
    """The spectra of ``x_0``, of ``x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps`` and of the noise
    term ``sqrt(1 - abar) eps`` for any ``abar``, from one FFT of each of ``x_0`` and ``eps``
    (same shape ``[H, W]``, ``[C, H, W]`` or ``[B, C, H, W]``). ``at(abar)`` costs O(K)."""

    def __init__(self, x0, eps):
        a, e = _as_bchw(x0), _as_bchw(eps)
        if a.shape != e.shape:
            raise ValueError(f"x0 {a.shape} and eps {e.shape} differ in shape")
        h, w = a.shape[-2:]
        fa = np.fft.fft2(a, axes=(-2, -1))
        fe = np.fft.fft2(e, axes=(-2, -1))
        n = h * w
        _, counts, self.freqs = radial_bins(h, w)
        self.counts = counts[1:]                  # frequencies in each ring [K]
        self.p_x0 = ring_mean((np.abs(fa) ** 2).mean(axis=(0, 1)) / n)
        self.p_eps = ring_mean((np.abs(fe) ** 2).mean(axis=(0, 1)) / n)
        self.cross = ring_mean((fa * np.conj(fe)).real.mean(axis=(0, 1)) / n)

    def at(self, abar: float) -> dict:
        """``{"x0", "xt", "noise"}`` -> power ``[K]`` at ``abar`` (``abar = 1``: t = 0)."""
        ab = float(np.clip(abar, 0.0, 1.0))
        noise = (1.0 - ab) * self.p_eps
        xt = ab * self.p_x0 + noise + 2.0 * np.sqrt(ab * (1.0 - ab)) * self.cross
        return {"x0": self.p_x0, "xt": np.maximum(xt, 0.0), "noise": noise}

    def crossover(self, abar: float) -> float | None:
        """The lowest frequency (cycles/px) where the noise term's power reaches the signal's
        ``abar |X_0|^2``: below it the image shows through, above it noise wins. None when the
        signal wins everywhere (``abar`` = 1 or so)."""
        ab = float(np.clip(abar, 0.0, 1.0))
        drown = (1.0 - ab) * self.p_eps >= ab * self.p_x0
        idx = np.flatnonzero(drown)
        return float(self.freqs[idx[0]]) if len(idx) else None
