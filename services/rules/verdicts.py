"""The relevance model's verdicts on a document, for presets that use one.

A topic preset may name a model (`model: fx` in its YAML: the file
`services/relevance/models/fx.json`, trained and given its thresholds by
`benchmarks/relevance_eval.py`). Its effective rule is then

    ((query) AND NOT (exclude) AND NOT model:fx<) OR model:fx>

`model:fx<` holds when the model's score is below the file's `low` threshold
(a veto of a keyword match), `model:fx>` when it is above `high` (an article
the keywords missed, confirmed): the decision of
`services.relevance.combine.decide`, written as a rule. Both are
`Meta("model", "fx<")` leaves, so every evaluator handles them as it handles
`lang:`, and a rule that names `topic:fx` needs no change. In the Matcher a
verdict is a check, run only for a clause that is a candidate; a
confirmation is also a cover (feature table "v", see clauses.py), and only
the verdicts clauses are filed under are worked out (`holding`).

A confirmation says why: its evidence is the article's words that pushed the
score up most (`Model.explain`, n-grams gathered per word), as hits named
`model:WORD` at every occurrence of the word. A veto only ever removes a
match, so it needs no evidence.

The first verdict asked of a document works out every loaded model's score
at once, for about the cost of one (`scores`, services/relevance/scorer.py),
and the document keeps them (`Document.verdict`): the other verdicts on it
are look-ups.
"""
from __future__ import annotations

from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.rules.document import Document

FIELD = "model"          # Meta("model", NAME + VETO | CONFIRM)
VETO, CONFIRM = "<", ">"
TABLE = "v"              # the Document feature table of verdicts
EVIDENCE_WORDS = 3       # a confirmation names this many of its top words

_models: dict[str, object] = {}   # name -> services.relevance.model.Model
_bounds: dict[str, tuple[float, float]] = {}   # name -> (low, high)
# (names, services.relevance.scorer.Scorer) of every model in _models, made
# when a document first asks and again after a model is loaded.
_scorer: tuple | None = None
_lock = Lock()


def load(name: str, directory: Path | None = None):
    """The model `name` (loaded once per process); a missing or invalid
    file, or one without thresholds, raises ValueError naming it."""
    global _scorer
    with _lock:
        model = _models.get(name)
        if model is None:
            # Imported here: rules must load without numpy's relevance part
            # when no preset names a model.
            from services.relevance.store import MODELS_DIR, model_path
            path = model_path(f"topic:{name}", directory or MODELS_DIR)
            if not path.is_file():
                raise ValueError(f"no relevance model {path}")
            from services.relevance.model import Model
            model = Model.load(path)
            if "thresholds" not in model.meta:
                raise ValueError(f"relevance model {path} has no thresholds")
            t = model.thresholds
            _bounds[name] = (t.low, t.high)
            _models[name] = model
            _scorer = None
        return model


def scores(doc: "Document") -> dict[str, float]:
    """Every loaded model's score of the document, by name, worked out in
    one pass: the article's slots are found once and each further model is
    one more row of a gather (~40 us a short news item for the four shipped
    models, ~30 us of it finding the slots; services/relevance/scorer.py)."""
    names, scorer = _scorer or _all_models()
    return dict(zip(names, scorer.scores((doc.title, doc.summary))))


def _all_models() -> tuple:
    global _scorer
    with _lock:
        if _scorer is None:
            from services.relevance.scorer import Scorer
            _scorer = (tuple(_models), Scorer(list(_models.values())))
        return _scorer


def split(value: str) -> tuple[str, str]:
    """`fx>` -> (`fx`, `>`)."""
    return value[:-1], value[-1]


def holds(doc: "Document", value: str) -> bool:
    """Does the verdict `NAME<` or `NAME>` hold for the document?"""
    name, side = split(value)
    model = _models.get(name)
    if model is None:
        return False
    score = doc.verdict(name, model)
    low, high = _bounds[name]
    return score < low if side == VETO else score > high


def holding(doc: "Document", values) -> list[str]:
    """Those of the verdicts `values` that hold, worked out when asked (the
    first costs every loaded model's score, ~40 us, the others are free):
    the document's part of feature table "v" that an index or a rule looks
    up."""
    return [v for v in values if holds(doc, v)]


def hits(doc: "Document", value: str) -> list:
    """The evidence of a verdict that holds, as `Hit`s (see `evidence`)."""
    from services.rules.evaluate import Hit
    return [Hit(term, name, *doc.fields[name].spans[i]) for term, name, i in evidence(doc, value)]


def evidence(doc: "Document", value: str) -> list[tuple[str, str, int]]:
    """For a confirmation that holds: (term, field, word position) of every
    occurrence of the model's top words, term = `model:WORD`. Empty for a
    veto, or when no top word is one of the tokeniser's words."""
    name, side = split(value)
    if side != CONFIRM:
        return []
    key = (FIELD, value)
    found = doc.memo.get(key)
    if found is None:
        found = doc.memo[key] = _evidence(doc, _models[name])
    return found


def _evidence(doc: "Document", model) -> list[tuple[str, str, int]]:
    from services.relevance.features import normalise
    top = model.explain({"title": doc.title, "summary": doc.summary}, EVIDENCE_WORDS, sign=1)
    words = {w for phrase, _ in top for w in phrase.split()}
    out = []
    for name in ("title", "summary"):
        field = doc.fields[name]
        text = field.text
        for i, (start, end) in enumerate(field.spans):
            word = normalise(text[start:end])
            if word in words:
                out.append((f"{FIELD}:{word}", name, i))
    return out
