"""Source kinds: each module knows how to poll one kind of source.

The dict is the registry (no scanning); a new kind is one more line.
"""
from __future__ import annotations

from services.news import feed

KINDS = {
    "feed": feed,
}
