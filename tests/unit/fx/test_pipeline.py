"""The currency pipeline on a real store (SQLite; PostgreSQL too when
DATABASE_URL is set) reading real NBK-format files from disk (file:// URLs go
through the same fetch as http)."""
from __future__ import annotations

import base64
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services import polling
from services.fx import pipeline as pipeline_fx
from services.news.article import Article
from services.config import Source
from services.fx.rules import parse_rule
from services.fx.pipeline import FxSubscription, poll_rates
from services.settings import Settings
from services.store import Store
from services.store import rates as rate_store

DAY0 = date(2026, 11, 2)
CHANNELS = ("mailto:fx@example.com", "https://hooks.example.com/fx")

NBK = """<?xml version="1.0" encoding="utf-8"?>
<rates>
  <generator>Alternate RSS Builder</generator>
  <title>Official exchange rates of National Bank of Republic Kazakhstan</title>
  <link>www.nationalbank.kz</link>
  <description>Official exchange rates of National Bank of Republic Kazakhstan</description>
  <copyright>www.nationalbank.kz</copyright>
  <date>{date}</date>
  <item><fullname>ДОЛЛАР США</fullname><title>USD</title><description>{usd}</description>
        <quant>1</quant><index></index><change>0.00</change></item>
  <item><fullname>РОССИЙСКИЙ РУБЛЬ</fullname><title>RUB</title><description>6.41</description>
        <quant>1</quant><index></index><change>0.00</change></item>
  <item><fullname>УЗБЕКСКИХ СУМОВ</fullname><title>UZS</title><description>3.93</description>
        <quant>100</quant><index></index><change>0.00</change></item>
</rates>
"""


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def at(n: int, hour: int = 0) -> datetime:
    d = day(n)
    return datetime(d.year, d.month, d.day, hour, tzinfo=timezone.utc)


class Desk:
    """A store, one NBK source file on disk and the subscriptions polling it."""

    def __init__(self, db_url: str, tmp_path, rules: dict[str, dict]):
        self.store = Store(db_url)
        self.store.create_schema()
        self.file = tmp_path / "get_rates.xml"
        self.source = Source("nbk-daily", "nbk", self.file.as_uri(), 60.0)
        self.subs = [FxSubscription(name, parse_rule({"name": name, **rule}), CHANNELS)
                     for name, rule in rules.items()]
        self.settings = Settings(allow_file_sources=True)  # the source is a file:// URL

    def publish(self, n: int, usd: str) -> None:
        self.write(NBK.format(date=day(n).strftime("%d.%m.%Y"), usd=usd).encode("utf-8"))

    def write(self, body: bytes) -> None:
        self.file.write_bytes(body)

    def poll(self, n: int):
        return poll_rates(self.source, self.subs, self.store, self.settings, at(n, 6))


@pytest.fixture
def desk_for(db_url, tmp_path):
    made = []

    def make(rules):
        made.append(Desk(db_url, tmp_path, rules))
        return made[-1]

    yield make
    for d in made:
        d.store.dispose()


USD_UP_1 = {"pair": "USD/KZT", "change_pct": 1}
ABOVE_505 = {"pair": "USD/KZT", "above": 505}
WEEK_UP_1 = {"pair": "USD/KZT", "change_pct": 1, "window": "7d", "direction": "up"}
KZT_DOWN_1 = {"pair": "KZT/USD", "change_pct": 1, "direction": "down"}

