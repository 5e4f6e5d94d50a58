"""Money: the bound each amount and each sum keeps, and arithmetic that is exact or refused.

An amount is a Decimal with two places (yuan) in Python and an integer of fen
wherever it is a column or an engine fact (Polars, durable_rules, Arrow). The
bounds below are what make those integers safe, and every path reads them from
here: the case contract (case/contract.py), pack values (packs/types.py), money
derivations (packs/derivations.py, both spellings), the verdict's sums (verdict/layout.py) and
their columnar twins (columnar/evaluator.py, verdict/columns.py). docs/contract.md
("Money") states the same table for users.

| what                                   | at most (magnitude)           | past it                  |
|----------------------------------------|-------------------------------|--------------------------|
| a case's money field                   | 999,999,999,999.99            | CaseError, the field     |
| one amount: a pack value, a derived    | 999,999,999,999,999.99        | PackError at its line;   |
| amount, a finding's fine/refund/...    |                               | CaseError for a derived  |
| a verdict's money field (a payer's     | 9,999,999,999,999,999.99      | CaseError naming the     |
| fines or compensation, the refunds)    | (signed 64-bit fen, DECIMAL(18,2)) | field and the payer |
| a station's or a run's total           | none: exact at any size       | -                        |

Why these hold with no wrapped number anywhere: one amount is under 2^63 fen
(an Int64 column or a durable_rules integer holds it exactly); the sums of a
verdict and of a chunk are taken in 128 bits, which no chunk can leave (fewer
than 2^32 rows, each with at most one amount per rule, under 500 rules, each under
10^17 fen: under 2^98; columnar/evaluator.py asserts it), then checked against the
verdict's bound; across chunks
and Spark partitions totals are Python Decimals added in `EXACT`, which never
rounds. Money arithmetic never uses the caller's decimal context (a program that
set `decimal.getcontext().prec = 6` must get the same verdicts): it goes through
the functions here.
"""
from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import NamedTuple

PLACES = 2                     # yuan have two decimal places: amounts are integers of fen
ZERO = Decimal("0.00")

# The context of every money operation (and of the other exact decimals, below): wide enough that
# adding, subtracting and multiplying two decimals never rounds, and any rounding would raise
# (Inexact) rather than pass unnoticed.
EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                        rounding=decimal.ROUND_HALF_UP,
                        traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact])


class Bound(NamedTuple):
    """The largest magnitude one kind of money may have, in fen, and what says so when it is passed."""

    what: str
    most: int            # in fen

    @property
    def whole_digits(self) -> int:
        """Digits before the decimal point at the bound."""
        return len(str(self.most)) - PLACES

    @property
    def yuan(self) -> Decimal:
        """The bound as an amount (999999999999.99)."""
        return Decimal(self.most).scaleb(-PLACES, EXACT)

    def holds(self, amount: Decimal) -> bool:
        """Whether `amount` is within the bound (an amount with more places: whether it is under the
        next fen, so that a pack value's places are refused as places, not as size)."""
        return amount.scaleb(PLACES, EXACT).copy_abs() < self.most + 1

    def refusal(self, shown: str) -> str:
        """Why `shown` (an amount or what it adds up to) is refused, with the bound."""
        return f"{shown} is too large: {self.what} has at most {self.whole_digits} digits before the decimal point"


CASE_FIELD = Bound("a case's money field", 10**14 - 1)            # the contract's 14 digits, 2 places
AMOUNT = Bound("an amount of money", 10**17 - 1)                  # a pack's value, a derived amount, a finding's
VERDICT = Bound("a verdict's money field", 10**18 - 1)            # a payer's fines or compensation, the refunds
BOUNDS = (CASE_FIELD, AMOUNT, VERDICT)
assert VERDICT.most < 1 << 63          # what a verdict writes fits a signed 64-bit count of fen


def add(a: Decimal, b: Decimal) -> Decimal:
    return EXACT.add(a, b)


def subtract(a: Decimal, b: Decimal) -> Decimal:
    return EXACT.subtract(a, b)


def total(amounts: Iterable[Decimal]) -> Decimal:
    """The exact sum (ZERO for none)."""
    out = ZERO
    for a in amounts:
        out = EXACT.add(out, a)
    return out


def times(amount: Decimal, factor: int) -> Decimal:
    """`amount` × `factor`, refused (ValueError) past the bound of one amount."""
    product = EXACT.multiply(amount, Decimal(factor))
    if not AMOUNT.holds(product):
        raise ValueError(AMOUNT.refusal(f"{amount} × {factor}"))
    return product if product else ZERO      # -0.01 × 0 is 0.00, never "-0.00" (an integer of fen has no sign)


def share(loss: Decimal, insured: Decimal, declared: Decimal) -> Decimal:
    """loss × insured ÷ declared to the fen, halves away from zero, in integers (as the columnar path
    does it); a ValueError when the share is undefined (a declared value of 0)."""
    if not declared:
        raise ValueError("the insured share of a declared value of 0 is undefined")
    product, divisor = fen(loss) * fen(insured), fen(declared)
    magnitude = (2 * abs(product) + abs(divisor)) // (2 * abs(divisor))
    return from_fen(-magnitude if (product < 0) != (divisor < 0) else magnitude)


def text(amount: Decimal) -> str:
    """An amount as the verdict writes it: two places, no exponent ("12.50")."""
    return str(EXACT.quantize(amount, ZERO))


def from_fen(n: int) -> Decimal:
    return from_units(n, PLACES)


# The same exactness for every decimal that crosses into an engine as an integer (types.py:
# lengths in 1/100 cm, weights in grams, volumes in 1/1,000,000 cm³): none depends on the caller's context.
def units_of(places: int) -> Callable[[Decimal], int]:
    """A decimal as an integer of 10^-places: more places than that raise a ValueError, never round.

    Through the exact ratio (no context at all, the fastest exact way), with the power of ten
    computed once per unit: a fact type encodes with it once per fact per case. (A cache of the
    values seen cost more: a Decimal's hash is a modular power in C, dearer than the ratio.)"""
    scale = 10 ** places

    def encode(d: Decimal) -> int:
        numerator, denominator = d.as_integer_ratio()
        units, rest = divmod(numerator * scale, denominator)
        if rest:
            raise ValueError(f"{d} has more than {places} decimal places")
        return units
    encode.__name__ = encode.__qualname__ = f"units_of_{places}"
    return encode


fen = units_of(PLACES)
"""An amount as an integer of fen; an amount with more than two places raises, never rounds."""


def from_units(n: int, places: int) -> Decimal:
    return Decimal(n).scaleb(-places, EXACT)
