"""The config loader: good files load; bad ones name file, line and field. Also
the YAML loader under it (services/yamlfile.py): size, nesting and alias limits."""

import datetime
import os
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from services import config, yamlfile
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
    ("interval: 5m", "interval: !!int soon", 4, "not valid YAML: 'soon' is not a valid int"),  # was a crash
    ("    interval: 5m", "    [interval]: 5m", 4, "sources[0]: keys must be plain words"),
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


# -- the YAML underneath: size, nesting and alias limits (services/yamlfile.py) --

DATA = Path(__file__).resolve().parents[1] / "data" / "config"
ROOT = Path(__file__).resolve().parents[2]
BOMB = (DATA / "alias_bomb.yaml").read_text(encoding="utf-8")
# The refusals below take about a millisecond; the slowest, 100,000 brackets
# with the pure-Python parser (it looks 1,024 characters ahead for a key at
# every bracket), about 0.25 s. Timed in CPU seconds of this process: wall
# time on a shared CI machine measures the neighbours (seen: 0.78 s wall at
# a load average of 10); even CPU time stretches there (0.76-0.86 s for that
# case at a load average of 4, and once over 1 s), so the bound is 2 s: it
# still catches anything that expands (the old loader ran for minutes).
FAST_SECONDS = 2.0
SMALL_BYTES = 4 << 20  # peak Python allocations while refusing (the old loader: 860 MB and counting)


