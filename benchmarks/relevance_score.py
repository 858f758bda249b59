"""Benchmark: what the relevance models' scores of an article cost.

    .venv/bin/python benchmarks/relevance_score.py

Scores every opened labeled item (short news items, services/relevance/data.py)
and the 1,000 articles of benchmarks/match.py (Reuters stories when
`match.py --fetch-reuters` has unpacked them, else generated text) with each
shipped model. The word cache is warmed first, as in a long-running worker,
and the per-article caches are cleared before a run: an article comes round
again only after hundreds of others have pushed it out. Figures:
microseconds per article by CPU time (best of 3 runs),

- one by one (`Model.score`, each model its own Scorer): the first model to
  see an article pays for its slots, the others reuse them;
- all at once (one `Scorer` of the four, as `Document.verdict` asks).

Word pairs are hashed anew for every article (a CRC-32 each, features.py
says why), so a long article costs more than its share of cached words.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import match  # noqa: E402
from services.relevance import features as F  # noqa: E402
from services.relevance import scorer as S  # noqa: E402
from services.relevance.data import TOPICS, allowed_files, load_labeled  # noqa: E402
from services.relevance.model import Model  # noqa: E402
from services.relevance.store import MODELS_DIR, model_path  # noqa: E402

RUNS = 3


def _clear_articles() -> None:
    S.article_slots.cache_clear()
    F._vector_ids.cache_clear()


def one_by_one(models: list[Model], texts: list[dict]) -> tuple[float, float]:
    """(us per article for the first model, us per further model), each
    article scored by every model in turn."""
    clock, best = time.process_time, None
    for _ in range(RUNS):
        _clear_articles()
        first = rest = 0.0
        for t in texts:
            t0 = clock()
            models[0].score(t)
            t1 = clock()
            for m in models[1:]:
                m.score(t)
            first += t1 - t0
            rest += clock() - t1
        run = (first / len(texts), rest / len(texts) / max(1, len(models) - 1))
        best = run if best is None or run[0] < best[0] else best
    return best[0] * 1e6, best[1] * 1e6


def all_at_once(scorer: S.Scorer, texts: list[dict]) -> float:
    """us per article for every model's score by one Scorer."""
    clock, best = time.process_time, None
    for _ in range(RUNS):
        _clear_articles()
        t0 = clock()
        for t in texts:
            scorer.scores(t)
        run = (clock() - t0) / len(texts)
        best = run if best is None else min(best, run)
    return best * 1e6


def _shape(texts: list[dict]) -> str:
    ws = pairs = 0
    for t in texts:
        w, p = F._gather(t["title"], t["summary"])
        ws, pairs = ws + len(w), pairs + len(p)
    return f"{ws / len(texts):.0f} words, {pairs / len(texts):.0f} word pairs an article"


def main() -> None:
    models = [Model.load(model_path(topic, MODELS_DIR)) for topic in TOPICS]
    scorer = S.Scorer(models)
    labeled = load_labeled(allowed_files())
    articles, origin = match.make_articles(1000, random.Random(4), match.DEFAULT_REUTERS)
    print(f"{len(models)} models; python {sys.version.split()[0]}")
    for name, items in ((f"labeled items ({len(labeled):,}, opened sets)", labeled),
                        (f"match.py articles ({len(articles):,}, {origin})", articles)):
        texts = [{"title": a.get("title", ""), "summary": a.get("summary", "")} for a in items]
        for t in texts:  # warm the word cache
            scorer.scores(t)
        first, rest = one_by_one(models, texts)
        together = all_at_once(scorer, texts)
        print(f"{name}, {_shape(texts)}:\n"
              f"  one by one: {first:.0f} us the first model, {rest:.0f} us each further model "
              f"({first + rest * (len(models) - 1):.0f} us all {len(models)})\n"
              f"  all at once: {together:.0f} us all {len(models)}")


if __name__ == "__main__":
    main()
