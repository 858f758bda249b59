"""`tulpar fx`: evaluate FX rules over a CSV of rates, print a ticker, fetch a rate file.

`tulpar fx evaluate --rules FX.yaml QUOTES.csv` is a contract our release checks
use: one JSON line per alert, in time order (ties in rules-file order):
  {"rule": NAME, "pair": PAIR, "at": AT, "from": RATE, "to": RATE, "change_pct": X}
`at` is echoed exactly as written in the CSV row; from/to are JSON numbers with
the CSV's digits (derived pairs: 28 significant digits); change_pct is a float.
Any bad row or rule: exit 2, `FILE:LINE: why` on stderr, nothing on stdout.
"""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from services import yamlfile
from services.cli import fx_fetch
from services.countries import COUNTRIES
from services.errors import InputError
from services.fx import rules as fx_rules
from services.fx import ticker
from services.fx.pairs import PairError, check_pair, inverse_pair, report
from services.fx.quote import Quote

HEADER = ["at", "pair", "rate"]


@dataclass(frozen=True, slots=True)
class Row:
    quote: Quote
    at_text: str
    line: int


def parse_at(text: str) -> datetime:
    """ISO 8601; a date alone is midnight; a time without an offset is UTC."""
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def read_quotes(path: str) -> list[Row]:
    """Rows of an `at,pair,rate` CSV, sorted by time (stable), duplicates merged."""
    try:
        return _read_quotes(path)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except csv.Error as e:  # a NUL byte, an unterminated quote at end of file
        raise InputError(f"{path}: not readable as CSV: {e}") from None


