"""The polite GET against real loopback servers: conditional requests, limits, failures."""
from __future__ import annotations

import gzip
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from services.local.ports import free_port
from services.settings import Settings
from services.sources.feed import poll
from services.sources.http import FetchState, SourceError, fetch

FEEDS = Path(__file__).parent / "data" / "feeds"
FEED = (FEEDS / "rss20_cyrillic.xml").read_bytes()
LAST_MODIFIED = "Mon, 23 Nov 2026 10:00:00 GMT"


def fast_settings(**overrides) -> Settings:
    values = {"http_timeout": 0.5, "max_feed_bytes": 64 * 1024, "user_agent": "tulpar-test/1"}
    return Settings(**(values | overrides))


class _Scripted(BaseHTTPRequestHandler):
    """Each path is one server behaviour, so a test names what it wants in the URL."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers.items())))
        route, _, arg = self.path.strip("/").partition("/")
        getattr(self, "route_" + route.replace("-", "_"), self.route_missing)(arg)

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        headers.setdefault("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def route_missing(self, arg: str) -> None:
        self.reply(404)

    def route_feed(self, arg: str) -> None:
        self.reply(200, FEED, Content_Type="application/rss+xml; charset=utf-8")

    def route_dated(self, arg: str) -> None:
        # Validators by date only, no ETag.
        if self.headers.get("If-Modified-Since") == LAST_MODIFIED:
            self.reply(304)
        else:
            self.reply(200, FEED, Last_Modified=LAST_MODIFIED)

    def route_status(self, arg: str) -> None:
        self.reply(int(arg), b"<html>no</html>")

    def route_slow(self, arg: str) -> None:
        time.sleep(2)
        self.reply(200, FEED)

    def route_trickle(self, arg: str) -> None:
        # Each byte comes well within the read timeout; the whole never does.
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.1)

    def route_huge_declared(self, arg: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10 * 1024 * 1024))
        self.end_headers()
        self.wfile.write(b"<rss>")

    def route_huge_chunked(self, arg: str) -> None:
        # No Content-Length: only counting while streaming can stop this one.
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"y" * 8192
        for _ in range(100):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def route_cut(self, arg: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5000")
        self.end_headers()
        self.wfile.write(b"<rss version='2.0'>")
        self.close_connection = True

    def route_redirect(self, arg: str) -> None:
        hops = int(arg)
        self.reply(302, Location="/feed" if hops <= 1 else f"/redirect/{hops - 1}")

    def route_loop(self, arg: str) -> None:
        self.reply(301, Location="/loop")

    def route_gzip(self, arg: str) -> None:
        self.reply(200, gzip.compress(FEED), Content_Encoding="gzip")

    def route_bad_gzip(self, arg: str) -> None:
        self.reply(200, b"this is not gzip at all", Content_Encoding="gzip")

    def route_gzip_bomb(self, arg: str) -> None:
        # Tiny on the wire, far past the cap once decoded.
        self.reply(200, gzip.compress(b"z" * (2 * 1024 * 1024)), Content_Encoding="gzip")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients that gave up (timeouts, size caps) make broken pipes here


@pytest.fixture(scope="module")
def scripted():
    server = _QuietServer(("127.0.0.1", free_port()), _Scripted)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


FAILURES = [
    # (path, message after "URL: ", transient)
    ("/status/404", "HTTP 404 Not Found", False),
    ("/status/410", "HTTP 410 Gone", False),
    ("/status/500", "HTTP 500 Internal Server Error", True),
    ("/status/503", "HTTP 503 Service Unavailable", True),
    ("/status/429", "HTTP 429 Too Many Requests", True),
    ("/slow", "timed out after 0.5s", True),
    ("/trickle", "timed out after 0.5s", True),
    ("/huge-declared", "larger than 65536 bytes", False),
    ("/huge-chunked", "larger than 65536 bytes", False),
    ("/gzip-bomb", "larger than 65536 bytes", False),
    ("/loop", "more than 5 redirects", False),
    ("/redirect/9", "more than 5 redirects", False),
    ("/bad-gzip", "body could not be decoded (broken Content-Encoding)", False),
]


@pytest.mark.parametrize("path, message, transient", FAILURES, ids=[f[0] for f in FAILURES])
def test_failure_is_a_plain_source_error(scripted, path, message, transient):
    url = scripted.url + path
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        fetch(url, None, fast_settings())
    assert str(caught.value) == f"{url}: {message}"
    assert caught.value.transient is transient
    assert time.monotonic() - started < 2.5  # limits stop the fetch, not the server


def test_connection_broken_mid_body_is_transient(scripted):
    with pytest.raises(SourceError) as caught:
        fetch(scripted.url + "/cut", None, fast_settings())
    assert str(caught.value).startswith(f"{scripted.url}/cut: connection broken: ")
    assert caught.value.transient


def test_connection_refused_is_transient():
    url = f"http://127.0.0.1:{free_port()}/feed.xml"  # nothing listens there
    with pytest.raises(SourceError) as caught:
        fetch(url, None, fast_settings())
    assert (str(caught.value), caught.value.transient) == (f"{url}: connection refused", True)


def test_https_to_a_plain_http_port_is_a_lasting_tls_failure(scripted):
    url = scripted.url.replace("http://", "https://") + "/feed"
    with pytest.raises(SourceError) as caught:
        fetch(url, None, fast_settings())
    assert (str(caught.value), caught.value.transient) == (f"{url}: TLS handshake failed: wrong version number", False)


@pytest.mark.parametrize("url, message", [
    ("ftp://files.example.com/feed.xml", "unsupported URL scheme 'ftp' (use http, https or file)"),
    ("http:///feed.xml", "URL has no host name"),
    ("http://[::1/feed.xml", "invalid URL: Invalid IPv6 URL"),
])
def test_unusable_url(url, message):
    with pytest.raises(SourceError) as caught:
        fetch(url, None, fast_settings())
    assert str(caught.value) == f"{url}: {message}"


@pytest.mark.parametrize("path, hops", [("/feed", 0), ("/redirect/1", 1), ("/redirect/5", 5)])
def test_redirects_are_followed_up_to_the_limit(scripted, path, hops):
    result = fetch(scripted.url + path, None, fast_settings())
    assert (result.status, result.body, result.url) == (200, FEED, scripted.url + "/feed")


def test_request_is_polite(scripted):
    fetch(scripted.url + "/feed", FetchState('"v1"', LAST_MODIFIED), fast_settings())
    path, headers = scripted.seen[-1]
    assert headers["User-Agent"] == "tulpar-test/1"
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == LAST_MODIFIED
    assert "application/rss+xml" in headers["Accept"]


def test_gzip_body_is_decoded(scripted):
    assert fetch(scripted.url + "/gzip", None, fast_settings()).body == FEED


def test_etag_conditional_get_gives_304_and_no_articles(file_server):
    shutil.copy(FEEDS / "rss20_cyrillic.xml", file_server.root / "news.xml")
    url = f"{file_server.url}/news.xml"
    articles, state = poll(url, "news", FetchState(), fast_settings())
    assert len(articles) == 3 and state.etag and state.last_modified
    again, same_state = poll(url, "news", state, fast_settings())
    assert (again, same_state) == ([], state)
    # The feed changes on disk: the old ETag no longer matches.
    shutil.copy(FEEDS / "atom10_base.xml", file_server.root / "news.xml")
    changed, new_state = poll(url, "news", state, fast_settings())
    assert [a.id for a in changed] == ["urn:tulpar:test:atom10:1", "urn:tulpar:test:atom10:2"]
    assert new_state.etag != state.etag


def test_last_modified_conditional_get(scripted):
    # An ETag the server no longer sends is dropped, not carried forward.
    first = fetch(scripted.url + "/dated", FetchState('"stale"', None), fast_settings())
    assert first.state == FetchState(None, LAST_MODIFIED)
    second = fetch(scripted.url + "/dated", first.state, fast_settings())
    assert (second.status, second.not_modified, second.body, second.state) == (304, True, None, first.state)


# Local files stand in for servers (demo, release checks).
def test_local_path_and_file_url_read_the_same(tmp_path):
    path = tmp_path / "лента.xml"  # a non-ASCII name must survive file:// quoting
    path.write_bytes(FEED)
    by_path = fetch(str(path), None, fast_settings())
    by_url = fetch(path.as_uri(), None, fast_settings())
    assert by_path.body == by_url.body == FEED
    assert by_path.url == by_url.url == path.as_uri()


def test_unchanged_local_file_is_not_modified(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    first = fetch(str(path), None, fast_settings())
    assert fetch(str(path), first.state, fast_settings()).not_modified
    path.write_bytes(FEED + b"\n")
    assert not fetch(str(path), first.state, fast_settings()).not_modified


@pytest.mark.parametrize("name, message", [
    ("missing.xml", "no such file"),
    ("a-directory", "is a directory, not a file"),
    ("big.xml", "larger than 65536 bytes"),
])
def test_local_file_failures(tmp_path, name, message):
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "big.xml").write_bytes(b" " * (64 * 1024 + 1))
    url = str(tmp_path / name)
    with pytest.raises(SourceError) as caught:
        fetch(url, None, fast_settings())
    assert (str(caught.value), caught.value.transient) == (f"{url}: {message}", False)
