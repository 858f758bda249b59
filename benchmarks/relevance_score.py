"""Benchmark: what one relevance-model score costs.

    .venv/bin/python benchmarks/relevance_score.py

Scores every opened labeled item (short news items, services/relevance/data.py)
and the 1,000 articles of benchmarks/match.py (Reuters stories when
`match.py --fetch-reuters` has unpacked them, else generated text) with each
shipped model. The word caches are warmed first, as in a long-running
worker, and each article's vector cache is cleared before it is timed: the
first model to see an article pays for its vector, the others reuse it (as
the presets' vetoes do on one article). Figures: microseconds per article by
CPU time, for the first model and for each further one.
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
from services.relevance.data import TOPICS, allowed_files, load_labeled  # noqa: E402
from services.relevance.model import Model  # noqa: E402
from services.relevance.store import MODELS_DIR, model_path  # noqa: E402


def timed(models: list[Model], articles: list[dict]) -> tuple[float, float]:
    """(us per article for the first model, us per further model), each
    article scored by every model in turn, as the presets do."""
    texts = [{"title": a.get("title", ""), "summary": a.get("summary", "")} for a in articles]
    for t in texts:  # warm the per-word caches
        models[0].score(t)
    clock, best = time.process_time, None
    for _ in range(3):
        F._vector_ids.cache_clear()
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


def main() -> None:
    models = [Model.load(model_path(topic, MODELS_DIR)) for topic in TOPICS]
    labeled = load_labeled(allowed_files())
    articles, origin = match.make_articles(1000, random.Random(4), match.DEFAULT_REUTERS)
    print(f"{len(models)} models; python {sys.version.split()[0]}")
    for name, items in ((f"labeled items ({len(labeled):,}, opened sets)", labeled),
                        (f"match.py articles ({len(articles):,}, {origin})", articles)):
        first, rest = timed(models, items)
        print(f"{name}: {first:.0f} us the first model, {rest:.0f} us each further model")


if __name__ == "__main__":
    main()
