"""The one way tulpar talks HTTP to servers it does not run: feeds, rate files, webhooks.

Three promises, kept here so every caller gets all of them:

1. One deadline. httpx timeouts bound each connect, read or write on its own,
   so a server that sends one byte every second never trips a 10 s timeout and
   can hold us for as long as it likes. `client(timeout)` installs a network
   backend whose streams clamp every connect, TLS handshake, read and write to
   the time left before one deadline, so the whole exchange (redirects
   included) ends within `timeout` seconds of the client's creation.
2. Pinned, vetted addresses. `stream` resolves the host once, checks every
   address (services.net.urlsafety) and connects to those exact addresses, the
   name kept in the Host header and the TLS SNI: a DNS server that answers
   differently the second time (DNS rebinding) never gets a second time.
3. Bounded decoding. `read_body` undoes gzip and deflate a piece at a time
   and stops as soon as the decoded body passes its limit, so a gzip bomb
   costs one piece of memory past the limit, not what one read inflates to.
"""
from __future__ import annotations

import contextlib
import ipaddress
import itertools
import ssl
import time
import zlib
from typing import Iterable, Iterator

import httpcore
import httpx

from services.net import tls
from services.net import urlsafety

# What read_body can undo within a bound. Brotli would need a library this
# project does not install, so it is never asked for.
ACCEPT_ENCODING = "gzip, deflate"
# The most one decompress call may produce: the "one small read" a body may
# pass its limit by.
_PIECE = 64 * 1024
# See _DeadlineStream.write.
_WRITE_PIECE = 16 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"larger than {limit} bytes")


class BodyUndecodable(Exception):
    """The Content-Encoding is broken or one we do not undo; str() says which."""


