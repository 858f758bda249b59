"""Text normalisation and tokenising, shared by rule terms and documents.

A word is a maximal run of letters and digits (`str.isalnum`), which may hold
single apostrophes *between* letters or digits: Uzbek Latin writes its
letters oʻ and gʻ and the tutuq belgisi with any of ' ‘ ’ ` ʻ ʼ ′, so
`O‘zbekiston`, `O'zbekiston` and `Oʻzbekiston` are one word, normalised with
the ASCII apostrophe (`o'zbekiston`). An apostrophe that does not sit between
two letters or digits, hyphens and every other character split words. A final
English possessive `'s` after a Latin letter is dropped from the normalised
form (`Kazakhstan's` is one word, compared as `kazakhstan`), as the English
stemmer would drop it. Each word is compared in a
normalised form: casefolded, Latin letters without accents (ü = u), Cyrillic
ё = е. Bare rule terms compare Snowball stems of that form (English stemmer
for Latin-script words, Russian for Cyrillic). Offsets always point into the
original text so evidence can highlight what the reader saw.
"""
from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from functools import lru_cache
from operator import itemgetter

import snowballstemmer

# Combining accents that follow a letter belong to that letter's word: text
# written in decomposed form ("e" + U+0301) must not split "café" in two, and a
# decomposed "и" + U+0306 must stay the single letter й.
_MARKS = "\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
# Underscores are replaced by spaces before matching (same length, so offsets
# survive), which makes `\w` mean exactly "isalnum" here. The pattern that
# allows marks is twice as slow, and marks are rare: use it only when needed.
#
# Apostrophe forms (the same set as services/relevance/features.py): ' ‘ ’ `
# and the prime ′ are punctuation, ʻ (U+02BB) and ʼ (U+02BC) are modifier
# letters that `\w` would take as letters, so they are kept out of the word
# character class and allowed, like the others, only between two word
# characters.
APOSTROPHES = "'\u2018\u2019`\u02bb\u02bc\u2032"
_APOS_TABLE = str.maketrans({ch: "'" for ch in APOSTROPHES if ch != "'"})
_W = r"[^\W\u02bb\u02bc]"
_WM = rf"[^\W\u02bb\u02bc]|[{_MARKS}]"
_A = "['\u2018\u2019`\u02bb\u02bc\u2032]"
# Most text has no apostrophe at all (86% of our labeled fields): it takes the
# plain patterns, which give the same words there and are faster.
_PLAIN_RE = re.compile(r"\w+")
_PLAIN_MARKS_RE = re.compile(rf"\w[\w{_MARKS}]*")
_WORD_RE = re.compile(rf"{_W}+(?:{_A}{_W}+)*")
_WORD_MARKS_RE = re.compile(rf"{_W}(?:{_WM})*(?:{_A}{_W}(?:{_WM})*)*")
_MARK_RE = re.compile(rf"[{_MARKS}]")
_APOS_RE = re.compile(_A)


def _pattern(text: str) -> re.Pattern:
    if _APOS_RE.search(text) is None:
        return _PLAIN_MARKS_RE if _MARK_RE.search(text) else _PLAIN_RE
    return _WORD_MARKS_RE if _MARK_RE.search(text) else _WORD_RE

_ENGLISH = snowballstemmer.stemmer("english")
_RUSSIAN = snowballstemmer.stemmer("russian")
# PyStemmer (snowballstemmer's C backend) keeps its own cache of 10,000
# words, which `token` below already does per original word: it only
# duplicates that, and, in a process forked after the subscriptions are
# loaded, each hit writes to it and each purge of the full cache rewrites
# its pages, copying them from the parent (benchmarks/fork_memory.py: one
# article dirtied 27 MB).
for _stemmer in (_ENGLISH, _RUSSIAN):
    if hasattr(_stemmer, "maxCacheSize"):
        _stemmer.maxCacheSize = 0

_CACHE_LIMIT = 500_000
_word_cache: dict[str, tuple[str, str, str | None]] = {}


@lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    if name.startswith("LATIN"):
        return "latin"
    if name.startswith("CYRILLIC"):
        return "cyrillic"
    return ""


def normalise_word(word: str) -> str:
    """The comparison form of one word (see the module docstring)."""
    folded = word.casefold()
    if folded.isascii():
        if "`" in folded:
            folded = folded.replace("`", "'")
        if folded.endswith("'s") and len(folded) > 2:
            return folded[:-2]
        return folded
    folded = folded.translate(_APOS_TABLE)
    out: list[str] = []
    base_is_latin = False
    for ch in unicodedata.normalize("NFKD", folded):
        if unicodedata.combining(ch):
            # Only Latin letters lose their marks: stripping Cyrillic ones
            # would turn й into и.
            if not base_is_latin:
                out.append(ch)
            continue
        base_is_latin = _script(ch) == "latin"
        out.append(ch)
    norm = unicodedata.normalize("NFC", "".join(out)).replace("ё", "е")
    if norm.endswith("'s") and len(norm) > 2 and _script(norm[-3]) == "latin":
        return norm[:-2]
    return norm


