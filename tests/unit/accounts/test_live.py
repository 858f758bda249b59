"""The workers' view of the tenants' subscriptions (services/accounts/live.py)
on a real, migrated store (SQLite; PostgreSQL too when DATABASE_URL is set):
loaded at start, then every change applied by refresh() -- and only the
subscriptions a change names are read and parsed again."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from services import polling, rules
from services.accounts import channels, subscriptions, tenants
from services.accounts.live import GAP_WAIT, Live
from services.config import Route, Subscription
from services.news import pipeline as news_pipeline
from services.news.article import Article
from services.settings import Settings
from services.store.models import SubscriptionChange

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
SETTINGS = Settings()
CPC = Article("wire", "cpc-1", "CPC halts loadings after mooring damage", "", "http://wire.test/1", None, "en")
GRAIN = Article("wire", "grain-1", "Kazakhstan wheat exports hit a record", "", "http://wire.test/2", None, "en")
CONFIG_SUB = Subscription("desk", ("mailto:desk@example.com",), query="wheat")


class Tick:
    """A monotonic clock the test moves."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Acme:
    """One tenant with a webhook, a confirmed and an unconfirmed email channel."""

    def __init__(self, store, name="acme"):
        self.store = store
        self.tenant = tenants.create(store, name, NOW).tenant
        self.hook = channels.create_webhook(store, self.tenant.id, "https://hooks.example.com/acme", "json",
                                            SETTINGS, NOW).channel
        self.mail = channels.create_email(store, self.tenant.id, "ops@example.com", SETTINGS, NOW,
                                          confirmed=True).channel
        self.pending = channels.create_email(store, self.tenant.id, "new@example.com", SETTINGS, NOW)
        self.unconfirmed = self.pending.channel

    def sub(self, name, query="cpc AND halt*", chans=None, **kw) -> str:
        chans = [self.hook.id] if chans is None else chans
        return subscriptions.create(self.store, self.tenant.id, name, chans, NOW, query=query, **kw).row.id


def news_keys(live: Live) -> list[str]:
    """The tenants' news subscriptions in the index, by id."""
    return sorted(k[1] for k in live.subscriptions.news.matcher._entries if k[0] == "tenant")


def matched(live: Live, article: Article) -> list[tuple[str, tuple[str, ...]]]:
    """(name, targets) of each subscription `article` matches, in output order."""
    return [(m.subscription.name, m.subscription.channels)
            for m in live.subscriptions.news.classify([article]).matches]


def test_load_takes_the_config_and_every_tenant_subscription_that_can_send(store):
    acme = Acme(store)
    sendable = acme.sub("cpc")
    paused = acme.sub("paused", paused=True)
    only_unconfirmed = acme.sub("waits-for-email", chans=[acme.unconfirmed.id])
    mixed = acme.sub("mixed", chans=[acme.unconfirmed.id, acme.mail.id, acme.hook.id])
    fx = subscriptions.create(store, acme.tenant.id, "tenge", [acme.mail.id], NOW,
                              fx={"pair": "KZT/USD", "change_pct": 1.0}).row.id
    live = Live(store, [CONFIG_SUB])

    assert news_keys(live) == sorted([sendable, mixed])
    assert paused not in live.subscriptions and only_unconfirmed not in live.subscriptions
    assert [(s.id, s.tenant_id, s.name, s.routes) for s in live.subscriptions.fx] == [
        (fx, acme.tenant.id, "tenge", (Route("mailto:ops@example.com", acme.mail.id),))]
    # The unconfirmed address is left out of the routes, the others keep their order.
    assert matched(live, CPC) == sorted([("cpc", ("https://hooks.example.com/acme",)),
                                         ("mixed", ("mailto:ops@example.com", "https://hooks.example.com/acme"))],
                                        key=lambda m: {"cpc": sendable, "mixed": mixed}[m[0]])
    assert matched(live, GRAIN) == [("desk", ("mailto:desk@example.com",))]
    assert live.applied == max_seq(store)


def max_seq(store) -> int:
    with store.sessions() as s:
        return s.scalar(sa.select(sa.func.max(SubscriptionChange.seq))) or 0


