"""Komunitin amounts to minutes and back, exactly or not at all.

A Komunitin currency stores amounts as integers scaled by ``10**scale`` (amount 1500 with scale 2
is 15.00 units), and its ``rate`` {n, d} is the value of one unit in Komunitin's global HOUR (an
hour of labour): one unit is n/d hours. So

    minutes = amount * 60 * n / (d * 10**scale)
    amount  = minutes * d * 10**scale / (60 * n)

computed with fractions, never floats. An amount that is not a whole number of minutes (or a
minute count that is not a whole amount) is refused with ``InexactAmount``: the ledger is
double-entry in integer minutes and must never round silently. Note what follows for an hour
currency (rate 1/1): 10**scale has no factor 3, so only multiples of 3 minutes convert exactly,
whatever the scale (20 minutes is 0.333... hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from connectors.errors import PermanentError

__all__ = ["CurrencyUnits", "InexactAmount"]

MINUTES_PER_HOUR = 60


class InexactAmount(PermanentError):
    """An amount that does not convert to a whole number on the other side."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "inexact_amount")


@dataclass(frozen=True)
class CurrencyUnits:
    """A currency's code, scale and hour rate: everything the conversion needs."""

    code: str
    scale: int
    rate_n: int = 1
    rate_d: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.scale <= 12:  # Komunitin's own bounds
            raise PermanentError(f"currency {self.code} has scale {self.scale}", "bad_currency")
        if self.rate_n < 1 or self.rate_d < 1:
            raise PermanentError(
                f"currency {self.code} has rate {self.rate_n}/{self.rate_d}", "bad_currency"
            )

    @property
    def rate(self) -> Fraction:
        """Hours per currency unit."""
        return Fraction(self.rate_n, self.rate_d)

    @property
    def minutes_per_amount(self) -> Fraction:
        """Minutes in one scaled integer amount."""
        return Fraction(self.rate_n * MINUTES_PER_HOUR, self.rate_d * int(10**self.scale))

    def to_minutes(self, amount: int) -> int:
        """Minutes in ``amount``; ``InexactAmount`` unless it is a whole number of minutes."""
        minutes = amount * self.minutes_per_amount
        if minutes.denominator != 1:
            raise InexactAmount(
                f"{amount} ({self.code}, scale {self.scale}, rate {self.rate}) is "
                f"{float(minutes):.4f} minutes, not a whole number"
            )
        return int(minutes)

    def to_amount(self, minutes: int) -> int:
        """The scaled amount of ``minutes``; ``InexactAmount`` unless it is a whole amount."""
        amount = minutes / self.minutes_per_amount
        if amount.denominator != 1:
            raise InexactAmount(
                f"{minutes} minutes is {float(amount):.4f} in {self.code} (scale {self.scale}, "
                f"rate {self.rate}), not a whole amount"
            )
        return int(amount)
