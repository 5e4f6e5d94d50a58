"""slarules: adjudicate SLA breaches and liability for disputed parcels from YAML rule packs.

Names are imported on first use (PEP 562), so `slarules batch` or a cached
`slarules adjudicate` does not pay for modules it never touches. A type checker
reads the same names from the `TYPE_CHECKING` imports below, so a service that
imports them sees their real types, not `Any`.
"""
from importlib import import_module

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (~10 ms of `import slarules`)
if TYPE_CHECKING:       # tests/test_typing.py holds these in step with _EXPORTS
    from typing import Any

    from .case.limits import Limits
    from .engine import Engine
    from .errors import CaseError, ClusterError, EngineError, InputError, InstallError, PackError, SlaRulesError
    from .facts import Case, load_case, parse_case
    from .verdict import Verdict

__version__: str        # pyproject.toml's, read from the installed metadata when first asked (__getattr__)

_EXPORTS = {"Engine": "engine", "Case": "facts", "load_case": "facts", "parse_case": "facts", "Verdict": "verdict",
            "SlaRulesError": "errors", "CaseError": "errors", "PackError": "errors", "InputError": "errors",
            "EngineError": "errors", "ClusterError": "errors", "InstallError": "errors",
            "Limits": "case.limits"}
__all__ = ["Case", "CaseError", "ClusterError", "Engine", "EngineError", "InputError", "InstallError", "Limits",
           "PackError", "SlaRulesError", "Verdict", "load_case", "parse_case"]


def __getattr__(name: str) -> "Any":
    if name == "__version__":       # written once, in pyproject.toml
        from importlib.metadata import version
        return version(__name__)
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'slarules' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
