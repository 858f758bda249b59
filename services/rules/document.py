"""An article prepared for matching: tokenised once, shared by every rule."""
from __future__ import annotations

from operator import itemgetter
from typing import Any

from services.rules import verdicts
from services.rules.parser import primary_language
from services.rules.text import FieldText, is_mostly_cyrillic


class Document:
    """Title and summary tokenised (see `services.rules.text`), plus the
    source and language that `source:` and `lang:` compare with.

    `lang` is the primary language subtag, casefolded (`ru-RU` -> `ru`). When
    the article has none, it is inferred: `ru` if more than half of the
    letters in title and summary are Cyrillic, else `en`. A Kazakh or Kyrgyz
    text in Cyrillic is therefore `ru` unless its feed says otherwise.
    """

    __slots__ = ("title", "summary", "source", "lang", "fields", "_stem_set", "_word_set", "_bigrams", "_prefix_sets",
                 "_tables", "_sorted", "memo", "_verdicts", "__weakref__")

    def __init__(self, title: str = "", summary: str = "", source: str = "", lang: str | None = None):
        self.title = title or ""
        self.summary = summary or ""
        self.source = (source or "").strip().casefold()
        if lang and lang.strip():
            self.lang = primary_language(lang)
        else:
            self.lang = "ru" if is_mostly_cyrillic(self.title + " " + self.summary) else "en"
        self.fields = {"title": FieldText(self.title), "summary": FieldText(self.summary)}
        self._stem_set: set[str] | None = None
        self._word_set: set[str] | None = None
        self._bigrams: set[str] | None = None
        self._prefix_sets: dict[int, set[str]] = {}
        self._tables: dict[str, set] = {}
        self._sorted: list[str] | None = None
        # Results shared across rules while matching, so that a preset used
        # by many rules is worked out once per document: keys are (a
        # compiler's MEMO tag, id of the preset tree), see rules/closures.py.
        self.memo: dict[tuple[str, int], Any] = {}
        self._verdicts: dict[str, float] | None = None

    @classmethod
    def from_article(cls, article: Any) -> "Document":
        """From an `Article`, a dict, or anything with those attributes."""
        if isinstance(article, Document):
            return article
        if isinstance(article, dict):
            get = article.get
        else:
            def get(name, default=None):
                return getattr(article, name, default)
        return cls(get("title") or "", get("summary") or "", get("source") or "", get("lang"))

    def verdict(self, name: str, model: Any) -> float:
        """The relevance model `name`'s score of this article. The first
        verdict asked works out the scores of every model loaded by
        `verdicts.load` at once (for about the cost of one) and keeps them,
        so the others are look-ups; `model` is scored alone only when it is
        not among them (loaded since)."""
        scores = self._verdicts
        if scores is None:
            scores = self._verdicts = verdicts.scores(self)
        score = scores.get(name)
        if score is None:
            score = scores[name] = model.score((self.title, self.summary))
        return score

    # Feature sets for the index, built on first use (each grown in place
    # from the title's: `union` would copy it once more).
    @property
    def stem_set(self) -> set[str]:
        if self._stem_set is None:
            found = self._stem_set = set(self.fields["title"].stems)
            found.update(self.fields["summary"].stems)
        return self._stem_set

    @property
    def word_set(self) -> set[str]:
        if self._word_set is None:
            found = self._word_set = set(self.fields["title"].norms)
            found.update(self.fields["summary"].norms)
        return self._word_set

    @property
    def bigrams(self) -> set[tuple[str, str]]:
        """Adjacent word pairs within a field, as (first, second)."""
        if self._bigrams is None:
            norms = self.fields["title"].norms
            pairs = self._bigrams = set(zip(norms, norms[1:]))
            norms = self.fields["summary"].norms
            pairs.update(zip(norms, norms[1:]))
        return self._bigrams

    @property
    def sorted_words(self) -> list[str]:
        """Distinct normalised words of both fields in order."""
        if self._sorted is None:
            self._sorted = sorted(self.word_set)
        return self._sorted

    def prefix_set(self, length: int) -> set[str]:
        """First `length` characters of every word that long, both fields."""
        found = self._prefix_sets.get(length)
        if found is None:
            if length == 4:
                # The tokeniser keeps each word's first 4 letters (None when
                # shorter): the prefix the index reads on every article.
                found = set(map(_PREFIX4, self.fields["title"].tokens))
                found.update(map(_PREFIX4, self.fields["summary"].tokens))
                found.discard(None)
            else:
                found = {w[:length] for w in self.word_set if len(w) >= length}
            self._prefix_sets[length] = found
        return found

    def table(self, name: str) -> set:
        """One of the feature sets the Matcher's index looks up
        (`services.rules.clauses`): `s`/`w`/`b` stems, words and word pairs
        of both fields, the same prefixed `t`/`s` for the title or summary
        alone, `p1`..`p4` word prefixes, `m` the source and language."""
        found = self._tables.get(name)
        if found is None:
            found = self._tables[name] = self._build_table(name)
        return found

    def _build_table(self, name: str) -> set:
        if name == "s":
            return self.stem_set
        if name == "w":
            return self.word_set
        if name == "b":
            return self.bigrams
        if name == "m":
            return {"source=" + self.source, "lang=" + self.lang}
        if name == verdicts.TABLE:
            # Never built whole: which verdicts hold depends on which are
            # asked about (verdicts.holding), and the first costs the
            # models' scores.
            raise ValueError("the verdicts table is looked up with verdicts.holding")
        if name[0] == "p":
            return self.prefix_set(int(name[1:]))
        field = self.fields["title" if name[0] == "t" else "summary"]
        kind = name[1]
        if kind == "s":
            return set(field.stems)
        if kind == "w":
            return set(field.norms)
        norms = field.norms
        return set(zip(norms, norms[1:]))


_PREFIX4 = itemgetter(2)  # of a token (normalised, stem, first 4 letters): see text.token
