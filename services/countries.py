"""The five countries tulpar follows, in the one order everything lists them.

`country:KZ` in a rule, the country presets (services/rules/presets/countries/),
the countries an article is tagged with, the news an FX alert links and the
ticker's default pairs all come from this table.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Country:
    code: str  # ISO 3166-1 alpha-2, as written in `country:KZ`
    name: str  # in English, as alerts show it
    currency: str  # ISO 4217


COUNTRIES = (
    Country("KZ", "Kazakhstan", "KZT"),
    Country("KG", "Kyrgyzstan", "KGS"),
    Country("UZ", "Uzbekistan", "UZS"),
    Country("TJ", "Tajikistan", "TJS"),
    Country("TM", "Turkmenistan", "TMT"),
)
CODES = tuple(c.code for c in COUNTRIES)
BY_CODE = {c.code: c for c in COUNTRIES}
BY_CURRENCY = {c.currency: c for c in COUNTRIES}


def name_of(code: str | None) -> str | None:
    """`KZ` -> `Kazakhstan`; a code that is not ours is returned as given."""
    country = BY_CODE.get(code or "")
    return country.name if country is not None else code
