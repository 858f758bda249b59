"""One poll through services.polling, in process, on real parts: a loopback
feed server, the store (SQLite; PostgreSQL too when DATABASE_URL is set) and
a real redis-server as the queue, read back as a worker reads it. Plus the
registry (source kind -> pipeline) and the skeleton's shared steps."""
from __future__ import annotations

import importlib
from datetime import datetime, timedelta, timezone

from pathlib import Path

import pytest
from celery.worker.request import Request

from services import config as config_mod
from services import polling
from services.config import Subscription
from services.delivery.queue import DELIVER_QUEUE, DELIVER_TASK, Queue
from services.fx import pipeline as fx_pipeline
from services.fx.rules import Alert, parse_rule
from services.fx.sources import ADAPTERS
from services.local.ports import free_port
from services.news import pipeline as news_pipeline
from services.news.article import Article
from services.news.classify import Match
from services.settings import Settings
from brokers import taken

T_POLL = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
T_QUEUED = T_POLL + timedelta(seconds=2)
REQUEUE_AFTER = timedelta(minutes=5)

# One story a CPC rule wants, one it does not.
RSS = (Path(__file__).resolve().parents[1] / "data" / "feeds" / "cpc_and_weather.xml").read_text()

CONFIG = """
allow_private_targets: true
sources:
  - name: wire
    url: {base}/wire.xml
  - name: nbk
    kind: nbk
    url: {base}/get_rates.xml
subscriptions:
  - name: cpc
    query: 'cpc AND halt*'
    channels: [mailto:desk@example.com, http://127.0.0.1:9/hook]
  - name: tenge-weakens
    fx: {{pair: KZT/USD, change_pct: 1.0, direction: down}}
    channels: [mailto:fx@example.com, http://127.0.0.1:9/fx]
"""

NBK = """<?xml version="1.0" encoding="utf-8"?>
<rates><title>Official exchange rates</title><date>{date}</date>
  <item><fullname>ДОЛЛАР США</fullname><title>USD</title><description>{usd}</description>
        <quant>1</quant><index></index><change>0.00</change></item>
  <item><fullname>ЕВРО</fullname><title>EUR</title><description>601.44</description>
        <quant>1</quant><index></index><change>0.00</change></item>
</rates>"""


class Clock:
    """poll_source reads the clock for the poll, then again when it marks the
    deliveries enqueued: each call takes the next moment."""

    def __init__(self, *moments: datetime):
        self.moments = list(moments)

    def __call__(self) -> datetime:
        return self.moments.pop(0)


@pytest.fixture
def desk(file_server):
    settings = Settings(allow_private_targets=True)
    cfg = config_mod.parse(CONFIG.format(base=file_server.url), "tulpar.yaml", settings)
    return cfg, polling.Subscriptions.of(cfg.subscriptions), settings


def queued(broker_url: str, worker_app) -> list[tuple[str, list]]:
    """(task, args) of each message on the deliver queue, as the worker decodes it."""
    return [(r.task_name, r.args) for r in (Request(m, app=worker_app) for m in taken(broker_url, DELIVER_QUEUE))]


def test_one_poll_stores_enqueues_and_marks_the_items_seen(desk, store, file_server, broker, worker_app):
    cfg, subscriptions, settings = desk
    (file_server.root / "wire.xml").write_text(RSS)
    queue = Queue(broker)
    report = polling.poll_source(cfg.source("wire"), subscriptions, store, queue, settings,
                                 Clock(T_POLL, T_QUEUED))
    assert report.summary() == "wire: 2 items, 2 new, 1 matches, 2 deliveries queued"
    assert (report.error, report.queue_error) == (None, None)

    deliveries = store.deliveries()
    assert [(d.id, d.item_source, d.item_id, d.subscription, d.channel, d.status) for d in deliveries] == [
        (report.delivery_ids[0], "wire", "g1", "cpc", "mailto:desk@example.com", "pending"),
        (report.delivery_ids[1], "wire", "g1", "cpc", "http://127.0.0.1:9/hook", "pending")]
    assert deliveries[0].payload["subject"].startswith("[cpc] CPC halts loadings")
    assert deliveries[1].payload["article"]["title"] == "CPC halts loadings"
    # On the queue, as Celery messages the worker accepts, and marked so.
    assert queued(broker, worker_app) == [(DELIVER_TASK, [i]) for i in report.delivery_ids]
    assert {d.enqueued_at for d in deliveries} == {T_QUEUED}
    assert store.due(T_QUEUED, REQUEUE_AFTER) == []  # the sweeper leaves them be
    assert store.unseen("wire", ["g1", "g2"]) == set()  # both remembered, the match and the rest
    assert store.source_state("wire").etag

    again = polling.poll_source(cfg.source("wire"), subscriptions, store, queue, settings,
                                Clock(T_POLL + timedelta(minutes=1)))
    assert again.summary() == "wire: 0 items, 0 new, 0 matches, 0 deliveries queued"  # a 304
    assert queued(broker, worker_app) == [] and len(store.deliveries()) == 2
    queue.close()


