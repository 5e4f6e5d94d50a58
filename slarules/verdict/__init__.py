"""The verdict: precedence, money, deadlines, missing facts and messages (`assembly`), and its text (`text`)."""
from .assembly import Verdict, VerdictBuilder

__all__ = ["Verdict", "VerdictBuilder"]
