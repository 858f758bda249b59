"""`Matcher`: many rules against one article, without trying every rule.

Each rule is rewritten as clauses over document features
(`services.rules.clauses`) and each clause is filed in an inverted index
(`services.rules.postings`). Matching an article:

1. look the article's features up: the clauses filed under them are the
   candidates (a clause with several present features only when the article
   has all of them: the look-ups are counted);
2. drop the candidates whose absent features the article has, or whose
   `source:`/`lang:` differ;
3. run the few remaining *checks* (NEAR, long phrases, presets...) in Python,
   each at most once per article;
4. a rule matches when one of its clauses survives.

Most clauses are one feature and nothing else (`tariff`, `"export duty"`, a
branch of an OR): those are filed as *direct* postings of rule ids, which
need no counting, filtering or check. The rest go through steps 1-4.

There are two ways to run the steps, with the same results. With few
postings per article (up to ~10k rules), Python sets and a Counter over the
posting lists are cheapest; with many (100k rules and more), numpy array
operations over clause ids are, since their cost is a fixed few dozen
calls whatever the number of ids. The Matcher picks by a running average of
the postings it met (`PYTHON_PATH_LIMIT`). Either way the cost per article
grows with the features it has, not with the number of rules, and Python
only loops over the clauses that need a check. Evidence is worked out when
first read (`services.rules.compiled`). Results equal `evaluate()` exactly;
tests/unit/rules/test_matcher.py checks that with random rules and articles,
on both paths.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Hashable, Iterable, Iterator

import numpy as np

from services import collector
from services.rules.clauses import Clause, Feature, check_node, clauses, cover, cover_score
from services.rules.compiled import EvidenceCompiler, HitsFn
from services.rules.document import Document
from services.rules.evaluate import Evidence
from services.rules.nodes import Node
from services.rules.parser import parse
from services.rules import verdicts
from services.rules.presets import BUNDLED
from services.rules.postings import EMPTY, ID, Column, Postings
from services.rules.predicate import FEW_PREFIXES, SHORT_PREFIX_TABLES, PredicateCompiler, Test
from services.rules.terms import TermsTable
from services.rules.text import starts_any


class _Entry:
    __slots__ = ("id", "key", "rule", "hits", "clauses", "filed", "checks")

    def __init__(self, id_: int, key: Hashable, rule: Node):
        self.id = id_
        self.key = key
        self.rule = rule
        self.hits: HitsFn | None = None  # compiled when evidence is first asked for
        self.clauses: list[int] = []
        self.filed: list[tuple[str, str, Hashable, int]] = []  # postings to undo on remove
        self.checks: list[Hashable] = []


class _WholeRule:
    """A rule too large to rewrite, tested whole as one check (identity
    hash: each such rule is its own check)."""

    __slots__ = ("node",)

    def __init__(self, node: Node):
        self.node = node


def _node(check: Hashable) -> Node:
    return check.node if isinstance(check, _WholeRule) else check_node(check)


class Matcher:
    """An incremental index of rules keyed by name (any hashable key).

    `match(doc)` returns {key: Evidence} (a read-only mapping) for the rules
    that match, in the order the rules were added, identical to calling
    `evaluate` on each."""

    def __init__(self, presets=None):
        # What `topic:`/`country:` in rules added as text name (default: the
        # bundled presets).
        self._presets = BUNDLED if presets is None else presets
        self._entries: dict[Hashable, _Entry] = {}
        self._rules: list[_Entry | None] = []  # by rule id; ids grow, so id order = order added
        # By rule id too, for Matches.terms(): keys, and how to find each
        # rule's terms, planned when first needed (services/rules/terms.py).
        self._keys: list[Hashable] = []
        self._terms = TermsTable()
        self._next_clause = 0
        self._version = 0  # bumped by every change, see Matches
        self._postings = Postings()
        self._rule_of = Column(ID, -1)
        self._has_checks = Column(np.bool_, False)
        # The check id of a clause whose only check is one that must hold
        # (-1: none, or more): the numpy path runs it without reading the
        # clause's spec below.
        self._check_of = Column(ID, -1)
        # What the Python path needs of each clause that is not direct, by
        # clause id (None: direct or removed): (rule id, present features
        # other than the one it is filed under, meta id, checks that must
        # hold, checks that must fail). A list, not a dict keyed by clause
        # id: looking an id up in a dict reads and writes (refcounts) the
        # int stored as its key, which in a process forked after the load
        # copies that int's page (benchmarks/fork_memory.py).
        self._spec: list[tuple[int, tuple[Feature, ...], int, tuple[int, ...], tuple[int, ...]] | None] = []
        self._need = Column(ID, 1)  # see _add_clause
        # The (source, lang) a clause requires, as an id (0: none), and per
        # article (source, lang) which of those ids it satisfies.
        self._meta = Column(ID, 0)
        self._meta_ids: dict[tuple[str | None, str | None], int] = {}
        self._meta_allowed: dict[tuple[str, str], tuple[np.ndarray, list[bool]]] = {}
        self._meta_users = 0
        self._always: dict[int, None] = {}
        self._always_array: np.ndarray | None = None
        self._blocked = Column(np.bool_, False)  # scratch, all False between articles
        # Checks are shared by every clause that uses them: id by key.
        self._check_ids: dict[Hashable, int] = {}
        self._checks: dict[int, tuple[Test, int]] = {}  # id -> (test, users)
        self._tests: list[Test | None] = []  # by check id, what matching calls (None: released)
        self._next_check = 0
        self._predicates = PredicateCompiler()
        self._compiler = EvidenceCompiler()
        self._preset_covers: dict[int, tuple[Node, list[Feature] | None]] = {}
        # Running average of the (non-direct) postings an article meets,
        # which decides between the Python and the numpy path.
        self._load = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def keys_by_id(self) -> list[Hashable]:
        """The key of each rule id (None: removed); see `Matches.term_ids`."""
        return self._keys

    def terms_values(self) -> tuple[int, list[tuple[str, ...]]]:
        """(generation, terms tuple by id) for `Matches.term_ids`; ids mean
        something only while the generation stays the same (the list grows
        in place meanwhile)."""
        return self._terms.generation, self._terms.values

    # -- changing the rules -------------------------------------------
    def add(self, key: Hashable, rule: Node | str) -> None:
        """Add or replace the rule under `key` (a string is parsed first)."""
        if isinstance(rule, str):
            rule = parse(rule, self._presets)
        if key in self._entries:
            self.remove(key)
        self._version += 1
        entry = _Entry(len(self._rules), key, rule)
        self._rules.append(entry)
        self._keys.append(key)
        self._entries[key] = entry
        found = clauses(rule)
        if found is None:
            found = [Clause(frozenset(), frozenset(), frozenset({_WholeRule(rule)}), frozenset())]
        for clause in found:
            self._add_clause(entry, clause)

    def add_many(self, items) -> None:
        """`add` for each (key, rule) pair, with Python's cyclic garbage
        collector paused: loading 100k rules allocates millions of small
        objects, and the collector would rescan the growing heap over and
        over. The index makes no reference cycles, so nothing is lost."""
        with collector.paused():
            for key, rule in items:
                self.add(key, rule)
            self.refresh()

    def remove(self, key: Hashable) -> None:
        """Drop the rule under `key` (KeyError if there is none)."""
        entry = self._entries.pop(key)
        self._version += 1
        self._rules[entry.id] = None
        self._keys[entry.id] = None
        self._terms.forget(entry.id)
        for posting in entry.filed:
            self._postings.remove(*posting)
        for c in entry.clauses:
            self._rule_of[c] = -1
            self._has_checks[c] = False
            self._check_of[c] = -1
            self._spec[c] = None
            if self._meta.data[c]:
                self._meta_users -= 1
                self._meta[c] = 0
            if c in self._always:
                del self._always[c]
                self._always_array = None
        for check in entry.checks:
            self._release_check(check)

    def _add_clause(self, entry: _Entry, clause: Clause) -> None:
        present = [f for f in clause.present if f[0] != "m"]
        meta = [f[1] for f in clause.present if f[0] == "m"]
        required = dict(m.split("=", 1) for m in meta)
        if len(required) < len(meta):
            return  # needs two sources or two languages at once: never true
        covers = [cover for cover in map(self._cover_of, clause.holds) if cover is not None]
        if meta and not present and not covers:
            present, meta = [("m", m) for m in meta], []
        if len(present) == 1 and not (meta or clause.holds or clause.fails or clause.absent):
            # Most clauses: one feature decides (a word, or a source or
            # language alone). The rule id is filed as is, and the clause
            # takes no clause id, so none of the per-clause columns grows
            # for it (at match.py's 100k rules, 50k clause ids, not 150k).
            self._file(entry, "direct", present[0], entry.id)
            return
        c = self._next_clause
        self._next_clause += 1
        self._spec.append(None)
        entry.clauses.append(c)
        holds = tuple(self._use_check(entry, n) for n in clause.holds)
        fails = tuple(self._use_check(entry, n) for n in clause.fails)
        # Every column gets a value, so each is as long as the clause ids.
        self._rule_of[c] = entry.id
        self._has_checks[c] = bool(holds or fails)
        self._check_of[c] = holds[0] if len(holds) == 1 and not fails else -1
        # A clause is filed under its other features; source/lang filter the
        # candidates afterwards (a language is shared by too many articles
        # to be worth filing under).
        self._meta[c] = self._meta_id(required.get("source"), required.get("lang")) if meta else 0
        self._meta_users += bool(meta)
        # How many of the features it is filed under an article must have:
        # all of its present features, or any one of a check's cover.
        self._need[c] = need = max(1, len(present))
        rest: tuple[Feature, ...] = ()
        if need > 1:
            # Counted by the numpy path; the Python path finds the clause by
            # its rarest feature and looks the others up in the article.
            rarest = max(present, key=lambda f: cover_score([f]))
            rest = tuple(f for f in present if f != rarest)
            self._file(entry, "rarest", rarest, c)
            for f in present:
                self._file(entry, "counted", f, c)
        elif present:
            self._file(entry, "present", present[0], c)
        elif covers:
            for f in max(covers, key=cover_score):
                self._file(entry, "present", f, c)
        else:
            self._always[c] = None
            self._always_array = None
        self._spec[c] = (entry.id, rest, int(self._meta.data[c]), holds, fails)
        for f in clause.absent:
            self._file(entry, "absent", f, c)

    def _meta_id(self, source: str | None, lang: str | None) -> int:
        i = self._meta_ids.get((source, lang))
        if i is None:
            i = self._meta_ids[(source, lang)] = len(self._meta_ids) + 1
            self._meta_allowed.clear()
        return i

    def _file(self, entry: _Entry, family: str, f: Feature, c: int) -> None:
        self._postings.add(family, f[0], f[1], c)
        entry.filed.append((family, f[0], f[1], c))

    def _use_check(self, entry: _Entry, key: Hashable) -> int:
        entry.checks.append(key)
        i = self._check_ids.get(key)
        if i is None:
            i = self._check_ids[key] = self._next_check
            self._next_check += 1
            self._checks[i] = (self._predicates.compile(_node(key)), 0)
            self._tests.append(self._checks[i][0])
        test, users = self._checks[i]
        self._checks[i] = (test, users + 1)
        return i

    def _release_check(self, key: Hashable) -> None:
        i = self._check_ids[key]
        test, users = self._checks[i]
        if users > 1:
            self._checks[i] = (test, users - 1)
        else:
            del self._checks[i], self._check_ids[key]
            self._tests[i] = None

    def _cover_of(self, key: Hashable) -> list[Feature] | None:
        return cover(_node(key), self._preset_covers)

    # -- matching ------------------------------------------------------
    # Above this running average of non-direct postings per article the
    # numpy path is used. On benchmarks/match.py's rules 10k rules give ~31
    # per article (Python path ~25% faster there) and 100k ~311 (numpy ~30%
    # faster); the numpy path counts a clause under each of its features, so
    # it sees ~400 there and does not flip back and forth near the limit.
    PYTHON_PATH_LIMIT = 120
    # Whatever the average, an article meeting more than this many times the
    # limit in postings (all families) goes the numpy path.
    PYTHON_PATH_MAX_FACTOR = 4

    def match(self, article: Any) -> "Matches":
        """{key: Evidence} of the rules matching `article` (an Article, a
        dict or a Document), in the order the rules were added."""
        doc = Document.from_article(article)
        # A Document matched before may hold results for preset trees that
        # are gone by now, and a new tree can reuse a gone one's id.
        doc.memo.clear()
        if self._load < self.PYTHON_PATH_LIMIT:
            found = self._match_python(doc)
            if found is not None:
                return Matches(self, doc, found)
        return Matches(self, doc, self._match_numpy(doc))

    def candidates(self, doc: Document) -> set[int]:
        """Ids of the rules with a clause worth checking on `doc` (for
        measuring the index)."""
        doc = Document.from_article(doc)
        direct, clauses = self._candidates(doc)
        return set(self._rule_of.data[clauses].tolist()).union(*(d.tolist() for d in direct))

    def refresh(self) -> None:
        """Bring the index's arrays up to date now rather than on the next
        match (`add_many` ends with it)."""
        self._postings.refresh()
        n = self._next_clause
        if len(self._blocked.data) < n:
            self._blocked[n] = False

    def _match_python(self, doc: Document) -> list[int] | None:
        """Rule ids matching `doc`, ascending, with sets and lists; None
        when `doc` meets more than PYTHON_PATH_MAX_FACTOR times
        PYTHON_PATH_LIMIT postings, for the numpy path to take it: the
        running average starts at 0, so a fresh index of 100k rules would
        otherwise walk thousands of ids here for its first articles (and in
        a process forked after the load, each id walked, its refcount
        written, has its page copied)."""
        slots = []
        walked = len(self._always)
        key_sets = self._postings.key_sets()
        for table, index in self._postings.lists().items():
            for key in _keys_in(doc, table, key_sets[table]):
                slot = index[key]
                slots.append(slot)
                direct, present, _, rarest, absent = slot  # None for none
                if direct:
                    walked += len(direct)
                if present:
                    walked += len(present)
                if rarest:
                    walked += len(rarest)
                if absent:
                    walked += len(absent)
        if walked > self.PYTHON_PATH_MAX_FACTOR * self.PYTHON_PATH_LIMIT:
            return None
        found: set[int] = set()
        pending: list[int] = []  # clause ids (a cover's clause once per feature it has)
        blocked: set[int] = set()
        for direct, present, _, rarest, absent in slots:
            if direct:
                found.update(direct)
            if present:
                pending += present
            if rarest:
                pending += rarest
            if absent:
                blocked.update(absent)
        if self._always:
            pending += self._always
        self._load += (len(pending) - self._load) / 16
        if not pending:
            return sorted(found)
        spec, passes, table = self._spec, self._passes, doc.table
        allowed = self._allowed(doc)[1] if self._meta_users else None
        results: dict[int, bool] = {}  # check id -> result: each check runs once per article
        for c in dict.fromkeys(pending):
            rule, rest, meta, holds, fails = spec[c]
            # Cheapest tests first; a rule already found needs no check.
            if rule in found or c in blocked or (meta and not allowed[meta]):
                continue
            if rest and not all(key in table(t) for t, key in rest):
                continue
            if (holds or fails) and not passes(holds, fails, doc, results):
                continue
            found.add(rule)
        return sorted(found)

    def _match_numpy(self, doc: Document) -> np.ndarray:
        """Rule ids matching `doc`, ascending, with numpy arrays."""
        direct, candidates = self._candidates(doc)
        rule_of = self._rule_of.data
        checked = self._has_checks.data[candidates]
        if checked.any():
            direct.append(rule_of[candidates[~checked]])
            spec, passes, tests = self._spec, self._passes, self._tests
            results: dict[int, bool] = {}  # check id -> result: each check runs once per article
            passed = []  # clause ids
            # Every Python object read here gets its refcount written, which
            # in a process forked after the load copies its page: a clause
            # with one check is run from the arrays (only the test itself is
            # touched), the others read as little of their spec as they need.
            checking = candidates[checked]
            for c, i in dict(zip(checking.tolist(), self._check_of.data[checking].tolist())).items():
                if i >= 0:
                    got = results.get(i)
                    if got is None:
                        got = results[i] = tests[i](doc)
                    if got:
                        passed.append(c)
                    continue
                clause = spec[c]
                if passes(clause[3], clause[4], doc, results):
                    passed.append(c)
            if passed:
                direct.append(rule_of[np.array(passed, dtype=ID)])
        elif len(candidates):
            direct.append(rule_of[candidates])
        if not direct:
            return EMPTY
        return _sorted_unique(np.concatenate(direct) if len(direct) > 1 else direct[0])

    def _candidates(self, doc: Document) -> tuple[list[np.ndarray], np.ndarray]:
        """(arrays of rule ids a direct clause matches, clause ids that hold
        on `doc` unless a check says otherwise; both possibly repeated)."""
        self.refresh()
        direct, present, absent = [], [], []
        key_sets = self._postings.key_sets()  # the arrays' keys too, as of the refresh above
        for table, index in self._postings.arrays().items():
            for key in _keys_in(doc, table, key_sets[table]):
                d, p, a = index[key]
                if d is not None:
                    direct.append(d)
                if p is not None:
                    present.append(p)
                if a is not None:
                    absent.append(a)
        if self._always:
            if self._always_array is None:
                self._always_array = np.fromiter(self._always, dtype=ID, count=len(self._always))
            present.append(self._always_array)
        if not present:
            self._load -= self._load / 16
            return direct, EMPTY
        hits = np.concatenate(present) if len(present) > 1 else present[0]
        self._load += (len(hits) - self._load) / 16
        found = self._complete(hits)
        if absent:
            found = self._without(found, np.concatenate(absent))
        if self._meta_users:
            found = found[self._allowed(doc)[0][self._meta.data[found]]]
        return direct, found

    def _complete(self, ids: np.ndarray) -> np.ndarray:
        """Those of `ids` (clause ids, once per feature of the article they
        are filed under) that appear as often as they need, sorted. A clause
        that needs two or more appears at most that often (its features
        differ), so once sorted its run is complete exactly when the id
        `need - 1` places on is still the same; one that needs one passes at
        every appearance."""
        n = len(ids)
        padded = np.empty(n + 1, dtype=ID)
        padded[:n] = np.sort(ids)
        padded[n] = -1  # past the end: equal to no clause
        ids = padded[:n]
        ahead = np.arange(n) + self._need.data[ids] - 1
        np.minimum(ahead, n, out=ahead)
        return ids[padded[ahead] == ids]

    def _without(self, found: np.ndarray, blocked: np.ndarray) -> np.ndarray:
        mask = self._blocked.data
        mask[blocked] = True
        kept = found[~mask[found]]
        mask[blocked] = False
        return kept

    def _allowed(self, doc: Document) -> tuple[np.ndarray, list[bool]]:
        """Which (source, lang) requirement ids `doc` meets, as a mask (and
        the same as a list, which Python indexes faster)."""
        known = self._meta_allowed.get((doc.source, doc.lang))
        if known is None:
            mask = np.zeros(len(self._meta_ids) + 1, dtype=bool)
            mask[0] = True
            for (source, lang), i in self._meta_ids.items():
                mask[i] = source in (None, doc.source) and lang in (None, doc.lang)
            known = self._meta_allowed[(doc.source, doc.lang)] = (mask, mask.tolist())
        return known

    def _passes(self, holds: tuple[int, ...], fails: tuple[int, ...], doc: Document, memo: dict[int, bool]) -> bool:
        tests = self._tests
        for i in holds:
            got = memo.get(i)
            if got is None:
                got = memo[i] = tests[i](doc)
            if not got:
                return False
        for i in fails:
            got = memo.get(i)
            if got is None:
                got = memo[i] = tests[i](doc)
            if got:
                return False
        return True

    def _evidence(self, entry: _Entry, doc: Document) -> list:
        if entry.hits is None:
            entry.hits = self._compiler.compile(entry.rule)
        hits = entry.hits(doc)
        if hits is None:  # the index said it matches: the two must agree
            raise AssertionError(f"evidence disagrees with the match for rule {entry.key!r}")
        return hits


class Matches(Mapping):
    """The result of `Matcher.match`: a read-only {key: Evidence} in the
    order the rules were added. Hundreds of rules can match one article and
    most callers route on a few names, so keys and Evidence objects are
    looked up when read: read it before changing the matcher (reading it
    after raises RuntimeError; Evidence already taken stays valid)."""

    __slots__ = ("_matcher", "_version", "_doc", "_ids", "_id_set", "_values")

    def __init__(self, matcher: Matcher, doc: Document, ids: np.ndarray | list[int]):
        self._matcher = matcher
        self._version = matcher._version
        self._doc = doc
        # Rule ids, ascending: a list from the Python path, an array from the
        # numpy path; each is turned into the other only when asked for.
        self._ids = ids
        self._id_set: set[int] | None = None
        self._values: dict[Hashable, Evidence] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[Hashable]:
        rules = self._current()._rules
        return (rules[i].key for i in self._id_list())

    def __contains__(self, key) -> bool:
        return self._entry(key) is not None

    def __getitem__(self, key: Hashable) -> Evidence:
        evidence = self._values.get(key)
        if evidence is None:
            entry = self._entry(key)
            if entry is None:
                raise KeyError(key)
            evidence = self._values[key] = Evidence.lazy(partial(self._matcher._evidence, entry, self._doc))
        return evidence

    def terms(self) -> list[tuple[Hashable, tuple[str, ...]]]:
        """(key, terms) of every match, in order: each key's
        `self[key].terms()` (as a tuple), without building the hits, and
        with the work on the article shared between rules
        (services/rules/terms.py). What `tulpar classify` prints."""
        matcher = self._current()
        _, term_ids = self.term_ids()
        keys, values = matcher._keys, matcher._terms.values
        return [(keys[i], values[t]) for i, t in zip(self._id_list(), term_ids.tolist())]

    def term_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """`terms()` as two arrays: the rule ids of the matches (ascending:
        the order rules were added; `Matcher.keys_by_id()[id]` is the key)
        and, for each, the id of its terms tuple in
        `Matcher.terms_values()`. Cheaper than `terms()` when the same
        tuples recur: `tulpar classify` encodes each one once."""
        matcher = self._current()
        rules = matcher._rules
        if isinstance(self._ids, list):
            self._ids = np.array(self._ids, dtype=ID)
        return self._ids, matcher._terms.term_ids(self._ids, lambda i: rules[i].rule, self._doc)

    def _id_list(self) -> list[int]:
        return self._ids if isinstance(self._ids, list) else self._ids.tolist()

    def _current(self) -> Matcher:
        if self._matcher._version != self._version:
            raise RuntimeError("the rules changed after this match: match the article again")
        return self._matcher

    def _entry(self, key: Hashable) -> _Entry | None:
        try:
            entry = self._current()._entries.get(key)
        except TypeError:  # an unhashable key is not in here
            return None
        if entry is None:
            return None
        if self._id_set is None:
            self._id_set = set(self._id_list())
        return entry if entry.id in self._id_set else None

    def __repr__(self) -> str:
        return f"Matches({list(self)!r})"


def _keys_in(doc: Document, table: str, keys: set) -> Iterable[Hashable]:
    """Those of `keys` (one table's of the index) that `doc` has."""
    if len(keys) <= FEW_PREFIXES and table in SHORT_PREFIX_TABLES:
        # A few short prefixes (one rule with `oil*` would otherwise make
        # every article build its set of 3-letter prefixes): a binary
        # search each in the article's sorted words.
        words = doc.sorted_words
        return [k for k in keys if starts_any(words, k)]
    if table == verdicts.TABLE:
        # Only the verdicts clauses are filed under (a confirmation's), each
        # worked out when asked: the first costs every loaded model's score, ~40-90 us.
        return verdicts.holding(doc, keys)
    return doc.table(table) & keys


def _sorted_unique(ids: np.ndarray) -> np.ndarray:
    """np.unique for the short arrays here, without its fixed overhead."""
    if len(ids) < 2:
        return ids
    ids = np.sort(ids)
    keep = np.empty(len(ids), dtype=bool)
    keep[0] = True
    np.not_equal(ids[1:], ids[:-1], out=keep[1:])
    return ids[keep]