def refused_quickly(call, *args, error=config.ConfigError):
    """The error `call(*args)` raises, checking it came fast (timed on its
    own: tracing allocations slows Python down) and small."""
    started = time.process_time()
    with pytest.raises(error) as caught:
        call(*args)
    elapsed = time.process_time() - started
    assert elapsed < FAST_SECONDS, f"took {elapsed:.2f}s"
    tracemalloc.start()
    try:
        with pytest.raises(error):
            call(*args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < SMALL_BYTES, f"peaked at {peak:,} bytes"
    return caught.value


def chain(levels: int, width: int, item: str = "[{refs}]") -> str:
    """`l0: &l0 [tenge]`, then each level an anchored `item` holding `width`
    aliases to the level before: width**levels nodes from a few lines."""
    lines = ["l0: &l0 [tenge]"]
    for n in range(1, levels + 1):
        refs = ", ".join([f"*l{n - 1}"] * width)
        lines.append(f"l{n}: &l{n} " + item.format(refs=refs, prev=f"*l{n - 1}"))
    return "\n".join(lines) + "\n"


WIDE = "a: &a [" + ", ".join(["som"] * 1000) + "]\nb: [" + ", ".join(["*a"] * 1000) + "]\n"
MERGE = chain(9, 1, "{{<<: {prev}, x1: {prev}, x2: {prev}, x3: {prev}, x4: {prev}, x5: {prev}, x6: {prev}}}")
HIDDEN = """\
sources:
  - name: wire
    url: https://news.example.com/rss
    options: &o1 {k: [som, som, som, som, som, som, som, som]}
  - name: wire2
    url: https://news.example.com/rss2
    options: &o2 {k: [*o1, *o1, *o1, *o1, *o1, *o1, *o1, *o1]}
subscriptions:
  - name: cpc
    query: cpc
    channels: [mailto:ops@example.com]
    fx: &o3 {k: [*o2, *o2, *o2, *o2, *o2, *o2, *o2, *o2]}
  - name: cpc2
    query: cpc
    channels: [mailto:ops@example.com]
    fx: &o4 {k: [*o3, *o3, *o3, *o3, *o3, *o3, *o3, *o3]}
  - name: cpc3
    query: cpc
    channels: [mailto:ops@example.com]
    fx: {k: [*o4, *o4, *o4, *o4, *o4, *o4, *o4, *o4]}
"""

# (case, YAML, line named, text in the message)
BOMBS = [
    ("billion laughs (fixture)", BOMB, 11, "the alias *h here alone stands for 48,427,561"),
    ("deep: 40 levels of two", chain(40, 2), 41, "past 10,000 nodes (the limit: 10 x the 84 written"),
    ("longer than the nesting limit", chain(70, 1), 64, "the alias *l62 nests the document more than 64 levels deep"),
    ("wide: a thousand aliases to a thousand", WIDE, 2, "past 10,050 nodes (the limit: 10 x the 1,005 written"),
    ("in a key", BOMB + "j: {*i : som}\n", 12, "the alias *i here alone stands for 435,848,050"),
    ("merge keys", MERGE, 10, "past 10,000 nodes"),
    ("in a config's options", HIDDEN, 20, "aliases would expand the document past 10,000 nodes"),
]


@pytest.mark.parametrize("parser", sorted(yamlfile.PARSERS))
@pytest.mark.parametrize("case, text, line, message", BOMBS, ids=[b[0] for b in BOMBS])
def test_alias_bombs_are_refused_quickly_by_the_yaml_loader(case, text, line, message, parser):
    err = refused_quickly(yamlfile.load, text, "bomb.yaml", yamlfile.LIMITS, parser, error=yamlfile.YamlError)
    assert (err.file, err.line) == ("bomb.yaml", line), str(err)
    assert message in err.message


@pytest.mark.parametrize("case, text, line, message", BOMBS, ids=[b[0] for b in BOMBS])
def test_alias_bombs_are_config_errors_naming_file_and_line(case, text, line, message):
    err = refused_quickly(config.parse, text, "bomb.yaml", Settings())
    assert str(err).startswith(f"bomb.yaml:{line}: ") and message in str(err)


def test_an_alias_bomb_file_is_refused_by_load():
    err = refused_quickly(config.load, DATA / "alias_bomb.yaml", Settings())
    assert str(err).startswith(f"{DATA / 'alias_bomb.yaml'}:11: aliases would expand the document past 10,000")


# (document, limits, accepted): the budget's edges. "a: &a [x, x, x]\nb: [*a, *a]"
# has 8 nodes written (2 mappings/lists, 2 keys, 3 x, 1 list) and stands for 16.
EDGE = "a: &a [x, x, x]\nb: [*a, *a]\n"
BUDGETS = [
    (EDGE, yamlfile.Limits(expansion_ratio=2, min_expanded=0), True),     # 16 <= 2 x 8
    (EDGE, yamlfile.Limits(expansion_ratio=1, min_expanded=16), True),    # 16 <= the floor
    (EDGE, yamlfile.Limits(expansion_ratio=1, min_expanded=15), False),   # 16 > max(15, 8)
    ("[[[x]]]", yamlfile.Limits(max_depth=3), True),
    ("[[[[x]]]]", yamlfile.Limits(max_depth=3), False),
    ("a: &a [x]\nb: [*a]\n", yamlfile.Limits(max_depth=3), True),         # {b: [[x]]}: 3 levels
    ("a: &a [[x]]\nb: [*a]\n", yamlfile.Limits(max_depth=3), False),      # {b: [[[x]]]}: 4, through the alias
]


@pytest.mark.parametrize("parser", sorted(yamlfile.PARSERS))
@pytest.mark.parametrize("text, limits, accepted", BUDGETS)
def test_the_limits_are_exact(text, limits, accepted, parser):
    if accepted:
        assert yamlfile.load(text, "edge.yaml", limits, parser) == yaml.safe_load(text)
    else:
        with pytest.raises(yamlfile.YamlError, match=r"^edge\.yaml:\d+: "):
            yamlfile.load(text, "edge.yaml", limits, parser)


def nested(levels: int, flow: bool) -> str:
    """`levels` lists inside each other, or mappings (one a line, the last `k: end`)."""
    if flow:
        return "[" * levels + "]" * levels
    return "".join("  " * n + "k:\n" for n in range(levels - 1)) + "  " * (levels - 1) + "k: end\n"


# (YAML, line, message): nesting past 64 levels, written out.
DEEP = [
    (nested(65, flow=True), 1, "nested more than 64 levels deep"),
    # libyaml reads ahead through flow brackets and stops at its own limit
    # (1,000) first; the pure parser gets to ours. Never a RecursionError.
    (nested(100_000, flow=True), 1, "nest"),
    (nested(65, flow=False), 65, "nested more than 64 levels deep"),
    ("- " * 100_000 + "x\n", 1, "nested more than 64 levels deep"),
    ("a: &a [[[[[[[[x]]]]]]]]\nb: &b [*a]\nc: &c [*b]\n" + "".join(
        f"d{n}: &d{n} [{'*c' if n == 0 else f'*d{n - 1}'}]\n" for n in range(60)), 57,
     "the alias *d52 nests the document more than 64 levels deep"),  # 1 + 1 + 63 levels
    ("a: &a [*a]\n", 1, "the alias *a is inside the node it refers to (a loop)"),
]


@pytest.mark.parametrize("parser", sorted(yamlfile.PARSERS))
@pytest.mark.parametrize("text, line, message", DEEP, ids=["flow-65", "flow-100k", "block-65", "dashes-100k",
                                                            "via-aliases", "loop"])
def test_deep_nesting_is_refused_quickly(text, line, message, parser):
    err = refused_quickly(yamlfile.load, text, "deep.yaml", yamlfile.LIMITS, parser, error=yamlfile.YamlError)
    assert err.line == line and message in err.message, str(err)


def test_64_levels_of_nesting_load():
    assert yamlfile.load(nested(64, flow=True), "ok.yaml") == yaml.safe_load(nested(64, flow=True))
    assert yamlfile.load(nested(64, flow=False), "ok.yaml") == yaml.safe_load(nested(64, flow=False))


def test_deep_nesting_in_a_config_names_the_file_line_and_limit():
    text = GOOD.replace("interval: 5m", "interval: " + nested(70, flow=True))
    err = refused_quickly(config.parse, text, "deep.yaml", Settings())
    assert str(err) == "deep.yaml:4: nested more than 64 levels deep"


def test_a_file_over_the_byte_limit_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(1 << 30)  # 1 GiB of holes: reading it would take seconds and the memory
    err = refused_quickly(config.load, path, Settings())
    assert str(err) == f"{path}: larger than the limit of 16,777,216 bytes (TULPAR_MAX_CONFIG_BYTES raises it)"
    assert err.line is None


@pytest.mark.parametrize("extra, ok", [(0, True), (1, False)])
def test_the_byte_limit_is_exact(tmp_path, extra, ok):
    path = tmp_path / "c.yaml"
    path.write_text(GOOD, encoding="utf-8")
    settings = Settings(max_config_bytes=len(GOOD.encode()) - extra)
    if ok:
        assert config.load(path, settings).sources
    else:
        with pytest.raises(config.ConfigError, match=f"larger than the limit of {settings.max_config_bytes:,} bytes"):
            config.load(path, settings)


def test_a_stream_without_a_size_is_cut_at_the_limit():
    read_end, write_end = os.pipe()
    os.write(write_end, b"- som\n" * 50)  # 300 bytes
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        with pytest.raises(yamlfile.YamlError, match="^<stdin>: larger than the limit of 100 bytes"):
            yamlfile.read_stream(stream, "<stdin>", 100)


def test_anchors_as_configs_use_them_still_load():
    cfg = config.load(DATA / "shared_anchors.yaml", Settings())
    desk = ("mailto:desk@example.com", "https://hooks.example.com/desk")
    assert [s.channels for s in cfg.subscriptions] == [desk, desk, desk, ("mailto:treasury@example.com",)]
    assert [s.interval for s in cfg.sources] == [300, 300]
    tenge, again = cfg.subscriptions[2].fx, cfg.subscriptions[3].fx
    assert tenge == again == {"pair": "KZT/USD", "change_pct": 1.5, "window": "1d"}
    assert tenge is not again  # each subscription its own copy


REPO_YAML = sorted(p.relative_to(ROOT).as_posix() for pattern in ("config/*.yaml", "tests/data/**/*.yaml",
                                                                   "services/rules/presets/**/*.yaml")
                   for p in ROOT.glob(pattern) if "alias_bomb" not in p.name)


@pytest.mark.parametrize("parser", sorted(yamlfile.PARSERS))
@pytest.mark.parametrize("name", REPO_YAML)
def test_every_yaml_file_in_the_repo_loads_as_yaml_safe_load_does(name, parser):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert yamlfile.load(text, name, parser=parser) == yaml.safe_load(text)


# (YAML, Python value): scalars are built by PyYAML's SafeConstructor, as before.
SCALARS = [
    ("[1, -2, 0x1f, 1_000, 3.5, .inf, true, no, ~, 2024-03-01, '7', !!str 8, tenge]",
     [1, -2, 31, 1000, 3.5, float("inf"), True, False, None, datetime.date(2024, 3, 1), "7", "8",
      "tenge"]),
    ("{a: 1, a: 2}", {"a": 2}),  # PyYAML's own rule (the config and fx rules refuse duplicates themselves)
    ("\ufeff- x\n", ["x"]),
    ("", None),
    ("---\n", None),
]


@pytest.mark.parametrize("parser", sorted(yamlfile.PARSERS))
@pytest.mark.parametrize("text, value", SCALARS)
def test_values_are_what_yaml_safe_load_gives(text, value, parser):
    assert yamlfile.load(text, "v.yaml", parser=parser) == value == yaml.safe_load(text)


# (YAML, line, message): what PyYAML raised as a bare ValueError or a many-line
# message becomes one line naming the place.
BROKEN = [
    ("a: 1\nb: !!int forty\n", 2, "not valid YAML: 'forty' is not a valid int"),
    ("a: 2024-13-45\n", 1, "not valid YAML: '2024-13-45' is not a valid timestamp"),
    ("a: !!python/object:os.system x\n", 1, "could not determine a constructor"),
    ("a: *nowhere\n", 1, "the alias *nowhere has no anchor &nowhere before it"),
    ("a: &x 1\nb: &x 2\n", 2, "the anchor &x is defined twice (first on line 1)"),
    ("--- 1\n--- 2\n", 2, "expected a single document in the stream"),
    ("a: 1\nb: \x07\n", 2, "not valid YAML: character #x0007 is not allowed"),
]


@pytest.mark.parametrize("parser", sorted(yamlfile.PARSERS))
@pytest.mark.parametrize("text, line, message", BROKEN)
def test_broken_yaml_names_the_line(text, line, message, parser):
    with pytest.raises(yamlfile.YamlError) as caught:
        yamlfile.load(text, "b.yaml", parser=parser)
    assert caught.value.line == line and message in caught.value.message, str(caught.value)


def test_a_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("sources: []\nsubscriptions:\n  - name: t\u00e9nge\n".encode("latin-1"))
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, Settings())
    assert str(caught.value) == f"{path}:3: not UTF-8 text (byte 0xe9)"


