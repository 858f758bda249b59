"""Rule preview: what a rule would have matched among the articles stored in
the last N days, with the matched terms and a count per day (docs/preview.md).

    preview(store, 'topic:tariffs country:KZ', 30, now, settings)
    -> {"matches": [{"article": {...}, "terms": ["tariff*", ...]}, ...],
        "per_day": {"2026-11-01": 3, ...}}

Tokenising every stored article for each request is far too slow (about
0.1 ms an article), so an in-process index over the stored articles is kept
per Store (`ArticleIndex`), refreshed incrementally on each preview: it maps
every normalised word to the numbers of the articles that hold it (in any
field, and in the title), in compact int32 arrays. A rule is worked out over
those sets in three values per article -- surely matches, may match, surely
not:

- a bare term (by stem), a prefix, a one-word phrase, `source:` and `lang:`
  are exact set look-ups: the index holds the very words the matcher
  compares (Document's own tokens), so "in the set" is "matches";
- a phrase of several words and NEAR need word positions, which the index
  does not keep: the articles holding all the words *may* match;
- AND, OR, NOT and presets combine those (NOT swaps "surely" and "maybe").

Only the "may match" articles are read back and decided by the real
`Matcher` (the same one the workers use); the shown matches are always
re-checked by it, which also gives their terms (`Matches.terms`, what
`tulpar classify` prints). With `verify_all=True` every candidate is decided
by the Matcher (slower; the tests compare both with a plain scan).
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from array import array
from bisect import bisect_left
from itertools import islice
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np

from services import rules
from services.accounts.errors import Invalid
from services.accounts.subscriptions import check_query
from services.news import archive
from services.news.archive import Archived, Key
from services.rules import Document, Matcher
from services.rules.nodes import And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term
from services.store import Store

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
MAX_MATCHES = 100            # matches listed; per_day counts them all
# Articles committed with a `stored_at` a little before the newest one read
# (two pollers at once, clocks a little apart) are still found: each refresh
# reads again from this long before the newest stored_at it saw.
OVERLAP = timedelta(minutes=10)
MIN_DELTA = 5000             # articles appended before the arrays are rebuilt compactly
# A late commit and a deleted row at once leave the count unchanged: the keys
# are compared with the table this often anyway (about 0.3 s at 100k).
RESYNC_EVERY = 3600.0        # seconds

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAY_US = 86_400_000_000
_MATCH_BATCH = 500


def _us(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("naive datetime; pass an aware UTC time")
    return (t - _EPOCH) // timedelta(microseconds=1)


# --- the API ------------------------------------------------------------------

def check_days(days: Any, retention_days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= retention_days:
        raise Invalid(f"days is a whole number from 1 to {retention_days} (articles are kept "
                      f"{retention_days} days)", field="days")
    return days


def preview(store: Store, query: str, days: int, now: datetime, settings, *, verify_all: bool = False,
            limit: int = MAX_MATCHES) -> dict:
    """What `query` matches among the articles first seen from `now - days`
    to `now` (both ends included): the newest `limit` matches with their
    terms, and the count of all matches per first-seen day (UTC). A bad
    query raises Invalid exactly as check_query does; bad `days` is Invalid
    with field `days`."""
    query = check_query(query)
    rule = rules.parse(query)
    retention = settings.retention_days
    days = check_days(days, retention)
    _us(now)
    since = now - timedelta(days=days)
    index = index_for(store)
    with index.lock:
        index.refresh(store, now, retention)
        sure, maybe = index.candidates(rule, since, now, verify_all=verify_all)
        sure_keys, sure_fs = index.snapshot(sure)
        maybe_keys, maybe_fs = index.snapshot(maybe)
    matcher = Matcher()
    matcher.add("q", rule)
    found = _decide(store, matcher, maybe_keys)
    keys = sure_keys + [k for k, ok in zip(maybe_keys, found) if ok]
    fs = np.concatenate([sure_fs, maybe_fs[np.asarray(found, dtype=bool)] if len(found) else maybe_fs[:0]])
    return _answer(store, matcher, keys, fs, limit, checked=set(maybe_keys))


def scan(store: Store, query: str, days: int, now: datetime, settings, *, limit: int = MAX_MATCHES) -> dict:
    """The same answer without the index: every article in the window is
    read and evaluated (the reference the tests compare `preview` with)."""
    query = check_query(query)
    rule = rules.parse(query)
    days = check_days(days, settings.retention_days)
    since = now - timedelta(days=days)
    keys, fs = [], []
    for page in archive.pages(store, since):
        for a in page:
            if a.first_seen <= now and rules.evaluate(rule, Document.from_article(a)) is not None:
                keys.append(a.key)
                fs.append(_us(a.first_seen))
    matcher = Matcher()
    matcher.add("q", rule)
    return _answer(store, matcher, keys, np.array(fs, dtype=np.int64), limit, checked=set(keys))


def _decide(store: Store, matcher: Matcher, keys: list[Key]) -> list[bool]:
    """The real matcher's verdict on each article (False when it is gone)."""
    out: list[bool] = []
    for i in range(0, len(keys), _MATCH_BATCH):
        part = keys[i:i + _MATCH_BATCH]
        rows = archive.fetch(store, part)
        for key in part:
            row = rows.get(key)
            out.append(row is not None and len(matcher.match(row)) > 0)
    return out