# (case, what a tenant does to subscription "cpc" after the worker loaded,
#  what "cpc" then matches: its targets on the CPC story, None: not in the index)
def _patch_query(acme, sid):
    subscriptions.update(acme.store, acme.tenant.id, sid, NOW, query="wheat")


def _patch_channels(acme, sid):
    subscriptions.update(acme.store, acme.tenant.id, sid, NOW, channel_ids=[acme.mail.id, acme.hook.id])


def _pause(acme, sid):
    subscriptions.update(acme.store, acme.tenant.id, sid, NOW, paused=True)


def _pause_and_resume(acme, sid):
    _pause(acme, sid)
    subscriptions.update(acme.store, acme.tenant.id, sid, NOW, paused=False)


def _delete(acme, sid):
    subscriptions.delete_(acme.store, acme.tenant.id, sid, NOW)


def _delete_its_only_channel(acme, sid):
    channels.delete_(acme.store, acme.tenant.id, acme.hook.id, NOW)


def _delete_one_of_two_channels(acme, sid):
    _patch_channels(acme, sid)
    channels.delete_(acme.store, acme.tenant.id, acme.hook.id, NOW)


def _move_to_unconfirmed_email(acme, sid):
    subscriptions.update(acme.store, acme.tenant.id, sid, NOW, channel_ids=[acme.unconfirmed.id])


def _confirm_email(acme, sid):
    _move_to_unconfirmed_email(acme, sid)
    token = acme.pending  # the link's token is only in the confirmation email: read it there
    link = acme.store.delivery(token.confirm_delivery).payload["text"]
    channels.confirm(acme.store, link.split("/v1/channels/confirm/")[1].split()[0], NOW)


def _rename(acme, sid):
    subscriptions.update(acme.store, acme.tenant.id, sid, NOW, name="pipeline watch")


CHANGES = [
    ("patch the query", _patch_query, None, ("cpc", ("https://hooks.example.com/acme",))),
    ("patch the channels", _patch_channels, ("cpc", ("mailto:ops@example.com", "https://hooks.example.com/acme")),
     None),
    ("pause", _pause, None, None),
    ("pause, then resume", _pause_and_resume, ("cpc", ("https://hooks.example.com/acme",)), None),
    ("delete", _delete, None, None),
    ("delete its only channel", _delete_its_only_channel, None, None),
    ("delete one of its two channels", _delete_one_of_two_channels, ("cpc", ("mailto:ops@example.com",)), None),
    ("route it to an unconfirmed email only", _move_to_unconfirmed_email, None, None),
    ("the email is confirmed", _confirm_email, ("cpc", ("mailto:new@example.com",)), None),
    ("rename: the alert shows the new name", _rename, ("pipeline watch", ("https://hooks.example.com/acme",)), None),
]


@pytest.mark.parametrize("case, change, on_cpc, on_grain", CHANGES, ids=[c[0] for c in CHANGES])
def test_refresh_applies_each_change(store, case, change, on_cpc, on_grain):
    acme = Acme(store)
    sid = acme.sub("cpc")
    other = acme.sub("other", query="cpc")
    live = Live(store)
    assert matched(live, CPC) == sorted([("cpc", ("https://hooks.example.com/acme",)),
                                         ("other", ("https://hooks.example.com/acme",))],
                                        key=lambda m: {"cpc": sid, "other": other}[m[0]])
    change(acme, sid)
    assert sid in live.refresh()  # with "other" too when a channel they share went
    assert live.refresh() == []  # applied once
    got_cpc = [m for m in matched(live, CPC) if m[0] != "other"]
    assert got_cpc == ([on_cpc] if on_cpc else [])
    assert matched(live, GRAIN) == ([on_grain] if on_grain else [])
    # A second worker starting now loads the same.
    assert matched(Live(store), CPC) == matched(live, CPC)


def test_a_created_subscription_is_matched_after_refresh(store):
    acme = Acme(store)
    live = Live(store)
    assert matched(live, CPC) == []
    sid = acme.sub("cpc")
    assert live.refresh() == [sid]
    assert matched(live, CPC) == [("cpc", ("https://hooks.example.com/acme",))]


