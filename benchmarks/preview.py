"""Benchmark: rule preview over 100k stored articles (services/news/preview.py).

    .venv/bin/python benchmarks/preview.py                   # 100k articles over 90 days, SQLite in a temp dir
    .venv/bin/python benchmarks/preview.py --articles 20000 --runs 10
    .venv/bin/python benchmarks/preview.py --database-url postgresql://...   # an empty, migrated database
    .venv/bin/python benchmarks/preview.py --check           # also compare with a plain scan (slow)

Articles: the Reuters stories of Debian's weka package (ReutersGrain train +
test, ~2,150 distinct; `benchmarks/match.py --fetch-reuters` unpacks them
under var/weka), varied to reach --articles: each copy takes another slice of
its story as the summary (60-120 words), some copies name a Central Asian
country, city or the tenge instead of the country the story named, and 10%
are generated Russian articles (match.py's). They are spread evenly over 90
days in polls of 1-40 articles sharing one `stored_at`, as the poller stores
them, and inserted straight into the `article` table.

Printed: the first refresh (the index built from the table), its memory (the
index's own estimate, and the growth of the process's RSS), a refresh that
reads 1k new articles, and for a table of queries the 30-day preview latency
(p50/p95 over --runs calls, index warm) with the number of articles the index
decided alone ("sure"), the ones the Matcher had to decide ("verify"), and
the matches. `verify_all` times the same with every candidate decided by the
Matcher (what a pure over-approximating index would cost).
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import match  # noqa: E402  (Reuters reader, Russian article generator)
from services.news import preview as pv  # noqa: E402
from services.rules import parse  # noqa: E402
from services.settings import Settings  # noqa: E402
from services.store import Store, schema  # noqa: E402
from services.store.db import _insert  # noqa: E402
from services.store.models import StoredArticle  # noqa: E402

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
QUERIES = [
    ("rare term", "sorghum"),
    ("common term", "said"),
    ("phrase", '"united states"'),
    ("preset", "topic:tariffs AND country:KZ"),
    ("NEAR", "wheat NEAR/5 export*"),
    ("prefix", "export*"),
    ("Russian prefix", "пошлин* OR казахстан*"),
    ("negation", "-wheat lang:en"),
]
PLACES = ["Kazakhstan", "Uzbekistan", "Kyrgyzstan", "Tajikistan", "Turkmenistan", "Almaty", "Astana",
          "Tashkent", "Bishkek", "Kazakh", "tenge"]
COUNTRY_RE = re.compile(r"\b(Soviet Union|U\.S\.S\.R\.|Soviet|Canada|Australia|Argentina|China|Egypt|Brazil)\b")


def stories(reuters: Path) -> list[str]:
    files = [reuters.parent / "ReutersGrain-train.arff", reuters.parent / "ReutersGrain-test.arff"]
    if not all(p.exists() for p in files):
        raise SystemExit(f"no Reuters files at {reuters.parent}: run benchmarks/match.py --fetch-reuters")
    return list(dict.fromkeys(s.strip() for p in files for s in match.read_reuters(p) if s.strip()))


def articles(n: int, rng: random.Random, texts: list[str], start: datetime, end: datetime, first_id: int = 0):
    """Rows for the article table, stored_at spread evenly over [start, end)."""
    rows = []
    span = (end - start) / n
    i = 0
    while i < n:
        poll = min(rng.randint(1, 40), n - i)
        at = start + span * i
        source = rng.choice(["reuters", "reuters", "ap", "bloomberg", "kursiv", "kun.uz"])
        for _ in range(poll):
            num = first_id + i
            if num % 10 == 9:
                a = match.russian_article(rng)
                title, summary, lang = a["title"], a["summary"], "ru"
            else:
                story = texts[num % len(texts)]
                first, _, rest = story.partition("\n")
                words = rest.split()
                size = rng.randint(60, 120)
                offset = rng.randint(0, max(0, len(words) - size))
                summary = " ".join(words[offset:offset + size])
                title = first.strip()
                if rng.random() < 0.15:
                    place = rng.choice(PLACES)
                    title, summary = COUNTRY_RE.sub(place, title), COUNTRY_RE.sub(place, summary)
                lang = rng.choice([None, None, "en"])
            rows.append({"source": source, "article_id": f"{source}-{num}", "title": title, "summary": summary,
                         "link": f"https://example.com/{num}", "published": at - timedelta(minutes=rng.randint(0, 90)),
                         "countries": "", "stored_at": at, "language": lang})
            i += 1
    return rows


def insert(store: Store, rows: list[dict]) -> None:
    for i in range(0, len(rows), 5000):
        with store.sessions.begin() as s:
            s.execute(_insert(s, StoredArticle).on_conflict_do_nothing(), rows[i:i + 5000])


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30, help="the preview window")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--verify-runs", type=int, default=1, help="runs of each query with verify_all")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--reuters", type=Path, default=match.DEFAULT_REUTERS)
    ap.add_argument("--database-url", help="an empty database to use (default: SQLite in a temp dir)")
    ap.add_argument("--check", action="store_true", help="compare each answer with a plain scan")
    args = ap.parse_args()
    settings = Settings(retention_days=90)
    rng = random.Random(args.seed)
    texts = stories(args.reuters)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/preview.db"
        schema.upgrade(url)
        store = Store(url)
        t0 = time.perf_counter()
        insert(store, articles(args.articles, rng, texts, NOW - timedelta(days=90), NOW))
        print(f"{args.articles:,} articles from {len(texts):,} Reuters stories (+10% generated Russian) over 90 days "
              f"in {store.engine.dialect.name}: inserted in {time.perf_counter() - t0:.1f} s")
        print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

        gc.collect()
        before = rss_mb()
        index = pv.index_for(store)
        t0 = time.perf_counter()
        index.refresh(store, NOW, settings.retention_days)
        build = time.perf_counter() - t0
        gc.collect()
        grown = rss_mb() - before
        mem = index.memory()
        print(f"\nindex build (first refresh, {len(index.keys):,} articles, {len(index.words):,} words): {build:.2f} s")
        print(f"memory: index estimate {mem['total'] / 1e6:.0f} MB (postings and columns "
              f"{mem['postings_and_columns'] / 1e6:.0f}, words {mem['words'] / 1e6:.0f}, keys {mem['keys'] / 1e6:.0f}, "
              f"tables {mem['tables'] / 1e6:.0f}); process RSS grew {grown:.0f} MB")

        later = NOW + timedelta(minutes=30)
        insert(store, articles(1000, rng, texts, NOW + timedelta(minutes=1), later, first_id=args.articles))
        t0 = time.perf_counter()
        added = index.refresh(store, later, settings.retention_days)
        print(f"refresh reading {added:,} new articles: {(time.perf_counter() - t0) * 1000:.0f} ms")
        t0 = time.perf_counter()
        index.refresh(store, later, settings.retention_days)
        print(f"refresh with nothing new: {(time.perf_counter() - t0) * 1000:.1f} ms")
        t0 = time.perf_counter()
        index.compact(later, settings.retention_days)
        print(f"compaction (rebuild of the arrays): {(time.perf_counter() - t0) * 1000:.0f} ms")

        since = later - timedelta(days=args.days)
        in_window = int((index_first_seen(index) >= pv._us(since)).sum())
        print(f"\n{args.days}-day preview over {in_window:,} articles in the window, {args.runs} runs each "
              f"(ms; sure/verify: articles the index decided / the Matcher decided)")
        print(f"{'query':<16} {'':<34} {'p50':>7} {'p95':>7} {'sure':>7} {'verify':>7} {'matches':>7} "
              f"{'verify_all p50':>15}")
        for name, query in QUERIES:
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                answer = pv.preview(store, query, args.days, later, settings)
                times.append((time.perf_counter() - t0) * 1000)
            with index.lock:
                sure, maybe = index.candidates(parse(query), since, later)
            slow = []
            for _ in range(args.verify_runs):
                t0 = time.perf_counter()
                exact = pv.preview(store, query, args.days, later, settings, verify_all=True)
                slow.append((time.perf_counter() - t0) * 1000)
            assert exact == answer, query
            total = sum(answer["per_day"].values())
            print(f"{name:<16} {query:<34} {statistics.median(times):7.1f} {pct(times, 95):7.1f} {len(sure):7,} "
                  f"{len(maybe):7,} {total:7,} {statistics.median(slow):15.1f}")
            if args.check:
                t0 = time.perf_counter()
                assert pv.scan(store, query, args.days, later, settings) == answer, query
                print(f"{'':<16} same as a plain scan ({(time.perf_counter() - t0):.1f} s)")
        store.dispose()


def index_first_seen(index):
    import numpy as np

    return np.array(index.first_seen, dtype=np.int64)


if __name__ == "__main__":
    main()