def _answer(store: Store, matcher: Matcher, keys: list[Key], fs: np.ndarray, limit: int,
            checked: set[Key]) -> dict:
    """Newest `limit` matches (ties by source, then id) with their terms, and
    per_day over all of them. Every listed article is matched again by the
    Matcher, which gives its terms; one the index counted as sure but the
    Matcher refuses (which would be a bug) or that was purged meanwhile is
    dropped from both parts."""
    dropped: list[int] = []
    listed: list[dict] = []
    order = _newest_first(keys, fs, limit)
    while len(listed) < limit:
        part = list(islice(order, limit - len(listed)))
        if not part:
            break
        rows = archive.fetch(store, [keys[i] for i in part])
        for i in part:
            row = rows.get(keys[i])
            terms = _terms(matcher, row) if row is not None else None
            if terms is None:
                if row is not None and keys[i] not in checked:
                    log.warning("preview: the index and the matcher disagree on %r", keys[i])
                dropped.append(i)
                continue
            listed.append({"article": row.to_json(), "terms": list(terms)})
    if dropped:
        keep = np.ones(len(fs), dtype=bool)
        keep[dropped] = False
        fs = fs[keep]
    return {"matches": listed, "per_day": per_day(fs)}


def _terms(matcher: Matcher, row: Archived) -> tuple[str, ...] | None:
    found = matcher.match(row).terms()
    return found[0][1] if found else None


def _newest_first(keys: list[Key], fs: np.ndarray, first: int):
    """Indexes of the matches, newest first, ties by key. Only the newest
    `first` (and their ties) are sorted up front: a preview seldom needs
    more; the rest follow, sorted, if it does."""
    n = len(fs)
    def order(idx):
        return sorted(idx.tolist(), key=lambda i: (-int(fs[i]), keys[i]))
    if n <= first:
        yield from order(np.arange(n))
        return
    kth = np.partition(fs, n - first)[n - first]
    yield from order(np.flatnonzero(fs >= kth))
    yield from order(np.flatnonzero(fs < kth))


