"""The case: its contract's values and limits, safe reading of its text, and the fast decoder.

The Pydantic models that are the contract's authority live in `slarules.facts`.
"""
