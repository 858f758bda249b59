"""Send a rendered message ({"subject", "text", "html", "inline_images"?}) over SMTP.

Target: `mailto:ADDRESS`, one plain address. The server is Settings.smtp_host/port,
with optional STARTTLS and login. Settings.http_timeout bounds the whole SMTP
conversation, not each socket operation.

Feed text reaches the Subject. Every header value is reduced to one line of
decoded text before it is set (`header_text`), and the finished bytes are
checked to carry exactly the headers we set before they leave (`wire_bytes`).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import smtplib
import socket
import ssl
import threading
from email import policy
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from urllib.parse import unquote

from services.delivery.channels.errors import DeliveryError, PermanentError, RetryableError
from services.settings import Settings

KIND = "email"

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"({_LOCAL})@({_LABEL}(?:\.{_LABEL})*)")
_CID = re.compile(r"[A-Za-z0-9._\-]+(?:@[A-Za-z0-9._\-]+)?")
_SUBTYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+\-]{0,62}")
_KEY_SAFE = re.compile(r"[A-Za-z0-9._\-]{1,64}")
# Every C0/C1 control (CR, LF, VT, FF, NEL, NUL ...) and the Unicode line and
# paragraph separators: some program down the line treats each as a line end.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[bq]\?", re.IGNORECASE)
_MAX_DECODING_ROUNDS = 8


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


def _one_line(text: str) -> str:
    # A bogus charset in an encoded word decodes to lone surrogates, which no
    # encoder accepts: show them as U+FFFD like a mail client would.
    text = _SURROGATES.sub("\ufffd", _BREAKS.sub(" ", text))
    return " ".join(text.split())


def _decoded(text: str) -> str:
    """What a mail client shows for `text`: RFC 2047 encoded words decoded."""
    return str(policy.default.header_factory("subject", text))


def header_text(value: object, field: str, target: str) -> str:
    """`value` as one line of plain text that is safe to set as a header.

    The email package decodes encoded words (`=?utf-8?q?...?=`) in a value we
    set, and Python 3.11.7 writes what they decode to, CR LF included, into the
    header block as is. So decode them here, until nothing changes (decoded
    text can itself be an encoded word), and turn line breaks and control
    characters into spaces: nothing is left for the email package to decode.
    """
    text = _one_line(str(value))
    for _ in range(_MAX_DECODING_ROUNDS):
        decoded = _one_line(_decoded(text))
        if decoded == text:
            return text
        text = decoded
    raise PermanentError(f"email {field} has encoded words nested more than "
                         f"{_MAX_DECODING_ROUNDS} deep", target=target)


def sender(mail_from: str, target: str) -> Address:
    """TULPAR_MAIL_FROM (`addr@domain` or `Name <addr@domain>`), checked.

    Configuration, not feed text, but it lands in the From header and the
    envelope: a line break or encoded word there is refused, not repaired.
    """
    def refused(problem: str) -> PermanentError:
        return PermanentError(f"TULPAR_MAIL_FROM {problem}", target=target)

    if _BREAKS.search(mail_from):
        raise refused("contains a line break or another control character")
    if _ENCODED_WORD.search(mail_from):
        raise refused("contains an RFC 2047 encoded word; write the name as plain text")
    pairs = getaddresses([mail_from])
    try:
        if len(pairs) != 1:
            raise ValueError(f"{len(pairs)} addresses")
        name, addr = pairs[0]
        return Address(display_name=name, addr_spec=address(f"mailto:{addr}"))
    except ValueError as exc:
        raise refused(f"must be one address, addr@domain or Name <addr@domain> ({exc})") from None


def _add_inline_images(html_part: EmailMessage, images: list[dict], target: str) -> None:
    for image in images:
        cid, content_type = str(image.get("cid", "")), str(image.get("content_type", ""))
        maintype, _, subtype = content_type.partition("/")
        if not _CID.fullmatch(cid) or maintype != "image" or not _SUBTYPE.fullmatch(subtype):
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
    if "subject" not in payload:
        raise PermanentError("cannot build email headers: the payload has no subject",
                             target=target)
    from_ = sender(settings.mail_from, target)
    msg = EmailMessage()
    msg["From"] = from_
    msg["To"] = header_text(to, "recipient", target)
    msg["Subject"] = header_text(payload["subject"], "subject", target)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(idempotency_key, from_.addr_spec)
    msg.set_content(payload.get("text", ""))
    msg.add_alternative(payload.get("html", ""), subtype="html")
    if payload.get("inline_images"):
        _add_inline_images(msg.get_payload()[1], payload["inline_images"], target)
    return msg


def wire_bytes(msg: EmailMessage, target: str) -> bytes:
    """`msg` as it goes on the wire, refused unless its header block holds
    exactly the headers set on `msg`, one per line.

    The last line of defence, independent of what a Python version's email
    package makes of a value: no header we did not set, and no blank line
    that starts the body early, ever leaves.
    """
    try:
        data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    except (MessageError, ValueError) as exc:  # newer Pythons refuse such a header themselves
        raise PermanentError(f"cannot write the email header block: {type(exc).__name__}",
                             target=target) from None
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    names = [line.split(b":", 1)[0].strip().lower() for line in lines
             if not line.startswith((b" ", b"\t"))]
    expected = [name.lower().encode("ascii") for name in msg.keys()]
    if names != expected or any(b"\r" in line or b"\n" in line for line in lines):
        raise PermanentError("refusing to send: the email header block does not match the "
                             "headers set (a header value broke out of its line)", target=target)
    return data


class _Watchdog:
    """One deadline for a whole SMTP conversation.

    smtplib's timeout applies to each socket operation, so a relay that sends
    a byte a second never trips it. At the deadline the watchdog shuts the
    connection down, which ends a read or write blocked on it at once; on exit
    it stops its timer and closes the connection, so nothing outlives a send.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._smtp: smtplib.SMTP | None = None
        self._handle: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def watch(self, smtp: smtplib.SMTP, sock: socket.socket) -> None:
        with self._lock:
            self._smtp = smtp
            # Our own duplicate: STARTTLS detaches the socket object smtplib
            # started with, but shutting down any descriptor ends the connection.
            self._handle = sock.dup()
            if self.fired:  # the connect itself used up the time
                _shut(self._handle)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._handle is not None:
                _shut(self._handle)

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self._timer.join()
        if self._smtp is not None:
            self._smtp.close()
        if self._handle is not None:
            self._handle.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the peer closed it already


