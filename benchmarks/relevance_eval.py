"""Cross-validated figures for the relevance model on top of the topic presets.

    .venv/bin/python benchmarks/relevance_eval.py            # the CV table
    .venv/bin/python benchmarks/relevance_eval.py --write    # ... and write services/relevance/models/*.json
    .venv/bin/python benchmarks/relevance_eval.py --write --keep-thresholds   # retrain only, no threshold search
    .venv/bin/python benchmarks/relevance_eval.py --modes veto,confirm,both        # each way of using the model
    .venv/bin/python benchmarks/relevance_eval.py --leave-set-out --modes veto,confirm,both   # hold out each blind set
    .venv/bin/python benchmarks/relevance_eval.py --leave-set-out check2 --modes veto,confirm,both   # ... only check2
    .venv/bin/python benchmarks/relevance_eval.py --calibrate-on check3,check4 --per-topic --modes veto,confirm,both --write
    .venv/bin/python benchmarks/relevance_eval.py --final-measure blind-check35   # later, once, on a frozen set

Data: only the sets we may train on (tests/data/labeled/{tune,holdout,
challenge}.jsonl and the opened blind sets, `OPENED_BLIND` in
services/relevance/data.py, which refuses the frozen ones, blind/holdout-* and
the newest check sets, without --final-measure).

Modes: `veto` (high = 1.0: the model only drops a rule match scoring below
`low`), `confirm` (low = 0.0: the model only adds an article the rule missed
scoring above `high`), `both` (the full grid). The scores are computed once and
every mode chooses its own thresholds from them by the same inner CV.

`--leave-set-out`: instead of random folds, each opened blind set (tune,
tune2, check, check2, all four languages) is held out in turn; the model is
trained on everything else (our own sets and the other blind sets), its
thresholds chosen by a 5-fold CV inside that training part, and it scores the
held-out set: text of writers the model never saw.

Method: 5 folds stratified by language and topic labels (fixed seed). For
each outer fold, the veto/confirm thresholds are chosen on the other four
folds by inner cross-validation (a model trained on three folds scores the
fourth), and a model trained on all four scores the held-out fold. The table
pools the held-out folds: the rule alone vs the rule checked by the model,
per topic and per language. `--write` trains on everything and stores the
thresholds chosen by a plain 5-fold CV over everything.

`--calibrate-on SETS`: the inner CV above cannot see how the presets fail on
new text, because every opened set was tuned on, so the rule looks perfect
there and the rule alone always wins. Opened sets that the presets were
measured on but never tuned on (check3 and check4: each measured a round
once, then was opened, and no preset changed after) show the rule's real
errors. The model is trained on everything else, scores SETS, and each mode
chooses its thresholds on SETS; `--per-topic` gives each topic its own pair,
and only among pairs that break none of the topic hard cases of
tests/unit/rules/test_presets_quality.py (short texts on the very traps the
presets avoid: "import" is not a duty, an exchange office is not a currency
move; a bag of words falls for them). With `--write` the shipped models are
then trained on everything (SETS included) and store the thresholds of the
first mode in `--modes` that scored best on SETS.

`--write --keep-thresholds`: retrain the shipped models on everything allowed
and keep the thresholds the current model files store (chosen by an earlier
calibration). No cross-validation runs, so it takes minutes, not an hour.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.relevance.combine import RULE_ALONE, Thresholds, decide  # noqa: E402
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
    from services.rules.presets import DEFAULT_DIR
    # The keywords alone: the presets' own `model:` is what is measured here.
    presets = load_presets(presets_dir or DEFAULT_DIR, models=False)
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


def micro_f1(items, rules, scores, t: Thresholds | dict[str, Thresholds]) -> float:
    """Topic micro-F1 with one pair for all topics, or a pair per topic."""
    s = PRF()
    for it in items:
        for topic in TOPICS:
            s.add(topic in it["labels"],
                  combined(rules[topic][it["id"]], scores[topic][it["id"]], t[topic] if isinstance(t, dict) else t))
    return s.f1


VETO_ONLY = False  # --veto-only: never confirm (high = 1.0), only veto below `low`
MODES = {"veto": (LOWS, (1.0,)), "confirm": ((0.0,), HIGHS), "both": (LOWS, HIGHS)}


def choose_thresholds(items, rules, scores, mode: str | None = None) -> Thresholds:
    """The (low, high) with the best topic micro-F1; ties go to the pair
    closest to the rule alone (smallest low, largest high). `mode` limits
    the grid (see MODES); by default the full grid, or veto only under
    --veto-only."""
    lows, highs = MODES[mode or ("veto" if VETO_ONLY else "both")]
    cands = [Thresholds(lo, hi) for lo in lows for hi in highs if lo <= hi]
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
            groups = (it["lang"], "all") + ((f"{it['lang']} {set_of(it)}",) if set_of(it) != "own" else ())
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
        extra = sorted({g for (_, g, _) in cells} - set(LANGS) - {"all"})
        for lang in LANGS + ("all",) + tuple(extra):
            r, b, m = (cells[(topic, lang, x)] for x in ("rule", "both", "model"))
            if r.tp + r.fn + r.fp == 0 and b.tp + b.fn + b.fp == 0:
                continue
            lines.append(f"| {topic} | {lang} | {r.tp + r.fn} | {r} | {b} | {m} |")
    lines.append("")
    lines.append("changes by the model: " + (", ".join(f"{a} {ok}: {n}" for (a, ok), n in sorted(moves.items()))
                                             or "none"))
    return "\n".join(lines)


def set_of(item: dict) -> str:
    """The labeled set an item comes from (tagged by load_sets)."""
    return item.get("_set", "own")


def load_sets() -> list[dict]:
    """The allowed items, each tagged with its set: "own" (tune, holdout,
    challenge) or the blind set's name (tune, tune2, check, check2)."""
    items = []
    for path in allowed_files():
        name = path.stem.rsplit("-", 1)[0] if path.parent.name == "blind" else "own"
        for it in load_labeled([path]):
            items.append({**it, "_set": name})
    return items