def test_a_broker_that_cannot_be_reached_leaves_the_deliveries_to_the_sweeper(desk, store, file_server):
    cfg, subscriptions, settings = desk
    (file_server.root / "wire.xml").write_text(RSS)
    down = Queue(f"redis://127.0.0.1:{free_port()}/0")
    report = polling.poll_source(cfg.source("wire"), subscriptions, store, down, settings, Clock(T_POLL))
    assert report.error is None and "refused" in report.queue_error
    assert report.summary() == "wire: 2 items, 2 new, 1 matches, 2 deliveries queued"  # in the outbox
    assert [d.enqueued_at for d in store.deliveries()] == [None, None]
    assert store.due(T_QUEUED, REQUEUE_AFTER) == report.delivery_ids  # the sweeper's to send
    assert store.unseen("wire", ["g1", "g2"]) == set()  # committed with the deliveries


def test_a_failing_source_is_recorded_and_queues_nothing(desk, store, broker, worker_app):
    cfg, subscriptions, settings = desk  # wire.xml was never published: 404
    report = polling.poll_source(cfg.source("wire"), subscriptions, store, Queue(broker), settings,
                                 Clock(T_POLL))
    assert report.summary() == f"wire: FAILED {cfg.source('wire').url}: HTTP 404 Not Found"
    assert not report.transient and report.delivery_ids == []
    state = store.source_state("wire")
    assert (state.consecutive_errors, state.last_ok_at) == (1, None)
    assert queued(broker, worker_app) == [] and store.deliveries() == []


def test_rates_take_the_same_road(desk, store, file_server, broker, worker_app):
    cfg, subscriptions, settings = desk
    rates = file_server.root / "get_rates.xml"
    day = T_POLL.date()
    summaries = []
    for n, usd in ((0, "500.00"), (1, "510.00")):  # USD/KZT +2%: the tenge weakens 1.96%
        rates.write_text(NBK.format(date=(day + timedelta(days=n)).strftime("%d.%m.%Y"), usd=usd))
        moment = T_POLL + timedelta(days=n)
        report = polling.poll_source(cfg.source("nbk"), subscriptions, store, Queue(broker), settings,
                                     Clock(moment, moment))
        summaries.append(report.summary())
    assert summaries == ["nbk: 2 rates, 2 new, 0 fx alerts, 0 deliveries queued",
                         "nbk: 2 rates, 2 new, 1 fx alerts, 2 deliveries queued"]
    assert queued(broker, worker_app) == [(DELIVER_TASK, [i]) for i in report.delivery_ids]
    assert [(d.subscription, d.item_id, d.channel) for d in store.deliveries()] == [
        ("tenge-weakens", f"KZT/USD@{day + timedelta(days=1)}T00:00:00+00:00", channel)
        for channel in ("mailto:fx@example.com", "http://127.0.0.1:9/fx")]


# --- the registry --------------------------------------------------------------

# (source kind, the module whose pipeline polls it)
KIND_PIPELINES = [
    ("feed", "services.news.pipeline"),
    ("nbk", "services.fx.pipeline"),
    ("nbk-rss", "services.fx.pipeline"),
    ("nbkr", "services.fx.pipeline"),
    ("cbu", "services.fx.pipeline"),
    ("nbt", "services.fx.pipeline"),
    ("cbr", "services.fx.pipeline"),
    ("ecb", "services.fx.pipeline"),
    ("generic-json", "services.fx.pipeline"),
    ("constant", "services.fx.pipeline"),
]


@pytest.mark.parametrize("kind, module", KIND_PIPELINES)
def test_each_kind_is_polled_by_its_pipeline(kind, module):
    assert polling.pipeline_for(kind) is importlib.import_module(module).PIPELINE


def test_the_registry_lists_every_kind_once_and_every_rate_adapter():
    assert polling.KINDS == dict(KIND_PIPELINES)
    assert {k for k, m in polling.KINDS.items() if m == polling.FX} == set(ADAPTERS)
    assert polling.pipeline_for("feed") is news_pipeline.PIPELINE
    assert polling.pipeline_for("nbk") is fx_pipeline.PIPELINE


@pytest.mark.parametrize("kind", ["rss", "", "NBK", "feeds"])
def test_an_unknown_kind_is_a_clear_error(kind):
    with pytest.raises(polling.UnknownSourceKind) as caught:
        polling.pipeline_for(kind)
    assert str(caught.value) == (f"unknown source kind {kind!r}; known: cbr, cbu, constant, ecb, feed, "
                                 "generic-json, nbk, nbk-rss, nbkr, nbt")


# --- the shared steps ------------------------------------------------------------

