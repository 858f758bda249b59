"""Durations as users write them: 30s, 5m, 4h, 1d, 7d, 2w (or plain seconds).

The one grammar for every duration in a config file: a source's `interval`,
an FX rule's `window` and `cooldown` (services/fx/rules.py accepts a stricter
subset of it), the retry delays in the settings.
"""
from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}  # seconds in one
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
        seconds = float(m.group(1)) * UNITS[m.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return seconds


def parse_timedelta(value) -> timedelta:
    """`parse_duration` as a timedelta (exact for whole seconds up to the
    timedelta limit of about 2.7 million years: floats hold integers exactly
    far beyond it); ValueError past that limit too."""
    seconds = parse_duration(value)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is longer than a timedelta can hold") from None