def stem_normalised(norm: str) -> str:
    """Snowball stem of a normalised word: Russian if it holds any Cyrillic
    letter, English if it holds a Latin one, else the word itself (numbers,
    other scripts)."""
    if norm.isascii():
        return _ENGLISH.stemWord(norm) if any(c.isalpha() for c in norm) else norm
    scripts = {_script(c) for c in norm}
    if "cyrillic" in scripts:
        return _RUSSIAN.stemWord(norm)
    if "latin" in scripts:
        return _ENGLISH.stemWord(norm)
    return norm


def word_forms(word: str) -> tuple[str, str]:
    """(normalised, stem) of an original word."""
    return token(word)[:2]


def token(word: str) -> tuple[str, str, str | None]:
    """(normalised, stem, first 4 letters or None if shorter) of an original
    word, cached: news text repeats. The prefix is what the Matcher's index
    looks up most; taking it from here spares slicing every word of every
    article."""
    forms = _word_cache.get(word)
    if forms is None:
        norm = normalise_word(word)
        forms = (norm, stem_normalised(norm), norm[:4] if len(norm) >= 4 else None)
        if len(_word_cache) >= _CACHE_LIMIT:
            _word_cache.clear()
        _word_cache[word] = forms
    return forms


_NORM, _STEM, _PREFIX4 = itemgetter(0), itemgetter(1), itemgetter(2)


def split_forms(text: str) -> list[tuple[str, str]]:
    """(normalised, stem) of each word of `text` (rule terms and phrases)."""
    if "_" in text:
        text = text.replace("_", " ")
    return [word_forms(w) for w in _pattern(text).findall(text)]


def split_words(text: str) -> list[str]:
    """Normalised words of `text`."""
    return [norm for norm, _ in split_forms(text)]


class FieldText:
    """One tokenised field: parallel lists of normalised words, stems and
    (start, end) offsets, plus lookup tables built on first use."""

    __slots__ = ("text", "tokens", "norms", "stems", "_scan", "_pattern", "_spans", "_stem_pos", "_word_pos", "_prefix_sets", "_sorted")

    def __init__(self, text: str):
        self.text = text
        scan = text.replace("_", " ") if "_" in text else text
        pattern = _pattern(scan)
        get = _word_cache.get
        self.tokens = tokens = [get(w) or token(w) for w in pattern.findall(scan)]
        self.norms = list(map(_NORM, tokens))
        self.stems = list(map(_STEM, tokens))
        self._scan = scan
        self._pattern = pattern
        self._spans: list[tuple[int, int]] | None = None
        self._stem_pos: dict[str, list[int]] | None = None
        self._word_pos: dict[str, list[int]] | None = None
        self._prefix_sets: dict[int, set[str]] = {}
        self._sorted: list[str] | None = None

    @property
    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of each word; only evidence needs them, so they are
        found on first use (same pattern, so the same words)."""
        if self._spans is None:
            self._spans = [m.span() for m in self._pattern.finditer(self._scan)]
        return self._spans

    @property
    def stem_pos(self) -> dict[str, list[int]]:
        if self._stem_pos is None:
            self._stem_pos = _positions(self.stems)
        return self._stem_pos

    @property
    def word_pos(self) -> dict[str, list[int]]:
        if self._word_pos is None:
            self._word_pos = _positions(self.norms)
        return self._word_pos

    @property
    def sorted_words(self) -> list[str]:
        """Distinct normalised words in order (prefix look-ups bisect it)."""
        if self._sorted is None:
            self._sorted = sorted(set(self.norms))
        return self._sorted

    def prefix_set(self, length: int) -> set[str]:
        """First `length` characters of every word at least that long."""
        found = self._prefix_sets.get(length)
        if found is None:
            if length == 4:
                found = set(map(_PREFIX4, self.tokens))
                found.discard(None)
            else:
                found = {w[:length] for w in self.norms if len(w) >= length}
            self._prefix_sets[length] = found
        return found


def starts_any(sorted_words: list[str], prefix: str) -> bool:
    """Whether a word of `sorted_words` (sorted, distinct) starts with
    `prefix`: in sorted order the first word not below the prefix is the
    only one that can."""
    i = bisect_left(sorted_words, prefix)
    return i < len(sorted_words) and sorted_words[i].startswith(prefix)


def _positions(items: list[str]) -> dict[str, list[int]]:
    table: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        pos = table.get(item)
        if pos is None:
            table[item] = [i]
        else:
            pos.append(i)
    return table


_LETTER_RE = re.compile(r"[^\W\d_]")
_CYRILLIC_RE = re.compile(r"[\u0400-\u052f\u1c80-\u1c8f\u2de0-\u2dff\ua640-\ua69f]")


def is_mostly_cyrillic(text: str) -> bool:
    """True when more than half of the letters are Cyrillic."""
    if text.isascii():
        return False
    letters = len(_LETTER_RE.findall(text))
    return letters > 0 and len(_CYRILLIC_RE.findall(text)) * 2 > letters
