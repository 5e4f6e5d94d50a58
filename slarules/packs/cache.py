"""A cache of compiled Programs, so `slarules adjudicate` starts without re-reading YAML.

Parsing and validating the packs is most of a cold start (YAML with line
positions, Pydantic pack models, compiling). The compiled Program depends only
on the pack and catalogue bytes, the slarules code (its files' sizes and times, as
for Python's bytecode) and the Python version, so it
is stored under a digest of exactly those and reused while they are unchanged.

It lives where the platform keeps a user's caches (platformdirs: ~/.cache/slarules
or $XDG_CACHE_HOME on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows).
The cache holds pickles, so on POSIX it is written only to a directory owned by
the user and private to them (0700), and a file is loaded only if the user owns
it and nobody else can write it. Windows keeps neither owner nor ACL in `stat`:
there the user's own profile directory, private by its ACL, is what keeps it
theirs. Anything unexpected means "compile again", never an error.
SLARULES_CACHE_DIR moves it; SLARULES_NO_CACHE=1 turns it off.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

from . import types as T
from .vocabulary import BASE_FACTS, FUNCTIONS, FactSpec, Function

FORMAT = b"slarules-program-1"
KEEP = 32            # programs kept; the least recently written go first


def directory() -> Path | None:
    if os.environ.get("SLARULES_NO_CACHE"):
        return None
    given = os.environ.get("SLARULES_CACHE_DIR")
    if given:
        return Path(given)
    from platformdirs import user_cache_path
    return user_cache_path("slarules", appauthor=False)


@functools.lru_cache(maxsize=1)
def _code_digest() -> bytes:
    """slarules' own source files by name, size and modification time, as Python's own bytecode
    cache tells a changed source (reading every file cost a cold start ~2 ms); once per process."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for f in sorted(package.rglob("*.py")):
        st = f.stat()
        h.update(f"{f.relative_to(package).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.digest()


def key(files: Iterable[Path]) -> str:
    """Digest of everything a compiled Program depends on."""
    h = hashlib.sha256(FORMAT)
    h.update(sys.version.encode())
    h.update(_code_digest())
    from ..case.limits import PACK_BYTES
    from ..case.reader import read_file
    for f in files:
        h.update(str(f.name).encode())
        h.update(read_file(f, PACK_BYTES))     # a regular file, bounded: an InputError else
    return h.hexdigest()


# Rebuilders for values that hold functions: stored by name, found again on load.
def _fact_type(name: str) -> T.FactType:
    return T.TYPES[name]


def _enum(values: tuple[str, ...]) -> T.FactType:
    return T.enum_type(values)


def _function(name: str) -> Function:
    return FUNCTIONS[name]


def _base_fact(path: str) -> FactSpec:
    return BASE_FACTS[path]


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, T.FactType):
            if obj.name == "enum":
                return _enum, (obj.values,)
            return _fact_type, (obj.name,)
        if isinstance(obj, Function):
            return _function, (obj.name,)
        if isinstance(obj, FactSpec) and BASE_FACTS.get(obj.path) is obj:
            return _base_fact, (obj.path,)
        return NotImplemented


def dumps(program) -> bytes:
    """A compiled Program (and its catalogue) as bytes; functions and types travel by name."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(program)
    return buf.getvalue()


def stamp() -> bytes:
    """What must match for bytes from `dumps` to load: the format, Python and slarules' code."""
    return hashlib.sha256(FORMAT + sys.version.encode() + _code_digest()).digest()


def _safe(path: Path) -> bool:
    """Ours and writable by nobody else: checked on POSIX; on Windows `stat` cannot tell (see above)."""
    try:
        st = path.stat()
    except OSError:
        return False
    if sys.platform != "win32":
        return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return True


def load(digest: str):
    where = directory()
    if where is None:
        return None
    path = where / f"{digest}.pickle"
    if not (_safe(where) and _safe(path)):
        return None
    try:
        return pickle.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 # a stale or damaged cache is only a cache miss
        return None


def store(digest: str, program) -> None:
    where = directory()
    if where is None:
        return
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _safe(where):
            return
        tmp = where / f".{digest}.{os.getpid()}.tmp"
        tmp.write_bytes(dumps(program))
        os.chmod(tmp, 0o600)
        tmp.replace(where / f"{digest}.pickle")
        entries = sorted(where.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 # read-only home, full disk, unpicklable extension: just no cache
        return
