"""Matched terms in bulk: `Evidence.terms()` of every match of an article,
without building its hits.

`tulpar classify` prints, for each of a few hundred matches per article, the
distinct terms that matched in the order they first occur. Building every
`Hit` (character offsets included) and sorting them cost ~13 µs a match
(cProfile of the command at 100k rules); the order needs much less:

- Only each term's *first* occurrence counts, and the first occurrence of a
  leaf in a document is the same for every rule that uses the leaf: it is
  worked out once per article (`TermsMemo`), as (field, first word, last
  word). Word positions order occurrences exactly as character offsets do
  (offsets grow with positions), so the character offsets are not needed.
- Most rules are *flat*: ANDs and ORs of leaves, NOTs, `source:`/`lang:`,
  NEARs and presets, where no AND sits under an OR. For a flat rule that
  matched, every AND child matched, so a leaf contributes exactly when it
  occurs in the document (a NOT or `source:`/`lang:` never does): no tree
  walk, only the leaves' first occurrences. The Matcher has already decided
  the match; this only orders the evidence.
- Anything else, and a preset's own tree, goes through `TermsCompiler`, which
  follows `services.rules.compiled` node for node (every matching branch of
  an OR, NEAR occurrences that have a partner) but keeps each term's first
  occurrence instead of every hit. A preset is worked out once per article.

tests/unit/rules/test_matcher.py checks `Matches.terms()` against
`Evidence.terms()` of `evaluate()` on random rules and articles.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Callable, Hashable

import numpy as np

from services.rules import verdicts
from services.rules.closures import ClosureCompiler, fast_spans, key_set, near_matches, present
from services.rules.document import Document
from services.rules.evaluate import FIELD_ORDER
from services.rules.nodes import BOTH, And, Leaf, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term

Position = tuple[int, int, int]  # field (title 0, summary 1), first word, last word
Firsts = dict[str, Position]  # term as written -> its first occurrence
FirstsFn = Callable[[Document], "Firsts | None"]  # None: the node does not match


def first_occurrence(leaf: Leaf, doc: Document) -> Position | None:
    if isinstance(leaf, Prefix):
        return _first_prefixed(leaf, doc)
    words = getattr(leaf, "words", ())
    if len(words) > 1 and words[:2] not in doc.bigrams:
        # Most phrases asked about are absent (an OR matched by another
        # branch): the article's word pairs, which the index has built
        # already, rule them out in one look-up.
        return None
    for name in leaf.fields:  # title before summary
        spans = fast_spans(leaf, doc.fields[name])
        if spans:  # in reading order: the first is the earliest
            i, j = spans[0]
            return (FIELD_ORDER[name], i, j)
    return None


def _first_prefixed(leaf: Prefix, doc: Document) -> Position | None:
    """The words with the prefix are a run of the field's sorted distinct
    words: the earliest of their first positions, without a scan of the
    field."""
    prefix = leaf.prefix
    for name in leaf.fields:
        field = doc.fields[name]
        words = field.sorted_words
        i = bisect_left(words, prefix)
        best = None
        while i < len(words) and words[i].startswith(prefix):
            first = field.word_pos[words[i]][0]
            if best is None or first < best:
                best = first
            i += 1
        if best is not None:
            return (FIELD_ORDER[name], best, best)
    return None


def leaf_signature(leaf: Leaf) -> Hashable:
    """What a leaf's occurrences depend on (not how it is written: `Tariff`
    and `tariffs` occur at the same places)."""
    if isinstance(leaf, Term):
        return ("s", leaf.stem, leaf.fields)
    if isinstance(leaf, Prefix):
        return ("p", leaf.prefix, leaf.fields)
    return ("w", leaf.words, leaf.fields)


def ordered(firsts: Firsts) -> tuple[str, ...]:
    """Terms by first occurrence; at the same place, by text (as
    `Hit.sort_key` orders hits)."""
    if len(firsts) < 2:
        return tuple(firsts)
    return tuple(sorted(firsts, key=lambda t: (firsts[t], t)))


def _merge(into: Firsts, items) -> None:
    for term, pos in items:
        old = into.get(term)
        if old is None or pos < old:
            into[term] = pos


class TermsCompiler(ClosureCompiler[FirstsFn]):
    """Rule trees -> `firsts(doc)`: {term: first occurrence} of the hits
    `services.rules.compiled` would give, or None when the node does not
    match. Used for presets and the rules that are not flat."""

    MEMO = "terms"

    def leaf(self, leaf: Leaf) -> FirstsFn:
        text = leaf.text

        def occurs(d: Document):
            pos = first_occurrence(leaf, d)
            return None if pos is None else {text: pos}

        return occurs

    def all_of(self, node: And) -> FirstsFn:
        parts = [self.compile(c) for c in node.children]

        def all_of(d: Document):
            out: Firsts = {}
            for part in parts:
                got = part(d)
                if got is None:
                    return None
                _merge(out, got.items())
            return out

        return all_of

    def any_of(self, node: Or) -> FirstsFn:
        groups, rest = self.plain_groups(node)
        checks = [(table, length, fields, key_set(table, length, leaves), leaves)
                  for (table, length, fields), leaves in groups.items()]
        others = [self.compile(child) for child in rest]

        def any_of(d: Document):
            out: Firsts = {}
            matched = False
            for table, length, fields, keys, leaves in checks:
                found = present(d, table, length, fields, keys)
                if found:
                    matched = True
                    for key in found:
                        for leaf in leaves[key]:
                            pos = first_occurrence(leaf, d)
                            if pos is not None:
                                _merge(out, ((leaf.text, pos),))
            for other in others:
                got = other(d)
                if got is not None:
                    matched = True
                    _merge(out, got.items())
            return out if matched else None

        return any_of

    def negation(self, node: Not) -> FirstsFn:
        inner = self.compile(node.child)
        return lambda d: {} if inner(d) is None else None

    def near(self, node: Near) -> FirstsFn:
        return near_firsts(node)

    def meta(self, node: Meta) -> FirstsFn:
        value = node.value
        if node.field == verdicts.FIELD:
            def verdict(d: Document):
                if not verdicts.holds(d, value):
                    return None
                firsts: Firsts = {}
                for term, name, i in verdicts.evidence(d, value):  # in reading order
                    firsts.setdefault(term, (FIELD_ORDER[name], i, i))
                return firsts
            return verdict
        if node.field == "source":
            return lambda d: {} if d.source == value else None
        return lambda d: {} if d.lang == value else None


def near_firsts(node: Near) -> FirstsFn:
    matches = near_matches(node)
    left, right = node.left.text, node.right.text

    def near(d: Document):
        # Fields come title first, so the first field where the two sides
        # meet holds the earliest occurrence of each.
        for name, _, keep_left, keep_right in matches(d):
            order = FIELD_ORDER[name]
            out: Firsts = {}
            _merge(out, ((left, (order, *min(keep_left))), (right, (order, *min(keep_right)))))
            return out
        return None

    return near


# Where a flat rule's leaf is looked up (`TermsMemo.tables`): first
# occurrences of stems / words in both fields, the title or the summary (one
# pass over the article's words each, built when first needed), or, for
# prefixes and phrases of several words, by leaf id, worked out per leaf.
STEMS, WORDS, TITLE_STEMS, TITLE_WORDS, SUMMARY_STEMS, SUMMARY_WORDS, OTHER = range(7)
_TABLE_OF = {("s", BOTH): STEMS, ("w", BOTH): WORDS, ("s", ("title",)): TITLE_STEMS,
             ("w", ("title",)): TITLE_WORDS, ("s", ("summary",)): SUMMARY_STEMS, ("w", ("summary",)): SUMMARY_WORDS}


class TermsMemo:
    """Per article: the first-occurrence tables (None until needed), and
    the results of shared functions (NEARs, presets) by id."""

    __slots__ = ("doc", "known", "tables", "shared")

    def __init__(self, doc: Document, planner: "TermsPlanner"):
        self.doc = doc
        self.known = planner.leaves
        self.tables: list[dict | None] = [None] * OTHER + [{}]
        self.shared: dict[int, Firsts | None] = {}

    def build(self, table: int) -> dict:
        fields = self.doc.fields
        if table in (STEMS, WORDS):
            parts = [(0, fields["title"]), (1, fields["summary"])]
        else:
            parts = [(0, fields["title"])] if table in (TITLE_STEMS, TITLE_WORDS) else [(1, fields["summary"])]
        stems = table in (STEMS, TITLE_STEMS, SUMMARY_STEMS)
        found: dict[str, Position] = {}
        # Backwards, so the earliest occurrence is the one left standing.
        for order, field in reversed(parts):
            items = field.stems if stems else field.norms
            for i in range(len(items) - 1, -1, -1):
                found[items[i]] = (order, i, i)
        self.tables[table] = found
        return found


class FlatPlan(tuple):
    """A flat rule's leaves as one tuple (table, key, term, table, key,
    term, ...)."""

    __slots__ = ()


class OrPlan(tuple):
    """A flat rule whose leaves are all looked up in one table, under
    different keys (`a OR b OR c`, `lang:ru (a OR b)`, `a b c`): (table, key, (term,),
    key, (term,), ...). Most matches of such a rule have one of its terms,
    and get that one-term tuple, made once."""

    __slots__ = ()


class PairPlan(tuple):
    """A flat rule with exactly two leaves of different terms, both
    required (no OR): (table, key, table, key, terms in that order, in the
    other order, at the same place). Its answer is one of two tuples made
    once (`title:a b`, `a b -c`, `pre* a` are common shapes)."""

    __slots__ = ()


# A rule's terms in one article, as `terms_of` reads it: the terms
# themselves when they are the same in every article that matches (a plain
# tuple); an OrPlan, PairPlan or FlatPlan; or a function of the article. With 100k
# rules most of the cost of a match is fetching its rule's objects from
# memory (measured: the same article's terms asked for a second time take a
# third of the first), so the common plans are one object each, not a
# closure with its cells, and a constant's terms are not even looked at.
Terms = tuple[str, ...] | OrPlan | PairPlan | FlatPlan | Callable[[TermsMemo], "tuple[str, ...]"]


def terms_of(plan: Terms, memo: TermsMemo) -> tuple[str, ...]:
    kind = plan.__class__
    if kind is tuple:
        return plan
    if kind is PairPlan:
        table_a, key_a, table_b, key_b, ab, ba, tie = plan
        a = _position(table_a, key_a, memo)
        b = _position(table_b, key_b, memo)
        if not (a and b):  # the Matcher said it matches: both must occur
            raise AssertionError(f"terms disagree with the match for the leaves {key_a!r}, {key_b!r}")
        return ab if a < b else ba if b < a else tie
    if kind is OrPlan:
        firsts = memo.tables[plan[0]]
        if firsts is None:
            firsts = memo.build(plan[0])
        parts = iter(plan)
        next(parts)
        get = firsts.get
        found = [(pos, one) for key, one in zip(parts, parts) if (pos := get(key)) is not None]
        if len(found) < 2:
            return found[0][1] if found else ()
        found.sort()  # terms differ, so this sorts as (position, term)
        return tuple(one[0] for _, one in found)
    if kind is FlatPlan:
        return _in_order(_found(plan, memo))
    return plan(memo)


def _position(table: int, key, memo: TermsMemo) -> Position | bool | None:
    """A leaf's first occurrence (None or False: it does not occur)."""
    firsts = memo.tables[table]
    if firsts is None:
        firsts = memo.build(table)
    pos = firsts.get(key)
    if pos is None and table == OTHER:
        pos = firsts[key] = first_occurrence(memo.known[key], memo.doc) or False
    return pos


