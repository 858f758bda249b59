"""Send a rendered message ({"subject", "text", "html", "inline_images"?}) over SMTP.

Target: `mailto:ADDRESS`, one plain address. The server is Settings.smtp_host/port,
with optional STARTTLS and login; the network timeout is Settings.http_timeout.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote

from services.channels.errors import PermanentError, RetryableError
from services.settings import Settings

KIND = "email"

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"({_LOCAL})@({_LABEL}(?:\.{_LABEL})*)")
_CID = re.compile(r"[A-Za-z0-9._\-]+(?:@[A-Za-z0-9._\-]+)?")
_KEY_SAFE = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def address(target: str) -> str:
    """The recipient of `mailto:ADDRESS`; ValueError with the reason when it is not one."""
    if not target.lower().startswith("mailto:"):
        raise ValueError(f"not a mailto: target: {target!r}")
    raw = unquote(target[len("mailto:"):])
    if "?" in raw or "," in raw:
        raise ValueError(f"mailto target must be one plain address, got {raw!r}")
    local, _, domain = raw.rpartition("@")
    try:
        # Internationalised domains (e.g. .қаз) go on the wire as punycode.
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"invalid domain in email address {raw!r}") from None
    candidate = f"{local}@{domain}"
    if len(candidate) > 254 or not _ADDRESS.fullmatch(candidate):
        raise ValueError(f"invalid email address {raw!r}: expected local-part@domain")
    return candidate


def validate(target: str, settings: Settings) -> None:
    address(target)


def message_id(idempotency_key: str, mail_from: str) -> str:
    """Same key, same Message-ID: a duplicate send is recognisable in the inbox."""
    key = idempotency_key if _KEY_SAFE.fullmatch(idempotency_key) else (
        hashlib.sha256(idempotency_key.encode()).hexdigest()[:32])
    domain = mail_from.rpartition("@")[2].strip("> ") or "tulpar.invalid"
    return f"<tulpar.{key}@{domain}>"


def _add_inline_images(html_part: EmailMessage, images: list[dict], target: str) -> None:
    for image in images:
        cid, content_type = str(image.get("cid", "")), str(image.get("content_type", ""))
        maintype, _, subtype = content_type.partition("/")
        if not _CID.fullmatch(cid) or maintype != "image" or not subtype:
            raise PermanentError(
                f"bad inline image (cid {cid!r}, type {content_type!r})", target=target)
        try:
            data = base64.b64decode(image.get("data_b64", ""), validate=True)
        except (binascii.Error, ValueError):
            raise PermanentError(f"inline image {cid!r} is not valid base64", target=target) from None
        # add_related turns the html part into multipart/related on first use.
        html_part.add_related(data, maintype, subtype, cid=f"<{cid}>", disposition="inline")


def build_message(to: str, payload: dict, *, settings: Settings, idempotency_key: str,
                  target: str) -> EmailMessage:
    msg = EmailMessage()
    try:
        msg["From"] = settings.mail_from
        msg["To"] = to
        msg["Subject"] = payload["subject"]
    except (KeyError, ValueError) as exc:  # missing key, or a newline in a header
        raise PermanentError(f"cannot build email headers: {exc}", target=target) from None
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(idempotency_key, settings.mail_from)
    msg.set_content(payload.get("text", ""))
    msg.add_alternative(payload.get("html", ""), subtype="html")
    if payload.get("inline_images"):
        _add_inline_images(msg.get_payload()[1], payload["inline_images"], target)
    return msg


def _from_code(code: int, what: str, target: str) -> Exception:
    # SMTP 4xx means "try again later", 5xx means "no".
    cls = RetryableError if 400 <= code < 500 else PermanentError
    return cls(what, target=target)


def send(target: str, payload: dict, *, settings: Settings, idempotency_key: str) -> None:
    try:
        to = address(target)
    except ValueError as exc:
        raise PermanentError(str(exc), target=target) from None
    msg = build_message(to, payload, settings=settings, idempotency_key=idempotency_key,
                        target=target)
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                          timeout=settings.http_timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(msg, from_addr=settings.mail_from, to_addrs=[to])
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise _from_code(code, f"SMTP {server} refused the recipient: {code} {_text(reply)}",
                         target) from None
    except smtplib.SMTPResponseException as exc:
        # Sender refused, DATA rejected, auth failed ... all carry the server's code.
        raise _from_code(exc.smtp_code, f"SMTP {server} answered {exc.smtp_code} "
                         f"{_text(exc.smtp_error)}", target) from None
    except smtplib.SMTPNotSupportedError as exc:  # e.g. STARTTLS asked, not offered
        raise PermanentError(f"SMTP {server}: {exc}", target=target) from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timeout, TLS
        raise RetryableError(f"SMTP {server} unreachable: {type(exc).__name__}: {exc}",
                             target=target) from None


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
