"""Benchmark: the indexed Matcher against the simple loop and the tokenising floor.

    .venv/bin/python benchmarks/match.py            # 1k, 10k, 100k rules (a few minutes)
    .venv/bin/python benchmarks/match.py --quick    # 1k and 10k rules
    .venv/bin/python benchmarks/match.py --million  # 1M rules (or --sizes 1000,1000000)
    .venv/bin/python benchmarks/match.py --reuters PATH/ReutersGrain-train.arff

Articles: 1,000 of them. With Reuters text (Debian's weka package, see
../shared/README.md; `--fetch-reuters` unpacks it under var/weka) 90% are
Reuters stories (title = first line, summary = the next ~90 words) and 10%
generated Russian items (pseudo-words with Russian endings); without it all are generated from a word list.

Rules: drawn from the articles' own vocabulary (words of 4+ letters that are
not stop words and occur at least twice, each equally likely: most
subscriptions are narrow). The mix: single terms and small ORs,
phrases taken from real adjacent word pairs, prefixes, title-only terms, AND
with NOT, NEAR, source:/lang: filters, country:/topic: presets and a few pure
negations (which the index must test on every article).

Figures: articles/s and p99 per article (tokenising included: matching takes
the raw article), build time (parse + index), memory (RSS growth while
building), the same loop with `evaluate()` per rule (timed on a sample of
articles and extrapolated where a full run would be too slow: the output says
so), and tokenising alone. Word caches are warmed first so both sides see the
steady state of a long-running worker.
"""
from __future__ import annotations

import argparse
import copy
import gc
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from itertools import accumulate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.rules import Document, Matcher, evaluate, parse  # noqa: E402
from services.rules.presets import default_presets, load_presets  # noqa: E402

DEFAULT_REUTERS = ROOT / "var" / "weka" / "usr" / "share" / "doc" / "weka" / "examples" / "ReutersGrain-train.arff"
STOP = set(
    """the and for that with from this have were will said would their which about there been
    after also into more than they them other year over last some could first this what when where
    while under such only said mln pct dlrs reuter week told because between those these should""".split()
)
RU_WORDS = """нефть нефти нефтью трубопровод трубопровода трубопроводе пошлина пошлины пошлин
экспорт экспорта экспортные импорт импорта тенге курс курса доллар доллара рубль рубля
банк банка банком национальный национального правительство правительства министр министерство
казахстан казахстана узбекистан узбекистана киргизия таджикистан туркменистан астана ташкент
бишкек душанбе ашхабад газ газа газопровод поставки поставок санкции санкций компания компании
решение решения повысил повысила снизил снизила тариф тарифы тарифов электроэнергию зерно
пшеница пшеницы урожай урожая цены цен рынок рынка торговля торговли таможенный таможенные""".split()


# -- articles ----------------------------------------------------------
def read_reuters(path: Path) -> list[str]:
    text = path.read_text(encoding="latin-1")
    data = text[text.index("@data") :]
    rows = re.findall(r"'((?:[^'\\]|\\.)*)',\s*\d", data)
    return [re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), r) for r in rows]


_SYLLABLES = [c + v for c in "бвгдзклмнпрстфхцчшщ" for v in "аеиоуыяю"]
_ENDINGS = ["", "а", "ы", "ов", "ами", "е", "ой", "ий", "ая", "ых", "ение", "ости"]


