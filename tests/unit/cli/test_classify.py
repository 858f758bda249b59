"""`tulpar classify --rules RULES.yaml ARTICLES.jsonl`: the contract release checks use."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.cli import main

DATA = Path(__file__).resolve().parents[2] / "data"
RULES = str(DATA / "classify" / "rules.yaml")
ARTICLES = str(DATA / "classify" / "articles.jsonl")
PRESETS = ["--presets", str(DATA / "presets")]


def test_matches_in_article_then_rule_order(capsys):
    assert main(["classify", "--rules", RULES, ARTICLES, *PRESETS]) == 0
    out = capsys.readouterr().out
    expected = (DATA / "classify" / "expected.jsonl").read_text(encoding="utf-8")
    assert out == expected
    # ids keep their JSON type
    assert [type(json.loads(line)["article"]) for line in out.splitlines()][:1] == [int]


def test_reads_articles_from_stdin():
    cmd = [sys.executable, "-m", "services", "classify", "--rules", RULES, "-", *PRESETS]
    done = subprocess.run(cmd, input=Path(ARTICLES).read_text(encoding="utf-8"), capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[3], timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (DATA / "classify" / "expected.jsonl").read_text(encoding="utf-8")


def run(tmp_path, capsys, rules: str, articles: str):
    (tmp_path / "r.yaml").write_text(rules, encoding="utf-8")
    (tmp_path / "a.jsonl").write_text(articles, encoding="utf-8")
    code = main(["classify", "--rules", str(tmp_path / "r.yaml"), str(tmp_path / "a.jsonl"), *PRESETS])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


GOOD_RULES = "- {name: t, query: tariff}\n"
GOOD_LINE = '{"id": 1, "title": "Tariffs", "summary": ""}\n'


@pytest.mark.parametrize(
    "rules, articles, message",
    [
        ("- {name: t, query: 'tariff OR (duty'}\n", GOOD_LINE,
         "r.yaml: rule 't': unbalanced parenthesis at column 11\ntariff OR (duty\n          ^"),
        ("- {name: t, query: ''}\n", GOOD_LINE, "r.yaml: rule 't': empty query at column 1"),
        ("- {name: t, query: 'topic:nope'}\n", GOOD_LINE, "rule 't': unknown topic 'nope' at column 1"),
        ("- {name: t}\n", GOOD_LINE, "r.yaml: rule 't': 'query' must be a string"),
        ("- {query: x}\n", GOOD_LINE, "r.yaml: rule 1: 'name' must be a non-empty string"),
        ("- {name: t, query: a}\n- {name: t, query: b}\n", GOOD_LINE, "r.yaml: rule 't': duplicate name"),
        ("name: t\nquery: a\n", GOOD_LINE, "r.yaml: expected a YAML list of {name, query}"),
        ("- [t, a]\n", GOOD_LINE, "r.yaml: rule 1: expected a mapping with name and query"),
        ("- {name: t, query: [unclosed\n", GOOD_LINE, "r.yaml: not valid YAML"),
        (GOOD_RULES, GOOD_LINE + "\n{not json}\n", "a.jsonl: line 3: not valid JSON"),
        (GOOD_RULES, GOOD_LINE + "[1, 2]\n", "a.jsonl: line 2: expected a JSON object"),
        (GOOD_RULES, '{"title": "x", "summary": ""}\n', "a.jsonl: line 1: missing 'id'"),
        (GOOD_RULES, '{"id": null, "title": "x", "summary": ""}\n', "line 1: 'id' must be a string or an integer"),
        (GOOD_RULES, '{"id": true, "title": "x", "summary": ""}\n', "line 1: 'id' must be a string or an integer"),
        (GOOD_RULES, '{"id": 1, "summary": ""}\n', "a.jsonl: line 1: missing 'title'"),
        (GOOD_RULES, '{"id": 1, "title": "x"}\n', "a.jsonl: line 1: missing 'summary'"),
        (GOOD_RULES, '{"id": 1, "title": 5, "summary": ""}\n', "line 1: 'title' must be a string"),
        (GOOD_RULES, '{"id": 1, "title": "", "summary": "", "lang": 7}\n', "line 1: 'lang' must be a string"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, rules, articles, message):
    code, out, err = run(tmp_path, capsys, rules, articles)
    assert (code, out) == (2, "")
    assert err.startswith("tulpar classify: ") and message in err


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["classify", "--rules", str(tmp_path / "none.yaml"), ARTICLES]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    "rules, articles, out",
    [
        ("[]\n", GOOD_LINE, ""),  # no rules, no matches
        ("", GOOD_LINE, ""),  # an empty file is an empty list
        (GOOD_RULES, "\n\n", ""),  # only blank lines
        ("- {name: 7, query: -gas}\n", '{"id": "x", "title": null, "summary": "", "extra": 1}\n',
         '{"article": "x", "rule": 7, "terms": []}\n'),
        ("- {name: t, query: 'Tariff OR tariffs'}\n", '{"id": 1, "title": "Tariffs", "summary": "tariff"}\n',
         '{"article": 1, "rule": "t", "terms": ["Tariff", "tariffs"]}\n'),
        ("- {name: ё, query: 'елка'}\n", '{"id": 1.5e0, "title": "Ёлка", "summary": ""}\n', None),
    ],
)
def test_edge_cases(tmp_path, capsys, rules, articles, out):
    code, got, err = run(tmp_path, capsys, rules, articles)
    if out is None:  # a float id is refused
        assert code == 2 and "'id' must be a string or an integer" in err
    else:
        assert (code, got, err) == (0, out, "")


BOMB = (DATA / "config" / "alias_bomb.yaml").read_text(encoding="utf-8")
# The same nine-by-nine shape as a list of rules, the last one's query the bomb.
LIST_BOMB = "- {name: a, query: &a [som, som, som, som, som, som, som, som, som]}\n" + "".join(
    f"- {{name: {c}, query: &{c} [{', '.join(['*' + p] * 9)}]}}\n" for p, c in zip("abcdefgh", "bcdefghi"))
# Each level 9 + 5 x the one before (the merge, four more aliases, its own name).
MERGE_BOMB = "- &r0 {name: r0, query: tariff}\n" + "".join(
    f"- &r{n} {{<<: [*r{n - 1}], name: r{n}, a: *r{n - 1}, b: *r{n - 1}, c: *r{n - 1}, d: *r{n - 1}}}\n"
    for n in range(1, 10))


@pytest.mark.parametrize("rules, message", [
    (BOMB, "r.yaml: aliases would expand the document past 10,000 nodes"),
    (LIST_BOMB, "the alias *h here alone stands for 48,427,561 (line 9)"),
    (MERGE_BOMB, "the alias *r8 here alone stands for 2,832,029 (line 10)"),
    ("- {name: t, query: " + "[" * 65 + "]" * 65 + "}\n", "r.yaml: nested more than 64 levels deep (line 1)"),
    ("- &loop {name: t, query: *loop}\n", "r.yaml: the alias *loop is inside the node it refers to (a loop) (line 1)"),
], ids=["billion-laughs", "as-a-rule-list", "merge-keys", "deep", "loop"])
def test_yaml_bombs_exit_2_quickly(tmp_path, capsys, rules, message):
    started = time.process_time()  # CPU seconds: wall time on a shared machine measures the neighbours
    code, out, err = run(tmp_path, capsys, rules, GOOD_LINE)
    assert time.process_time() - started < 1.0
    assert (code, out) == (2, "")
    assert err.startswith("tulpar classify: ") and message in err, err


def test_a_rules_file_over_the_byte_limit_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TULPAR_MAX_CONFIG_BYTES", str(len(GOOD_RULES) - 1))
    code, out, err = run(tmp_path, capsys, GOOD_RULES, GOOD_LINE)
    assert (code, out) == (2, "")
    assert err == f"tulpar classify: {tmp_path / 'r.yaml'}: larger than the limit of {len(GOOD_RULES) - 1} bytes " \
                  "(TULPAR_MAX_CONFIG_BYTES raises it)\n"


def test_anchors_and_merge_keys_still_work(tmp_path, capsys):
    rules = "- &base {name: a, query: tariff}\n- {<<: *base, name: b}\n"
    code, out, err = run(tmp_path, capsys, rules, GOOD_LINE)
    assert (code, err) == (0, "")
    assert [json.loads(line)["rule"] for line in out.splitlines()] == ["a", "b"]


def test_lines_are_what_json_dumps_gives(tmp_path, capsys):
    # The command assembles lines from pieces encoded once (ids, names,
    # terms); they must read exactly as one json.dumps per record would.
    rules = ("- {name: 'q\"uote', query: 'oil OR \"нефть\" OR gas'}\n- {name: 12, query: 'oil'}\n"
             "- {name: тенге, query: 'gas -oil'}\n- {name: same, query: 'oil OR \"нефть\" OR gas'}\n")
    articles = ('{"id": "a\\"1\\u00e9", "title": "Gas and oil", "summary": "нефть"}\n'
                '{"id": 7, "title": "gas", "summary": ""}\n{"id": 8, "title": "none", "summary": ""}\n'
                '{"id": 9, "title": "нефть, oil", "summary": "gas"}\n')
    code, out, err = run(tmp_path, capsys, rules, articles)
    expected = [("a\"1é", "q\"uote", ["gas", "oil", "нефть"]), ("a\"1é", 12, ["oil"]),
                ("a\"1é", "same", ["gas", "oil", "нефть"]), (7, "q\"uote", ["gas"]), (7, "тенге", ["gas"]),
                (7, "same", ["gas"]), (9, "q\"uote", ["нефть", "oil", "gas"]), (9, 12, ["oil"]),
                (9, "same", ["нефть", "oil", "gas"])]
    assert (code, err) == (0, "")
    assert out == "".join(json.dumps({"article": a, "rule": r, "terms": t}, ensure_ascii=False) + "\n"
                          for a, r, t in expected)


def test_output_is_the_same_when_the_matcher_renumbers_its_terms(tmp_path, capsys, monkeypatch):
    # The matcher numbers distinct term tuples and starts over past a limit;
    # the command's encoded pieces must follow (limit 0: before every article).
    from services.rules.terms import TermsTable

    rules = ("- {name: a, query: 'oil OR gas OR pipeline'}\n- {name: b, query: 'oil* OR oil'}\n"
             "- {name: c, query: 'gas'}\n- {name: d, query: 'oil NEAR/3 gas'}\n")
    articles = "".join(json.dumps({"id": i, "title": t, "summary": s}) + "\n" for i, (t, s) in enumerate(
        [("Oil and gas", "pipeline"), ("gas", "oil"), ("pipeline", ""), ("oilfield gas", "oil")] * 3))
    code, normal, _ = run(tmp_path, capsys, rules, articles)
    monkeypatch.setattr(TermsTable, "DYNAMIC_LIMIT", 0)
    assert run(tmp_path, capsys, rules, articles) == (code, normal, "")
    assert code == 0 and normal.count("\n") > 12


def test_jobs_split_the_articles_and_keep_the_output_byte_for_byte(tmp_path):
    # Enough articles for several chunks per process, a rule mix that gives
    # many matches with varied terms (presets, NEAR, prefixes, NOT).
    items = [json.loads(line) for path in sorted((DATA / "labeled" / "blind").glob("tune*-*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(items) > 6 * 64
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(json.dumps({"id": i if n % 2 else str(i), "title": i_["title"],
                                            "summary": i_["summary"], "lang": i_["lang"]}, ensure_ascii=False)
                                + "\n" for n, (i, i_) in enumerate(enumerate(items))), encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text("".join(f"- {{name: r{n}, query: '{q}'}}\n" for n, q in enumerate([
        "topic:fx", "topic:tariffs country:KZ", "country:UZ OR country:TJ", "oil NEAR/5 export*",
        "sanction* -court", "tenge OR тенге OR теңге", "bank* (dollar OR доллар)", "pipeline* OR трубопровод*"])),
        encoding="utf-8")
    # The bundled presets: their relevance models are scored in the workers too.
    cmd = [sys.executable, "-m", "services", "classify", "--rules", str(rules), str(articles)]
    root = Path(__file__).resolve().parents[3]
    one = subprocess.run(cmd + ["--jobs", "1"], capture_output=True, cwd=root, timeout=120)
    three = subprocess.run(cmd + ["--jobs", "3"], capture_output=True, cwd=root, timeout=120)
    assert (one.returncode, one.stderr) == (0, b"")
    assert (three.returncode, three.stderr) == (0, b"")
    assert one.stdout.count(b"\n") > len(items) // 2  # many matches, up to the last chunk
    assert f'"article": {len(items) - 1},'.encode() in one.stdout
    assert three.stdout == one.stdout


@pytest.mark.parametrize("jobs", ["0", "-1", "two", "257"])
def test_a_bad_jobs_count_exits_2(capsys, jobs):
    with pytest.raises(SystemExit) as stop:
        main(["classify", "--rules", RULES, ARTICLES, "--jobs", jobs])
    assert stop.value.code == 2
    assert "--jobs: must be a whole number from 1 to 256" in capsys.readouterr().err
