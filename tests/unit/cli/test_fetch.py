"""`tulpar fetch` as release checks run it: a subprocess, a mix of good and broken sources."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.local.ports import free_port

FEEDS = Path(__file__).resolve().parents[2] / "data" / "feeds"
KEYS = ["source", "id", "title", "summary", "link", "published"]


def run_fetch(*urls: str, **env: str) -> subprocess.CompletedProcess:
    # A C locale and no PYTHONIOENCODING: output must be UTF-8 anyway. The
    # guards for loopback and local sources stay on: the operator's own
    # command reads what the operator names all the same.
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "PYTHONUTF8")}
    environ |= {"LC_ALL": "C", "LANG": "C", "TULPAR_HTTP_TIMEOUT": "2",
                "TULPAR_ALLOW_PRIVATE_TARGETS": "false", "TULPAR_ALLOW_FILE_SOURCES": "false"} | env
    return subprocess.run([sys.executable, "-m", "services", "fetch", *urls],
                          capture_output=True, env=environ, timeout=60)


def json_lines(output: bytes) -> list[dict]:
    return [json.loads(line) for line in output.decode("utf-8").splitlines()]


@pytest.fixture
def served(file_server):
    for fixture in ("rss20_cyrillic.xml", "atom10_base.xml", "not_a_feed.html", "empty_channel.xml"):
        shutil.copy(FEEDS / fixture, file_server.root / fixture)
    return file_server


def test_good_and_broken_sources_in_one_run(served):
    refused = f"http://127.0.0.1:{free_port()}/feed.xml"
    urls = [
        f"{served.url}/rss20_cyrillic.xml",
        f"{served.url}/gone.xml",
        refused,
        f"{served.url}/not_a_feed.html",
        str(FEEDS / "rss10_rdf.xml"),  # a plain local path
        f"{served.url}/atom10_base.xml",  # after three failures, still polled
    ]
    done = run_fetch(*urls)
    assert done.returncode == 1
    assert done.stderr.decode("utf-8").splitlines() == [
        f"{served.url}/gone.xml: HTTP 404 Not Found",
        f"{refused}: connection refused",
        f"{served.url}/not_a_feed.html: not an RSS or Atom feed (got an HTML page)",
    ]
    lines = json_lines(done.stdout)
    assert [(line["source"], line["id"]) for line in lines] == [
        (urls[0], "kz-econ-0001"),
        (urls[0], "https://news.example.kz/politics/budget"),
        (urls[0], "sha1:8386002aab92acebf4fe57840188dd4bc4c28298"),
        (urls[4], "http://rdf.example.uz/a/1"),
        (urls[5], "urn:tulpar:test:atom10:1"),
        (urls[5], "urn:tulpar:test:atom10:2"),
    ]
    assert all(list(line) == KEYS for line in lines)


def test_article_line_is_plain_utf8_json(served):
    done = run_fetch(f"{served.url}/rss20_cyrillic.xml")
    assert (done.returncode, done.stderr) == (0, b"")
    # ensure_ascii=False: Cyrillic is written as itself, not as \u escapes.
    assert "Тенге укрепился".encode("utf-8") in done.stdout
    first = json_lines(done.stdout)[0]
    assert first == {
        "source": f"{served.url}/rss20_cyrillic.xml",
        "id": "kz-econ-0001",
        "title": "Тенге укрепился к доллару",
        "summary": "Курс тенге вырос на 1,5%. Аналитики ждут «стабильности».",
        "link": f"{served.url}/economy/tenge-1",
        "published": "2026-11-24T10:30:00+00:00",
    }


@pytest.mark.parametrize("fixtures, exit_code, stdout_lines", [
    (["empty_channel.xml"], 0, 0),  # a quiet feed is not a failure
    (["rss20_cyrillic.xml", "atom10_base.xml"], 0, 5),
    (["empty_channel.xml", "not_a_feed.html"], 1, 0),
])
def test_exit_code(served, fixtures, exit_code, stdout_lines):
    done = run_fetch(*[f"{served.url}/{name}" for name in fixtures])
    assert (done.returncode, len(done.stdout.splitlines())) == (exit_code, stdout_lines)


def test_missing_local_file_and_published_null(tmp_path):
    missing = str(tmp_path / "nope.xml")
    done = run_fetch((FEEDS / "rss091.xml").as_uri(), missing)
    assert done.returncode == 1
    assert done.stderr.decode() == f"{missing}: no such file\n"
    [line] = json_lines(done.stdout)
    assert line["published"] is None and line["title"] == "Café prices in Bishkek"


def test_no_url_is_a_usage_error():
    assert run_fetch().returncode == 2
