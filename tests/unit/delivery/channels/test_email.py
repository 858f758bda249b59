"""The email channel against real SMTP servers on loopback (aiosmtpd)."""
from __future__ import annotations

import base64
import os
import socket
import threading
import time
from datetime import datetime, timezone
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services import render
from services.delivery import channels
from services.news.article import Article
from services.delivery.channels import PermanentError, RetryableError
from services.local.ports import free_port
from services.settings import Settings

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)).decode()
ARTICLE = Article(source="kapital.kz", id="42", title="Курс тенге: «рекорд» <снова>",
                  summary="Нацбанк & KZT", link="https://kapital.kz/a/42",
                  published=datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc))
NOW = datetime(2026, 3, 1, 9, 5, tzinfo=timezone.utc)


def settings_for(host: str, port: int, **extra) -> Settings:
    options = {"mail_from": "tulpar@alerts.example", "http_timeout": 2.0} | extra
    return Settings(smtp_host=host, smtp_port=port, **options)


def payload(**extra) -> dict:
    evidence = [{"field": "title", "start": 5, "end": 10, "term": "тенге"}]
    return render.alert_email(ARTICLE, "Тенге", evidence, now=NOW) | extra


class Recording:
    """An aiosmtpd handler that keeps envelopes and answers RCPT/DATA as scripted."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str = "250 OK"):
        self.rcpt_reply, self.data_reply = rcpt_reply, data_reply
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply.startswith("250"):
            self.envelopes.append(envelope)
        return self.data_reply


@pytest.fixture
def smtp_server(request):
    """A real aiosmtpd server with a scripted handler: param is (Recording, controller kwargs)."""
    handler, options = request.param
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    yield controller
    controller.stop()


def test_sends_multipart_alternative_to_the_sink(mail_sink):
    settings = settings_for(mail_sink.host, mail_sink.port)
    channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                     idempotency_key="delivery-17")
    [msg] = mail_sink.messages()
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.get_payload()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert msg["Subject"] == "[Тенге] Курс тенге: «рекорд» <снова>"
    assert msg["To"] == "ops@example.com" and msg["From"] == "tulpar@alerts.example"
    assert "Курс тенге: «рекорд» <снова>" in text.get_content()
    assert "Курс <mark>тенге</mark>: «рекорд» &lt;снова&gt;" in html.get_content()
    assert msg["Message-ID"] == "<tulpar.delivery-17@alerts.example>"


@pytest.mark.parametrize("keys, same_id", [
    (["delivery-1", "delivery-1"], True),
    (["delivery-1", "delivery-2"], False),
    (["key with spaces/and:colons", "key with spaces/and:colons"], True),
])
def test_message_id_follows_the_idempotency_key(mail_sink, keys, same_id):
    settings = settings_for(mail_sink.host, mail_sink.port)
    for key in keys:
        channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                         idempotency_key=key)
    first, second = (m["Message-ID"] for m in mail_sink.messages())
    assert (first == second) is same_id
    assert " " not in first and first.startswith("<tulpar.")


def test_inline_images_become_related_parts(mail_sink):
    images = [{"cid": "chart.usdkzt@tulpar", "content_type": "image/png", "data_b64": PNG},
              {"cid": "logo", "content_type": "image/gif", "data_b64": "R0lGODlhAQABAAAAACw="}]
    settings = settings_for(mail_sink.host, mail_sink.port)
    channels.deliver("mailto:ops@example.com", payload(inline_images=images),
                     settings=settings, idempotency_key="d-3")
    [msg] = mail_sink.messages()
    text, related = msg.get_payload()
    assert related.get_content_type() == "multipart/related"
    html, *attached = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert [(p["Content-ID"], p.get_content_type(), p.get_content_disposition())
            for p in attached] == [("<chart.usdkzt@tulpar>", "image/png", "inline"),
                                   ("<logo>", "image/gif", "inline")]
    assert attached[0].get_content() == base64.b64decode(PNG)


@pytest.mark.parametrize("images, match", [
    ([{"cid": "x", "content_type": "image/png", "data_b64": "not base64!"}], "not valid base64"),
    ([{"cid": "x", "content_type": "text/html", "data_b64": PNG}], "bad inline image"),
    ([{"cid": "a b>", "content_type": "image/png", "data_b64": PNG}], "bad inline image"),
    ([{"cid": "x", "content_type": "image/png\r\nBcc: spy@x.test", "data_b64": PNG}],
     "bad inline image"),
])
def test_bad_inline_images_are_permanent(mail_sink, images, match):
    settings = settings_for(mail_sink.host, mail_sink.port)
    with pytest.raises(PermanentError, match=match):
        channels.deliver("mailto:ops@example.com", payload(inline_images=images),
                         settings=settings, idempotency_key="d")
    assert mail_sink.messages() == []


@pytest.mark.parametrize("smtp_server, error, match", [
    ((Recording(rcpt_reply="550 5.1.1 <ops@example.com>: no such user"), {}),
     PermanentError, "refused the recipient: 550"),
    ((Recording(rcpt_reply="450 4.2.0 mailbox busy"), {}),
     RetryableError, "refused the recipient: 450"),
    ((Recording(data_reply="554 5.7.1 message rejected as spam"), {}),
     PermanentError, "answered 554"),
    ((Recording(data_reply="451 4.3.0 try again later"), {}),
     RetryableError, "answered 451"),
], indirect=["smtp_server"])
def test_smtp_replies_map_to_retry_or_give_up(smtp_server, error, match):
    settings = settings_for(smtp_server.hostname, smtp_server.port)
    with pytest.raises(error, match=match) as caught:
        channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                         idempotency_key="d")
    assert "mailto:ops@example.com" in str(caught.value)


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret-pw"
    # handled=False: let aiosmtpd answer the 535 itself (the default expects us to).
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize("smtp_server, password, error", [
    ((Recording(), {"authenticator": _authenticator, "auth_require_tls": False}),
     "s3cret-pw", None),
    ((Recording(), {"authenticator": _authenticator, "auth_require_tls": False}),
     "wrong-pw", PermanentError),
], indirect=["smtp_server"])
def test_login_with_configured_credentials(smtp_server, password, error):
    settings = settings_for(smtp_server.hostname, smtp_server.port,
                            smtp_user="tulpar", smtp_password=password)
    if error is None:
        channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                         idempotency_key="d")
        assert [e.rcpt_tos for e in smtp_server.handler.envelopes] == [["ops@example.com"]]
    else:
        with pytest.raises(error, match="535") as caught:
            channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                             idempotency_key="d")
        assert password not in str(caught.value)


@pytest.mark.parametrize("smtp_server, match", [
    ((Recording(), {}), "STARTTLS"),  # asked for STARTTLS, the server does not offer it
], indirect=["smtp_server"])
def test_starttls_not_offered_is_permanent(smtp_server, match):
    settings = settings_for(smtp_server.hostname, smtp_server.port, smtp_starttls=True)
    with pytest.raises(PermanentError, match=match):
        channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                         idempotency_key="d")


def test_smtp_down_is_retryable():
    settings = settings_for("127.0.0.1", free_port())  # nothing listens there
    with pytest.raises(RetryableError, match="unreachable: ConnectionRefusedError"):
        channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                         idempotency_key="d")


def test_silent_server_times_out_as_retryable():
    # A socket that accepts connections but never sends the SMTP greeting.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = settings_for("127.0.0.1", silent.getsockname()[1], http_timeout=0.3)
        with pytest.raises(RetryableError, match="timed out after 0.3 s") as caught:
            channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                             idempotency_key="d")
    assert caught.value.slow is True


class TrickleRelay:
    """A loopback SMTP relay that answers at once, except at `slow_step`, where it
    dribbles its reply one byte per `gap` seconds: every read gets a byte well
    within smtplib's per-read timeout, so only an overall deadline ends the send.

    Step "tls" says yes to STARTTLS and then trickles a TLS record that never ends.
    """

    REPLIES = {"ehlo": b"250-relay.test\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n",
               "starttls": b"220 go ahead\r\n", "auth": b"235 welcome\r\n",
               "mail": b"250 sender ok\r\n", "rcpt": b"250 recipient ok\r\n",
               "data": b"354 go on\r\n", "rset": b"250 reset\r\n", "quit": b"221 bye\r\n"}

    def __init__(self, slow_step: str, gap: float = 0.2):
        self.slow_step, self.gap = slow_step, gap
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "TrickleRelay":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        assert not self._thread.is_alive()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.05)
                try:
                    self._converse(conn)
                except OSError:
                    pass  # the client gave up and hung up: that is the point

    def _converse(self, conn: socket.socket) -> None:
        self._reply(conn, "greeting", b"220 relay.test ESMTP at your service\r\n")
        while (line := self._read_line(conn)) is not None:
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].strip().lower().decode()
            verb = {"helo": "ehlo", "mail": "mail", "rcpt": "rcpt"}.get(verb, verb)
            self._reply(conn, verb, self.REPLIES.get(verb, b"250 ok\r\n"))
            if verb == "starttls" and self.slow_step == "tls":
                # A handshake record that claims 16 KiB, then its body byte by byte.
                self._reply(conn, "tls", b"\x16\x03\x03\x40\x00" + b"\x00" * 16384)
            elif verb == "data":
                self._read_until(conn, b"\r\n.\r\n")
                self._reply(conn, "queued", b"250 queued as 17\r\n")

    def _reply(self, conn: socket.socket, step: str, reply: bytes) -> None:
        if step != self.slow_step:
            conn.sendall(reply)
            return
        for byte in reply:
            if self._stop.wait(self.gap):
                return
            conn.sendall(bytes([byte]))

    def _read_line(self, conn: socket.socket) -> bytes | None:
        return self._read_until(conn, b"\r\n")

    def _read_until(self, conn: socket.socket, end: bytes) -> bytes | None:
        data = b""
        while not data.endswith(end):
            if self._stop.is_set():
                return None
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return None
            data += chunk
        return data


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("slow_step, extra", [
    ("greeting", {}),
    ("ehlo", {}),
    ("starttls", {"smtp_starttls": True}),
    ("tls", {"smtp_starttls": True}),
    ("auth", {"smtp_user": "tulpar", "smtp_password": "pw"}),
    ("mail", {}),
    ("rcpt", {}),
    ("data", {}),
])
def test_a_trickling_relay_hits_one_deadline_for_the_whole_send(slow_step, extra):
    fds, threads = open_fds(), threading.active_count()
    with TrickleRelay(slow_step) as relay:
        settings = settings_for("127.0.0.1", relay.port, http_timeout=1.0, **extra)
        started = time.monotonic()
        with pytest.raises(RetryableError, match="timed out after 1 s") as caught:
            channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                             idempotency_key="d")
        took = time.monotonic() - started
    assert caught.value.slow is True
    assert 0.9 < took < 1.5
    # The watchdog's timer thread and every socket of the send are gone.
    assert (open_fds(), threading.active_count()) == (fds, threads)


@pytest.mark.parametrize("slow_step, took_at_least", [
    ("nothing", 0.0),
    # The message is in and "250" has arrived when the deadline cuts the rest of
    # the line: the relay accepted it, so failing (and resending) would be wrong.
    ("queued", 0.9),
])
def test_a_relay_that_said_250_has_the_message(slow_step, took_at_least):
    with TrickleRelay(slow_step) as relay:
        settings = settings_for("127.0.0.1", relay.port, http_timeout=1.0)
        started = time.monotonic()
        channels.deliver("mailto:ops@example.com", payload(), settings=settings,
                         idempotency_key="d")
        assert took_at_least <= time.monotonic() - started < 1.5
        time.sleep(1.1)  # past the deadline: a watchdog left running would show now
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]


@pytest.mark.parametrize("target, problem", [
    ("mailto:", "invalid email address"),
    ("mailto:not-an-address", "invalid email address"),
    ("mailto:a b@example.com", "invalid email address"),
    ("mailto:a@b@example.com", "invalid email address"),
    ("mailto:ops@example.com?subject=hi", "one plain address"),
    ("mailto:a@example.com,b@example.com", "one plain address"),
    ("mailto:ops@exa_mple.com", "invalid email address"),
    ("mailto:ops@example.com%0d%0aBcc:x@evil.example", "invalid email address"),
])
def test_bad_addresses_are_refused(mail_sink, target, problem):
    settings = settings_for(mail_sink.host, mail_sink.port)
    with pytest.raises(ValueError, match=problem):
        channels.validate_target(target, settings)
    with pytest.raises(PermanentError, match=problem):
        channels.deliver(target, payload(), settings=settings, idempotency_key="d")
    assert mail_sink.messages() == []


@pytest.mark.parametrize("target, envelope_to", [
    ("mailto:ops@example.com", "ops@example.com"),
    ("MAILTO:First.Last+kz@Example.COM", "First.Last+kz@Example.COM"),
    ("mailto:ops%40example.com", "ops@example.com"),
    ("mailto:info@пример.қаз", "info@xn--e1afmkfd.xn--80ao21a"),
])
def test_good_addresses_are_delivered(smtp_server_ok, target, envelope_to):
    settings = settings_for(smtp_server_ok.hostname, smtp_server_ok.port)
    channels.validate_target(target, settings)
    assert channels.kind(target) == "email"
    channels.deliver(target, payload(), settings=settings, idempotency_key="d")
    [envelope] = smtp_server_ok.handler.envelopes
    assert envelope.rcpt_tos == [envelope_to]
    assert message_from_bytes(envelope.content, policy=policy.default)["To"] == envelope_to


@pytest.fixture
def smtp_server_ok():
    controller = Controller(Recording(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()
