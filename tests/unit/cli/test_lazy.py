"""The CLI imports a command's module only when that command runs, and says
exactly what it said when it imported them all (services/cli/__init__.py)."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from services import cli

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"


def eager_parser() -> argparse.ArgumentParser:
    """The parser as it was built before it was lazy: every module registered."""
    parser = argparse.ArgumentParser(prog="tulpar", description=cli.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in cli.COMMANDS:
        cli.command_module(name).register(sub)
    return parser


def outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    """What parsing argv does: (exit code or the parsed names, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = parser.parse_args(argv)
            result = sorted((k, repr(v)) for k, v in vars(args).items() if k != "handler")
            result.append(("handler", getattr(args.handler, "__qualname__", None)))
        except SystemExit as exc:
            result = exc.code
    return result, out.getvalue(), err.getvalue()


def subcommand_lines() -> list[list[str]]:
    """Every command and subcommand path, e.g. ["fx", "fetch"]."""
    paths = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    paths.append(path + [name])
                    walk(child, path + [name])

    walk(eager_parser(), [])
    return paths


def test_the_help_table_lists_every_command_in_the_old_order_with_the_modules_help():
    eager = eager_parser()._subparsers._group_actions[0]
    assert list(eager.choices) == list(cli.COMMANDS)
    assert [(a.dest, a.help) for a in eager._choices_actions] == [(n, h) for n, (_, h) in cli.COMMANDS.items()]


ARGVS = [
    [],
    ["--help"],
    ["-h"],
    ["nope"],
    ["classify", "--rules", "r.yaml", "a.jsonl"],
    ["classify", "--rules", "r.yaml", "a.jsonl", "--presets", "p"],
    ["classify", "a.jsonl"],
    ["classify", "--rules", "r.yaml", "a.jsonl", "--bogus"],
    ["rules", "check", "oil AND gas"],
    ["rules"],
    ["fx", "fetch", "--help"],
    ["fx", "fetch"],
    ["db", "upgrade"],
    ["api", "--port", "x"],
]


@pytest.mark.parametrize("argv", ARGVS + [[*path, "--help"] for path in subcommand_lines()], ids=" ".join)
def test_lazy_parser_behaves_like_the_eager_one(argv):
    assert outcome(cli.build_parser(), argv) == outcome(eager_parser(), argv)


def test_load_all_gives_the_eager_parser():
    lazy, eager = cli.build_parser(load_all=True), eager_parser()
    assert lazy.format_help() == eager.format_help()
    for path in subcommand_lines():
        assert outcome(lazy, [*path, "--help"]) == outcome(eager, [*path, "--help"])
    assert set(lazy._subparsers._group_actions[0].choices) == set(cli.COMMANDS)


def test_a_parser_can_be_used_twice():
    parser = cli.build_parser()
    for _ in range(2):
        args = parser.parse_args(["rules", "check", "oil"])
        assert (args.command, args.action, args.query) == ("rules", "check", "oil")
    assert outcome(parser, ["--help"]) == outcome(eager_parser(), ["--help"])


# What a command must not import (it has no use for it): the database, the
# HTTP API, accounts and the other commands' modules.
NOT_FOR_CLASSIFY = ["sqlalchemy", "fastapi", "uvicorn", "celery", "services.accounts", "services.store",
                    "services.delivery", "services.cli.apply", "services.cli.run", "services.cli.fx"]
CASES = [
    (["classify", "--rules", "{rules}", "{articles}", "--presets", str(DATA / "presets")], 0, NOT_FOR_CLASSIFY),
    (["classify", "--help"], 0, NOT_FOR_CLASSIFY),
    (["rules", "check", "oil AND gas"], 0, NOT_FOR_CLASSIFY + ["services.cli.classify"]),
    (["--help"], 0, NOT_FOR_CLASSIFY + ["services.cli.classify", "services.cli.rules", "services.rules", "numpy"]),
]


@pytest.mark.parametrize("argv, code, absent", CASES, ids=lambda v: " ".join(v)[:40] if isinstance(v, list) else None)
def test_a_command_imports_only_what_it_needs(tmp_path, argv, code, absent):
    rules = tmp_path / "r.yaml"
    rules.write_text('- {name: a, query: "oil AND gas"}\n', encoding="utf-8")
    articles = tmp_path / "a.jsonl"
    articles.write_text('{"id": 1, "title": "Oil and gas", "summary": ""}\n', encoding="utf-8")
    argv = [a.format(rules=rules, articles=articles) for a in argv]
    script = ("import contextlib, io, json, sys\n"
              "from services.cli import main\n"
              "out = io.StringIO()\n"
              "with contextlib.redirect_stdout(out):\n"
              "    try:\n"
              f"        code = main({argv!r})\n"
              "    except SystemExit as exc:\n"
              "        code = exc.code\n"
              "print(json.dumps([code, sorted(sys.modules)]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    got, modules = json.loads(done.stdout.splitlines()[-1])
    assert got == code
    loaded = [m for m in absent if any(name == m or name.startswith(m + ".") for name in modules)]
    assert loaded == []
