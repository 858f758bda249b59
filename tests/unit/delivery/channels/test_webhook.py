"""The webhook channel against real HTTP servers on loopback, and the channel registry."""
from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.delivery import channels
from services.delivery.channels import PermanentError, RetryableError
from services.delivery.channels.webhook import retry_after_seconds
from services.local.ports import free_port
from services.settings import Settings

PAYLOAD = {"type": "tulpar.alert", "subscription": "Нефть",
           "article": {"title": 'CPC "SPM-2" </script> halted', "link": "https://e.kz/1"}}
RAW_KEY = b"0123456789abcdef0123456789abcdef"
WHSEC = "whsec_" + base64.b64encode(RAW_KEY).decode()


def settings(**extra) -> Settings:
    return Settings(**({"allow_private_targets": True, "http_timeout": 2.0} | extra))


def test_posts_json_with_idempotency_key(webhook_sink):
    channels.deliver(webhook_sink.url + "/hook", PAYLOAD, settings=settings(),
                     idempotency_key="delivery-9")
    [request] = webhook_sink.delivered()
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert request["path"] == "/hook"
    assert json.loads(request["body"]) == PAYLOAD
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "delivery-9"
    assert "webhook-signature" not in headers  # no secret configured, no signature


@pytest.mark.parametrize("secret, verify_key", [
    (WHSEC, WHSEC),             # the standard's format: receivers pass it verbatim
    ("plain-text secret", b"plain-text secret"),  # raw: the UTF-8 bytes are the key
])
def test_signature_verifies_with_standardwebhooks(webhook_sink, secret, verify_key):
    channels.deliver(webhook_sink.url + "/hook", PAYLOAD, settings=settings(webhook_secret=secret),
                     idempotency_key="delivery-10")
    [request] = webhook_sink.delivered()
    assert Webhook(verify_key).verify(request["body"], request["headers"]) == PAYLOAD
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["webhook-id"] == "delivery-10"
    assert secret not in json.dumps(request)


def test_tampered_body_fails_verification(webhook_sink):
    channels.deliver(webhook_sink.url, PAYLOAD, settings=settings(webhook_secret=WHSEC),
                     idempotency_key="d")
    [request] = webhook_sink.delivered()
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(WHSEC).verify(request["body"].replace("Нефть", "Газ"), request["headers"])


def test_malformed_whsec_secret_is_reported_without_echoing_it(webhook_sink):
    with pytest.raises(ValueError, match="not valid base64") as caught:
        channels.deliver(webhook_sink.url, PAYLOAD, settings=settings(webhook_secret="whsec_%%%"),
                         idempotency_key="d")
    assert "%%%" not in str(caught.value)


@pytest.mark.parametrize("statuses, error, match", [
    ([200], None, None),
    ([202], None, None),
    ([204], None, None),
    ([500], RetryableError, "500 Internal Server Error"),
    ([502], RetryableError, "502 Bad Gateway"),
    ([503], RetryableError, "503 Service Unavailable"),
    ([504], RetryableError, "504 Gateway Timeout"),
    ([429], RetryableError, "429 Too Many Requests"),
    # The same request gets the same answer later: no point retrying.
    ([408], PermanentError, "408 Request Timeout"),
    ([425], PermanentError, "425 Too Early"),
    ([400], PermanentError, "400 Bad Request"),
    ([401], PermanentError, "401 Unauthorized"),
    ([403], PermanentError, "403 Forbidden"),
    ([404], PermanentError, "404 Not Found"),
    ([410], PermanentError, "410 Gone"),
    ([422], PermanentError, "422 Unprocessable Entity"),
    ([301], PermanentError, "301 .*update the target"),
    ([302], PermanentError, "302 .*update the target"),
    ([307], PermanentError, "307"),
    ([308], PermanentError, "308"),
])
def test_status_codes_map_to_retry_or_give_up(webhook_sink, statuses, error, match):
    webhook_sink.statuses = statuses
    target = webhook_sink.url + "/hook"
    if error is None:
        channels.deliver(target, PAYLOAD, settings=settings(), idempotency_key="d")
    else:
        with pytest.raises(error, match=match) as caught:
            channels.deliver(target, PAYLOAD, settings=settings(), idempotency_key="d")
        assert target in str(caught.value)
    assert len(webhook_sink.requests) == 1  # one attempt: retrying is the worker's call


