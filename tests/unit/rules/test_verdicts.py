"""A topic preset checked by its relevance model (`model:` in the preset,
services/rules/verdicts.py): the preset's answer is
services.relevance.combine.decide(keywords, score, thresholds), in the
reference evaluator and in the Matcher alike, and a confirmation names the
words that carried it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.relevance.combine import decide
from services.relevance.data import LABELED_DIR, read_items
from services.relevance.features import normalise
from services.rules import Document, Matcher, evaluate, load_presets, parse, verdicts
from services.rules.errors import PresetError
from services.rules.presets import DEFAULT_DIR, Presets

TOPICS = ("tariffs", "pipeline-disruption", "fx", "sanctions")
KEYWORDS = load_presets(models=False)


def _confirming_presets() -> "Presets":
    """The bundled presets, each topic checked by a copy of its model that
    also confirms (above 0.6) and vetoes (below 0.3), under its own name: the
    shipped thresholds use only some of the two sides (verdicts.py), and
    both must work."""
    import tempfile

    from services.relevance.model import Model
    from services.relevance.store import MODELS_DIR

    root = Path(tempfile.mkdtemp(prefix="tulpar-verdicts-"))
    shutil.copytree(DEFAULT_DIR, root / "presets")
    (root / "models").mkdir()
    for topic in TOPICS:
        model = Model.load(MODELS_DIR / f"{topic}.json")
        model.meta["thresholds"] = {"low": 0.3, "high": 0.6}
        model.save(root / "models" / f"{topic}-both.json")
        path = root / "presets" / "topics" / f"{topic}.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(f"model: {topic} ", f"model: {topic}-both ", 1), encoding="utf-8")
    return load_presets(root / "presets", models_dir=root / "models")


WITH = _confirming_presets()
# Items from an opened set in every language: enough for vetoes and confirms
# of every topic to occur (asserted below, so the test cannot go hollow).
ITEMS = [it for lang in ("en", "ru", "uz", "kk") for it in read_items(LABELED_DIR / "blind" / f"check3-{lang}.jsonl")]
# Short texts on which the model and the keywords disagree (the traps the
# thresholds are chosen not to fall for, and recall the keywords lack).
ITEMS += [{"id": f"short-{i}", "title": t, "summary": s, "lang": ""} for i, (t, s) in enumerate([
    ("Tajik bank opens exchange offices in malls", "They accept cards and sell dollars."),
    ("China Export-Import Bank lends $300m to Uzbekistan", "The loan will fund a new power line."),
    ("Dollar queues return to Tashkent exchange booths", ""),
])]


def _doc(item: dict) -> Document:
    return Document(item["title"], item["summary"], item.get("source", ""), item.get("lang") or None)


@pytest.mark.parametrize("topic", TOPICS)
def test_the_preset_is_the_decision_of_keywords_and_model(topic):
    model = verdicts.load(f"{topic}-both")
    thresholds = model.thresholds
    moved = 0
    for item in ITEMS:
        doc = _doc(item)
        keywords = evaluate(KEYWORDS.resolve("topic", topic), doc) is not None
        expected = decide(keywords, model.score({"title": item["title"], "summary": item["summary"]}),
                          thresholds).match
        assert (evaluate(WITH.resolve("topic", topic), doc) is not None) == expected, item["id"]
        moved += expected != keywords
    assert moved, "neither a veto nor a confirmation happened: the check above saw the keywords only"


def test_matcher_and_terms_agree_with_the_reference_evaluator():
    queries = {f"topic:{t}": f"topic:{t}" for t in TOPICS}
    queries.update({f"{t} in KZ": f"topic:{t} country:KZ" for t in TOPICS})
    queries.update({f"not {t}": f"NOT topic:{t} (oil OR нефть OR neft OR мұнай)" for t in TOPICS})
    matcher = Matcher(WITH)
    for name, query in queries.items():
        matcher.add(name, query)
    parsed = {name: parse(q, WITH) for name, q in queries.items()}
    confirmed = 0
    for item in ITEMS:
        doc = _doc(item)
        got = matcher.match(doc)
        want = {name: ev for name, rule in parsed.items() if (ev := evaluate(rule, _doc(item))) is not None}
        assert set(got) == set(want), item["id"]
        assert dict(got.terms()) == {name: tuple(ev.terms()) for name, ev in want.items()}, item["id"]
        confirmed += any(t.startswith("model:") for ev in want.values() for t in ev.terms())
    assert confirmed, "no confirmation happened: the check above never saw model evidence"


def test_a_confirmation_names_the_words_that_carried_it():
    for topic in TOPICS:
        model = verdicts.load(f"{topic}-both")
        for item in ITEMS:
            doc = _doc(item)
            keywords = evaluate(KEYWORDS.resolve("topic", topic), doc)
            if keywords is not None or not verdicts.holds(doc, f"{topic}-both" + verdicts.CONFIRM):
                continue
            evidence = evaluate(WITH.resolve("topic", topic), doc)
            assert evidence is not None
            top = {w for phrase, _ in model.explain({"title": doc.title, "summary": doc.summary}, 3, sign=1)
                   for w in phrase.split()}
            assert evidence.hits, item["id"]
            for hit in evidence.hits:
                word = hit.term.removeprefix("model:")
                assert hit.term.startswith("model:") and word in top
                text = doc.title if hit.field == "title" else doc.summary
                assert normalise(text[hit.start:hit.end]) == word
            return
    pytest.fail("no article was confirmed by a model")


def test_a_side_that_cannot_act_is_left_out_so_the_model_is_never_scored_for_it():
    shipped = load_presets()
    for topic in TOPICS:
        assert "model" not in repr(KEYWORDS.resolve("topic", topic))
        t = verdicts.load(topic).thresholds
        rule = repr(shipped.resolve("topic", topic))
        assert (f"'{topic}<'" in rule) == (t.low > 0.0), (topic, t)
        assert (f"'{topic}>'" in rule) == (t.high < 1.0), (topic, t)
        both = repr(WITH.resolve("topic", topic))
        assert f"'{topic}-both<'" in both and f"'{topic}-both>'" in both


def _copy_presets(tmp_path: Path) -> Path:
    target = tmp_path / "presets"
    shutil.copytree(DEFAULT_DIR, target)
    return target


@pytest.mark.parametrize("edit, message", [
    (("topics/fx.yaml", "model: fx", "model: nosuchmodel"), "no relevance model"),
    (("topics/fx.yaml", "model: fx", "model: Fx/../x"), "'model' is for topics only"),
    (("countries/KZ.yaml", "name: KZ", "name: KZ\nmodel: fx"), "'model' is for topics only"),
])
def test_a_bad_model_line_fails_loudly_naming_the_file(tmp_path, edit, message):
    root = _copy_presets(tmp_path)
    name, old, new = edit
    path = root / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PresetError) as err:
        load_presets(root)
    assert str(path) in str(err.value) and message in str(err.value)
