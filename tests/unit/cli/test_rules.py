"""`tulpar rules check|show|list`."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import main

SAMPLE = str(Path(__file__).resolve().parents[2] / "data" / "presets")


@pytest.mark.parametrize(
    "query, out",
    [
        ("tariff OR duty -electricity", "(tariff OR (duty AND (NOT electricity)))\n"),
        ('title:(cpc OR "caspian pipeline")', '(title:cpc OR title:"caspian pipeline")\n'),
        ("topic:tariffs AND country:KZ", "(topic:tariffs AND country:KZ)\n"),
    ],
)
def test_check_prints_the_canonical_form(capsys, query, out):
    assert main(["rules", "--presets", SAMPLE, "check", query]) == 0
    assert capsys.readouterr().out == out


@pytest.mark.parametrize(
    "query, err",
    [
        ("tariff OR (duty", "unbalanced parenthesis at column 11\ntariff OR (duty\n          ^\n"),
        ("a NEAR b", "NEAR needs a distance, like NEAR/5 at column 3\na NEAR b\n  ^\n"),
        ("topic:nope", "unknown topic 'nope' at column 1\ntopic:nope\n^\n"),
    ],
)
def test_check_refuses_with_a_caret_and_exit_2(capsys, query, err):
    assert main(["rules", "--presets", SAMPLE, "check", query]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "tulpar rules check: " + err


def test_check_does_not_need_presets_for_a_plain_query(capsys, tmp_path):
    (tmp_path / "topics").mkdir()
    (tmp_path / "topics" / "broken.yaml").write_text("name: [", encoding="utf-8")
    assert main(["rules", "--presets", str(tmp_path), "check", "tariff"]) == 0
    assert main(["rules", "--presets", str(tmp_path), "check", "topic:x"]) == 2
    assert "bad preset" in capsys.readouterr().err


def test_show_prints_file_and_effective_query(capsys):
    assert main(["rules", "--presets", SAMPLE, "show", "topic:tariffs"]) == 0
    out = capsys.readouterr().out
    assert "name: tariffs\n" in out and "exclude: 'electricity OR utility'" in out
    assert out.endswith(
        "# effective query (topic:tariffs):\n"
        "(tariff* OR \"export duty\" OR пошлин*) AND NOT (electricity OR utility)\n"
    )
    assert main(["rules", "--presets", SAMPLE, "show", "country:kz"]) == 0


@pytest.mark.parametrize("ref", ["topic:nope", "country:UZ", "tariffs", "lang:ru"])
def test_show_unknown_preset_exits_2(capsys, ref):
    assert main(["rules", "--presets", SAMPLE, "show", ref]) == 2
    assert f"unknown preset '{ref}'" in capsys.readouterr().err


def test_list(capsys):
    assert main(["rules", "--presets", SAMPLE, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["country:KZ", "topic:kz-oil", "topic:tariffs"]