def _read_quotes(path: str) -> list[Row]:
    rows: list[Row] = []
    seen: dict[tuple[str, datetime], Row] = {}
    with _open(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [c.strip().lower() for c in header] != HEADER:
            found = "the file is empty" if header is None else f"found {','.join(header)!r}"
            raise InputError(f"{path}:1: missing header at,pair,rate ({found})")
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            row = _row(path, line, cells)
            key = (row.quote.pair, row.quote.at)
            if key in seen:
                first = seen[key]
                if first.quote.rate != row.quote.rate:
                    raise InputError(f"{path}:{line}: {row.quote.pair} at {row.at_text} is "
                                     f"{row.quote.rate} here but {first.quote.rate} on line {first.line}")
                continue
            seen[key] = row
            rows.append(row)
    return sorted(rows, key=lambda r: r.quote.at)


def read_rules(path: str) -> list[fx_rules.Rule]:
    """A YAML list of rules with names; errors carry the YAML line."""
    from services.settings import Settings

    try:
        # The shared safe loader: size, nesting and alias limits; its errors
        # are already `FILE:LINE: why`.
        root = yamlfile.compose(yamlfile.read_text(path, Settings().max_config_bytes), path)
        if root is None:
            raise InputError(f"{path}:1: expected a YAML list of rules, the file is empty")
        if not isinstance(root, SequenceNode):
            raise InputError(f"{path}:{_line(root)}: expected a YAML list of rules (- name: ...)")
        for item in root.value:
            _check_mapping(path, item)
        data = yamlfile.construct(root, path)
    except yamlfile.YamlError as e:
        raise InputError(str(e)) from None
    out: list[fx_rules.Rule] = []
    names: dict[str, int] = {}
    for node, raw in zip(root.value, data):
        keys = {k.value: _line(k) for k, _ in node.value}
        try:
            rule = fx_rules.parse_rule(raw)
        except fx_rules.FxRuleError as e:
            raise InputError(f"{path}:{keys.get(e.key, _line(node))}: {e}") from None
        if rule.name in names:
            raise InputError(f"{path}:{keys['name']}: rule {rule.name!r} is defined twice "
                             f"(first on line {names[rule.name]})")
        names[rule.name] = keys["name"]
        out.append(rule)
    return out


def evaluate(args) -> int:
    try:
        rules = read_rules(args.rules)
        rows = read_quotes(args.quotes)
    except InputError as e:
        print(f"tulpar fx evaluate: {e}", file=sys.stderr)
        return 2
    texts: dict[tuple[str, datetime], str] = {}
    for row in rows:
        texts.setdefault((row.quote.pair, row.quote.at), row.at_text)
        texts.setdefault(("", row.quote.at), row.at_text)
    for alert in fx_rules.run(rules, [r.quote for r in rows]):
        # A derived pair has no row of its own: echo the inverse's row, or any
        # row at that instant (the leg that moved).
        at = (texts.get((alert.pair, alert.at)) or texts.get((inverse_pair(alert.pair), alert.at))
              or texts[("", alert.at)])
        print(alert_json(alert, at))
    return 0


def alert_json(alert: fx_rules.Alert, at: str) -> str:
    # Written by hand so from/to keep their decimal digits; json.dumps would
    # round them through float.
    return ('{"rule": %s, "pair": %s, "at": %s, "from": %s, "to": %s, "change_pct": %s}' % (
        json.dumps(alert.rule, ensure_ascii=False), json.dumps(alert.pair), json.dumps(at),
        _number(alert.from_rate), _number(alert.to_rate), json.dumps(float(alert.change_pct))))


# Always on the ticker, beside the pairs of the config's fx: subscriptions.
WATCHED = tuple(f"{c.currency}/USD" for c in COUNTRIES)
TICKER_LOOKBACK_DAYS = 40  # a day change over a long holiday still finds its old rate


def show_ticker(args) -> int:
    if not args.csv:
        return _ticker_from_store(args)
    try:
        rows = read_quotes(args.csv)
        pairs = [check_pair(p.strip()) for p in args.pairs.split(",")] if args.pairs else \
            sorted({r.quote.pair for r in rows})
        now = parse_at(args.now) if args.now else datetime.now(UTC)
    except (InputError, PairError) as e:
        print(f"tulpar fx ticker: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"tulpar fx ticker: --now {args.now!r}: {e}", file=sys.stderr)
        return 2
    for line in ticker.lines([r.quote for r in rows], pairs, now):
        print(line)
    return 0


def _ticker_from_store(args) -> int:
    """The stored observations (what `tulpar poll` and the workers collected)."""
    from datetime import timedelta

    from services import config as config_mod
    from services.settings import Settings
    from services.store import Store
    from services.store import rates as rate_store

    settings = Settings()
    if args.config:
        settings = settings.model_copy(update={"config": args.config})
    try:
        now = parse_at(args.now) if args.now else datetime.now(UTC)
        pairs = [check_pair(p.strip()) for p in args.pairs.split(",")] if args.pairs else None
    except PairError as e:
        print(f"tulpar fx ticker: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"tulpar fx ticker: --now {args.now!r}: {e}", file=sys.stderr)
        return 2
    if pairs is None:
        try:
            cfg = config_mod.load(settings.config)
        except config_mod.ConfigError as exc:
            if args.config:  # the file the user named is broken: say so
                print(f"tulpar fx ticker: {exc}", file=sys.stderr)
                return 2
            cfg = None  # the default config may need the demo's variables: show the usual pairs
        subscribed = [s.fx["pair"] for s in cfg.subscriptions if s.fx] if cfg else []
        pairs = list(dict.fromkeys([*subscribed, *WATCHED]))
    store = Store(settings.db_url)
    store.create_schema()
    quotes = rate_store.history(store, now - timedelta(days=TICKER_LOOKBACK_DAYS))
    store.dispose()
    for line in ticker.lines(quotes, pairs, now):
        print(line)
    return 0


def register(sub) -> None:
    p = sub.add_parser("fx", help="currency rates: evaluate FX rules, ticker, fetch a rate file")
    fx_sub = p.add_subparsers(dest="fx_command", required=True)

    ev = fx_sub.add_parser("evaluate", help="print the alerts FX rules raise over a CSV of rates")
    ev.add_argument("--rules", required=True, help="YAML list of FX rules, each with a name")
    ev.add_argument("quotes", help="CSV with header at,pair,rate")
    ev.set_defaults(handler=evaluate)

    tk = fx_sub.add_parser("ticker", help="latest rate and day change per pair")
    tk.add_argument("--csv", help="read rates from this at,pair,rate CSV (default: the stored rates)")
    tk.add_argument("--pairs", help="comma-separated pairs, e.g. KZT/USD,USD/RUB (default: all in the CSV; "
                                    "without --csv the fx: subscriptions' pairs and "
                                    f"{', '.join(c.currency for c in COUNTRIES)} per USD)")
    tk.add_argument("--config", help="config YAML whose fx: pairs to show (default: $TULPAR_CONFIG)")
    tk.add_argument("--now", help="ISO time to show the ticker at (default: now)")
    tk.set_defaults(handler=show_ticker)

    fx_fetch.register(fx_sub)


def _row(path: str, line: int, cells: list[str]) -> Row:
    if len(cells) != 3:
        raise InputError(f"{path}:{line}: expected 3 columns at,pair,rate, found {len(cells)}")
    at_text, pair, rate_text = (c.strip() for c in cells)
    try:
        at = parse_at(at_text)
    except ValueError:
        raise InputError(f"{path}:{line}: time {at_text!r} is not ISO 8601 "
                         "(like 2024-05-01 or 2024-05-01T09:30:00+05:00)") from None
    try:
        check_pair(pair)
    except PairError as e:
        raise InputError(f"{path}:{line}: {e}") from None
    try:
        rate = Decimal(rate_text)
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or rate <= 0:
        raise InputError(f"{path}:{line}: rate {rate_text!r} is not a positive number")
    return Row(Quote(pair, rate, at), at_text, line)


def _check_mapping(path: str, node) -> None:
    if not isinstance(node, MappingNode):
        raise InputError(f"{path}:{_line(node)}: a rule must be a mapping (name: ..., pair: ...)")
    seen: dict[str, int] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode):
            raise InputError(f"{path}:{_line(key)}: rule keys must be plain words")
        if key.value in seen:
            # PyYAML would silently keep the last one; a typo'd duplicate must not win quietly.
            raise InputError(f"{path}:{_line(key)}: key {key.value!r} appears twice in this rule "
                             f"(first on line {seen[key.value]})")
        seen[key.value] = _line(key)


def _line(node) -> int:
    return node.start_mark.line + 1


def _number(value: Decimal) -> str:
    return format(report(value), "f")


def _open(path: str):
    try:
        # utf-8-sig: spreadsheets save CSV with a byte-order mark.
        return Path(path).open(encoding="utf-8-sig", newline="")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
