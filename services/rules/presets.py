"""Preset loader: ready-made topics and countries, kept as YAML data.

One file per preset, `topics/NAME.yaml` or `countries/CODE.yaml` under the
presets directory:

    name: tariffs            # referenced as topic:tariffs / country:KZ
    description: one line
    query: '...'             # in the query language
    exclude: '...'           # optional
    model: NAME              # optional, topics only: a relevance model

A clause several presets need (the five Central Asian states, in every
language) is written once, in `shared.yaml` beside the folders, as
`NAME: query text`; a preset's query or exclude names it as `{{NAME}}`, which
reads as `(query text)`. An unknown name is an error naming the file.

The effective rule is `(query) AND NOT (exclude)`. With `model: fx` the
model in services/relevance/models/fx.json checks it: it vetoes a match it
scores below its low threshold and confirms an article the keywords missed
that it scores above its high one (services/rules/verdicts.py says how). Presets may refer to other
presets (`country:KZ` inside a topic); a cycle is an error. Every file is
parsed when loaded, so a broken preset fails loudly at start-up, naming its
file, rather than at the first article.

The parser only looks presets up (`PresetSource`); this module reads them and
parses them with it, so the imports go one way: presets -> parser.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from services import yamlfile
from services.countries import CODES
from services.rules.errors import PresetError, RuleError
from services.rules import verdicts
from services.rules.nodes import And, Meta, Node, Not, Or
from services.rules.parser import parse

DEFAULT_DIR = Path(__file__).parent / "presets"
FOLDERS = {"topics": "topic", "countries": "country"}
SHARED_FILE = "shared.yaml"   # {NAME: query text}, named in presets as {{NAME}}
_SHARED_REF = re.compile(r"\{\{\s*([^{}\s]*)\s*\}\}")
_KEYS = {"name", "description", "query", "exclude", "model"}
MAX_PRESET_BYTES = 1024 * 1024  # ours are ~2 KiB
_TOPIC_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


@dataclass(frozen=True, slots=True)
class Preset:
    kind: str  # topic | country
    name: str
    description: str
    query: str
    exclude: str | None
    path: Path
    text: str  # the file as written, for `tulpar rules show`
    model: str | None = None  # a relevance model's name (topics only)

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def effective_query(self) -> str:
        if self.exclude:
            return f"({self.query}) AND NOT ({self.exclude})"
        return self.query


class Presets:
    """The loaded presets; `resolve(kind, name)` gives a preset's parsed
    effective rule (what the parser needs for `topic:`/`country:`)."""

    def __init__(self, presets: dict[tuple[str, str], Preset], models: bool = True, models_dir: Path | None = None):
        self._presets = presets
        self._models = models  # False: the keywords alone (to measure them against the model)
        self._models_dir = models_dir  # None: services/relevance/models
        self._rules: dict[tuple[str, str], Node] = {}
        self._resolving: set[tuple[str, str]] = set()

    def get(self, kind: str, name: str) -> Preset | None:
        return self._presets.get((kind, name))

    def __iter__(self):
        return iter(sorted(self._presets.values(), key=lambda p: (p.kind, p.name)))

    def __len__(self) -> int:
        return len(self._presets)

    def resolve(self, kind: str, name: str) -> Node | None:
        key = (kind, name)
        if key in self._rules:
            return self._rules[key]
        preset = self._presets.get(key)
        if preset is None:
            return None
        if key in self._resolving:
            raise PresetError(f"{preset.path}: {preset.ref} refers to itself (through other presets)")
        self._resolving.add(key)
        try:
            rule = self._parse(preset, "query", preset.query)
            if preset.exclude:
                rule = And((rule, Not(self._parse(preset, "exclude", preset.exclude))))
            if preset.model and self._models:
                rule = _checked_by_model(preset, rule, self._models_dir)
        finally:
            self._resolving.discard(key)
        self._rules[key] = rule
        return rule

    def _parse(self, preset: Preset, key: str, query: str) -> Node:
        try:
            return parse(query, self)
        except RuleError as err:
            raise PresetError(f"{preset.path}: {key}: {err}\n{err.display(query)}") from None


def _checked_by_model(preset: Preset, rule: Node, models_dir: Path | None = None) -> Node:
    """(rule AND NOT model:NAME<) OR model:NAME> -- see verdicts.py. A side
    whose threshold can never be passed (low 0: no score is below it; high
    1: none above) is left out, so the model is never scored for it."""
    try:
        model = verdicts.load(preset.model, models_dir)
    except ValueError as err:
        raise PresetError(f"{preset.path}: model: {err}") from None
    t = model.thresholds
    if t.low > 0.0:
        rule = And((rule, Not(Meta(verdicts.FIELD, preset.model + verdicts.VETO))))
    if t.high < 1.0:
        rule = Or((rule, Meta(verdicts.FIELD, preset.model + verdicts.CONFIRM)))
    return rule


def load_presets(directory: str | Path = DEFAULT_DIR, models: bool = True, models_dir: Path | None = None) -> Presets:
    """Read and check every preset under `directory` (a missing folder
    means no presets of that kind). `models=False` leaves out the
    relevance models that presets name: the keyword rules alone."""
    directory = Path(directory)
    shared = _read_shared(directory / SHARED_FILE)
    found: dict[tuple[str, str], Preset] = {}
    for folder, kind in FOLDERS.items():
        for path in sorted((directory / folder).glob("*.yaml")):
            preset = _read(path, kind, shared)
            key = (kind, preset.name)
            if key in found:
                raise PresetError(f"{path}: {preset.ref} is also defined in {found[key].path}")
            found[key] = preset
    presets = Presets(found, models, models_dir)
    for kind, name in found:
        presets.resolve(kind, name)
    return presets


@lru_cache(maxsize=1)
def default_presets() -> Presets:
    return load_presets(DEFAULT_DIR)


class LazyPresets:
    """Presets loaded only when a query first names one, so a plain query
    never depends on the preset files. Without a directory: the bundled
    presets, loaded once per process (`default_presets`)."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = directory
        self._presets: Presets | None = None

    def resolve(self, kind: str, name: str) -> Node | None:
        if self._presets is None:
            self._presets = default_presets() if self.directory is None else load_presets(self.directory)
        return self._presets.resolve(kind, name)


