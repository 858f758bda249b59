"""The currency pipeline: the steps of a poll (services/polling.py) that are FX's own.

    read (fetch, parse the rate file) -> fresh (new observations)
      -> notices (evaluate FX rules, edge-triggered: one per alert)
      -> [route + render, polling.py] -> commit (observations + rule states + outbox)

The commit is one transaction. Only the edges do I/O (`read`, the store reads
in `fresh` and `notices`, `commit`); the decision (`decide`) is pure and takes
the stored history, the new quotes and the saved rule states.

Which points a subscription judges: every point of its pair's series (observed,
inverse or cross, see services/fx/history.py) later than its saved
`evaluated_until`. A subscription with no saved state starts after the series'
last point *before* this poll, so adding a rule never alerts on old history.
Points are judged in time order with the persisted edge-trigger state.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from services import polling
from services.countries import COUNTRIES
from services.config import Route, Source, Subscription
from services.fx import chart
from services.fx import render as render_fx
from services.fx import rules as fx_rules
from services.fx.history import by_pair, series
from services.fx.quote import Quote
from services.fx.sources import FILE_ADAPTERS, RateConfigError, RateFormatError
from services.fx.sources import constant, generic_json
from services.net.fetch import FetchState, SourceError, fetch
from services.settings import Settings
from services.store import Store
from services.store import rates as rate_store
from services.store.db import NewDelivery
from services.store.rates import RuleStateUpdate, SavedRuleState

# History loaded per poll: the chart's 30 days plus room for a `previous`
# window over a long holiday; a duration window adds its own length.
LOOKBACK = timedelta(days=40)
# The currencies whose news an alert links (the others are the world's majors).
COUNTRY_OF = {c.currency: c.code for c in COUNTRIES}
NEWS_LINKS = 5


@dataclass(frozen=True)
class FxSubscription:
    name: str
    rule: fx_rules.Rule
    channels: tuple[str, ...]
    # A tenant's subscription (services/accounts/live.py): its id, tenant and
    # channels with their ids; None and () for the config file's.
    id: str | None = None
    tenant_id: str | None = None
    routes: tuple[Route, ...] = ()

    @property
    def key(self) -> str:
        """What its rule state is stored under: a tenant's id (names are
        only unique per tenant), the config's name (as before tenants)."""
        return self.id if self.id is not None else self.name


def fx_subscription(s: Subscription) -> FxSubscription:
    """One fx: subscription with its rule parsed (ValueError if it does not)."""
    return FxSubscription(s.name, fx_rules.parse_rule({"name": s.name, **s.fx}), tuple(s.channels),
                          id=s.id, tenant_id=s.tenant_id, routes=tuple(s.routes))


def fx_subscriptions(subscriptions: Iterable[Subscription]) -> list[FxSubscription]:
    """The config's fx: subscriptions with their rules parsed (config.py has
    already validated them, so this does not fail on a loaded config)."""
    return [fx_subscription(s) for s in subscriptions if s.fx is not None]


@dataclass(frozen=True)
class Decision:
    subscription: FxSubscription
    alert: fx_rules.Alert
    series: list[Quote] = field(repr=False)  # the pair's points, for the chart
    news: Sequence[dict] = field(default=(), repr=False)  # the latest news it links (recent_news)


# --- the pure part ---------------------------------------------------------

def decide(subs: Sequence[FxSubscription], stored: Sequence[Quote], fresh: Sequence[Quote],
           saved: dict[str, SavedRuleState]) -> tuple[list[Decision], dict[str, RuleStateUpdate]]:
    """Alerts and the new rule states, given what was stored before this poll
    (`stored`), what this poll adds (`fresh`) and the saved states (both by
    the subscription's key)."""
    before, after = by_pair(stored), by_pair([*stored, *fresh])
    decisions: list[Decision] = []
    updates: dict[str, RuleStateUpdate] = {}
    for sub in subs:
        points = series(sub.rule.pair, after)
        prior = saved.get(sub.key)
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
        updates[sub.key] = RuleStateUpdate(prior.evaluated_until if prior else None,
                                            SavedRuleState(state, todo[-1].at))
    return decisions, updates


def countries(pair: str) -> list[str]:
    return [COUNTRY_OF[c] for c in pair.split("/") if c in COUNTRY_OF]


# --- the edges ---------------------------------------------------------------