def _found(plan: FlatPlan, memo: TermsMemo) -> list[tuple[Position, str]]:
    """(first occurrence, term) of each leaf of a flat plan that occurs."""
    found = []
    tables = memo.tables
    parts = iter(plan)
    for table, key, text in zip(parts, parts, parts):
        firsts = tables[table]
        if firsts is None:
            firsts = memo.build(table)
        pos = firsts.get(key)
        if pos is None and table == OTHER:  # not looked up yet for this article
            pos = firsts[key] = first_occurrence(memo.known[key], memo.doc) or False
        if pos:  # (`_position` inlined: this loop runs for most matches)
            found.append((pos, text))
    return found


def _in_order(found: list[tuple[Position, str]]) -> tuple[str, ...]:
    """Distinct terms by first occurrence: (position, term) pairs sort in
    the order `ordered` gives, and a term's first pair is its first
    occurrence."""
    if len(found) < 2:
        return (found[0][1],) if found else ()
    found.sort()
    if len(found) == 2:
        (_, a), (_, b) = found
        return (a, b) if a != b else (a,)
    return tuple(dict.fromkeys([text for _, text in found]))


class TermsPlanner:
    """Compiles rules to `terms(memo) -> tuple of terms`, sharing leaves,
    NEARs and presets between rules (one planner per Matcher)."""

    def __init__(self):
        self._leaf_ids: dict[Hashable, int] = {}
        self.leaves: list[Leaf] = []  # by leaf id (prefixes and phrases of flat rules)
        self._shared: dict[Hashable, tuple[int, FirstsFn]] = {}
        self._compiler = TermsCompiler()

    def plan(self, rule: Node) -> Terms:
        items = _flat_and(rule)
        if items is None:
            whole = self._compiler.compile(rule)

            def general(memo: TermsMemo) -> tuple[str, ...]:
                firsts = whole(memo.doc)
                if firsts is None:  # the Matcher said it matches: the two must agree
                    raise AssertionError(f"terms disagree with the match for rule {rule!r}")
                return ordered(firsts)

            return general
        leaves = tuple(self._leaf(n) for n in items if isinstance(n, (Term, Phrase, Prefix)))
        shared = tuple(self._shared_fn(n) for n in items if isinstance(n, (Near, PresetRef)))
        if not shared and _OPTIONAL not in items and len({text for _, _, text in leaves}) <= 1:
            # At most one distinct term, and a match has it (no OR branch
            # could match without it), or there is none.
            return tuple(dict.fromkeys(text for _, _, text in leaves))
        if not shared and len(leaves) == 2 and _required(rule) and leaves[0][2] != leaves[1][2]:
            (table_a, key_a, a), (table_b, key_b, b) = leaves
            return PairPlan((table_a, key_a, table_b, key_b, (a, b), (b, a), (a, b) if a < b else (b, a)))
        tables = {table for table, _, _ in leaves}
        if not shared and len(tables) == 1 and OTHER not in tables and len({k for _, k, _ in leaves}) == len(leaves):
            # One table and distinct keys, so distinct terms too.
            return OrPlan((leaves[0][0], *(part for _, key, text in leaves for part in (key, (text,)))))
        plan = FlatPlan(part for leaf in leaves for part in leaf)
        if not shared:
            return plan

        def flat_with_shared(memo: TermsMemo) -> tuple[str, ...]:
            found = _found(plan, memo)
            for i, fn in shared:
                got = memo.shared.get(i, memo)
                if got is memo:
                    got = memo.shared[i] = fn(memo.doc)
                if got:
                    found += [(pos, text) for text, pos in got.items()]
            return _in_order(found)

        return flat_with_shared

    def _leaf(self, leaf: Leaf) -> tuple[int, Hashable, str]:
        """(table, key, term) of a flat rule's leaf."""
        if isinstance(leaf, Term):
            return _TABLE_OF[("s", leaf.fields)], leaf.stem, leaf.text
        if isinstance(leaf, Phrase) and len(leaf.words) == 1:
            return _TABLE_OF[("w", leaf.fields)], leaf.words[0], leaf.text
        return OTHER, self._leaf_id(leaf), leaf.text

    def _leaf_id(self, leaf: Leaf) -> int:
        signature = leaf_signature(leaf)
        i = self._leaf_ids.get(signature)
        if i is None:
            i = self._leaf_ids[signature] = len(self.leaves)
            self.leaves.append(leaf)
        return i

    def _shared_fn(self, node: Near | PresetRef) -> tuple[int, FirstsFn]:
        # Presets by the identity of their tree (hashing a preset's tree per
        # rule would cost more than the rest); NEARs by value.
        key = ("preset", id(node.rule)) if isinstance(node, PresetRef) else node
        found = self._shared.get(key)
        if found is None:
            found = self._shared[key] = (len(self._shared), self._compiler.compile(node))
        return found


