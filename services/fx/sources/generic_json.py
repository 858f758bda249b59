"""A JSON rate file described by configuration: where the list is, which field is what.

Example (a publisher serving {"data": {"date": "25.11.2026", "rates": [{"ccy": "USD",
"rate": "518.2", "nominal": 1}, ...]}} in tenge):

    name: kz-example
    url: https://example.org/rates.json      # used by the fetching edge, not here
    items: data.rates                        # path from the document to the list
    code: ccy                                # path inside each item
    rate: rate
    nominal: nominal                         # optional; 1 when absent
    document_date: data.date                 # or `date: <path inside each item>`
    date_format: "%d.%m.%Y"                  # strptime format, "iso" or "unix"
    quote: KZT                               # rates are KZT per CODE -> CODE/KZT

Use `base: EUR` instead of `quote:` for a file that gives CODE per 1 EUR (EUR/CODE).
Paths are dot-separated keys or list indexes ("data.rates", "result.0.items").
`items` may also point at an object {"USD": 518.2, ...}: then `code: "@key"`
and `rate: "@value"` (or a path inside each value) address its entries.
Numbers may be JSON numbers (read exactly, as Decimal) or strings with a
decimal comma. Items dated before the newest date are stale and skipped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

from services.fx.quote import Quote
from services.fx.sources.common import (
    Build,
    Item,
    RateConfigError,
    RateFormatError,
    parse_code,
    parse_date,
    parse_decimal,
    parse_nominal,
    per_unit,
    quoted_in,
    to_quotes,
)

NAME = "generic-json"
_MISSING = object()


@dataclass(frozen=True, slots=True)
class GenericJsonConfig:
    code: str
    rate: str
    quote: str | None = None
    base: str | None = None
    items: str = ""
    nominal: str | None = None
    date: str | None = None
    document_date: str | None = None
    date_format: str = "%Y-%m-%d"
    name: str = NAME

    def __post_init__(self) -> None:
        if (self.quote is None) == (self.base is None):
            raise RateConfigError(f"{self.name}: give exactly one of `quote` (CODE/QUOTE) or `base` (BASE/CODE)")
        for side in (self.quote, self.base):
            if side is not None:
                try:
                    parse_code(side, f"{self.name}: quote/base")
                except RateFormatError as exc:
                    raise RateConfigError(str(exc)) from None
        if not self.code or not self.rate:
            raise RateConfigError(f"{self.name}: `code` and `rate` paths are required")
        if (self.date is None) == (self.document_date is None):
            raise RateConfigError(f"{self.name}: give exactly one of `date` (per item) or `document_date`")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GenericJsonConfig":
        known = {f for f in cls.__dataclass_fields__}
        extra = set(data) - known - {"url", "type", "source"}
        if extra:
            raise RateConfigError(f"generic-json: unknown settings {sorted(extra)} (known: {sorted(known)})")
        try:
            return cls(**{k: (str(v) if v is not None else None) for k, v in data.items() if k in known})
        except TypeError as exc:
            raise RateConfigError(f"generic-json: {exc}") from None


def _walk(node: Any, path: str) -> Any:
    if not path:
        return node
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                return _MISSING
            node = node[part]
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return _MISSING
        else:
            return _MISSING
    return node


def _field(entry: tuple[str | None, Any], path: str) -> Any:
    key, value = entry
    if path == "@key":
        return key if key is not None else _MISSING
    if path == "@value":
        return value
    return _walk(value, path)


def _text(value: Any) -> str | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        return repr(value)
    return str(value)


def _parse_when(text: str | None, fmt: str, what: str) -> tuple[date, datetime | None]:
    if fmt == "unix":
        seconds = parse_decimal(text, what)
        at = datetime.fromtimestamp(float(seconds), tz=timezone.utc)
        return at.date(), at
    if fmt == "iso":
        raw = (text or "").strip()
        if not raw:
            raise RateFormatError(f"{what} is missing")
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise RateFormatError(f"{what} {text!r} is not an ISO 8601 date") from None
        if len(raw) <= 10:  # a bare date
            return parsed.date(), None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        at = parsed.astimezone(timezone.utc)
        return at.date(), at
    return parse_date(text, what, (fmt,)), None


def parse(body: bytes, config: GenericJsonConfig) -> list[Quote]:
    name = config.name
    try:
        doc = json.loads(body.decode("utf-8-sig"), parse_float=Decimal)
    except UnicodeDecodeError as exc:
        raise RateFormatError(f"{name}: not UTF-8 ({exc})") from None
    except json.JSONDecodeError as exc:
        raise RateFormatError(f"{name}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    container = _walk(doc, config.items)
    where_list = f"`{config.items or '(document)'}`"
    if container is _MISSING:
        raise RateFormatError(f"{name}: no {where_list} in the document")
    if isinstance(container, list):
        entries: list[tuple[str | None, Any]] = [(None, v) for v in container]
    elif isinstance(container, dict):
        entries = list(container.items())
    else:
        raise RateFormatError(f"{name}: {where_list} is {type(container).__name__}, expected a list or object")
    doc_when: tuple[date, datetime | None] | None = None
    if config.document_date is not None and entries:
        doc_when = _parse_when(
            _text(_walk(doc, config.document_date)),
            config.date_format, f"{name}: `{config.document_date}`",
        )
    items: list[Item] = []
    for n, entry in enumerate(entries, start=1):
        code = parse_code(_text(_field(entry, config.code)), f"{name}: item {n} `{config.code}`")
        where = f"item {n} ({code})"
        if doc_when is not None:
            day, at = doc_when
        else:
            day, at = _parse_when(
                _text(_field(entry, config.date or "")), config.date_format, f"{name}: {where} `{config.date}`"
            )
        rate_text = _text(_field(entry, config.rate))
        nominal_text = _text(_field(entry, config.nominal)) if config.nominal else None
        rate_what = f"{name}: {where} `{config.rate}`"
        nominal_what = f"{name}: {where} `{config.nominal}`"
        if config.quote is not None:
            build = quoted_in(config.quote, code, rate_text, nominal_text, rate_what, nominal_what)
        else:
            build = _per_base(config.base or "", code, rate_text, nominal_text, rate_what, nominal_what)
        items.append(Item(where, day, build, at))
    return to_quotes(items, name)


def _per_base(
    base: str, code: str, rate_text: str | None, nominal_text: str | None, rate_what: str, nominal_what: str
) -> Build:
    """CODE per 1 BASE (ECB style): BASE/CODE = rate (a nominal means per `nominal` BASE)."""

    def build() -> tuple[str, Decimal] | None:
        value = parse_decimal(rate_text, rate_what)
        nominal = parse_nominal(nominal_text, nominal_what, default=1)
        if code == base:
            return None
        return f"{base}/{code}", per_unit(value, nominal, rate_what)

    return build
