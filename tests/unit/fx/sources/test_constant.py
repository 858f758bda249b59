"""Configured constant rate (Turkmenistan's official USD/TMT)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.fx.sources import RateConfigError, constant
from services.fx.sources.constant import ConstantConfig


@pytest.mark.parametrize(
    "config, now, expected",
    [
        ({"pair": "USD/TMT", "rate": 3.50}, datetime(2026, 11, 25, 11, 52, tzinfo=timezone.utc),
         ("USD/TMT", Decimal("3.5"), datetime(2026, 11, 25, tzinfo=timezone.utc))),
        ({"pair": "usd/tmt", "rate": "3,50"}, datetime(2026, 11, 25, 23, 30, tzinfo=timezone.utc),
         ("USD/TMT", Decimal("3.5"), datetime(2026, 11, 25, tzinfo=timezone.utc))),
        # 02:00 in Ashgabat (UTC+5) is still the 24th in UTC
        ({"pair": "USD/TMT", "rate": "3.5"}, datetime(2026, 11, 25, 2, 0, tzinfo=timezone(timedelta(hours=5))),
         ("USD/TMT", Decimal("3.5"), datetime(2026, 11, 24, tzinfo=timezone.utc))),
    ],
)
def test_quote_at_the_date_of_now(config, now, expected):
    [quote] = constant.quotes(ConstantConfig.from_dict(config), now)
    assert (quote.pair, quote.rate, quote.at) == expected
    assert quote.source == "constant"


def test_pure_same_input_same_output():
    cfg = ConstantConfig.from_dict({"pair": "USD/TMT", "rate": "3.50", "name": "tm-official"})
    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    assert constant.quotes(cfg, now) == constant.quotes(cfg, now)
    assert constant.quotes(cfg, now)[0].source == "tm-official"


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        constant.quotes(ConstantConfig.from_dict({"pair": "USD/TMT", "rate": 3.5}), datetime(2026, 11, 25))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"rate": 3.5}, "`pair` is required"),
        ({"pair": "USD/TMT"}, "`rate` is required"),
        ({"pair": "USDTMT", "rate": 3.5}, "pair base"),
        ({"pair": "USD/TMT", "rate": "three"}, "not a number"),
        ({"pair": "USD/TMT", "rate": 0}, "not a positive rate"),
        ({"pair": "TMT/TMT", "rate": 1}, "quotes a currency in itself"),
        ({"pair": "USD/TMT", "rate": 3.5, "url": "x"}, "unknown settings"),
    ],
)
def test_bad_config(config, message):
    with pytest.raises(RateConfigError) as err:
        ConstantConfig.from_dict(config)
    assert message in str(err.value)
