"""`Matcher`: many rules against one article, without trying every rule.

Each rule gets a *cover*: a few features (a stem, a phrase's word pair, a
prefix, a source or language) such that the rule cannot match a document
that has none of them. For OR every branch must be covered; for AND one child
is enough, so we keep the child whose cover looks rarest; NOT covers nothing.
The rule is filed under each feature of its cover (an inverted index). Rules
with no cover at all (`-tariff`, `lang:ru OR -x`) sit in an always-evaluate
list.

Matching a document: look its features up to collect candidate rules, then
run each candidate's compiled yes/no test over the document's look-up tables
(`services.rules.predicate`). Evidence is computed when first asked for
(`services.rules.compiled`), from the same document. Results equal
`evaluate()` exactly; tests/test_rules_matcher.py checks that with random
rules and articles.
"""
from __future__ import annotations

import gc
from functools import partial
from typing import Any, Hashable

from services.rules.compiled import Compiler, HitsFn
from services.rules.predicate import PredicateCompiler, Test
from services.rules.document import Document
from services.rules.evaluate import Evidence
from services.rules.nodes import BOTH, And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term
from services.rules.parser import parse

PREFIX_KEY = 4  # prefixes are filed under at most this many characters
Feature = tuple[str, str]  # (table, key); tables: s stem, w word, b word pair, p prefix, m meta


class _Entry:
    __slots__ = ("id", "key", "rule", "test", "hits", "features")

    def __init__(self, id_: int, key: Hashable, rule: Node, test: Test | None, features: list[Feature] | None):
        self.id = id_
        self.key = key
        self.rule = rule
        self.test = test
        self.hits: HitsFn | None = None  # compiled when evidence is first asked for
        self.features = features


