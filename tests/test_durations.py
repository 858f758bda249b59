import pytest

from services.durations import parse_duration


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
