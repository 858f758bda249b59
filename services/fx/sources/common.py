"""Shared helpers for the rate adapters: numbers, dates, XML, stale items.

Everything here is pure (bytes in, values out): no network, no clock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation, localcontext
from typing import Callable, Iterable
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from services.errors import TulparError
from services.fx.quote import Quote


class RateFormatError(TulparError, ValueError):
    """A publisher file that does not hold what its format promises.

    The message names the element or line and what is wrong with it.
    """


class RateConfigError(TulparError, ValueError):
    """A configured source (generic JSON, constant) whose settings are unusable."""


_CODE_RE = re.compile(r"^[A-Z]{3}$")
# Spaces that publishers put inside numbers: plain, no-break, narrow no-break, thin.
_NUMBER_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009\t\r\n")


def parse_decimal(text: str | None, what: str) -> Decimal:
    """'87,4500' -> Decimal('87.4500'); '1 234,5' -> Decimal('1234.5').

    A decimal comma or point is accepted; when both appear, the last one is
    the decimal separator and the other groups thousands.
    """
    raw = (text or "").translate(_NUMBER_SPACES)
    if not raw:
        raise RateFormatError(f"{what} is empty")
    if "," in raw and "." in raw:
        if raw.rfind(",") > raw.rfind("."):
            raw = raw.replace(".", "").replace(",", ".")
        else:
            raw = raw.replace(",", "")
    else:
        raw = raw.replace(",", ".")
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", raw):
        raise RateFormatError(f"{what} {text!r} is not a number")
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the regex above rules it out
        raise RateFormatError(f"{what} {text!r} is not a number") from None


def parse_nominal(text: str | None, what: str, *, default: int | None = None) -> int:
    """A nominal (units the rate is quoted for): a positive whole number."""
    if text is None or not text.strip():
        if default is not None:
            return default
        raise RateFormatError(f"{what} is missing")
    value = parse_decimal(text, what)
    if value <= 0 or value != value.to_integral_value():
        raise RateFormatError(f"{what} {text!r} is not a positive whole number")
    return int(value)


def normalize(value: Decimal) -> Decimal:
    """Drop trailing zeros without ever going to an exponent form (1E+3 -> 1000)."""
    value = value.normalize()
    if value.as_tuple().exponent > 0:
        value = value.quantize(Decimal(1))
    return value


def per_unit(value: Decimal, nominal: int, what: str) -> Decimal:
    """`value` quoted for `nominal` units, as the price of one unit (exact for 10^n)."""
    if value <= 0:
        raise RateFormatError(f"{what} {value} is not a positive rate")
    with localcontext() as ctx:
        ctx.prec = 50
        return normalize(value / Decimal(nominal))


def format_rate(value: Decimal) -> str:
    """A plain decimal string: no exponent, no meaningless trailing zeros."""
    return format(normalize(value), "f")


def parse_code(text: str | None, what: str) -> str:
    code = (text or "").strip().upper()
    if not code:
        raise RateFormatError(f"{what} is missing")
    if not _CODE_RE.match(code):
        raise RateFormatError(f"{what} {text!r} is not a three-letter currency code")
    return code


_DATE_FORMATS = ("%d.%m.%Y", "%d.%m.%y", "%Y-%m-%d", "%d/%m/%Y")


_DIRECTIVES = {"%d": r"\d{1,2}", "%m": r"\d{1,2}", "%Y": r"\d{4}", "%y": r"\d{2}"}


def _strict(fmt: str) -> re.Pattern[str] | None:
    """A regex for simple formats so that '%d.%m.%Y' refuses '03.04.24' (strptime takes it as year 24)."""
    out, i = [], 0
    while i < len(fmt):
        piece = fmt[i : i + 2]
        if piece in _DIRECTIVES:
            out.append(_DIRECTIVES[piece])
            i += 2
        elif fmt[i] == "%":
            return None  # another directive: leave it to strptime alone
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return re.compile("".join(out))


def parse_date(text: str | None, what: str, formats: Iterable[str] = _DATE_FORMATS) -> date:
    """A publisher's date in one of `formats` (first match wins)."""
    raw = (text or "").strip()
    formats = tuple(formats)
    if not raw:
        raise RateFormatError(f"{what} is missing")
    for fmt in formats:
        pattern = _strict(fmt)
        if pattern is not None and not pattern.fullmatch(raw):
            continue
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise RateFormatError(f"{what} {text!r} is not a date (expected {' or '.join(formats)})")


def midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


# --- XML -----------------------------------------------------------------

_DECL_RE = re.compile(rb"^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def parse_xml(body: bytes, source: str) -> Element:
    """Parse XML bytes with defusedxml, honouring the declared encoding.

    Some publishers declare windows-1251 but send UTF-8; when the declared
    encoding fails and the bytes are valid UTF-8, the declaration is
    rewritten and the document parsed as UTF-8.
    """
    if not body or not body.strip():
        raise RateFormatError(f"{source}: the file is empty")
    try:
        return DefusedET.fromstring(body)
    except DefusedXmlException as exc:
        raise RateFormatError(f"{source}: forbidden XML construct ({exc})") from None
    except ParseError as first:
        match = _DECL_RE.match(body)
        if match and match.group(2).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                start, end = match.span(2)
                retry = body[:start] + b"utf-8" + body[end:]
                try:
                    return DefusedET.fromstring(retry)
                except (ParseError, DefusedXmlException):
                    pass
        raise RateFormatError(f"{source}: not well-formed XML ({first})") from None


def local(tag: str) -> str:
    """'{http://www.ecb.int/...}Cube' -> 'Cube'."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def children(elem: Element, name: str) -> list[Element]:
    return [c for c in elem if local(c.tag) == name]


def child_text(elem: Element, name: str) -> str | None:
    """Text of the first direct child called `name` (any namespace), or None."""
    for c in elem:
        if local(c.tag) == name:
            return (c.text or "").strip()
    return None


def require_root(root: Element, name: str, source: str) -> None:
    if local(root.tag) != name:
        raise RateFormatError(
            f"{source}: root element is <{local(root.tag)}>, expected <{name}>"
        )


# --- Items -> quotes -------------------------------------------------------


Build = Callable[[], "tuple[str, Decimal] | None"]


@dataclass(frozen=True, slots=True)
class Item:
    """One published rate before stale filtering.

    `where` names it in error messages ("item 3 (USD)"); `build` parses its
    pair and rate (or returns None to skip it) and runs only for items that
    are not stale, so junk left in outdated entries does not fail a file.
    """

    where: str
    day: date
    build: Build
    at: datetime | None = None  # when the publisher gives a time; else midnight UTC of `day`


def to_quotes(items: list[Item], source: str) -> list[Quote]:
    """Keep items dated on the file's newest date, in file order.

    Older items are stale (NBK's RSS still lists currencies that no longer
    exist). The same pair twice on the newest date with the same rate is kept
    once; with different rates the file contradicts itself.
    """
    if not items:
        return []
    newest = max(item.day for item in items)
    seen: dict[str, tuple[str, Decimal]] = {}
    quotes: list[Quote] = []
    for item in items:
        if item.day < newest:
            continue
        built = item.build()
        if built is None:
            continue
        pair, rate = built
        if pair in seen:
            first_where, first_rate = seen[pair]
            if first_rate != rate:
                raise RateFormatError(
                    f"{source}: {item.where} gives {pair} = {rate}, "
                    f"but {first_where} gave {first_rate} for the same date"
                )
            continue
        seen[pair] = (item.where, rate)
        at = item.at if item.at is not None else midnight_utc(item.day)
        quotes.append(Quote(pair=pair, rate=rate, at=at, source=source))
    return quotes


def quoted_in(
    quote: str, code: str, value_text: str | None, nominal_text: str | None,
    value_what: str, nominal_what: str,
) -> Build:
    """A build for "`value_text` QUOTE per `nominal_text` CODE" -> CODE/QUOTE per one unit."""

    def build() -> tuple[str, Decimal] | None:
        value = parse_decimal(value_text, value_what)
        nominal = parse_nominal(nominal_text, nominal_what, default=1)
        if code == quote:
            return None
        return f"{code}/{quote}", per_unit(value, nominal, value_what)

    return build
