"""Config as code (services/accounts/configcode.py) on a real migrated database
(SQLite; PostgreSQL too when DATABASE_URL is set): the difference a file makes
to a tenant, applying it, applying it again, dry runs, export and back."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import yaml

from services.accounts import channels, configcode, subscriptions, tenants
from services.accounts.errors import NotFound
from services.config import ConfigError
from services.settings import Settings
from services.store.models import Channel, SubscriptionChange, Tenant, TenantSubscription

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
SETTINGS = Settings(allow_private_targets=False)
HOOK = "https://hooks.example.com/desk"
HOOK2 = "https://hooks.example.com/other"

BASE = f"""
subscriptions:
  - name: cpc
    query: 'cpc AND halt*'
    channels: [mailto:energy@example.com, {HOOK}]
  - name: tenge
    fx: {{pair: KZT/USD, change_pct: 1.0, window: 1d, direction: down}}
    channels: [mailto:fx@example.com]
"""


def parse(text: str, file: str = "subs.yaml") -> configcode.Desired:
    return configcode.parse(text, file, SETTINGS)


def apply(store, text: str, tenant: str = "acme", dry_run: bool = False, at: datetime = T0):
    return configcode.apply(store, tenant, parse(text), SETTINGS, at, dry_run=dry_run)


def state(store, tenant: str = "acme") -> dict:
    """The tenant's subscriptions as {name: (query, fx, [targets], paused)}."""
    t = tenants.by_name(store, tenant)
    if t is None:
        return {}
    target = {c.id: c.target for c in channels.list_(store, t.id)}
    views, _ = subscriptions.page(store, t.id, limit=1000)
    return {v.row.name: (v.row.query, v.row.fx, [target[c] for c in v.channels], v.row.paused) for v in views}


def targets(store, tenant: str = "acme") -> list[str]:
    t = tenants.by_name(store, tenant)
    return sorted(c.target for c in channels.list_(store, t.id)) if t else []


def counts(store) -> dict[str, int]:
    with store.sessions() as s:
        return {m.__tablename__: s.scalar(sa.select(sa.func.count()).select_from(m))
                for m in (Tenant, Channel, TenantSubscription, SubscriptionChange)}


def test_first_apply_creates_the_tenant_channels_and_subscriptions(store):
    done = apply(store, BASE)
    assert done.diff.lines() == [
        "+ tenant acme: its API key is shown once, after applying",
        "+ channel mailto:energy@example.com: email, confirmed (added by the operator)",
        f"+ channel {HOOK}: webhook (its signing secret is shown once, after applying)",
        "+ channel mailto:fx@example.com: email, confirmed (added by the operator)",
        f'+ subscription cpc: query "cpc AND halt*" -> mailto:energy@example.com, {HOOK}',
        '+ subscription tenge: fx {"pair": "KZT/USD", "change_pct": 1.0, "window": "1d", "direction": "down"}'
        " -> mailto:fx@example.com",
    ]
    assert done.diff.counts() == "subscriptions 2 added, 0 changed, 0 removed; channels 3 added, 0 removed"
    # The key works and is the tenant's; the webhook's secret is its channel's.
    assert tenants.by_key(store, done.api_key).name == "acme"
    [(hook, secret)] = done.webhook_secrets.items()
    assert hook == HOOK and secret.startswith("whsec_")
    assert all(secret not in line and done.api_key not in line for line in done.diff.lines())
    assert state(store) == {
        "cpc": ("cpc AND halt*", None, ["mailto:energy@example.com", HOOK], False),
        "tenge": (None, {"pair": "KZT/USD", "change_pct": 1.0, "window": "1d", "direction": "down"},
                  ["mailto:fx@example.com"], False)}
    # Channels the operator adds are confirmed at once: no confirmation email.
    tenant = tenants.by_name(store, "acme")
    assert all(c.confirmed_at is not None for c in channels.list_(store, tenant.id))
    assert store.deliveries() == []


