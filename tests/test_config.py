"""The config loader: good files load; bad ones name file, line and field."""

import pytest

from services import config
from services.settings import Settings

GOOD = """\
sources:
  - name: news
    url: https://news.example.com/rss
    interval: 5m
subscriptions:
  - name: cpc
    query: 'cpc AND (halt* OR damage)'
    channels: [mailto:ops@example.com, https://hooks.example.com/x]
  - name: words
    rule: {any: [tariff, export duty], none: [taxi]}
    channels: [mailto:ops@example.com]
"""


def test_good_config_loads():
    cfg = config.parse(GOOD, "good.yaml", Settings())
    assert [s.name for s in cfg.sources] == ["news"]
    assert cfg.sources[0].interval == 300
    assert cfg.subscriptions[0].channels == ("mailto:ops@example.com", "https://hooks.example.com/x")
    # Word lists become quoted phrases: whole words, no stemming.
    assert cfg.subscriptions[1].query == '("tariff" OR "export duty") AND NOT "taxi"'


def test_environment_variables_expand(monkeypatch):
    monkeypatch.setenv("NEWS_HOST", "feeds.example.org")
    text = GOOD.replace("news.example.com", "${NEWS_HOST}")
    assert config.parse(text, "env.yaml", Settings()).sources[0].url == "https://feeds.example.org/rss"


BAD = [
    # (replace this, with that, expected line, expected text in the message)
    ("interval: 5m", "interval: soon", 4, "sources[0].interval: 'soon' is not a duration"),
    ("url: https://news.example.com/rss", "url: ftp://news.example.com/rss", 3, "sources[0].url"),
    ("    query: 'cpc AND (halt* OR damage)'", "    query: 'cpc AND (halt* OR damage'", 7,
     "subscriptions[0].query: unbalanced"),
    ("mailto:ops@example.com, https", "mailto:not-an-address, https", 8, "subscriptions[0].channels[0]"),
    ("https://hooks.example.com/x]", "gopher://hooks.example.com/x]", 8, "subscriptions[0].channels[1]"),
    ("  - name: words", "  - name: cpc", 9, "duplicate name 'cpc'"),
    ("    rule: {any:", "    rules: {any:", 10, "subscriptions[1].rules: unknown field"),
    ("url: https://news.example.com/rss", "url: ${NOT_SET_ANYWHERE_X}", 3, "NOT_SET_ANYWHERE_X is not set"),
    ("    interval: 5m", "    interval: [5m", None, "not valid YAML"),
]


@pytest.mark.parametrize("old,new,line,message", BAD)
def test_bad_config_names_file_line_and_field(old, new, line, message):
    assert old in GOOD
    with pytest.raises(config.ConfigError) as err:
        config.parse(GOOD.replace(old, new, 1), "bad.yaml", Settings())
    text = str(err.value)
    assert text.startswith("bad.yaml:")
    assert message in text
    if line is not None:
        assert err.value.line == line, text


def test_loopback_webhook_refused_unless_allowed():
    text = GOOD.replace("https://hooks.example.com/x", "http://127.0.0.1:9/x")
    with pytest.raises(config.ConfigError, match="subscriptions\\[0\\].channels\\[1\\]"):
        config.parse(text, "c.yaml", Settings(allow_private_targets=False))
    cfg = config.parse("allow_private_targets: true\n" + text, "c.yaml", Settings(allow_private_targets=False))
    assert cfg.allow_private_targets


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.yaml")


def test_demo_config_is_valid(monkeypatch):
    monkeypatch.setenv("TULPAR_DEMO_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("TULPAR_DEMO_WEBHOOK", "http://127.0.0.1:2/hooks/demo")
    cfg = config.load(Settings().config)
    assert cfg.sources and cfg.subscriptions
