"""A decision log file: records appended whole, under a lock, each decision once; and read back checked.

Every writer of a log goes through here: `Engine.adjudicate(case, log=DecisionLog(path))`,
`adjudicate --decision-log`, `slarules batch` and Spark's driver (`append_new`, under their run's
lock), the server. So the promises are kept once:

- A `DecisionLog` holds the log's `OutputLock` from `open()` (or its first record) to `close()`:
  a second writer process is refused at once, naming the holder.
- An append is whole lines through `append_whole` (`append_to` on the descriptor a `DecisionLog`
  keeps open from its first append to `close()`): on a full disk, an I/O error or an interrupt
  the file is cut back to the size it had, never flushed again first, so no torn record is left
  for the next one to be glued onto.
- A decision already in the log (the same id: a retried request, a batch run again) is not
  written again, so a log holds each decision once and `replay` can treat a repeat as an edit.

Reading needs no lock: records are only ever appended, each whole, so a reader sees the log as it
was between two appends. `read_log` checks every record (shape, seal, id, duplicates) and reports
every problem at its line (up to MAX_PROBLEMS) before anything is replayed.
"""
from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ..case.limits import DEFAULT as DEFAULT_LIMITS, raise_hint
from ..case.reader import bounded_lines, open_file, size_text
from ..errors import InputError, OutputError
from ..text_boundary import check_parsed
from .decision_records import (
    EDITED,
    RECORD_KEYS,
    SEAL,
    UNSEALED,
    case_document,
    line_id,
    logged_at,
    problem,
    record_line,
)
from .files import append_to, append_whole, open_append, sync_file, writing
from .lock import OutputLock, command_line

_BLOCK = 1 << 20        # lines are appended in groups of about this many bytes, each group whole lines
MAX_PROBLEMS = 20       # a log edited throughout is reported by its first problems, not all of them


def _not_a_log(path: Path, st: os.stat_result) -> OutputError | None:
    if stat.S_ISREG(st.st_mode):
        return None
    kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
    return OutputError(f"is {kind}, expected a decision log file", file=str(path),
                       hint="a decision log is a file of JSON lines; nothing was written")


def logged_ids(path: str | Path) -> set[str]:
    """The ids of the decisions a log holds (none if it does not exist yet), for a writer to skip.

    A log that ends in part of a line is refused: appending would glue a record onto it. What it
    holds is synced first: a writer takes these decisions as logged, and writes (and syncs) nothing
    for them again (files.append_to), while a writer killed between its write and its fsync may
    have left them only in the page cache.
    """
    path = Path(path)
    ids: set[str] = set()
    last, size = b"\n", 0
    try:
        bad = _not_a_log(path, os.stat(path))       # a FIFO or a device is refused before it is opened
        if bad is not None:
            raise bad
        with open(path, "rb") as f:
            for line in f:
                last, size = line, size + len(line)
                found = line_id(line)
                if found is not None:
                    ids.add(found)
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise OutputError(f"cannot read the decision log: {exc.strerror or exc}", file=str(path),
                          hint="nothing was written") from None
    if not last.endswith(b"\n"):
        whole = size - len(last)
        raise OutputError("the decision log ends in part of a record (no newline after its last line, left by "
                          "a crash or a full disk under an older slarules)", file=str(path),
                          hint=f"cut it back to its last whole record (`truncate -s {whole} {path}`), then log "
                          "again; nothing was written")
    if ids:
        with writing(path, kept="nothing was written"):
            sync_file(path)
    return ids


def _append(path: Path, records: Iterable[tuple[str | None, bytes]], ids: set[str], fd: int | None = None) -> int:
    """Append the records whose id is not in `ids` (nor repeated among them), whole or not at all.

    `ids` gains the new ids only once they are on disk; returns how many records were appended.
    `fd`: the log's descriptor held open by its writer (open_append), else the file is opened here.
    """
    pending: set[str] = set()
    count = 0

    def blocks() -> Iterator[bytes]:
        nonlocal count
        block: list[bytes] = []
        size = 0
        for ident, line in records:
            if ident is not None:
                if ident in ids or ident in pending:
                    continue
                pending.add(ident)
            block.append(line)
            size += len(line)
            count += 1
            if size >= _BLOCK:
                yield b"".join(block)
                block, size = [], 0
        if block:
            yield b"".join(block)

    if fd is None:
        _make_folder(path)
        append_whole(path, blocks())
    else:
        append_to(fd, path, blocks())
    ids |= pending
    return count


