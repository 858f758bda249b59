"""The worker's tasks in process, on real parts (a migrated SQLite file, a
loopback feed server, the session's redis-server): a poll matches the
tenants' subscriptions as they are at its start, the config file's unless
TULPAR_CONFIG_SUBSCRIPTIONS is off, and the sweep purges stored articles
at most every 10 minutes per process."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from services.accounts import channels, subscriptions, tenants
from services.news.article import Article
from services.settings import Settings
from workers import runtime as rt_mod

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title><link>http://wire.test/</link><description>t</description>
{items}</channel></rss>"""
ITEM = """<item><title>{title}</title><link>http://wire.test/{guid}</link><guid isPermaLink="false">{guid}</guid>
<description>x</description></item>"""

CONFIG = """
allow_private_targets: true
sources:
  - name: wire
    url: {url}
subscriptions:
  - name: desk
    query: 'cpc'
    channels: [mailto:desk@example.com]
"""


@pytest.fixture
def worker(tmp_path, monkeypatch, var_db, broker, file_server):
    """A worker process's environment: config file, database, broker; the
    tasks run in this process."""
    path = tmp_path / "tulpar.yaml"
    path.write_text(CONFIG.format(url=file_server.url + "/wire.xml"))
    monkeypatch.setenv("TULPAR_CONFIG", str(path))
    monkeypatch.setenv("REDIS_URL", broker)
    monkeypatch.setattr(rt_mod, "_current", None)
    from workers import tasks

    monkeypatch.setattr(tasks, "_last_purge", None)
    yield tasks, file_server.root / "wire.xml", path
    if rt_mod._current is not None:
        rt_mod._current.store.dispose()
        rt_mod._current.queue.close()
    rt_mod._current = None


def publish(feed, *items):
    feed.write_text(RSS.format(items="".join(ITEM.format(guid=g, title=t) for g, t in items)))


def tenant_sub(store, query="cpc"):
    settings = Settings(allow_private_targets=True)
    tenant = tenants.create(store, "acme", NOW).tenant
    hook = channels.create_webhook(store, tenant.id, "http://127.0.0.1:9/acme", "json", settings, NOW).channel
    sub = subscriptions.create(store, tenant.id, "cpc", [hook.id], NOW, query=query).row
    return tenant, hook, sub


# (TULPAR_CONFIG_SUBSCRIPTIONS, who gets the CPC story: (subscription name, tenant id set?))
CONFIG_SUBS = [
    (None, [("cpc", True), ("desk", False)]),   # default: on
    ("1", [("cpc", True), ("desk", False)]),
    ("false", [("cpc", True)]),                 # off: the file gives only its sources
    ("0", [("cpc", True)]),
]


@pytest.mark.parametrize("env, expected", CONFIG_SUBS)
def test_a_poll_matches_the_tenants_subscription_made_after_the_worker_started(worker, monkeypatch, env,
                                                                                 expected):
    tasks, feed, _ = worker
    if env is None:
        monkeypatch.delenv("TULPAR_CONFIG_SUBSCRIPTIONS", raising=False)
    else:
        monkeypatch.setenv("TULPAR_CONFIG_SUBSCRIPTIONS", env)
    rt = rt_mod.runtime()  # the worker is up before the subscription exists
    tenant, hook, sub = tenant_sub(rt.store)
    publish(feed, ("cpc-1", "CPC halts loadings"))
    assert tasks.poll_source("wire").startswith(f"wire: 1 items, 1 new, {len(expected)} matches")
    got = sorted((d.subscription, d.tenant_id is not None) for d in rt.store.deliveries())
    assert got == sorted(expected)
    [mine] = [d for d in rt.store.deliveries() if d.tenant_id]
    assert (mine.tenant_id, mine.subscription_id, mine.channel_id) == (tenant.id, sub.id, hook.id)

    subscriptions.update(rt.store, tenant.id, sub.id, NOW, paused=True)
    publish(feed, ("cpc-1", "CPC halts loadings"), ("cpc-2", "CPC halts loadings again"))
    tasks.poll_source("wire")
    assert [d for d in rt.store.deliveries() if d.item_id == "cpc-2" and d.tenant_id] == []


def test_a_config_change_keeps_the_tenants_subscriptions_without_reloading_them(worker):
    tasks, feed, path = worker
    rt = rt_mod.runtime()
    tenant, hook, sub = tenant_sub(rt.store, query="wheat")
    rt.subscriptions_now()
    entry = rt.subscriptions.news.matcher._entries[("tenant", sub.id)]
    path.write_text(CONFIG.format(url="http://127.0.0.1:9/wire.xml").replace("'cpc'", "'tenge'"))
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 10))
    rt = rt_mod.runtime()
    assert rt.config.sources[0].url == "http://127.0.0.1:9/wire.xml"
    assert [(s.name, s.query) for s in rt.subscriptions.news.subscriptions()] == [("desk", "tenge"),
                                                                                  ("cpc", "wheat")]
    assert rt.subscriptions.news.matcher._entries[("tenant", sub.id)] is entry


def old_articles(store, n, at):
    articles = [Article("wire", f"old-{i}", "t", "s", "http://x", None, "en") for i in range(n)]
    store.commit_poll(source="wire", url="http://x", etag=None, last_modified=None, seen_ids=[],
                      deliveries=[], now=at, country_articles=[(a, ()) for a in articles])


def stored(store) -> int:
    from services.news import archive

    return archive.count_since(store, datetime(2000, 1, 1, tzinfo=timezone.utc))


# (seconds since this process's last purge, purged now?)
THROTTLE = [(0, False), (60, False), (599, False), (601, True), (3600, True)]


@pytest.mark.parametrize("later, purges", THROTTLE)
def test_the_sweep_purges_old_articles_at_most_every_ten_minutes(worker, later, purges):
    tasks, _, _ = worker
    rt = rt_mod.runtime()
    now = datetime.now(timezone.utc)
    retention = timedelta(days=rt.settings.retention_days)
    old_articles(rt.store, 3, now - retention - timedelta(days=1))
    assert tasks.sweep() == 0  # the first sweep of this process purges
    assert stored(rt.store) == 0
    old_articles(rt.store, 2, now - retention - timedelta(hours=1))
    clock_at = tasks._last_purge + later
    assert tasks.purge_articles(rt, now, clock=lambda: clock_at) == (2 if purges else None)
    assert stored(rt.store) == (0 if purges else 2)


def test_a_process_that_only_delivers_never_loads_the_subscriptions(worker):
    tasks, _, _ = worker
    assert tasks.deliver(12345) == "skipped"  # no such delivery: nothing to claim
    assert rt_mod._current.lazy_live.loaded is None
    rt_mod._current.subscriptions_now()
    assert rt_mod._current.lazy_live.loaded is not None
