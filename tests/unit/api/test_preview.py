"""POST /v1/rules/preview over articles stored in the database: the
matches with their terms, newest first, and the count per day; the window
is `days` back from now."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.store.models import StoredArticle
from tests.unit.api.test_endpoints import assert_error

NOW = datetime.now(timezone.utc)


def store_articles(store, rows):
    with store.sessions.begin() as s:
        for i, (title, age) in enumerate(rows):
            s.add(StoredArticle(source="wire", article_id=f"a{i}", title=title, link=f"https://news.example/{i}",
                                published=None, countries="", stored_at=NOW - age, summary="", language="en"))


def test_preview_lists_matches_terms_and_days(api, store):
    store_articles(store, [
        ("US tariffs on Kazakh goods", timedelta(days=1)),
        ("New export duty and tariff talks", timedelta(days=3)),
        ("Tariff relief announced", timedelta(days=3, hours=1)),
        ("Weather in Almaty", timedelta(days=2)),
        ("Old tariff story", timedelta(days=40)),
    ])
    key = api.tenant("acme")
    r = api.call("POST", "/v1/rules/preview", key, {"query": "tariff*", "days": 30})
    assert r.status_code == 200, r.text
    body = r.json()
    titles = [m["article"]["title"] for m in body["matches"]]
    assert titles == ["US tariffs on Kazakh goods", "New export duty and tariff talks", "Tariff relief announced"]
    assert all(m["terms"] for m in body["matches"])
    assert sum(body["per_day"].values()) == 3
    assert (NOW - timedelta(days=1)).date().isoformat() in body["per_day"]
    # A window of 45 days reaches the old story; the default (30) does not.
    assert sum(api.call("POST", "/v1/rules/preview", key, {"query": "tariff*", "days": 45}).json()["per_day"].values()) == 4
    assert sum(api.call("POST", "/v1/rules/preview", key, {"query": "tariff*"}).json()["per_day"].values()) == 3


def test_preview_of_nothing(api):
    key = api.tenant("acme")
    r = api.call("POST", "/v1/rules/preview", key, {"query": "pipeline", "days": 1})
    assert r.status_code == 200 and r.json() == {"matches": [], "per_day": {}}


def test_days_beyond_retention_say_how_long_articles_are_kept(make_api):
    api = make_api(retention_days=7)
    key = api.tenant("acme")
    error = assert_error(api.call("POST", "/v1/rules/preview", key, {"query": "tariff", "days": 8}), 422, "invalid", "days")
    assert "7" in error["message"]