class Matcher:
    """An incremental index of rules keyed by name (any hashable key).

    `match(doc)` returns {key: Evidence} for the rules that match, in the
    order the rules were added, identical to calling `evaluate` on each."""

    def __init__(self, presets=None):
        self._presets = presets
        self._entries: dict[Hashable, _Entry] = {}
        self._by_id: dict[int, _Entry] = {}
        self._next_id = 0
        self._tables: dict[str, dict[str, set[int]]] = {t: {} for t in "swbpm"}
        self._prefix_lengths: dict[int, int] = {}
        self._always: set[int] = set()
        # Presets are shared by many rules: compiled once, evaluated once per
        # document.
        self._predicates = PredicateCompiler()
        self._compiler = Compiler()
        self._preset_covers: dict[int, tuple[Node, list[Feature] | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def add(self, key: Hashable, rule: Node | str) -> None:
        """Add or replace the rule under `key` (a string is parsed first)."""
        if isinstance(rule, str):
            rule = parse(rule, self._presets)
        if key in self._entries:
            self.remove(key)
        # When the cover is exactly the rule (`tariff`, `a OR b OR "c"`), being
        # a candidate already means a match: no test to run.
        test = None if _exact(rule) else self._predicates.compile(rule)
        entry = _Entry(self._next_id, key, rule, test, _cover(rule, self._preset_covers))
        self._next_id += 1
        self._entries[key] = entry
        self._by_id[entry.id] = entry
        if entry.features is None:
            self._always.add(entry.id)
            return
        for table, feature in entry.features:
            self._tables[table].setdefault(feature, set()).add(entry.id)
            if table == "p":
                n = len(feature)
                self._prefix_lengths[n] = self._prefix_lengths.get(n, 0) + 1

    def add_many(self, items) -> None:
        """`add` for each (key, rule) pair, with Python's cyclic garbage
        collector paused: loading 100k rules allocates millions of small
        objects, and the collector would rescan the growing heap over and
        over (about 70% of the load time). The index makes no reference
        cycles, so nothing is lost by waiting."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            for key, rule in items:
                self.add(key, rule)
        finally:
            if was_enabled:
                gc.enable()

    def remove(self, key: Hashable) -> None:
        """Drop the rule under `key` (KeyError if there is none)."""
        entry = self._entries.pop(key)
        del self._by_id[entry.id]
        if entry.features is None:
            self._always.discard(entry.id)
            return
        for table, feature in entry.features:
            ids = self._tables[table][feature]
            ids.discard(entry.id)
            if not ids:
                del self._tables[table][feature]
            if table == "p":
                n = len(feature)
                self._prefix_lengths[n] -= 1
                if not self._prefix_lengths[n]:
                    del self._prefix_lengths[n]

    def candidates(self, doc: Document) -> set[int]:
        """Ids of rules worth testing on `doc`."""
        stems, words, pairs, prefixes, meta = (self._tables[t] for t in "swbpm")
        found = set(self._always)
        for s in doc.stem_set & stems.keys():
            found |= stems[s]
        if words:
            for w in doc.word_set & words.keys():
                found |= words[w]
        if pairs:
            for p in doc.bigrams & pairs.keys():
                found |= pairs[p]
        if prefixes:
            for n in self._prefix_lengths:
                for p in doc.prefix_set(n) & prefixes.keys():
                    found |= prefixes[p]
        if meta:
            for m in ("source=" + doc.source, "lang=" + doc.lang):
                ids = meta.get(m)
                if ids:
                    found |= ids
        return found

    def match(self, article: Any) -> dict[Hashable, Evidence]:
        """{key: Evidence} of the rules matching `article` (an Article, a
        dict or a Document), in the order the rules were added."""
        doc = Document.from_article(article)
        doc.memo.clear()
        by_id = self._by_id
        found = []
        for i in self.candidates(doc):
            test = by_id[i].test
            if test is None or test(doc):
                found.append(i)
        found.sort()  # ids grow: the order rules were added
        lazy, evidence = Evidence.lazy, self._evidence
        return {(entry := by_id[i]).key: lazy(partial(evidence, entry, doc)) for i in found}

    def _evidence(self, entry: _Entry, doc: Document) -> list:
        if entry.hits is None:
            entry.hits = self._compiler.compile(entry.rule)
        hits = entry.hits(doc)
        if hits is None:  # the test said it matches: the two must agree
            raise AssertionError(f"evidence disagrees with the match for rule {entry.key!r}")
        return hits


# -- covers ------------------------------------------------------------
def _feature_score(feature: Feature) -> float:
    """Rough rarity: longer keys are rarer; a word pair beats one word; a
    language is shared by a large share of all articles."""
    table, key = feature
    if table == "m":
        return 4.0 if key.startswith("source=") else 0.0
    if table == "b":
        return 10.0 + len(key)
    if table == "p":
        return float(len(key))
    return len(key) + 1.0


def _cover_score(cover: list[Feature]) -> float:
    return min(map(_feature_score, cover)) - 0.5 * (len(cover) - 1)


def _exact(node: Node) -> bool:
    """True when a document has one of the rule's cover features exactly
    when the rule matches (the cover ignores fields and cuts prefixes)."""
    if isinstance(node, Term):
        return node.fields == BOTH
    if isinstance(node, Phrase):
        return node.fields == BOTH and len(node.words) == 1
    if isinstance(node, Prefix):
        return node.fields == BOTH and len(node.prefix) <= PREFIX_KEY
    if isinstance(node, Meta):
        return True
    if isinstance(node, Or):
        return all(_exact(c) for c in node.children)
    return False


def _cover(node: Node, presets: dict) -> list[Feature] | None:
    """Features of which any match must contain at least one (None: the
    rule can match without any, e.g. under NOT). `presets` caches the cover
    of each preset tree by id (the tree is kept alive alongside)."""
    if isinstance(node, Term):
        return [("s", node.stem)]
    if isinstance(node, Prefix):
        # Filed under at most its first PREFIX_KEY characters, so a document
        # needs at most PREFIX_KEY prefix sets however many prefix lengths
        # the rules use; the exact test then checks the whole prefix.
        return [("p", node.prefix[:PREFIX_KEY])]
    if isinstance(node, Phrase):
        words = node.words
        if len(words) == 1:
            return [("w", words[0])]
        pair = max(zip(words, words[1:]), key=lambda p: len(p[0]) + len(p[1]))
        return [("b", pair[0] + " " + pair[1])]
    if isinstance(node, Meta):
        return [("m", f"{node.field}={node.value}")]
    if isinstance(node, Near):
        return max(_cover(node.left, presets), _cover(node.right, presets), key=_cover_score)
    if isinstance(node, PresetRef):
        known = presets.get(id(node.rule))
        if known is None:
            known = presets[id(node.rule)] = (node.rule, _cover(node.rule, presets))
        return known[1]
    if isinstance(node, Not):
        return None
    covers = [_cover(c, presets) for c in node.children]
    if isinstance(node, And):
        usable = [c for c in covers if c is not None]
        return max(usable, key=_cover_score) if usable else None
    if any(c is None for c in covers):  # Or
        return None
    return list(dict.fromkeys(f for c in covers for f in c))
