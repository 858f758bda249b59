"""Preset loader: schema, effective rules, and errors that name the file."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.rules import Document, PresetError, evaluate, load_presets, parse
from services.rules.presets import DEFAULT_DIR

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "presets"


def test_sample_presets_load():
    presets = load_presets(SAMPLE)
    assert [p.ref for p in presets] == ["country:KZ", "topic:kz-oil", "topic:tariffs"]
    tariffs = presets.get("topic", "tariffs")
    assert tariffs.description.startswith("Trade duties")
    assert tariffs.effective_query == "(tariff* OR \"export duty\" OR пошлин*) AND NOT (electricity OR utility)"
    assert tariffs.text == (SAMPLE / "topics" / "tariffs.yaml").read_text(encoding="utf-8")
    assert presets.resolve("topic", "tariffs") == parse(tariffs.effective_query)
    assert presets.resolve("topic", "missing") is None


def test_bundled_presets_cover_the_issue():
    presets = load_presets(DEFAULT_DIR)
    refs = {p.ref for p in presets}
    wanted = {"topic:tariffs", "topic:pipeline-disruption", "topic:fx", "topic:sanctions"}
    wanted |= {f"country:{c}" for c in ("KZ", "KG", "UZ", "TJ", "TM")}
    assert wanted <= refs


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    "files, message",
    [
        ({"topics/a.yaml": "name: [unclosed"}, "not valid YAML"),
        ({"topics/a.yaml": "name: a\nquery: *q"}, "topics/a.yaml:2: the alias *q has no anchor"),
        ({"topics/a.yaml": "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh"))},
         "aliases would expand the document past"),
        ({"topics/a.yaml": "- a list"}, "topics/a.yaml: expected a mapping"),
        ({"topics/a.yaml": "name: a\nquery: x\nexlude: y"}, "topics/a.yaml: unknown key(s) exlude"),
        ({"topics/a.yaml": "name: a"}, "topics/a.yaml: 'query' must be a non-empty string"),
        ({"topics/a.yaml": "name: a\nquery: x\nexclude: [y]"}, "topics/a.yaml: 'exclude' must be a string"),
        ({"topics/a.yaml": "name: A b\nquery: x"}, "topic name must be lower-case letters, digits and '-'"),
        ({"countries/ru.yaml": "name: RU\nquery: x"}, "countries/ru.yaml: country name must be one of KZ"),
        (
            {"topics/a.yaml": "name: a\nquery: 'x OR (y'"},
            "topics/a.yaml: query: unbalanced parenthesis at column 6\nx OR (y\n     ^",
        ),
        ({"topics/a.yaml": "name: a\nquery: x\nexclude: 'AND'"}, "topics/a.yaml: exclude: AND without a term before it"),
        ({"topics/a.yaml": "name: a\nquery: topic:b", "topics/b.yaml": "name: b\nquery: topic:a"}, "refers to itself"),
        ({"topics/a.yaml": "name: a\nquery: topic:nope"}, "topics/a.yaml: query: unknown topic 'nope'"),
        ({"topics/a.yaml": "name: x\nquery: a", "topics/b.yaml": "name: x\nquery: b"}, "topic:x is also defined in"),
        ({"topics/a.yaml": "name: a\nquery: x OR {{five}}"},
         "topics/a.yaml: query: unknown shared clause {{five}} (known: none: no shared.yaml beside the folders)"),
        ({"shared.yaml": "five: a", "topics/a.yaml": "name: a\nquery: x\nexclude: '{{six}}'"},
         "topics/a.yaml: exclude: unknown shared clause {{six}} (known: five)"),
        ({"shared.yaml": "- a list", "topics/a.yaml": "name: a\nquery: x"},
         "shared.yaml: expected a mapping of clause names to query text"),
        ({"shared.yaml": "Five States: a"}, "shared.yaml: clause name 'Five States' must be lower-case"),
        ({"shared.yaml": "five: [a]"}, "shared.yaml: 'five' must be a non-empty string of query text"),
        ({"shared.yaml": "five: 'a OR'", "topics/a.yaml": "name: a\nquery: '{{five}}'"},
         "topics/a.yaml: query: OR without a term after it"),
    ],
)
def test_bad_presets_fail_at_load_naming_the_file(tmp_path, files, message):
    for relative, text in files.items():
        write(tmp_path, relative, text)
    with pytest.raises(PresetError) as caught:
        load_presets(tmp_path)
    assert message in str(caught.value)


def test_a_shared_clause_reads_as_its_text_in_parentheses(tmp_path):
    write(tmp_path, "shared.yaml", "five: >-\n  (five NEAR/3 states)\n  OR \"central asia\"\nhist: book OR review\n")
    write(tmp_path, "countries/kz.yaml", "name: KZ\nquery: kazakh* OR {{five}}\nexclude: '{{ hist }} AND old'\n")
    presets = load_presets(tmp_path)
    kz = presets.get("country", "KZ")
    assert kz.query == 'kazakh* OR ((five NEAR/3 states) OR "central asia")'
    assert kz.exclude == "(book OR review) AND old"
    assert "{{five}}" in kz.text  # the file as written, for `tulpar rules show`
    assert presets.resolve("country", "KZ") == parse(kz.effective_query)
    assert evaluate(presets.resolve("country", "KZ"), Document("The five Central Asian states meet", "", "", "en"))


def test_the_bundled_countries_share_the_five_states_clause():
    texts = {p.name: p.text for p in load_presets(DEFAULT_DIR) if p.kind == "country"}
    assert sorted(texts) == ["KG", "KZ", "TJ", "TM", "UZ"]
    assert all("{{central-asia-five}}" in text for text in texts.values())


def test_country_names_are_upper_cased_and_missing_folders_are_empty(tmp_path):
    write(tmp_path, "countries/kg.yaml", "name: kg\nquery: bishkek\nexclude: ''")
    presets = load_presets(tmp_path)
    assert [p.ref for p in presets] == ["country:KG"]
    assert presets.get("country", "KG").exclude is None
    assert len(load_presets(tmp_path / "nothing-here")) == 0


@pytest.mark.parametrize("module, never", [
    ("parser", "services.rules.presets"),  # presets are parsed with the parser, not the other way
    ("predicate", "services.rules.compiled"),  # the two compilers share services.rules.closures
    ("compiled", "services.rules.predicate"),
])
def test_imports_go_one_way(module, never):
    source = (Path(__file__).resolve().parents[3] / "services" / "rules" / f"{module}.py").read_text()
    imported = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import) for a in n.names}
    assert never not in imported
