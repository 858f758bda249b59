"""Config as code: a tenant's subscriptions and channels from the config file's
`subscriptions:` section (`tulpar apply`), and back into it (`tulpar export`).

The file is the whole state of the tenant:

- subscriptions are matched by name: one in the file and not in the database
  is added, one in both whose rule or channels differ is changed (a query
  turning into an FX rule or back is replaced: deleted and created again,
  with a new id), one in the database and not in the file is removed;
- channels are matched by target (`mailto:ADDRESS` or the webhook URL); the
  ones the file names and the tenant lacks are created -- confirmed at once,
  since `tulpar apply` is the operator's own command -- and the tenant's
  channels that none of the file's subscriptions uses afterwards are removed;
- `paused` is not part of the file: a subscription paused over the API stays
  paused (export marks it with a comment).

`sources:` in the file are operator configuration (TULPAR_CONFIG) and are
ignored here: neither checked nor expanded. Errors in the rest name the file,
line and field exactly like loading the config (services.config.ConfigError),
including the limits the API sets (query length and complexity, channels per
subscription), and are all found before anything is written.

Each change is one of the account functions' own transactions: the apply as
a whole is not atomic. One that stops half-way (the database went away) is
finished by applying the file again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import yaml

from services import config as config_mod
from services import yamlfile
from services.accounts import channels, subscriptions, tenants
from services.accounts.errors import Invalid, NotFound
from services.config import ConfigError
from services.delivery import channels as delivery_channels
from services.redact import redact
from services.settings import Settings
from services.store import Store
from services.store.models import ChannelType

DEFAULT_TENANT = "default"
WEBHOOK_FORMAT = "json"
TOP_LEVEL = {"sources", "subscriptions", "allow_private_targets", "allow_file_sources"}


# --- the file ---------------------------------------------------------------------

@dataclass(frozen=True)
class Wanted:
    """One subscription as the file wants it."""

    name: str
    channels: tuple[str, ...]  # targets, in the file's order, each once
    query: str | None = None   # `rule:` word lists arrive here as their query
    fx: dict | None = None


@dataclass(frozen=True)
class Desired:
    file: str
    subscriptions: tuple[Wanted, ...]
    ignored_sources: int
    allow_private_targets: bool


class _Doc(config_mod._Doc):
    """The config loader's document, except that `sources:` is left as
    written: it is not ours, so an unset ${VAR} there is no error."""

    def _expand(self, value: str, path: tuple) -> str:
        if path[:1] == ("sources",):
            return value
        return super()._expand(value, path)


def load(path: str | Path, settings: Settings | None = None) -> Desired:
    settings = settings or Settings()
    try:
        text = yamlfile.read_text(path, settings.max_config_bytes)
    except yamlfile.YamlError as exc:
        raise ConfigError(exc.file, exc.line, "", exc.message) from None
    return parse(text, str(path), settings)


def load_stream(stream: BinaryIO, name: str, settings: Settings | None = None) -> Desired:
    settings = settings or Settings()
    try:
        text = yamlfile.read_stream(stream, name, settings.max_config_bytes)
    except yamlfile.YamlError as exc:
        raise ConfigError(exc.file, exc.line, "", exc.message) from None
    return parse(text, name, settings)


def parse(text: str, file: str = "<config>", settings: Settings | None = None) -> Desired:
    """The file's subscriptions, checked as the config loader checks them and
    against the limits of the account functions; ConfigError otherwise."""
    settings = settings or Settings()
    doc = _Doc(file, text)
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "the top level must be a mapping with subscriptions:")
    config_mod._only(doc, (), data, TOP_LEVEL)
    allow_private = config_mod._flag(doc, data, "allow_private_targets")
    config_mod._flag(doc, data, "allow_file_sources")
    if "subscriptions" not in data:
        # The file is the whole state: a missing section would remove everything.
        raise doc.error((), "no subscriptions: section; write `subscriptions: []` to remove every "
                            "subscription of the tenant")
    sources = config_mod._list(doc, ("sources",), data.get("sources"))
    checking = settings.model_copy(update={"allow_private_targets": True}) if allow_private else settings
    raw = config_mod._list(doc, ("subscriptions",), data["subscriptions"])
    subs = [config_mod._subscription(doc, i, s, checking) for i, s in enumerate(raw)]
    config_mod._unique(doc, "subscriptions", [s.name for s in subs])
    wanted = []
    for i, s in enumerate(subs):
        kind = next(k for k in ("query", "rule", "fx") if k in raw[i])
        wanted.append(_account_checks(doc, ("subscriptions", i), kind, s))
    return Desired(file, tuple(wanted), len(sources), allow_private)


def _account_checks(doc, path: tuple, kind: str, s: config_mod.Subscription) -> Wanted:
    """What the API would refuse, refused here with the file's line."""
    targets = tuple(dict.fromkeys(t.strip() for t in s.channels))
    try:
        subscriptions.check_name(s.name)
    except Invalid as exc:
        raise doc.error(path + ("name",), exc.message) from None
    try:
        if s.query is not None:
            subscriptions.check_query(s.query)
        else:
            subscriptions.check_fx(s.name, s.fx)
    except Invalid as exc:
        sub = (exc.field or "").split(".")[1:] if kind == "fx" else []
        raise doc.error(path + (kind, *sub), exc.message) from None
    if len(targets) > subscriptions.MAX_CHANNELS:
        raise doc.error(path + ("channels",), f"{len(targets)} channels; at most "
                                              f"{subscriptions.MAX_CHANNELS} per subscription")
    return Wanted(s.name, targets, query=s.query, fx=s.fx)


