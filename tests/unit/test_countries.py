"""The one countries table, and what is built from it."""
from __future__ import annotations

import pytest

from services import countries
from services.cli import fx as fx_cli
from services.fx import render as render_fx
from services.rules import RuleError, default_presets, parse
from services.rules.presets import DEFAULT_DIR


@pytest.mark.parametrize("code, name, currency", [
    ("KZ", "Kazakhstan", "KZT"),
    ("KG", "Kyrgyzstan", "KGS"),
    ("UZ", "Uzbekistan", "UZS"),
    ("TJ", "Tajikistan", "TJS"),
    ("TM", "Turkmenistan", "TMT"),
])
def test_table(code, name, currency):
    country = countries.BY_CODE[code]
    assert (country.name, country.currency) == (name, currency)
    assert countries.BY_CURRENCY[currency] is country


def test_order_is_the_one_everything_lists():
    assert countries.CODES == ("KZ", "KG", "UZ", "TJ", "TM")


@pytest.mark.parametrize("code, shown", [("KZ", "Kazakhstan"), ("TM", "Turkmenistan"), ("RU", "RU"), ("", ""),
                                         (None, None)])
def test_name_of(code, shown):
    assert countries.name_of(code) == shown


def test_every_country_has_a_bundled_preset():
    assert sorted(p.stem for p in (DEFAULT_DIR / "countries").glob("*.yaml")) == sorted(countries.CODES)
    assert [p.name for p in default_presets() if p.kind == "country"] == sorted(countries.CODES)


def test_the_parser_names_the_table_in_its_error():
    with pytest.raises(RuleError, match=r"unknown country 'RU' \(one of KZ, KG, UZ, TJ, TM\)"):
        parse("country:RU")


def test_ticker_watches_each_currency_against_the_dollar():
    assert fx_cli.WATCHED == ("KZT/USD", "KGS/USD", "UZS/USD", "TJS/USD", "TMT/USD")


def test_fx_alert_names_the_countries_of_its_news():
    news = [{"title": "a", "link": "https://x.test/a", "country": "KG"},
            {"title": "b", "link": "https://x.test/b", "country": "XX"},
            {"title": "c", "link": "https://x.test/c", "country": None}]
    links = render_fx.news_links(news)
    assert [n["country_name"] for n in links] == ["Kyrgyzstan", "XX", None]
