from pathlib import Path

import pytest

from services.relevance.data import ForbiddenData, allowed_files, check_allowed, load_labeled


@pytest.mark.parametrize("path", [
    "tests/data/labeled/blind/holdout-en.jsonl",
    "tests/data/labeled/blind/check-kk.jsonl",
    "/somewhere/else/Blind/Holdout-uz.jsonl",
])
def test_frozen_sets_are_refused(path):
    with pytest.raises(ForbiddenData):
        check_allowed(path)
    with pytest.raises(ForbiddenData):
        load_labeled([path])


def test_final_measure_lets_them_through():
    assert check_allowed("x/blind/check-en.jsonl", final_measure=True) == Path("x/blind/check-en.jsonl")


def test_allowed_files_are_only_the_training_sets():
    names = [p.relative_to(p.parents[1]).as_posix() if p.parent.name == "blind" else p.name for p in allowed_files()]
    assert names[:3] == ["tune.jsonl", "holdout.jsonl", "challenge.jsonl"]
    assert all(n.startswith("blind/tune-") for n in names[3:]) and len(names) > 3


def test_symlink_to_a_frozen_set_is_refused(tmp_path):
    blind = tmp_path / "blind"
    blind.mkdir()
    target = blind / "holdout-en.jsonl"
    target.write_text("", encoding="utf-8")
    link = tmp_path / "innocent.jsonl"
    link.symlink_to(target)
    with pytest.raises(ForbiddenData):
        check_allowed(link)
