"""The Matcher's inverted index: feature -> ids, as int arrays and numpy arrays.

Per feature table, one slot per key holding these families of postings:

- `direct`: *rule* ids of the clauses that are exactly this one feature (no
  other feature, check or filter): the article having the key is enough,
  so nothing is counted or checked for them;
- `present`: clause ids of the other clauses that need one feature: their
  only present feature, or each feature of the cover of a check in a clause
  that has no present feature;
- `counted`: clause ids of the clauses with two or more present features,
  under each of them (the numpy path counts them);
- `rarest`: the same clauses under their rarest feature only (the Python
  path looks their other features up instead of counting);
- `absent`: clause ids ruled out when the document has this key.

They share one slot so that an article's feature set is intersected with
each table's keys once. A family a key has no ids in is None, not an empty
list: most keys have one or two families, and the Matcher's Python path
reads every slot an article meets, so each empty list would be one more
object (a memory access of its own) to read per slot. For the same reason
ids are kept as machine ints (`array('i')`), not lists of int objects:
reading a list's ids reads (and writes the refcount of) each int object,
scattered over the heap, which with 10k rules costs more than the rest of
gathering an article's postings; an array's ids are next to each other, and
the few read per article are made afresh.

These id arrays are the truth, edited in place, and read as they are by the
Matcher's Python path; the numpy arrays its numpy path reads
(direct, present and counted together, absent) are rebuilt on the next
look-up after a change, so loading 100k rules is one array per feature,
not one per rule.
"""
from __future__ import annotations

from array import array
from typing import Hashable

import numpy as np

FAMILIES = ("direct", "present", "counted", "rarest", "absent")
_FAMILY = {name: i for i, name in enumerate(FAMILIES)}
ID = np.int32
EMPTY = np.zeros(0, dtype=ID)
_NO_IDS = array("i")
assert _NO_IDS.itemsize == np.dtype(ID).itemsize

Slot = list  # one array('i') of ids (or None) per family, in the order of FAMILIES
ArraySlot = tuple  # (direct, present + counted, absent) as arrays, None where empty


class Postings:
    def __init__(self):
        self._lists: dict[str, dict[Hashable, Slot]] = {}
        self._keys: dict[str, set[Hashable]] = {}  # the keys of each table of _lists, see key_sets
        self._arrays: dict[str, dict[Hashable, ArraySlot]] = {}
        # Keys changed since the last refresh, by table (not a (table, key)
        # tuple each: 100k such tuples made while loading and freed at its
        # end would leave holes among the postings, which a process forked
        # afterwards fills, copying pages it shares with its parent).
        self._dirty: dict[str, set[Hashable]] = {}

    def add(self, family: str, table: str, key: Hashable, id_: int) -> None:
        slot = self._lists.setdefault(table, {}).get(key)
        if slot is None:
            slot = self._lists[table][key] = [None, None, None, None, None]
            self._keys.setdefault(table, set()).add(key)
        i = _FAMILY[family]
        ids = slot[i]
        if ids is None:
            slot[i] = array("i", (id_,))
        else:
            ids.append(id_)
        self._mark(table, key)

    def remove(self, family: str, table: str, key: Hashable, id_: int) -> None:
        lists = self._lists[table]
        slot = lists[key]
        i = _FAMILY[family]
        slot[i].remove(id_)
        if not slot[i]:
            slot[i] = None
        if not any(slot):
            del lists[key]
            self._keys[table].discard(key)
            if not lists:
                del self._lists[table], self._keys[table]
        self._mark(table, key)

    def _mark(self, table: str, key: Hashable) -> None:
        keys = self._dirty.get(table)
        if keys is None:
            keys = self._dirty[table] = set()
        keys.add(key)

    def lists(self) -> dict[str, dict[Hashable, Slot]]:
        """{table: {key: [direct, present, counted, rarest, absent]}}
        (each an array('i') of ids, None for none), always current."""
        return self._lists

    def key_sets(self) -> dict[str, set[Hashable]]:
        """{table: its keys}, always current. An article's features are
        intersected with these rather than with the dicts' keys: a set keeps
        each key's hash beside it, while a dict of str keys reads the key
        object itself at every occupied slot it probes; with 10k rules those
        are cache misses, most of the cost of finding an article's keys."""
        return self._keys

    def arrays(self) -> dict[str, dict[Hashable, ArraySlot]]:
        """{table: {key: (direct, present + counted, absent)}} as arrays
        (None for none), as of the last `refresh`."""
        return self._arrays

    def tables(self) -> set[str]:
        """Every table some posting is filed under."""
        return set(self._lists)

    def refresh(self) -> None:
        """Rebuild the arrays of the postings changed since the last call."""
        if not self._dirty:
            return
        arrays = self._arrays
        for table, keys in self._dirty.items():
            lists = self._lists.get(table, {})
            for key in keys:
                slot = lists.get(key)
                if slot is not None:
                    direct, present, counted, _, absent = slot
                    pending = (present or _NO_IDS) + (counted or _NO_IDS)
                    arrays.setdefault(table, {})[key] = tuple(
                        np.array(ids, dtype=ID) if ids else None for ids in (direct, pending, absent))
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