def _short(x: float) -> str:
    return f"{x:.2f}".replace("0.", ".", 1) if x < 1 else "1.00"


def compact(items, rules, scores, thresholds_of, columns=None) -> str:
    """Topic x language, each cell rule P/R/F1 -> rule+model P/R/F1; then the
    model's changes per column (right/wrong vetoes and confirms)."""
    columns = columns or [(lang, lambda it, lang=lang: it["lang"] == lang) for lang in LANGS] + [("all", lambda it: True)]
    cells: dict[tuple[str, str, str], PRF] = defaultdict(PRF)
    moves: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for it in items:
        for topic in TOPICS:
            t = thresholds_of(it, topic)
            gold = topic in it["labels"]
            rule = rules[topic][it["id"]]
            both = combined(rule, scores[topic][it["id"]], t)
            for col, member in columns:
                if not member(it):
                    continue
                for tp in (topic, "topics (micro)"):
                    cells[(tp, col, "rule")].add(gold, rule)
                    cells[(tp, col, "both")].add(gold, both)
                if both != rule:
                    moves[col][("veto " if rule else "confirm ") + ("right" if both == gold else "wrong")] += 1
    cols = [c for c, _ in columns]
    out = ["| topic | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for topic in list(TOPICS) + ["topics (micro)"]:
        row = []
        for col in cols:
            r, b = cells[(topic, col, "rule")], cells[(topic, col, "both")]
            fmt = lambda m: f"{_short(m.p)}/{_short(m.r)}/{_short(m.f1)}"  # noqa: E731
            row.append("" if r.tp + r.fn + r.fp + b.fp == 0 else
                       f"{fmt(r)} → {fmt(b)}" + (f" ({r.tp + r.fn}+)" if topic == "topics (micro)" else ""))
        out.append(f"| {topic.replace('topic:', '')} | " + " | ".join(row) + " |")
    keys = ("veto right", "veto wrong", "confirm right", "confirm wrong")
    out.append("| changes: veto right/wrong, confirm right/wrong | "
               + " | ".join("{}/{}, {}/{}".format(*(moves[c][k] for k in keys)) for c in cols) + " |")
    return "\n".join(out)


def sweep(items, rules, scores) -> str:
    """For every candidate threshold on its own (not chosen): how many rule
    decisions it would change, right/wrong, per language (pooled held-out
    scores). Shows what a fixed veto or confirm threshold would cost."""
    cols = LANGS + ("all",)
    rows = [("veto below", lo) for lo in LOWS if lo > 0] + [("confirm above", hi) for hi in HIGHS if hi < 1]
    count = {(r, c): [0, 0] for r in rows for c in cols}
    for it in items:
        for topic in TOPICS:
            gold, rule, score = topic in it["labels"], rules[topic][it["id"]], scores[topic][it["id"]]
            for kind, th in rows:
                t = Thresholds(th, 1.0) if kind == "veto below" else Thresholds(0.0, th)
                both = combined(rule, score, t)
                if both != rule:
                    for c in (it["lang"], "all"):
                        count[((kind, th), c)][0 if both == gold else 1] += 1
    out = ["| threshold alone | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for kind, th in rows:
        out.append(f"| {kind} {th} | " + " | ".join("{}/{}".format(*count[((kind, th), c)]) for c in cols) + " |")
    return "changes right/wrong at each candidate threshold alone:\n\n" + "\n".join(out)


def cross_validate(items, rules, config: TrainConfig, log, modes=("both",)) -> dict[str, tuple[str, list[Thresholds], str]]:
    """Nested CV. The scores do not depend on the mode, so each outer fold's
    inner out-of-fold scores and outer scores are computed once and every
    mode chooses its thresholds from them."""
    fold_of = folds(items)
    outer_scores: dict[str, dict[str, float]] = {t: {} for t in TOPICS}
    chosen: dict[str, list[Thresholds]] = {m: [] for m in modes}
    for f in range(K):
        t0 = time.time()
        rest = [g for g in range(K) if g != f]
        inner = oof_scores(items, fold_of, rest, config)
        inner_items = [it for it in items if fold_of[it["id"]] != f]
        for m in modes:
            chosen[m].append(choose_thresholds(inner_items, rules, inner, m))
        train_items = inner_items
        test_items = [it for it in items if fold_of[it["id"]] == f]
        for topic in TOPICS:
            model = train(train_items, topic, config)
            for it in test_items:
                outer_scores[topic][it["id"]] = model.score(it)
        log(f"fold {f}: " + ", ".join(f"{m} low={chosen[m][-1].low} high={chosen[m][-1].high}" for m in modes)
            + f" ({time.time() - t0:.0f}s)")
    out = {}
    for m in modes:
        thr_of = lambda it, topic, m=m: chosen[m][fold_of[it["id"]]]  # noqa: E731
        text = table(items, rules, outer_scores, thr_of,
                     f"{m}: 5-fold CV, {len(items)} items, thresholds chosen inside each training part: "
                     + ", ".join(f"({t.low}, {t.high})" for t in chosen[m]))
        out[m] = (text, chosen[m], compact(items, rules, outer_scores, thr_of))
    out["sweep"] = sweep(items, rules, outer_scores)
    return out


def leave_set_out(items, rules, config: TrainConfig, log, modes=("both",), only=None) -> dict[str, tuple[str, dict, str]]:
    """Hold out each opened blind set in turn (or only those named in `only`):
    train on all the other items, choose thresholds by 5-fold CV inside them,
    score the held-out set."""
    order = ("tune", "tune2", "check", "check2", "check3", "check4")
    held = sorted({set_of(it) for it in items} - {"own"}, key=lambda s: order.index(s) if s in order else 9)
    if only:
        unknown = set(only) - set(held)
        if unknown:
            raise SystemExit(f"no opened blind set {sorted(unknown)}; choose from {held}")
        held = [s for s in held if s in only]
    scores: dict[str, dict[str, float]] = {t: {} for t in TOPICS}
    chosen: dict[str, dict[str, Thresholds]] = {m: {} for m in modes}
    for name in held:
        t0 = time.time()
        train_items = [it for it in items if set_of(it) != name]
        test_items = [it for it in items if set_of(it) == name]
        fold_of = folds(train_items)
        inner = oof_scores(train_items, fold_of, list(range(K)), config)
        for m in modes:
            chosen[m][name] = choose_thresholds(train_items, rules, inner, m)
        for topic in TOPICS:
            model = train(train_items, topic, config)
            for it in test_items:
                scores[topic][it["id"]] = model.score(it)
        log(f"held out {name} ({len(test_items)} items, trained on {len(train_items)}): "
            + ", ".join(f"{m} low={chosen[m][name].low} high={chosen[m][name].high}" for m in modes)
            + f" ({time.time() - t0:.0f}s)")
    test = [it for it in items if set_of(it) in held]
    columns = ([(lang, lambda it, lang=lang: it["lang"] == lang) for lang in LANGS] + [("all", lambda it: True)]
               + [(f"{name} (all langs)", lambda it, name=name: set_of(it) == name) for name in held])
    out = {}
    for m in modes:
        thr_of = lambda it, topic, m=m: chosen[m][set_of(it)]  # noqa: E731
        text = table(test, rules, scores, thr_of,
                     f"{m}: leave one blind set out, {len(test)} held-out items, thresholds per held-out set: "
                     + ", ".join(f"{n} ({t.low}, {t.high})" for n, t in chosen[m].items()))
        out[m] = (text, chosen[m], compact(test, rules, scores, thr_of, columns))
    out["sweep"] = sweep(test, rules, scores)
    return out


def hard_cases() -> list[tuple[str, str, str, bool]]:
    """The topic hard cases of tests/unit/rules/test_presets_quality.py
    (topic, title, summary, should match): short texts built on the traps
    the presets must not fall into (word senses, non-events). The keywords
    pass every one; a threshold that breaks one is not chosen."""
    import importlib.util
    path = ROOT / "tests" / "unit" / "rules" / "test_presets_quality.py"
    spec = importlib.util.spec_from_file_location("_presets_quality", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [(rule, title, summary, expected) for rule, title, summary, expected in module.CASES
            if rule.startswith("topic:")]


def calibrate_on(items, rules, config: TrainConfig, log, names: list[str], modes=("both",), per_topic=False):
    """Train on everything but the opened sets `names`, choose each mode's
    thresholds on those sets themselves (see the module docstring); with
    `per_topic`, each topic its own pair, by that topic's F1, among the pairs
    that break none of the hard cases."""
    held = [it for it in items if set_of(it) in names]
    missing = set(names) - {set_of(it) for it in held}
    if missing:
        raise SystemExit(f"no opened blind set {sorted(missing)}")
    train_items = [it for it in items if set_of(it) not in names]
    t0 = time.time()
    scores: dict[str, dict[str, float]] = {t: {} for t in TOPICS}
    models = {}
    for topic in TOPICS:
        models[topic] = model = train(train_items, topic, config)
        for it in held:
            scores[topic][it["id"]] = model.score(it)
    cases = hard_cases()
    case_scores = [(topic, models[topic].score({"title": title, "summary": summary}), expected)
                   for topic, title, summary, expected in cases]
    case_rule = _hard_rules(cases)
    log(f"calibrating on {'+'.join(names)} ({len(held)} items, trained on {len(train_items)}; "
        f"{len(cases)} topic hard cases; {time.time() - t0:.0f}s)")

    def breaks(topic: str, t: Thresholds) -> int:
        return sum(combined(r, sc, t) != exp for (tp, sc, exp), r in zip(case_scores, case_rule) if tp == topic)

    def topic_f1(topic: str, t: Thresholds) -> float:
        s = PRF()
        for it in held:
            s.add(topic in it["labels"], combined(rules[topic][it["id"]], scores[topic][it["id"]], t))
        return s.f1

    out, f1 = {}, {}
    for m in modes:
        if per_topic:
            lows, highs = MODES[m]
            thr = {}
            for topic in TOPICS:
                cands = [Thresholds(lo, hi) for lo in lows for hi in highs if lo <= hi]
                cands = [t for t in cands if breaks(topic, t) == 0] or [RULE_ALONE]
                thr[topic] = min(cands, key=lambda t: (-round(topic_f1(topic, t), 9), t.low, -t.high))
        else:
            one = choose_thresholds(held, rules, scores, m)
            thr = {topic: one for topic in TOPICS}
        thr_of = lambda it, topic, thr=thr: thr[topic]  # noqa: E731
        f1[m] = micro_f1(held, rules, scores, thr)
        broken = sum(breaks(topic, thr[topic]) for topic in TOPICS)
        text = table(held, rules, scores, thr_of,
                     f"{m}: thresholds chosen on {'+'.join(names)} itself: "
                     + ", ".join(f"{t} ({thr[t].low}, {thr[t].high})" for t in TOPICS)
                     + f"; micro F1 rule {micro_f1(held, rules, scores, RULE_ALONE):.3f} -> {f1[m]:.3f}; "
                     f"hard cases broken: {broken}")
        out[m] = (text, thr, compact(held, rules, scores, thr_of))
    out["sweep"] = sweep(held, rules, scores)
    out["f1"] = f1
    return out


def _hard_rules(cases) -> list[bool]:
    """The keyword rule's answer on each hard case."""
    from services.rules import Document, evaluate, load_presets
    presets = load_presets(models=False)
    return [evaluate(presets.resolve("topic", topic.split(":", 1)[1]), Document(title, summary)) is not None
            for topic, title, summary, _ in cases]


def stored_thresholds(topic: str, directory: Path) -> Thresholds | None:
    """The thresholds a model file stores (None: no file), read from its
    JSON alone: a file of an older format, made with other feature hashing,
    cannot be loaded as a Model, and retraining it with its thresholds kept
    is what its load error asks for."""
    path = model_path(topic, directory)
    if not path.is_file():
        return None
    return Thresholds.stored(json.loads(path.read_text(encoding="utf-8")).get("meta", {}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="train on all allowed data and write the model files")
    ap.add_argument("--models", type=Path, default=MODELS_DIR)
    ap.add_argument("--presets", type=Path, default=None, help="another presets folder (e.g. an older version)")
    ap.add_argument("--final-measure", metavar="SPLIT",
                    help="score a frozen set (blind-holdout, blind-check or a .jsonl path) with the shipped models")
    ap.add_argument("--veto-only", action="store_true",
                    help="choose only a veto threshold (the model never confirms a missed article); = --modes veto")
    ap.add_argument("--modes", default=None,
                    help="comma-separated ways of using the model, each with its own thresholds: "
                         "veto, confirm, both (default: both, or veto under --veto-only)")
    ap.add_argument("--leave-set-out", nargs="?", const="all", default=None, metavar="SETS",
                    help="hold out each opened blind set in turn instead of random folds "
                         "(or only the comma-separated SETS, e.g. check2)")
    ap.add_argument("--calibrate-on", metavar="SETS", default=None,
                    help="choose the thresholds on these opened blind sets (comma-separated), which the presets "
                         "were never tuned on (the model is trained without them)")
    ap.add_argument("--per-topic", action="store_true",
                    help="with --calibrate-on: a pair of thresholds per topic, none breaking a hard case")
    ap.add_argument("--full", action="store_true", help="also print the detailed P/R/F1 table of each mode")
    ap.add_argument("--keep-thresholds", action="store_true",
                    help="with --write: retrain on everything allowed and keep each model file's thresholds "
                         "(no cross-validation, no threshold search)")
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

    if args.keep_thresholds:
        if not args.write or args.calibrate_on or args.leave_set_out:
            ap.error("--keep-thresholds goes with --write alone (it skips the threshold search)")
        old = {t: stored_thresholds(t, args.models) for t in TOPICS}
        missing = [t for t, m in old.items() if m is None]
        if missing:
            raise SystemExit(f"--keep-thresholds: no model file for {missing} under {args.models}")
        write_models(load_sets(), config, old, args.models)
        return 0

    modes = tuple(args.modes.split(",")) if args.modes else (("veto",) if args.veto_only else ("both",))
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown}; choose from {sorted(MODES)}")
    items = load_sets()
    rules = rule_predictions(items, args.presets)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.time()
    if args.calibrate_on:
        results = calibrate_on(items, rules, config, log, args.calibrate_on.split(","), modes, args.per_topic)
    elif args.leave_set_out:
        only = None if args.leave_set_out == "all" else args.leave_set_out.split(",")
        results = leave_set_out(items, rules, config, log, modes, only)
    else:
        results = cross_validate(items, rules, config, log, modes)
    sweep_text = results.pop("sweep")
    calibrated_f1 = results.pop("f1", None)
    for m, (text, chosen, short) in results.items():
        print(text if args.full or len(modes) == 1 else text.split("\n")[0])
        print(f"\n{m}: cells are rule P/R/F1 → rule+model P/R/F1\n")
        print(short + "\n")
    print(sweep_text)
    log(f"done in {time.time() - t0:.0f}s")
    if args.write:
        if args.calibrate_on:
            best = max(modes, key=lambda m: (round(calibrated_f1[m], 9), -modes.index(m)))
            thr_by_topic = results[best][1]
            print(f"\nthresholds chosen on {args.calibrate_on} ({best}): "
                  + ", ".join(f"{t} ({thr_by_topic[t].low}, {thr_by_topic[t].high})" for t in TOPICS))
        else:
            fold_of = folds(items)
            scores = oof_scores(items, fold_of, list(range(K)), config)
            thr = choose_thresholds(items, rules, scores)
            thr_by_topic = {t: thr for t in TOPICS}
            print(f"\nthresholds from 5-fold CV over all {len(items)} items: low={thr.low} high={thr.high}")
        write_models(items, config, thr_by_topic, args.models)
    return 0


def write_models(items, config: TrainConfig, thr_by_topic: dict, models_dir: Path) -> None:
    """Train each topic's model on `items` and store it with its thresholds."""
    for topic in TOPICS:
        model = train(items, topic, config)
        model.meta["thresholds"] = {"low": thr_by_topic[topic].low, "high": thr_by_topic[topic].high}
        model.meta["data"] = [str(p.relative_to(ROOT)) for p in allowed_files()]
        path = model_path(topic, models_dir)
        model.save(path)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
              f"({path.stat().st_size // 1024} KiB, {len(model.weights)} features)")


if __name__ == "__main__":
    sys.exit(main())
