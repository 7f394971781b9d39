"""The step-by-step chain of the Forward panel in the background: one
:class:`~diffusion_gui.gui.workers.JobSlot`, the cache it fills and the progress bar.

The chain (T sequential ``q_step`` calls, ~10 s at 512 px on a laptop core) runs once per image /
seed / schedule / T / size; ``start_soon`` waits ``DELAY_MS`` so that a burst of changes (typing
a seed, dragging T) runs one chain. Frames appear in the cache as they are computed.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QTimer

from ....sessions.forward import ChainCache, ForwardMath, chain_generator
from ...workers import JobSlot

DELAY_MS = 250


class ChainRunner:
    """``cache``: the chain being computed or done (None: none yet). ``start(m, schedule)``
    retires the previous run (its callbacks are detached: nothing stale arrives). Callbacks run
    in the GUI thread: ``on_progress(t)``, ``on_ready(cache)``, ``on_failed(message)``, and
    ``show_memory(cache or None)`` when a chain starts or is dropped. The bar's value is set by
    :meth:`show_done`, from the same reading of ``cache.done`` as the view beside it."""

    def __init__(self, parent: QObject, progress_bar, *, on_progress: Callable[[int], None],
                 on_ready: Callable[[ChainCache], None], on_failed: Callable[[str], None],
                 start: Callable[[], None],
                 show_memory: Callable[[ChainCache | None], None] = lambda c: None):
        self.cache: ChainCache | None = None
        self.slot = JobSlot()
        self.bar = progress_bar
        self._on_progress, self._on_ready, self._on_failed = on_progress, on_ready, on_failed
        self._show_memory = show_memory
        self.timer = QTimer(parent, singleShot=True, interval=DELAY_MS)
        self.timer.timeout.connect(start)

    def start_soon(self):
        """Forget the current chain and start a new one after ``DELAY_MS``."""
        self.cancel()
        self.timer.start()

    def start(self, m: ForwardMath, schedule, name: str):
        """Run the chain of ``m``'s x_0 and seed under ``schedule`` (called ``name``) now."""
        self.cancel()
        cache = ChainCache((id(m), m.seed, name, schedule.timesteps), m.shape_chw, schedule.timesteps)
        self.cache = cache
        self.bar.setRange(0, cache.T)
        self.bar.setValue(0)
        self.bar.setVisible(True)
        self._show_memory(cache)
        seed, x0, idx = m.seed, m.x0_chw, m.sample_idx

        def progress(t):
            self._on_progress(t)

        def finished(_):
            self.bar.setVisible(False)
            self._on_ready(cache)

        def failed(msg):
            self.bar.setVisible(False)
            self._on_failed(msg)

        self.slot.start(lambda: chain_generator(cache, x0, schedule, seed, idx),
                        on_progress=progress, on_finished=finished, on_failed=failed, max_rate=20)

    def cancel(self):
        """Stop the pending start and the running chain (without waiting); no cache."""
        self.timer.stop()
        self.slot.retire()
        self.cache = None
        self.bar.setVisible(False)
        self._show_memory(None)

    def show_done(self, done: int):
        """Show ``done`` (the highest t computed, as the view beside the bar shows it)."""
        if done >= 0:
            self.bar.setValue(done)

    def is_done(self) -> bool:
        return self.cache is not None and self.cache.is_complete()

    def wait(self, start: Callable[[], None], timeout_ms: int = 60000) -> bool:
        """Block until the chain is computed (``start()`` first if it is pending)."""
        if self.timer.isActive():
            self.timer.stop()
            start()
        job = self.slot.job
        return job is None or job.thread.wait(timeout_ms)

    def shutdown(self):
        self.timer.stop()
        self.slot.shutdown()