class _WatchedSMTP(smtplib.SMTP):
    def __init__(self, watchdog: _Watchdog, *args, **kwargs):
        self._watchdog = watchdog
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        # smtplib's own hook for making the connection (SMTP_SSL overrides it too).
        sock = super()._get_socket(host, port, timeout)
        self._watchdog.watch(self, sock)
        return sock


def _converse(watchdog: _Watchdog, settings: Settings, from_addr: str, to: str,
              data: bytes) -> None:
    smtp = _WatchedSMTP(watchdog, settings.smtp_host, settings.smtp_port,
                        timeout=settings.http_timeout)
    if settings.smtp_starttls:
        smtp.starttls(context=ssl.create_default_context())
    if settings.smtp_user:
        smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
    smtp.sendmail(from_addr, [to], data)
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass  # the relay took the message: a failed goodbye must not send it twice


def send(target: str, payload: dict, *, settings: Settings, idempotency_key: str) -> None:
    try:
        to = address(target)
    except ValueError as exc:
        raise PermanentError(str(exc), target=target) from None
    msg = build_message(to, payload, settings=settings, idempotency_key=idempotency_key,
                        target=target)
    data = wire_bytes(msg, target)
    watchdog = _Watchdog(settings.http_timeout)
    try:
        with watchdog:
            _converse(watchdog, settings, msg["From"].addresses[0].addr_spec, to, data)
    except (smtplib.SMTPException, OSError) as exc:
        server = f"{settings.smtp_host}:{settings.smtp_port}"
        raise _failure(exc, server, watchdog, target) from None


def _timed_out(exc: BaseException, watchdog: _Watchdog) -> bool:
    # smtplib reports a read timeout as SMTPServerDisconnected raised while
    # handling the TimeoutError, hence the look at __context__.
    return watchdog.fired or isinstance(exc, TimeoutError) or isinstance(
        exc.__context__, TimeoutError)


def _failure(exc: Exception, server: str, watchdog: _Watchdog, target: str) -> DeliveryError:
    if _timed_out(exc, watchdog):
        # Whatever broke last (a cut-off read, half a reply), the cause is the clock.
        return RetryableError(f"SMTP {server} timed out after {watchdog.seconds:g} s "
                              "(the limit for the whole send)", target=target, slow=True)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return _from_code(code, f"SMTP {server} refused the recipient: {code} {_text(reply)}",
                          target)
    if isinstance(exc, smtplib.SMTPResponseException):
        # Sender refused, DATA rejected, auth failed ... all carry the server's code.
        return _from_code(exc.smtp_code, f"SMTP {server} answered {exc.smtp_code} "
                          f"{_text(exc.smtp_error)}", target)
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # e.g. STARTTLS asked, not offered
        return PermanentError(f"SMTP {server}: {exc}", target=target)
    # Refused, reset, TLS failure, a relay that hung up.
    return RetryableError(f"SMTP {server} unreachable: {type(exc).__name__}: {exc}",
                          target=target)


def _from_code(code: int, what: str, target: str) -> DeliveryError:
    # SMTP 4xx means "try again later", 5xx means "no".
    cls = RetryableError if 400 <= code < 500 else PermanentError
    return cls(what, target=target)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
