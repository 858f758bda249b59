"""`tulpar fx evaluate` and `tulpar fx ticker` as a user (and our release checks) run them."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.cli import main

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "fx"
GOOD_RULES = "- name: r\n  pair: USD/KZT\n  change_pct: 1\n"
GOOD_CSV = "at,pair,rate\n2024-03-01,USD/KZT,500\n2024-03-02,USD/KZT,505\n"


def tulpar(*args: str) -> subprocess.CompletedProcess:
    """The real command in a child process: exit code, stdout and stderr as shipped."""
    return subprocess.run([sys.executable, "-m", "services", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def tulpar_in_process(capsys):
    """Same entry point in this process, for the long tables: a child process
    costs seconds here (the CLI imports the whole pipeline), this costs nothing."""

    def run(*args) -> subprocess.CompletedProcess:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def write(tmp_path: Path, rules: str = GOOD_RULES, csv: str = GOOD_CSV) -> tuple[Path, Path]:
    (tmp_path / "fx.yaml").write_text(rules, encoding="utf-8")
    (tmp_path / "q.csv").write_text(csv, encoding="utf-8")
    return tmp_path / "fx.yaml", tmp_path / "q.csv"


def evaluate(tmp_path: Path, rules: str = GOOD_RULES, csv: str = GOOD_CSV, *, run=tulpar):
    rules_path, csv_path = write(tmp_path, rules, csv)
    return run("fx", "evaluate", "--rules", rules_path, csv_path)


def test_evaluate_fixture_matches_golden_output():
    # quotes.csv: rows out of order, a duplicate written two ways, a time with
    # an offset; rules.yaml: an inverse pair over 1d, a level, a cross via USD.
    done = tulpar("fx", "evaluate", "--rules", DATA / "rules.yaml", DATA / "quotes.csv")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (DATA / "evaluate.expected.jsonl").read_text()
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["rule"], a["at"]) for a in alerts] == [
        ("tenge-weakens", "2024-03-05"), ("tenge-vs-rouble", "2024-03-05"),
        ("tenge-weakens", "2024-03-07T10:30:00+05:00"), ("dollar-above-460", "2024-03-07T10:30:00+05:00"),
        ("tenge-vs-rouble", "2024-03-07T10:30:00+05:00")]
    level = alerts[3]
    assert (level["from"], level["to"]) == (452.10, 461.00)
    assert level["change_pct"] == pytest.approx((461 - 452.1) / 452.1 * 100, rel=1e-15)
    assert all(isinstance(a[k], float) for a in alerts for k in ("from", "to", "change_pct"))


def test_evaluate_output_format(tmp_path):
    done = evaluate(tmp_path)
    assert done.returncode == 0
    assert done.stdout == ('{"rule": "r", "pair": "USD/KZT", "at": "2024-03-02", '
                           '"from": 500, "to": 505, "change_pct": 1.0}\n')


@pytest.mark.parametrize("csv", [
    "at,pair,rate\n",
    "at,pair,rate\n2024-03-01,USD/KZT,500\n",
    "\ufeffAT, Pair ,RATE\r\n2024-03-01,USD/KZT,500\r\n\r\n2024-03-02,USD/KZT,504\r\n",
])
def test_evaluate_no_alerts(tmp_path, csv, tulpar_in_process):
    done = evaluate(tmp_path, csv=csv, run=tulpar_in_process)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize("csv, line, message", [
    ("", 1, "missing header"),
    ("2024-03-01,USD/KZT,500\n", 1, "missing header"),
    ("at,pair\n2024-03-01,USD/KZT\n", 1, "missing header"),
    ("at,pair,rate\n2024-03-01,USD/KZT,500\n2024-03-02,USD/KZT\n", 3, "expected 3 columns"),
    ("at,pair,rate\n2024-03-01,USD/KZT,500,x\n", 2, "expected 3 columns"),
    ("at,pair,rate\n\n\n2024-13-01,USD/KZT,500\n", 4, "time '2024-13-01' is not ISO 8601"),
    ("at,pair,rate\n01.03.2024,USD/KZT,500\n", 2, "not ISO 8601"),
    ("at,pair,rate\n2024-03-01,usd/kzt,500\n", 2, "upper-case"),
    ("at,pair,rate\n2024-03-01,USDKZT,500\n", 2, "BASE/QUOTE"),
    ("at,pair,rate\n2024-03-01,USD/KZT,0\n", 2, "not a positive number"),
    ("at,pair,rate\n2024-03-01,USD/KZT,-5\n", 2, "not a positive number"),
    ("at,pair,rate\n2024-03-01,USD/KZT,abc\n", 2, "rate 'abc' is not a positive number"),
    ("at,pair,rate\n2024-03-01,USD/KZT,NaN\n", 2, "not a positive number"),
    ("at,pair,rate\n2024-03-01,USD/KZT,\"518,2\"\n", 2, "not a positive number"),
    ("at,pair,rate\n2024-03-01,USD/KZT,500\n2024-03-01T00:00Z,USD/KZT,501\n", 3,
     "is 501 here but 500 on line 2"),
])
def test_evaluate_bad_csv(tmp_path, csv, line, message, tulpar_in_process):
    done = evaluate(tmp_path, csv=csv, run=tulpar_in_process)
    assert (done.returncode, done.stdout) == (2, "")
    assert f"{tmp_path / 'q.csv'}:{line}: " in done.stderr
    assert message in done.stderr


def test_duplicate_rows_with_the_same_rate_are_one_observation(tmp_path, tulpar_in_process):
    csv = GOOD_CSV + "2024-03-02T00:00:00+00:00,USD/KZT,505.0\n2024-03-02,USD/KZT,505\n"
    done = evaluate(tmp_path, csv=csv, run=tulpar_in_process)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 1


RULE = "  pair: USD/KZT\n  change_pct: 1\n"


@pytest.mark.parametrize("rules, line, message", [
    ("", 1, "expected a YAML list of rules"),
    ("name: r\npair: USD/KZT\n", 1, "expected a YAML list"),
    ("- name: a\n" + RULE + "- just text\n", 4, "a rule must be a mapping"),
    ("- name: a\n" + RULE + "- pair: USD/KZT\n  above: 520\n", 4, "rule has no name"),
    ("- name: a\n" + RULE + "  treshold: 3\n", 4, "unknown key 'treshold'"),
    ("- name: a\n  pair: USD/KZT\n  above: 520\n  below: 500\n", 4, "both above and below"),
    ("- name: a\n  pair: USD/KZT\n  change_pct: 1\n  window: 1 day\n", 4, "window '1 day'"),
    ("- name: a\n  pair: USD/KZT\n  change_pct: 1\n  direction: both\n", 4, "direction 'both'"),
    ("- name: a\n  pair: KZT\n  change_pct: 1\n", 2, "BASE/QUOTE"),
    ("- name: a\n  pair: USD/KZT\n", 1, "needs change_pct"),
    ("- name: a\n" + RULE + "- name: b\n" + RULE + "- name: a\n" + RULE, 7,
     "rule 'a' is defined twice (first on line 1)"),
    ("- name: a\n" + RULE + "  pair: USD/RUB\n", 4, "key 'pair' appears twice"),
    ("- name: a\n  pair: [USD/KZT\n", 3, "not valid YAML"),
    ("- name: a\n  pair: USD/KZT\n  change_pct: 1\x01\n", 3, "character #x0001 is not allowed"),
])
def test_evaluate_bad_rules(tmp_path, rules, line, message, tulpar_in_process):
    done = evaluate(tmp_path, rules=rules, run=tulpar_in_process)
    assert (done.returncode, done.stdout) == (2, "")
    assert f"{tmp_path / 'fx.yaml'}:{line}: " in done.stderr
    assert message in done.stderr


@pytest.mark.parametrize("args", [("--rules", "missing.yaml", DATA / "quotes.csv"),
                                  ("--rules", DATA / "rules.yaml", "missing.csv")])
def test_evaluate_missing_file(args, tulpar_in_process):
    done = tulpar_in_process("fx", "evaluate", *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert "cannot read" in done.stderr


def test_ticker_from_csv():
    done = tulpar("fx", "ticker", "--csv", DATA / "quotes.csv", "--pairs", "KZT/USD,USD/RUB,EUR/USD",
                  "--now", "2024-03-07T12:00:00+05:00")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == ["KZT/USD = 0.0021692 -1.93%", "USD/RUB = 90.6 +0.55%", "EUR/USD = n/a"]


def test_ticker_defaults_to_every_pair_in_the_csv(tulpar_in_process):
    done = tulpar_in_process("fx", "ticker", "--csv", DATA / "quotes.csv", "--now", "2024-03-11")
    assert done.stdout.splitlines() == ["USD/KZT = 466.2 +1.13%", "USD/RUB = 92 +1.55%"]


@pytest.mark.parametrize("args, message", [
    (("--pairs", "kzt/usd"), "upper-case"),
    (("--now", "yesterday"), "--now 'yesterday'"),
])
def test_ticker_bad_arguments(args, message, tulpar_in_process):
    done = tulpar_in_process("fx", "ticker", "--csv", DATA / "quotes.csv", *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert message in done.stderr


@pytest.mark.parametrize("which, content, line", [
    ("csv", "at,pair,rate\n2024-03-01,USD/KZT,500\n2024-03-02,USD/KZT,-1\n", 3),
    ("rules", "- name: a\n  pair: USD/KZT\n  change_pct: 1\n  window: fortnight\n", 4),
    ("rules", (ROOT / "tests" / "data" / "config" / "alias_bomb.yaml").read_text(encoding="utf-8"), 11),
])
def test_bad_input_exit_code_and_streams_in_a_real_process(tmp_path, which, content, line):
    done = evaluate(tmp_path, **{which: content})
    name = "q.csv" if which == "csv" else "fx.yaml"
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"tulpar fx evaluate: {tmp_path / name}:{line}: ")


BOMB = ROOT / "tests" / "data" / "config" / "alias_bomb.yaml"
# A rule whose window is the nine-by-nine bomb, anchored in a note beside it.
RULE_BOMB = "- name: a\n  pair: USD/KZT\n  change_pct: 1\n  note: &a [som, som, som, som, som, som, som, som, som]\n" \
    + "".join(f"  note{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) \
    + "  window: *i\n"


@pytest.mark.parametrize("rules, line, message", [
    (BOMB.read_text(encoding="utf-8"), 11, "aliases would expand the document past 10,000 nodes"),
    (RULE_BOMB, 13, "the alias *i here alone stands for 435,848,050"),
    ("- name: a\n  pair: USD/KZT\n  change_pct: 1\n  window: " + "[" * 65 + "]" * 65 + "\n", 4,
     "nested more than 64 levels deep"),
    ("- &r {name: a, pair: USD/KZT, change_pct: 1, again: *r}\n", 1, "the alias *r is inside the node it refers to"),
], ids=["billion-laughs", "in-a-rule", "deep", "loop"])
def test_evaluate_refuses_yaml_bombs_quickly(tmp_path, rules, line, message, tulpar_in_process):
    started = time.process_time()  # CPU seconds: wall time on a shared machine measures the neighbours
    done = evaluate(tmp_path, rules=rules, run=tulpar_in_process)
    assert time.process_time() - started < 1.0
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"tulpar fx evaluate: {tmp_path / 'fx.yaml'}:{line}: ") and message in done.stderr


def test_evaluate_refuses_a_rules_file_over_the_byte_limit(tmp_path, tulpar_in_process, monkeypatch):
    monkeypatch.setenv("TULPAR_MAX_CONFIG_BYTES", "10")
    done = evaluate(tmp_path, run=tulpar_in_process)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"tulpar fx evaluate: {tmp_path / 'fx.yaml'}: larger than the limit of 10 bytes " \
                          "(TULPAR_MAX_CONFIG_BYTES raises it)\n"


def test_anchors_and_merge_keys_evaluate_as_if_written_out(tmp_path, tulpar_in_process):
    shared = "- &r {name: r, pair: USD/KZT, change_pct: 1}\n- {<<: *r, name: s}\n"
    written = "- {name: r, pair: USD/KZT, change_pct: 1}\n- {name: s, pair: USD/KZT, change_pct: 1}\n"
    outputs = [evaluate(tmp_path, rules=rules, run=tulpar_in_process) for rules in (shared, written)]
    assert outputs[0].returncode == 0 and outputs[0].stdout == outputs[1].stdout
    assert [json.loads(line)["rule"] for line in outputs[0].stdout.splitlines()] == ["r", "s"]
