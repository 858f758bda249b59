"""Currency pairs: validation, inversion, cross rates and display rounding.

`BASE/QUOTE` is the price of 1 BASE in QUOTE (USD/KZT = 518.2, KZT/USD = 0.00193).
Arithmetic runs in FX_CONTEXT, never in the caller's context, so results do not
depend on whatever `decimal.getcontext()` holds. It carries 50 significant
digits although we report 28 (`report`): derived rates are rounded (1/505 does
not terminate), and a change computed from rounded rates must still come out
as exactly 1% when the true move is exactly 1%, or a threshold of 1.0 on an
inverse pair would miss it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext

from services.errors import TulparError
from services.fx.quote import Quote

FX_CONTEXT = Context(prec=50, rounding=ROUND_HALF_EVEN)
REPORT_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)
PIVOTS = ("USD",)  # tried first; then every other common currency, alphabetically
_CODE = re.compile(r"[A-Z]{3}")


class PairError(TulparError, ValueError):
    """A pair that is not `AAA/BBB` with two different upper-case ISO-style codes."""


def check_pair(text: object) -> str:
    """Return `text` if it is a valid pair, else raise PairError saying why."""
    if not isinstance(text, str):
        raise PairError(f"pair must be text like KZT/USD, not {text!r}")
    parts = text.split("/")
    if len(parts) != 2 or not all(_CODE.fullmatch(p) for p in parts):
        raise PairError(f"pair {text!r} is not BASE/QUOTE with 3 upper-case letters each, like KZT/USD")
    if parts[0] == parts[1]:
        raise PairError(f"pair {text!r} has the same currency on both sides")
    return text


def inverse_pair(pair: str) -> str:
    base, quote = check_pair(pair).split("/")
    return f"{quote}/{base}"


def reciprocal(rate: Decimal) -> Decimal:
    with localcontext(FX_CONTEXT):
        return Decimal(1) / rate


def product(a: Decimal, b: Decimal) -> Decimal:
    with localcontext(FX_CONTEXT):
        return a * b


def report(value: Decimal) -> Decimal:
    """`value` rounded to the 28 significant digits we show and compare."""
    return REPORT_CONTEXT.plus(value)


def change_pct(old: Decimal, new: Decimal) -> Decimal:
    """(new - old) / old * 100, the one definition rules and ticker share,
    rounded to 28 digits so working-precision noise cannot cross a threshold."""
    with localcontext(FX_CONTEXT):
        return report((new - old) / old * 100)


def invert(quote: Quote) -> Quote:
    """USD/KZT 518.2 -> KZT/USD 1/518.2, same time and source."""
    return Quote(inverse_pair(quote.pair), reciprocal(quote.rate), quote.at, quote.source)


def join_sources(*sources: str) -> str:
    seen: list[str] = []
    for s in sources:
        if s and s not in seen:
            seen.append(s)
    return "+".join(seen)


def cross(a: Quote, b: Quote) -> Quote:
    """A/B and B/C -> A/C, stamped with the later leg's `at`: the moment
    this combination first became known."""
    if a.quote != b.base:
        raise PairError(f"cannot cross {a.pair} with {b.pair}: {a.quote} != {b.base}")
    if a.base == b.quote:
        raise PairError(f"crossing {a.pair} with {b.pair} gives no pair")
    return Quote(f"{a.base}/{b.quote}", product(a.rate, b.rate), max(a.at, b.at),
                 join_sources(a.source, b.source))


def pivots(pair: str, quoted: Iterable[str]) -> list[str]:
    """Currencies P such that BASE-P and P-QUOTE are both quoted (either way
    round), USD first, then alphabetical so the choice is deterministic."""
    base, quote = check_pair(pair).split("/")
    links: dict[str, set[str]] = {}
    for p in quoted:
        b, q = p.split("/")
        links.setdefault(b, set()).add(q)
        links.setdefault(q, set()).add(b)
    common = (links.get(base, set()) & links.get(quote, set())) - {base, quote}
    first = [p for p in PIVOTS if p in common]
    return first + sorted(common - set(first))


def direct_or_inverse(pair: str, latest: Mapping[str, Quote]) -> Quote | None:
    if pair in latest:
        return latest[pair]
    inv = inverse_pair(pair)
    return invert(latest[inv]) if inv in latest else None


def derive(pair: str, latest: Mapping[str, Quote]) -> Quote | None:
    """The rate of `pair` from a snapshot {pair: quote}: direct, else inverse,
    else a cross through one pivot (see `pivots`). None when not derivable."""
    found = direct_or_inverse(check_pair(pair), latest)
    if found is not None:
        return found
    candidates = pivots(pair, latest)
    if not candidates:
        return None
    # pivots() only returns currencies linked to both sides, so both legs exist.
    base, quote = pair.split("/")
    left = direct_or_inverse(f"{base}/{candidates[0]}", latest)
    right = direct_or_inverse(f"{candidates[0]}/{quote}", latest)
    return cross(left, right)


def display(rate: Decimal, significant: int = 5) -> str:
    """Round half-up to `significant` digits for people, never dropping
    integer digits (12845.67 -> "12846", not "12850"), with no exponent and no
    trailing zeros: 0.0019297568 -> "0.0019298", 518.2 -> "518.2"."""
    if rate == 0:
        return "0"
    exponent = min(0, rate.adjusted() - (significant - 1))
    rounded = rate.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP,
                            context=Context(prec=60))
    text = f"{rounded:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
