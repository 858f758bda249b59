"""Benchmark: `tulpar classify` at 100k rules, run as a user runs it.

    .venv/bin/python benchmarks/classify.py                  # 100k rules, ~1,900 articles
    .venv/bin/python benchmarks/classify.py --rules 10000
    .venv/bin/python benchmarks/classify.py --output var/classify.out   # keep stdout (to diff)
    .venv/bin/python benchmarks/classify.py --presets DIR     # pass --presets DIR to the command
    .venv/bin/python benchmarks/classify.py --jobs 1          # pass --jobs 1 (default: the command's own)

Inputs, written to a temp dir (deterministic for a given --seed):

- RULES.yaml: --rules {name, query} pairs drawn by `benchmarks/match.py`'s
  RuleMaker (the same mix and vocabulary as the matcher benchmark);
- ARTICLES.jsonl: --articles distinct Reuters stories from Debian's weka
  package (ReutersGrain train + test; `match.py --fetch-reuters` unpacks
  them), title = first line, summary = the next 60-120 words as in match.py;
  without them, match.py's generated articles (the output says which).

Then it runs the real command, `python -m services classify --rules RULES.yaml
ARTICLES.jsonl` (what the `tulpar` script runs), in a child process, twice:

1. with an empty ARTICLES file: the time to load and check the rules (and
   start Python) is the whole run;
2. with the articles: time to the first output line, total time, and
   articles/s after the first line (the classifying phase, when the command
   streams its output; if it writes everything at the end this is
   meaningless and "classify art/s" is the figure to read).

`classify art/s` = articles / (total time of run 2 - total time of run 1);
the same from the child's CPU time is printed too (steadier when other jobs
share the machine). Peak RSS is the child's, from wait4(). The sha256 of stdout lets two runs
(before/after a change) be compared for byte-identical output.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import match  # noqa: E402  (benchmarks/match.py: articles and rule generator)


def reuters_articles(n: int, rng: random.Random, reuters: Path) -> tuple[list[dict], str] | None:
    files = [reuters.parent / "ReutersGrain-train.arff", reuters.parent / "ReutersGrain-test.arff"]
    if not all(p.exists() for p in files):
        return None
    # Corn shares its stories with Grain: Grain train + test are the
    # distinct stories there are (2,151 with text).
    stories = list(dict.fromkeys(s.strip() for p in files for s in match.read_reuters(p) if s.strip()))
    articles = []
    for story in stories[:n]:
        first, _, rest = story.partition("\n")
        summary = " ".join(rest.split()[: rng.randint(60, 120)])
        articles.append({"title": first.strip(), "summary": summary,
                         "source": rng.choice(["reuters", "reuters", "ap", "bloomberg"])})
    return articles, f"Reuters (ReutersGrain train + test, {len(stories)} distinct stories)"


def write_inputs(folder: Path, n_rules: int, n_articles: int, seed: int, reuters: Path) -> tuple[Path, Path, str]:
    rng = random.Random(seed)
    found = reuters_articles(n_articles, rng, reuters)
    articles, origin = found if found else match.make_articles(n_articles, rng, None)
    maker = match.RuleMaker(match.vocabulary_texts(articles, reuters), rng)
    rules = folder / "rules.yaml"
    with rules.open("w", encoding="utf-8") as f:
        for i in range(n_rules):
            # A JSON string is a YAML double-quoted scalar.
            f.write(f"- {{name: r{i}, query: {json.dumps(maker.rule(), ensure_ascii=False)}}}\n")
    docs = folder / "articles.jsonl"
    with docs.open("w", encoding="utf-8") as f:
        for i, article in enumerate(articles):
            # Mixed id types: the command must keep each as given.
            record = {"id": i if i % 2 else f"a{i}", **article}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return rules, docs, origin


def _tree_pss_mb(pid: int) -> float:
    """PSS of a process and its children (`--jobs` forks), from smaps_rollup:
    shared pages split between the sharers, so the sum is what the tree takes."""
    pids, total = [pid], 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def run(rules: Path, articles: Path, keep: Path | None, presets: Path | None, jobs: int | None = None) -> dict:
    """One run of the command; times from just before the child starts."""
    cmd = [sys.executable, "-m", "services", "classify", "--rules", str(rules), str(articles)]
    if presets:
        cmd += ["--presets", str(presets)]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    digest = hashlib.sha256()
    lines = 0
    first = None
    out = keep.open("wb") if keep else None
    t0 = time.perf_counter()
    # From the root of this checkout, so `-m services` is this tree's code.
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    r = child.stdout.fileno()
    peak_pss = [0.0]
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            peak_pss[0] = max(peak_pss[0], _tree_pss_mb(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        while chunk := os.read(r, 1 << 20):
            if first is None and b"\n" in chunk:
                first = time.perf_counter() - t0
            lines += chunk.count(b"\n")
            digest.update(chunk)
            if out:
                out.write(chunk)
    finally:
        done.set()
        sampler.join()
        child.stdout.close()
        if out:
            out.close()
    # wait4 rather than Popen.wait: it also gives this child's peak RSS.
    _, status, usage = os.wait4(child.pid, 0)
    total = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"the command failed: {' '.join(cmd)}")
    return {"total": total, "first": first, "lines": lines, "sha": digest.hexdigest()[:16],
            "peak_mb": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime, "pss_mb": peak_pss[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=100_000)
    ap.add_argument("--articles", type=int, default=1_900)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--reuters", type=Path, default=match.DEFAULT_REUTERS, help="ReutersGrain-train.arff")
    ap.add_argument("--output", type=Path, help="also write the command's stdout here")
    ap.add_argument("--presets", type=Path, help="the command's --presets (a fixed copy keeps two runs comparable "
                                                 "while the bundled presets are being edited)")
    ap.add_argument("--keep", type=Path, help="write the inputs into this folder (kept)")
    ap.add_argument("--jobs", type=int, help="the command's --jobs (default: not passed)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        rules, articles, origin = write_inputs(folder, args.rules, args.articles, args.seed, args.reuters)
        n_articles = sum(1 for _ in articles.open(encoding="utf-8"))
        print(f"inputs: {args.rules:,} rules ({rules.stat().st_size / 1e6:.1f} MB YAML), {n_articles:,} articles "
              f"from {origin}; written in {time.perf_counter() - t0:.1f} s")
        print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
        empty = folder / "empty.jsonl"
        empty.write_text("", encoding="utf-8")
        load = run(rules, empty, None, args.presets, args.jobs)
        full = run(rules, articles, args.output, args.presets, args.jobs)
    after = full["total"] - (full["first"] or full["total"])
    print(f"\nrules only (empty ARTICLES): {load['total']:.2f} s, peak RSS {load['peak_mb']:.0f} MB")
    print(f"with articles: first line after {full['first'] or float('nan'):.2f} s, total {full['total']:.2f} s, "
          f"peak RSS {full['peak_mb']:.0f} MB (largest process), peak PSS of the process tree "
          f"{full['pss_mb']:.0f} MB (sampled every 0.2 s)")
    print(f"articles/s after the first line: {n_articles / after if after > 0 else float('nan'):,.0f}")
    print(f"classify art/s (articles / (total - rules only)): {n_articles / (full['total'] - load['total']):,.0f}")
    # CPU time moves less than wall time when other jobs share the machine.
    print(f"CPU time of the child{' and its workers' if args.jobs != 1 else ''}: rules only {load['cpu']:.2f} s, with articles {full['cpu']:.2f} s; "
          f"classify art/s by CPU time: {n_articles / (full['cpu'] - load['cpu']):,.0f}")
    print(f"output: {full['lines']:,} lines, {full['lines'] / n_articles:.1f} matches per article, "
          f"sha256 {full['sha']}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
