"""`tulpar rules check|show|list`: try a query, read the presets."""
from __future__ import annotations

import sys

from services.rules import LazyPresets, PresetError, RuleError, load_presets, parse
from services.rules.presets import DEFAULT_DIR


def register(sub) -> None:
    p = sub.add_parser("rules", help="check a rule query or show the presets")
    p.add_argument("--presets", metavar="DIR", default=str(DEFAULT_DIR),
                   help="presets directory (default: the bundled presets)")
    actions = p.add_subparsers(dest="action", required=True)

    check = actions.add_parser("check", help="parse QUERY and print its canonical form")
    check.add_argument("query")
    check.set_defaults(handler=_check)

    show = actions.add_parser("show", help="print a preset, e.g. topic:tariffs or country:KZ")
    show.add_argument("ref")
    show.set_defaults(handler=_show)

    listing = actions.add_parser("list", help="list the presets")
    listing.set_defaults(handler=_list)


def _load(args):
    try:
        return load_presets(args.presets)
    except PresetError as err:
        print(f"tulpar rules: bad preset: {err}", file=sys.stderr)
        return None


def _check(args) -> int:
    try:
        rule = parse(args.query, LazyPresets(args.presets))
    except RuleError as err:
        print(f"tulpar rules check: {err}", file=sys.stderr)
        print(err.display(args.query), file=sys.stderr)
        return 2
    except PresetError as err:
        print(f"tulpar rules: bad preset: {err}", file=sys.stderr)
        return 2
    print(rule.render())
    return 0


def _show(args) -> int:
    presets = _load(args)
    if presets is None:
        return 2
    kind, _, name = args.ref.partition(":")
    kind = kind.lower()
    name = name.upper() if kind == "country" else name.lower()
    preset = presets.get(kind, name) if kind in ("topic", "country") else None
    if preset is None:
        known = ", ".join(p.ref for p in presets) or "none"
        print(f"tulpar rules show: unknown preset '{args.ref}' (known: {known})", file=sys.stderr)
        return 2
    print(f"# {preset.path}")
    print(preset.text.rstrip("\n"))
    print()
    print(f"# effective query ({preset.ref}):")
    print(preset.effective_query)
    if preset.model:
        from services.rules import verdicts
        model = verdicts.load(preset.model)
        t = model.thresholds
        sides = ([f"a match it scores below {t.low:g} is vetoed"] if t.low > 0 else []) + \
            ([f"an article it scores above {t.high:g} matches without the keywords"] if t.high < 1 else [])
        print(f"# relevance model '{preset.model}': " + ("; ".join(sides) if sides else
                                                         "its thresholds leave the keywords alone"))
    return 0


def _list(args) -> int:
    presets = _load(args)
    if presets is None:
        return 2
    for preset in presets:
        print(f"{preset.ref:28} {preset.description}")
    return 0