# -- file:// sources ------------------------------------------------------

FILE_SOURCE = """\
{flag}sources:
  - name: local
    url: {url}
subscriptions: []
"""


# (line added at the top, TULPAR_ALLOW_FILE_SOURCES, URL, error or None, Config.allow_file_sources)
FILE_SOURCES = [
    ("", False, "file:///srv/feeds/wire.xml", "c.yaml:3: sources[0].url: 'file:///srv/feeds/wire.xml': "
     "file:// sources are off; for tests and local demos only, allow them with `allow_file_sources: true` "
     "at the top of the config or TULPAR_ALLOW_FILE_SOURCES=1", None),
    ("allow_file_sources: false\n", False, "file:///etc/passwd", "c.yaml:4: sources[0].url: 'file:///etc/passwd'",
     None),
    ("", False, "${LOCAL_FEED_FOR_TEST}", "c.yaml:3: sources[0].url: 'file:///tmp/wire.xml': file:// sources "
     "are off", None),  # checked after ${...} is filled in
    ("allow_file_sources: true\n", False, "file:///srv/feeds/wire.xml", None, True),
    ("", True, "file:///srv/feeds/wire.xml", None, False),
    ("allow_file_sources: false\n", True, "file:///srv/feeds/wire.xml", None, False),
    ("", False, "https://news.example.com/rss", None, False),
    ("allow_file_sources: 'yes'\n", True, "https://news.example.com/rss", "c.yaml:1: allow_file_sources: must be "
     "true or false", None),
]


