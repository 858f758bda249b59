"""An SMTP server on loopback that writes each received message as an .eml file."""
from __future__ import annotations

import itertools
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from services.local.ports import free_port


class _WriteEml:
    def __init__(self, directory: Path):
        self.directory = directory
        self._counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"{stamp}-{next(self._counter):05d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(path)  # readers never see half a message
        return "250 Message accepted for delivery"


class MailSink:
    def __init__(self, directory: Path, port: int | None = None, host: str = "127.0.0.1"):
        self.directory = Path(directory)
        self.host = host
        self.port = port or free_port(host)
        self._controller: Controller | None = None

    def start(self) -> "MailSink":
        self.directory.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(_WriteEml(self.directory), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted(self.directory.glob("*.eml"))
        ]

    def __enter__(self) -> "MailSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
