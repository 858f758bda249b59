"""A worker reloads its config when the file changes, and keeps the last good
one when an edit is broken."""
import os

import pytest

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
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "tulpar.yaml"
    path.write_text(GOOD.format(name="first"))
    monkeypatch.setenv("TULPAR_CONFIG", str(path))
    monkeypatch.setenv("TULPAR_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
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
