"""Our poller over feedparser's own conformance feeds, served from loopback.

The feeds come from the feedparser sdist (see tests/unit/news/feedsuite.py). No network
means this test fails with the reason: it is part of the feed contract.
"""
from __future__ import annotations

import io
import re

import feedparser
import pytest

from unit.news.feedsuite import SuiteFeed, SuiteServer, SuiteUnavailable, load_feeds, spread_sample
from services.settings import Settings
from services.news.feed import parse, poll
from services.net.fetch import SourceError

WELL_FORMED_SAMPLE = 200
BROKEN_SAMPLE = 100
_TAG = re.compile(r"<[^>]*>")


@pytest.fixture(scope="module")
def suite() -> list[SuiteFeed]:
    try:
        return load_feeds()
    except SuiteUnavailable as exc:
        pytest.fail(str(exc))


def carries_news(feed: SuiteFeed) -> bool:
    """Judged by feedparser alone: some entry has an id, link, title or visible text."""
    parsed = feedparser.parse(io.BytesIO(feed.body), response_headers=_headers(feed))
    for entry in parsed.entries:
        text = " ".join([entry.get("summary") or ""] + [c.get("value") or "" for c in entry.get("content") or []])
        if entry.get("id") or entry.get("link") or entry.get("title") or _TAG.sub("", text).strip():
            return True
    return False


def _headers(feed: SuiteFeed) -> dict[str, str]:
    return {name.lower(): value for name, value in feed.headers.items()}


# Ways real feeds break in transit or at the publisher, applied to good feeds.
MUTATIONS = [
    ("truncated", lambda body: body[: len(body) // 2]),
    ("garbled", lambda body: body[: len(body) // 2] + b"\x00<&\xff\xfe]]>" + body[len(body) // 2 + 8:]),
    ("two documents", lambda body: body + body),
    ("re-encoded utf-16 without saying so", lambda body: body.decode("utf-8", "replace").encode("utf-16-le")),
]


def broken_sample(suite: list[SuiteFeed]) -> list[SuiteFeed]:
    ill_formed = [feed for feed in suite if feed.ill_formed]
    donors = spread_sample([feed for feed in suite if not feed.ill_formed][1::2], BROKEN_SAMPLE - len(ill_formed))
    mutated = []
    for i, donor in enumerate(donors):
        label, mutate = MUTATIONS[i % len(MUTATIONS)]
        mutated.append(SuiteFeed(f"mutated/{label.replace(' ', '-')}/{donor.name}", mutate(donor.body),
                                 donor.headers, "bozo"))
    return ill_formed + mutated


def test_every_suite_feed_gives_articles_or_source_error(suite):
    crashes = []
    for feed in suite:
        try:
            parse(feed.body, feed.name, _headers(feed).get("content-type"))
        except SourceError:
            pass
        except Exception as exc:  # the point of the test: list every escape
            crashes.append(f"{feed.name}: {exc!r}")
    assert len(suite) > 2000, "the feedparser sdist should carry ~2,240 feeds"
    assert crashes == []


def test_poller_over_served_sample(suite):
    # Most suite feeds test one channel-level element and have no entries;
    # weight the sample toward those that carry news, which is what we poll for.
    candidates = [feed for feed in suite if not feed.ill_formed][::2]
    has_news = {feed.name: carries_news(feed) for feed in candidates}
    newsy = [feed for feed in candidates if has_news[feed.name]]
    quiet = [feed for feed in candidates if not has_news[feed.name]]
    well_formed = sorted(spread_sample(newsy, WELL_FORMED_SAMPLE * 3 // 4)
                         + spread_sample(quiet, WELL_FORMED_SAMPLE // 4), key=lambda feed: feed.name)
    broken = broken_sample(suite)
    assert len(broken) == BROKEN_SAMPLE and {f.name.split("/")[0] for f in well_formed} >= {
        "wellformed", "encoding", "entities"}
    # Every broken source is followed by good ones, so a failure that leaked
    # state into the next poll would show up as a good feed going wrong.
    sequence = []
    for i, feed in enumerate(well_formed):
        if i % 2 == 0 and i // 2 < len(broken):
            sequence.append(broken[i // 2])
        if i % 20 == 0:
            sequence.append(SuiteFeed("missing/not-on-the-server.xml", b""))
        sequence.append(feed)

    settings = Settings(http_timeout=5, allow_private_targets=True)  # the suite is served on loopback
    outcomes: dict[str, object] = {}
    crashes = []
    with SuiteServer(well_formed + broken) as server:
        for feed in sequence:
            try:
                outcomes[feed.name], _ = poll(server.url(feed.name), feed.name, None, settings)
            except SourceError as exc:
                outcomes[feed.name] = exc
            except Exception as exc:  # the point of the test: list every escape
                crashes.append(f"{feed.name}: {exc!r}")
    assert crashes == []

    lost = [feed.name for feed in newsy if feed in well_formed and not outcomes[feed.name]]
    assert lost == [], "well-formed feeds with news that gave no articles (or failed)"
    articles = [a for result in outcomes.values() if isinstance(result, list) for a in result]
    assert all(a.id for a in articles)
    assert all(a.published is None or a.published.utcoffset().total_seconds() == 0 for a in articles)
    assert all(a.link == "" or a.link.startswith(("http://", "https://")) for a in articles)

    recovered = [after.name for before, after in zip(sequence, sequence[1:])
                 if isinstance(outcomes[before.name], SourceError) and isinstance(outcomes[after.name], list)]
    failed = sum(isinstance(result, SourceError) for result in outcomes.values())
    assert failed >= 30 and len(recovered) >= 30, (failed, len(recovered))
