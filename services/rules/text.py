"""Text normalisation and tokenising, shared by rule terms and documents.

A word is a maximal run of letters and digits (`str.isalnum`); apostrophes,
hyphens and every other character split words. Each word is compared in a
normalised form: casefolded, Latin letters without accents (ü = u), Cyrillic
ё = е. Bare rule terms compare Snowball stems of that form (English stemmer
for Latin-script words, Russian for Cyrillic). Offsets always point into the
original text so evidence can highlight what the reader saw.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

# Combining accents that follow a letter belong to that letter's word: text
# written in decomposed form ("e" + U+0301) must not split "café" in two, and a
# decomposed "и" + U+0306 must stay the single letter й.
_MARKS = "\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
# Underscores are replaced by spaces before matching (same length, so offsets
# survive), which makes `\w` mean exactly "isalnum" here.
_WORD_RE = re.compile(rf"\w[\w{_MARKS}]*")

_ENGLISH = snowballstemmer.stemmer("english")
_RUSSIAN = snowballstemmer.stemmer("russian")

_CACHE_LIMIT = 500_000
_word_cache: dict[str, tuple[str, str]] = {}


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
        return folded
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
    return unicodedata.normalize("NFC", "".join(out)).replace("ё", "е")


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
    """(normalised, stem) of an original word, cached: news text repeats."""
    forms = _word_cache.get(word)
    if forms is None:
        norm = normalise_word(word)
        forms = (norm, stem_normalised(norm))
        if len(_word_cache) >= _CACHE_LIMIT:
            _word_cache.clear()
        _word_cache[word] = forms
    return forms


def iter_words(text: str):
    """(original word, start, end) for every word of `text`."""
    if "_" in text:
        text = text.replace("_", " ")
    for m in _WORD_RE.finditer(text):
        yield m.group(), m.start(), m.end()


def split_words(text: str) -> list[str]:
    """Normalised words of `text` (used for rule terms and phrases)."""
    return [word_forms(w)[0] for w, _, _ in iter_words(text)]


class FieldText:
    """One tokenised field: parallel lists of normalised words, stems and
    (start, end) offsets, plus lookup tables built on first use."""

    __slots__ = ("text", "norms", "stems", "spans", "_stem_pos", "_word_pos", "_prefix_pos")

    def __init__(self, text: str):
        self.text = text
        norms: list[str] = []
        stems: list[str] = []
        spans: list[tuple[int, int]] = []
        cache = _word_cache
        scan = text.replace("_", " ") if "_" in text else text
        for m in _WORD_RE.finditer(scan):
            w = m.group()
            forms = cache.get(w) or word_forms(w)
            norms.append(forms[0])
            stems.append(forms[1])
            spans.append(m.span())
        self.norms = norms
        self.stems = stems
        self.spans = spans
        self._stem_pos: dict[str, list[int]] | None = None
        self._word_pos: dict[str, list[int]] | None = None
        self._prefix_pos: dict[int, dict[str, list[int]]] = {}

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

    def prefix_pos(self, length: int) -> dict[str, list[int]]:
        """Positions of words by their first `length` characters (words
        shorter than `length` are left out)."""
        table = self._prefix_pos.get(length)
        if table is None:
            table = {}
            for i, w in enumerate(self.norms):
                if len(w) >= length:
                    table.setdefault(w[:length], []).append(i)
            self._prefix_pos[length] = table
        return table


def _positions(items: list[str]) -> dict[str, list[int]]:
    table: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        pos = table.get(item)
        if pos is None:
            table[item] = [i]
        else:
            pos.append(i)
    return table


def is_mostly_cyrillic(text: str) -> bool:
    """True when more than half of the letters are Cyrillic."""
    cyrillic = letters = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if "\u0400" <= ch <= "\u052f" or _script(ch) == "cyrillic":
                cyrillic += 1
    return letters > 0 and cyrillic * 2 > letters