def per_day(fs: np.ndarray) -> dict[str, int]:
    """Counts by UTC day of first-seen times (microseconds since the epoch),
    days with matches only, in date order."""
    if not len(fs):
        return {}
    days, counts = np.unique(np.asarray(fs, dtype=np.int64) // _DAY_US, return_counts=True)
    return {(date(1970, 1, 1) + timedelta(days=int(d))).isoformat(): int(c) for d, c in zip(days, counts)}


# --- the index ------------------------------------------------------------------

_INDEXES: "weakref.WeakKeyDictionary[Store, ArticleIndex]" = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def index_for(store: Store) -> "ArticleIndex":
    """The process's index over this store's articles (made on first use)."""
    with _INDEXES_LOCK:
        index = _INDEXES.get(store)
        if index is None:
            index = _INDEXES[store] = ArticleIndex()
        return index


class _Postings:
    """Word id -> ascending article numbers: a compact part (one int32 array
    sliced by offsets) and (word, article) pairs appended since, sorted into
    a second compact part on the first look-up after an append."""

    __slots__ = ("offsets", "nums", "d_words", "d_nums", "_delta")

    def __init__(self):
        self.offsets = np.zeros(1, dtype=np.int64)
        self.nums = np.zeros(0, dtype=np.int32)
        self.d_words = array("i")
        self.d_nums = array("i")
        self._delta: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, num: int, words: set[int]) -> None:
        self.d_words.extend(words)
        self.d_nums.extend([num] * len(words))
        self._delta = None

    def get(self, word: int) -> list[np.ndarray]:
        parts = []
        if word + 1 < len(self.offsets):
            a, b = self.offsets[word], self.offsets[word + 1]
            if b > a:
                parts.append(self.nums[a:b])
        if self.d_words:
            if self._delta is None:
                words = np.array(self.d_words, dtype=np.int32)
                order = np.argsort(words, kind="stable")
                self._delta = (words[order], np.array(self.d_nums, dtype=np.int32)[order])
            words, nums = self._delta
            lo, hi = np.searchsorted(words, [word, word + 1])
            if hi > lo:
                parts.append(nums[lo:hi])
        return parts

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (word, article) pair: compact part first, then appended."""
        counts = np.diff(self.offsets)
        words = np.concatenate([np.repeat(np.arange(len(counts), dtype=np.int32), counts),
                                np.array(self.d_words, dtype=np.int32)])
        nums = np.concatenate([self.nums, np.array(self.d_nums, dtype=np.int32)])
        return words, nums

    def load(self, words: np.ndarray, nums: np.ndarray, n_words: int) -> None:
        """Make the compact part from pairs whose numbers ascend within each
        word in the order given (a stable sort by word keeps that)."""
        order = np.argsort(words, kind="stable")
        self.nums = np.ascontiguousarray(nums[order], dtype=np.int32)
        self.offsets = np.zeros(n_words + 1, dtype=np.int64)
        np.cumsum(np.bincount(words, minlength=n_words), out=self.offsets[1:])
        self.d_words, self.d_nums, self._delta = array("i"), array("i"), None

    def nbytes(self) -> int:
        delta = 0 if self._delta is None else sum(a.nbytes for a in self._delta)
        return (self.offsets.nbytes + self.nums.nbytes + delta
                + self.d_words.buffer_info()[1] * 4 + self.d_nums.buffer_info()[1] * 4)


class _Query:
    """One rule worked out over the index: masks over article numbers."""

    def __init__(self, index: "ArticleIndex"):
        self.index = index
        self.n = len(index.keys)
        self.zeros = np.zeros(self.n, dtype=bool)
        self.ones = np.ones(self.n, dtype=bool)
        self.memo: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._words: dict[tuple[int, str], np.ndarray] = {}

    def eval(self, node: Node) -> tuple[np.ndarray, np.ndarray]:
        """(surely matches, may match) as boolean masks; the first is the
        second object itself when the answer is exact. Never changed in
        place: masks are shared."""
        if isinstance(node, (Term, Prefix, Phrase)):
            return self.leaf(node, node.fields)
        if isinstance(node, And):
            return self._combine([self.eval(c) for c in node.children], np.logical_and)
        if isinstance(node, Or):
            return self._combine([self.eval(c) for c in node.children], np.logical_or)
        if isinstance(node, Not):
            sure, maybe = self.eval(node.child)
            if sure is maybe:
                out = ~sure
                return out, out
            return ~maybe, ~sure
        if isinstance(node, Near):
            shared = tuple(f for f in node.left.fields if f in node.right.fields)
            if not shared:
                return self.zeros, self.zeros
            return self.zeros, self.leaf(node.left, shared)[1] & self.leaf(node.right, shared)[1]
        if isinstance(node, Meta):
            return self.meta(node)
        if isinstance(node, PresetRef):
            key = id(node.rule)
            if key not in self.memo:
                self.memo[key] = self.eval(node.rule)
            return self.memo[key]
        return self.zeros, self.ones  # a node this module does not know: the Matcher decides

    @staticmethod
    def _combine(parts, op) -> tuple[np.ndarray, np.ndarray]:
        maybe = parts[0][1]
        for p in parts[1:]:
            maybe = op(maybe, p[1])
        if all(s is m for s, m in parts):
            return maybe, maybe
        sure = parts[0][0]
        for p in parts[1:]:
            sure = op(sure, p[0])
        return sure, maybe

    def leaf(self, node: Term | Prefix | Phrase, fields: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        ix = self.index
        if isinstance(node, Term):
            return self.words(ix.stem_words.get(node.stem, ()), fields)
        if isinstance(node, Prefix):
            return self.words(ix.prefixed(node.prefix), fields)
        if len(node.words) == 1:
            word = ix.word_id.get(node.words[0])
            return self.words(() if word is None else (word,), fields)
        if not node.words:
            return self.ones, self.ones
        maybe = self.ones
        for w in node.words:
            word = ix.word_id.get(w)
            if word is None:
                return self.zeros, self.zeros
            maybe = maybe & self.words((word,), fields)[1]
        return self.zeros, maybe

    def words(self, words, fields: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Articles holding any of `words` in one of `fields`."""
        fields = set(fields)
        if not words or not fields:
            return self.zeros, self.zeros
        if fields == {"title"}:
            m = self._mask(words, "title")
            return m, m
        anywhere = self._mask(words, "any")
        if "title" in fields:  # both fields
            return anywhere, anywhere
        # Summary only: held somewhere but not in the title is surely in the
        # summary; in the title too, it may or may not be.
        return anywhere & ~self._mask(words, "title"), anywhere

    def _mask(self, words, where: str) -> np.ndarray:
        postings = self.index.anywhere if where == "any" else self.index.title
        if len(words) == 1:
            cached = self._words.get((words[0], where))
            if cached is not None:
                return cached
        mask = np.zeros(self.n, dtype=bool)
        for w in words:
            for part in postings.get(w):
                mask[part] = True
        if len(words) == 1:
            self._words[(words[0], where)] = mask
        return mask

    def meta(self, node: Meta) -> tuple[np.ndarray, np.ndarray]:
        ix = self.index
        if node.field == "source":
            values, column = ix.sources, ix.source_of
        elif node.field == "lang":
            values, column = ix.langs, ix.lang_of
        else:
            return self.zeros, self.ones
        value = values.get(node.value)
        if value is None:
            return self.zeros, self.zeros
        m = np.frombuffer(column, dtype=np.int32)[: self.n] == value
        return m, m


