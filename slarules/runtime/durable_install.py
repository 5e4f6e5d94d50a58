"""What to say when durable_rules does not import, and the build flag that makes it work on Python 3.13.

durable-rules 2.0.28, its last release, calls PyEval_CallObject, which Python 3.13
removed: built as it is, its C extension fails to import ("undefined symbol") or,
with GCC >= 14 or clang >= 16, to build. Built with BUILD_FLAGS the call becomes
PyObject_CallObject, its replacement, on 3.11 to 3.13 alike. pip keeps a wheel it
built in its cache and reuses it for every later install, flags or not, so a wheel
once built without the flag must leave the cache before the fix can take.
Imported only when durable_rules failed to import.
"""
from __future__ import annotations

import sys

from ..errors import InstallError

BUILD_FLAGS = "CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject"    # CFLAGS would not do: its setup.py sets them
NEEDED_BY = "adjudicate, explain, check, test and replay need it; batch and diff run without it"


def cannot_import(exc: ImportError) -> InstallError:
    """The ImportError of durable_rules as one paragraph that says the command fixing it."""
    pip = f"{sys.executable} -m pip"
    requirement = _requirement()
    if "PyEval_CallObject" in str(exc):      # "undefined symbol: PyEval_CallObject": built without the flag
        return InstallError(
            f"durable_rules cannot be imported: its C extension was built for Python "
            f"{sys.version_info.major}.{sys.version_info.minor} without the fix for PyEval_CallObject, which "
            f"Python 3.13 removed (most likely a wheel pip kept in its cache); {NEEDED_BY}",
            hint=f"rebuild it: {pip} cache remove durable_rules; {BUILD_FLAGS} {pip} install --force-reinstall "
                 f"--no-deps '{requirement}'")
    return InstallError(f"durable_rules cannot be imported ({type(exc).__name__}: {exc}); {NEEDED_BY}",
                        hint=f"install it, with a C compiler: {BUILD_FLAGS} {pip} install '{requirement}'")


def _requirement() -> str:
    """durable-rules as slarules' metadata pins it, so the fix installs the version slarules was tested with."""
    from importlib import metadata
    try:
        wanted = metadata.requires("slarules") or []
    except metadata.PackageNotFoundError:       # run from a source tree that was never installed
        wanted = []
    return next((r.split(";")[0].strip() for r in wanted if r.replace("_", "-").startswith("durable-rules")),
                "durable-rules")
