"""Stored articles: retention purge and the reads previews use, on a migrated
SQLite database (and PostgreSQL when DATABASE_URL is set)."""
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from services.news import archive
from services.news.article import Article
from services.store.models import StoredArticle

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
US = timedelta(microseconds=1)


def store_articles(store, at, ids, source="wire", **fields):
    """Commit one poll that stores these articles (the poller's own path)."""
    articles = [Article(source, i, fields.get("title", f"title {i}"), fields.get("summary", f"summary {i}"),
                        f"https://example.com/{i}", fields.get("published"), fields.get("lang"))
                for i in ids]
    store.commit_poll(source=source, url="https://example.com/feed", etag=None, last_modified=None,
                      seen_ids=ids, deliveries=[], now=at, country_articles=[(a, ()) for a in articles])


def stored_ids(store):
    with store.sessions() as s:
        return sorted(s.scalars(sa.select(StoredArticle.article_id)))


# (age of the article at NOW, retention days, kept?)
PURGE_CASES = [
    (timedelta(days=89), 90, True),
    (timedelta(days=90), 90, True),            # exactly at the cutoff: kept
    (timedelta(days=90) + US, 90, False),      # a microsecond older: gone
    (timedelta(days=400), 90, False),
    (timedelta(days=1), 1, True),
    (timedelta(days=1, seconds=1), 1, False),
    (timedelta(0), 1, True),
    (-timedelta(days=1), 1, True),             # stored "after" now (clock skew): kept
]


@pytest.mark.parametrize("age,retention,kept", PURGE_CASES)
def test_purge_keeps_what_is_within_retention(store, age, retention, kept):
    store_articles(store, NOW - age, ["a"])
    store_articles(store, NOW, ["fresh"])
    assert archive.purge(store, NOW, retention) == (0 if kept else 1)
    assert stored_ids(store) == (["a", "fresh"] if kept else ["fresh"])


@pytest.mark.parametrize("old,batch", [(0, 3), (1, 3), (3, 3), (7, 3), (10, 1), (25, 1000)])
def test_purge_deletes_in_batches_and_counts_all(store, old, batch):
    for n in range(old):  # each its own poll, so stored_at differs
        store_articles(store, NOW - timedelta(days=100, minutes=n), [f"old{n}"])
    store_articles(store, NOW - timedelta(days=10), ["new1", "new2"])
    assert archive.purge(store, NOW, 90, batch=batch) == old
    assert stored_ids(store) == ["new1", "new2"]
    assert archive.purge(store, NOW, 90, batch=batch) == 0


def test_purge_is_per_key_not_per_id(store):
    # Two sources may use the same id; only the old one goes.
    store_articles(store, NOW - timedelta(days=100), ["x"], source="a")
    store_articles(store, NOW, ["x"], source="b")
    assert archive.purge(store, NOW, 90, batch=1) == 1
    with store.sessions() as s:
        assert s.execute(sa.select(StoredArticle.source, StoredArticle.article_id)).all() == [("b", "x")]


@pytest.mark.parametrize("retention", [0, -1, True, 1.5, "90", None])
def test_purge_refuses_a_bad_retention(store, retention):
    with pytest.raises(ValueError, match="retention_days"):
        archive.purge(store, NOW, retention)


def test_purge_refuses_a_naive_time(store):
    with pytest.raises(ValueError, match="naive"):
        archive.purge(store, NOW.replace(tzinfo=None), 90)


def test_pages_walk_in_stored_order_and_split_no_poll(store):
    # Polls of 5, 1, 4 and 2 articles; pages of 3 must neither skip nor
    # repeat an article when a page ends inside one poll's group.
    times = [NOW - timedelta(hours=h) for h in (40, 30, 20, 10)]
    groups = [[f"p0-{i}" for i in range(5)], ["p1-0"], [f"p2-{i}" for i in range(4)], ["p3-0", "p3-1"]]
    for at, ids in zip(times, groups):
        store_articles(store, at, list(reversed(ids)))
    for page in (1, 2, 3, 5, 100):
        read = [a for p in archive.pages(store, times[0], page=page) for a in p]
        assert [a.article_id for a in read] == [i for g in groups for i in g]
        assert [a.first_seen for a in read] == sorted(a.first_seen for a in read)
        keys = [k for k, _ in archive.keys_since(store, times[0], page=page)]
        assert keys == [("wire", i) for g in groups for i in g]
    later = [a.article_id for p in archive.pages(store, times[2], page=2) for a in p]
    assert later == groups[2] + groups[3]  # `since` itself is included
    assert list(archive.pages(store, NOW + US)) == []


def test_pages_give_every_stored_field(store):
    published = NOW - timedelta(days=3)
    store_articles(store, NOW - timedelta(days=2), ["k1"], title="Қазақстан экспортқа баж салды",
                   summary="O‘zbekiston eksportga boj joriy qildi", lang="kk", published=published)
    [[a]] = list(archive.pages(store, NOW - timedelta(days=30)))
    assert a.key == ("wire", "k1") and a.lang == "kk"
    assert a.to_json() == {"source": "wire", "id": "k1", "title": "Қазақстан экспортқа баж салды",
                           "summary": "O‘zbekiston eksportga boj joriy qildi", "link": "https://example.com/k1",
                           "published": published.isoformat(), "first_seen": (NOW - timedelta(days=2)).isoformat(),
                           "language": "kk"}


def test_fetch_count_and_keys(store):
    ids = [f"a{i}" for i in range(archive.FETCH_BATCH + 20)]
    store_articles(store, NOW - timedelta(days=1), ids)
    store_articles(store, NOW - timedelta(days=5), ["a0"], source="other")
    wanted = [("wire", i) for i in ids] + [("other", "a0"), ("wire", "missing"), ("nobody", "a1")]
    found = archive.fetch(store, wanted)
    assert set(found) == set(wanted) - {("wire", "missing"), ("nobody", "a1")}
    assert found[("other", "a0")].first_seen == NOW - timedelta(days=5)
    assert archive.count_since(store, NOW - timedelta(days=5)) == len(ids) + 1
    assert archive.count_since(store, NOW - timedelta(days=5) + US) == len(ids)
    keys = list(archive.keys_since(store, NOW - timedelta(days=30)))
    assert [k for k, _ in keys] == [("other", "a0")] + sorted(("wire", i) for i in ids)
