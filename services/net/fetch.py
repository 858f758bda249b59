"""A polite GET for feeds and rate files: conditional, bounded in time and size.

Every failure is a `SourceError` whose text is `URL: what went wrong`, with
`transient` set when trying again later may help (5xx, timeouts, network).

Where a fetch may go: every hop (the URL and each redirect, at most 5) is
resolved and its addresses checked before connecting, and the connection goes
to the checked address (services.net.httpclient). Loopback and private addresses
only with `allow_private_targets`; `file://` URLs and plain paths only with
`allow_file_sources` (tests and local demos). The operator's own diagnostic
commands pass `operator=True`: see `fetch`.
"""
from __future__ import annotations

import email.utils
import errno
import socket
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import httpx

from services.errors import TulparError
from services.net import httpclient
from services.net import urlsafety
from services.settings import Settings

MAX_REDIRECTS = 5
ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml, "
          "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8")
# 408 and 429 ask the client to come back later, like a 5xx does.
_TRANSIENT_STATUSES = {408, 425, 429}
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
FILES_REFUSED = "file:// sources are refused; set TULPAR_ALLOW_FILE_SOURCES=1 (tests and local demos only)"


class SourceError(TulparError):
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


def fetch(url: str, state: FetchState | None = None, settings: Settings | None = None, *,
          operator: bool = False, classify: urlsafety.Classifier = urlsafety.why_blocked,
          ) -> FetchResult:
    """GET `url` (http, https, file:// or a local path) within the settings' limits.

    `operator=True` is for commands the operator runs by hand (`tulpar fetch`,
    `tulpar fx fetch`), their curl: the URL they typed is fetched even when it
    is loopback, private or a local file, but a public server redirecting
    them to a private address is still refused. `classify` judges addresses
    (tests on loopback use it to call one loopback address public).
    """
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
        if not (operator or settings.allow_file_sources):
            raise SourceError(url, FILES_REFUSED)
        return _read_file(url, state, settings)
    if scheme not in ("http", "https"):
        raise SourceError(url, f"unsupported URL scheme {scheme!r} (use http, https or file)")
    if not host:
        raise SourceError(url, "URL has no host name")
    try:
        return _get(url, state, settings, operator, classify)
    except httpx.TimeoutException:
        raise SourceError(url, f"timed out after {settings.http_timeout:g}s", transient=True) from None
    except urlsafety.HostLookupFailed:
        raise SourceError(url, "host name could not be resolved", transient=True) from None
    except httpclient.BodyTooLarge as exc:
        raise SourceError(url, str(exc)) from None
    except httpclient.BodyUndecodable as exc:
        raise SourceError(url, f"body could not be decoded ({exc})") from None
    except httpx.ConnectError as exc:
        tls = _tls_failure(exc)
        if tls:  # a bad certificate stays bad: retrying will not help
            raise SourceError(url, f"TLS handshake failed: {tls}") from None
        raise SourceError(url, _connect_failure(exc), transient=True) from None
    except (httpx.RemoteProtocolError, httpx.NetworkError) as exc:
        raise SourceError(url, f"connection broken: {_reason(exc)}", transient=True) from None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        # ValueError covers hosts httpx or IDNA cannot encode.
        raise SourceError(url, f"invalid request: {_reason(exc)}") from None


def _get(url: str, state: FetchState, settings: Settings, operator: bool,
         classify: urlsafety.Classifier) -> FetchResult:
    headers = _request_headers(state, settings)
    hop, came_from_private = url, False
    # One client, so one deadline for every hop together.
    with httpclient.client(settings.http_timeout) as http:
        for n in range(MAX_REDIRECTS + 1):
            allow_private = may_reach_private(settings, operator, n, came_from_private)
            try:
                with httpclient.stream(http, "GET", hop, headers=headers, allow_private=allow_private,
                                       classify=classify) as response:
                    location = _redirect_target(response, hop)
                    if location is None:
                        return _result(url, hop, response, state, settings)
                    came_from_private = classify(httpclient.address(response)) is not None
            except urlsafety.UnsafeURL as exc:
                raise SourceError(url, _refusal(exc, n)) from None
            hop = location
    raise SourceError(url, f"more than {MAX_REDIRECTS} redirects")


def may_reach_private(settings: Settings, operator: bool, hop: int, came_from_private: bool) -> bool:
    """Whether hop number `hop` (0: the URL itself) may go to a loopback or private address."""
    if settings.allow_private_targets:
        return True
    # The operator may point their own command anywhere, and follow redirects
    # within a private network they pointed it into; a public server must
    # never be able to send it inside.
    return operator and (hop == 0 or came_from_private)


def _request_headers(state: FetchState, settings: Settings) -> dict[str, str]:
    headers = {"User-Agent": settings.user_agent, "Accept": ACCEPT}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _redirect_target(response: httpx.Response, hop: str) -> str | None:
    location = response.headers.get("Location")
    if response.status_code not in _REDIRECT_STATUSES or not location:
        return None
    return str(httpx.URL(hop).join(location))


def _refusal(exc: urlsafety.UnsafeURL, hop: int) -> str:
    if hop == 0:
        return f"refused: {exc.problem}"
    return f"redirected to {exc.url}, which is refused: {exc.problem}"


def _result(url: str, final_url: str, response: httpx.Response, state: FetchState,
            settings: Settings) -> FetchResult:
    new_state = FetchState(response.headers.get("ETag"), response.headers.get("Last-Modified"))
    if response.status_code == 304:
        # A 304 may omit the validators it just confirmed: keep ours.
        kept = FetchState(new_state.etag or state.etag, new_state.last_modified or state.last_modified)
        return FetchResult(304, None, kept, True, final_url)
    if not 200 <= response.status_code < 300:
        raise SourceError(url, _status_text(response), transient=_is_transient(response.status_code))
    body = httpclient.read_body(response, settings.max_feed_bytes)
    return FetchResult(response.status_code, body, new_state, False, final_url,
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
