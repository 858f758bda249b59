"""Stage: keep only items this source has not produced before."""
from __future__ import annotations

from services.news.article import Article


def unseen(articles: list[Article], seen_before) -> list[Article]:
    """`seen_before(ids) -> set of unseen ids` is the store's lookup; the
    order of the feed is kept, and an id repeated inside one feed counts once."""
    fresh_ids = seen_before([a.id for a in articles])
    out, taken = [], set()
    for a in articles:
        if a.id in fresh_ids and a.id not in taken:
            taken.add(a.id)
            out.append(a)
    return out
