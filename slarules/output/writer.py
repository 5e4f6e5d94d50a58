"""One writer for every output of a run: declared first, checked before any work, locked throughout.

A command (batch, diff, Spark's driver, a server) declares every path it will write: its final
outputs (`file`, `log`, the files of a `folder`) and the working files named after them (`work`:
a `.partial`, a checkpoint, a folder of parts). `check` then refuses, before anything is read or
created, an output that is an input or inside an input folder, two outputs on one file, a file
where a folder is needed or the reverse, a place that cannot be written (a read-only folder, a
path under a regular file) and a final output named like a working file. Entering the `Outputs`
takes the lock (`OutputLock`) over the final outputs, so a second run on any of them is refused at
once, naming the holder.

Why only the final outputs are locked: a working file is always a final output's path plus one of
`WORK_SUFFIXES`, none of which ends another, and no final output may end in one. So two runs that
share a working file share the final output it is named after, and that one is locked; a run
leaves two hidden lock files beside its verdicts, not seven.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from ..errors import OutputError
from .lock import OutputLock, command_line

FILE, LOG, FOLDER = "file", "log", "folder"       # replaced whole by a rename; appended to; a folder of files
FINAL, WORK, PLACE = "final", "work", "place"
# What working files are named: a final output's path plus one of these. None ends another (a test
# holds it), so a working file belongs to one final output only. `.tmp` and `.lock` are the
# temporaries and lock files of output/files.py and output/lock.py.
WORK_SUFFIXES = (".partial", ".decisions-partial", ".parts", ".checkpoint.json", ".spark.log", ".tmp", ".lock")
WORK_FOLDERS = (".parts",)          # the working files that are folders: no final output inside one


@dataclass(frozen=True)
class Declared:
    label: str          # how a message names it: "the errors file (--errors)"
    path: Path
    kind: str           # FILE, LOG or FOLDER
    role: str           # FINAL (locked), WORK (named after a final output, removed by the run) or PLACE
                        # (a folder holding final outputs: made if missing, never removed)


def is_uri(path: str | Path) -> bool:
    return "://" in str(path)


def _identity(path: str | Path) -> tuple[str, tuple[int, int] | None]:
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        return real, (st.st_dev, st.st_ino)
    except OSError:
        return real, None


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _nearest_existing(path: Path) -> Path:
    """The path itself if it exists, else its closest ancestor that does (a file, if one is in the way)."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