# (name, the file after BASE was applied, the diff's lines, the state after; None: as BASE left it)
CHANGES = [
    ("change query", BASE.replace("cpc AND halt*", "cpc AND (halt* OR damage*)"),
     ['~ subscription cpc: query "cpc AND halt*" -> "cpc AND (halt* OR damage*)"'],
     {"cpc": ("cpc AND (halt* OR damage*)", None, ["mailto:energy@example.com", HOOK], False)}),
    ("add a channel to a subscription", BASE.replace("[mailto:fx@example.com]", f"[mailto:fx@example.com, {HOOK}]"),
     [f"~ subscription tenge: channels +{HOOK}"],
     {"tenge": (None, {"pair": "KZT/USD", "change_pct": 1.0, "window": "1d", "direction": "down"},
                ["mailto:fx@example.com", HOOK], False)}),
    ("swap a channel (new one created, old one unused so removed)", BASE.replace(HOOK, HOOK2),
     [f"+ channel {HOOK2}: webhook (its signing secret is shown once, after applying)",
      f"~ subscription cpc: channels +{HOOK2} -{HOOK}",
      f"- channel {HOOK}: no subscription in the file uses it"],
     {"cpc": ("cpc AND halt*", None, ["mailto:energy@example.com", HOOK2], False)}),
    ("reorder channels", BASE.replace(f"[mailto:energy@example.com, {HOOK}]", f"[{HOOK}, mailto:energy@example.com]"),
     ["~ subscription cpc: channels in a new order"],
     {"cpc": ("cpc AND halt*", None, [HOOK, "mailto:energy@example.com"], False)}),
    ("remove a subscription and the channel only it used", BASE.split("  - name: tenge")[0],
     ["- subscription tenge", "- channel mailto:fx@example.com: no subscription in the file uses it"],
     {"tenge": None}),
    ("change an FX rule", BASE.replace("change_pct: 1.0", "change_pct: 2.5"),
     ['~ subscription tenge: fx {"pair": "KZT/USD", "change_pct": 1.0, "window": "1d", "direction": "down"}'
      ' -> {"pair": "KZT/USD", "change_pct": 2.5, "window": "1d", "direction": "down"}'],
     {"tenge": (None, {"pair": "KZT/USD", "change_pct": 2.5, "window": "1d", "direction": "down"},
                ["mailto:fx@example.com"], False)}),
    ("an FX rule becomes a query: replaced",
     BASE.replace("fx: {pair: KZT/USD, change_pct: 1.0, window: 1d, direction: down}", "query: tenge"),
     ['~ subscription tenge: fx {"pair": "KZT/USD", "change_pct": 1.0, "window": "1d", "direction": "down"}'
      ' -> query "tenge" (replaced: deleted and created again)'],
     {"tenge": ("tenge", None, ["mailto:fx@example.com"], False)}),
    ("rule: word lists become their query", BASE + """  - name: words
    rule: {any: [tariff, export duty], none: [taxi]}
    channels: [mailto:fx@example.com]
""",
     ['+ subscription words: query "(\\"tariff\\" OR \\"export duty\\") AND NOT \\"taxi\\"" -> mailto:fx@example.com'],
     {"words": ('("tariff" OR "export duty") AND NOT "taxi"', None, ["mailto:fx@example.com"], False)}),
    ("rename: the old name removed, the new one added", BASE.replace("name: cpc", "name: cpc-halts"),
     ['+ subscription cpc-halts: query "cpc AND halt*" -> mailto:energy@example.com, ' + HOOK,
      "- subscription cpc"],
     {"cpc": None, "cpc-halts": ("cpc AND halt*", None, ["mailto:energy@example.com", HOOK], False)}),
    ("an empty list removes everything", "subscriptions: []\n",
     ["- subscription cpc", "- subscription tenge",
      f"- channel {HOOK}: no subscription in the file uses it",
      "- channel mailto:energy@example.com: no subscription in the file uses it",
      "- channel mailto:fx@example.com: no subscription in the file uses it"],
     {"cpc": None, "tenge": None}),
]


