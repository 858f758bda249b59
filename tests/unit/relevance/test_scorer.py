"""Scoring by several models at once (services/relevance/scorer.py) gives
the scores of the definition: each model's bias plus its weights of the
article's distinct slots, times 1/sqrt(number of slots), through the
sigmoid. The reference below computes that from the feature names and
binascii's CRC-32 alone, as Model.score did before the Scorer, so a fault in the
cached, packed slots cannot hide behind itself."""
from __future__ import annotations

import binascii
import math
from functools import lru_cache

import pytest

from services.relevance import features as F
from services.relevance.data import TOPICS, allowed_files, load_labeled
from services.relevance.model import Model
from services.relevance.scorer import Scorer, article_slots, sigmoid
from services.relevance.store import MODELS_DIR, model_path

TOLERANCE = 1e-12   # the sums may add up in another order, nothing more
SHIPPED = [Model.load(model_path(topic, MODELS_DIR)) for topic in TOPICS]
ALL = Scorer(SHIPPED)


def reference_slots(title: str | None, summary: str | None) -> set[int]:
    """The slots by the documented definition (features.py)."""
    names = set()
    for text in (title or "", summary or ""):
        ws = F.words(text)
        for w in ws:
            names.add("w:" + w)
            names.update("c:" + g for g in F.char_ngrams(w))
        names.update(f"b:{a} {b}" for a, b in zip(ws, ws[1:]))
    return set(map(_slot, names))


@lru_cache(maxsize=1 << 16)
def _slot(name: str) -> int:
    return binascii.crc32(name.encode("utf-8")) % F.DIM


def reference_score(model: Model, title: str | None, summary: str | None, slots: set[int] | None = None) -> float:
    slots = reference_slots(title, summary) if slots is None else slots
    if not slots:
        return sigmoid(model.bias)
    return sigmoid(model.bias + sum(model.weights.get(s, 0.0) for s in slots) / math.sqrt(len(slots)))


LONG_WORDS = ("bojxona", "to'lovlari", "тенге", "мұнай", "tariff", "exchange", "rate", "санкции", "pipeline",
              "qozog'iston", "2024", "oshirdi", "өсті", "курс", "gas")
CRAFTED = [
    ("empty", "", ""),
    ("none", None, None),
    ("empty title", "", "Курс тенге ослаб на бирже."),
    ("empty summary", "US raises tariffs on Chinese steel", ""),
    ("only punctuation", "!!! ... --- ???", "«»—–,;:()[]{} ' ‘ ’ ` ʻ ʼ"),
    ("uzbek apostrophes", "O‘zbekiston bojxona to'lovlarini oshirdi",
     "Qozogʻiston esa import bojlarini o`zgartirmadi, soʼm va so’m kursi"),
    ("kazakh letters", "Қазақстан мұнай экспорты өсті",
     "Ұлттық банк теңге бағамын қолдады: әсер, ғ, ң, ү, һ, і. ҚАЗАҚСТАН"),
    ("nfkc and casefold", "ﬁnance ＴＡＲＩＦＦ Straße İstanbul", "Ёлка ёж ЁЖ"),
    ("underscores, digits, signs", "snake_case 2024_07 1,5% $300m", "₸ 10 000 №5 x²"),
    ("repeated words", "a b a b a b", "tariff tariff tariff"),
    ("very long text", " ".join(LONG_WORDS[i % 15] + str(i % 97) for i in range(3000)),
     " ".join(LONG_WORDS[(i * 7) % 15] for i in range(20000))),
]