def read(source: Source, previous: FetchState | None, settings: Settings,
         now: datetime) -> tuple[list[Quote], FetchState]:
    """The source's quotes (none on a 304), stamped with the source's name."""
    try:
        quotes, validators = _read(source, previous, settings, now)
    except (RateFormatError, RateConfigError) as exc:
        # A malformed file is the publisher's problem, not a crash: a failed
        # source like a failed fetch, so the old validators are kept and the
        # next poll reads the file again.
        raise SourceError(source.url or source.kind, str(exc)) from None
    return [Quote(q.pair, q.rate, q.at, source.name) for q in quotes], validators


def _read(source: Source, previous: FetchState | None, settings: Settings,
          now: datetime) -> tuple[list[Quote], FetchState]:
    if source.kind == "constant":
        return constant.quotes(constant.ConstantConfig.from_dict(source.options), now), FetchState()
    result = fetch(source.url, previous, settings)
    if result.not_modified or result.body is None:
        return [], result.state
    if source.kind == "generic-json":
        config = generic_json.GenericJsonConfig.from_dict(source.options)
        return generic_json.parse(result.body, config), result.state
    return FILE_ADAPTERS[source.kind].parse(result.body), result.state


def fresh(quotes: list[Quote], source: Source, store: Store) -> list[Quote]:
    return rate_store.unseen(store, source.name, quotes)


def notices(quotes: list[Quote], subscriptions: polling.Subscriptions, store: Store,
            now: datetime) -> polling.Decided:
    """One notice per alert of the FX subscriptions on the new quotes; the
    rule states to save are remembered with them."""
    subs = subscriptions.fx
    if not (quotes and subs):
        return polling.Decided([], remember={})
    window = max((s.rule.window_delta or timedelta(0) for s in subs
                  if isinstance(s.rule, fx_rules.ChangeRule)), default=timedelta(0))
    since = min(now, min(q.at for q in quotes)) - LOOKBACK - window
    stored = rate_store.history(store, since)
    saved = rate_store.rule_states(store, [s.key for s in subs])
    decisions, updates = decide(subs, stored, quotes, saved)
    return polling.Decided([notice(replace(d, news=recent_news(store, d.alert.pair))) for d in decisions],
                           remember=updates)


def notice(decision: Decision) -> polling.Notice:
    sub, alert = decision.subscription, decision.alert
    # Same rule, pair and moment -> same key: a re-poll after a crash (or a
    # second poller racing this one) cannot write the alert twice. The
    # config's: ("fx", name, pair, moment), as before tenants existed.
    return polling.Notice.to(sub, decision, alert.source, f"{alert.pair}@{alert.at.isoformat()}",
                             key=("fx", polling.SUBSCRIPTION, alert.pair, alert.at.isoformat()))


def email(decision: Decision, now: datetime, templates_dir: Path) -> dict:
    alert = decision.alert
    png = chart.line_chart(alert.pair, chart.last_days(decision.series, alert.at))
    return render_fx.fx_email(alert, decision.subscription.name, news=decision.news, chart_png=png, now=now,
                              templates_dir=templates_dir)


def webhook(decision: Decision, now: datetime, templates_dir: Path) -> dict:
    return render_fx.fx_webhook(decision.alert, decision.subscription.name, news=decision.news, now=now,
                                templates_dir=templates_dir)


def commit(store: Store, source: Source, validators: FetchState, quotes: list[Quote],
           decided: polling.Decided, deliveries: list[NewDelivery], now: datetime) -> list[int]:
    try:
        return rate_store.commit_rates(
            store, source=source.name, url=source.url, etag=validators.etag,
            last_modified=validators.last_modified, observations=quotes, states=decided.remember,
            deliveries=deliveries, now=now)
    except (rate_store.StaleRuleState, IntegrityError) as exc:
        # Another poll stored these observations or states first.
        raise polling.LostRace(type(exc).__name__) from exc


def recent_news(store: Store, pair: str) -> list[dict]:
    """The latest stored articles that matched country:XX for the pair's
    Central Asian currencies (KZT -> KZ ...), newest first."""
    out: list[dict] = []
    for country in countries(pair):
        for a in store.recent_articles(country, NEWS_LINKS):
            out.append({"title": a.title, "link": a.link, "published": a.published, "country": country})
    return out[:NEWS_LINKS]


PIPELINE = polling.Pipeline(("rates", "fx alerts"), read=read, fresh=fresh, notices=notices,
                            email=email, webhook=webhook, commit=commit)


def poll_rates(source: Source, subscriptions: Sequence[FxSubscription], store: Store,
               settings: Settings, now: datetime) -> polling.PollReport:
    """One poll of a rate source, without enqueueing."""
    return polling.poll(PIPELINE, source, polling.Subscriptions(None, tuple(subscriptions)), store, settings, now)
