"""A polite GET for feeds and rate files: conditional, bounded in time and size.

Every failure is a `SourceError` whose text is `URL: what went wrong`, with
`transient` set when trying again later may help (5xx, timeouts, network).
`file://` URLs and plain paths read a local file, for the demo and release checks.
"""
from __future__ import annotations

import email.utils
import errno
import socket
import ssl
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import httpx

from services.settings import Settings
from services.tls import client_context

MAX_REDIRECTS = 5
ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml, "
          "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8")
# 408 and 429 ask the client to come back later, like a 5xx does.
_TRANSIENT_STATUSES = {408, 425, 429}


class SourceError(Exception):
    """A source could not be fetched or read; `str()` is `URL: what went wrong`."""

    def __init__(self, url: str, message: str, transient: bool = False):
        super().__init__(url, message)
        self.url = url
        self.message = message
        self.transient = transient

    def __str__(self) -> str:
        return f"{self.url}: {self.message}"


@dataclass(frozen=True, slots=True)
class FetchState:
    """Validators from the last successful fetch, sent back to get a 304."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int
    body: bytes | None
    state: FetchState
    not_modified: bool
    url: str = ""  # where the body came from, after redirects: the base for relative links
    content_type: str | None = None


def fetch(url: str, state: FetchState | None = None, settings: Settings | None = None) -> FetchResult:
    """GET `url` (http, https, file:// or a local path) within the settings' limits."""
    state = state or FetchState()
    settings = settings or Settings()
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 address
        raise SourceError(url, f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    # One letter is a Windows drive ("C:\feeds\a.xml"), not a scheme.
    if scheme == "file" or len(scheme) <= 1:
        return _read_file(url, state, settings)
    if scheme not in ("http", "https"):
        raise SourceError(url, f"unsupported URL scheme {scheme!r} (use http, https or file)")
    if not host:
        raise SourceError(url, "URL has no host name")
    try:
        return _get(url, state, settings)
    except httpx.TimeoutException:
        raise SourceError(url, f"timed out after {settings.http_timeout:g}s", transient=True) from None
    except httpx.TooManyRedirects:
        raise SourceError(url, f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.ConnectError as exc:
        tls = _tls_failure(exc)
        if tls:  # a bad certificate stays bad: retrying will not help
            raise SourceError(url, f"TLS handshake failed: {tls}") from None
        raise SourceError(url, _connect_failure(exc), transient=True) from None
    except httpx.DecodingError:
        raise SourceError(url, "body could not be decoded (broken Content-Encoding)") from None
    except (httpx.RemoteProtocolError, httpx.NetworkError) as exc:
        raise SourceError(url, f"connection broken: {_reason(exc)}", transient=True) from None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        # ValueError covers hosts httpx or IDNA cannot encode.
        raise SourceError(url, f"invalid request: {_reason(exc)}") from None


def _get(url: str, state: FetchState, settings: Settings) -> FetchResult:
    headers = {"User-Agent": settings.user_agent, "Accept": ACCEPT}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    # httpx timeouts bound each connect or read, so a server trickling one byte
    # at a time never trips them; the deadline bounds the whole transfer.
    deadline = time.monotonic() + settings.http_timeout
    with httpx.Client(timeout=settings.http_timeout, follow_redirects=True,
                      max_redirects=MAX_REDIRECTS, verify=client_context()) as client:
        with client.stream("GET", url, headers=headers) as response:
            final_url = str(response.url)
            new_state = FetchState(response.headers.get("ETag"), response.headers.get("Last-Modified"))
            if response.status_code == 304:
                # A 304 may omit the validators it just confirmed: keep ours.
                kept = FetchState(new_state.etag or state.etag, new_state.last_modified or state.last_modified)
                return FetchResult(304, None, kept, True, final_url)
            if not 200 <= response.status_code < 300:
                raise SourceError(url, _status_text(response), transient=_is_transient(response.status_code))
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > settings.max_feed_bytes:
                raise SourceError(url, f"larger than {settings.max_feed_bytes} bytes")
            body = bytearray()
            # No chunk_size: httpx would then hold data back until a full
            # chunk arrived, and the deadline could not be checked meanwhile.
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > settings.max_feed_bytes:
                    raise SourceError(url, f"larger than {settings.max_feed_bytes} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("whole transfer took too long")
            return FetchResult(response.status_code, bytes(body), new_state, False, final_url,
                               response.headers.get("Content-Type"))


def _read_file(url: str, state: FetchState, settings: Settings) -> FetchResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise SourceError(url, f"file URL names another host ({parts.netloc})")
        path = Path(urllib.request.url2pathname(parts.path))
    else:
        path = Path(url).expanduser()
    try:
        info = path.stat()
        if path.is_dir():
            raise SourceError(url, "is a directory, not a file")
        # The file stands in for a server: size and mtime act as its ETag, so
        # an unchanged file polls as "not modified" like an unchanged feed.
        etag = f'"{info.st_size:x}-{info.st_mtime_ns:x}"'
        new_state = FetchState(etag, email.utils.formatdate(info.st_mtime, usegmt=True))
        if state.etag == etag:
            return FetchResult(304, None, new_state, True, path.resolve().as_uri())
        with path.open("rb") as f:
            body = f.read(settings.max_feed_bytes + 1)
    except OSError as exc:
        raise SourceError(url, _os_failure(exc)) from None
    except ValueError:  # a NUL byte in the path
        raise SourceError(url, "invalid file path") from None
    if len(body) > settings.max_feed_bytes:
        raise SourceError(url, f"larger than {settings.max_feed_bytes} bytes")
    return FetchResult(200, body, new_state, False, path.resolve().as_uri())


def _is_transient(status: int) -> bool:
    return status >= 500 or status in _TRANSIENT_STATUSES


def _status_text(response: httpx.Response) -> str:
    reason = response.reason_phrase
    if not reason:
        try:
            reason = HTTPStatus(response.status_code).phrase
        except ValueError:
            reason = ""
    return f"HTTP {response.status_code} {reason}".rstrip()


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _tls_failure(exc: httpx.ConnectError) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            # verify_message reads "self-signed certificate"; reason is a code
            # such as WRONG_VERSION_NUMBER (often: https to a plain-HTTP port).
            reason = getattr(cause, "verify_message", None) or (cause.reason or "").lower().replace("_", " ")
            return reason or str(cause)
    return ""


def _connect_failure(exc: httpx.ConnectError) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name could not be resolved"
    text = _reason(exc)
    if "refused" in text.lower():
        return "connection refused"
    if "name or service not known" in text.lower() or "nodename nor servname" in text.lower():
        return "host name could not be resolved"
    return f"could not connect: {text}"


def _os_failure(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    return exc.strerror or str(exc)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
