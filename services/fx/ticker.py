"""Ticker lines: `KZT/USD = 0.0019298 -0.12%`, one per watched pair."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from services.fx.history import by_pair, latest_at_or_before, series
from services.fx.pairs import change_pct, display
from services.fx.quote import Quote

DAY = timedelta(days=1)


def day_change(points: list[Quote]) -> Decimal | None:
    """Latest point against the latest one at or before a day earlier; None if none."""
    if not points:
        return None
    old = latest_at_or_before(points, points[-1].at - DAY)
    return None if old is None else change_pct(old.rate, points[-1].rate)


def format_pct(pct: Decimal | None) -> str:
    if pct is None:
        return "n/a"
    rounded = pct.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    # -0.004 rounds to -0.00; a sign on zero reads as a move that did not happen.
    return "0.00%" if rounded == 0 else f"{rounded:+f}%"


def lines(quotes: Iterable[Quote], pairs: list[str], now: datetime) -> list[str]:
    """One line per pair, in the order given. Quotes dated after `now` are left
    out: the Bank of Russia publishes tomorrow's rate today, and the ticker
    shows the rate in force now. A pair with no data prints `n/a`."""
    groups = by_pair(q for q in quotes if q.at <= now)
    out = []
    for pair in pairs:
        points = series(pair, groups)
        if not points:
            out.append(f"{pair} = n/a")
            continue
        out.append(f"{pair} = {display(points[-1].rate)} {format_pct(day_change(points))}")
    return out
