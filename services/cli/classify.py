"""`tulpar classify --rules RULES.yaml ARTICLES.jsonl`: which rules match which articles.

Rules: a YAML list of `{name, query}`. Articles: one JSON object a line with
`id`, `title`, `summary` and optional `source`, `lang`, `published`; blank
lines are skipped; `-` reads standard input. Output: one JSON line per match,
`{"article": ID, "rule": NAME, "terms": [...]}`, articles in input order and,
within an article, rules in file order. `terms` are the distinct matched terms
and phrases as written in the rule, in the order they first occur in the
article (title before summary).

Everything is read and checked before anything is written: a bad rule or line
exits 2 with a message naming the rule or the line number, and no output.

`--jobs N` (default: the CPUs this process may use) matches in N processes
forked once the rules are indexed, so they share the index; each takes runs
of CHUNK articles and the output keeps the input order, byte for byte what
one process writes. Fewer than 2 * CHUNK articles are matched in-process.
"""
from __future__ import annotations

import gc
import json
import multiprocessing
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from services import collector, yamlfile
from services.errors import InputError
from services.rules import Document, LazyPresets, Matcher, PresetError, RuleError, parse
from services.rules.presets import DEFAULT_DIR


def register(sub) -> None:
    p = sub.add_parser("classify", help="match rules against articles (JSON lines in, JSON lines out)")
    p.add_argument("--rules", required=True, metavar="RULES.yaml", help="YAML list of {name, query}")
    p.add_argument("articles", metavar="ARTICLES.jsonl", help="one JSON article a line ('-' for stdin)")
    p.add_argument("--presets", metavar="DIR", default=str(DEFAULT_DIR),
                   help="presets directory for topic:/country: (default: the bundled presets)")
    p.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="processes that match articles (default: the CPUs available)")
    p.set_defaults(handler=run)


def _jobs(text: str) -> int:
    import argparse
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 256, not {text!r}")
    return n


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def run(args) -> int:
    # The cyclic collector stays paused until the rules are loaded, indexed
    # and frozen (classify() turns it back on then): re-enabled in between,
    # its first full collection would walk the millions of objects of 100k
    # parsed rules once for nothing (nothing loading makes is a cycle).
    collect = gc.isenabled()
    gc.disable()
    try:
        try:
            rules = load_rules(args.rules, LazyPresets(args.presets))
            articles = load_articles(args.articles)
        except InputError as err:
            print(f"tulpar classify: {err}", file=sys.stderr)
            return 2
        # Everything is checked by now: the output can go out article by
        # article (one write each) rather than all at the end.
        write = sys.stdout.write
        jobs = args.jobs if args.jobs is not None else default_jobs()
        for chunk in classify(rules, articles, collect, jobs):
            write(chunk)
        sys.stdout.flush()
        return 0
    finally:
        if collect:
            gc.enable()


CHUNK = 64  # articles a worker process takes at a time


def classify(rules: list[tuple[object, object]], articles: list[dict],
             collect: bool | None = None, jobs: int = 1) -> Iterator[str]:
    """The output for parsed `(name, rule)` pairs and checked articles, one
    string per article (its lines, possibly none).

    `collect`: whether to turn the cyclic garbage collector on (or off)
    once the rules are indexed and frozen (None: leave it as it is).
    `jobs` > 1: match in that many forked processes (see the module doc)."""
    matcher = Matcher()
    matcher.add_many((position, rule) for position, (_, rule) in enumerate(rules))
    # The rules are loaded for good: keep the collector from rescanning
    # them while matching (see docs/performance-match.md), and, once
    # forked, from writing to the pages the processes share.
    gc.freeze()
    if collect is not None:
        (gc.enable if collect else gc.disable)()
    output = _Output(matcher, rules)
    try:
        if jobs > 1 and len(articles) >= 2 * CHUNK and "fork" in multiprocessing.get_all_start_methods():
            yield from _in_processes(output, articles, jobs)
        else:
            for article in articles:
                yield output.lines(article)
    finally:
        gc.unfreeze()  # for callers in a long-lived process (tests)


class _Output:
    """An article's output lines. Each line is what `json.dumps({"article":
    ..., "rule": ..., "terms": [...]}, ensure_ascii=False)` gives, put
    together from pieces encoded once: the article's id once per article,
    each rule's name once, and each distinct tuple of terms once (the
    matcher numbers them: the same few recur across rules and articles). A
    few hundred matches per article make any per-line Python step cost more
    than matching, so an article's lines are gathered with numpy and joined
    in one call."""

    def __init__(self, matcher: Matcher, rules: list[tuple[object, object]]):
        self.matcher = matcher
        names = [f"{_encode_string(name) if name.__class__ is str else _json(name)}, \"terms\": "
                 for name, _ in rules]
        # By rule id (the matcher's numbering; the key is the position).
        self.rule_parts = np.array([names[key] for key in matcher.keys_by_id()], dtype=object)
        self.generation = None
        self.tails = np.empty(0, dtype=object)  # by terms id: the encoded terms and the line's end
        self.known = 0

    def lines(self, article: dict) -> str:
        matcher = self.matcher
        ids, term_ids = matcher.match(Document.from_article(article)).term_ids()
        n = len(ids)
        if not n:
            return ""
        now, values = matcher.terms_values()
        if now != self.generation:
            self.generation, self.known = now, 0
        known, tails = self.known, self.tails
        if known < len(values):
            if len(values) > len(tails):
                grown = np.empty(max(len(values), 2 * len(tails), 1024), dtype=object)
                grown[:known] = tails[:known]
                tails = self.tails = grown
            tails[known : len(values)] = [_terms_tail(terms) for terms in values[known:]]
            self.known = len(values)
        # Every line is head + the rule's part + its terms' tail.
        parts = np.empty(3 * n, dtype=object)
        parts[0::3] = f'{{"article": {_json(article["id"])}, "rule": '
        parts[1::3] = self.rule_parts[ids]
        parts[2::3] = tails[term_ids]
        return "".join(parts.tolist())


