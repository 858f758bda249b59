import json

import pytest

from services.relevance.model import Model, TrainConfig, train

FX = [
    ("Tenge weakens against the dollar", "The exchange rate slid to a record low."),
    ("Som strengthens as central bank sells dollars", "The exchange rate recovered."),
    ("Exchange rate of the manat held steady", "The central bank kept the peg."),
    ("Rouble exchange rate falls", "Currency traders expect more weakness."),
    ("Курс тенге снизился", "Обменный курс доллара вырос на бирже."),
    ("Курс сома укрепился", "Нацбанк провел валютные интервенции, обменный курс стабилен."),
]
OTHER = [
    ("Wheat harvest up in Kostanay", "Farmers brought in a record crop this autumn."),
    ("New school opens in Osh", "The building has room for 900 pupils."),
    ("Railway line to Turkmenistan repaired", "Trains run again after the works."),
    ("Урожай пшеницы вырос", "Фермеры собрали рекордный урожай зерна."),
    ("Football club wins the cup", "Fans celebrated in the capital."),
    ("Metro station closes for repairs", "Passengers should use buses."),
    ("Hospital gets new scanners", "Doctors welcomed the equipment."),
    ("Открыта новая школа", "В здании учатся 900 детей."),
]


def items():
    out = [{"id": f"fx{i}", "title": t, "summary": s, "lang": "en", "labels": ["topic:fx"]}
           for i, (t, s) in enumerate(FX)]
    out += [{"id": f"o{i}", "title": t, "summary": s, "lang": "en", "labels": []}
            for i, (t, s) in enumerate(OTHER)]
    return out


CONFIG = TrainConfig(l2=1e-4, iterations=300, min_df=2, max_features=2000)


@pytest.fixture(scope="module")
def model():
    return train(items(), "topic:fx", CONFIG)


def test_separates_the_training_items(model):
    pos = [model.score(it) for it in items() if it["labels"]]
    neg = [model.score(it) for it in items() if not it["labels"]]
    assert min(pos) > 0.5 > max(neg)
    assert min(pos) > max(neg) + 0.3


def test_scores_new_text(model):
    assert model.score({"title": "Exchange rate of the lira slid", "summary": ""}) > \
        model.score({"title": "Wheat harvest in Osh", "summary": "Farmers and pupils."})


def test_explanation_names_the_expected_features(model):
    art = {"title": "Tenge exchange rate slid", "summary": "The exchange rate fell."}
    top = model.explain(art, k=5, sign=1)
    assert len(top) == 5 and all(c > 0 for _, c in top)
    names = " ".join(n for n, _ in top)
    assert "exchange" in names or "rate" in names
    # sorted by contribution, and sign=-1 gives only negative contributions
    assert [c for _, c in top] == sorted((c for _, c in top), reverse=True)
    assert all(c < 0 for _, c in model.explain(art, k=5, sign=-1))
    # the contributions and bias add up to the margin
    total = sum(c for _, c in model.contributions(art)) + model.bias
    assert total == pytest.approx(model.margin(art), abs=1e-9)


def test_training_is_deterministic():
    a, b = train(items(), "topic:fx", CONFIG), train(list(items()), "topic:fx", CONFIG)
    assert a.to_json() == b.to_json()


def test_save_load_round_trip_gives_identical_scores(model, tmp_path):
    path = tmp_path / "fx.json"
    model.save(path)
    loaded = Model.load(path)
    assert loaded.weights == model.weights and loaded.bias == model.bias
    probes = items() + [{"title": "Курс сома", "summary": "Oʻzbekiston so‘mi"}, {"title": "", "summary": ""}]
    for it in probes:
        assert loaded.score(it) == model.score(it)
        assert loaded.explain(it) == model.explain(it)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "tulpar-relevance-logreg/2" and data["topic"] == "topic:fx"
    assert (data["hash"], data["hash_bits"]) == ("crc32", 20)
    # the reverse map of seen features travels with the weights
    assert any("w:exchange" in names for _, _, names in data["features"])


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"format": "other"}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a relevance model file"):
        Model.load(path)


@pytest.mark.parametrize("change, message", [
    # A file of the first format: its slots are BLAKE2b's, not today's.
    ({"format": "tulpar-relevance-logreg/1"}, r"other feature hashing.*retrain"),
    ({"hash": "blake2b"}, "other feature settings"),
    ({"hash_bits": 18}, "other feature settings"),
    ({"ngram_range": [2, 4]}, "other feature settings"),
])
def test_load_refuses_a_file_made_with_other_features(model, tmp_path, change, message):
    # Loaded, such a file would give wrong scores without a word of warning.
    data = model.to_json() | change
    path = tmp_path / "fx.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Model.load(path)


def test_max_features_keeps_the_largest_weights():
    small = train(items(), "topic:fx", TrainConfig(l2=1e-4, iterations=300, min_df=2, max_features=10))
    assert len(small.weights) == 10
    assert all(v > 0.0 for v in map(abs, small.weights.values()))


def test_needs_items():
    with pytest.raises(ValueError):
        train([], "topic:fx")


def test_word_explanation_adds_up_and_names_words(model):
    art = {"title": "Tenge exchange rate slid", "summary": "The exchange rate fell."}
    words = model.word_contributions(art)
    assert sum(c for _, c in words) + model.bias == pytest.approx(model.margin(art), abs=1e-9)
    top = [name for name, _ in model.explain(art, k=3, sign=1)]
    assert set(top) & {"exchange", "rate", '"exchange rate"'}
    raw = model.explain(art, k=3, by="feature")
    assert len(raw) == 3
    with pytest.raises(ValueError):
        model.explain(art, by="nope")