@pytest.mark.parametrize("name,text,lines,after", CHANGES, ids=[c[0] for c in CHANGES])
def test_a_changed_file_shows_its_difference_and_applies_it_then_nothing_more(store, name, text, lines, after):
    apply(store, BASE)
    expected = state(store)
    for sub, value in after.items():
        if value is None:
            expected.pop(sub)
        else:
            expected[sub] = value

    dry = apply(store, text, dry_run=True, at=T0 + timedelta(minutes=1))
    assert dry.diff.lines() == lines
    done = apply(store, text, at=T0 + timedelta(minutes=1))
    assert done.diff.lines() == lines and done.api_key is None
    assert state(store) == expected
    assert targets(store) == sorted({t for _, _, ts, _ in expected.values() for t in ts})
    # The same file again: nothing to do, nothing written (not even the change log).
    before = counts(store)
    again = apply(store, text, at=T0 + timedelta(minutes=2))
    assert again.diff.empty and again.diff.lines() == []
    assert counts(store) == before


def test_applying_the_same_file_twice_changes_nothing(store):
    apply(store, BASE)
    before, rows = counts(store), state(store)
    done = apply(store, BASE, at=T0 + timedelta(hours=1))
    assert done.diff.empty and done.api_key is None and done.webhook_secrets == {}
    assert counts(store) == before and state(store) == rows


def test_a_dry_run_writes_nothing_not_even_the_tenant(store):
    before = counts(store)
    done = apply(store, BASE, dry_run=True)
    assert done.diff.counts() == "subscriptions 2 added, 0 changed, 0 removed; channels 3 added, 0 removed"
    assert done.api_key is None and done.tenant_id is None
    assert counts(store) == before and tenants.by_name(store, "acme") is None

    apply(store, BASE)
    before = counts(store)
    changed = apply(store, "subscriptions: []\n", dry_run=True)
    assert len(changed.diff.lines()) == 5
    assert counts(store) == before


def test_export_then_apply_is_a_no_op_round_trip(store):
    apply(store, BASE + """  - name: words
    rule: {any: [tariff], all: ['kazakh*']}
    channels: [mailto:trade@example.com, "https://hooks.example.com/a?q=it's"]
""")
    text = configcode.export(store, "acme", SETTINGS)
    data = yaml.safe_load(text)
    assert [s["name"] for s in data["subscriptions"]] == ["cpc", "tenge", "words"]  # the file's order
    assert data["subscriptions"][1] == {
        "name": "tenge", "fx": {"pair": "KZT/USD", "change_pct": 1.0, "window": "1d", "direction": "down"},
        "channels": ["mailto:fx@example.com"]}
    assert "whsec_" not in text and "allow_private_targets" not in text
    before = counts(store)
    again = configcode.apply(store, "acme", configcode.parse(text, "exported.yaml", SETTINGS), SETTINGS,
                             T0 + timedelta(hours=1))
    assert again.diff.empty
    assert counts(store) == before
    # And into another tenant: the same subscriptions there.
    configcode.apply(store, "copy", configcode.parse(text, "exported.yaml", SETTINGS), SETTINGS, T0)
    assert state(store, "copy") == state(store, "acme")


def test_export_says_when_a_file_needs_private_targets_and_round_trips_them(store):
    text = "allow_private_targets: true\n" + BASE.replace(HOOK, "http://127.0.0.1:9/hook")
    apply(store, text)
    exported = configcode.export(store, "acme", SETTINGS)
    assert "\nallow_private_targets: true\n" in exported
    assert configcode.apply(store, "acme", configcode.parse(exported, "x", SETTINGS), SETTINGS, T0).diff.empty


