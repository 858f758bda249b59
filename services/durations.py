"""Durations as users write them: 30s, 5m, 4h, 1d, 7d, 2w (or plain seconds)."""
from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(value) -> float:
    """Seconds in `value`; raises ValueError naming the value."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 4h, 1d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _PATTERN.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration like 30s, 5m, 4h, 1d")
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return seconds
