"""A configured fixed rate: Turkmenistan's official USD/TMT is set by decree, not published daily.

    {pair: USD/TMT, rate: "3.50"}

`quotes(config, now)` yields one Quote for the date of `now` (midnight UTC).
Pure: the caller passes `now`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

from services.fx.quote import Quote
from services.fx.sources.common import (
    RateConfigError,
    RateFormatError,
    midnight_utc,
    parse_code,
    parse_decimal,
    per_unit,
)

NAME = "constant"


@dataclass(frozen=True, slots=True)
class ConstantConfig:
    pair: str
    rate: Decimal
    name: str = NAME

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ConstantConfig":
        extra = set(data) - {"pair", "rate", "name", "type", "source"}
        if extra:
            raise RateConfigError(f"constant: unknown settings {sorted(extra)}")
        try:
            pair = str(data["pair"]).strip().upper()
            raw_rate = data["rate"]
        except KeyError as exc:
            raise RateConfigError(f"constant: `{exc.args[0]}` is required") from None
        try:
            base, _, quote = pair.partition("/")
            parse_code(base, "constant: pair base")
            parse_code(quote, "constant: pair quote")
            # A float from YAML (3.5) goes through str() so 3.5 stays 3.5, not 3.4999...
            rate = per_unit(parse_decimal(str(raw_rate), "constant: rate"), 1, "constant: rate")
        except RateFormatError as exc:
            raise RateConfigError(str(exc)) from None
        if base == quote:
            raise RateConfigError(f"constant: pair {pair!r} quotes a currency in itself")
        return cls(pair=pair, rate=rate, name=str(data.get("name") or NAME))


def quotes(config: ConstantConfig, now: datetime) -> list[Quote]:
    if now.tzinfo is None:
        raise ValueError("constant.quotes: `now` must be timezone-aware")
    day = now.astimezone(timezone.utc).date()
    return [Quote(pair=config.pair, rate=config.rate, at=midnight_utc(day), source=config.name)]