def test_pausing_is_not_part_of_the_file(store):
    apply(store, BASE)
    tenant = tenants.by_name(store, "acme")
    [cpc] = [v for v in subscriptions.page(store, tenant.id)[0] if v.row.name == "cpc"]
    subscriptions.update(store, tenant.id, cpc.row.id, T0, paused=True)
    assert apply(store, BASE).diff.empty  # still paused: apply leaves pausing alone
    assert state(store)["cpc"][3] is True
    exported = configcode.export(store, "acme", SETTINGS)
    assert "# paused (over the API): apply leaves pausing as it is\n  - name: cpc" in exported
    assert apply(store, exported).diff.empty


def test_channels_made_over_the_api_are_reused_by_target_or_removed_when_unused(store):
    tenant = tenants.create(store, "acme", T0).tenant
    kept = channels.create_webhook(store, tenant.id, HOOK, "json", SETTINGS, T0).channel
    unused = channels.create_webhook(store, tenant.id, HOOK2, "json", SETTINGS, T0).channel
    pending = channels.create_email(store, tenant.id, "energy@example.com", SETTINGS, T0).channel

    done = apply(store, BASE)
    assert "+ tenant acme" not in "\n".join(done.diff.lines())
    assert f"- channel {HOOK2}: no subscription in the file uses it" in done.diff.lines()
    assert not any(line.startswith(("+ channel " + HOOK, "+ channel mailto:energy"))
                   for line in done.diff.lines())
    # An address that has not confirmed stays unconfirmed: the operator is told.
    assert done.diff.notes == ["channel mailto:energy@example.com is not confirmed yet: nothing is sent to it "
                               "until its confirmation link is followed"]
    assert done.webhook_secrets == {}  # the webhook kept its own secret
    ids = {c.target: c.id for c in channels.list_(store, tenant.id)}
    assert ids[HOOK] == kept.id and ids["mailto:energy@example.com"] == pending.id
    with pytest.raises(NotFound):
        channels.get(store, tenant.id, unused.id)


def test_other_tenants_are_untouched(store):
    apply(store, BASE, tenant="other")
    theirs = state(store, "other")
    apply(store, BASE)
    apply(store, "subscriptions: []\n")
    assert state(store, "acme") == {} and targets(store, "acme") == []
    assert state(store, "other") == theirs and len(targets(store, "other")) == 3


def test_sources_are_ignored_even_with_unset_variables():
    desired = parse("""
sources:
  - name: x
    url: ${NOT_SET_ANYWHERE_TULPAR}/feed.xml
  - name: y
    kind: nonsense
subscriptions: []
""")
    assert desired.ignored_sources == 2 and desired.subscriptions == ()


