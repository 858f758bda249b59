"""Time series of one pair, observed or derived, from a bag of quotes.

Which pair series a rule sees (decided per series, not per point):
1. the pair's own observations, if there are any;
2. else its inverse's observations, inverted point by point;
3. else a cross through one pivot (USD first, see pairs.pivots), with a point at
   every time at which either leg has an observation, once both legs have one,
   each leg taken at its latest observation at or before that time. So a
   holiday in Russia but not Kazakhstan still moves KZT/RUB on the new tenge
   rate; a point never uses a leg observed later than itself.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from services.fx.pairs import check_pair, cross, inverse_pair, invert, pivots
from services.fx.quote import Quote


def by_pair(quotes: Iterable[Quote]) -> dict[str, list[Quote]]:
    """Group and sort by time. Two quotes of one pair at the same time are one
    point: the one given last wins (callers that care about conflicts, like
    the CSV reader, reject them before this)."""
    groups: dict[str, dict[datetime, Quote]] = {}
    for q in quotes:
        groups.setdefault(q.pair, {})[q.at] = q
    return {pair: sorted(points.values(), key=lambda q: q.at) for pair, points in groups.items()}


def series(pair: str, quotes: Iterable[Quote] | Mapping[str, list[Quote]]) -> list[Quote]:
    """The time-ordered series of `pair` (see the module doc); [] when not derivable."""
    groups = quotes if isinstance(quotes, Mapping) else by_pair(quotes)
    found = _direct_or_inverse(check_pair(pair), groups)
    if found is not None:
        return found
    candidates = pivots(pair, groups)
    if not candidates:
        return []
    base, quote = pair.split("/")
    left = _direct_or_inverse(f"{base}/{candidates[0]}", groups) or []
    right = _direct_or_inverse(f"{candidates[0]}/{quote}", groups) or []
    return _merge(left, right)


def latest_at_or_before(points: Sequence[Quote], when: datetime, hi: int | None = None) -> Quote | None:
    """The last point with at <= when among points[:hi] (time-ordered)."""
    i = bisect.bisect_right(points, when, hi=len(points) if hi is None else hi, key=lambda q: q.at)
    return points[i - 1] if i else None


def _direct_or_inverse(pair: str, groups: Mapping[str, list[Quote]]) -> list[Quote] | None:
    if pair in groups:
        return list(groups[pair])
    inv = inverse_pair(pair)
    if inv in groups:
        return [invert(q) for q in groups[inv]]
    return None


def _merge(left: list[Quote], right: list[Quote]) -> list[Quote]:
    out: list[Quote] = []
    for at in sorted({q.at for q in left} | {q.at for q in right}):
        a, b = latest_at_or_before(left, at), latest_at_or_before(right, at)
        if a is not None and b is not None:
            out.append(cross(a, b))  # stamped max(a.at, b.at) == at
    return out
