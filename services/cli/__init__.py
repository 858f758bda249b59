"""The `tulpar` command.

Each subcommand lives in its own module with `register(subparsers)`; the
explicit list below is the registry (no scanning).
Exit codes: 0 ok, 1 a source or delivery failed, 2 bad input (config, rule, file).
"""
from __future__ import annotations

import argparse
import sys

from services.cli import api, apply, classify, db, export, fetch, fx, poll, rules, run, status
from services.logs import setup_logging

COMMANDS = [run, db, api, poll, status, fetch, rules, classify, fx, apply, export]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tulpar", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
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
