"""The shared HTTP client against real loopback servers: one deadline for the
whole exchange, requests pinned to vetted addresses, bounded decoding."""
from __future__ import annotations

import gzip
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trustme

from services.net import httpclient
from services.local.ports import free_port
from services.net.urlsafety import UnsafeURL, why_blocked

TIMEOUT = 0.5
# Generous for a loaded 2-core machine, far below what any trickle below takes
# without a deadline (4 s and more).
WITHIN = TIMEOUT + 0.8


class Trickler:
    """A raw TCP server: each connection runs `script(conn)`, which trickles bytes."""

    def __init__(self, script):
        self.script = script
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed by the test
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.script(conn)
            except OSError:
                pass  # the client gave up: that is the point

    def close(self) -> None:
        self.sock.close()


def drip(conn: socket.socket, data: bytes, every: float = 0.1) -> None:
    for i in range(len(data)):
        conn.sendall(data[i:i + 1])
        time.sleep(every)


def read_request_head(conn: socket.socket) -> None:
    seen = b""
    while b"\r\n\r\n" not in seen:
        chunk = conn.recv(4096)
        if not chunk:
            return
        seen += chunk


def status_line_dripped(conn):
    read_request_head(conn)
    drip(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def headers_dripped(conn):
    read_request_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    drip(conn, b"X-Padding: " + b"p" * 40 + b"\r\nContent-Length: 2\r\n\r\nok")


def body_dripped(conn):
    read_request_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n")
    drip(conn, b"b" * 60)


def never_answers(conn):
    read_request_head(conn)
    time.sleep(5)


def tls_handshake_dripped(conn):
    conn.recv(4096)  # the ClientHello
    # A handshake record announcing 16 KiB, sent a byte at a time: each read
    # of the handshake gets a byte well within any per-read timeout.
    conn.sendall(b"\x16\x03\x03\x40\x00")
    drip(conn, b"\x02" * 100)


def request_read_slowly(conn):
    # Takes 64 KiB of the request every 50 ms: every send of the client makes
    # progress within a per-write timeout, the whole upload takes seconds.
    for _ in range(200):
        if not conn.recv(64 * 1024):
            return
        time.sleep(0.05)


@pytest.mark.parametrize("script, method, scheme", [
    (status_line_dripped, "GET", "http"),
    (headers_dripped, "GET", "http"),
    (body_dripped, "GET", "http"),
    (never_answers, "GET", "http"),
    (tls_handshake_dripped, "GET", "https"),
    (request_read_slowly, "POST", "http"),
], ids=lambda v: getattr(v, "__name__", v))
def test_one_deadline_covers_every_phase(script, method, scheme):
    server = Trickler(script)
    url = f"{scheme}://127.0.0.1:{server.port}/feed"
    upload = b"u" * (8 * 1024 * 1024) if method == "POST" else None
    started = time.monotonic()
    try:
        with pytest.raises(httpx.TimeoutException):
            with httpclient.client(TIMEOUT) as http, \
                    httpclient.stream(http, method, url, allow_private=True, content=upload) as response:
                httpclient.read_body(response, 1 << 20)
    finally:
        server.close()
    assert time.monotonic() - started < WITHIN


def test_the_deadline_spans_all_requests_of_a_client():
    def answers_after_a_while(conn):
        read_request_head(conn)
        time.sleep(0.3)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    server = Trickler(answers_after_a_while)
    try:
        with httpclient.client(TIMEOUT) as http:
            with httpclient.stream(http, "GET", server.url, allow_private=True) as first:
                assert httpclient.read_body(first, 100) == b"ok"
            # 0.3 s of the 0.5 s are gone: the second 0.3 s wait does not fit.
            with pytest.raises(httpx.ReadTimeout):
                with httpclient.stream(http, "GET", server.url, allow_private=True):
                    pass
    finally:
        server.close()


class _Answers(BaseHTTPRequestHandler):
    """Answers each path with the (body, headers) the test stored under it."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers.items()))
        body, headers = self.server.answers.get(self.path, (b"", {}))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients that stop reading (size caps) make broken pipes here


@pytest.fixture(scope="module")
def answers():
    server = _Quiet(("127.0.0.1", free_port()), _Answers)
    server.answers, server.seen = {}, []
    server.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def fetched(server, path: str, body: bytes, limit: int = 1 << 20, **headers: str) -> bytes:
    server.answers[path] = (body, {k.replace("_", "-"): v for k, v in headers.items()})
    with httpclient.client(2.0) as http, \
            httpclient.stream(http, "GET", server.url + path, allow_private=True) as response:
        return httpclient.read_body(response, limit)


def deflate_raw(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


TEXT = "Курс тенге: 518,2 за доллар. ".encode() * 4000  # ~150 KB: many pieces

ENCODED = [
    ("no encoding", TEXT, {}),
    ("identity", TEXT, {"Content-Encoding": "identity"}),
    ("gzip", gzip.compress(TEXT), {"Content-Encoding": "gzip"}),
    ("x-gzip, upper case", gzip.compress(TEXT), {"Content-Encoding": "X-GZIP"}),
    ("deflate as the RFC says (zlib)", zlib.compress(TEXT), {"Content-Encoding": "deflate"}),
    ("deflate as some servers send it (raw)", deflate_raw(TEXT), {"Content-Encoding": "deflate"}),
    ("gzip, then deflate", zlib.compress(gzip.compress(TEXT)), {"Content-Encoding": "gzip, deflate"}),
]


@pytest.mark.parametrize("body, headers", [c[1:] for c in ENCODED], ids=[c[0] for c in ENCODED])
def test_encoded_bodies_are_decoded(answers, body, headers):
    assert fetched(answers, "/encoded", body, **headers) == TEXT


def test_only_decodable_encodings_are_asked_for(answers):
    fetched(answers, "/asked", b"x")
    assert answers.seen[-1]["Accept-Encoding"] == "gzip, deflate"


LIMIT = 64 * 1024

REFUSED = [
    ("gzip bomb", gzip.compress(bytes(64 << 20)), {"Content-Encoding": "gzip"}, httpclient.BodyTooLarge,
     "larger than 65536 bytes"),
    ("deflate bomb", zlib.compress(bytes(64 << 20)), {"Content-Encoding": "deflate"},
     httpclient.BodyTooLarge, "larger than 65536 bytes"),
    ("plain, one byte over", b"x" * (LIMIT + 1), {}, httpclient.BodyTooLarge, "larger than 65536 bytes"),
    ("gzip of what is too big on the wire already", gzip.compress(bytes(range(256)) * 1024, 0),
     {"Content-Encoding": "gzip"}, httpclient.BodyTooLarge, "larger than 65536 bytes"),
    ("not gzip at all", b"plain words", {"Content-Encoding": "gzip"}, httpclient.BodyUndecodable,
     "broken Content-Encoding"),
    ("gzip cut in the middle of its data", gzip.compress(TEXT)[:20] + b"\xff" * 50,
     {"Content-Encoding": "gzip"}, httpclient.BodyUndecodable, "broken Content-Encoding"),
    ("brotli, never asked for", b"\x1b\x03\x00", {"Content-Encoding": "br"}, httpclient.BodyUndecodable,
     "unsupported Content-Encoding 'br'"),
]


@pytest.mark.parametrize("body, headers, error, message", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_bodies_refused(answers, body, headers, error, message):
    with pytest.raises(error) as caught:
        fetched(answers, "/refused", body, limit=LIMIT, **headers)
    assert str(caught.value) == message


def test_body_of_exactly_the_limit_is_kept(answers):
    body = b"k" * LIMIT
    assert fetched(answers, "/exact", gzip.compress(body), limit=LIMIT, Content_Encoding="gzip") == body


# Where requests go.

@pytest.mark.parametrize("target, ip, url, host_header, sni", [
    ("http://hooks.example.com/a?b=1", "93.184.216.34", "http://93.184.216.34/a?b=1",
     "hooks.example.com", None),
    ("https://u:p@hooks.example.com:8443/a", "2606:2800:220:1::", "https://u:p@[2606:2800:220:1::]:8443/a",
     "hooks.example.com:8443", "hooks.example.com"),
    ("https://пример.қаз/x", "8.8.8.8", "https://8.8.8.8/x",
     "xn--e1afmkfd.xn--80ao21a", "xn--e1afmkfd.xn--80ao21a"),
    ("https://8.8.8.8/x", "8.8.8.8", "https://8.8.8.8/x", None, None),
])
def test_pinned_route_connects_to_the_vetted_ip_and_keeps_the_name(target, ip, url, host_header, sni):
    pinned_url, headers, extensions = httpclient.pinned(target, ipaddress.ip_address(ip))
    assert str(pinned_url) == url
    assert headers.get("Host") == host_header
    assert extensions.get("sni_hostname") == sni


def test_pinned_route_reaches_a_real_server_under_its_name(answers):
    # The name never resolves (.invalid): the request can only arrive because
    # the route goes to the pinned address, with the name kept in Host.
    target = f"http://feeds.tulpar.invalid:{answers.server_port}/pinned"
    url, headers, extensions = httpclient.pinned(target, ipaddress.ip_address("127.0.0.1"))
    with httpx.Client(trust_env=False) as http:
        assert http.get(url, headers=headers, extensions=extensions).status_code == 200
    assert answers.seen[-1]["Host"] == f"feeds.tulpar.invalid:{answers.server_port}"


def test_a_name_is_resolved_once_and_the_request_goes_to_that_address(answers):
    answers.answers["/named"] = (b"named", {})
    with httpclient.client(2.0) as http, \
            httpclient.stream(http, "GET", f"http://localhost:{answers.server_port}/named",
                              allow_private=True) as response:
        assert httpclient.read_body(response, 100) == b"named"
        assert response.request.url.host == "127.0.0.1"
        assert httpclient.address(response) == ipaddress.ip_address("127.0.0.1")
    assert answers.seen[-1]["Host"] == f"localhost:{answers.server_port}"


def all_public(ip) -> None:
    return None


@pytest.mark.parametrize("allow_private, classify, refusal", [
    (False, why_blocked, "it resolves to 127.0.0.1, which is loopback"),
    (True, why_blocked, None),
    (False, all_public, None),  # the classifier is the policy
])
def test_addresses_are_vetted_before_connecting(answers, allow_private, classify, refusal):
    answers.answers["/vetted"] = (b"in", {})
    before = len(answers.seen)
    with httpclient.client(2.0) as http:
        if refusal:
            with pytest.raises(UnsafeURL, match=refusal):
                with httpclient.stream(http, "GET", answers.url + "/vetted", allow_private=allow_private,
                                       classify=classify):
                    pass
            assert len(answers.seen) == before  # refused before connecting
        else:
            with httpclient.stream(http, "GET", answers.url + "/vetted", allow_private=allow_private,
                                   classify=classify) as response:
                assert httpclient.read_body(response, 100) == b"in"


@pytest.fixture(scope="module")
def tls_server():
    """A real HTTPS server on 127.0.0.1 whose certificate names only feeds.tulpar.test."""
    ca = trustme.CA()
    server = _Quiet(("127.0.0.1", free_port()), _Answers)
    server.answers, server.seen = {"/tls": (b"secure", {})}, []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("feeds.tulpar.test").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    yield server, trust
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name, verifies", [
    ("feeds.tulpar.test", True),    # SNI carries the name, the certificate matches it
    ("other.tulpar.test", False),   # ... and a certificate for another name is refused
])
def test_pinned_https_verifies_the_certificate_against_the_name(tls_server, name, verifies):
    server, trust = tls_server
    url, headers, extensions = httpclient.pinned(f"https://{name}:{server.server_port}/tls",
                                                 ipaddress.ip_address("127.0.0.1"))
    with httpclient.client(2.0, ssl_context=trust) as http:
        request = http.build_request("GET", url, headers=headers, extensions=extensions)
        if verifies:
            assert http.send(request).content == b"secure"
        else:
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                http.send(request)