# --- the difference -----------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    op: str      # "+" added, "~" changed, "-" removed
    kind: str    # "tenant", "channel", "subscription"
    name: str    # the tenant's or subscription's name, the channel's target (redacted)
    detail: str = ""

    def line(self) -> str:
        return f"{self.op} {self.kind} {self.name}" + (f": {self.detail}" if self.detail else "")


@dataclass
class Diff:
    tenant: str
    tenant_id: str | None  # None: the tenant is created
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What to do, for apply():
    new_targets: list[str] = field(default_factory=list)
    target_ids: dict[str, str] = field(default_factory=dict)   # existing channels the file uses
    add: list[Wanted] = field(default_factory=list)
    change: list[tuple[str, Wanted, set[str]]] = field(default_factory=list)  # (id, wanted, what)
    replace: list[tuple[str, Wanted]] = field(default_factory=list)
    remove: list[tuple[str, str]] = field(default_factory=list)              # (id, name)
    remove_channels: list[tuple[str, str]] = field(default_factory=list)     # (id, target)

    @property
    def empty(self) -> bool:
        return not self.changes

    def lines(self) -> list[str]:
        return [c.line() for c in self.changes]

    def counts(self) -> str:
        def count(kind: str) -> str:
            ops = [c.op for c in self.changes if c.kind == kind]
            return (f"{ops.count('+')} added, {ops.count('~')} changed, {ops.count('-')} removed"
                    if kind == "subscription" else f"{ops.count('+')} added, {ops.count('-')} removed")
        return f"subscriptions {count('subscription')}; channels {count('channel')}"


def _all_subscriptions(store: Store, tenant_id: str) -> list[subscriptions.View]:
    views, cursor = subscriptions.page(store, tenant_id, limit=500)
    while cursor:
        more, cursor = subscriptions.page(store, tenant_id, after=cursor, limit=500)
        views += more
    return views


def _show_query(query: str) -> str:
    return json.dumps(query, ensure_ascii=False)


def _show_fx(fx: dict) -> str:
    return json.dumps(fx, ensure_ascii=False, separators=(", ", ": "))


def _show_targets(targets) -> str:
    return ", ".join(redact(t) for t in targets)


