"""services/fx/chart.py: a PNG people can read, from quotes alone."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from PIL import Image

from services.fx import chart
from services.fx.quote import Quote

T0 = datetime(2026, 10, 26, tzinfo=timezone.utc)


def quotes(*rates: str, pair: str = "USD/KZT") -> list[Quote]:
    return [Quote(pair, Decimal(r), T0 + timedelta(days=i)) for i, r in enumerate(rates)]


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def red_pixels(image: Image.Image) -> list[tuple[int, int]]:
    return [(x, y) for x in range(image.width) for y in range(image.height)
            if image.getpixel((x, y)) == chart.HIGHLIGHT]


SERIES = [
    ("rising", quotes("500", "502", "505", "510")),
    ("one point", quotes("518.2")),
    ("flat", quotes("3.5", "3.5", "3.5")),
    ("tiny derived rates", quotes("0.002", "0.0019801980198", "0.0019607843137", pair="KZT/USD")),
    ("thirty days", quotes(*[str(500 + (i % 7)) for i in range(30)])),
]


@pytest.mark.parametrize("case, series", SERIES, ids=[s[0] for s in SERIES])
def test_a_png_of_the_right_size_with_the_last_point_highlighted(case, series):
    data = chart.line_chart(series[0].pair, series)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = picture(data)
    assert image.size == (chart.WIDTH, chart.HEIGHT)
    red = red_pixels(image)
    assert red, "the last point is drawn in the highlight colour"
    # The highlighted dot sits at the right end of the plot when there is a
    # time span, in the middle for a single point.
    xs = [x for x, _ in red if chart.LEFT <= x]
    assert max(xs) >= (chart.WIDTH - chart.RIGHT - 10 if len(series) > 1 else chart.WIDTH // 2)


def test_the_highest_last_point_is_near_the_top_and_lowest_near_the_bottom():
    up = picture(chart.line_chart("USD/KZT", quotes("500", "501", "520")))
    down = picture(chart.line_chart("USD/KZT", quotes("520", "519", "500")))

    def dot_y(image):  # the dot, not the value label above it
        ys = sorted(y for x, y in red_pixels(image) if x >= chart.WIDTH - chart.RIGHT - 10)
        return ys[len(ys) // 2]

    assert dot_y(up) < chart.HEIGHT / 3 < chart.HEIGHT * 2 / 3 < dot_y(down)


def test_same_quotes_same_bytes():
    series = quotes("500", "505", "510")
    assert chart.line_chart("USD/KZT", series) == chart.line_chart("USD/KZT", series)


def test_no_points_is_an_error():
    with pytest.raises(ValueError):
        chart.line_chart("USD/KZT", [])


@pytest.mark.parametrize("days_back, kept", [(0, 1), (29, 30), (30, 30), (40, 30)])
def test_last_days_keeps_thirty_days_up_to_the_alert(days_back, kept):
    series = [Quote("USD/KZT", Decimal(500), T0 - timedelta(days=i)) for i in range(days_back, -1, -1)]
    window = chart.last_days(series, T0)
    assert len(window) == kept and window[-1].at == T0
    assert all(T0 - timedelta(days=30) < q.at for q in window)