# (case, rule, steps): each step publishes the USD/KZT rate for day `n`, polls
# on that day and expects that many alerts from this poll.
CASES = [
    ("first observation ever: no alert", USD_UP_1, [(0, "500", 0)]),
    ("move at least the threshold fires", USD_UP_1, [(0, "500", 0), (1, "505", 1)]),
    ("move under the threshold: nothing", USD_UP_1, [(0, "500", 0), (1, "504.99", 0)]),
    ("repeated file: stored once, no second alert", USD_UP_1,
     [(0, "500", 0), (1, "510", 1), (1, "510", 0), (1, "510", 0)]),
    ("stays moved, level: no repeat", ABOVE_505, [(0, "500", 0), (1, "510", 1), (2, "512", 0), (3, "511", 0)]),
    ("stays moved, 7d window: no repeat", WEEK_UP_1, [(0, "500", 0), (7, "510", 1), (8, "510", 0), (9, "511", 0)]),
    ("comes back then moves again, level: fires again", ABOVE_505,
     [(0, "500", 0), (1, "510", 1), (2, "500", 0), (3, "510", 1)]),
    ("comes back then moves again, change down on KZT/USD", KZT_DOWN_1,
     [(0, "500", 0), (1, "510", 1), (2, "510", 0), (3, "500", 0), (4, "510", 1)]),
    ("derived pair KZT/USD from NBK's USD/KZT: tenge firming is up, not down", KZT_DOWN_1,
     [(0, "510", 0), (1, "500", 0)]),
    ("weekend gap: previous observation however old", USD_UP_1, [(0, "500", 0), (3, "506", 1)]),
]


@pytest.mark.parametrize("case, rule, steps", CASES, ids=[c[0] for c in CASES])
def test_alerts_over_a_sequence_of_files(desk_for, case, rule, steps):
    desk = desk_for({"watch": rule})
    stored_days = set()
    for n, usd, expected in steps:
        desk.publish(n, usd)
        before = len(desk.store.deliveries())
        report = desk.poll(n)
        assert report.error is None, report.error
        assert report.matched == expected, (n, usd)
        assert len(report.delivery_ids) == expected * len(CHANNELS)
        assert len(desk.store.deliveries()) == before + expected * len(CHANNELS)
        assert report.new == (0 if n in stored_days else 3)  # USD, RUB, UZS
        stored_days.add(n)
    # Every (source, pair, day) is stored once however often the file was read.
    assert rate_store.observation_count(desk.store) == 3 * len(stored_days)


def test_derived_pair_alert_carries_the_inverted_rates(desk_for):
    desk = desk_for({"tenge-weakens": KZT_DOWN_1})
    desk.publish(0, "500")
    desk.poll(0)
    desk.publish(1, "510")
    report = desk.poll(1)
    assert report.matched == 1
    hook = next(d for d in desk.store.deliveries() if d.channel.startswith("https"))
    body = hook.payload
    assert (body["pair"], body["from"], body["source"]) == ("KZT/USD", "0.002", "nbk-daily")
    assert Decimal(body["to"]) == (Decimal(1) / Decimal(510)).quantize(Decimal("1e-30"))
    assert body["change_pct"] == pytest.approx(-1.9607843137)
    assert body["at"] == at(1).isoformat() and body["from_at"] == at(0).isoformat()


