"""feedparser's own conformance feeds, obtained from its sdist on PyPI.

The sdist ships ~2,240 small feeds under `tests/` (well-formed, ill-formed,
encodings, entities). We download it once into `var/cache/` and reuse it; it
is never copied into git. Each feed starts with a comment such as

    Header:      Content-type: application/atom+xml;charset='us-ascii'
    Expect:      not bozo and encoding == 'us-ascii'

`Header` lines are what feedparser's own test server sends with the file, and
an `Expect` starting with "bozo" marks a feed its authors call ill-formed.
"""
from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from services.local.ports import free_port
from services.settings import ROOT

CACHE = ROOT / "var" / "cache" / "feedparser-sdist"
_HEADER = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)
_EXPECT = re.compile(rb"^Expect:\s+(.*)$", re.MULTILINE)
# http/ redirects to feedparser's fixed port 8097 and compression/ has no
# header comment: both test feedparser's own HTTP client, which we do not use.
_SKIPPED_DIRS = ("http/", "compression/")


class SuiteUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class SuiteFeed:
    name: str  # path under the sdist's tests/, e.g. "wellformed/rss/item_guid.xml"
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    expect: str = ""

    @property
    def ill_formed(self) -> bool:
        return self.name.startswith("illformed/") or self.expect.startswith("bozo")


def suite_dir() -> Path:
    """The sdist's tests/ directory, downloading and unpacking it on first use."""
    version = importlib.metadata.version("feedparser")
    unpacked = CACHE / f"feedparser-{version}"
    if not (unpacked / "tests" / "wellformed").is_dir():
        _download_and_unpack(version, unpacked)
    return unpacked / "tests"


def _download_and_unpack(version: str, unpacked: Path) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    # Work in a private directory and rename at the end, so a second test
    # session running at the same time never sees half an unpacked tree.
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--disable-pip-version-check", f"feedparser=={version}", "-d", work]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        archives = list(Path(work).glob("feedparser-*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise SuiteUnavailable(
                f"could not download the feedparser {version} sdist (needs network access to PyPI; "
                f"or unpack it by hand into {unpacked}): {done.stderr.strip()[-800:]}")
        with tarfile.open(archives[0]) as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: refuse odd members
                tar.extractall(work, filter="data")
            else:
                tar.extractall(work)
        try:
            Path(work, f"feedparser-{version}").rename(unpacked)
        except OSError:
            if not unpacked.is_dir():  # lost a race with another session: fine
                raise


def load_feeds() -> list[SuiteFeed]:
    root = suite_dir()
    feeds = []
    for path in sorted(root.rglob("*.xml")):
        name = path.relative_to(root).as_posix()
        if name.startswith(_SKIPPED_DIRS):
            continue
        body = path.read_bytes()
        headers = {k.decode().strip(): v.decode().strip() for k, v in _HEADER.findall(body)}
        expect = _EXPECT.search(body)
        feeds.append(SuiteFeed(name, body, headers, expect.group(1).decode().strip() if expect else ""))
    return feeds


def spread_sample(items: list, count: int) -> list:
    """`count` items evenly spaced through `items` (which is sorted by path,
    so every directory, hence every encoding family, gets its share)."""
    if count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        feed = self.server.feeds.get(self.path.lstrip("/"))
        if feed is None:
            self.send_error(404)
            return
        headers = {k.lower(): v for k, v in feed.headers.items() if k.lower() not in ("status", "location")}
        headers.setdefault("content-type", "application/xml")
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(feed.body)))
        self.end_headers()
        self.wfile.write(feed.body)


class SuiteServer:
    """Serves suite feeds on loopback at /<name>, with each file's own headers."""

    def __init__(self, feeds: list[SuiteFeed]):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.feeds = {feed.name: feed for feed in feeds}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}/{name}"

    def __enter__(self) -> "SuiteServer":
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

