from pathlib import Path

import pytest

from services.relevance.data import ForbiddenData, allowed_files, check_allowed, load_labeled


@pytest.mark.parametrize("path", [
    "tests/data/labeled/blind/holdout-en.jsonl",
    "tests/data/labeled/blind/check35-kk.jsonl",
    "/somewhere/else/Blind/Holdout-uz.jsonl",
    "/somewhere/else/blind/Check35-en.jsonl",
    "tests/data/labeled/blind/check36-uz.jsonl",
    "tests/data/labeled/blind/check37-en.jsonl",     # a new blind set is frozen until opened in data.py
])
def test_frozen_sets_are_refused(path):
    with pytest.raises(ForbiddenData):
        check_allowed(path)
    with pytest.raises(ForbiddenData):
        load_labeled([path])


def test_final_measure_lets_them_through():
    assert check_allowed("x/blind/check35-en.jsonl", final_measure=True) == Path("x/blind/check35-en.jsonl")
    assert check_allowed("x/blind/holdout-en.jsonl", final_measure=True) == Path("x/blind/holdout-en.jsonl")


@pytest.mark.parametrize("path", [
    "tests/data/labeled/blind/tune-en.jsonl",
    "tests/data/labeled/blind/tune2-kk.jsonl",
    "tests/data/labeled/blind/check-ru.jsonl",     # opened for training in round 4
    "tests/data/labeled/blind/check2-uz.jsonl",    # opened for training in round 4
    "tests/data/labeled/blind/check3-ru.jsonl",    # opened when check4 was frozen
    "tests/data/labeled/blind/check4-en.jsonl",    # opened when check5 was frozen
    "tests/data/labeled/blind/check5-kk.jsonl",    # opened when check7 and check8 were frozen
    "tests/data/labeled/blind/check6-uz.jsonl",    # opened when check7 and check8 were frozen
    "tests/data/labeled/blind/check7-en.jsonl",    # opened when check9 and check10 were frozen
    "tests/data/labeled/blind/check8-ru.jsonl",    # opened when check9 and check10 were frozen
    "tests/data/labeled/blind/check9-uz.jsonl",    # opened when check11 and check12 were frozen
    "tests/data/labeled/blind/check10-kk.jsonl",   # opened when check11 and check12 were frozen
    "tests/data/labeled/blind/check11-en.jsonl",   # opened when check13 and check14 were frozen
    "tests/data/labeled/blind/check12-uz.jsonl",   # opened when check13 and check14 were frozen
    "tests/data/labeled/blind/check13-kk.jsonl",   # opened when check15 and check16 were frozen
    "tests/data/labeled/blind/check14-ru.jsonl",   # opened when check15 and check16 were frozen
    "tests/data/labeled/blind/check15-uz.jsonl",   # opened when check17 and check18 were frozen
    "tests/data/labeled/blind/check16-en.jsonl",   # opened when check17 and check18 were frozen
    "tests/data/labeled/blind/check17-kk.jsonl",   # opened when check19 and check20 were frozen
    "tests/data/labeled/blind/check18-uz.jsonl",   # opened when check19 and check20 were frozen
    "tests/data/labeled/blind/check19-en.jsonl",   # opened when check21 and check22 were frozen
    "tests/data/labeled/blind/check20-kk.jsonl",   # opened when check21 and check22 were frozen
    "tests/data/labeled/blind/check21-ru.jsonl",   # opened when check23 and check24 were frozen
    "tests/data/labeled/blind/check22-en.jsonl",   # opened when check23 and check24 were frozen
    "tests/data/labeled/blind/check23-uz.jsonl",   # opened when check25 and check26 were frozen
    "tests/data/labeled/blind/check24-kk.jsonl",   # opened when check25 and check26 were frozen
    "tests/data/labeled/blind/check25-ru.jsonl",   # opened when check27 and check28 were frozen
    "tests/data/labeled/blind/check26-en.jsonl",   # opened when check27 and check28 were frozen
    "tests/data/labeled/blind/check27-uz.jsonl",   # opened when check29 and check30 were frozen
    "tests/data/labeled/blind/check28-kk.jsonl",   # opened when check29 and check30 were frozen
    "tests/data/labeled/blind/check29-ru.jsonl",   # opened when check31 and check32 were frozen
    "tests/data/labeled/blind/check30-en.jsonl",   # opened when check31 and check32 were frozen
    "tests/data/labeled/blind/check31-uz.jsonl",   # opened when check33 and check34 were frozen
    "tests/data/labeled/blind/check32-kk.jsonl",   # opened when check33 and check34 were frozen
    "tests/data/labeled/blind/check33-ru.jsonl",   # opened when check35 and check36 were frozen
    "tests/data/labeled/blind/check34-en.jsonl",   # opened when check35 and check36 were frozen
    "tests/data/labeled/holdout.jsonl",            # our own holdout, trainable as before
])
def test_opened_sets_are_allowed(path):
    assert check_allowed(path) == Path(path)


def test_allowed_files_are_only_the_training_sets():
    names = [p.relative_to(p.parents[1]).as_posix() if p.parent.name == "blind" else p.name for p in allowed_files()]
    assert names[:3] == ["tune.jsonl", "holdout.jsonl", "challenge.jsonl"]
    blind = names[3:]
    opened = ("blind/tune-", "blind/tune2-", "blind/check-", "blind/check2-", "blind/check3-", "blind/check4-",
              "blind/check5-", "blind/check6-", "blind/check7-", "blind/check8-",
              "blind/check9-", "blind/check10-", "blind/check11-", "blind/check12-",
              "blind/check13-", "blind/check14-",
              "blind/check15-", "blind/check16-",
              "blind/check17-", "blind/check18-",
              "blind/check19-", "blind/check20-",
              "blind/check21-", "blind/check22-",
              "blind/check23-", "blind/check24-",
              "blind/check25-", "blind/check26-",
              "blind/check27-", "blind/check28-",
              "blind/check29-", "blind/check30-",
              "blind/check31-", "blind/check32-",
              "blind/check33-", "blind/check34-")
    assert blind and all(n.startswith(opened) for n in blind)
    assert not any("holdout" in n or "check35" in n or "check36" in n for n in blind)
    for prefix in opened:
        assert any(n.startswith(prefix) for n in blind), prefix


def test_symlink_to_a_frozen_set_is_refused(tmp_path):
    blind = tmp_path / "blind"
    blind.mkdir()
    target = blind / "holdout-en.jsonl"
    target.write_text("", encoding="utf-8")
    link = tmp_path / "innocent.jsonl"
    link.symlink_to(target)
    with pytest.raises(ForbiddenData):
        check_allowed(link)