# (file text, the error's "file:line: field: message" start)
BAD_FILES = [
    ("subscriptions:\n  - name: a\n    query: '(tariff OR'\n    channels: [mailto:a@example.com]\n",
     "subs.yaml:3: subscriptions[0].query: OR without a term after it"),
    ("subscriptions:\n  - name: a\n    query: tariff\n    channels: [mailto:a@example.com, 'ftp://x']\n",
     "subs.yaml:4: subscriptions[0].channels[1]: unsupported target"),
    ("subscriptions:\n  - name: a\n    query: tariff\n    channels: [http://127.0.0.1:9/h]\n",
     "subs.yaml:4: subscriptions[0].channels[0]: "),
    ("subscriptions:\n  - name: a\n    query: tariff\n    channels: [mailto:a@example.com]\n"
     "  - name: a\n    query: duty\n    channels: [mailto:a@example.com]\n",
     "subs.yaml:5: subscriptions[1].name: duplicate name 'a'"),
    ("subscriptions:\n  - name: a\n    query: '" + " OR ".join(f"w{i}" for i in range(120)) + "'\n"
     "    channels: [mailto:a@example.com]\n",
     "subs.yaml:3: subscriptions[0].query: the query is too complex: 121 terms and operators"),
    ("subscriptions:\n  - name: a\n    query: '" + "x " * 1001 + "'\n    channels: [mailto:a@example.com]\n",
     "subs.yaml:3: subscriptions[0].query: the query is 2001 characters; at most 2000"),
    ("subscriptions:\n  - name: '" + "n" * 201 + "'\n    query: tariff\n    channels: [mailto:a@example.com]\n",
     "subs.yaml:2: subscriptions[0].name: a name is 1-200 characters"),
    ("subscriptions:\n  - name: a\n    query: tariff\n    channels: ["
     + ", ".join(f"mailto:a{i}@example.com" for i in range(21)) + "]\n",
     "subs.yaml:4: subscriptions[0].channels: 21 channels; at most 20 per subscription"),
    ("subscriptions:\n  - name: a\n    fx: {pair: KZT/USD, change_pct: 1.0, window: 1d, direction: sideways}\n"
     "    channels: [mailto:a@example.com]\n",
     "subs.yaml:3: subscriptions[0].fx: "),
    ("subscriptions:\n  - name: a\n    rule: {any: []}\n    channels: [mailto:a@example.com]\n",
     "subs.yaml:3: subscriptions[0].rule: needs at least one word under any: or all:"),
    ("subscriptions:\n  - name: a\n    query: tariff\n    channels: [mailto:a@example.com]\n    paused: true\n",
     "subs.yaml:5: subscriptions[0].paused: unknown field"),
    ("subscription:\n  - name: a\n", "subs.yaml:2: subscription: unknown field"),
    ("sources: []\n", "subs.yaml:1: no subscriptions: section; write `subscriptions: []`"),
    ("", "subs.yaml: no subscriptions: section"),
    ("subscriptions:\n  - name: a\n    query: tariff\n    channels: ['${NO_SUCH_VAR_TULPAR}']\n",
     "subs.yaml:4: subscriptions[0].channels[0]: environment variable NO_SUCH_VAR_TULPAR is not set"),
    ("subscriptions: [\n", "subs.yaml:2: "),
]


@pytest.mark.parametrize("text,message", BAD_FILES, ids=range(len(BAD_FILES)))
def test_a_bad_file_names_file_line_and_field_and_writes_nothing(store, text, message):
    apply(store, BASE)
    before = counts(store)
    with pytest.raises(ConfigError) as caught:
        apply(store, text)
    assert str(caught.value).startswith(message), str(caught.value)
    assert counts(store) == before


@pytest.mark.parametrize("text", [t for t, m in BAD_FILES if "section" not in m and "most 20 per" not in m
                                  and "1-200" not in m and "2001" not in m and "too complex" not in m])
def test_errors_read_exactly_as_the_config_loader_says_them(text):
    from services import config

    with pytest.raises(ConfigError) as ours:
        parse(text)
    with pytest.raises(ConfigError) as loader:
        config.parse(text, "subs.yaml", SETTINGS)
    assert str(ours.value) == str(loader.value)


def test_load_reads_a_file_and_names_it(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(BASE)
    assert [w.name for w in configcode.load(path, SETTINGS).subscriptions] == ["cpc", "tenge"]
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        configcode.load(tmp_path / "missing.yaml", SETTINGS)


def test_export_of_an_unknown_tenant_is_not_found(store):
    with pytest.raises(NotFound, match="no tenant 'nobody'"):
        configcode.export(store, "nobody", SETTINGS)


def test_export_of_a_tenant_without_subscriptions_applies_as_empty(store):
    tenants.create(store, "empty", T0)
    text = configcode.export(store, "empty", SETTINGS)
    assert yaml.safe_load(text) == {"subscriptions": []}


def test_export_leaves_out_a_subscription_whose_channels_were_all_deleted(store):
    apply(store, BASE)
    tenant = tenants.by_name(store, "acme")
    fx = [c for c in channels.list_(store, tenant.id) if c.target == "mailto:fx@example.com"][0]
    channels.delete_(store, tenant.id, fx.id, T0)
    text = configcode.export(store, "acme", SETTINGS)
    assert "# 'tenge' is left out: it has no channel left" in text
    assert [s["name"] for s in yaml.safe_load(text)["subscriptions"]] == ["cpc"]
