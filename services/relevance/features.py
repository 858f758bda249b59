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

Each feature name is hashed into ``2**HASH_BITS`` slots: the low bits of the
CRC-32 of its UTF-8 bytes (``HASH``; stable across processes and machines,
unlike Python's salted ``hash()``). An
article's vector is the set of slots its features fall in, each worth
1/sqrt(number of slots): binary and L2-normalised (two names that share a
slot count once). A trained model keeps the names of the features it has
seen, so a score can be explained in readable form.
"""
from __future__ import annotations

import math
import re
import unicodedata
import zlib
from array import array
from functools import lru_cache
from itertools import islice, repeat
from typing import Any, Callable, Iterable

from services.rules.text import APOSTROPHES

HASH_BITS = 20
DIM = 1 << HASH_BITS
NGRAM_RANGE = (3, 5)
# Slots packed as C ints in bytes (`array(SLOT_CODE)`, numpy's intc), so
# that an article's slots are one b"".join of cached parts, and one
# np.frombuffer away from an array (scorer.py). A slot < 2**20 fits any C int.
SLOT_CODE = "i"

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
    ws, pairs = _gather(*_fields(article))
    return sorted(set().union(*map(_word_names, ws), map(_pair_name, pairs)))


def _gather(title: str, summary: str) -> tuple[list[str], list[str]]:
    """What an article's features are made of: its words, and each pair of
    adjacent words within a field, as "FIRST SECOND". The names
    (`feature_names`) and the hashed slots scoring reads (`slot_bytes`) are
    both made from these, so the two cannot disagree on what a feature is."""
    ws: list[str] = []
    pairs: list[str] = []
    for text in (title, summary):
        field = words(text)
        ws += field
        pairs += map(" ".join, zip(field, field[1:]))
    return ws, pairs


def _pair_name(pair: str) -> str:
    return "b:" + pair


def _names_of_word(word: str) -> list[str]:
    """A word's own features: w: and its character n-grams."""
    return ["w:" + word] + ["c:" + g for g in char_ngrams(word)]


@lru_cache(maxsize=1 << 14)
def _word_names(word: str) -> frozenset[str]:
    return frozenset(_names_of_word(word))


def _hash(name: str) -> int:
    return _hashes((name,))[0]


# CRC-32 (zlib), not a cryptographic hash: feature hashing needs names spread
# evenly over the slots and the same slot on every machine, nothing more.
# It also continues: crc32(b, crc32(a)) == crc32(a + b), so a prefix common
# to many names is hashed once (`_PAIR_START`: "b:"), and `map` runs it over
# a list of names in C. Word pairs, hashed anew for every article, cost
# ~0.45 us each with BLAKE2b in a Python loop and ~0.05 us so (round 13 in
# docs/relevance.md). A model file says which hash made its slots (model.py).
HASH = "crc32"
_MASK = DIM - 1


def _hashes(names: Iterable[str], start: int = 0) -> list[int]:
    """The slot of each name: the CRC-32 of its UTF-8 bytes (continuing
    from `start`, the CRC of whatever precedes every name), its low
    HASH_BITS bits."""
    return list(map(_MASK.__and__, map(zlib.crc32, map(str.encode, names), repeat(start))))


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
    training and explanations read (scoring reads the same slots as an
    array, services/relevance/scorer.py)."""
    return _vector_ids(*_fields(article))


@lru_cache(maxsize=256)
def _vector_ids(title: str, summary: str) -> frozenset[int]:
    # Kept for the last few articles only (~20 KB each).
    return frozenset(memoryview(slot_bytes(title, summary)).cast(SLOT_CODE))


def slot_bytes(title: str, summary: str) -> bytes:
    """The slots of the article's features, packed (`SLOT_CODE`), in no
    particular order and with repeats (a word's slots once per occurrence of
    the word, and two features may share a slot): the distinct ones are
    `vector_ids`. Made from slots cached per word (news repeats its words,
    and hashing ~500 names an article was most of a score) and the hashes of
    the word pairs (see `_word_slots` for why those are not cached)."""
    ws, pairs = _gather(title, summary)
    return b"".join(_word_slots.lookup(ws)) + array(SLOT_CODE, _hash_pairs(pairs)).tobytes()


class _Recent:
    """A bounded cache of `compute(keys) -> values`, asked a list of keys at
    a time (what an article needs): the keys not held are computed together.

    Not lru_cache: there a hit moves the entry to the front of a list, a
    write into memory that the CPU caches no longer hold once a worker has
    seen 100k words (it made a look-up ~2x dearer); here a hit only reads a
    dict, in C (`map`). So hits are not recorded, and when `2 * size` keys
    are held the older half (by insertion) is forgotten: a key in use since
    is computed again when next asked, once."""

    def __init__(self, compute: Callable[[list], list], size: int):
        self.compute = compute
        self.size = size
        self.held: dict = {}

    def lookup(self, keys: list) -> list:
        try:
            return list(map(self.held.__getitem__, keys))
        except KeyError:
            return self._fill(keys)

    def _fill(self, keys: list) -> list:
        held = self.held
        unknown = list(set(keys).difference(held))
        held.update(zip(unknown, self.compute(unknown)))
        if len(held) > 2 * self.size:
            self.held = dict(islice(held.items(), len(held) - self.size, None))
        return list(map(held.__getitem__, keys))

    def __len__(self) -> int:
        return len(self.held)

    def cache_clear(self) -> None:
        self.held = {}


def _pack_words(ws: list[str]) -> list[bytes]:
    """Each word's distinct slots, packed."""
    return [array(SLOT_CODE, sorted(set(_hashes(_names_of_word(w))))).tobytes() for w in ws]


_PAIR_START = zlib.crc32(_pair_name("").encode("utf-8"))


def _hash_pairs(pairs: list[str]) -> list[int]:
    """`_hash` of each pair's name (`_pair_name`)."""
    return _hashes(pairs, _PAIR_START)


# Bounded, since a poll worker scores for weeks. With its key and the dict's
# own, a word takes ~240 bytes: at most 128k words, ~30 MB a process. A word
# pushed out costs a few us to hash again, once.
#
# Word pairs are hashed anew every time (~0.05 us each, see `_hashes`): in a
# stream of news only about half of an article's pairs had been seen lately,
# so a cache of them would cost more than the hashing.
_word_slots = _Recent(_pack_words, 1 << 16)


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
