"""A one-line progress bar with rate and ETA, on a terminal only: tqdm's.

tqdm, not our own line: it measures the terminal at each update (`dynamic_ncols`),
so the line never wraps and the ETA is never cut (ours was 83 characters, one new
line per update on an 80-column terminal), and it throttles itself. It is imported
only when a bar is shown, so no cold start and no piped run pays for it; when
stderr is piped or redirected the batch stays quiet (logs stay clean).
"""
from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from tqdm import tqdm

# The ETA first, so a narrow terminal cuts the row counts rather than it.
BAR_FORMAT = "{percentage:5.1f}%|{bar}| ETA {remaining}{postfix}"


class Progress:
    def __init__(self, enabled: bool, start_rows: int = 0, stream: IO[str] | None = None, every: float = 0.2) -> None:
        self.enabled = enabled
        self.every = every              # seconds between redraws at most: five a second costs nothing measurable
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.start_rows = start_rows
        self.bar: tqdm[NoReturn] | None = None      # made at the first update

    def update(self, rows: int, fraction: float) -> None:
        """`rows` done so far (a resumed run's included) and the `fraction` of the input behind them."""
        if not self.enabled:
            return
        percent = min(max(fraction, 0.0), 1.0) * 100
        if self.bar is None:
            from tqdm import tqdm
            # `initial`: a resumed run starts part-way, and its ETA is measured from here.
            self.bar = tqdm(total=100, initial=percent, file=self.stream, dynamic_ncols=True, mininterval=self.every,
                            bar_format=BAR_FORMAT, ascii=" #", leave=True)
        rate = (rows - self.start_rows) / max(time.monotonic() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{rows:,} rows, {rate:,.0f}/s", refresh=False)
        self.bar.update(percent - self.bar.n)
        if percent >= 100:
            self.bar.refresh()      # the last update is always shown, however soon it comes

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
