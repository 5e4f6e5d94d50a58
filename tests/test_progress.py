"""The batch's progress bar: every update fits the terminal, ETA included; off a terminal, none, and no tqdm."""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from slarules.batch.progress import Progress

from conftest import EXAMPLES, ROOT

termios = pytest.importorskip("termios")     # a pseudo-terminal of a given width: POSIX
fcntl = pytest.importorskip("fcntl")


def _on_terminal(columns: int, updates: list[tuple[int, float]], start_rows: int = 0) -> list[str]:
    """What Progress writes on a `columns`-wide terminal, as the lines a user would see redrawn."""
    main, side = os.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    with os.fdopen(side, "w", encoding="utf-8") as stream:
        progress = Progress(True, start_rows=start_rows, stream=stream, every=0)    # every update drawn
        for rows, fraction in updates:
            progress.update(rows, fraction)
        progress.close()
    out = b""
    while chunk := _read(main):
        out += chunk
    os.close(main)
    text = out.decode("utf-8").replace("\r\n", "\n")
    return [line for part in text.split("\n") for line in part.split("\r") if line]


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:         # the other side is closed: all was read
        return b""


@pytest.mark.parametrize("columns", [80, 60, 132])
def test_every_update_fits_the_terminal_with_its_eta(columns):
    """The old bar was 83 characters: on 80 columns each update wrapped onto a new line and lost its ETA."""
    updates = [(12_345_678 * i, i / 10) for i in range(1, 11)]
    lines = _on_terminal(columns, updates)
    assert len(lines) >= len(updates)
    assert all(len(line) < columns for line in lines), lines
    assert all(" ETA " in line for line in lines), lines
    assert "123,456,780 rows" in lines[-1] and lines[-1].startswith("100.0%")


def test_a_resumed_run_counts_from_where_it_resumed():
    lines = _on_terminal(80, [(5_000, 0.5), (6_000, 0.6)], start_rows=4_000)
    assert lines[0].startswith(" 50.0%") and "6,000 rows" in lines[-1]


def test_no_bar_off_a_terminal_and_no_tqdm_imported(tmp_path):
    """Piped stderr: no bar; and neither a single case nor a quiet batch pays for importing tqdm."""
    source = ROOT / "examples" / "batch" / "cases.jsonl"
    code = ("import sys; from slarules.cli import main; "
            f"main(['adjudicate', {str(EXAMPLES / 'tb1-late.yaml')!r}]); "
            f"main(['batch', {str(source)!r}, '-o', sys.argv[1], '--as-of', '2026-06-01T00:00:00+08:00']); "
            "sys.stderr.write('tqdm imported' if 'tqdm' in sys.modules else 'no tqdm')")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "v.jsonl")], capture_output=True, text=True,
                          check=True)
    assert done.stderr.endswith("no tqdm") and "\r" not in done.stderr and "rows" in done.stderr