@pytest.mark.parametrize("case, title, summary", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_text_scores_as_defined(case, title, summary):
    article = {"title": title, "summary": summary}
    expected = [reference_score(m, title, summary) for m in SHIPPED]
    assert ALL.scores(article) == pytest.approx(expected, abs=TOLERANCE, rel=0)
    assert [m.score(article) for m in SHIPPED] == pytest.approx(expected, abs=TOLERANCE, rel=0)
    slots = reference_slots(title, summary)
    assert article_slots(title or "", summary or "").tolist() == sorted(slots)
    assert F.vector_ids(article) == slots


def test_opened_labeled_items_score_as_defined():
    items = load_labeled(allowed_files())
    assert len(items) > 5000
    worst = 0.0
    for item in items:
        title, summary = item.get("title"), item.get("summary")
        slots = reference_slots(title, summary)
        for model, score in zip(SHIPPED, ALL.scores(item)):
            worst = max(worst, abs(score - reference_score(model, title, summary, slots)))
    assert worst <= TOLERANCE


def _model(bias: float, weights: dict[int, float], topic: str = "topic:test") -> Model:
    return Model(topic, bias, weights, {})


ARTICLE = {"title": "Tenge weakens against the dollar", "summary": "Курс тенге снизился, Oʻzbekiston so‘mi"}


@pytest.mark.parametrize("case, models", [
    ("the four shipped", SHIPPED),
    ("in another order", SHIPPED[::-1]),
    ("one of them twice", [SHIPPED[2], SHIPPED[0], SHIPPED[2]]),
    ("one", SHIPPED[1:2]),
    ("knows none of the article's features",
     [_model(-0.7, {s: 5.0 for s in range(0, 4000, 7) if s not in reference_slots(**ARTICLE)})]),
    ("knows nothing at all", [_model(0.25, {})]),
    ("with one that knows nothing", [SHIPPED[0], _model(0.25, {}), SHIPPED[3]]),
    ("none", []),
])
def test_several_models_score_as_each_alone(case, models):
    together = Scorer(models).scores(ARTICLE)
    assert len(together) == len(models)
    for model, score in zip(models, together):
        assert score == pytest.approx(reference_score(model, **ARTICLE), abs=TOLERANCE, rel=0)
        assert score == pytest.approx(Scorer([model]).scores(ARTICLE)[0], abs=TOLERANCE, rel=0)
        assert score == pytest.approx(model.score(ARTICLE), abs=TOLERANCE, rel=0)


def test_a_model_that_knows_none_of_the_features_gives_its_bias():
    blind = _model(-0.7, {s: 5.0 for s in range(0, 4000, 7) if s not in reference_slots(**ARTICLE)})
    assert blind.score(ARTICLE) == sigmoid(-0.7)
    assert blind.margin(ARTICLE) == -0.7
    assert Scorer([SHIPPED[0], blind]).scores(ARTICLE)[1] == sigmoid(-0.7)


@pytest.mark.parametrize("article", [
    ARTICLE,
    (ARTICLE["title"], ARTICLE["summary"]),
    type("Article", (), dict(ARTICLE))(),
], ids=["dict", "tuple", "attributes"])
def test_an_article_may_be_a_dict_a_pair_or_an_object(article):
    assert ALL.scores(article) == ALL.scores(ARTICLE)


def test_a_model_scorer_follows_a_new_bias_or_weights():
    model = _model(0.0, {next(iter(reference_slots(**ARTICLE))): 2.0})
    first = model.score(ARTICLE)
    model.bias = 1.0
    assert model.score(ARTICLE) == pytest.approx(reference_score(model, **ARTICLE), abs=TOLERANCE, rel=0)
    model.weights = {}
    assert model.score(ARTICLE) == sigmoid(1.0)
    assert first != sigmoid(1.0)


@pytest.mark.parametrize("names", [
    ["w:tariff", "c:<bo", "b:exchange rate"],
    ["w:o'zbekiston", "c:қаз", "b:курс тенге", "w:", "c:<é>"],
])
def test_the_batch_hash_is_the_hash(names):
    expected = [binascii.crc32(n.encode("utf-8")) % F.DIM for n in names]
    assert F._hashes(names) == expected == [F.feature_id(n) for n in names]
    pairs = [n.removeprefix("b:") for n in names if n.startswith("b:")]
    assert F._hash_pairs(pairs) == [F.feature_id("b:" + p) for p in pairs]


def test_the_word_cache_stays_bounded_and_right():
    calls = []

    def compute(keys):
        calls.append(list(keys))
        return [k.upper() for k in keys]

    cache = F._Recent(compute, 4)
    for i in range(50):
        keys = [f"w{i}", "often", f"w{i}", f"w{i // 2}"]
        assert cache.lookup(keys) == [k.upper() for k in keys]
        assert len(cache) <= 2 * 4
    assert all(len(keys) == len(set(keys)) for keys in calls)   # an article's misses once each
    calls.clear()
    assert cache.lookup(["w49", "w49"]) == ["W49", "W49"] and not calls   # held, not computed again


def test_the_first_verdict_scores_every_loaded_model(monkeypatch):
    from services.rules import Document, verdicts

    models = {name: verdicts.load(name) for name in ("fx", "tariffs", "sanctions", "pipeline-disruption")}
    doc = Document(ARTICLE["title"], ARTICLE["summary"])
    assert doc.verdict("fx", models["fx"]) == pytest.approx(models["fx"].score(ARTICLE), abs=TOLERANCE, rel=0)

    def scored_alone(self, article):
        raise AssertionError("scored alone, not from the document's scores")
    monkeypatch.setattr(Model, "score", scored_alone)
    for name, model in models.items():
        assert doc.verdict(name, model) == pytest.approx(reference_score(model, **ARTICLE), abs=TOLERANCE, rel=0)
    monkeypatch.undo()
    # A model the verdicts did not load is scored alone, once.
    stranger = _model(0.5, {})
    assert doc.verdict("stranger", stranger) == sigmoid(0.5)