def _flat_and(node: Node) -> list[Node | None] | None:
    """The contributing parts of a flat rule that matched (leaves, NEARs,
    presets), or None when the rule is not flat. Under an AND every child
    matched; NOT and source:/lang: never contribute."""
    if isinstance(node, (Term, Phrase, Prefix, Near, PresetRef)):
        return [node]
    if isinstance(node, (Not, Meta)):
        return []
    if isinstance(node, And):
        out: list[Node | None] = []
        for child in node.children:
            got = _flat_and(child)
            if got is None:
                return None
            out += got
        return out
    if isinstance(node, Or):
        return _flat_or(node)
    return None


def _required(node: Node) -> bool:
    """Whether every part `_flat_and` gives must occur for a match (no OR
    outside a NOT)."""
    if isinstance(node, And):
        return all(map(_required, node.children))
    return not isinstance(node, Or)


_OPTIONAL = None  # in `_flat_or`'s list: a branch that can match with no terms


def _flat_or(node: Node) -> list[Node | None] | None:
    """Under an OR a part contributes when it matched: a leaf when it
    occurs, a NEAR or preset when its own terms say so (None: no match). An
    AND under an OR needs a real evaluation: not flat."""
    if isinstance(node, (Term, Phrase, Prefix, Near, PresetRef)):
        return [node]
    if isinstance(node, (Not, Meta)):
        return [_OPTIONAL]
    if isinstance(node, Or):
        out: list[Node | None] = []
        for child in node.children:
            got = _flat_or(child)
            if got is None:
                return None
            out += got
        return out
    return None


