"""`Matcher`: many rules against one article, without trying every rule.

Each rule gets a *cover*: a few features (a stem, a phrase's word pair, a
prefix, a source or language) such that the rule cannot match a document
that has none of them. For OR every branch must be covered; for AND one child
is enough, so we keep the child whose cover looks rarest; NOT covers nothing.
The rule is filed under each feature of its cover (an inverted index). Rules
with no cover at all (`-tariff`, `lang:ru OR -x`) sit in an always-evaluate
list.

Matching a document: look its features up to collect candidate rules, test
each candidate with a compiled predicate that uses the document's look-up
tables, and collect evidence only for rules that matched. Results equal
`evaluate()` exactly; tests/test_rules_matcher.py checks that with random
rules and articles.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable

from services.rules.document import Document
from services.rules.evaluate import Evidence, Span, collect_hits, near_spans
from services.rules.nodes import And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term
from services.rules.parser import parse
from services.rules.text import FieldText

Test = Callable[[Document], bool]
Feature = tuple[str, str]  # (table, key); tables: s stem, w word, b word pair, p prefix, m meta


def fast_spans(leaf: Term | Phrase | Prefix, field: FieldText) -> list[Span]:
    """Occurrences of a leaf in a field via the field's look-up tables."""
    if isinstance(leaf, Term):
        return [(i, i) for i in field.stem_pos.get(leaf.stem, ())]
    if isinstance(leaf, Prefix):
        return [(i, i) for i in field.prefix_pos(len(leaf.prefix)).get(leaf.prefix, ())]
    words = leaf.words
    n = len(words)
    if n == 1:
        return [(i, i) for i in field.word_pos.get(words[0], ())]
    norms, target = field.norms, list(words)
    return [(i, i + n - 1) for i in field.word_pos.get(words[0], ()) if norms[i : i + n] == target]


class _Entry:
    __slots__ = ("id", "key", "rule", "test", "features")

    def __init__(self, id_: int, key: Hashable, rule: Node, test: Test, features: list[Feature] | None):
        self.id = id_
        self.key = key
        self.rule = rule
        self.test = test
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
        # Presets are shared by many rules: compile each once, and evaluate
        # each once per document (memoised on the document).
        self._preset_tests: dict[tuple[str, str], Test] = {}

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
        entry = _Entry(self._next_id, key, rule, self._compile(rule), _cover(rule))
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
            word_set = doc.word_set
            for n in self._prefix_lengths:
                for p in {w[:n] for w in word_set if len(w) >= n} & prefixes.keys():
                    found |= prefixes[p]
        if meta:
            for m in ("source=" + doc.source, "lang=" + doc.lang):
                ids = meta.get(m)
                if ids:
                    found |= ids
        return found

    def match(self, article: Any) -> dict[Hashable, Evidence]:
        doc = Document.from_article(article)
        doc.memo.clear()
        by_id = self._by_id
        matched = sorted(i for i in self.candidates(doc) if by_id[i].test(doc))
        out: dict[Hashable, Evidence] = {}
        for i in matched:
            entry = by_id[i]
            out[entry.key] = Evidence.of(collect_hits(entry.rule, doc, fast_spans))
        return out

    # -- compiling predicates ------------------------------------------
    def _compile(self, node: Node) -> Test:
        if isinstance(node, Term):
            stem = node.stem
            if len(node.fields) == 2:
                return lambda d: stem in d.stem_set
            name = node.fields[0]
            return lambda d: stem in d.fields[name].stem_pos
        if isinstance(node, Phrase) and len(node.words) == 1:
            word = node.words[0]
            if len(node.fields) == 2:
                return lambda d: word in d.word_set
            name = node.fields[0]
            return lambda d: word in d.fields[name].word_pos
        if isinstance(node, (Phrase, Prefix)):
            names = node.fields
            return lambda d: any(fast_spans(node, d.fields[n]) for n in names)
        if isinstance(node, Near):
            names = [n for n in node.left.fields if n in node.right.fields]
            left, right, distance = node.left, node.right, node.distance

            def near(d: Document) -> bool:
                for n in names:
                    field = d.fields[n]
                    a = fast_spans(left, field)
                    if a and near_spans(a, fast_spans(right, field), distance)[0]:
                        return True
                return False

            return near
        if isinstance(node, Meta):
            value = node.value
            if node.field == "source":
                return lambda d: d.source == value
            return lambda d: d.lang == value
        if isinstance(node, Not):
            inner = self._compile(node.child)
            return lambda d: not inner(d)
        if isinstance(node, And):
            tests = [self._compile(c) for c in node.children]
            if len(tests) == 2:
                a, b = tests
                return lambda d: a(d) and b(d)
            return lambda d: all(t(d) for t in tests)
        if isinstance(node, Or):
            tests = [self._compile(c) for c in node.children]
            if len(tests) == 2:
                a, b = tests
                return lambda d: a(d) or b(d)
            return lambda d: any(t(d) for t in tests)
        if isinstance(node, PresetRef):
            return self._preset_test(node)
        raise TypeError(f"not a rule node: {node!r}")

    def _preset_test(self, node: PresetRef) -> Test:
        key = (node.kind, node.name)
        test = self._preset_tests.get(key)
        if test is None:
            inner = self._compile(node.rule)

            def test(d: Document) -> bool:
                memo = d.memo
                if key not in memo:
                    memo[key] = inner(d)
                return memo[key]

            self._preset_tests[key] = test
        return test


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


def _cover(node: Node) -> list[Feature] | None:
    """Features of which any match must contain at least one (None: the
    rule can match without any, e.g. under NOT)."""
    if isinstance(node, Term):
        return [("s", node.stem)]
    if isinstance(node, Prefix):
        return [("p", node.prefix)]
    if isinstance(node, Phrase):
        words = node.words
        if len(words) == 1:
            return [("w", words[0])]
        pair = max(zip(words, words[1:]), key=lambda p: len(p[0]) + len(p[1]))
        return [("b", pair[0] + " " + pair[1])]
    if isinstance(node, Meta):
        return [("m", f"{node.field}={node.value}")]
    if isinstance(node, Near):
        return max(_cover(node.left), _cover(node.right), key=_cover_score)
    if isinstance(node, PresetRef):
        return _cover(node.rule)
    if isinstance(node, Not):
        return None
    covers = [_cover(c) for c in node.children]
    if isinstance(node, And):
        usable = [c for c in covers if c is not None]
        return max(usable, key=_cover_score) if usable else None
    if any(c is None for c in covers):  # Or
        return None
    return list(dict.fromkeys(f for c in covers for f in c))
