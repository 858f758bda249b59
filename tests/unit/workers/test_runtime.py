"""A worker reloads its config when the file changes, and keeps the last good
one when an edit is broken."""
import os
import time
from pathlib import Path

import pytest

from services.config import ConfigError
from workers import runtime as rt_mod

GOOD = """
sources:
  - name: wire
    url: https://news.example.com/rss
subscriptions:
  - name: {name}
    query: 'cpc AND halt*'
    channels: [mailto:desk@example.com]
"""


@pytest.fixture
def config_file(tmp_path, monkeypatch, var_db):
    path = tmp_path / "tulpar.yaml"
    path.write_text(GOOD.format(name="first"))
    monkeypatch.setenv("TULPAR_CONFIG", str(path))
    monkeypatch.setattr(rt_mod, "_current", None)
    return path


def touch(path, text, bump):
    path.write_text(text)
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + bump))  # mtime granularity can hide an edit


def test_reloads_on_change_and_keeps_last_good_config_on_a_broken_edit(config_file, caplog):
    assert [s.name for s in rt_mod.runtime().config.subscriptions] == ["first"]
    touch(config_file, GOOD.format(name="second"), 10)
    assert [s.name for s in rt_mod.runtime().config.subscriptions] == ["second"]
    touch(config_file, GOOD.format(name="third").replace("cpc AND halt*", "cpc AND ("), 20)
    assert [s.name for s in rt_mod.runtime().config.subscriptions] == ["second"]
    assert "config change refused" in caplog.text and "unbalanced" in caplog.text
    touch(config_file, GOOD.format(name="fourth"), 30)
    assert [s.name for s in rt_mod.runtime().config.subscriptions] == ["fourth"]


def test_a_broken_config_at_start_is_an_error(config_file):
    config_file.write_text("sources: [")
    with pytest.raises(Exception, match="not valid YAML"):
        rt_mod.runtime()


BOMB = Path(__file__).resolve().parents[2] / "data" / "config" / "alias_bomb.yaml"


def test_an_alias_bomb_edit_is_refused_quickly_and_the_last_good_config_kept(config_file, caplog):
    assert [s.name for s in rt_mod.runtime().config.subscriptions] == ["first"]
    touch(config_file, BOMB.read_text(encoding="utf-8"), 10)
    started = time.perf_counter()
    kept = rt_mod.runtime()
    assert time.perf_counter() - started < 0.5  # the old loader expanded it: minutes and gigabytes
    assert [s.name for s in kept.config.subscriptions] == ["first"]
    assert f"{config_file}:11: aliases would expand the document past 10,000 nodes" in caplog.text
    touch(config_file, GOOD.format(name="after"), 20)  # and a fixed file is picked up again
    assert [s.name for s in rt_mod.runtime().config.subscriptions] == ["after"]


FILE_CONFIG = """
{flag}sources:
  - name: disk
    url: file:///srv/feeds/wire.xml
subscriptions: []
"""


# (line at the top of the config, TULPAR_ALLOW_FILE_SOURCES, settings.allow_file_sources after loading)
FILE_SOURCES = [
    ("allow_file_sources: true\n", None, True),   # the config turns it on for the fetcher
    ("", "1", True),                              # the environment already had it on
    ("allow_file_sources: false\n", "1", True),   # a config can open, never close
]


@pytest.mark.parametrize("flag, env, allowed", FILE_SOURCES)
def test_the_configs_allow_file_sources_reaches_the_settings(config_file, monkeypatch, flag, env, allowed):
    if env is None:
        monkeypatch.delenv("TULPAR_ALLOW_FILE_SOURCES", raising=False)
    else:
        monkeypatch.setenv("TULPAR_ALLOW_FILE_SOURCES", env)
    config_file.write_text(FILE_CONFIG.format(flag=flag))
    rt = rt_mod.runtime()
    assert rt.config.sources[0].url == "file:///srv/feeds/wire.xml"
    assert rt.settings.allow_file_sources is allowed
    assert rt.base_settings.allow_file_sources is (env is not None)


def test_without_allow_file_sources_a_file_source_is_refused_at_start(config_file, monkeypatch):
    monkeypatch.delenv("TULPAR_ALLOW_FILE_SOURCES", raising=False)
    config_file.write_text(FILE_CONFIG.format(flag=""))
    with pytest.raises(ConfigError, match=r"tulpar\.yaml:4: sources\[0\]\.url: .*allow_file_sources: true"):
        rt_mod.runtime()


def test_http_sources_leave_file_sources_off(config_file, monkeypatch):
    monkeypatch.delenv("TULPAR_ALLOW_FILE_SOURCES", raising=False)
    assert rt_mod.runtime().settings.allow_file_sources is False
