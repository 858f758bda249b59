from datetime import timedelta

import pytest

from services.durations import parse_duration, parse_timedelta


@pytest.mark.parametrize("text,seconds", [
    ("30s", 30), ("5m", 300), ("4h", 14400), ("1d", 86400), ("7d", 604800), ("2w", 1209600),
    ("90", 90), (45, 45), ("1.5h", 5400),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "5x", "-1m", "0s", True, "1 d h"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("text, expected", [
    ("30s", timedelta(seconds=30)), ("30m", timedelta(minutes=30)), ("36h", timedelta(hours=36)),
    ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)), ("1.5h", timedelta(minutes=90)),
    ("52000w", timedelta(weeks=52000)), (90, timedelta(seconds=90)),
])
def test_timedeltas(text, expected):
    assert parse_timedelta(text) == expected


@pytest.mark.parametrize("bad, message", [
    ("soon", "is not a duration"),
    ("0d", "must be longer than zero"),
    ("99999999999w", "longer than a timedelta can hold"),
    ("9" * 400 + "s", "longer than a timedelta can hold"),  # float("999...") is inf
])
def test_bad_timedeltas(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_timedelta(bad)