def test_nothing_is_routed_to_an_unconfirmed_email_until_it_is_confirmed(store):
    acme = Acme(store)
    acme.sub("cpc", chans=[acme.unconfirmed.id, acme.hook.id])
    live = Live(store)

    def deliveries():
        decided = news_pipeline.notices([CPC], live.subscriptions, store, NOW)
        return [d.channel for d in polling.rendered(news_pipeline.PIPELINE, decided.notices, NOW,
                                                    SETTINGS.templates_dir)]

    assert deliveries() == ["https://hooks.example.com/acme"]
    link = store.delivery(acme.pending.confirm_delivery).payload["text"]
    channels.confirm(store, link.split("/v1/channels/confirm/")[1].split()[0], NOW)
    live.refresh()
    assert deliveries() == ["mailto:new@example.com", "https://hooks.example.com/acme"]


def test_refresh_reads_and_parses_only_the_changed_subscriptions(store, monkeypatch):
    acme = Acme(store)
    ids = [acme.sub(f"s{n}", query=f"cpc AND word{n}") for n in range(30)]
    live = Live(store, [CONFIG_SUB])
    matcher = live.subscriptions.news.matcher
    before = dict(matcher._entries)
    parsed = []
    real_parse = rules.parse

    def counting_parse(query, *args, **kwargs):
        parsed.append(query)
        return real_parse(query, *args, **kwargs)

    subscriptions.update(store, acme.tenant.id, ids[3], NOW, query="cpc AND changed")
    subscriptions.delete_(store, acme.tenant.id, ids[7], NOW)
    created = acme.sub("new", query="cpc AND fresh")
    monkeypatch.setattr(rules, "parse", counting_parse)  # the worker's parsing only
    assert sorted(live.refresh()) == sorted([ids[3], ids[7], created])
    assert sorted(parsed) == ["cpc AND changed", "cpc AND fresh"]
    after = matcher._entries
    for key, entry in before.items():
        if key not in (("tenant", ids[3]), ("tenant", ids[7])):
            assert after[key] is entry, key  # the very same index entry
    assert ("tenant", ids[7]) not in after and after[("tenant", ids[3])] is not before[("tenant", ids[3])]


def test_refresh_with_nothing_changed_is_one_query(store):
    acme = Acme(store)
    acme.sub("cpc")
    live = Live(store)
    statements = []
    listen = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    sa.event.listen(store.engine, "before_cursor_execute", listen)
    try:
        assert live.refresh() == []
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", listen)
    assert len(statements) == 1 and "subscription_change" in statements[0]
    assert "WHERE subscription_change.seq >" in statements[0].replace('"', "")


def test_a_change_committed_out_of_order_is_not_missed(store):
    # On PostgreSQL a transaction holding seq N may commit after one holding
    # N+1; the worker then sees N+1 first and must still apply N.
    acme = Acme(store)
    late, early = acme.sub("late", query="cpc"), acme.sub("early", query="wheat")
    clock = Tick()
    live = Live(store, clock=clock)
    top = live.applied
    subscriptions.update(store, acme.tenant.id, late, NOW, paused=True)
    subscriptions.update(store, acme.tenant.id, early, NOW, paused=True)
    with store.sessions.begin() as s:  # hold back the first change: as if not committed yet
        held = s.scalar(sa.select(SubscriptionChange).where(SubscriptionChange.seq == top + 1))
        assert held.subscription_id == late
        s.delete(held)
    assert live.refresh() == [early]
    assert live.gaps == {top + 1: clock.t} and live.applied == top + 2
    clock.t += GAP_WAIT / 2
    with store.sessions.begin() as s:  # ... and now it commits
        s.add(SubscriptionChange(seq=top + 1, subscription_id=late, at=NOW))
    assert live.refresh() == [late]
    assert live.gaps == {} and matched(live, CPC) == [] and matched(live, GRAIN) == []


def test_a_hole_that_never_fills_is_given_up_after_a_while(store):
    acme = Acme(store)
    sid = acme.sub("cpc")
    clock = Tick()
    live = Live(store, clock=clock)
    with store.sessions.begin() as s:  # a rolled-back insert leaves a hole on PostgreSQL
        s.add(SubscriptionChange(seq=live.applied + 5, subscription_id=sid, at=NOW))
    live.refresh()
    assert len(live.gaps) == 4
    clock.t += GAP_WAIT + 1
    assert live.refresh() == [] and live.gaps == {}


