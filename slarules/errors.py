"""One family of errors, so callers catch ``SlaRulesError`` and get a location.

Every error slarules raises on bad input says *where* (file, line, column, field)
and *what was expected*, in one paragraph, so the CLI can print it without a
traceback and a service can return it to its caller as is. Whatever input it
quotes is made safe to show when the error is made (echo.py): escaped and cut.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .echo import LIMITS, quote

if TYPE_CHECKING:
    from .packs.model import Issue


class SlaRulesError(Exception):
    """Root of every error slarules raises on purpose."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, field: str | None = None, hint: str | None = None):
        self.message = message
        super().__init__(self.message)
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.hint = hint

    def __setattr__(self, name: str, value: Any) -> None:
        """Message, field, file and hint are stored safe to show, however and whenever they are set."""
        limit = LIMITS.get(name)
        if limit is not None and value is not None:
            value = quote(value, limit)
        super().__setattr__(name, value)

    def location(self) -> str:
        parts = []
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
                if self.column:
                    where += f":{self.column}"
            parts.append(where)
        if self.field:
            parts.append(f"field `{self.field}`")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict:
        return {"error": type(self).__name__, "message": self.message, "file": self.file,
                "line": self.line, "column": self.column, "field": self.field, "hint": self.hint}


class InputError(SlaRulesError):
    """A file could not be read or parsed (I/O, JSON, YAML syntax, size, aliases)."""


class OutputError(SlaRulesError):
    """An output could not be written or locked: names the file and says what was kept."""


class CaseError(SlaRulesError):
    """A case does not match the contract (unknown field, wrong type, bad value)."""


class PackError(SlaRulesError):
    """A rule pack is malformed or inconsistent (schema, fact paths, types, precedence)."""

    issues: list[Issue]     # every problem, when packs.model.raise_first raised it


class ClusterError(SlaRulesError):
    """Spark could not run the job: no Java, an unreachable master, a failed stage."""


class InstallError(SlaRulesError):
    """slarules cannot run here as installed (a dependency is missing or was built wrong); the hint says
    the command that fixes it. Never a case's fault, so never a row's error record or a test's failure."""


class EngineError(SlaRulesError):
    """The inference backend misbehaved; this is a bug in slarules, never in the input."""


class Interrupted(BaseException):
    """A run stopped by SIGINT or SIGTERM at a safe point, saying what it kept and how to go on.

    A BaseException, like KeyboardInterrupt, and not a SlaRulesError: code that turns any
    Exception into a row's error record must let it through. The CLI exits 128 + the signal.
    """

    def __init__(self, signal_number: int, kept: str | None = None) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number
        self.kept = kept

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number

    def __str__(self) -> str:
        import signal
        try:
            name = signal.Signals(self.signal_number).name
        except ValueError:
            name = f"signal {self.signal_number}"
        return f"interrupted by {name}" + (f": {self.kept}" if self.kept else "")
