"""The Matcher's inverted index: feature -> clause ids, as numpy arrays.

Two families of postings, each split by feature table:

- `present`: features a clause needs (all of them), or the cover of a check
  in a clause that has no present feature (any one of them); the Matcher
  counts how many a document has;
- `absent`: a clause is ruled out when the document has any of these.

Lists are the truth and are edited in place; the arrays the Matcher reads
are rebuilt on the next look-up after a change, so loading 100k rules is one
array per feature, not one per rule.
"""
from __future__ import annotations

from typing import Hashable

import numpy as np

FAMILIES = ("present", "absent")
ID = np.int32
EMPTY = np.zeros(0, dtype=ID)


class Postings:
    def __init__(self):
        self._lists: dict[str, dict[str, dict[Hashable, list[int]]]] = {f: {} for f in FAMILIES}
        self._arrays: dict[str, dict[str, dict[Hashable, np.ndarray]]] = {f: {} for f in FAMILIES}
        self._dirty: set[tuple[str, str, Hashable]] = set()

    def add(self, family: str, table: str, key: Hashable, clause: int) -> None:
        self._lists[family].setdefault(table, {}).setdefault(key, []).append(clause)
        self._dirty.add((family, table, key))

    def remove(self, family: str, table: str, key: Hashable, clause: int) -> None:
        lists = self._lists[family][table]
        ids = lists[key]
        ids.remove(clause)
        if not ids:
            del lists[key]
            if not lists:
                del self._lists[family][table]
        self._dirty.add((family, table, key))

    def arrays(self, family: str) -> dict[str, dict[Hashable, np.ndarray]]:
        """{table: {key: clause ids}} for one family, as of the last
        `refresh`."""
        return self._arrays[family]

    def tables(self) -> set[str]:
        """Every table some posting is filed under."""
        return {t for f in FAMILIES for t in self._lists[f]}

    def refresh(self) -> None:
        """Rebuild the arrays of the postings changed since the last call."""
        if not self._dirty:
            return
        for family, table, key in self._dirty:
            ids = self._lists[family].get(table, {}).get(key)
            arrays = self._arrays[family]
            if ids:
                arrays.setdefault(table, {})[key] = np.array(ids, dtype=ID)
            elif table in arrays:
                arrays[table].pop(key, None)
                if not arrays[table]:
                    del arrays[table]
        self._dirty.clear()


class Column:
    """A growable numpy array indexed by clause id (one value per clause)."""

    def __init__(self, dtype, fill=0):
        self.data = np.full(1024, fill, dtype=dtype)
        self.fill = fill

    def __setitem__(self, i: int, value) -> None:
        if i >= len(self.data):
            grown = np.full(max(2 * len(self.data), i + 1), self.fill, dtype=self.data.dtype)
            grown[: len(self.data)] = self.data
            self.data = grown
        self.data[i] = value