def diff(store: Store, tenant_name: str, desired: Desired) -> Diff:
    """What apply() would change, read from the database; writes nothing."""
    tenant = tenants.by_name(store, tenants.check_name(tenant_name))
    out = Diff(tenant_name, tenant.id if tenant else None)
    if tenant is None:
        out.changes.append(Change("+", "tenant", tenant_name, "its API key is shown once, after applying"))
        current, have = [], []
    else:
        current, have = _all_subscriptions(store, tenant.id), channels.list_(store, tenant.id)
    by_target: dict[str, object] = {}
    for ch in have:  # oldest first: of two channels with one target, the first is kept
        by_target.setdefault(ch.target, ch)
    target_of = {ch.id: ch.target for ch in have}

    wanted_targets = list(dict.fromkeys(t for w in desired.subscriptions for t in w.channels))
    for t in wanted_targets:
        if t in by_target:
            out.target_ids[t] = by_target[t].id
            ch = by_target[t]
            if ch.type == ChannelType.EMAIL and ch.confirmed_at is None:
                out.notes.append(f"channel {redact(t)} is not confirmed yet: nothing is sent to it until "
                                 "its confirmation link is followed")
        else:
            out.new_targets.append(t)
            detail = ("webhook (its signing secret is shown once, after applying)"
                      if not t.startswith("mailto:") else "email, confirmed (added by the operator)")
            out.changes.append(Change("+", "channel", redact(t), detail))

    by_name = {v.row.name: v for v in current}
    for w in desired.subscriptions:
        cur = by_name.get(w.name)
        if cur is None:
            out.add.append(w)
            rule = f"query {_show_query(w.query)}" if w.query is not None else f"fx {_show_fx(w.fx)}"
            out.changes.append(Change("+", "subscription", w.name, f"{rule} -> {_show_targets(w.channels)}"))
            continue
        row, what, said = cur.row, set(), []
        if (row.query is None) != (w.query is None):
            was = f"query {_show_query(row.query)}" if row.query is not None else f"fx {_show_fx(row.fx)}"
            now = f"query {_show_query(w.query)}" if w.query is not None else f"fx {_show_fx(w.fx)}"
            out.replace.append((row.id, w))
            said.append(f"{was} -> {now} (replaced: deleted and created again)")
            what = {"replace"}
        elif w.query is not None and row.query != w.query:
            what.add("query")
            said.append(f"query {_show_query(row.query)} -> {_show_query(w.query)}")
        elif w.fx is not None and row.fx != w.fx:
            what.add("fx")
            said.append(f"fx {_show_fx(row.fx)} -> {_show_fx(w.fx)}")
        now_ids = [out.target_ids.get(t) for t in w.channels]
        if "replace" not in what and list(cur.channels) != now_ids:
            what.add("channels")
            was_targets = [target_of.get(c, c) for c in cur.channels]
            gained = [t for t in w.channels if t not in was_targets]
            lost = [t for t in was_targets if t not in w.channels]
            parts = [f"+{redact(t)}" for t in gained] + [f"-{redact(t)}" for t in lost]
            said.append("channels " + (" ".join(parts) if parts else "in a new order"))
        if what and "replace" not in what:
            out.change.append((row.id, w, what))
        if said:
            out.changes.append(Change("~", "subscription", w.name, "; ".join(said)))
    wanted_names = {w.name for w in desired.subscriptions}
    for v in sorted(current, key=lambda v: v.row.name):
        if v.row.name not in wanted_names:
            out.remove.append((v.row.id, v.row.name))
            out.changes.append(Change("-", "subscription", v.row.name))

    kept = set(out.target_ids.values())
    for ch in sorted(have, key=lambda ch: (ch.target, ch.created_at, ch.id)):
        if ch.id not in kept:
            out.remove_channels.append((ch.id, ch.target))
            out.changes.append(Change("-", "channel", redact(ch.target),
                                      "no subscription in the file uses it"))
    return out


# --- applying ---------------------------------------------------------------------

@dataclass
class Applied:
    diff: Diff
    tenant_id: str | None
    api_key: str | None = None                                    # a created tenant's, shown once
    webhook_secrets: dict[str, str] = field(default_factory=dict)  # new webhooks' target -> secret