# What the forked workers inherit: (output, articles). Set just before the
# pool forks and cleared after; only (start, end) pairs and the output text
# cross between the processes.
_WORK: tuple[_Output, list[dict]] | None = None


def _lines_of(bounds: tuple[int, int]) -> list[str]:
    output, articles = _WORK
    return [output.lines(article) for article in articles[bounds[0]:bounds[1]]]


def _in_processes(output: _Output, articles: list[dict], jobs: int) -> Iterator[str]:
    global _WORK
    _WORK = (output, articles)
    bounds = [(start, min(start + CHUNK, len(articles))) for start in range(0, len(articles), CHUNK)]
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(bounds))) as pool:
            # imap keeps the input order and hands out chunks as workers free up.
            for lines in pool.imap(_lines_of, bounds):
                yield from lines
    finally:
        _WORK = None


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


# What json.dumps(..., ensure_ascii=False) writes for a string (the C
# encoder when there is one).
_encode_string = json.encoder.encode_basestring


def _terms_tail(terms: tuple[str, ...]) -> str:
    """`_json(list(terms)) + "}\\n"`, without json.dumps's overhead per call."""
    return "[" + ", ".join(map(_encode_string, terms)) + "]}\n"


def load_rules(path: str, presets) -> list[tuple[object, object]]:
    data = _read_yaml(path)
    if data is None:
        data = []
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a YAML list of {{name, query}}")
    # Subscription sets repeat queries: each distinct one is parsed once (a
    # tree is immutable, so rules can share it). The collector is paused
    # meanwhile: 100k parsed rules are millions of small objects it would
    # rescan over and over, and parsing makes no reference cycles.
    parsed: dict[str, object] = {}
    with collector.paused():
        return _check_rules(path, data, presets, parsed)


def _check_rules(path: str, data: list, presets, parsed: dict) -> list[tuple[object, object]]:
    rules, seen = [], set()
    append, known = rules.append, parsed.get
    for number, item in enumerate(data, 1):
        # The common case first, with no message built: a mapping whose name
        # is a new non-empty string and whose query is a string.
        if item.__class__ is dict:
            name, query = item.get("name"), item.get("query")
            if name.__class__ is str and query.__class__ is str and name not in seen and name.strip():
                seen.add(name)
                rule = known(query)
                if rule is None:
                    rule = parsed[query] = _parse_rule(path, name, query, presets)
                append((name, rule))
                continue
        name, query = _check_item(path, number, item, seen)
        seen.add(name)
        rule = known(query)
        if rule is None:
            rule = parsed[query] = _parse_rule(path, name, query, presets)
        append((name, rule))
    return rules


def _check_item(path: str, number: int, item, seen: set) -> tuple[object, str]:
    """(name, query) of a rule, or the InputError that says what is wrong."""
    where = f"{path}: rule {number}"
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a mapping with name and query")
    name = item.get("name")
    if isinstance(name, bool) or not isinstance(name, (str, int)) or not str(name).strip():
        raise InputError(f"{where}: 'name' must be a non-empty string")
    where = f"{path}: rule '{name}'"
    if name in seen:
        raise InputError(f"{where}: duplicate name")
    query = item.get("query")
    if not isinstance(query, str):
        raise InputError(f"{where}: 'query' must be a string")
    return name, query


def _parse_rule(path: str, name, query: str, presets):
    try:
        return parse(query, presets)
    except RuleError as err:
        raise InputError(f"{path}: rule '{name}': {err}\n{err.display(query)}") from None
    except PresetError as err:
        raise InputError(f"bad preset: {err}") from None


_TEXT_KEYS = ("title", "summary")
_OPTIONAL_KEYS = ("source", "lang", "published")


def load_articles(path: str) -> list[dict]:
    text = _read(path)
    articles = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{'<stdin>' if path == '-' else path}: line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a JSON object")
        if "id" not in data:
            raise InputError(f"{where}: missing 'id'")
        article_id = data["id"]
        if isinstance(article_id, bool) or not isinstance(article_id, (str, int)):
            raise InputError(f"{where}: 'id' must be a string or an integer")
        for key in _TEXT_KEYS:
            if key not in data:
                raise InputError(f"{where}: missing '{key}'")
        for key in _TEXT_KEYS + _OPTIONAL_KEYS:
            if data.get(key) is not None and not isinstance(data[key], str):
                raise InputError(f"{where}: '{key}' must be a string")
        articles.append(data)
    return articles


def _read_yaml(path: str):
    """The rules file through the shared safe loader (size, nesting and alias
    limits); its errors keep this command's `FILE: message` form."""
    from services.settings import Settings

    limit = Settings().max_config_bytes
    try:
        if path == "-":
            return yamlfile.load(yamlfile.read_stream(sys.stdin.buffer, "<stdin>", limit), "<stdin>")
        return yamlfile.load(yamlfile.read_text(path, limit), path)
    except yamlfile.YamlError as err:
        where = f" (line {err.line})" if err.line else ""
        raise InputError(f"{err.file}: {err.message}{where}") from None


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