def russian_vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    """Cyrillic pseudo-words with Russian endings (no free Russian corpus is
    at hand): a large vocabulary, so Russian items are as varied as real ones."""
    stems = {"".join(rng.choices(_SYLLABLES, k=rng.randint(2, 3))) for _ in range(size // 3)}
    return sorted({s + e for s in sorted(stems) for e in rng.sample(_ENDINGS, 3)})


RU_VOCAB = russian_vocabulary(random.Random(7))
_RU_WEIGHTS = [1 / (i + 10) for i in range(len(RU_VOCAB))]  # Zipf-like


def russian_article(rng: random.Random) -> dict:
    n = rng.randint(60, 110)
    words = [rng.choice(RU_WORDS) if rng.random() < 0.1 else w
             for w in rng.choices(RU_VOCAB, _RU_WEIGHTS, k=n)]
    title = " ".join(words[:8]).capitalize()
    summary = ". ".join(" ".join(words[i : i + 12]).capitalize() for i in range(8, len(words), 12))
    return {"title": title, "summary": summary, "source": rng.choice(["kursiv", "tengrinews", "24kz"])}


def vocabulary_texts(articles: list[dict], reuters: Path | None) -> list[str]:
    """Text the rule words are drawn from: every Reuters file beside the
    given one (a larger vocabulary than the 1,000 articles), else the
    articles themselves; plus the Russian word list."""
    texts = [a["title"] + "\n" + a["summary"] for a in articles] + [" ".join(RU_WORDS + RU_VOCAB)]
    if reuters and reuters.exists():
        for path in sorted(reuters.parent.glob("Reuters*.arff")):
            texts += read_reuters(path)
    return texts


def make_articles(n: int, rng: random.Random, reuters: Path | None) -> tuple[list[dict], str]:
    if reuters and reuters.exists():
        stories = read_reuters(reuters)
        articles = []
        for i in range(n):
            if i % 10 == 9:
                articles.append(russian_article(rng))
                continue
            story = stories[i % len(stories)].strip()
            first, _, rest = story.partition("\n")
            summary = " ".join(rest.split()[: rng.randint(60, 120)])
            articles.append({"title": first.strip(), "summary": summary,
                             "source": rng.choice(["reuters", "reuters", "ap", "bloomberg"])})
        return articles, f"Reuters ({reuters.name}, {len(stories)} stories) + 10% generated Russian"
    vocab = [f"{a}{b}" for a in ("tar", "ex", "oil", "gas", "ban", "pip", "sanc", "cur", "gra", "whe",
                                 "ton", "pri", "mar", "tra", "duty", "rate")
             for b in ("iff", "port", "field", "line", "ks", "tion", "rency", "in", "at", "nes", "ce",
                       "ket", "de", "s", "ed", "ing", "er", "al", "ity", "ous")]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    articles = []
    for i in range(n):
        if i % 10 == 9:
            articles.append(russian_article(rng))
            continue
        words = rng.choices(vocab, weights, k=rng.randint(70, 130))
        articles.append({"title": " ".join(words[:9]), "summary": " ".join(words[9:]), "source": "reuters"})
    return articles, "generated English-like words + 10% generated Russian (no Reuters file)"


# -- rules -------------------------------------------------------------
class RuleMaker:
    def __init__(self, texts: list[str], rng: random.Random):
        self.rng = rng
        counts: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for text in texts:
            words = re.findall(r"\w+", text.lower())
            counts.update(words)
            pairs.update(zip(words, words[1:]))
        # Every distinct word is equally likely, so most rules are narrow, as
        # most subscriptions are. The 300 most frequent words are left out:
        # nobody subscribes to "reuters" or "said".
        common = {w for w, _ in counts.most_common(300)}
        words = [w for w in counts if len(w) >= 4 and w.isalpha() and w not in STOP and w not in common]
        self.words = words
        # Cumulative weights, computed once: `choices` would otherwise sum
        # the list on every draw (the same draws either way).
        self.weights = list(accumulate([1.0] * len(words)))
        good = [p for p in pairs if len(p[0]) >= 3 and len(p[1]) >= 3
                and p[0] not in common and p[1] not in common]
        self.pairs = good
        self.pair_weights = list(accumulate([1.0] * len(good)))

    def word(self) -> str:
        return self.rng.choices(self.words, cum_weights=self.weights)[0]

    def phrase(self) -> str:
        a, b = self.rng.choices(self.pairs, cum_weights=self.pair_weights)[0]
        return f'"{a} {b}"'

    def rule(self) -> str:
        r, w = self.rng.random(), self.word
        if r < 0.25:
            return w()
        if r < 0.40:
            return " OR ".join(w() for _ in range(self.rng.randint(2, 4)))
        if r < 0.52:
            return f"{self.phrase()} OR {w()}" if self.rng.random() < 0.3 else self.phrase()
        if r < 0.60:
            return f"{w()[: self.rng.randint(4, 6)]}* {w()}"
        if r < 0.70:
            return f"title:{w()} {w()}"
        if r < 0.80:
            return f"{w()} -({w()} OR {w()})" if self.rng.random() < 0.5 else f"{w()} {w()} -{w()}"
        if r < 0.85:
            return f"{w()} NEAR/{self.rng.randint(2, 8)} {w()}"
        if r < 0.92:
            return f"{self.rng.choice(['lang:ru', 'lang:en', 'source:reuters', 'source:kursiv'])} ({w()} OR {w()})"
        if r < 0.92 + 0.03:
            preset = self.rng.choice(["country:KZ", "country:UZ", "topic:tariffs", "topic:fx",
                                      "topic:sanctions", "topic:pipeline-disruption"])
            return f"{preset} {w()}" if self.rng.random() < 0.9 else preset
        if r < 0.9998:
            return f"{w()} OR {w()} OR {self.phrase()}"
        # 0.02%: no positive feature, so tested on every article (and matching
        # nearly all of them).
        return f"-{w()} -{w()}"


# -- measuring ---------------------------------------------------------
def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# Wall time by default; `--cpu` switches every timing to this process's CPU
# time, which moves less when other jobs share the machine.
CLOCK = time.perf_counter


def time_each(fn, items) -> list[float]:
    out = []
    clock = CLOCK
    for item in items:
        t0 = clock()
        fn(item)
        out.append(clock() - t0)
    return out


def best_of(runs: int, measure) -> list[float]:
    """The fastest of a few passes: the machine is shared, and the quietest
    pass is the closest to what the code costs."""
    return min((measure() for _ in range(runs)), key=sum)


def fetch_reuters() -> None:
    target = ROOT / "var" / "weka"
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "weka"], cwd=target, check=True)
    deb = sorted(target.glob("weka_*.deb"))[-1]
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1k and 10k rules only, smaller samples")
    ap.add_argument("--reuters", type=Path, default=DEFAULT_REUTERS, help="ReutersGrain-train.arff")
    ap.add_argument("--fetch-reuters", action="store_true", help="apt-get download weka into var/weka")
    ap.add_argument("--articles", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")],
                    help="comma-separated rule counts instead of the defaults, e.g. 1000000 (1M rules: about "
                         "2 GB of memory and a few minutes; the simple loop is then timed on 5 articles)")
    ap.add_argument("--million", action="store_true", help="the same as --sizes 1000000")
    ap.add_argument("--presets", type=Path, help="presets directory for topic:/country: (default: the bundled "
                                                 "ones; a fixed copy keeps two runs comparable while they are "
                                                 "being edited)")
    ap.add_argument("--cpu", action="store_true", help="time with this process's CPU time instead of wall time")
    args = ap.parse_args()
    if args.cpu:
        global CLOCK
        CLOCK = time.process_time
    if args.fetch_reuters:
        fetch_reuters()
    rng = random.Random(args.seed)
    articles, origin = make_articles(args.articles, rng, args.reuters)
    maker = RuleMaker(vocabulary_texts(articles, args.reuters), rng)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    if args.million:
        sizes = [1_000_000]
    elif args.sizes:
        sizes = args.sizes
    # Evaluations of the simple loop we are willing to time per size.
    simple_budget = 300_000 if args.quick else 1_000_000
    words = sum(len(Document.from_article(a).fields["summary"].norms) for a in articles) / len(articles)
    print(f"articles: {len(articles)} from {origin}; ~{words:.0f} summary words each")
    print(f"rule vocabulary: {len(maker.words)} words, {len(maker.pairs)} word pairs; python {sys.version.split()[0]}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")

    presets = default_presets() if args.presets is None else load_presets(args.presets)
    print(f"presets: {args.presets or 'bundled'}; timed by {'CPU' if args.cpu else 'wall'} time")
    docs = [Document.from_article(a) for a in articles]  # warms the word cache
    floor = best_of(3, lambda: time_each(Document.from_article, articles))
    floor_rate = len(articles) / sum(floor)
    print(f"\ntokenising alone (the floor): {floor_rate:,.0f} articles/s, p99 {p99(floor) * 1e3:.3f} ms")

    header = f"{'rules':>9} | {'match art/s':>11} {'p99 ms':>7} | {'+evidence art/s':>15} {'p99 ms':>7}" \
             f" | {'+terms art/s':>12} {'p99 ms':>7}" \
             f" | {'build s':>7} {'mem MB':>6} {'cand/art':>8} {'match/art':>9}" \
             f" | {'simple art/s':>12} {'p99 ms':>8} {'sample':>6} | {'speed-up':>8} {'x floor':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    in_loop: list[tuple[int, float]] = []
    updates: list[tuple[int, float, float]] = []
    for size in sizes:
        queries = [maker.rule() for _ in range(size)]
        gc.collect()
        rss0 = rss_mb()
        t0 = CLOCK()
        rules = [parse(q, presets) for q in queries]
        matcher = Matcher(presets)
        matcher.add_many(enumerate(rules))
        build = CLOCK() - t0
        gc.collect()
        mem = rss_mb() - rss0
        # The row comes after minutes of matching at 1M rules: say this now.
        print(f"  ({size:,} rules: built in {build:.1f} s, RSS +{mem:,.0f} MB)", file=sys.stderr, flush=True)
        # What a long-running worker should do once its rules are loaded:
        # move them out of the collector's sight (see docs/performance-match.md).
        gc.freeze()

        matched = []
        indexed = best_of(3, lambda: time_each(lambda a: matched.append(len(matcher.match(a))), articles))
        rate = len(articles) / sum(indexed)

        def with_evidence(article):
            return [e.hits for e in matcher.match(article).values()]

        full = best_of(3, lambda: time_each(with_evidence, articles))
        # What `tulpar classify` reads now: every match's terms, in bulk.
        terms = best_of(3, lambda: time_each(lambda a: matcher.match(a).terms(), articles))

        def tokenising_share() -> float:
            # Tokenising timed inside the match loop: the matcher's data
            # push the word cache out of the CPU caches, so it costs more
            # here than alone.
            spent, clock = 0.0, CLOCK
            for article in articles:
                t0 = clock()
                doc = Document.from_article(article)
                spent += clock() - t0
                matcher.match(doc)
            return spent / len(articles)

        in_loop.append((size, min(tokenising_share() for _ in range(3))))

        # A subscription changing while the worker runs: add, then remove,
        # 200 rules one at a time, matching an article after each change
        # (the changed postings are rebuilt on that match).
        # Own random stream, so the rule sets above stay the same.
        changes = copy.copy(maker)
        changes.rng = random.Random(size)
        extra = [changes.rule() for _ in range(200)]
        clock = CLOCK
        t0 = clock()
        for i, query in enumerate(extra):
            matcher.add(("extra", i), query)
            matcher.match(articles[i])
        t1 = clock()
        for i in range(len(extra)):
            matcher.remove(("extra", i))
            matcher.match(articles[i])
        t2 = clock()
        base = sum(indexed[: len(extra)])
        updates.append((size, (t1 - t0 - base) / len(extra), (t2 - t1 - base) / len(extra)))
        full_rate = len(articles) / sum(full)
        candidates = sum(len(matcher.candidates(d)) for d in docs[:200]) / min(200, len(docs))

        # At 1M rules one article takes the simple loop ~20 s: two will do.
        sample_n = max(5 if size < 1_000_000 else 2, min(len(articles), simple_budget // size))
        sample = articles[:: max(1, len(articles) // sample_n)][:sample_n]

        def simple(article):
            doc = Document.from_article(article)
            return [i for i, rule in enumerate(rules) if evaluate(rule, doc) is not None]

        expected_all: list[list[int]] = []
        slow = time_each(lambda a: expected_all.append(simple(a)), sample)  # one pass: it is slow enough
        # The index must give exactly what the simple loop gives (rule ids
        # are the keys here: `add_many(enumerate(rules))`).
        for article, expected in zip(sample, expected_all):
            got = sorted(matcher.match(article))
            if got != expected:
                sys.exit(f"MISMATCH at {size:,} rules on {article['title'][:60]!r}: "
                         f"index only {sorted(set(got) - set(expected))[:10]}, "
                         f"simple only {sorted(set(expected) - set(got))[:10]}")
        slow_rate = len(sample) / sum(slow)
        note = "" if len(sample) == len(articles) else "*"
        print(f"{size:>9,} | {rate:>11,.0f} {p99(indexed) * 1e3:>7.2f} | {full_rate:>15,.0f} {p99(full) * 1e3:>7.2f}"
              f" | {len(articles) / sum(terms):>12,.0f} {p99(terms) * 1e3:>7.2f}"
              f" | {build:>7.2f} {mem:>6.0f} {candidates:>8,.0f} {sum(matched) / len(matched):>9.1f}"
              f" | {slow_rate:>12,.1f} {p99(slow) * 1e3:>8.1f} {len(sample):>5}{note:1}"
              f" | {full_rate / slow_rate:>7,.0f}x {floor_rate / rate:>6.1f}x")
        del matcher, rules
        gc.unfreeze()
        gc.collect()
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end (other processes share the machine)")
    print(f"peak RSS of this process: {peak_rss_mb():,.0f} MB")
    print(f"tokenising alone: {sum(floor) / len(floor) * 1e6:.0f} us/article; inside the match loop: "
          + ", ".join(f"{t * 1e6:.0f} us at {size:,} rules" for size, t in in_loop))
    print("one rule added / removed (parse + index, match time taken off): "
          + ", ".join(f"{a * 1e3:.2f} / {r * 1e3:.2f} ms at {size:,} rules" for size, a, r in updates))
    print("match: Matcher.match() (which rules match; evidence is worked out when read)")
    print("+evidence: the same, then reading every match's evidence (hits with offsets)")
    print("+terms: the same, then every match's terms in bulk (Matches.terms(): what `tulpar classify` prints)")
    print("* simple loop (evaluate() per rule, evidence included) timed on that many evenly spaced")
    print("  articles and extrapolated to articles/s")
    print("speed-up = +evidence vs the simple loop (both produce evidence for every match)")
    print("x floor = match time per article / tokenising time per article (target <= 3 at 10k)")


if __name__ == "__main__":
    main()
