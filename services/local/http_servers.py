"""Loopback HTTP servers: a webhook sink that saves each POST, and a file server
for demo feeds and rate files (with ETag/Last-Modified, so conditional GET works)."""
from __future__ import annotations

import email.utils
import hashlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from services.local.ports import free_port


class _Server:
    handler_class: type[BaseHTTPRequestHandler]

    def __init__(self, port: int | None = None, host: str = "127.0.0.1"):
        self.host = host
        self.port = port or free_port(host)
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self):
        self._httpd = ThreadingHTTPServer((self.host, self.port), self.handler_class)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # handlers reach their server's state through this
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _WebhookHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test and demo output quiet
        pass

    def do_POST(self) -> None:
        sink: WebhookSink = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, delay = sink.next_answer()
        if delay:
            time.sleep(delay)
        record = {
            "received_at": time.time(),
            "path": self.path,
            "status": status,
            "headers": dict(self.headers.items()),
            "body": body.decode("utf-8", "replace"),
        }
        sink.record(record)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class WebhookSink(_Server):
    """Saves each POST as JSON under `directory` (only those it answered 2xx).

    `statuses` scripts the answers: [503, 503] answers 503 twice, then 200;
    `delays` likewise holds the first answers back for that many seconds.
    """

    handler_class = _WebhookHandler

    def __init__(self, directory: Path | None = None, port: int | None = None,
                 host: str = "127.0.0.1", statuses: list[int] | None = None,
                 delays: list[float] | None = None):
        super().__init__(port, host)
        self.directory = Path(directory) if directory else None
        self.statuses = list(statuses or [])
        self.delays = list(delays or [])
        self.started = 0  # requests whose body was read (answered or not yet)
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    def start(self):
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)
        return super().start()

    def next_answer(self) -> tuple[int, float]:
        with self._lock:
            self.started += 1
            status = self.statuses.pop(0) if self.statuses else 200
            delay = self.delays.pop(0) if self.delays else 0.0
            return status, delay

    def record(self, record: dict) -> None:
        with self._lock:
            self.requests.append(record)
            n = next(self._counter)
        if self.directory and 200 <= record["status"] < 300:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            path = self.directory / f"{stamp}-{n:05d}.json"
            try:
                payload = json.loads(record["body"])
            except ValueError:
                payload = record["body"]
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"headers": record["headers"], "payload": payload},
                                      ensure_ascii=False, indent=2))
            tmp.rename(path)

    def delivered(self) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if 200 <= r["status"] < 300]


class _FileHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server: FileServer = self.server.owner
        server.hits.append(self.path)
        path = (server.root / self.path.split("?", 1)[0].lstrip("/")).resolve()
        if server.root not in path.parents or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        last_modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", server.content_type(path))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        self.end_headers()
        self.wfile.write(body)


class FileServer(_Server):
    """Serves files under `root` read fresh on every request, so tests and the
    demo can change a feed on disk and the next poll sees it."""

    handler_class = _FileHandler

    def __init__(self, root: Path, port: int | None = None, host: str = "127.0.0.1"):
        super().__init__(port, host)
        self.root = Path(root).resolve()
        self.hits: list[str] = []

    @staticmethod
    def content_type(path: Path) -> str:
        return {
            ".xml": "application/xml", ".rss": "application/rss+xml",
            ".atom": "application/atom+xml", ".json": "application/json",
            ".csv": "text/csv",
        }.get(path.suffix, "application/octet-stream")
