"""slarules: adjudicate SLA breaches and liability for disputed parcels from YAML rule packs."""
from .engine import Engine
from .errors import CaseError, EngineError, InputError, PackError, SlaRulesError
from .facts import Case, load_case, parse_case
from .verdict import Verdict

__all__ = ["Engine", "Case", "Verdict", "load_case", "parse_case", "SlaRulesError", "CaseError", "PackError",
           "InputError", "EngineError"]
__version__ = "0.1.0"
