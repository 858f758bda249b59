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
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from services import yamlfile
from services.errors import InputError
from services.rules import Document, LazyPresets, Matcher, PresetError, RuleError, parse
from services.rules.presets import DEFAULT_DIR


def register(sub) -> None:
    p = sub.add_parser("classify", help="match rules against articles (JSON lines in, JSON lines out)")
    p.add_argument("--rules", required=True, metavar="RULES.yaml", help="YAML list of {name, query}")
    p.add_argument("articles", metavar="ARTICLES.jsonl", help="one JSON article a line ('-' for stdin)")
    p.add_argument("--presets", metavar="DIR", default=str(DEFAULT_DIR),
                   help="presets directory for topic:/country: (default: the bundled presets)")
    p.set_defaults(handler=run)


def run(args) -> int:
    try:
        rules = load_rules(args.rules, LazyPresets(args.presets))
        articles = load_articles(args.articles)
    except InputError as err:
        print(f"tulpar classify: {err}", file=sys.stderr)
        return 2
    sys.stdout.write("".join(classify(rules, articles)))
    sys.stdout.flush()
    return 0


def classify(rules: list[tuple[object, object]], articles: list[dict]) -> list[str]:
    """Output lines for parsed `(name, rule)` pairs and checked articles."""
    matcher = Matcher()
    for position, (_, rule) in enumerate(rules):
        matcher.add(position, rule)
    lines = []
    for article in articles:
        for position, evidence in matcher.match(Document.from_article(article)).items():
            record = {"article": article["id"], "rule": rules[position][0], "terms": evidence.terms()}
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return lines


def load_rules(path: str, presets) -> list[tuple[object, object]]:
    data = _read_yaml(path)
    if data is None:
        data = []
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a YAML list of {{name, query}}")
    rules, seen = [], set()
    for number, item in enumerate(data, 1):
        where = f"{path}: rule {number}"
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected a mapping with name and query")
        name = item.get("name")
        if isinstance(name, bool) or not isinstance(name, (str, int)) or not str(name).strip():
            raise InputError(f"{where}: 'name' must be a non-empty string")
        where = f"{path}: rule '{name}'"
        if name in seen:
            raise InputError(f"{where}: duplicate name")
        seen.add(name)
        query = item.get("query")
        if not isinstance(query, str):
            raise InputError(f"{where}: 'query' must be a string")
        try:
            rule = parse(query, presets)
        except RuleError as err:
            raise InputError(f"{where}: {err}\n{err.display(query)}") from None
        except PresetError as err:
            raise InputError(f"bad preset: {err}") from None
        rules.append((name, rule))
    return rules


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