def _make_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the decision log's folder: {exc.strerror or exc}", file=str(path),
                          hint="nothing was written") from None


def append_new(path: str | Path, records: str | Path, then: str = "") -> int:
    """Append the records of the file `records` (a batch's, in input order) that `path` does not hold yet.

    For writers that already hold the log's lock for their whole run (`slarules batch`, Spark's
    driver); on any failure the log is cut back to what it was and the error says so, then `then`
    (what the caller kept and how to finish). Returns how many were appended.
    """
    path = Path(path)

    def lines() -> Iterator[tuple[str | None, bytes]]:
        with open(records, "rb") as f:
            for line in f:
                yield line_id(line), line
    try:
        return _append(path, lines(), logged_ids(path))
    except OutputError as exc:
        if then:
            exc.hint = f"{exc.hint}; {then}" if exc.hint else then
        raise


class DecisionLog:
    """An append-only decision log held by this process: `with DecisionLog(path) as log:`, or
    `open()`/`close()`; a log not opened is opened by its first record and held until `close()`.

    `record` writes one whole line per decision (thread-safe) and skips a decision already logged.
    `clock` gives the instant a record states as `logged_at` (default: the wall clock).
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] | None = None,
                 command: str | None = None) -> None:
        self.path = Path(path)
        self._clock = clock
        self._command = command
        self._guard = threading.RLock()
        self._lock: OutputLock | None = None
        self._ids: set[str] = set()
        self._fd: int | None = None                 # opened by the first append, kept until close()
        self._file: tuple[int, int] = (0, 0)        # (device, inode) that descriptor writes

    @property
    def closed(self) -> bool:
        return self._lock is None

    def open(self) -> Self:
        """Lock the log (a second writer is refused at once, naming this one) and read the ids it holds."""
        with self._guard:
            if self._lock is None:
                lock = OutputLock([self.path], self._command or command_line()).acquire()
                try:
                    self._ids = logged_ids(self.path)
                except BaseException:
                    lock.release()
                    raise
                self._lock = lock
        return self

    def close(self) -> None:
        with self._guard:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None
                self._ids = set()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def record(self, case: Any, verdict: Any, lang: str = "zh") -> str:
        """Log one decision (`verdict` a Verdict or its compact JSON, in `lang`); returns its id."""
        text = verdict if isinstance(verdict, (str, bytes)) else verdict.to_json(indent=None)
        at = logged_at(self._clock() if self._clock is not None else None)
        ident, line = record_line(case_document(case), text, lang, at)
        self.extend([(ident, line)])
        return ident

    def extend(self, records: Iterable[tuple[str, bytes]]) -> int:
        """Append sealed records ((id, line) pairs) not yet in the log, all whole or none; returns how many."""
        with self._guard:
            self.open()
            return _append(self.path, records, self._ids, self._descriptor())

    def _descriptor(self) -> int:
        """The log's descriptor, kept open between appends (a server appends a group every few
        hundred µs); opened again if the path no longer names the file it writes (moved or removed
        while held), so records always go where the path points, as when each append opened it."""
        try:
            st = os.stat(self.path)
            same = (st.st_dev, st.st_ino) == self._file
        except FileNotFoundError:
            same = False
        except OSError as exc:
            raise OutputError(f"cannot open the decision log: {exc.strerror or exc}", file=str(self.path),
                              hint="nothing was written") from None
        if self._fd is not None and same:
            return self._fd
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        _make_folder(self.path)
        try:
            fd = open_append(self.path)
        except OSError as exc:
            raise OutputError(f"cannot open the decision log: {exc.strerror or exc}", file=str(self.path),
                              hint="nothing was written") from None
        st = os.fstat(fd)
        self._fd, self._file = fd, (st.st_dev, st.st_ino)
        return fd


# ---- reading a log back ----------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    line: int
    id: str
    waybill: str
    as_of: str
    lang: str
    packs: list[dict[str, str]]
    verdict_digest: str
    outcome_digest: str
    case: dict[str, Any]
    logged_at: str


class LogError(InputError):
    """A decision log that cannot be replayed; `problems` holds each one found, at its line."""

    def __init__(self, problems: list[InputError]) -> None:
        first = problems[0]
        super().__init__(first.message, file=first.file, line=first.line, hint=first.hint)
        self.problems = problems


_EDITED_HINT = ("slarules only appends to a log, each decision once: this line was changed or added by "
                "something else; compare the log with a copy kept elsewhere")
REPEATED = "a repeated record (a log holds each decision once)"


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return doc


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    if not raw.endswith(b"\n"):
        return None, ("not a whole record: the log ends without a newline (an append under way, or one "
                      "cut off by a crash)")
    try:
        text = raw.decode("utf-8")        # strict: json.loads(bytes) would let encoded surrogates through
        doc = json.loads(text, object_pairs_hook=_object_pairs)
        check_parsed(text, doc, error=InputError)       # the text boundary: no lone surrogate
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"invalid JSON ({exc})"
    except InputError as exc:
        return None, f"{exc.message}, in `{exc.field}`"
    what = problem(doc)
    return (doc, None) if what is None else (None, what)


def _located(what: str, name: str, number: int) -> InputError:
    """One problem of a log as its error: what it is, where, and what to do about it."""
    if what.startswith(UNSEALED):
        hint = f"seal it into a new log: `slarules replay {name} --upgrade NEW` checks each record first"
    elif what.startswith((EDITED, REPEATED)):
        hint = _EDITED_HINT
    else:
        what, hint = f"not a decision record: {what}", _EDITED_HINT
    return InputError(what, file=name, line=number, hint=hint)


def line_bytes(case_bytes: int) -> int:
    """The longest record read back: its case as given, written again as JSON (spaces after `,` and
    `:`, YAML's plain text quoted: at most about twice its bytes), and the rest of the record."""
    return 2 * case_bytes + (64 << 10)


def log_lines(path: str | Path, case_bytes: int) -> Iterator[tuple[int, bytes | InputError]]:
    """(line number, line) of a log read back, a regular file (case/reader.py); a line over
    `line_bytes(case_bytes)` comes as its InputError, read no further."""
    name, longest = str(path), line_bytes(case_bytes)
    try:
        f = open_file(path)
    except InputError as exc:
        raise InputError(f"cannot read the decision log: {exc.message}", file=name, hint=exc.hint) from None
    with f:
        for number, raw in bounded_lines(f, longest):
            yield number, raw if raw is not None else InputError(
                f"the line is longer than {size_text(longest)}, more than a decision record of a case of at most "
                f"{size_text(case_bytes)}", file=name, line=number, hint=raise_hint("case_bytes"))


def read_log(path: str | Path, case_bytes: int = DEFAULT_LIMITS.case_bytes) -> Iterator[Decision]:
    """Every record of a log in order, each checked; any problem raises LogError at the end.

    Records are yielded until the first problem; the rest of the log is then only read for more
    problems (up to MAX_PROBLEMS, or an unsealed record: an old log is told once), so a replay
    never reports on a log it cannot vouch for. The log must be a regular file (case/reader.py),
    read a line at a time, each line at most `line_bytes(case_bytes)`: a longer one is a problem
    at its line, read no further.
    """
    name = str(path)
    problems: list[InputError] = []
    seen: dict[str, tuple[int, int]] = {}
    try:
        for number, raw in log_lines(path, case_bytes):
            if isinstance(raw, InputError):
                problems.append(raw)
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
            if not raw.strip():
                continue
            doc, what = _parse(raw)
            if doc is not None:
                first = seen.get(doc["id"])
                if first is None:
                    seen[doc["id"]] = (number, hash(doc[SEAL]))
                elif first[1] == hash(doc[SEAL]):
                    what = f"{REPEATED}: this record is line {first[0]}'s again"
                else:
                    what = f"{REPEATED}: decision {doc['id']} again, first logged at line {first[0]}"
            if what is not None:
                problems.append(_located(what, name, number))
                if what.startswith(UNSEALED) or len(problems) >= MAX_PROBLEMS:
                    break
                continue
            if not problems and doc is not None:
                yield Decision(number, doc["id"], doc["waybill"], doc["as_of"], doc["lang"], doc["packs"],
                               doc["verdict_digest"], doc["outcome_digest"], doc["case"], doc["logged_at"])
    except OSError as exc:
        raise InputError(f"cannot read the decision log: {exc.strerror or exc}", file=name) from None
    if len(problems) >= MAX_PROBLEMS:
        problems[-1].hint = f"{problems[-1].hint}; stopped at {MAX_PROBLEMS} problems, there may be more"
    if problems:
        raise LogError(problems)


__all__ = ["RECORD_KEYS", "Decision", "DecisionLog", "LogError", "append_new", "line_bytes", "logged_ids", "read_log"]