def apply(store: Store, tenant_name: str, desired: Desired, settings: Settings, now: datetime,
          *, dry_run: bool = False) -> Applied:
    """Make the tenant's subscriptions and channels those of `desired`; the
    tenant is created when missing. With dry_run, only the Diff."""
    d = diff(store, tenant_name, desired)
    done = Applied(d, d.tenant_id)
    if dry_run or d.empty:
        return done
    if desired.allow_private_targets:
        settings = settings.model_copy(update={"allow_private_targets": True})
    if d.tenant_id is None:
        created = tenants.create(store, tenant_name, now)
        done.tenant_id, done.api_key = created.tenant.id, created.api_key
    tid = done.tenant_id
    ids = dict(d.target_ids)
    for t in d.new_targets:
        if t.startswith("mailto:"):
            ids[t] = channels.create_email(store, tid, t[len("mailto:"):], settings, now, confirmed=True).channel.id
        else:
            made = channels.create_webhook(store, tid, t, WEBHOOK_FORMAT, settings, now)
            ids[t], done.webhook_secrets[t] = made.channel.id, made.secret
    for sub_id, name in d.remove:
        subscriptions.delete_(store, tid, sub_id, now)
    for sub_id, w in d.replace:
        subscriptions.delete_(store, tid, sub_id, now)
    changing = {sub_id: (w, what) for sub_id, w, what in d.change}
    replacing = {w.name for _, w in d.replace}
    adding = {w.name for w in d.add}
    # In the file's order, each created a microsecond after the one before:
    # `tulpar export` lists them by creation, so it gives the file's order back.
    for i, w in enumerate(desired.subscriptions):
        wanted_ids = [ids[t] for t in w.channels]
        if w.name in adding or w.name in replacing:
            subscriptions.create(store, tid, w.name, wanted_ids, now + timedelta(microseconds=i),
                                 query=w.query, fx=w.fx)
    for sub_id, (w, what) in changing.items():
        subscriptions.update(store, tid, sub_id, now,
                             query=w.query if "query" in what else None,
                             fx=w.fx if "fx" in what else None,
                             channel_ids=[ids[t] for t in w.channels] if "channels" in what else None)
    for ch_id, _ in d.remove_channels:
        try:
            channels.delete_(store, tid, ch_id, now)
        except NotFound:  # deleted meanwhile (over the API): what we wanted
            pass
    return done


# --- exporting ----------------------------------------------------------------------

def export(store: Store, tenant_name: str, settings: Settings | None = None) -> str:
    """The tenant's subscriptions in the config file's format (YAML text);
    `tulpar apply` of it changes nothing. Secrets are not in it."""
    settings = settings or Settings()
    tenant = tenants.by_name(store, tenants.check_name(tenant_name))
    if tenant is None:
        raise NotFound(f"no tenant {tenant_name!r}", field="tenant")
    target_of = {ch.id: ch.target for ch in channels.list_(store, tenant.id)}
    views = sorted(_all_subscriptions(store, tenant.id), key=lambda v: (v.row.created_at, v.row.name))
    out = [f"# tulpar export --tenant {tenant_name}: its subscriptions and the channels they use.",
           f"# `tulpar apply -f FILE --tenant {tenant_name}` makes the tenant match this file again.",
           "# Sources are operator configuration (TULPAR_CONFIG) and are not part of it; neither are",
           "# the webhooks' signing secrets (a channel keeps its own while its URL stays)."]
    targets = {target_of[c] for v in views for c in v.channels if c in target_of}
    if any(_needs_private(t, settings) for t in sorted(targets)):
        out.append("# Some webhook targets are on loopback or private addresses:")
        out.append("allow_private_targets: true")
    body = []
    for v in views:
        row = v.row
        chans = [target_of[c] for c in v.channels if c in target_of]
        if not chans:
            body.append(f"  # {row.name!r} is left out: it has no channel left (the file format needs "
                        "one), so applying this file removes it")
            continue
        entry: dict = {"name": row.name}
        if row.query is not None:
            entry["query"] = row.query
        else:
            entry["fx"] = _Flow(row.fx)
        entry["channels"] = chans
        if row.paused:
            body.append("  # paused (over the API): apply leaves pausing as it is")
        dumped = yaml.dump([entry], Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096,
                           default_flow_style=False)
        body += ["  " + line for line in dumped.splitlines()]
    out.append("subscriptions:" if any(not b.lstrip().startswith("#") for b in body) else "subscriptions: []")
    out += body
    return "\n".join(out) + "\n"


class _Flow(dict):
    """An FX rule, written on one line as the README shows it."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)  # lists indented under their key


_Dumper.add_representer(_Flow, lambda dumper, data: dumper.represent_mapping(
    "tag:yaml.org,2002:map", data.items(), flow_style=True))


def _needs_private(target: str, settings: Settings) -> bool:
    if target.startswith("mailto:"):
        return False
    strict = settings.model_copy(update={"allow_private_targets": False})
    try:
        delivery_channels.validate_target(target, strict)
    except ValueError:
        try:
            delivery_channels.validate_target(target, settings.model_copy(update={"allow_private_targets": True}))
        except ValueError:
            return False
        return True
    return False
