"""The unit of news that flows through the pipeline."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Article:
    """One normalised feed entry.

    `id` is stable across polls (guid, else link, else a hash of the title) and
    is scoped by `source`, so two feeds may reuse the same guid safely.
    `summary` is plain text: HTML is stripped at normalisation, never later.
    """

    source: str
    id: str
    title: str
    summary: str
    link: str
    published: datetime | None = None
    lang: str | None = None

    def to_json(self) -> dict:
        """Plain JSON (what crosses the queue and what `tulpar fetch` prints)."""
        data = asdict(self)
        data["published"] = self.published.isoformat() if self.published else None
        return data
