"""A small PNG line chart of one pair, for the FX alert email.

Pure: quotes in, PNG bytes out (no clock, no files). Pillow only: matplotlib
would add a large dependency and a font cache for a 480x200 picture. The
chart shows the pair name, the period, the min and max rates on the y axis,
the first and last dates on the x axis, and the last point (the one that
alerted) as a red dot with its value.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta

from PIL import Image, ImageDraw, ImageFont

from services.fx.pairs import display
from services.fx.quote import Quote

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 24, 28  # plot margins (LEFT at least): room for labels
BACKGROUND, AXIS, GRID, LINE, TEXT = "white", (80, 80, 80), (225, 225, 225), (31, 94, 168), (40, 40, 40)
HIGHLIGHT = (200, 30, 30)
DAYS = 30


def last_days(quotes: Sequence[Quote], until: datetime, days: int = DAYS) -> list[Quote]:
    """The points of a time-ordered series in (until - days, until]."""
    start = until - timedelta(days=days)
    return [q for q in quotes if start < q.at <= until]


def line_chart(pair: str, quotes: Sequence[Quote]) -> bytes:
    """PNG of `quotes` (one pair, time-ordered, at least one point)."""
    if not quotes:
        raise ValueError("a chart needs at least one point")
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    labels = {"max": f"max {display(max(q.rate for q in quotes))}",
              "min": f"min {display(min(q.rate for q in quotes))}"}
    # The plot starts right of the longest y label (0.0019298 is wider than 518.2).
    left = max(LEFT, 10 + int(max(draw.textlength(t, font=font) for t in labels.values())))
    x0, y0, x1, y1 = left, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM

    rates = [float(q.rate) for q in quotes]
    low, high = min(rates), max(rates)
    # A flat series still needs a band to draw in: pad around the value.
    pad = (high - low) * 0.08 or abs(high) * 0.01 or 1.0
    lo, hi = low - pad, high + pad
    t0, t1 = quotes[0].at.timestamp(), quotes[-1].at.timestamp()

    def xy(q: Quote) -> tuple[float, float]:
        x = x0 + (x1 - x0) * ((q.at.timestamp() - t0) / (t1 - t0) if t1 > t0 else 0.5)
        y = y1 - (y1 - y0) * (float(q.rate) - lo) / (hi - lo)
        return x, y

    # Axes, min/max gridlines and their labels.
    for value, label in ((high, labels["max"]), (low, labels["min"])):
        y = y1 - (y1 - y0) * (value - lo) / (hi - lo)
        draw.line([(x0, y), (x1, y)], fill=GRID)
        draw.text((4, y - 6), label, fill=TEXT, font=font)
    draw.line([(x0, y0), (x0, y1), (x1, y1)], fill=AXIS)
    first, last = quotes[0].at.strftime("%Y-%m-%d"), quotes[-1].at.strftime("%Y-%m-%d")
    draw.text((x0, y1 + 6), first, fill=TEXT, font=font)
    if last != first:
        draw.text((x1, y1 + 6), last, fill=TEXT, font=font, anchor="ra")
    draw.text((x0, 4), f"{pair}, {len(quotes)} points, last {DAYS} days", fill=TEXT, font=font)

    points = [xy(q) for q in quotes]
    if len(points) > 1:
        draw.line(points, fill=LINE, width=2)
    for x, y in points[:-1]:
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=LINE)
    x, y = points[-1]
    draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=HIGHLIGHT)
    draw.text((min(x, x1) - 6, max(y - 16, 2)), display(quotes[-1].rate), fill=HIGHLIGHT, font=font,
              anchor="ra")

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