NEWS_MATCH = Match(Article("wire", "cpc-1", "t", "", "http://x", None),
                   Subscription("cpc", ("mailto:desk@example.com",), query="cpc"), [])
FX_ALERT = Alert("tenge", "KZT/USD", datetime(2026, 11, 3, tzinfo=timezone.utc), 1, 1, 1,
                 datetime(2026, 11, 2, tzinfo=timezone.utc), "1d", "c", "nbk")
FX_DECISION = fx_pipeline.Decision(
    fx_pipeline.FxSubscription("tenge", parse_rule({"name": "tenge", "pair": "KZT/USD", "change_pct": 1}),
                               ("https://hooks.example.com/fx",)), FX_ALERT, [])

# (notice, channel, key): the keys the pipelines wrote before they shared
# this skeleton; outbox rows already written dedupe by them, so they must
# never change.
KEYS = [
    (news_pipeline.notice(NEWS_MATCH), "mailto:desk@example.com",
     "eabe59739cc30799d731a1c9c7f8bacdfb34ea60b8b0bec72541b35b92b40c34"),
    (fx_pipeline.notice(FX_DECISION), "https://hooks.example.com/fx",
     "87baa51ec96cb76d1284e6bf85104bcb9328b4085e98ead0dbda262936ddbef5"),
]


@pytest.mark.parametrize("notice, channel, key", KEYS, ids=["news", "fx"])
def test_idempotency_keys_are_those_written_before(notice, channel, key):
    assert polling.idempotency_key(*notice.key, channel) == key


class Renders:
    """A pipeline's renderers that count their calls."""

    def __init__(self):
        self.calls = []

    def pipeline(self) -> polling.Pipeline:
        def render(kind):
            def one(subject, now, templates_dir):
                self.calls.append(kind)
                return {"kind": kind, "subject": subject}
            return one

        return polling.Pipeline(("items", "matches"), read=None, fresh=None, notices=None,
                                email=render("email"), webhook=render("webhook"), commit=None)


# (channels of one notice, the payload kind of each delivery, render calls)
ROUTES = [
    (("mailto:a@example.com",), ["email"], ["email"]),
    (("https://h.example/x",), ["webhook"], ["webhook"]),
    (("mailto:a@example.com", "https://h.example/x"), ["email", "webhook"], ["email", "webhook"]),
    (("mailto:a@example.com", "mailto:b@example.com", "http://h.example/y", "https://h.example/x"),
     ["email", "email", "webhook", "webhook"], ["email", "webhook"]),
]


@pytest.mark.parametrize("channels, kinds, calls", ROUTES)
def test_each_channel_gets_one_delivery_rendered_once_per_kind(channels, kinds, calls):
    renders = Renders()
    notice = polling.Notice("the news", "sub", channels, "wire", "g1", key=("news", "wire", "g1", "sub"))
    out = polling.rendered(renders.pipeline(), [notice], T_POLL, Settings().templates_dir)
    assert [d.channel for d in out] == list(channels)
    assert [d.payload["kind"] for d in out] == kinds
    assert {(d.item_source, d.item_id, d.subscription) for d in out} == {("wire", "g1", "sub")}
    assert [d.idempotency_key for d in out] == [polling.idempotency_key("news", "wire", "g1", "sub", c)
                                                for c in channels]
    assert renders.calls == calls


def test_a_tenants_notice_goes_to_its_routes_keyed_by_channel_id():
    from services.config import Route

    renders = Renders()
    sub = Subscription("cpc", ("mailto:a@example.com", "https://h.example/x"), query="cpc", id="sub_1",
                       tenant_id="tn_1", routes=(Route("mailto:a@example.com", "ch_a"),
                                                 Route("https://h.example/x", "ch_x", "json")))
    notice = polling.Notice.to(sub, "the news", "wire", "g1", key=("news", "wire", "g1", polling.SUBSCRIPTION))
    assert notice.key == ("news@tenant", "wire", "g1", "sub_1")
    out = polling.rendered(renders.pipeline(), [notice], T_POLL, Settings().templates_dir)
    assert [(d.channel, d.subscription, d.tenant_id, d.subscription_id, d.channel_id, d.payload["kind"])
            for d in out] == [("mailto:a@example.com", "cpc", "tn_1", "sub_1", "ch_a", "email"),
                              ("https://h.example/x", "cpc", "tn_1", "sub_1", "ch_x", "webhook")]
    assert [d.idempotency_key for d in out] == [polling.idempotency_key("news@tenant", "wire", "g1", "sub_1", c)
                                                for c in ("ch_a", "ch_x")]
    assert renders.calls == ["email", "webhook"]
    # The config's subscription of the same name keeps its old key.
    config = polling.Notice.to(Subscription("cpc", ("mailto:a@example.com",), query="cpc"), "the news", "wire",
                               "g1", key=("news", "wire", "g1", polling.SUBSCRIPTION))
    assert config.key == ("news", "wire", "g1", "cpc") and config.routes == ()
