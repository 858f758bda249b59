"""The webhook channel against real HTTP servers on loopback, and the channel registry."""
from __future__ import annotations

import base64
import ipaddress
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trustme
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services import channels
from services.channels import PermanentError, RetryableError
from services.channels.webhook import pinned, retry_after_seconds
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
    ([204], None, None),
    ([503], RetryableError, "503 Service Unavailable"),
    ([500], RetryableError, "500"),
    ([429], RetryableError, "429 Too Many Requests"),
    ([408], RetryableError, "408"),
    ([404], PermanentError, "404 Not Found"),
    ([400], PermanentError, "400"),
    ([410], PermanentError, "410"),
    ([301], PermanentError, "301 .*update the target"),
    ([307], PermanentError, "307"),
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
    (429, {"Retry-After": "120"}, RetryableError, {"retry_after": 120.0}, "429"),
    (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, RetryableError,
     {"retry_after": 0.0}, "503"),
    (503, {"Retry-After": "soon"}, RetryableError, {"retry_after": None}, "503"),
    (503, {}, RetryableError, {"retry_after": None}, "503"),
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
    with pytest.raises(RetryableError, match="ConnectError"):
        channels.deliver(target, PAYLOAD, settings=settings(), idempotency_key="d")


def test_silent_server_times_out_as_retryable():
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        target = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        with pytest.raises(RetryableError, match="ReadTimeout"):
            channels.deliver(target, PAYLOAD, settings=settings(http_timeout=0.3),
                             idempotency_key="d")


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
    pinned_url, headers, extensions = pinned(target, ipaddress.ip_address(ip))
    assert str(pinned_url) == url
    assert headers.get("Host") == host_header
    assert extensions.get("sni_hostname") == sni


def test_pinned_route_reaches_a_real_server_under_its_name(webhook_sink):
    # The name never resolves (.invalid): the request can only arrive because
    # the route goes to the pinned address, with the name kept in Host.
    target = f"http://hooks.tulpar.invalid:{webhook_sink.port}/hook"
    url, headers, extensions = pinned(target, ipaddress.ip_address("127.0.0.1"))
    with httpx.Client(trust_env=False) as client:
        response = client.post(url, json={}, headers=headers, extensions=extensions)
    assert response.status_code == 200
    [request] = webhook_sink.requests
    assert request["headers"]["Host"] == f"hooks.tulpar.invalid:{webhook_sink.port}"


@pytest.fixture
def tls_server():
    """A real HTTPS server on 127.0.0.1 whose certificate names only hooks.tulpar.test."""
    ca = trustme.CA()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Scripted)
    server.script = (200, {})
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.tulpar.test").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, ca
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name, verifies", [
    ("hooks.tulpar.test", True),    # SNI carries the name, the certificate matches it
    ("other.tulpar.test", False),   # ... and a certificate for another name is refused
])
def test_pinned_https_verifies_the_certificate_against_the_name(tls_server, name, verifies):
    server, ca = tls_server
    url, headers, extensions = pinned(f"https://{name}:{server.server_port}/hook",
                                      ipaddress.ip_address("127.0.0.1"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with httpx.Client(verify=client_context, trust_env=False) as client:
        if verifies:
            assert client.post(url, json={}, headers=headers, extensions=extensions).status_code == 200
        else:
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                client.post(url, json={}, headers=headers, extensions=extensions)


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