def test_email_has_chart_and_country_news(desk_for):
    desk = desk_for({"tenge-weakens": KZT_DOWN_1})
    news = Article("wire", "n1", "Tenge slides as oil falls", "", "https://news.example/kz/1",
                   at(1, 3))
    desk.store.commit_poll(source="wire", url="http://wire", etag=None, last_modified=None,
                           seen_ids=["n1"], deliveries=[], now=at(1, 3),
                           country_articles=[(news, ("KZ",))])
    for n, usd in ((0, "500"), (1, "510")):
        desk.publish(n, usd)
        desk.poll(n)
    email = next(d for d in desk.store.deliveries() if d.channel.startswith("mailto")).payload
    [image] = email["inline_images"]
    assert image["content_type"] == "image/png"
    assert base64.b64decode(image["data_b64"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert f'src="cid:{image["cid"]}"' in email["html"]
    assert "https://news.example/kz/1" in email["html"] and "Tenge slides" in email["text"]
    assert "KZT/USD" in email["subject"] and "-1.96%" in email["subject"]
    assert "nbk-daily" in email["text"] and "2026-11-03" in email["text"]


def test_a_new_subscription_never_alerts_on_old_history(desk_for):
    desk = desk_for({})
    for n, usd in ((0, "500"), (1, "510")):  # a 2% move nobody watched
        desk.publish(n, usd)
        assert desk.poll(n).matched == 0
    desk.subs = [FxSubscription("late", parse_rule({"name": "late", **USD_UP_1}), CHANNELS)]
    desk.publish(2, "510")
    assert desk.poll(2).matched == 0  # day 2 is judged against day 1; day 1 is history
    desk.publish(3, "520")
    assert desk.poll(3).matched == 1


MALFORMED = [
    ("not XML", b"<html><body>Service unavailable", "nbk: not well-formed XML"),
    ("empty", b"", "nbk: the file is empty"),
    ("bad number", NBK.format(date="04.11.2026", usd="5l0").encode(), "nbk: item 1 (USD) <description> '5l0' is not a number"),
    ("bad date", NBK.format(date="2026/11/04", usd="510").encode(), "nbk: <rates><date> '2026/11/04' is not a date"),
]


@pytest.mark.parametrize("case, body, message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_file_is_a_source_error_and_changes_nothing(desk_for, case, body, message):
    desk = desk_for({"watch": USD_UP_1})
    for n, usd in ((0, "500"), (1, "510")):
        desk.publish(n, usd)
        desk.poll(n)
    states = rate_store.rule_states(desk.store, ["watch"])
    count, sent = rate_store.observation_count(desk.store), len(desk.store.deliveries())
    desk.write(body)
    report = desk.poll(2)
    assert report.error is not None and message in report.error
    assert report.error.startswith(desk.source.url)
    state = desk.store.source_state("nbk-daily")
    assert message in state.last_error and state.consecutive_errors == 1
    assert rate_store.observation_count(desk.store) == count
    assert len(desk.store.deliveries()) == sent
    assert rate_store.rule_states(desk.store, ["watch"]) == states
    desk.publish(2, "520")  # fixed: the next poll reads it and clears the error
    fixed = desk.poll(2)
    assert (fixed.error, fixed.new) == (None, 3)
    assert desk.store.source_state("nbk-daily").last_error is None


def test_missing_file_is_a_source_error(desk_for):
    desk = desk_for({"watch": USD_UP_1})
    report = desk.poll(0)
    assert "no such file" in report.error
    assert desk.store.source_state("nbk-daily").consecutive_errors == 1


def test_constant_source_stores_one_observation_per_day(desk_for):
    desk = desk_for({"manat": {"pair": "TMT/USD", "change_pct": 0.5}})
    desk.source = Source("tmt-official", "constant", "", 3600.0, {"pair": "USD/TMT", "rate": 3.5})
    news = [desk.poll(n) for n in (0, 0, 1)]
    assert [r.new for r in news] == [1, 0, 1]
    assert [r.matched for r in news] == [0, 0, 0]
    assert [q.rate for q in rate_store.history(desk.store, at(-1))] == [Decimal("3.5")] * 2


def test_unchanged_file_polls_as_not_modified(desk_for):
    desk = desk_for({"watch": USD_UP_1})
    desk.publish(0, "500")
    assert desk.poll(0).fetched == 3
    again = desk.poll(0)  # same file, same mtime: a 304 from the file "server"
    assert (again.error, again.fetched, again.new) == (None, 0, 0)


def test_fx_subscriptions_come_from_the_config(tmp_path):
    from services import config

    cfg = config.parse("""
sources:
  - {name: tmt, kind: constant, options: {pair: USD/TMT, rate: 3.5}}
subscriptions:
  - name: tenge
    fx: {pair: KZT/USD, change_pct: 1.0, window: 1d, direction: down}
    channels: [mailto:fx@example.com]
  - name: news
    query: tenge
    channels: [mailto:n@example.com]
""")
    [sub] = pipeline_fx.fx_subscriptions(cfg.subscriptions)
    assert (sub.name, sub.rule.pair, sub.rule.window, sub.channels) == (
        "tenge", "KZT/USD", "1d", ("mailto:fx@example.com",))


# (case, source YAML, expected error or None): rate sources in the config file.
SOURCE_CONFIGS = [
    ("nbk file", "{name: n, kind: nbk, url: 'https://nationalbank.kz/rss/get_rates.cfm'}", None),
    ("constant needs no url", "{name: t, kind: constant, options: {pair: USD/TMT, rate: 3.5}}", None),
    ("generic json", "{name: g, kind: generic-json, url: 'https://x.example/r.json', options: "
                     "{items: data, code: c, rate: r, quote: KZT, document_date: d}}", None),
    ("a rate file needs a url", "{name: n, kind: cbr}", "c.yaml:3: sources[0].url: is required"),
    ("unknown kind lists the rate kinds", "{name: n, kind: nbkk, url: 'https://x'}",
     "unknown source kind 'nbkk'; known: cbr, cbu, constant, ecb, feed, generic-json, nbk, nbk-rss, nbkr, nbt"),
    ("file adapters take no options", "{name: n, kind: nbk, url: 'https://x', options: {a: 1}}",
     "c.yaml:3: sources[0].options: a nbk source takes no options"),
    ("constant checks its rate", "{name: t, kind: constant, options: {pair: USD/TMT, rate: abc}}",
     "c.yaml:3: sources[0].options: constant: rate 'abc' is not a number"),
    ("constant names a missing setting", "{name: t, kind: constant, options: {pair: USD/TMT}}",
     "sources[0].options: constant: `rate` is required"),
]


@pytest.mark.parametrize("case, source, error", SOURCE_CONFIGS, ids=[c[0] for c in SOURCE_CONFIGS])
def test_rate_sources_in_the_config(case, source, error):
    from services import config

    text = f"\nsources:\n  - {source}\n"
    if error is None:
        [parsed] = config.parse(text, "c.yaml").sources
        assert polling.pipeline_for(parsed.kind) is pipeline_fx.PIPELINE
        return
    with pytest.raises(config.ConfigError) as caught:
        config.parse(text, "c.yaml")
    assert error in str(caught.value)


def test_an_unknown_generic_json_option_is_pointed_at_by_line():
    from services import config

    text = """
sources:
  - name: g
    kind: generic-json
    url: https://x.example/r.json
    options:
      items: data
      code: c
      rate: r
      quote: KZT
      document_date: d
      colour: blue
"""
    with pytest.raises(config.ConfigError, match=r"^c\.yaml:12: sources\[0\]\.options\.colour: "
                                                 r"generic-json: unknown settings \['colour'\]"):
        config.parse(text, "c.yaml")


def test_ticker_reads_the_stored_rates_for_the_watched_pairs(desk_for, db_url, tmp_path, monkeypatch, capsys):
    from services.cli import main

    desk = desk_for({})
    for n, usd in ((0, "500"), (1, "510")):
        desk.publish(n, usd)
        desk.poll(n)
    cfg = tmp_path / "fx.yaml"
    cfg.write_text("subscriptions:\n  - name: usd\n    fx: {pair: USD/KZT, above: 520}\n"
                   "    channels: [mailto:fx@example.com]\n")
    monkeypatch.setenv("DATABASE_URL", db_url)
    code = main(["fx", "ticker", "--config", str(cfg), "--now", at(1, 12).isoformat()])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out == ["USD/KZT = 510 +2.00%", "KZT/USD = 0.0019608 -1.96%", "KGS/USD = n/a",
                   "UZS/USD = 0.000077059 -1.96%", "TJS/USD = n/a", "TMT/USD = n/a"]
    main(["fx", "ticker", "--config", str(cfg), "--pairs", "RUB/KZT", "--now", at(0, 12).isoformat()])
    assert capsys.readouterr().out == "RUB/KZT = 6.41 n/a\n"


def test_the_demo_rates_alert_on_every_run(desk_for, tmp_path):
    """`make run` publishes demo/rates/ day by day; each run (continuing the
    days of the last) must give the demo's fx subscriptions an alert."""
    from services.local.demo import DemoRates
    from services.settings import ROOT

    desk = desk_for({"tenge-weakens": KZT_DOWN_1, "dollar-above-525-tenge": {"pair": "USD/KZT", "above": 525}})
    state = tmp_path / "demo-rates-day.txt"
    today = day(0)
    for run in range(3):
        rates = DemoRates(ROOT / "demo" / "rates", desk.file, state, today)
        alerts = []
        while rates.publish_next():
            published = date.fromisoformat(state.read_text())
            alerts.append(poll_rates(desk.source, desk.subs, desk.store, desk.settings,
                                     datetime(published.year, published.month, published.day, 6,
                                              tzinfo=timezone.utc)).matched)
        assert alerts == [0, 2], f"run {run}"  # day one sets the scene, day two moves >1%
    assert date.fromisoformat(state.read_text()) == today + timedelta(days=4)


def test_the_config_example_in_the_docs_loads():
    import re

    from services import config
    from services.settings import ROOT

    text = (ROOT / "docs" / "fx-alerts.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    cfg = config.parse(example, "docs/fx-alerts.md")
    assert {polling.pipeline_for(s.kind) for s in cfg.sources} == {pipeline_fx.PIPELINE}
    assert len(pipeline_fx.fx_subscriptions(cfg.subscriptions)) == len(cfg.subscriptions)


def test_racing_polls_of_one_move_alert_once(desk_for):
    """Several workers poll the same new file at the same moment (beat and a
    manual poll, a slow previous round): one commit wins, the others write
    nothing and say so; the move gives exactly one alert."""
    import threading

    desk = desk_for({"watch": USD_UP_1, "level": ABOVE_505})
    desk.publish(0, "500")
    desk.poll(0)
    desk.publish(1, "510")
    start, reports = threading.Barrier(4), []

    def racer():
        start.wait()
        reports.append(desk.poll(1))

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(reports) == 4
    won = [r for r in reports if r.error is None and r.new]
    assert all(r.error is None or r.transient for r in reports), [r.error for r in reports]
    assert len(won) == 1 and won[0].matched == 2
    assert len(desk.store.deliveries()) == 2 * len(CHANNELS)
    assert rate_store.observation_count(desk.store) == 6


def test_tenants_fx_subscriptions_keep_their_state_under_their_ids(desk_for):
    # Two tenants' subscriptions may share a name: each is its own rule state
    # and its own alert, and the config's same-named one keeps its own too.
    from services.config import Route
    from services.store.models import FxRuleState

    desk = desk_for({"usd": USD_UP_1})
    desk.subs += [FxSubscription("usd", parse_rule({"name": "usd", **USD_UP_1}), ("https://h.example/t1",),
                                 id=f"sub_{t}", tenant_id=f"tn_{t}", routes=(Route("https://h.example/t1", f"ch_{t}",
                                                                                    "json"),))
                  for t in (1, 2)]
    for n, usd in ((0, "500"), (1, "510")):
        desk.publish(n, usd)
        report = desk.poll(n)
    assert report.matched == 3
    with desk.store.sessions() as s:
        assert sorted(r.subscription for r in s.query(FxRuleState)) == ["sub_1", "sub_2", "usd"]
    rows = desk.store.deliveries()
    assert [(d.subscription, d.tenant_id, d.subscription_id, d.channel_id) for d in rows] == [
        ("usd", None, None, None), ("usd", None, None, None),
        ("usd", "tn_1", "sub_1", "ch_1"), ("usd", "tn_2", "sub_2", "ch_2")]
    assert len({d.idempotency_key for d in rows}) == 4
    # The config's keeps exactly the key it had before tenants existed.
    at_ = [d for d in rows if d.tenant_id is None][0].item_id.split("@", 1)[1]
    assert {d.idempotency_key for d in rows if d.tenant_id is None} == {
        polling.idempotency_key("fx", "usd", "USD/KZT", at_, c) for c in CHANNELS}
