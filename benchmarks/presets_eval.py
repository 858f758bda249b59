"""Precision, recall and F1 of the bundled topic and country presets on the
labeled set written by us (tests/data/labeled/).

    .venv/bin/python benchmarks/presets_eval.py              # both splits
    .venv/bin/python benchmarks/presets_eval.py --split tune --errors
    .venv/bin/python benchmarks/presets_eval.py --timing  # cost per article

`tune.jsonl` is what presets may be tuned against; `holdout.jsonl` was written
before any tuning and is only ever measured (see docs/presets.md). Matching
uses the reference evaluator (`services.rules.evaluate`) by default;
`--engine matcher` runs the indexed `Matcher` with one subscription per preset
(`topic:fx`, `country:KZ`...), which must give the same figures.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.rules import Document, Matcher, Presets, evaluate, load_presets  # noqa: E402
from services.relevance.data import FORBIDDEN, read_items  # noqa: E402
from services.rules.presets import DEFAULT_DIR  # noqa: E402

LABELED_DIR = ROOT / "tests" / "data" / "labeled"
# Our own splits, then the blind ones: written by people who never saw the
# presets, from the topic definitions alone (blind/*.jsonl, one file a
# language). blind-tune may be tuned on; the frozen ones are only measured,
# when named, and their errors are never listed.
# Each check set is frozen until it has measured one round once, then opened
# for the next round's tuning (tests/data/labeled/blind/README.md tells which
# round). The ones still frozen are the ones services/relevance/data.py
# refuses to train on (one list, edited once a round).
SPLITS = ("tune", "holdout", "challenge", "blind-tune", "blind-holdout", "blind-check", "blind-tune2",
          "blind-check2", "blind-check3", "blind-check4", "blind-check5", "blind-check6",
          "blind-check7", "blind-check8", "blind-check9", "blind-check10",
          "blind-check11", "blind-check12", "blind-check13", "blind-check14",
          "blind-check15", "blind-check16",
          "blind-check17", "blind-check18",
          "blind-check19", "blind-check20",
          "blind-check21", "blind-check22",
          "blind-check23", "blind-check24",
          "blind-check25", "blind-check26",
          "blind-check27", "blind-check28",
          "blind-check29", "blind-check30",
          "blind-check31", "blind-check32",
          "blind-check33", "blind-check34",
          "blind-check35", "blind-check36")
FROZEN = tuple(path.replace("/", "-") for path in FORBIDDEN)  # "blind/check13" -> "blind-check13"
LANGS = ("en", "ru", "uz", "kk")


def split_files(data: Path, split: str) -> list[Path]:
    if split.startswith("blind-"):
        return sorted((data / "blind").glob(f"{split[len('blind-'):]}-*.jsonl"))
    return [data / f"{split}.jsonl"]


def load_split(data: Path, split: str) -> list[dict]:
    files = split_files(data, split)
    if not files:
        raise SystemExit(f"no labeled files for split {split} under {data}")
    return [item for path in files for item in load_items(path)]


@dataclass
class Score:
    ref: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    false_pos: list[str] = field(default_factory=list)
    false_neg: list[str] = field(default_factory=list)

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


load_items = read_items  # one reader of labeled files (services/relevance/data.py)


def document(item: dict) -> Document:
    return Document(item["title"], item["summary"], item.get("source", ""), item["lang"])


def predict(presets: Presets, items: list[dict], engine: str = "reference") -> dict[str, set[str]]:
    """id -> the preset refs (`topic:fx`, `country:KZ`) that match it."""
    out: dict[str, set[str]] = {}
    if engine == "matcher":
        matcher = Matcher(presets)
        for p in presets:
            matcher.add(p.ref, p.ref)  # the rule `topic:fx` refers to the preset
        for item in items:
            out[item["id"]] = set(matcher.match(document(item)))
        return out
    rules = [(p.ref, presets.resolve(p.kind, p.name)) for p in presets]
    for item in items:
        doc = document(item)
        out[item["id"]] = {ref for ref, rule in rules if evaluate(rule, doc) is not None}
    return out


def score(presets: Presets, items: list[dict], engine: str = "reference") -> dict[str, Score]:
    predicted = predict(presets, items, engine)
    scores = {p.ref: Score(p.ref) for p in presets}
    for item in items:
        gold, got = set(item["labels"]), predicted[item["id"]]
        for ref, s in scores.items():
            if ref in got and ref in gold:
                s.tp += 1
            elif ref in got:
                s.fp += 1
                s.false_pos.append(item["id"])
            elif ref in gold:
                s.fn += 1
                s.false_neg.append(item["id"])
    return scores


def micro(scores: dict[str, Score], kind: str) -> Score:
    total = Score(f"{kind}:* (micro)")
    for ref, s in scores.items():
        if ref.startswith(kind + ":"):
            total.tp += s.tp
            total.fp += s.fp
            total.fn += s.fn
    return total


def table(split: str, items: list[dict], scores: dict[str, Score]) -> str:
    langs = ", ".join(f"{n} {lang}" for lang in LANGS if (n := sum(1 for i in items if i["lang"] == lang)))
    lines = [f"## {split}: {len(items)} items ({langs})", "",
             "| preset | support | TP | FP | FN | precision | recall | F1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = list(scores.values()) + [micro(scores, "topic"), micro(scores, "country")]
    for s in rows:
        lines.append(f"| {s.ref} | {s.support} | {s.tp} | {s.fp} | {s.fn} | "
                     f"{s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} |")
    return "\n".join(lines)


def by_language(presets: Presets, items: list[dict], engine: str) -> str:
    """F1 of every preset in every language (support in brackets): where a
    preset holds and where it does not."""
    langs = [lang for lang in LANGS if any(i["lang"] == lang for i in items)]
    per = {lang: score(presets, [i for i in items if i["lang"] == lang], engine) for lang in langs}
    lines = ["| preset | " + " | ".join(f"{lang} P / R / F1 (n)" for lang in langs) + " |",
             "|---|" + "---|" * len(langs)]
    refs = [p.ref for p in presets]
    for ref in refs + ["topic", "country"]:
        cells = []
        for lang in langs:
            s = per[lang][ref] if ref in per[lang] else micro(per[lang], ref)
            cells.append(f"{s.precision:.2f} / {s.recall:.2f} / {s.f1:.2f} ({s.support})")
        name = ref if ":" in ref else f"{ref}:* (micro)"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing(presets: Presets, items: list[dict]) -> str:
    """Per-article cost of matching every preset (best of 15 passes: the
    machine is shared), next to tokenising alone."""
    matcher = Matcher(presets)
    for p in presets:
        matcher.add(p.ref, p.ref)
    articles = [{"title": i["title"], "summary": i["summary"], "lang": i["lang"]} for i in items]

    def best(fn) -> float:
        runs = []
        for _ in range(15):
            t0 = time.perf_counter()
            for a in articles:
                fn(a)
            runs.append(time.perf_counter() - t0)
        return min(runs) / len(articles) * 1e6

    tokenise = best(Document.from_article)
    match = best(matcher.match)
    evidence = best(lambda a: [e.hits for e in matcher.match(a).values()])
    return (f"{len(articles)} articles, {len(presets)} presets, per article: tokenising {tokenise:.0f} us, "
            f"match {match:.0f} us, match + evidence {evidence:.0f} us")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=SPLITS, action="append", help="default: both")
    ap.add_argument("--presets", type=Path, default=DEFAULT_DIR, help="presets directory")
    ap.add_argument("--data", type=Path, default=LABELED_DIR, help="directory with SPLIT.jsonl")
    ap.add_argument("--engine", choices=("reference", "matcher"), default="reference")
    ap.add_argument("--keywords-only", action="store_true",
                    help="leave out the relevance models the topic presets name (`model:`): the keywords alone")
    ap.add_argument("--errors", action="store_true", help="list false positives and negatives")
    ap.add_argument("--timing", action="store_true", help="time the Matcher with the nine presets instead")
    ap.add_argument("--by-lang", action="store_true", help="also a table of every preset per language")
    args = ap.parse_args(argv)
    presets = load_presets(args.presets, models=not args.keywords_only)
    if args.timing:
        items = [i for split in args.split or SPLITS[:3] for i in load_split(args.data, split)]
        print(timing(presets, items))
        return 0
    if args.errors and set(args.split or ()) & set(FROZEN):
        ap.error(f"--errors is refused on {', '.join(FROZEN)}: they measure, nobody reads their errors")
    for split in args.split or [s for s in SPLITS if s not in FROZEN and split_files(args.data, s)]:
        items = load_split(args.data, split)
        scores = score(presets, items, args.engine)
        print(table(split, items, scores))
        if args.by_lang:
            print()
            print(by_language(presets, items, args.engine))
        if args.errors:
            by_id = {i["id"]: i for i in items}
            for s in scores.values():
                for kind, ids in (("FP", s.false_pos), ("FN", s.false_neg)):
                    for i in ids:
                        print(f"  {s.ref} {kind} {i}: {by_id[i]['title']} | {by_id[i]['summary']}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
