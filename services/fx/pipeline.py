"""The currency pipeline for one rate source, beside the news one (pipeline.py):

    fetch -> parse -> new observations -> evaluate FX rules -> route -> render
          -> commit (observations + rule states + outbox, one transaction) -> ids

The caller enqueues the returned delivery ids, as for news. Only the edges do
I/O (`poll_rates`: the fetch, the store reads, the commit); the decision
(`decide`) is pure and takes the stored history, the new quotes and the saved
rule states.

Which points a subscription judges: every point of its pair's series (observed,
inverse or cross, see services/fx/history.py) later than its saved
`evaluated_until`. A subscription with no saved state starts after the series'
last point *before* this poll, so adding a rule never alerts on old history.
Points are judged in time order with the persisted edge-trigger state.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from services.delivery import channels
from services.fx import chart
from services.fx import render as render_fx
from services.config import Source, Subscription
from services.fx import rules as fx_rules
from services.fx.history import by_pair, series
from services.fx.quote import Quote
from services.news.pipeline import PollReport
from services.settings import Settings
from services.net.fetch import FetchState, SourceError, fetch
from services.fx.sources import ADAPTERS, FILE_ADAPTERS, RateConfigError, RateFormatError
from services.fx.sources import constant, generic_json
from services.store import Store
from services.store import rates as rate_store
from services.store.db import NewDelivery
from services.store.rates import RuleStateUpdate, SavedRuleState

RATE_KINDS = frozenset(ADAPTERS)
# History loaded per poll: the chart's 30 days plus room for a `previous`
# window over a long holiday; a duration window adds its own length.
LOOKBACK = timedelta(days=40)
# The currencies whose news an alert links (the others are the world's majors).
COUNTRY_OF = {"KZT": "KZ", "KGS": "KG", "UZS": "UZ", "TJS": "TJ", "TMT": "TM"}
NEWS_LINKS = 5


@dataclass(frozen=True)
class FxSubscription:
    name: str
    rule: fx_rules.Rule
    channels: tuple[str, ...]


def fx_subscriptions(subscriptions: Iterable[Subscription]) -> list[FxSubscription]:
    """The config's fx: subscriptions with their rules parsed (config.py has
    already validated them, so this does not fail on a loaded config)."""
    return [FxSubscription(s.name, fx_rules.parse_rule({"name": s.name, **s.fx}), tuple(s.channels))
            for s in subscriptions if s.fx is not None]


@dataclass
class RateReport(PollReport):
    alerts: int = 0

    def summary(self) -> str:
        if self.error:
            return f"{self.source}: FAILED {self.error}"
        return (f"{self.source}: {self.fetched} rates, {self.new} new, {self.alerts} fx alerts, "
                f"{len(self.delivery_ids)} deliveries queued")


@dataclass(frozen=True)
class Decision:
    subscription: FxSubscription
    alert: fx_rules.Alert
    series: list[Quote] = field(repr=False)  # the pair's points, for the chart


# --- the pure part ---------------------------------------------------------

def decide(subs: Sequence[FxSubscription], stored: Sequence[Quote], fresh: Sequence[Quote],
           saved: dict[str, SavedRuleState]) -> tuple[list[Decision], dict[str, RuleStateUpdate]]:
    """Alerts and the new rule states, given what was stored before this poll
    (`stored`), what this poll adds (`fresh`) and the saved states."""
    before, after = by_pair(stored), by_pair([*stored, *fresh])
    decisions: list[Decision] = []
    updates: dict[str, RuleStateUpdate] = {}
    for sub in subs:
        points = series(sub.rule.pair, after)
        prior = saved.get(sub.name)
        if prior is None:
            old = series(sub.rule.pair, before)
            start = old[-1].at if old else None
        else:
            start = prior.evaluated_until
        todo = [p for p in points if start is None or p.at > start]
        if not todo:
            continue
        state = prior.state if prior else fx_rules.RuleState()
        for new in todo:
            alert, state = fx_rules.evaluate(sub.rule, points, new, state)
            if alert is not None:
                decisions.append(Decision(sub, alert, points))
        updates[sub.name] = RuleStateUpdate(prior.evaluated_until if prior else None,
                                            SavedRuleState(state, todo[-1].at))
    return decisions, updates


def idempotency_key(subscription: str, alert: fx_rules.Alert, channel: str) -> str:
    # Same rule, pair, moment and target -> same key: a re-poll after a crash
    # (or a second poller racing this one) cannot write the alert twice.
    raw = "\x1f".join(["fx", subscription, alert.pair, alert.at.isoformat(), channel])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def countries(pair: str) -> list[str]:
    return [COUNTRY_OF[c] for c in pair.split("/") if c in COUNTRY_OF]


def deliveries(decision: Decision, news: Sequence[dict], now: datetime,
               templates_dir: Path | None = None) -> list[NewDelivery]:
    """One rendered delivery per channel of the decision's subscription."""
    sub, alert = decision.subscription, decision.alert
    png = None
    out = []
    for channel in sub.channels:
        if channels.kind(channel) == "email":
            if png is None:
                png = chart.line_chart(alert.pair, chart.last_days(decision.series, alert.at))
            payload = render_fx.fx_email(alert, sub.name, news=news, chart_png=png, now=now,
                                         templates_dir=templates_dir)
        else:
            payload = render_fx.fx_webhook(alert, sub.name, news=news, now=now, templates_dir=templates_dir)
        out.append(NewDelivery(idempotency_key(sub.name, alert, channel), alert.source,
                               f"{alert.pair}@{alert.at.isoformat()}", sub.name, channel, payload))
    return out


