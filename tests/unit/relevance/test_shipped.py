"""The shipped model files and the evaluation script's folds."""
import sys
from collections import Counter
from pathlib import Path

import pytest

from services.relevance import load_model
from services.relevance.data import TOPICS
from services.relevance.store import MODELS_DIR, model_path

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("topic", TOPICS)
def test_shipped_model_loads_and_scores(topic):
    assert model_path(topic).exists(), "shipped with the package: benchmarks/relevance_eval.py --write"
    model = load_model(topic)
    assert model.topic == topic
    assert 0.0 <= model.thresholds.low <= model.thresholds.high <= 1.0
    assert model_path(topic).stat().st_size < 1_000_000
    for art in ({"title": "Tenge weakens", "summary": ""}, {"title": "", "summary": ""}):
        assert 0.0 <= model.score(art) <= 1.0


def test_model_path():
    assert model_path("topic:fx") == MODELS_DIR / "fx.json"
    with pytest.raises(ValueError):
        model_path("country:KZ")
    with pytest.raises(ValueError):
        model_path("topic:../x")
    assert load_model("topic:no-such-topic") is None


def test_folds_are_stratified_and_deterministic():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import relevance_eval as R
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    items = [{"id": f"i{n}", "lang": lang, "labels": labels}
             for n, (lang, labels) in enumerate([("en", ["topic:fx"])] * 10 + [("uz", [])] * 10
                                                + [("kk", ["topic:fx", "country:KZ"])] * 5)]
    a, b = R.folds(items), R.folds(list(reversed(items)))
    assert a == b
    for lang in ("en", "uz", "kk"):
        sizes = Counter(a[it["id"]] for it in items if it["lang"] == lang)
        assert max(sizes.values()) - min(sizes.values()) <= 1 and len(sizes) == 5


def _bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import relevance_eval as R
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return R


def test_threshold_choice_prefers_the_rule_alone_on_ties():
    R = _bench()
    items = [{"id": "a", "lang": "en", "labels": ["topic:fx"]}, {"id": "b", "lang": "en", "labels": []}]
    rules = {t: {"a": t == "topic:fx", "b": False} for t in R.TOPICS}
    scores = {t: {"a": 0.5, "b": 0.5} for t in R.TOPICS}
    t = R.choose_thresholds(items, rules, scores)
    assert (t.low, t.high) == (0.0, 1.0)
    # a rule false positive with a very low score is worth a veto
    rules["topic:fx"]["b"] = True
    scores["topic:fx"]["b"] = 0.01
    t = R.choose_thresholds(items, rules, scores)
    assert t.low == 0.02 and t.high == 1.0


def test_keep_thresholds_goes_with_write_alone(capsys):
    R = _bench()
    for argv in (["--keep-thresholds"], ["--write", "--keep-thresholds", "--calibrate-on", "check3"]):
        with pytest.raises(SystemExit) as exit_:
            R.main(argv)
        assert exit_.value.code == 2
        assert "--keep-thresholds goes with --write alone" in capsys.readouterr().err


def test_write_models_stores_the_given_thresholds(tmp_path):
    # What `--write --keep-thresholds` does after reading the old files'
    # thresholds: each topic trained on the items, its thresholds written in.
    R = _bench()
    from services.relevance.combine import Thresholds
    items = [{"id": f"i{n}", "title": title, "summary": "", "lang": "en", "labels": labels}
             for n, (title, labels) in enumerate(
                 [("Tenge weakens against the dollar", ["topic:fx"]), ("Som slides to a record low", ["topic:fx"]),
                  ("Duty on steel imports raised", ["topic:tariffs"]), ("Export ban on wheat", ["topic:tariffs"]),
                  ("CPC halts loadings after storm", ["topic:pipeline-disruption"]),
                  ("Pipeline leak stops pumping", ["topic:pipeline-disruption"]),
                  ("US lists three Kazakh firms", ["topic:sanctions"]), ("EU freezes assets of traders", ["topic:sanctions"]),
                  ("Wheat harvest ends early", []), ("Football club wins the cup", [])] * 2)]
    wanted = {t: Thresholds(0.05 * (n + 1), 1.0) for n, t in enumerate(R.TOPICS)}
    R.write_models(items, R.TrainConfig(iterations=20), wanted, tmp_path)
    for topic in R.TOPICS:
        model = load_model(topic, tmp_path)
        assert model is not None and model.topic == topic
        assert model.thresholds == wanted[topic]


def test_kept_thresholds_are_read_from_a_file_of_an_older_format(tmp_path):
    # A file whose slots were made with another hash cannot be loaded, and
    # its load error names `--write --keep-thresholds`: that command must
    # still find the thresholds it is to keep.
    import json
    R = _bench()
    from services.relevance.combine import RULE_ALONE, Thresholds
    (tmp_path / "fx.json").write_text(json.dumps({"format": "tulpar-relevance-logreg/1", "topic": "topic:fx",
                                                  "meta": {"thresholds": {"low": 0.05, "high": 1.0}}}))
    (tmp_path / "tariffs.json").write_text(json.dumps({"format": "tulpar-relevance-logreg/1", "meta": {}}))
    with pytest.raises(ValueError, match="retrain"):
        load_model("topic:fx", tmp_path)
    assert R.stored_thresholds("topic:fx", tmp_path) == Thresholds(0.05, 1.0)
    assert R.stored_thresholds("topic:tariffs", tmp_path) == RULE_ALONE
    assert R.stored_thresholds("topic:sanctions", tmp_path) is None