BUNDLED = LazyPresets()  # what `topic:`/`country:` name unless told otherwise


def _load_yaml(path: Path) -> tuple[str, object]:
    # `tulpar classify --presets DIR` reads presets a user wrote: the same
    # guarded loader as configs (size, alias and depth limits).
    try:
        text = yamlfile.read_text(path, MAX_PRESET_BYTES)
        return text, yamlfile.load(text, str(path))
    except yamlfile.YamlError as err:
        raise PresetError(str(err)) from None


def _read_shared(path: Path) -> dict[str, str]:
    """The shared clauses, {NAME: query text}; none without the file."""
    if not path.is_file():
        return {}
    _, data = _load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PresetError(f"{path}: expected a mapping of clause names to query text")
    for name, query in data.items():
        if not isinstance(name, str) or not _TOPIC_NAME.match(name):
            raise PresetError(f"{path}: clause name {name!r} must be lower-case letters, digits and '-'")
        if not isinstance(query, str) or not query.strip():
            raise PresetError(f"{path}: '{name}' must be a non-empty string of query text")
    return data


def _expand(path: Path, key: str, query: str, shared: dict[str, str]) -> str:
    """`query` with each {{NAME}} replaced by (the shared clause NAME)."""
    def clause(found: re.Match) -> str:
        name = found.group(1)
        if name not in shared:
            known = ", ".join(sorted(shared)) or f"none: no {SHARED_FILE} beside the folders"
            raise PresetError(f"{path}: {key}: unknown shared clause {{{{{name}}}}} (known: {known})")
        return f"({shared[name]})"
    return _SHARED_REF.sub(clause, query)


def _read(path: Path, kind: str, shared: dict[str, str]) -> Preset:
    text, data = _load_yaml(path)
    if not isinstance(data, dict):
        raise PresetError(f"{path}: expected a mapping with name, description, query")
    unknown = set(data) - _KEYS
    if unknown:
        # A misspelt `exclude` would silently widen a topic: refuse it.
        raise PresetError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    for key in ("name", "query"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise PresetError(f"{path}: '{key}' must be a non-empty string")
    for key in ("description", "exclude", "model"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise PresetError(f"{path}: '{key}' must be a string")
    name = data["name"].strip()
    if kind == "country":
        if name.upper() not in CODES:
            raise PresetError(f"{path}: country name must be one of {', '.join(CODES)}")
        name = name.upper()
    elif not _TOPIC_NAME.match(name):
        raise PresetError(f"{path}: topic name must be lower-case letters, digits and '-'")
    exclude = data.get("exclude")
    if exclude:
        exclude = _expand(path, "exclude", exclude, shared)
    model = (data.get("model") or "").strip() or None
    if model is not None and (kind != "topic" or not _TOPIC_NAME.match(model)):
        raise PresetError(f"{path}: 'model' is for topics only and must be a model name like 'fx'")
    return Preset(
        kind=kind,
        name=name,
        description=(data.get("description") or "").strip(),
        query=_expand(path, "query", data["query"], shared),
        exclude=exclude if exclude and exclude.strip() else None,
        path=path,
        text=text,
        model=model,
    )