class _Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def clamp(self, timeout: float | None, expired: type[Exception]) -> float:
        """`timeout` cut to the time left; `expired` is raised once none is left."""
        left = self.at - time.monotonic()
        if left <= 0:
            # Never pass on 0: settimeout(0) makes the socket non-blocking, and
            # its "would block" would surface as a read error, not a timeout.
            raise expired(f"the {self.seconds:g}s deadline passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline):
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # The inner write loops over send() with the same timeout for each
        # send: a peer draining a few bytes at a time would stretch one big
        # write far past the deadline. A small piece is about one send.
        for start in range(0, len(buffer), _WRITE_PIECE):
            self._inner.write(buffer[start:start + _WRITE_PIECE],
                              self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        # Clamping once is enough: the ssl module gives the whole handshake
        # one deadline of the socket's timeout, not one per read.
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout),
                               self._deadline)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking backend, every stream of it bound to one deadline."""

    def __init__(self, seconds: float, inner: httpcore.NetworkBackend | None = None):
        self._deadline = _Deadline(seconds)
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options=None) -> httpcore.NetworkStream:
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options=None) -> httpcore.NetworkStream:
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options),
                               self._deadline)


class _Transport(httpx.HTTPTransport):
    """httpx's own transport over an httpcore pool that uses our backend.

    HTTPTransport (httpx 0.28) takes no network backend, so the pool it built
    is swapped for one that does; the methods inherited use nothing but
    `self._pool`.
    """

    def __init__(self, backend: httpcore.NetworkBackend, ssl_context: ssl.SSLContext):
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend)


def client(timeout: float, *, ssl_context: ssl.SSLContext | None = None) -> httpx.Client:
    """A client whose requests, all of them together, end within `timeout` s from now.

    Meant for one job (a fetch with its redirects, one webhook send): make it
    just before, close it after. It never follows redirects itself (callers
    vet each hop) and ignores proxy settings from the environment, which
    would make the proxy resolve and connect, past the address checks.
    """
    transport = _Transport(DeadlineBackend(timeout), ssl_context or tls.client_context())
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False,
                        trust_env=False, headers={"Accept-Encoding": ACCEPT_ENCODING})


def pinned(target: str, ip: urlsafety.IPAddress) -> tuple[httpx.URL, dict, dict]:
    """(url, extra headers, request extensions) that reach `target` at `ip`.

    The URL carries the vetted IP so the client cannot resolve the name again;
    the Host header and, for https, the TLS SNI name (which is also the name
    the certificate is verified against) keep the original host.
    """
    url = httpx.URL(target)
    if url.host == str(ip):  # already an IP literal
        return url, {}, {}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    return url.copy_with(host=str(ip)), {"Host": url.netloc.decode("ascii")}, extensions


def _nothing_blocked(ip: urlsafety.IPAddress) -> None:
    return None


@contextlib.contextmanager
def stream(http: httpx.Client, method: str, url: str, *, allow_private: bool,
           classify: urlsafety.Classifier = urlsafety.why_blocked,
           headers: dict[str, str] | None = None, content: bytes | None = None,
           ) -> Iterator[httpx.Response]:
    """Send one request to the vetted addresses of `url`, and yield the response unread.

    Addresses are tried in resolver order until one connects. Raises
    urlsafety.UnsafeURL (a scheme or address we refuse: `classify` judges each
    address unless `allow_private`), urlsafety.HostLookupFailed, or an
    httpx.HTTPError. Never follows a redirect.
    """
    # Resolved here even when private addresses are allowed: one lookup, and
    # connects that each stay within the deadline (a client resolving by
    # itself tries every address with the full timeout).
    judge = _nothing_blocked if allow_private else classify
    addresses = urlsafety.vetted_addresses(url, allow_private=False, classify=judge)
    response = _send_to_first_that_connects(http, method, url, addresses, headers or {}, content)
    try:
        yield response
    finally:
        response.close()


def _send_to_first_that_connects(http: httpx.Client, method: str, url: str,
                                 addresses: list[urlsafety.IPAddress], headers: dict[str, str],
                                 content: bytes | None) -> httpx.Response:
    *others, last = addresses
    for ip in others:
        try:
            return _send(http, method, url, ip, headers, content)
        except httpx.ConnectError:
            continue  # e.g. an AAAA first on a host without IPv6
    return _send(http, method, url, last, headers, content)


def _send(http: httpx.Client, method: str, url: str, ip: urlsafety.IPAddress,
          headers: dict[str, str], content: bytes | None) -> httpx.Response:
    route, extra_headers, extensions = pinned(url, ip)
    request = http.build_request(method, route, headers=headers | extra_headers, content=content,
                                 extensions=extensions)
    return http.send(request, stream=True)


def address(response: httpx.Response) -> urlsafety.IPAddress:
    """The address a response from `stream` came from (its request went there by IP)."""
    return ipaddress.ip_address(response.request.url.host)


def read_body(response: httpx.Response, limit: int) -> bytes:
    """The body with its Content-Encoding undone; BodyTooLarge once it passes `limit`.

    Both what comes over the wire and what it decodes to are counted, each
    refused as soon as it passes the limit. BodyUndecodable for an encoding
    that is broken or not one of ACCEPT_ENCODING.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    wire = _counted(response.iter_raw(), limit)
    body = bytearray()
    for piece in _decoded(wire, response.headers.get("Content-Encoding", "")):
        body += piece
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return bytes(body)


def _counted(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        yield chunk


def _decoded(chunks: Iterable[bytes], content_encoding: str) -> Iterator[bytes]:
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    # Listed in the order they were applied: undone last first.
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            chunks = _inflate(chunks, zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            chunks = _inflate_deflate(chunks)
        elif coding != "identity":
            raise BodyUndecodable(f"unsupported Content-Encoding {coding!r}")
    return iter(chunks)


def _inflate_deflate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    # "deflate" means zlib-wrapped (RFC 9110), yet some servers send it raw;
    # the two-byte zlib header (method 8, a multiple of 31) tells which.
    chunks = iter(chunks)
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 2:
            break
    wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    yield from _inflate(itertools.chain([head], chunks), zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


def _inflate(chunks: Iterable[bytes], wbits: int) -> Iterator[bytes]:
    inflater = zlib.decompressobj(wbits)
    for chunk in chunks:
        yield from _drain(inflater, chunk)
    # Not flush(): it would hand over everything still inside, unbounded.
    yield from _drain(inflater, b"")


def _drain(inflater, data: bytes) -> Iterator[bytes]:
    # max_length bounds what one call produces; input it could not take yet
    # waits in unconsumed_tail. A full piece may leave more output inside
    # zlib, so only a short piece with no input left means "done for now".
    while True:
        try:
            out = inflater.decompress(data, _PIECE)
        except zlib.error:
            raise BodyUndecodable("broken Content-Encoding") from None
        if out:
            yield out
        data = inflater.unconsumed_tail
        if not data and len(out) < _PIECE:
            return
