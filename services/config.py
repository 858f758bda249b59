"""Load the YAML file that describes sources and subscriptions.

Every error names the file, the line and the field, e.g.
`config/demo.yaml:14: subscriptions[0].channels[1]: 'ftp://x' is not ...`,
so a typo is found before anything starts (the CLI exits 2). The YAML itself
is read by services.yamlfile, which refuses files that are too large, nested
too deeply, or whose aliases would expand past a small multiple of their size.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from services import yamlfile
from services.delivery import channels
from services.durations import parse_duration
from services.errors import TulparError
from services.settings import Settings


class ConfigError(TulparError, ValueError):
    def __init__(self, file: str, line: int | None, where: str, message: str):
        self.file, self.line, self.where, self.message = file, line, where, message
        loc = f"{file}:{line}" if line else file
        super().__init__(f"{loc}: {where}: {message}" if where else f"{loc}: {message}")


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    url: str
    interval: float
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """One channel of a tenant's subscription (services/accounts/live.py):
    its target (the channel module's form), its id in the database and, for
    a webhook, its body format."""

    target: str
    channel_id: str
    format: str | None = None


@dataclass(frozen=True)
class Subscription:
    """A subscription as the pipelines match it: one of the config file's
    (`id` None, known by its name) or a tenant's from the database (known by
    its id: names are only unique per tenant; the alert still shows the name).
    `channels` are the targets; a tenant's also has `routes`, one per channel
    it may send to (existing and confirmed), in the same order."""

    name: str
    channels: tuple[str, ...]
    query: str | None = None  # news rule in the query language (docs/rules.md)
    fx: dict | None = None    # currency rule (docs/fx.md), validated by services.fx.rules
    id: str | None = None
    tenant_id: str | None = None
    routes: tuple[Route, ...] = ()

    @property
    def key(self) -> str:
        """What identifies it: the id for a tenant's, the name for the config's.
        (FX rule state is stored under it.)"""
        return self.id if self.id is not None else self.name


@dataclass(frozen=True)
class Config:
    path: str
    sources: tuple[Source, ...]
    subscriptions: tuple[Subscription, ...]
    allow_private_targets: bool = False
    allow_file_sources: bool = False  # as written in the file; settings can allow them too

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)


def settings_for(cfg: Config, base: Settings) -> Settings:
    """The settings to run `cfg` with: `base` (the environment's) plus what the
    config file may switch on for itself, never off: loopback/private targets
    (the demo's sinks) and file:// sources (the fetcher refuses them unless
    the settings allow them)."""
    update = {}
    if cfg.allow_private_targets:
        update["allow_private_targets"] = True
    if cfg.allow_file_sources:
        update["allow_file_sources"] = True
    return base.model_copy(update=update) if update else base


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Doc:
    """A YAML document as plain Python plus the line of every value."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.lines: dict[tuple, int] = {}
        try:
            node = yamlfile.compose(text, file)
            # Walking the tree expands aliases (each path gets its own value
            # and line); yamlfile.compose has already refused a document whose
            # expansion would be large or deep, so this stays small.
            self.data = self._plain(node, ()) if node is not None else {}
        except yamlfile.YamlError as exc:
            raise ConfigError(file, exc.line, "", exc.message) from None

    def _plain(self, node, path: tuple) -> Any:
        self.lines[path] = yamlfile.line(node)
        if isinstance(node, MappingNode):
            out = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    raise ConfigError(self.file, yamlfile.line(key_node), _where(path),
                                      "keys must be plain words, not lists or mappings")
                key = key_node.value
                if key in out:
                    raise ConfigError(self.file, yamlfile.line(key_node), _where(path + (key,)), "duplicate key")
                out[key] = self._plain(value_node, path + (key,))
            return out
        if isinstance(node, SequenceNode):
            return [self._plain(v, path + (i,)) for i, v in enumerate(node.value)]
        value = node.value if node.tag == "tag:yaml.org,2002:str" else yamlfile.scalar(node, self.file)
        if isinstance(value, str):
            value = self._expand(value, path)
        return value

    def _expand(self, value: str, path: tuple) -> str:
        def sub(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise self.error(path, f"environment variable {name} is not set")
        return _VAR.sub(sub, value)

    def line(self, path: tuple) -> int | None:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def error(self, path: tuple, message: str) -> ConfigError:
        return ConfigError(self.file, self.line(path), _where(path), message)


def _where(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load(path: str | Path, settings: Settings | None = None) -> Config:
    settings = settings or Settings()
    try:
        text = yamlfile.read_text(path, settings.max_config_bytes)
    except yamlfile.YamlError as exc:
        raise ConfigError(exc.file, exc.line, "", exc.message) from None
    return parse(text, str(path), settings)


def parse(text: str, file: str = "<config>", settings: Settings | None = None) -> Config:
    doc = _Doc(file, text)
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "the top level must be a mapping with sources: and subscriptions:")
    _only(doc, (), data, {"sources", "subscriptions", "allow_private_targets", "allow_file_sources"})
    allow_private = _flag(doc, data, "allow_private_targets")
    allow_files = _flag(doc, data, "allow_file_sources")
    settings = settings or Settings()
    files_ok = allow_files or settings.allow_file_sources
    sources = tuple(_source(doc, i, s, files_ok)
                    for i, s in enumerate(_list(doc, ("sources",), data.get("sources", []))))
    _unique(doc, "sources", [s.name for s in sources])
    if allow_private:
        settings = settings.model_copy(update={"allow_private_targets": True})
    subs = tuple(_subscription(doc, i, s, settings)
                 for i, s in enumerate(_list(doc, ("subscriptions",), data.get("subscriptions", []))))
    _unique(doc, "subscriptions", [s.name for s in subs])
    return Config(file, sources, subs, allow_private, allow_files)


def _flag(doc: _Doc, data: dict, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise doc.error((key,), "must be true or false")
    return value


def _source(doc: _Doc, i: int, raw: Any, files_ok: bool) -> Source:
    path = ("sources", i)
    if not isinstance(raw, dict):
        raise doc.error(path, "each source is a mapping with name, kind and url")
    _only(doc, path, raw, {"name", "kind", "url", "interval", "options"})
    name = _text(doc, path + ("name",), raw.get("name"))
    kind = raw.get("kind", "feed")
    known = _source_kinds()
    if kind not in known:
        raise doc.error(path + ("kind",), f"unknown source kind {kind!r}; known: {', '.join(sorted(known))}")
    url = ""
    if kind != "constant" or raw.get("url") is not None:  # a fixed rate is fetched from nowhere
        url = _text(doc, path + ("url",), raw.get("url"))
        if not re.match(r"^(https?|file)://", url):
            raise doc.error(path + ("url",), f"{url!r} is not an http(s):// or file:// URL")
        if url.startswith("file://") and not files_ok:
            # A config that can name files lets whoever edits it read any file
            # the service can (and have it posted to a webhook as "news").
            raise doc.error(path + ("url",), f"{url!r}: file:// sources are off; for tests and local demos "
                                             "only, allow them with `allow_file_sources: true` at the top of "
                                             "the config or TULPAR_ALLOW_FILE_SOURCES=1")
    try:
        interval = parse_duration(raw.get("interval", "60s"))
    except ValueError as exc:
        raise doc.error(path + ("interval",), str(exc)) from None
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise doc.error(path + ("options",), "must be a mapping")
    _check_rate_options(doc, path, kind, options)
    return Source(name, kind, url, interval, options)


def _check_rate_options(doc: _Doc, path: tuple, kind: str, options: dict) -> None:
    """Rate sources: options go through the adapter's own config class, so the
    config file fails at load time, not at the first poll."""
    from services.fx import sources as rates

    if kind not in rates.ADAPTERS:
        return
    configured = {"generic-json": "GenericJsonConfig", "constant": "ConstantConfig"}
    if kind not in configured:
        if options:
            raise doc.error(path + ("options",), f"a {kind} source takes no options")
        return
    try:
        getattr(rates.ADAPTERS[kind], configured[kind]).from_dict(options)
    except rates.RateConfigError as exc:
        # Point at the option the message names, when it names one.
        said = str(exc).split(" (known", 1)[0]
        named = [k for k in options if f"`{k}`" in said or f"'{k}'" in said]
        raise doc.error(path + ("options",) + tuple(named[:1]), str(exc)) from None


def _subscription(doc: _Doc, i: int, raw: Any, settings: Settings) -> Subscription:
    path = ("subscriptions", i)
    if not isinstance(raw, dict):
        raise doc.error(path, "each subscription is a mapping with name, a rule and channels")
    _only(doc, path, raw, {"name", "query", "rule", "fx", "channels"})
    name = _text(doc, path + ("name",), raw.get("name"))
    kinds = [k for k in ("query", "rule", "fx") if k in raw]
    if len(kinds) != 1:
        raise doc.error(path, "needs exactly one of query:, rule: (word lists) or fx:")
    query = fx = None
    if "query" in raw:
        query = _text(doc, path + ("query",), raw["query"])
    elif "rule" in raw:
        query = _words_to_query(doc, path + ("rule",), raw["rule"])
    else:
        fx = raw["fx"]
        if not isinstance(fx, dict):
            raise doc.error(path + ("fx",), "must be a mapping like {pair: KZT/USD, change_pct: 1.0}")
        _check_fx(doc, path + ("fx",), name, fx)
    if query is not None:
        _check_query(doc, path + (kinds[0],), query)
    chans = _list(doc, path + ("channels",), raw.get("channels"))
    if not chans:
        raise doc.error(path + ("channels",), "at least one channel (mailto:ADDRESS or an http(s) URL)")
    for j, target in enumerate(chans):
        tpath = path + ("channels", j)
        try:
            channels.validate_target(_text(doc, tpath, target), settings)
        except ValueError as exc:
            raise doc.error(tpath, str(exc)) from None
    return Subscription(name, tuple(chans), query=query, fx=fx)


def _words_to_query(doc: _Doc, path: tuple, raw: Any) -> str:
    """The first rule form, word lists: any/all/none of these words. Each word
    becomes a quoted phrase, which keeps the whole-word, unstemmed meaning."""
    if not isinstance(raw, dict):
        raise doc.error(path, "must be a mapping with any:, all: and/or none: word lists")
    _only(doc, path, raw, {"any", "all", "none"})
    groups = {}
    for key in ("any", "all", "none"):
        words = _list(doc, path + (key,), raw.get(key, []))
        for j, w in enumerate(words):
            if not isinstance(w, str) or not w.strip() or '"' in w:
                raise doc.error(path + (key, j), "each entry is a non-empty word or phrase without quotes")
        groups[key] = [f'"{w.strip()}"' for w in words]
    if not groups["any"] and not groups["all"]:
        raise doc.error(path, "needs at least one word under any: or all:")
    parts = []
    if groups["any"]:
        parts.append("(" + " OR ".join(groups["any"]) + ")")
    parts += groups["all"]
    parts += [f"NOT {w}" for w in groups["none"]]
    return " AND ".join(parts)


def _check_query(doc: _Doc, path: tuple, query: str) -> None:
    from services import rules  # the query language (docs/rules.md)

    try:
        rules.parse(query)
    except rules.RuleError as exc:
        raise doc.error(path, str(exc)) from None


def _check_fx(doc: _Doc, path: tuple, name: str, raw: dict) -> None:
    from services.fx import rules as fx_rules

    try:
        fx_rules.parse_rule({"name": name, **raw})
    except ValueError as exc:
        raise doc.error(path, str(exc)) from None


def _source_kinds() -> set[str]:
    from services import polling

    return set(polling.KINDS)


def _only(doc: _Doc, path: tuple, raw: dict, allowed: set[str]) -> None:
    for key in raw:
        if key not in allowed:
            raise doc.error(path + (key,), f"unknown field; expected one of {', '.join(sorted(allowed))}")


def _list(doc: _Doc, path: tuple, raw: Any) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise doc.error(path, "must be a list")
    return raw


def _text(doc: _Doc, path: tuple, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise doc.error(path, "is required and must be a non-empty string")
    return raw.strip()


def _unique(doc: _Doc, key: str, names: list[str]) -> None:
    seen = set()
    for i, n in enumerate(names):
        if n in seen:
            raise doc.error((key, i, "name"), f"duplicate name {n!r}")
        seen.add(n)