# -- in bulk, by arrays ------------------------------------------------
# With a few hundred matches per article, even one small Python step per
# match (fetching the rule's plan from memory, looking its keys up) is most
# of the cost of `tulpar classify`. Nearly every match is of a rule whose
# terms are the same in every article (a plain tuple plan) or of a flat rule
# with one or a few leaves of which exactly one occurs (`a OR b OR c`): both
# are answered by numpy over rule ids, the second by marking which of the
# rules' leaves the article has. Only what is left (two or more leaves that
# occur: they must be ordered by position; NEARs, presets, rules that are
# not flat) goes through `terms_of`, as before.
SLOTS = 4  # leaves per rule held in the arrays (more: `terms_of`)
UNPLANNED, CONSTANT, LEAVES, GENERAL = range(4)
# Where a leaf's presence is read: the Document's feature sets by name
# (`Document.table`), per `_TABLE_OF` table; two-word phrases as word pairs.
_DOC_TABLE = {STEMS: "s", WORDS: "w", TITLE_STEMS: "ts", TITLE_WORDS: "tw", SUMMARY_STEMS: "ss", SUMMARY_WORDS: "sw"}
_PAIR_TABLE = {BOTH: "b", ("title",): "tb", ("summary",): "sb"}


class _Grid:
    """Growable per-rule arrays (rows by rule id)."""

    __slots__ = ("kind", "const", "leaves", "single")

    def __init__(self, n: int = 1024):
        self.kind = np.zeros(n, dtype=np.int8)
        self.const = np.zeros(n, dtype=np.int32)
        self.leaves = np.zeros((n, SLOTS), dtype=np.int32)  # 0: no leaf (never present)
        self.single = np.zeros((n, SLOTS), dtype=np.int32)  # terms id of (that leaf's term,)

    def grown(self, n: int) -> "_Grid":
        bigger = _Grid(max(n, 2 * len(self.kind)))
        for name in self.__slots__:
            old = getattr(self, name)
            getattr(bigger, name)[: len(old)] = old
        return bigger


