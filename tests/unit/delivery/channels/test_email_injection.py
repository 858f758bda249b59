"""Header injection: feed text must never become a header line or a MIME boundary.

Each case goes through the real path (render.alert_email, then channels.deliver to
an aiosmtpd sink on loopback) and the bytes the sink received are read back the
way a mail client would read them.
"""
from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from services import render
from services.delivery import channels
from services.news.article import Article
from services.delivery.channels import PermanentError
from services.delivery.channels.email import wire_bytes
from services.settings import Settings

NOW = datetime(2026, 3, 1, 9, 5, tzinfo=timezone.utc)
TOP_HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"]
PART_HEADERS = {"Content-Type", "Content-Transfer-Encoding", "MIME-Version"}
# A header line the attacker wanted: at the start of a line in the header block.
INJECTED = re.compile(rb"(?im)^(reply-to|bcc|cc|x-planted|content-type:\s*multipart/mixed)\b")


def b_word(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode()}?="


LONG_KZ = "Ұлттық Банк теңге бағамын бекітті " * 12
HOSTILE = [
    # (title, what the subject must read after "[KZ] ")
    ("=?utf-8?q?=0D=0AReply-To:evil@x.test=0D=0ABcc:spy@x.test?=",
     "Reply-To:evil@x.test Bcc:spy@x.test"),
    ("Rates " + b_word("\r\nBcc: spy@x.test\r\n\r\nplanted body"),
     "Rates Bcc: spy@x.test planted body"),
    ("=?koi8-r?q?=0D=0AReply-To:_evil@x.test?=", "Reply-To: evil@x.test"),
    (b_word("\r\nBcc: шпион@x.test", "windows-1251"),
     "Bcc: шпион@x.test"),
    # The decoded text is itself an encoded word: one decoding pass is not enough.
    (b_word("=?utf-8?q?=0D=0ABcc:spy@x.test?="), "Bcc:spy@x.test"),
    ("Tenge=?utf-8?q?=0D=0AX-Planted:1?=", "Tenge X-Planted:1"),
    ("Oil\rBcc: spy@x.test", "Oil Bcc: spy@x.test"),
    ("Oil\nReply-To: evil@x.test", "Oil Reply-To: evil@x.test"),
    ("a\u2028Bcc: s@x.test\u2029b\x85c\x0bd\x0ce\x00f", "a Bcc: s@x.test b c d e f"),
    ("=?utf-8?q?=E2=80=A8Bcc:spy@x.test=C2=85Cc:spy@x.test?=", "Bcc:spy@x.test Cc:spy@x.test"),
    ("Tenge\r\n\tBcc: spy@x.test", "Tenge Bcc: spy@x.test"),
    ("=?utf-8?Q?=0D=0AContent-Type:_multipart/mixed;_boundary=3Dplanted?=",
     "Content-Type: multipart/mixed; boundary=planted"),
    ("=?x-no-such-charset?q?=0D=0ABcc:spy@x.test?=", "Bcc:spy@x.test"),
    (LONG_KZ + "=?utf-8?q?=0D=0ABcc:spy@x.test?=", LONG_KZ + "Bcc:spy@x.test"),
    ("Oʻzbekiston soʻmi " + b_word("\r\nReply-To: evil@x.test"),
     "Oʻzbekiston soʻmi Reply-To: evil@x.test"),
    ("x" * 3000 + "=?utf-8?q?=0D=0ABcc:spy@x.test?=", "x" * 3000 + " Bcc:spy@x.test"),
]


def settings_for(sink, **extra) -> Settings:
    return Settings(smtp_host=sink.host, smtp_port=sink.port, http_timeout=5.0,
                    mail_from="tulpar@alerts.example", **extra)


def received_raw(sink) -> bytes:
    [path] = sorted(sink.directory.glob("*.eml"))
    return path.read_bytes()


@pytest.mark.parametrize("title, subject", HOSTILE)
def test_hostile_titles_stay_inside_the_subject(mail_sink, title, subject):
    article = Article(source="kapital.kz", id="9", title=title, summary="Нацбанк",
                      link="https://kapital.kz/a/9", published=NOW)
    payload = render.alert_email(article, "KZ", [], now=NOW)
    channels.deliver("mailto:ops@example.com", payload, settings=settings_for(mail_sink),
                     idempotency_key="d-1")

    raw = received_raw(mail_sink)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not INJECTED.search(head)
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg.keys() == TOP_HEADERS
    assert msg["Subject"] == f"[KZ] {subject}"
    assert (msg["From"], msg["To"]) == ("tulpar@alerts.example", "ops@example.com")
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.get_payload()
    for part, ours in ((text, payload["text"]), (html, payload["html"])):
        assert set(part.keys()) <= PART_HEADERS
        assert part.get_content().splitlines() == ours.splitlines()


@pytest.mark.parametrize("mail_from, problem", [
    ("tulpar@alerts.example\r\nBcc: spy@x.test", "line break"),
    ("tulpar@alerts.example\nBcc: spy@x.test", "line break"),
    ("=?utf-8?q?=0D=0ABcc:spy@x.test?= <tulpar@alerts.example>", "encoded word"),
    ("tulpar@alerts.example, spy@x.test", "one address"),
    ("Tulpar alerts", "one address"),
])
def test_a_bad_sender_setting_is_refused_before_sending(mail_sink, mail_from, problem):
    settings = Settings(smtp_host=mail_sink.host, smtp_port=mail_sink.port, mail_from=mail_from)
    payload = {"subject": "s", "text": "t", "html": "<p>h</p>"}
    with pytest.raises(PermanentError, match=f"TULPAR_MAIL_FROM.*{problem}"):
        channels.deliver("mailto:ops@example.com", payload, settings=settings,
                         idempotency_key="d")
    assert list(mail_sink.directory.glob("*.eml")) == []


def test_a_sender_with_a_display_name_is_sent(mail_sink):
    settings = settings_for(mail_sink).model_copy(
        update={"mail_from": "Тулпар хабарлама <tulpar@alerts.example>"})
    channels.deliver("mailto:ops@example.com", {"subject": "s", "text": "t", "html": "h"},
                     settings=settings, idempotency_key="d")
    msg = message_from_bytes(received_raw(mail_sink), policy=policy.default)
    assert msg["From"].addresses[0].display_name == "Тулпар хабарлама"
    assert msg["From"].addresses[0].addr_spec == "tulpar@alerts.example"
    assert msg.keys() == TOP_HEADERS


@pytest.mark.parametrize("subject", [
    "=?utf-8?q?=0D=0ABcc:spy@x.test?=",
    "ok =?utf-8?b?DQpSZXBseS1UbzogZXZpbEB4LnRlc3QNCg0K?=",
])
def test_the_last_check_refuses_a_message_whose_headers_grew(subject):
    # Built the way the old code did (encoded word left as it came): whatever
    # the Python version does with it, the bytes must not go out.
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@x.test", "b@x.test", subject
    msg.set_content("body")
    with pytest.raises(PermanentError, match="header"):
        wire_bytes(msg, target="mailto:b@x.test")