@pytest.mark.parametrize("flag, env_allows, url, error, allowed", FILE_SOURCES)
def test_file_sources_are_refused_unless_allowed(flag, env_allows, url, error, allowed, monkeypatch):
    monkeypatch.setenv("LOCAL_FEED_FOR_TEST", "file:///tmp/wire.xml")
    text = FILE_SOURCE.format(flag=flag, url=url)
    settings = Settings(allow_file_sources=env_allows)
    if error:
        with pytest.raises(config.ConfigError) as caught:
            config.parse(text, "c.yaml", settings)
        assert str(caught.value).startswith(error)
        return
    cfg = config.parse(text, "c.yaml", settings)
    assert (cfg.sources[0].url, cfg.allow_file_sources) == (url, allowed)


def test_the_environment_setting_allows_file_sources(monkeypatch):
    monkeypatch.setenv("TULPAR_ALLOW_FILE_SOURCES", "1")
    cfg = config.parse(FILE_SOURCE.format(flag="", url="file:///srv/wire.xml"), "c.yaml")
    assert cfg.sources[0].url == "file:///srv/wire.xml"


# (the config's allow_private_targets, allow_file_sources, the environment's same two, the result's two)
SETTINGS_FOR = [
    (False, False, False, False, (False, False)),
    (True, False, False, False, (True, False)),
    (False, True, False, False, (False, True)),
    (True, True, False, False, (True, True)),
    (False, False, True, True, (True, True)),  # a config can switch these on, never off
]


@pytest.mark.parametrize("cfg_private, cfg_files, env_private, env_files, expected", SETTINGS_FOR)
def test_settings_for_a_config_only_ever_opens(cfg_private, cfg_files, env_private, env_files, expected):
    cfg = config.Config("c.yaml", (), (), allow_private_targets=cfg_private, allow_file_sources=cfg_files)
    base = Settings(allow_private_targets=env_private, allow_file_sources=env_files, http_timeout=3.5)
    got = config.settings_for(cfg, base)
    assert (got.allow_private_targets, got.allow_file_sources) == expected
    assert got.http_timeout == 3.5  # everything else is the environment's
