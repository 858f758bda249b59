"""Scoring an article by several relevance models at once.

    scorer = Scorer([fx, tariffs, sanctions, pipeline])
    scorer.scores(article)      # [fx's score, tariffs', ...], each that model's score

A model's margin is its bias plus the sum of its weights of the article's
distinct slots, scaled by 1/sqrt(number of slots) (features.py: every slot
is worth the same). Looking ~500 slots up in each model's dict cost ~27 us
a model. Here the article's slots are a sorted array (`article_slots`, made
once and shared by every model and scorer asked about the article), and
two gathers give every model's sum at once: slot -> row of a dense table,
then row -> weight in a (models x rows) matrix. For the four shipped
models a short article costs ~40 us, ~30 of it finding the slots.

The sums are those of the dict look-ups up to the order of addition (here
numpy's pairwise sum, by slot), which moves a score by ~1e-15.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from services.relevance import features as F


class Scorer:
    """The margins and scores of an article by each of `models`, in order.
    Built from the models' weights as they are now (a few ms, ~2.5 MB): a
    model whose weights change needs a new Scorer."""

    def __init__(self, models: Sequence[Any]):
        self.models = tuple(models)
        known = sorted(set().union(*(m.weights for m in self.models)))
        # Row 0 is all zeros and stands for a slot no model knows, so that
        # the gathers need no mask. The table has a row number for each of
        # the 2**20 slots: uint16 while the models know < 65535 slots
        # between them (the four shipped ~16k), 2 MB instead of 4.
        dtype = np.uint16 if len(known) < np.iinfo(np.uint16).max else np.int32
        self._row = np.zeros(F.DIM, dtype=dtype)
        self._row[np.array(known, dtype=np.int64)] = np.arange(1, len(known) + 1)
        # Models x rows, not rows x models: each model's gathered weights are
        # then one contiguous run, summed pairwise, ~3x faster than numpy's
        # sum down the columns of a (slots x 4) array.
        self._weights = np.zeros((len(self.models), len(known) + 1))
        for j, m in enumerate(self.models):
            ids = np.fromiter(m.weights.keys(), dtype=np.int64, count=len(m.weights))
            self._weights[j, self._row[ids]] = np.fromiter(m.weights.values(), dtype=np.float64,
                                                           count=len(m.weights))
        self._bias = np.array([float(m.bias) for m in self.models])

    def margins(self, article: Any) -> list[float]:
        """Each model's bias + its weights of the article's slots / sqrt(n)."""
        slots = article_slots(*F._fields(article))
        if not len(slots):
            return self._bias.tolist()
        sums = self._weights.take(self._row[slots], axis=1).sum(axis=1)
        return (self._bias + sums / math.sqrt(len(slots))).tolist()

    def scores(self, article: Any) -> list[float]:
        return list(map(sigmoid, self.margins(article)))


@lru_cache(maxsize=256)
def article_slots(title: str, summary: str) -> np.ndarray:
    """The distinct slots of an article's features (`features.vector_ids`),
    sorted, as an array. Kept for the last few articles (~2 KB each): the
    models and scorers asked about one article share it."""
    slots = np.sort(np.frombuffer(F.slot_bytes(title, summary), dtype=np.intc))
    # Sorted, a repeat sits next to its first: keep a slot unlike the one before.
    first = np.empty(len(slots), dtype=bool)
    first[:1] = True
    np.not_equal(slots[1:], slots[:-1], out=first[1:])
    slots = slots[first]
    slots.flags.writeable = False  # shared by every caller, through the cache
    return slots


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for a margin of any size."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