class TermsTable:
    """Every match's terms for a whole article at once, as ids of distinct
    terms tuples (`values`), by rule id. One per Matcher; a rule is planned
    when it first matches.

    Term tuples are interned: those fixed by a rule (its constant terms, or
    one of its leaves alone) for as long as the rule exists; others as they
    are met, and when more than DYNAMIC_LIMIT of those have gathered the
    table starts over (`generation` changes; ids from before mean nothing)."""

    DYNAMIC_LIMIT = 500_000

    def __init__(self):
        self.generation = 0
        self._reset()

    def _reset(self) -> None:
        self.planner = TermsPlanner()
        self.values: list[tuple[str, ...]] = []
        self._value_ids: dict[tuple[str, ...], int] = {}
        self._dynamic = 0
        self._plans: dict[int, Terms] = {}  # rule id -> plan, for what the arrays do not answer
        self._grid = _Grid()
        # Leaf ids (0 is no leaf): per doc table name, key -> leaf id; and
        # the leaves only Python can look for (prefixes, longer phrases).
        self._leaf_ids: dict[str, dict[Hashable, int]] = {}
        self._python_ids: dict[int, int] = {}  # planner leaf id -> leaf id
        self._python_leaves: dict[int, Leaf] = {}  # leaf id -> leaf
        self._python_mask = np.zeros(1024, dtype=bool)
        self._flags = np.zeros(1024, dtype=bool)  # scratch: all False between articles
        self._next_leaf = 1
        self._empty = self._intern(())

    def forget(self, rule_id: int) -> None:
        """The rule is gone (ids are not reused: only its plan is dropped)."""
        self._plans.pop(rule_id, None)

    def _intern(self, terms: tuple[str, ...]) -> int:
        i = self._value_ids.get(terms)
        if i is None:
            i = self._value_ids[terms] = len(self.values)
            self.values.append(terms)
        return i

    def _intern_dynamic(self, terms: tuple[str, ...]) -> int:
        i = self._value_ids.get(terms)
        if i is None:
            self._dynamic += 1
            i = self._value_ids[terms] = len(self.values)
            self.values.append(terms)
        return i

    def term_ids(self, ids: np.ndarray, rule_of: Callable[[int], Node], doc: Document) -> np.ndarray:
        """The terms id of each rule in `ids` (rule ids that match `doc`):
        `self.values[id]` is what `terms_of` gives for it."""
        if self._dynamic > self.DYNAMIC_LIMIT:
            self.generation += 1
            self._reset()
        if not len(ids):
            return np.zeros(0, dtype=np.int32)
        grid = self._grid
        if int(ids[-1]) >= len(grid.kind):  # ids ascend
            grid = self._grid = grid.grown(int(ids[-1]) + 1)
        kind = grid.kind[ids]
        if not kind.all():
            for i in ids[kind == UNPLANNED].tolist():
                self._plan(i, rule_of(i))
            grid = self._grid
            kind = grid.kind[ids]
        out = grid.const[ids]  # final for the CONSTANT rows
        memo: TermsMemo | None = None
        rows = np.flatnonzero(kind == LEAVES)
        if len(rows):
            rules = ids[rows]
            leaves = grid.leaves[rules]
            marked = self._mark(doc, leaves)
            have = self._flags[leaves]
            self._flags[marked] = False
            count = have.sum(axis=1)
            one = count == 1
            out[rows[one]] = grid.single[rules[one], have[one].argmax(axis=1)]
            out[rows[count == 0]] = self._empty
            several = np.flatnonzero(count > 1)
            if len(several):
                # Two or more occur: ordered by position, as `terms_of` does.
                memo = TermsMemo(doc, self.planner)
                plans = self._plans
                for j, i in zip(rows[several].tolist(), rules[several].tolist()):
                    out[j] = self._intern_dynamic(terms_of(plans[i], memo))
        rows = np.flatnonzero(kind == GENERAL)
        if len(rows):
            if memo is None:
                memo = TermsMemo(doc, self.planner)
            plans = self._plans
            for j, i in zip(rows.tolist(), ids[rows].tolist()):
                out[j] = self._intern_dynamic(terms_of(plans[i], memo))
        return out

    def _mark(self, doc: Document, leaves: np.ndarray) -> list[int]:
        """Set the flags of the leaves `doc` has (all of those the table
        reads, and those of `leaves` only Python can look for); returns what
        it set, to be cleared."""
        marked: list[int] = []
        for name, known in self._leaf_ids.items():
            found = doc.table(name) & known.keys()
            if found:
                marked += [known[k] for k in found]
        if self._python_leaves:
            python = leaves[self._python_mask[leaves]]
            if len(python):
                known = self._python_leaves
                marked += [i for i in set(python.tolist()) if first_occurrence(known[i], doc) is not None]
        if marked:
            self._flags[marked] = True
        return marked

    def _plan(self, i: int, rule: Node) -> None:
        grid = self._grid
        node = rule.__class__
        # The commonest rules first, without the planner: one leaf (its
        # term, since the rule matched), and an OR of plain terms (`a OR b`).
        if node is Term or node is Phrase or node is Prefix:
            grid.kind[i] = CONSTANT
            grid.const[i] = self._intern((rule.text,))
            return
        plan = None
        if node is Or and len(rule.children) <= SLOTS and \
                all(c.__class__ is Term and c.fields == BOTH for c in rule.children):
            plan = FlatPlan(part for c in rule.children for part in (STEMS, c.stem, c.text))
        else:
            plan = self.planner.plan(rule)
        kind = plan.__class__
        if kind is tuple:
            grid.kind[i] = CONSTANT
            grid.const[i] = self._intern(plan)
            return
        leaves = None
        if kind is OrPlan:
            # The same leaves as a FlatPlan: with distinct keys in one table
            # (so distinct positions) and distinct terms, the same answer.
            table = plan[0]
            leaves = [(table, key, one[0]) for key, one in zip(plan[1::2], plan[2::2])]
            plan = FlatPlan(part for leaf in leaves for part in leaf)
        elif kind is FlatPlan:
            parts = iter(plan)
            leaves = list(zip(parts, parts, parts))
        self._plans[i] = plan
        if leaves is None or len(leaves) > SLOTS or len({text for _, _, text in leaves}) < len(leaves):
            grid.kind[i] = GENERAL
            return
        for slot, (table, key, text) in enumerate(leaves):
            grid.leaves[i, slot] = self._leaf_id(table, key)
            grid.single[i, slot] = self._intern((text,))
        grid.kind[i] = LEAVES

    def _leaf_id(self, table: int, key: Hashable) -> int:
        if table == OTHER:
            leaf = self.planner.leaves[key]
            if isinstance(leaf, Phrase) and len(leaf.words) == 2:
                name, key, leaf = _PAIR_TABLE[leaf.fields], leaf.words, None
        else:
            name, leaf = _DOC_TABLE[table], None
        if leaf is None:
            known = self._leaf_ids.setdefault(name, {})
            i = known.get(key)
            if i is None:
                i = known[key] = self._new_leaf()
            return i
        # Prefixes and longer phrases, by the planner's leaf id.
        i = self._python_ids.get(key)
        if i is None:
            i = self._python_ids[key] = self._new_leaf()
            self._python_leaves[i] = leaf
            self._python_mask[i] = True
        return i

    def _new_leaf(self) -> int:
        i = self._next_leaf
        self._next_leaf += 1
        if i >= len(self._flags):
            n = 2 * len(self._flags)
            self._flags = np.zeros(n, dtype=bool)
            mask = np.zeros(n, dtype=bool)
            mask[: len(self._python_mask)] = self._python_mask
            self._python_mask = mask
        return i