class _Scripted(BaseHTTPRequestHandler):
    """Answers every request with the status and headers the test put on the server."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        status, headers = self.server.script
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def scripted_server():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Scripted)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status, headers, error, attrs, match", [
    (429, {"Retry-After": "120"}, RetryableError, {"retry_after": 120.0, "slow": False}, "429"),
    (429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, RetryableError, {"retry_after": 0.0}, "429"),
    (503, {"Retry-After": "90"}, RetryableError, {"retry_after": 90.0}, "503"),
    (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, RetryableError,
     {"retry_after": 0.0}, "503"),
    (503, {"Retry-After": "soon"}, RetryableError, {"retry_after": None}, "503"),
    (503, {}, RetryableError, {"retry_after": None}, "503"),
    # Retry-After means nothing on these: the schedule decides.
    (500, {"Retry-After": "3600"}, RetryableError, {"retry_after": None}, "500"),
    (502, {"Retry-After": "3600"}, RetryableError, {"retry_after": None}, "502"),
    (302, {"Location": "http://10.0.0.1/internal?token=leak1234"}, PermanentError, {},
     r"redirecting to http://10\.0\.0\.1/internal\?token=\*\*\*"),
])
def test_retry_after_and_redirect_details(scripted_server, status, headers, error, attrs, match):
    scripted_server.script = (status, headers)
    url = f"http://127.0.0.1:{scripted_server.server_port}/hook"
    with pytest.raises(error, match=match) as caught:
        channels.deliver(url, PAYLOAD, settings=settings(), idempotency_key="d")
    for name, value in attrs.items():
        assert getattr(caught.value, name) == value
    assert "leak1234" not in str(caught.value)


@pytest.mark.parametrize("value, now, expected", [
    ("30", 0.0, 30.0), ("0", 0.0, 0.0), ("-5", 0.0, 0.0), ("", 0.0, None), (None, 0.0, None),
    ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0, 60.0), ("garbage", 0.0, None),
])
def test_retry_after_parsing(value, now, expected):
    assert retry_after_seconds(value, now) == expected


def test_refused_port_is_retryable():
    target = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with pytest.raises(RetryableError, match="ConnectError") as caught:
        channels.deliver(target, PAYLOAD, settings=settings(), idempotency_key="d")
    assert caught.value.slow is False  # refused at once: no worker was held


def test_silent_server_times_out_as_retryable():
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        target = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        with pytest.raises(RetryableError, match=r"timed out after 0\.3s") as caught:
            channels.deliver(target, PAYLOAD, settings=settings(http_timeout=0.3),
                             idempotency_key="d")
    assert caught.value.slow is True


class _Dripping(BaseHTTPRequestHandler):
    """Reads the whole POST, then answers 200 one byte every 0.1 s (about 4 s in all)."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received += 1
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Took: long\r\n\r\n":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass  # the sender gave up, as it should


def test_receiver_dripping_its_answer_runs_into_the_deadline():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Dripping)
    server.daemon_threads, server.received = True, 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        # Every byte comes well within a per-read timeout of 0.5 s; the whole
        # answer never comes within 0.5 s.
        with pytest.raises(RetryableError, match=r"webhook POST timed out after 0\.5s") as caught:
            channels.deliver(f"http://127.0.0.1:{server.server_port}/hook", PAYLOAD,
                             settings=settings(http_timeout=0.5), idempotency_key="d")
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 1.5
    assert (caught.value.slow, caught.value.retry_after, server.received) == (True, None, 1)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_target_is_blocked_unless_allowed(webhook_sink, host):
    target = f"http://{host}:{webhook_sink.port}/hook"
    with pytest.raises(PermanentError, match="loopback"):
        channels.deliver(target, PAYLOAD, settings=settings(allow_private_targets=False),
                         idempotency_key="d")
    assert webhook_sink.requests == []  # refused before connecting
    channels.deliver(target, PAYLOAD, settings=settings(allow_private_targets=True),
                     idempotency_key="d")
    assert len(webhook_sink.requests) == 1


def test_unresolvable_host_is_retryable():
    with pytest.raises(RetryableError, match="cannot resolve"):
        channels.deliver("https://hooks.example.invalid/x", PAYLOAD,
                         settings=settings(allow_private_targets=False), idempotency_key="d")


def test_userinfo_is_sent_but_never_shown(webhook_sink):
    webhook_sink.statuses = [404]
    target = f"http://robot:pa55word@127.0.0.1:{webhook_sink.port}/hook?token=t0ken99"
    with pytest.raises(PermanentError) as caught:
        channels.deliver(target, PAYLOAD, settings=settings(), idempotency_key="d")
    assert "pa55word" not in str(caught.value) and "t0ken99" not in str(caught.value)
    [request] = webhook_sink.requests
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(
        b"robot:pa55word").decode()


@pytest.mark.parametrize("target, expected_kind", [
    ("mailto:ops@example.com", "email"),
    ("https://hooks.example.com/x", "webhook"),
    ("HTTP://hooks.example.com/x", "webhook"),
])
def test_kind(target, expected_kind):
    assert channels.kind(target) == expected_kind


@pytest.mark.parametrize("target, allow_private, problem", [
    ("https://hooks.example.com/x", False, None),
    ("http://127.0.0.1:9000/x", True, None),
    ("http://127.0.0.1:9000/x", False, "loopback"),
    ("http://[::ffff:10.0.0.1]/x", False, "private"),
    ("https:///x", False, "no host"),
    ("https://hooks.example.com:0x50/", False, "malformed"),
    ("ftp://hooks.example.com/x", False, "unsupported target"),
    ("slack://T000/B000/XXXX", False, "unsupported target"),
    ("hooks.example.com/x", False, "unsupported target"),
    ("", False, "unsupported target"),
])
def test_validate_target(target, allow_private, problem):
    cfg = settings(allow_private_targets=allow_private)
    if problem is None:
        channels.validate_target(target, cfg)
    else:
        with pytest.raises(ValueError, match=problem):
            channels.validate_target(target, cfg)


def test_unsupported_target_message_is_redacted():
    with pytest.raises(ValueError) as caught:
        channels.validate_target("ftp://u:secretpw@files.example/x", settings())
    assert "secretpw" not in str(caught.value)
