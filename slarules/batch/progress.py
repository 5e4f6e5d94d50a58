"""A one-line progress bar with rate and ETA, on a terminal only.

Written to stderr at most five times a second, so it costs nothing measurable;
when stderr is piped or redirected the batch stays quiet (logs stay clean).
"""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, enabled: bool, start_rows: int = 0, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.start_rows = start_rows
        self.last = 0.0
        self.shown = False
        self.first: tuple[float, float] | None = None

    def update(self, rows: int, fraction: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        fraction = min(max(fraction, 0.0), 1.0)
        if self.first is None:            # a resumed run starts part-way: measure from here
            self.first = (now, fraction)
        if now - self.last < 0.2 and fraction < 1.0:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = (rows - self.start_rows) / elapsed
        t0, f0 = self.first
        speed = (fraction - f0) / (now - t0) if now > t0 else 0.0
        eta = _clock((1 - fraction) / speed) if 0 < fraction < 1 and speed > 0 else "--:--"
        bar = "#" * int(fraction * 30)
        self.stream.write(f"\r[{bar:<30}] {fraction:6.1%} {rows:>12,} rows {rate:>10,.0f}/s ETA {eta} ")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
