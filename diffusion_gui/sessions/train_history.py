"""The Train panel's live figures: the loss of every step (:class:`LossHistory`, raw and
smoothed, in :class:`Growing` arrays) and the training rate over recent steps (:class:`RateMeter`,
from which the ETA follows). Qt-free; used by :mod:`diffusion_gui.sessions.training`."""
from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["SMOOTH_BETA", "RATE_WINDOW", "Growing", "LossHistory", "RateMeter"]

SMOOTH_BETA = 0.98       # smoothing of the loss curve (geometric, ~50 steps)
RATE_WINDOW = 50         # steps: the live rate and the ETA are measured over this many


class Growing:
    """An append-only array with amortised growth (the loss curves)."""

    def __init__(self, dtype=np.float64):
        self.a = np.empty(1024, dtype=dtype)
        self.n = 0

    def extend(self, values):
        values = np.asarray(values, dtype=self.a.dtype)
        need = self.n + len(values)
        if need > len(self.a):
            b = np.empty(max(need, 2 * len(self.a)), dtype=self.a.dtype)
            b[:self.n] = self.a[:self.n]
            self.a = b
        self.a[self.n:need] = values
        self.n = need

    @property
    def data(self) -> np.ndarray:
        return self.a[:self.n]

    def clear(self):
        self.n = 0


class LossHistory:
    """The loss of every step: ``steps`` (int64), ``raw`` and ``smooth``, a bias-corrected EMA
    of the log loss (a geometric mean over ~50 steps, :data:`SMOOTH_BETA`)."""

    def __init__(self):
        self.steps = Growing(np.int64)
        self.raw = Growing()
        self.smooth = Growing()
        self._s, self._n = 0.0, 0

    def clear(self):
        for g in (self.steps, self.raw, self.smooth):
            g.clear()
        self._s, self._n = 0.0, 0

    def extend(self, steps, losses):
        logs = np.log(np.maximum(losses, 1e-12))
        out = np.empty_like(logs)
        s, n = self._s, self._n
        for k, v in enumerate(logs):
            s = SMOOTH_BETA * s + (1 - SMOOTH_BETA) * v
            n += 1
            out[k] = math.exp(s / (1 - SMOOTH_BETA ** n))
        self._s, self._n = s, n
        self.steps.extend(steps)
        self.raw.extend(losses)
        self.smooth.extend(out)

    @property
    def last_smoothed(self) -> float | None:
        return float(self.smooth.data[-1]) if self.smooth.n else None


class RateMeter:
    """Steps per second over the last ``window`` steps (a moving window, as tqdm smooths its
    rate), from ``(step, seconds)`` marks of every step; the ETA follows from it. A pause is
    no training time: :meth:`restart` after one."""

    def __init__(self, window: int = RATE_WINDOW):
        self.window = int(window)
        self._marks: deque = deque()

    def restart(self):
        self._marks.clear()

    def add(self, steps, seconds):
        for step, t in zip(steps, seconds):
            if self._marks and step <= self._marks[-1][0]:
                continue
            self._marks.append((int(step), float(t)))
            while len(self._marks) > 2 and self._marks[-1][0] - self._marks[1][0] >= self.window:
                self._marks.popleft()

    def rate(self) -> float | None:
        """Steps per second over the window; None before two steps were marked."""
        if len(self._marks) < 2:
            return None
        (s0, t0), (s1, t1) = self._marks[0], self._marks[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None

    def eta(self, step: int, total: int) -> float | None:
        """Seconds left for ``total - step`` steps at :meth:`rate`; None while unknown."""
        r = self.rate()
        return max(total - step, 0) / r if r else None
