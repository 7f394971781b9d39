"""Progress of a long headless command on stderr."""
from __future__ import annotations

import sys

# ---------------------------------------------------------------- progress
#: seconds between two progress lines when stderr is not a terminal (a log, a pipe, CI)
LOG_INTERVAL_S = 30.0


class _Progress:
    """Progress of a long command on stderr: a tqdm bar on a terminal; elsewhere (a log file,
    a pipe) a plain line every :data:`LOG_INTERVAL_S` seconds, so that a redirected run still
    says it is alive. ``set(done, total)``; a context manager."""

    def __init__(self, what: str, unit: str, total: int | None = None, stream=None):
        import time
        self.what, self.unit, self.total, self.done = what, unit, total, 0
        self.stream = stream or sys.stderr
        self.t0 = self.last = time.monotonic()
        self.bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit=unit, dynamic_ncols=True, file=self.stream)

    def set(self, done: int, total: int | None = None):
        import time
        self.done, self.total = int(done), self.total if total is None else int(total)
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.n = self.done
            self.bar.refresh()
            return
        now = time.monotonic()
        if now - self.last >= LOG_INTERVAL_S:
            self.last = now
            print(self.line(now - self.t0), file=self.stream, flush=True)

    def line(self, elapsed: float) -> str:
        from tqdm import tqdm
        fmt = tqdm.format_interval
        if not self.total:
            return f"{self.what}: {self.done} {self.unit}, {fmt(elapsed)} elapsed"
        left = elapsed * (self.total - self.done) / self.done if self.done else float("nan")
        eta = fmt(left) if left == left else "?"
        return (f"{self.what}: {self.done}/{self.total} {self.unit} "
                f"({100 * self.done / self.total:.0f} %), {fmt(elapsed)} elapsed, about {eta} left")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
