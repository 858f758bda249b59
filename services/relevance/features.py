"""Deterministic features of an article for the relevance model.

An article's title and summary are normalised (Unicode NFKC, casefolded,
Cyrillic ё read as е, the Uzbek apostrophe forms ' ‘ ’ ` ʻ ʼ folded to one
ASCII apostrophe that stays *inside* a word, so O‘zbekiston, O'zbekiston and
Oʻzbekiston are the same word) and turned into binary features:

- ``w:WORD``       word unigrams;
- ``b:WORD WORD``  word bigrams (never across the title/summary boundary);
- ``c:NGRAM``      character 3- to 5-grams inside a word padded as ``<word>``,
  which carry the suffixes of agglutinative Uzbek and Kazakh
  (``qozog'istonda`` shares ``ston`` / ``nda>`` with other forms).

Each feature name is hashed into ``2**HASH_BITS`` slots with BLAKE2b (stable
across processes and machines, unlike Python's salted ``hash()``). An
article's vector is the set of slots its features fall in, each worth
1/sqrt(number of slots): binary and L2-normalised (two names that share a
slot count once). A trained model keeps the names of the features it has
seen, so a score can be explained in readable form.
"""
from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable

from services.rules.text import APOSTROPHES

HASH_BITS = 20
DIM = 1 << HASH_BITS
NGRAM_RANGE = (3, 5)

# The apostrophe forms are the tokeniser's (' ‘ ’ ` ʻ ʼ and the prime ′).
_OTHER_APOSTROPHES = APOSTROPHES.replace("'", "")
# A word: letters/digits, with single apostrophes allowed between them.
_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def normalise(text: str) -> str:
    """NFKC, casefold, ё -> е, every apostrophe form -> '."""
    text = unicodedata.normalize("NFKC", text or "")
    # str.replace per apostrophe form, not str.translate with a table: the
    # same result, but translate looks up every character of a Cyrillic
    # text in the table (~15 us an article, most of normalising).
    for ch in _OTHER_APOSTROPHES:
        if ch in text:
            text = text.replace(ch, "'")
    return text.casefold().replace("ё", "е")


def words(text: str) -> list[str]:
    """The normalised words of `text`, in order."""
    return _WORD_RE.findall(normalise(text))


def char_ngrams(word: str, lo: int = NGRAM_RANGE[0], hi: int = NGRAM_RANGE[1]) -> list[str]:
    padded = f"<{word}>"
    out = []
    for n in range(lo, hi + 1):
        out.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return out


def _fields(article: Any) -> tuple[str, str]:
    if isinstance(article, dict):
        return article.get("title") or "", article.get("summary") or ""
    if isinstance(article, (tuple, list)):
        title, summary = article
        return title or "", summary or ""
    return getattr(article, "title", "") or "", getattr(article, "summary", "") or ""


def feature_names(article: Any) -> list[str]:
    """The distinct feature names of an article, sorted (deterministic)."""
    return sorted(_gather(*_fields(article), _word_names, _pair_name))


def _gather(title: str, summary: str, of_word, of_pair) -> set:
    """An article's features in one form: each word's (`of_word`) and each
    adjacent pair's within a field (`of_pair`). The names (`feature_names`) and
    the hashed slots scoring reads (`_vector_ids`) are both made here, so
    the two cannot disagree on what a feature is."""
    found: set = set()
    for text in (title, summary):
        ws = words(text)
        for w in ws:
            found.update(of_word(w))
        found.update(map(of_pair, ws, ws[1:]))
    return found


def _pair_name(first: str, second: str) -> str:
    return f"b:{first} {second}"


def _names_of_word(word: str) -> list[str]:
    """A word's own features: w: and its character n-grams."""
    return ["w:" + word] + ["c:" + g for g in char_ngrams(word)]


@lru_cache(maxsize=1 << 14)
def _word_names(word: str) -> frozenset[str]:
    return frozenset(_names_of_word(word))


def _hash(name: str) -> int:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (DIM - 1)


@lru_cache(maxsize=1 << 16)
def feature_id(name: str) -> int:
    """Stable hash of a feature name into [0, DIM)."""
    return _hash(name)


def vectorise(article: Any) -> dict[int, float]:
    """Hashed, L2-normalised binary features: {feature id: value}, by id."""
    ids = vector_ids(article)
    if not ids:
        return {}
    value = 1.0 / math.sqrt(len(ids))
    return {fid: value for fid in sorted(ids)}


def vector_ids(article: Any) -> frozenset[int]:
    """The slots of the article's features, each worth 1/sqrt(len): what
    scoring reads (a model adds up its weights of these, then scales)."""
    return _vector_ids(*_fields(article))


@lru_cache(maxsize=256)
def _vector_ids(title: str, summary: str) -> frozenset[int]:
    # Made from ids cached per word and per word pair: news repeats its
    # words, and hashing ~500 names an article was most of a score. Kept for
    # the last few articles only (~20 KB each): the models scoring one
    # article, and its explanation, share it.
    return frozenset(_gather(title, summary, _word_ids, _pair_id))


# What scoring reads: ids cached per word (~2.3 KB each) and per word pair,
# hashed without going through feature_id's cache of names. Bounded, since
# a poll worker scores for weeks: 32k words, at most ~75 MB a process; a
# word pushed out costs ~15 us to hash again.
@lru_cache(maxsize=1 << 15)
def _word_ids(word: str) -> frozenset[int]:
    return frozenset(map(_hash, _names_of_word(word)))


@lru_cache(maxsize=1 << 16)
def _pair_id(first: str, second: str) -> int:
    return _hash(_pair_name(first, second))


def reverse_map(articles: Iterable[Any]) -> dict[int, list[str]]:
    """Feature id -> the sorted names that hashed to it in `articles`."""
    out: dict[int, set[str]] = {}
    for article in articles:
        for name in feature_names(article):
            out.setdefault(feature_id(name), set()).add(name)
    return {fid: sorted(names) for fid, names in sorted(out.items())}


def readable(name: str) -> str:
    """A feature name for people: `w:tariff` -> `tariff`, `c:ston` -> `*ston*`,
    `c:<boj` -> `boj*`, `c:nda>` -> `*nda`."""
    kind, _, body = name.partition(":")
    if kind == "c":
        start, end = body.startswith("<"), body.endswith(">")
        core = body.strip("<>")
        return ("" if start else "*") + core + ("" if end else "*")
    if kind == "b":
        return f'"{body}"'
    return body