# --- the edges ---------------------------------------------------------------

def read_quotes(source: Source, previous: FetchState | None, settings: Settings,
                now: datetime) -> tuple[list[Quote], FetchState]:
    """The source's quotes (none on a 304), stamped with the source's name.
    Raises SourceError (fetch) or RateFormatError/RateConfigError (content)."""
    if source.kind == "constant":
        quotes, state = constant.quotes(constant.ConstantConfig.from_dict(source.options), now), FetchState()
    else:
        result = fetch(source.url, previous, settings)
        if result.not_modified or result.body is None:
            return [], result.state
        if source.kind == "generic-json":
            quotes = generic_json.parse(result.body, generic_json.GenericJsonConfig.from_dict(source.options))
        else:
            quotes = FILE_ADAPTERS[source.kind].parse(result.body)
        state = result.state
    return [Quote(q.pair, q.rate, q.at, source.name) for q in quotes], state


def poll_rates(source: Source, subscriptions: Sequence[FxSubscription], store: Store,
               settings: Settings, now: datetime) -> RateReport:
    report = RateReport(source.name)
    saved_source = store.source_state(source.name)
    previous = (FetchState(saved_source.etag, saved_source.last_modified)
                if saved_source and saved_source.url == source.url else None)
    try:
        quotes, fetch_state = read_quotes(source, previous, settings, now)
    except SourceError as exc:
        store.record_source_error(source.name, source.url, str(exc), now)
        report.error, report.transient = str(exc), exc.transient
        return report
    except (RateFormatError, RateConfigError) as exc:
        # A malformed file is the publisher's problem, not a crash: record it
        # like a failed fetch, keep the old validators so the next poll reads
        # the file again, and change nothing else.
        message = f"{source.url or source.kind}: {exc}"
        store.record_source_error(source.name, source.url, message, now)
        report.error = message
        return report

    fresh = rate_store.unseen(store, source.name, quotes)
    report.fetched, report.new = len(quotes), len(fresh)
    decisions: list[Decision] = []
    updates: dict[str, RuleStateUpdate] = {}
    if fresh and subscriptions:
        window = max((s.rule.window_delta or timedelta(0) for s in subscriptions
                      if isinstance(s.rule, fx_rules.ChangeRule)), default=timedelta(0))
        since = min(now, min(q.at for q in fresh)) - LOOKBACK - window
        stored = rate_store.history(store, since)
        saved = rate_store.rule_states(store, [s.name for s in subscriptions])
        decisions, updates = decide(subscriptions, stored, fresh, saved)
    rendered: list[NewDelivery] = []
    for decision in decisions:
        rendered += deliveries(decision, recent_news(store, decision.alert.pair), now, settings.templates_dir)
    report.alerts = len(decisions)
    try:
        report.delivery_ids = rate_store.commit_rates(
            store, source=source.name, url=source.url, etag=fetch_state.etag,
            last_modified=fetch_state.last_modified, observations=fresh, states=updates,
            deliveries=rendered, now=now)
    except (rate_store.StaleRuleState, IntegrityError) as exc:
        # Another poll stored these observations or states first; it alerted
        # (or will) for them. Nothing of ours was written; the next poll is clean.
        report.error = f"another poll committed first, nothing written: {type(exc).__name__}"
        report.transient = True
        report.alerts = 0
    return report


def recent_news(store: Store, pair: str) -> list[dict]:
    """The latest stored articles that matched country:XX for the pair's
    Central Asian currencies (KZT -> KZ ...), newest first."""
    out: list[dict] = []
    for country in countries(pair):
        for a in store.recent_articles(country, NEWS_LINKS):
            out.append({"title": a.title, "link": a.link, "published": a.published, "country": country})
    return out[:NEWS_LINKS]
