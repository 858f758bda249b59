"""Per-topic binary logistic regression over hashed features, in numpy.

    model = train(items, "topic:fx")       # items: dicts with title, summary, labels
    model.score(article)                   # probability that the article is about fx
    model.explain(article, k=5)            # [(readable feature, weight * value), ...]
    model.save(path); Model.load(path)     # one small JSON file

Training is deterministic: features seen in at least `min_df` training items
become columns, the weights start at zero, and a fixed number of Nesterov
accelerated full-batch gradient steps with a fixed step size minimise the
mean logistic loss plus an L2 penalty (the bias is not penalised). No
randomness is involved, so the same items give the same model, bit for bit,
on the same numpy build. Only the `max_features` largest weights are kept and
they are rounded to 6 decimals: the kept model is what `score` uses in memory
and what the file holds, so a save/load round-trip gives identical scores.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from services.relevance import features as F
from services.relevance.scorer import Scorer, sigmoid as _sigmoid

# /2: feature slots by CRC-32 (features.HASH); /1 files (BLAKE2b slots)
# give wrong scores with today's features, so they are refused by name.
FORMAT = "tulpar-relevance-logreg/2"


@dataclass(frozen=True)
class TrainConfig:
    l2: float = 1e-5
    iterations: int = 400
    min_df: int = 2
    max_features: int = 6000
    balanced: bool = True       # weigh each class to half the loss


@dataclass
class Model:
    topic: str                                   # e.g. "topic:fx"
    bias: float
    weights: dict[int, float]                    # feature id -> weight
    names: dict[int, list[str]]                  # feature id -> feature names seen in training
    meta: dict[str, Any] = field(default_factory=dict)

    # -- scoring -------------------------------------------------------
    def margin(self, article: Any) -> float:
        # Every feature is worth the same 1/sqrt(n) (features.py): the
        # weights of the article's slots added up, then scaled once, by a
        # Scorer of this model alone (scorer.py; several models at once are
        # cheaper with one Scorer of them all).
        return self._scorer().margins(article)[0]

    def score(self, article: Any) -> float:
        return _sigmoid(self.margin(article))

    def _scorer(self) -> Scorer:
        """This model's Scorer, built on its first score (~2 MB, a few ms)
        and again if `weights` is replaced, or `bias` or the number of
        weights changes; a weight changed in place goes unnoticed (a model
        is a trained, rounded artefact: `train` and `load` make new ones)."""
        key = (id(self.weights), len(self.weights), self.bias)
        built = self.__dict__.get("_built_scorer")  # not a field: no part of ==, repr or the file
        if built is None or built[0] != key:
            built = self.__dict__["_built_scorer"] = (key, Scorer((self,)))
        return built[1]

    def contributions(self, article: Any) -> list[tuple[str, float]]:
        """Every known feature of the article with its weight * value,
        largest absolute contribution first (ties by name)."""
        # Name a feature by what *this article* holds (its own names that
        # hash to the slot), which is exact even when the slot is shared.
        own: dict[int, list[str]] = {}
        for name in F.feature_names(article):
            own.setdefault(F.feature_id(name), []).append(name)
        out = []
        for fid, v in F.vectorise(article).items():
            w = self.weights.get(fid)
            if w is None:
                continue
            out.append((" | ".join(F.readable(n) for n in own[fid]), w * v))
        out.sort(key=lambda fc: (-abs(fc[1]), fc[0]))
        return out

    def word_contributions(self, article: Any) -> list[tuple[str, float]]:
        """Contributions gathered per word of the article: a word gets its
        own weight plus an equal share of each character n-gram it holds
        (shared with the other words of the article that hold it); a bigram
        stays a phrase. They add up to the margin minus the bias."""
        owners: dict[str, set[str]] = {}
        for text in F._fields(article):
            for w in F.words(text):
                for g in F.char_ngrams(w):
                    owners.setdefault("c:" + g, set()).add(w)
        own: dict[int, list[str]] = {}
        for name in F.feature_names(article):
            own.setdefault(F.feature_id(name), []).append(name)
        total: dict[str, float] = {}
        for fid, v in F.vectorise(article).items():
            w = self.weights.get(fid)
            if w is None:
                continue
            names = own[fid]
            for name in names:
                share = w * v / len(names)
                kind, _, body = name.partition(":")
                keys = sorted(owners[name]) if kind == "c" else [F.readable(name)]
                for key in keys:
                    total[key] = total.get(key, 0.0) + share / len(keys)
        return sorted(total.items(), key=lambda kc: (-abs(kc[1]), kc[0]))

    def explain(self, article: Any, k: int = 5, sign: int = 0, by: str = "word") -> list[tuple[str, float]]:
        """The k features that moved the score most: all of them (sign=0),
        only those pushing towards the topic (sign=1) or away from it (-1).
        `by="word"` gathers character n-grams into the words that hold them
        (readable); `by="feature"` lists the raw hashed features."""
        if by not in ("word", "feature"):
            raise ValueError(f"by must be 'word' or 'feature', not {by!r}")
        items = self.word_contributions(article) if by == "word" else self.contributions(article)
        if sign:
            items = [fc for fc in items if fc[1] * sign > 0]
        return [(name, round(c, 4)) for name, c in items[:k]]

    @property
    def thresholds(self):
        """The (low, high) chosen by cross-validation, if the file has them."""
        from services.relevance.combine import Thresholds
        return Thresholds.stored(self.meta)

    def feature_label(self, fid: int) -> str:
        names = self.names.get(fid)
        if not names:
            return f"#{fid}"
        return " | ".join(F.readable(n) for n in names)

    # -- files ---------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "topic": self.topic,
            "hash": F.HASH,
            "hash_bits": F.HASH_BITS,
            "ngram_range": list(F.NGRAM_RANGE),
            "bias": self.bias,
            "meta": self.meta,
            # [feature id, weight, [names]], sorted by id
            "features": [[fid, self.weights[fid], self.names.get(fid, [])] for fid in sorted(self.weights)],
        }

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        path.write_text(text + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, data: dict) -> "Model":
        if data.get("format") != FORMAT:
            if str(data.get("format", "")).startswith(FORMAT.rpartition("/")[0] + "/"):
                raise ValueError(f"relevance model file of format {data['format']!r}, made with other feature "
                                 f"hashing; this version reads {FORMAT!r}: retrain it "
                                 "(benchmarks/relevance_eval.py --write --keep-thresholds)")
            raise ValueError(f"not a relevance model file (format {data.get('format')!r})")
        settings = (data.get("hash"), data.get("hash_bits"), list(data.get("ngram_range", [])))
        if settings != (F.HASH, F.HASH_BITS, list(F.NGRAM_RANGE)):
            raise ValueError("model file was built with other feature settings")
        weights = {int(fid): float(w) for fid, w, _ in data["features"]}
        names = {int(fid): list(ns) for fid, _, ns in data["features"] if ns}
        return cls(data["topic"], float(data["bias"]), weights, names, dict(data.get("meta", {})))

    @classmethod
    def load(cls, path: str | Path) -> "Model":
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except ValueError as err:  # json's decode errors are ValueErrors too
            raise ValueError(f"{path}: {err}") from None


def _labels(items: Sequence[dict], topic: str) -> np.ndarray:
    return np.array([1.0 if topic in item["labels"] else 0.0 for item in items])


def train(items: Sequence[dict], topic: str, config: TrainConfig = TrainConfig()) -> Model:
    """Fit a model for `topic` (a label such as "topic:fx") on labeled items."""
    if not items:
        raise ValueError("no training items")
    y = _labels(items, topic)
    vecs = [F.vectorise(item) for item in items]
    df: dict[int, int] = {}
    for vec in vecs:
        for fid in vec:
            df[fid] = df.get(fid, 0) + 1
    kept = sorted(fid for fid, n in df.items() if n >= config.min_df)
    col = {fid: j for j, fid in enumerate(kept)}
    rows, cols, vals = [], [], []
    for i, vec in enumerate(vecs):
        for fid, v in vec.items():
            j = col.get(fid)
            if j is not None:
                rows.append(i)
                cols.append(j)
                vals.append(v)
    w, b = _fit(np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64),
                np.array(vals, dtype=np.float64), y, len(kept), config)
    order = sorted(range(len(kept)), key=lambda j: (-abs(w[j]), kept[j]))[: config.max_features]
    weights = {kept[j]: round(float(w[j]), 6) for j in sorted(order)}
    weights = {fid: wt for fid, wt in weights.items() if wt != 0.0}
    rmap = F.reverse_map(items)
    names = {fid: rmap[fid] for fid in weights}
    meta = {"items": len(items), "positives": int(y.sum()), "l2": config.l2,
            "iterations": config.iterations, "min_df": config.min_df, "max_features": config.max_features, "balanced": config.balanced}
    return Model(topic, round(float(b), 6), weights, names, meta)


def _fit(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, y: np.ndarray, d: int,
         config: TrainConfig) -> tuple[np.ndarray, float]:
    """Nesterov-accelerated gradient descent on the L2-penalised mean
    logistic loss; X is given as coordinates (rows, cols, vals)."""
    n = len(y)
    if config.balanced and 0 < y.sum() < n:
        pos = y.sum()
        s = np.where(y > 0, n / (2 * pos), n / (2 * (n - pos)))
    else:
        s = np.ones(n)
    w = np.zeros(d)
    b = 0.0
    w_prev, b_prev = w.copy(), b
    # Rows have unit norm and the bias column is 1: the loss gradient is
    # Lipschitz with constant at most 0.25 * (1 + 1), plus the penalty.
    step = 1.0 / (0.5 * float(s.max()) + config.l2)
    for t in range(1, config.iterations + 1):
        mom = (t - 1) / (t + 2)
        vw = w + mom * (w - w_prev)
        vb = b + mom * (b - b_prev)
        z = np.bincount(rows, weights=vals * vw[cols], minlength=n) + vb
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
        g = s * (p - y) / n
        gw = np.bincount(cols, weights=vals * g[rows], minlength=d) + config.l2 * vw
        gb = float(g.sum())
        w_prev, b_prev = w, b
        w = vw - step * gw
        b = vb - step * gb
    return w, b


def train_all(items: Sequence[dict], topics: Iterable[str], config: TrainConfig = TrainConfig()) -> dict[str, Model]:
    return {topic: train(items, topic, config) for topic in topics}
