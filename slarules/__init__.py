"""slarules: adjudicate SLA breaches and liability for disputed parcels from YAML rule packs.

Names are imported on first use (PEP 562), so `slarules batch` or a cached
`slarules adjudicate` does not pay for modules it never touches.
"""
from importlib import import_module

_EXPORTS = {"Engine": "engine", "Case": "facts", "load_case": "facts", "parse_case": "facts", "Verdict": "verdict",
            "SlaRulesError": "errors", "CaseError": "errors", "PackError": "errors", "InputError": "errors",
            "EngineError": "errors", "ClusterError": "errors", "InstallError": "errors",
            "Limits": "case.limits"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name == "__version__":       # pyproject.toml's, from the installed metadata: written in one place
        from importlib.metadata import version
        return version(__name__)
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'slarules' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
