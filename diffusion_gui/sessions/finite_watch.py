"""The NaN / infinity watch over a run's steps (the Reverse panel's run stops on the first one).

Each step's ``x_t`` and ``x0_pred`` are summed in float64 (NaN and infinity survive a sum). On the
CPU the sum is read at once, so the error names the very step. On a GPU, reading a number back
waits for the device to finish everything queued: one wait per step keeps the GPU idle while the
CPU queues the next step. There the sums are added up on the device and read every
:data:`DEVICE_EVERY` steps, and whenever the caller copies a step to the CPU anyway (a recorded or
shown frame: :meth:`FiniteWatch.check`); the error then names the steps between two reads.
"""
from __future__ import annotations

import math

from ..errors import NonFiniteError

__all__ = ["FiniteWatch", "DEVICE_EVERY"]

#: off the CPU: steps between two reads of the accumulated sum
DEVICE_EVERY = 16


class FiniteWatch:
    """``observe(so)`` for every :class:`~diffusion_gui.core.StepOutput` of a run, in order;
    raises :class:`~diffusion_gui.errors.NonFiniteError` (one user message). ``every``: steps
    between reads, ``None`` for 1 on the CPU and :data:`DEVICE_EVERY` elsewhere."""

    def __init__(self, every: int | None = None):
        self.every = every
        self._sum = None            # the device-side sum of the unread steps
        self._first = None          # (t, step) of the first unread step
        self._last = None           # (t, step, num_steps) of the latest one
        self._unread = 0

    def observe(self, so):
        import torch
        s = so.x_t.sum(dtype=torch.float64) + so.x0_pred.sum(dtype=torch.float64)
        self._sum = s if self._sum is None else self._sum + s
        if self._first is None:
            self._first = (so.t, so.step)
        self._last = (so.t, so.step, so.num_steps)
        self._unread += 1
        every = self.every or (1 if so.x_t.device.type == "cpu" else DEVICE_EVERY)
        if self._unread >= every or so.t == 0:
            self.check()

    def check(self):
        """Read the accumulated sum now (a no-op when every step was read)."""
        if self._sum is None:
            return
        ok = math.isfinite(float(self._sum))
        first, last = self._first, self._last
        self._sum, self._first, self._unread = None, None, 0
        if ok:
            return
        t, step, n = last
        a, b = min(first[1] + 1, n), min(step + 1, n)      # the t = 0 frame is the last call's
        where = (f"at t = {t} (step {b} of {n})" if first[1] == step else
                 f"between t = {first[0]} and t = {t} (steps {a}-{b} of {n})")
        raise NonFiniteError(f"NaN or infinity appeared {where}; the run was stopped. "
                             "Try clipping x₀, another sampler, or check the model.")