class ArticleIndex:
    """Every stored article from `low` on, by number (in the order read):
    its key, first-seen time, source and language ids, whether it is still
    in the database, and postings from its words (see the module doc). The
    words are Document's own tokens, so the index and the matcher cannot
    tokenise differently.

    `lock` guards refresh and look-ups (the API may preview from several
    threads). Memory: about 4 bytes per distinct word of each article, plus
    the vocabulary and the keys (`memory()` reports it)."""

    def __init__(self, min_delta: int = MIN_DELTA):
        self.lock = threading.RLock()
        self.min_delta = min_delta
        self.words: list[str] = []
        self.word_id: dict[str, int] = {}
        self.stem_of: list[str] = []
        self.stem_words: dict[str, list[int]] = {}
        self._sorted: list[str] = []          # words sorted, with their ids:
        self._sorted_ids: list[int] = []      # prefixes bisect them
        self._unsorted: list[int] = []        # ids of words added since
        self.keys: list[Key] = []
        self.key_num: dict[Key, int] = {}
        self.first_seen = array("q")
        self.source_of = array("i")
        self.lang_of = array("i")
        self.live = bytearray()
        self.sources: dict[str, int] = {}
        self.langs: dict[str, int] = {}
        self.anywhere = _Postings()
        self.title = _Postings()
        self.compact_count = 0                # numbers in the compact part
        self.low: datetime | None = None      # everything stored since is here
        self.newest: datetime | None = None   # newest stored_at read
        self.resync_every = RESYNC_EVERY
        self._resynced = time.monotonic()
        self.stats = {"added": 0, "compactions": 0, "resyncs": 0}

    # -- keeping up with the table ------------------------------------------------
    def refresh(self, store: Store, now: datetime, retention_days: int) -> int:
        """Read what was stored since the last refresh (and, the first time or
        when `now` moved back, everything stored within retention of `now`);
        check the count against the table and re-sync by keys if it differs
        (a late commit, a purge, a row deleted by hand); compact when enough
        was appended or expired. Returns how many articles were added."""
        need = archive.cutoff(now, retention_days)
        added = 0
        if self.low is None or need < self.low:
            added += self._load(archive.pages(store, need), before=self.low)
            self.low = need
        start = (self.newest - OVERLAP) if self.newest is not None else self.low
        added += self._load(archive.pages(store, max(start, self.low)))
        if (time.monotonic() - self._resynced >= self.resync_every
                or archive.count_since(store, self.low) != self._live_since(self.low)):
            added += self._resync(store)
        fs = np.frombuffer(self.first_seen, dtype=np.int64)
        expired = int(np.count_nonzero(fs < _us(need))) + self.live.count(0)
        del fs
        appended = len(self.keys) - self.compact_count
        if appended > max(self.min_delta, self.compact_count // 10) or expired > max(self.min_delta, len(self.keys) // 10):
            self.compact(now, retention_days)
        return added

    def _load(self, pages, before: datetime | None = None) -> int:
        added = 0
        for page in pages:
            for article in page:
                if before is not None and article.first_seen >= before:
                    return added
                added += self.add(article)
        return added

    def add(self, article: Archived) -> bool:
        """Index one article; False if it is here already."""
        key = article.key
        if key in self.key_num:
            return False
        doc = Document.from_article(article)
        num = len(self.keys)
        self.keys.append(key)
        self.key_num[key] = num
        self.first_seen.append(_us(article.first_seen))
        self.source_of.append(self._value(self.sources, doc.source))
        self.lang_of.append(self._value(self.langs, doc.lang))
        self.live.append(1)
        title, summary = doc.fields["title"], doc.fields["summary"]
        in_title = self._word_ids(title.norms, title.stems)
        self.title.add(num, in_title)
        self.anywhere.add(num, in_title | self._word_ids(summary.norms, summary.stems))
        if self.newest is None or article.first_seen > self.newest:
            self.newest = article.first_seen
        self.stats["added"] += 1
        return True

    @staticmethod
    def _value(values: dict[str, int], value: str) -> int:
        found = values.get(value)
        if found is None:
            found = values[value] = len(values)
        return found

    def _word_ids(self, norms: list[str], stems: list[str]) -> set[int]:
        word_id = self.word_id
        out = set()
        for norm in set(norms):
            i = word_id.get(norm)
            if i is None:
                i = word_id[norm] = len(self.words)
                stem = stems[norms.index(norm)]
                self.words.append(norm)
                self.stem_of.append(stem)
                self.stem_words.setdefault(stem, []).append(i)
                self._unsorted.append(i)
            out.add(i)
        return out

    def _live_since(self, since: datetime) -> int:
        fs = np.frombuffer(self.first_seen, dtype=np.int64)
        live = np.frombuffer(self.live, dtype=np.uint8)
        n = int(np.count_nonzero((fs >= _us(since)) & (live == 1)))
        del fs, live
        return n

    def _resync(self, store: Store) -> int:
        """Compare keys with the table from `low` on: add what is missing,
        mark what is gone."""
        self.stats["resyncs"] += 1
        self._resynced = time.monotonic()
        there: set[Key] = set()
        missing: list[Key] = []
        for key, _ in archive.keys_since(store, self.low):
            there.add(key)
            if key not in self.key_num:
                missing.append(key)
        low = _us(self.low)
        for num, key in enumerate(self.keys):
            if self.live[num] and self.first_seen[num] >= low and key not in there:
                self.live[num] = 0
        added = 0
        for i in range(0, len(missing), archive.PAGE):
            rows = archive.fetch(store, missing[i:i + archive.PAGE])
            added += sum(self.add(rows[k]) for k in missing[i:i + archive.PAGE] if k in rows)
        return added

    def compact(self, now: datetime, retention_days: int) -> None:
        """Rebuild the arrays without the articles past retention of `now`
        (or gone from the table) and the words only they held; articles
        are renumbered (order kept)."""
        cut = archive.cutoff(now, retention_days)
        fs = np.array(self.first_seen, dtype=np.int64)
        keep = (fs >= _us(cut)) & (np.frombuffer(bytes(self.live), dtype=np.uint8) == 1)
        renumber = np.full(len(fs), -1, dtype=np.int32)
        renumber[keep] = np.arange(int(keep.sum()), dtype=np.int32)
        pairs = {}
        for name in ("anywhere", "title"):
            words, nums = getattr(self, name).pairs()
            nums = renumber[nums]
            ok = nums >= 0
            pairs[name] = (words[ok], nums[ok])
        used = np.bincount(pairs["anywhere"][0], minlength=len(self.words)) > 0
        new_word = np.full(len(self.words), -1, dtype=np.int32)
        new_word[used] = np.arange(int(used.sum()), dtype=np.int32)
        n_words = int(used.sum())
        for name, (words, nums) in pairs.items():
            getattr(self, name).load(new_word[words], nums, n_words)
        kept_words = np.flatnonzero(used).tolist()
        self.words = [self.words[i] for i in kept_words]
        self.stem_of = [self.stem_of[i] for i in kept_words]
        self.word_id = {w: i for i, w in enumerate(self.words)}
        self.stem_words = {}
        for i, stem in enumerate(self.stem_of):
            self.stem_words.setdefault(stem, []).append(i)
        order = sorted(range(len(self.words)), key=self.words.__getitem__)
        self._sorted = [self.words[i] for i in order]
        self._sorted_ids = order
        self._unsorted = []
        kept = np.flatnonzero(keep).tolist()
        self.keys = [self.keys[i] for i in kept]
        self.key_num = {k: i for i, k in enumerate(self.keys)}
        self.first_seen = array("q", fs[keep].tobytes())
        self.source_of = array("i", np.frombuffer(self.source_of, dtype=np.int32)[keep].tobytes())
        self.lang_of = array("i", np.frombuffer(self.lang_of, dtype=np.int32)[keep].tobytes())
        self.live = bytearray(b"\x01" * len(kept))
        self.compact_count = len(kept)
        if self.low is None or cut > self.low:
            self.low = cut
        self.stats["compactions"] += 1

    # -- look-ups -----------------------------------------------------------------
    def prefixed(self, prefix: str) -> list[int]:
        """Ids of the words that start with `prefix`."""
        out = []
        i = bisect_left(self._sorted, prefix)
        while i < len(self._sorted) and self._sorted[i].startswith(prefix):
            out.append(self._sorted_ids[i])
            i += 1
        out += [w for w in self._unsorted if self.words[w].startswith(prefix)]
        return out

    def candidates(self, rule: Node, since: datetime, until: datetime, *,
                   verify_all: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Numbers of the articles first seen in [since, until] that surely
        match `rule`, and those that may (for the Matcher to decide)."""
        q = _Query(self)
        sure, maybe = q.eval(rule)
        fs = np.frombuffer(self.first_seen, dtype=np.int64)
        live = np.frombuffer(self.live, dtype=np.uint8)
        window = (fs >= _us(since)) & (fs <= _us(until)) & (live == 1)
        del fs, live
        if verify_all:
            return np.zeros(0, dtype=np.int64), np.flatnonzero(maybe & window)
        return np.flatnonzero(sure & window), np.flatnonzero(maybe & ~sure & window)

    def snapshot(self, nums: np.ndarray) -> tuple[list[Key], np.ndarray]:
        """Keys and first-seen times of these articles (the numbers are only
        valid under the lock; keys are for good)."""
        keys = self.keys
        fs = np.frombuffer(self.first_seen, dtype=np.int64)[nums].copy()
        return [keys[i] for i in nums.tolist()], fs

    def memory(self) -> dict[str, int]:
        """Rough bytes held: arrays, and the Python objects (words, keys)."""
        import sys

        strings = sum(sys.getsizeof(w) for w in self.words)
        keys = sum(sys.getsizeof(k) + sys.getsizeof(k[1]) for k in self.keys)
        dicts = (sys.getsizeof(self.word_id) + sys.getsizeof(self.key_num) + sys.getsizeof(self.stem_words)
                 + sum(sys.getsizeof(v) for v in self.stem_words.values())
                 + sum(sys.getsizeof(s) for s in self.stem_words)
                 + sys.getsizeof(self.words) + sys.getsizeof(self.keys) + sys.getsizeof(self.stem_of)
                 + sys.getsizeof(self._sorted) + sys.getsizeof(self._sorted_ids))
        arrays = (self.anywhere.nbytes() + self.title.nbytes() + len(self.live)
                  + (self.first_seen.buffer_info()[1] * 8) + self.source_of.buffer_info()[1] * 4
                  + self.lang_of.buffer_info()[1] * 4)
        return {"postings_and_columns": arrays, "words": strings, "keys": keys, "tables": dicts,
                "total": arrays + strings + keys + dicts}
