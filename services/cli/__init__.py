"""The `tulpar` command.

Each subcommand lives in its own module with `register(subparsers)`; the
explicit list below is the registry (no scanning).
Exit codes: 0 ok, 1 a source or delivery failed, 2 bad input (config, rule, file).

A command's module is imported only when that command runs (or its `--help`
is asked for): `tulpar classify` has no use for the database, the API or the
mail code the other commands pull in, and importing them all took seconds.
`tulpar --help` lists every command from the one-line help kept here;
tests/unit/cli/test_lazy.py checks it against what each module registers.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from services.logs import setup_logging

# name -> (module under services.cli, the help `tulpar --help` shows for it),
# in the order `tulpar --help` lists them. The help must be the one the
# module's register() passes to add_parser (test_lazy.py checks).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run worker, beat and local stand-ins (the offline demo by default)"),
    "db": ("db", "create or migrate the database (tulpar db upgrade)"),
    "api": ("api", "serve the HTTP API (FastAPI on uvicorn)"),
    "poll": ("poll", "poll every source once and queue the alerts"),
    "status": ("status", "source health and delivery counts"),
    "fetch": ("fetch", "fetch feeds and print their articles as JSON lines"),
    "rules": ("rules", "check a rule query or show the presets"),
    "classify": ("classify", "match rules against articles (JSON lines in, JSON lines out)"),
    "fx": ("fx", "currency rates: evaluate FX rules, ticker, fetch a rate file"),
    "apply": ("apply", "make a tenant's subscriptions and channels match a config file"),
    "export": ("export", "print a tenant's subscriptions as a config file (for tulpar apply)"),
}


def command_module(name: str):
    """The module that implements command `name` (imported now)."""
    return importlib.import_module(f"services.cli.{COMMANDS[name][0]}")


class _LazyCommands(argparse._SubParsersAction):
    """Subparsers whose parsers start as placeholders (name and help only)
    and are replaced by the module's real one when the command is chosen,
    before argparse hands it the rest of the command line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()

    def placeholder(self, name: str, help: str) -> None:
        super().add_parser(name, help=help)

    def load(self, name: str) -> argparse.ArgumentParser:
        if name not in self._loaded:
            listed, order = list(self._choices_actions), list(self._name_parser_map)
            placeholder = self._name_parser_map.pop(name)  # or add_parser() refuses the name as taken
            try:
                command_module(name).register(self)
            except BaseException:
                self._name_parser_map[name] = placeholder
                raise
            finally:
                # Put the real parser in the placeholder's place (`choices`
                # is this same dict) and keep the placeholder's line in
                # `tulpar --help`.
                parsers = dict(self._name_parser_map)
                self._name_parser_map.clear()
                self._name_parser_map.update({key: parsers.pop(key) for key in order}, **parsers)
                self._choices_actions[:] = listed
            self._loaded.add(name)
        return self._name_parser_map[name]

    def __call__(self, parser, namespace, values, option_string=None):
        if values and values[0] in self._name_parser_map:
            self.load(values[0])
        super().__call__(parser, namespace, values, option_string)


def build_parser(load_all: bool = False) -> argparse.ArgumentParser:
    """The `tulpar` parser; with load_all, every command's module is imported
    and registered now (as the parser was before it was lazy)."""
    parser = argparse.ArgumentParser(prog="tulpar", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, action=_LazyCommands)
    for name, (_, help_) in COMMANDS.items():
        sub.placeholder(name, help_)
    if load_all:
        for name in COMMANDS:
            sub.load(name)
    return parser


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `tulpar fetch ... | head` closes stdout early; that is not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