class Outputs:
    """The outputs of one run. Declare them, then `with outputs:` checks, locks and holds them.

    `inputs` maps a label ("the input") to a path the run reads: no output may be, or be inside,
    or hold one of them.
    """

    def __init__(self, inputs: Mapping[str, str | Path] | None = None, command: str | None = None) -> None:
        self.inputs = dict(inputs or {})
        self.command = command or command_line()
        self.declared: list[Declared] = []
        self._lock: OutputLock | None = None

    # -- declaring -------------------------------------------------------------------------
    def file(self, label: str, path: str | Path) -> Path:
        """A final output written whole beside its name and renamed over it."""
        return self._declare(label, path, FILE, FINAL)

    def log(self, label: str, path: str | Path) -> Path:
        """A final output appended to in place (a decision log): whole records or nothing."""
        return self._declare(label, path, LOG, FINAL)

    def folder(self, label: str, path: str | Path, names: Sequence[str]) -> list[Path]:
        """A folder (made if missing) holding the final outputs `names`, each written whole."""
        folder = self._declare(label, path, FOLDER, PLACE)
        return [self._declare(f"{name} in {label}", folder / name, FILE, FINAL) for name in names]

    def work(self, label: str, owner: str | Path, suffix: str, folder: bool = False) -> Path:
        """A working file named after the final output `owner`, covered by its lock."""
        owner = Path(owner)
        if suffix not in WORK_SUFFIXES or owner not in self.finals:     # a slip in slarules, not in input:
            raise ValueError(f"{owner}{suffix} is not named after a final output by one of WORK_SUFFIXES")
        return self._declare(label, owner.with_name(owner.name + suffix), FOLDER if folder else FILE, WORK)

    def _declare(self, label: str, path: str | Path, kind: str, role: str) -> Path:
        path = Path(path)
        self.declared.append(Declared(label, path, kind, role))
        return path

    @property
    def finals(self) -> list[Path]:
        return [d.path for d in self.declared if d.role == FINAL]

    # -- checking ----------------------------------------------------------------------------
    def check(self) -> None:
        """Raise a located OutputError for the first output that cannot be written; creates nothing."""
        self._refuse_overlaps()
        for d in self.declared:
            if d.role == FINAL:
                self._refuse_working_name(d)
            self._refuse_unwritable(d)

    def _refuse_overlaps(self) -> None:
        seen: list[tuple[str, str, tuple[int, int] | None, bool]] = []      # (label, real path, inode, is input)
        for label, path in self.inputs.items():
            if not is_uri(path):
                real, inode = _identity(path)
                seen.append((label, real, inode, True))
        for d in self.declared:
            real, inode = _identity(d.path)
            for other, other_real, other_inode, is_input in seen:
                if is_input and d.role == PLACE:        # its files are checked: may they be in an input folder?
                    continue
                same = real == other_real or (inode is not None and inode == other_inode)
                inside = is_input and os.path.isdir(other_real) and _under(real, other_real)
                holds = is_input and d.role == WORK and _under(other_real, real)   # removed whole, with the input
                if same or inside or holds:
                    how = "is the same file as" if same else "is inside" if inside else "is a folder holding"
                    raise OutputError(f"{d.label} ({d.path}) {how} {other}; nothing was written",
                                      file=str(d.path), hint=f"give {d.label} a path of its own")
            seen.append((d.label, real, inode, False))

    def _refuse_working_name(self, d: Declared) -> None:
        """A final output is not named like a working file, nor inside a working folder (`.parts`)."""
        path = Path(os.path.abspath(d.path))
        names = [(path.name, WORK_SUFFIXES)] + [(p.name, WORK_FOLDERS) for p in path.parents]
        for name, suffixes in names:
            suffix = next((s for s in suffixes if name.endswith(s)), None)
            if suffix is not None:
                raise OutputError(f"{d.label}: a name ending in `{suffix}` is kept for slarules' working "
                                  "files (another run's could be there); nothing was written", file=str(d.path),
                                  hint="give it another name")

    def _refuse_unwritable(self, d: Declared) -> None:
        path = Path(os.path.abspath(d.path))
        if os.path.lexists(path):
            if d.kind == FOLDER and not path.is_dir():
                raise OutputError(f"{d.label} is a file, and a folder is needed here; nothing was written",
                                  file=str(d.path), hint="give the path of a folder, or of one to be made")
            if d.kind != FOLDER and path.is_dir():
                raise OutputError(f"{d.label} is a folder, and a file is needed here; nothing was written",
                                  file=str(d.path), hint="give the path of a file, or of one to be made")
            if d.kind != FOLDER and path.exists() and not path.is_file():
                raise OutputError(f"{d.label} is not a regular file (a device, pipe or socket), which slarules "
                                  "cannot replace or append to safely; nothing was written", file=str(d.path),
                                  hint="give the path of a regular file")
            if d.kind == LOG and not os.access(path, os.W_OK):
                raise OutputError(f"{d.label} cannot be written (read-only); nothing was written",
                                  file=str(d.path), hint="make it writable, or give another file")
        place = path if d.kind == FOLDER and path.is_dir() else _nearest_existing(path.parent)
        if not place.is_dir():
            raise OutputError(f"{d.label} cannot be made: {place} is a file, not a folder; nothing was written",
                              file=str(d.path), hint="give a path whose folders are folders")
        if not os.access(place, os.W_OK | os.X_OK):
            raise OutputError(f"{d.label} cannot be written: the folder {place} is read-only (or not this "
                              "user's); nothing was written", file=str(d.path),
                              hint="give a folder this user can write to")

    # -- holding ------------------------------------------------------------------------------
    def acquire(self) -> Self:
        """Check, then lock the final outputs (refused at once if another run holds any)."""
        self.check()
        lock = OutputLock(self.finals, self.command)
        lock.acquire()
        self._lock = lock
        self._remove_stale_temporaries()
        return self

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _remove_stale_temporaries(self) -> None:
        """Temporaries a killed run left beside its files (`.NAME.PID.tmp`, output/files.py): nobody
        else can be writing them while this run holds the lock."""
        for final in (d.path for d in self.declared if d.kind != FOLDER):
            try:
                stale: Iterable[Path] = list(final.parent.glob(f".{_glob_escape(final.name)}.*.tmp"))
            except OSError:
                continue
            for tmp in stale:
                try:
                    tmp.unlink()
                except OSError:
                    pass


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
