"""Pacing of live frames: showing them may cost the GUI thread only a set share of its time.

Every millisecond the GUI thread spends on a live frame slows the sampler in the worker thread
down: (1) the GUI thread holds the GIL for most of it (its Python and the Qt calls made from
Python, painting included), and the worker needs the GIL between any two torch operations of a
UNet call; (2) where torch's intra-op threads take every core (2 threads on a 2-core laptop), it
also runs on a core an OpenMP thread needs, and the other one waits for it at the next barrier.
Measured with ``benchmarks/reverse_live.py`` (2 cores): 25 live frames a second, about 2 ms of
GUI time each, made sampling 10 % (a core free for the GUI) to 15 % (torch on both cores) slower
than a bare UNet loop; frames paced to 2 % of the GUI thread's time cost about 3 % (sampling at
0.938 of the bare loop's speed against 0.966 with no live frames, 16 runs each), and a 1 % share
measured 0.955 against 0.945 for 2 % (20 runs each, interleaved; numbers 3 times a second). A
frame's GUI work costs the sampler more than its own CPU time. :class:`FramePacer` measures the GUI thread's CPU time
per live frame and lowers the frame rate until the frames take at most ``share`` of the wall
clock (never below ``min_rate``).
"""
from __future__ import annotations

import time
from collections import deque

#: The GUI thread's share of wall-clock time live frames may take during a run (0.01: 10 ms a
#: second, about 6 frames of the reverse panel on a 2-core laptop, more where painting is cheaper).
GUI_SHARE = 0.01


class FramePacer:
    """The frame rate to ask a worker for, from the GUI thread's CPU time per shown frame.

    Call :meth:`start` when a run starts and :meth:`shown` in the GUI thread after each live frame
    has been handled; both return the rate (frames per second) for the worker. The rate is
    ``share / c`` frames per second, where ``c`` is the GUI thread's CPU time per frame over the
    last ``window_s`` (everything the thread did: the frame, its painting, other events), clamped
    to ``[min_rate, max_rate]``. ``share=None``: always ``max_rate``.
    """

    def __init__(self, max_rate: float = 30.0, share: float | None = None, min_rate: float = 5.0,
                 window_s: float = 1.0, clock=time.perf_counter, cpu_clock=time.thread_time):
        if not 0 < min_rate <= max_rate:
            raise ValueError("need 0 < min_rate <= max_rate")
        self.max_rate = float(max_rate)
        self.min_rate = float(min_rate)
        self.share = share
        self.window_s = float(window_s)
        self._clock, self._cpu = clock, cpu_clock
        self._marks: deque = deque()
        self.rate = self.max_rate

    def start(self) -> float:
        """A new run: forget the past, start at ``max_rate``."""
        self._marks.clear()
        self._marks.append((self._clock(), self._cpu()))
        self.rate = self.max_rate
        return self.rate

    def shown(self) -> float:
        """One more live frame was handled; -> the rate for the frames to come."""
        now, cpu = self._clock(), self._cpu()
        marks = self._marks
        marks.append((now, cpu))
        while len(marks) > 3 and now - marks[1][0] >= self.window_s:
            marks.popleft()
        if self.share is None or len(marks) < 3:
            return self.rate
        frames = len(marks) - 1
        cost = (cpu - marks[0][1]) / frames          # GUI CPU seconds per frame interval
        rate = self.share / cost if cost > 0 else self.max_rate
        self.rate = min(self.max_rate, max(self.min_rate, rate))
        return self.rate

    def gui_share(self) -> float:
        """The GUI thread's CPU share over the current window (0 before two frames)."""
        if len(self._marks) < 2:
            return 0.0
        (w0, c0), (w1, c1) = self._marks[0], self._marks[-1]
        return (c1 - c0) / (w1 - w0) if w1 > w0 else 0.0
