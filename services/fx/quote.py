"""One observed exchange rate, in our pair convention."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """`pair` is "BASE/QUOTE": the price of 1 BASE in QUOTE (KZT/USD = 0.00193).

    `rate` is a Decimal so a publisher's "3.93 per 100" divides out exactly.
    `at` is when the publisher says the rate applies (timezone-aware, UTC);
    `source` names the publisher adapter (nbk, cbr, ...) or "" when unknown.
    """

    pair: str
    rate: Decimal
    at: datetime
    source: str = ""

    @property
    def base(self) -> str:
        return self.pair.split("/", 1)[0]

    @property
    def quote(self) -> str:
        return self.pair.split("/", 1)[1]
