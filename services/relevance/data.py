"""Loading labeled items for training and cross-validation, with a guard.

The frozen measuring sets (`tests/data/labeled/blind/holdout-*.jsonl`,
`check35-*.jsonl` and `check36-*.jsonl`) must never be trained on, tuned on or
looked at while building the model: `load_labeled` refuses any path that
contains `blind/holdout`, `blind/check35` or `blind/check36`, and any file in a
`blind/` folder that is not one of the opened sets (`OPENED_BLIND`, so a new
blind set is frozen until it is opened here), unless `final_measure=True`,
which only `benchmarks/relevance_eval.py --final-measure SPLIT` passes. Each
check set was frozen until it had measured one round once, and opened when
the next ones were frozen (check5 and check6 with check7 and check8, those
with check9 and check10, those with check11 and check12, those with
check13 and check14, those with check15 and check16,
those with check17 and check18,
those with check19 and check20,
those with check21 and check22,
those with check23 and check24,
those with check25 and check26,
those with check27 and check28,
those with check29 and check30,
those with check31 and check32,
those with check33 and check34,
those with check35 and check36).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parent.parent.parent
LABELED_DIR = ROOT / "tests" / "data" / "labeled"
FORBIDDEN = ("blind/holdout", "blind/check35", "blind/check36")
OPENED_BLIND = ("tune-", "tune2-", "check-", "check2-", "check3-", "check4-", "check5-", "check6-", "check7-", "check8-", "check9-", "check10-", "check11-", "check12-", "check13-", "check14-", "check15-", "check16-", "check17-", "check18-", "check19-", "check20-", "check21-", "check22-", "check23-", "check24-", "check25-", "check26-", "check27-", "check28-", "check29-", "check30-", "check31-", "check32-", "check33-", "check34-")   # blind sets we may train on, in this order
TOPICS = ("topic:tariffs", "topic:pipeline-disruption", "topic:fx", "topic:sanctions")


class ForbiddenData(ValueError):
    """A frozen measuring set was asked for without --final-measure."""


def _frozen(form: str) -> bool:
    if any(bad in form for bad in FORBIDDEN):
        return True
    parent, _, name = form.rpartition("/")
    return parent.rpartition("/")[2] == "blind" and not name.startswith(OPENED_BLIND)


def check_allowed(path: str | Path, final_measure: bool = False) -> Path:
    path = Path(path)
    for form in (str(path), str(path.resolve())):
        form = form.replace("\\", "/").casefold()
        if not final_measure and _frozen(form):
            raise ForbiddenData(f"{path}: frozen measuring set; only --final-measure may read it")
    return path


def allowed_files(data: Path = LABELED_DIR) -> list[Path]:
    """The sets the model may be trained and cross-validated on."""
    own = [data / f"{name}.jsonl" for name in ("tune", "holdout", "challenge")]
    blind = [p for prefix in OPENED_BLIND for p in sorted((data / "blind").glob(f"{prefix}*.jsonl"))]
    return [check_allowed(p) for p in own + blind]


def load_labeled(paths: Iterable[str | Path], final_measure: bool = False) -> list[dict]:
    return [item for path in paths for item in read_items(check_allowed(path, final_measure))]


def read_items(path: Path) -> list[dict]:
    """The items of one labeled JSONL file, each checked for its fields.
    (No guard here: benchmarks/presets_eval.py measures the frozen sets too.)"""
    items = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            missing = {"id", "title", "summary", "lang", "labels"} - set(item)
            if missing:
                raise ValueError(f"{path}:{lineno}: missing {sorted(missing)}")
            items.append(item)
    return items