def test_names_are_per_tenant_ids_tell_them_apart(store):
    acme, globex = Acme(store), Acme(store, "globex")
    a, g = acme.sub("cpc"), globex.sub("cpc")
    live = Live(store)
    decided = news_pipeline.notices([CPC], live.subscriptions, store, NOW)
    out = polling.rendered(news_pipeline.PIPELINE, decided.notices, NOW, SETTINGS.templates_dir)
    assert sorted((d.subscription, d.tenant_id, d.subscription_id, d.channel_id) for d in out) == sorted([
        ("cpc", acme.tenant.id, a, acme.hook.id), ("cpc", globex.tenant.id, g, globex.hook.id)])
    assert len({d.idempotency_key for d in out}) == 2
    assert [d.idempotency_key for d in out if d.subscription_id == a] == [
        polling.idempotency_key("news@tenant", "wire", "cpc-1", a, acme.hook.id)]
    assert all(d.payload["subscription"] == "cpc" for d in out)  # the alert shows the name
    subscriptions.delete_(store, globex.tenant.id, g, NOW)
    live.refresh()
    assert [m.subscription.id for m in live.subscriptions.news.classify([CPC]).matches] == [a]


def test_a_config_change_replaces_the_config_subscriptions_only(store, monkeypatch):
    acme = Acme(store)
    sid = acme.sub("cpc")
    live = Live(store, [CONFIG_SUB])
    tenant_entry = live.subscriptions.news.matcher._entries[("tenant", sid)]
    parsed = []
    real_parse = rules.parse
    monkeypatch.setattr(rules, "parse", lambda q, *a, **k: parsed.append(q) or real_parse(q, *a, **k))
    live.set_config([Subscription("desk", ("mailto:other@example.com",), query="wheat"),
                     Subscription("cpc-desk", ("mailto:cpc@example.com",), query="cpc")])
    assert parsed == ["cpc"]  # desk's query is unchanged: kept as parsed; the tenant's untouched
    assert live.subscriptions.news.matcher._entries[("tenant", sid)] is tenant_entry
    assert matched(live, CPC) == [("cpc-desk", ("mailto:cpc@example.com",)),
                                  ("cpc", ("https://hooks.example.com/acme",))]
    assert matched(live, GRAIN) == [("desk", ("mailto:other@example.com",))]
    live.set_config([])
    assert matched(live, CPC) == [("cpc", ("https://hooks.example.com/acme",))]
    assert matched(live, GRAIN) == []


def test_a_stored_rule_that_no_longer_parses_is_left_out_not_fatal(store, caplog):
    acme = Acme(store)
    good, bad = acme.sub("good", query="cpc"), acme.sub("bad", query="cpc AND halt*")
    with store.sessions.begin() as s:  # e.g. written by a newer version that knows more syntax
        s.execute(sa.text("UPDATE subscription SET query = 'cpc AND (' WHERE id = :id"), {"id": bad})
    live = Live(store)
    assert news_keys(live) == [good]
    assert f"subscription {bad} (bad) left out" in caplog.text
    subscriptions.update(store, acme.tenant.id, bad, NOW, query="halt*")
    live.refresh()
    assert news_keys(live) == sorted([good, bad])


def test_fx_rule_state_of_a_tenant_subscription_is_kept_under_its_id(store):
    acme, globex = Acme(store), Acme(store, "globex")
    rule = {"pair": "USD/KZT", "change_pct": 1.0}
    ids = [t.tenant.id for t in (acme, globex)]
    subs = [subscriptions.create(store, t.tenant.id, "usd", [t.mail.id], NOW, fx=rule).row.id for t in (acme, globex)]
    live = Live(store)
    assert sorted((s.key, s.tenant_id, s.name) for s in live.subscriptions.fx) == sorted(
        zip(subs, ids, ["usd", "usd"]))
    from services.fx.pipeline import Decision, notice
    from services.fx.rules import Alert

    alert = Alert("usd", "USD/KZT", NOW, 1, 1, 1, NOW - timedelta(days=1), "1d", "c", "nbk")
    keys = {notice(Decision(s, alert, [])).key for s in live.subscriptions.fx}
    assert keys == {("fx@tenant", sid, "USD/KZT", NOW.isoformat()) for sid in subs}
