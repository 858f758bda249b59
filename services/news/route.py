"""Stage: one delivery per (article, subscription, channel)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from services.news.classify import Match


@dataclass(frozen=True)
class Route:
    match: Match
    channel: str

    @property
    def idempotency_key(self) -> str:
        # The same item, rule and target always give the same key, so a
        # re-poll after a crash finds the delivery already written.
        a = self.match.article
        raw = "\x1f".join(["news", a.source, a.id, self.match.subscription.name, self.channel])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def routes(matches: list[Match]) -> list[Route]:
    return [Route(m, channel) for m in matches for channel in m.subscription.channels]
