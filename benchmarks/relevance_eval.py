"""Cross-validated figures for the relevance model on top of the topic presets.

    .venv/bin/python benchmarks/relevance_eval.py            # the CV table
    .venv/bin/python benchmarks/relevance_eval.py --write    # ... and write services/relevance/models/*.json
    .venv/bin/python benchmarks/relevance_eval.py --final-measure blind-holdout   # later, once, on a frozen set

Data: only the sets we may train on (tests/data/labeled/{tune,holdout,
challenge}.jsonl and blind/tune-*.jsonl; see services/relevance/data.py,
which refuses blind/holdout-* and blind/check-* without --final-measure).

Method: 5 folds stratified by language and topic labels (fixed seed). For
each outer fold, the veto/confirm thresholds are chosen on the other four
folds by inner cross-validation (a model trained on three folds scores the
fourth), and a model trained on all four scores the held-out fold. The table
pools the held-out folds: the rule alone vs the rule checked by the model,
per topic and per language. `--write` trains on everything and stores the
thresholds chosen by a plain 5-fold CV over everything.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.relevance.combine import Thresholds, decide  # noqa: E402
from services.relevance.data import LABELED_DIR, TOPICS, allowed_files, check_allowed, load_labeled  # noqa: E402
from services.relevance.model import Model, TrainConfig, train  # noqa: E402
from services.relevance.store import MODELS_DIR, load_model, model_path  # noqa: E402

SEED = 20261127
K = 5
LANGS = ("en", "ru", "uz", "kk")
LOWS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
HIGHS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


# -- rule ------------------------------------------------------------------

def rule_predictions(items: list[dict], presets_dir: Path | None = None) -> dict[str, dict[str, bool]]:
    """topic -> {item id: does the preset match}."""
    from services.rules import Document, evaluate, load_presets
    presets = load_presets(presets_dir) if presets_dir else load_presets()
    out: dict[str, dict[str, bool]] = {}
    for topic in TOPICS:
        rule = presets.resolve("topic", topic.split(":", 1)[1])
        out[topic] = {it["id"]: evaluate(rule, Document(it["title"], it["summary"], it.get("source", ""),
                                                        it["lang"])) is not None for it in items}
    return out


# -- folds -----------------------------------------------------------------

def folds(items: list[dict], k: int = K, seed: int = SEED) -> dict[str, int]:
    """item id -> fold, stratified by (language, sorted topic labels)."""
    strata: dict[tuple, list[str]] = defaultdict(list)
    for it in sorted(items, key=lambda i: i["id"]):
        key = (it["lang"], tuple(sorted(lab for lab in it["labels"] if lab.startswith("topic:"))))
        strata[key].append(it["id"])
    rng = random.Random(seed)
    out, offset = {}, 0
    for key in sorted(strata):
        ids = strata[key]
        rng.shuffle(ids)
        for n, item_id in enumerate(ids):
            out[item_id] = (offset + n) % k
        offset += len(ids)
    return out


def oof_scores(items: list[dict], fold_of: dict[str, int], which: list[int], config: TrainConfig) -> dict[str, dict[str, float]]:
    """Out-of-fold scores for the items of folds `which`: each of those
    folds is scored by a model trained on the other folds in `which`."""
    out: dict[str, dict[str, float]] = {t: {} for t in TOPICS}
    for f in which:
        train_items = [it for it in items if fold_of[it["id"]] in which and fold_of[it["id"]] != f]
        test_items = [it for it in items if fold_of[it["id"]] == f]
        for topic in TOPICS:
            model = train(train_items, topic, config)
            for it in test_items:
                out[topic][it["id"]] = model.score(it)
    return out


# -- scoring ---------------------------------------------------------------

class PRF:
    def __init__(self):
        self.tp = self.fp = self.fn = 0

    def add(self, gold: bool, pred: bool):
        self.tp += gold and pred
        self.fp += (not gold) and pred
        self.fn += gold and not pred

    @property
    def p(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def r(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self):
        return 2 * self.p * self.r / (self.p + self.r) if self.p + self.r else 0.0

    def __str__(self):
        return f"{self.p:.2f} / {self.r:.2f} / {self.f1:.2f}"


def combined(rule: bool, score: float, t: Thresholds) -> bool:
    """The shipped decision (services.relevance.combine.decide), without reasons."""
    return decide(rule, score, t).match


def micro_f1(items, rules, scores, t: Thresholds) -> float:
    s = PRF()
    for it in items:
        for topic in TOPICS:
            s.add(topic in it["labels"], combined(rules[topic][it["id"]], scores[topic][it["id"]], t))
    return s.f1


VETO_ONLY = False  # --veto-only: never confirm (high = 1.0), only veto below `low`


def choose_thresholds(items, rules, scores) -> Thresholds:
    """The (low, high) with the best topic micro-F1; ties go to the pair
    closest to the rule alone (smallest low, largest high)."""
    highs = (1.0,) if VETO_ONLY else HIGHS
    cands = [Thresholds(lo, hi) for lo in LOWS for hi in highs if lo <= hi]
    return min(cands, key=lambda t: (-round(micro_f1(items, rules, scores, t), 9), t.low, -t.high))


def table(items, rules, scores, thresholds_of, title: str) -> str:
    """Per topic x language: rule alone, rule+model, model alone (0.5).
    `thresholds_of(item, topic)` gives the pair that judges that item."""
    cells: dict[tuple[str, str, str], PRF] = defaultdict(PRF)
    moves = defaultdict(int)
    for it in items:
        for topic in TOPICS:
            t = thresholds_of(it, topic)
            gold = topic in it["labels"]
            rule = rules[topic][it["id"]]
            score = scores[topic][it["id"]]
            both = combined(rule, score, t)
            groups = (it["lang"], "all") + ((it["lang"] + " blind-tune",) if it["id"].startswith("bt-") else ())
            for lang in groups:
                for tp in (topic, "topic:* (micro)"):
                    cells[(tp, lang, "rule")].add(gold, rule)
                    cells[(tp, lang, "both")].add(gold, both)
                    cells[(tp, lang, "model")].add(gold, score >= 0.5)
            if both != rule:
                moves[("veto" if rule else "confirm", "right" if both == gold else "wrong")] += 1
    lines = [f"## {title}", "",
             "P / R / F1 (positives); rule = preset alone, +model = preset checked by the model, "
             "model = model alone at 0.5", "",
             "| topic | lang | n+ | rule | +model | model |", "|---|---|---:|---|---|---|"]
    for topic in list(TOPICS) + ["topic:* (micro)"]:
        for lang in LANGS + ("all", "en blind-tune", "ru blind-tune"):
            r, b, m = (cells[(topic, lang, x)] for x in ("rule", "both", "model"))
            if r.tp + r.fn + r.fp == 0 and b.tp + b.fn + b.fp == 0:
                continue
            lines.append(f"| {topic} | {lang} | {r.tp + r.fn} | {r} | {b} | {m} |")
    lines.append("")
    lines.append("changes by the model: " + (", ".join(f"{a} {ok}: {n}" for (a, ok), n in sorted(moves.items()))
                                             or "none"))
    return "\n".join(lines)


def cross_validate(items, rules, config: TrainConfig, log) -> tuple[str, list[Thresholds]]:
    fold_of = folds(items)
    outer_scores: dict[str, dict[str, float]] = {t: {} for t in TOPICS}
    chosen: list[Thresholds] = []
    for f in range(K):
        t0 = time.time()
        rest = [g for g in range(K) if g != f]
        inner = oof_scores(items, fold_of, rest, config)
        inner_items = [it for it in items if fold_of[it["id"]] != f]
        thr = choose_thresholds(inner_items, rules, inner)
        chosen.append(thr)
        train_items = inner_items
        test_items = [it for it in items if fold_of[it["id"]] == f]
        for topic in TOPICS:
            model = train(train_items, topic, config)
            for it in test_items:
                outer_scores[topic][it["id"]] = model.score(it)
        log(f"fold {f}: thresholds low={thr.low} high={thr.high} ({time.time() - t0:.0f}s)")
    text = table(items, rules, outer_scores, lambda it, topic: chosen[fold_of[it["id"]]],
                 f"5-fold CV, {len(items)} items, thresholds chosen inside each training part: "
                 + ", ".join(f"({t.low}, {t.high})" for t in chosen))
    return text, chosen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="train on all allowed data and write the model files")
    ap.add_argument("--models", type=Path, default=MODELS_DIR)
    ap.add_argument("--presets", type=Path, default=None, help="another presets folder (e.g. an older version)")
    ap.add_argument("--final-measure", metavar="SPLIT",
                    help="score a frozen set (blind-holdout, blind-check or a .jsonl path) with the shipped models")
    ap.add_argument("--veto-only", action="store_true",
                    help="choose only a veto threshold (the model never confirms a missed article)")
    args = ap.parse_args(argv)
    config = TrainConfig()
    global VETO_ONLY
    VETO_ONLY = args.veto_only

    if args.final_measure:
        split = args.final_measure
        if split.startswith("blind-"):
            files = sorted((LABELED_DIR / "blind").glob(f"{split[len('blind-'):]}-*.jsonl"))
        else:
            files = [Path(split)]
        items = load_labeled([check_allowed(p, final_measure=True) for p in files], final_measure=True)
        if not items:
            raise SystemExit(f"no items for {split}")
        models = {t: load_model(t, args.models) for t in TOPICS}
        missing = [t for t, m in models.items() if m is None]
        if missing:
            raise SystemExit(f"no model file for {missing} under {args.models}; run --write first")
        rules = rule_predictions(items, args.presets)
        scores = {t: {it["id"]: models[t].score(it) for it in items} for t in TOPICS}
        thr = {t: models[t].thresholds for t in TOPICS}
        print(table(items, rules, scores, lambda it, topic: thr[topic],
                    f"final measure on {split}: {len(items)} items, thresholds "
                    + ", ".join(f"{t} ({thr[t].low}, {thr[t].high})" for t in TOPICS)))
        return 0

    items = load_labeled(allowed_files())
    rules = rule_predictions(items, args.presets)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    text, _ = cross_validate(items, rules, config, log)
    print(text)
    if args.write:
        fold_of = folds(items)
        scores = oof_scores(items, fold_of, list(range(K)), config)
        thr = choose_thresholds(items, rules, scores)
        print(f"\nthresholds from 5-fold CV over all {len(items)} items: low={thr.low} high={thr.high}")
        for topic in TOPICS:
            model = train(items, topic, config)
            model.meta["thresholds"] = {"low": thr.low, "high": thr.high}
            model.meta["data"] = [str(p.relative_to(ROOT)) for p in allowed_files()]
            path = model_path(topic, args.models)
            model.save(path)
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
                  f"({path.stat().st_size // 1024} KiB, {len(model.weights)} features)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
