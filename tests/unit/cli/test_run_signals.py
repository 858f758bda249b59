"""`tulpar run` under signals: SIGTERM stops the whole tree (worker, beat,
API, redis-server), a killed worker, beat or redis-server is restarted, and
SIGKILL of `tulpar run` leaves nothing.

Each test starts a real `tulpar run` with its own redis-server and mail sink,
and finds its process tree by a marker in the environment that the children
inherit. redis-server overwrites its environment with its process title, so
it is found by its working directory instead (its data dir, under var/).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CONCURRENCY = 2

CONFIG = """
allow_private_targets: true
sources:
  - name: wire
    url: ${TULPAR_DEMO_URL}/wire.xml
    interval: 1s
subscriptions:
  - name: signals
    query: 'signaltest*'
    channels:
      - ${TULPAR_DEMO_WEBHOOK}
"""

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://t/</link>
<description>d</description>{items}</channel></rss>"""
ITEM = "<item><title>{title}</title><guid>{guid}</guid><link>http://t/{guid}</link></item>"


@dataclass
class Proc:
    pid: int
    ppid: int
    pgid: int
    cmdline: str


def _proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().rstrip()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: fields start after it.
    state, ppid, pgid = stat[stat.rindex(")") + 2:].split()[:3]
    if state == "Z":  # exited; PID 1 here may be slow to reap orphans
        return None
    return Proc(pid, int(ppid), int(pgid), cmdline)


def _is_marked(pid: int, mark: bytes, var: Path) -> bool:
    try:
        if mark in Path(f"/proc/{pid}/environ").read_bytes():
            return True
        return Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(var)
    except OSError:  # gone meanwhile, or another user's
        return False


class Service:
    """A `tulpar run` subprocess and the processes that carry its marker."""

    def __init__(self, tmp_path: Path, publish_every: float = 1000.0, config: str = CONFIG):
        self.tmp_path, self.var = tmp_path, tmp_path / "var"
        self.mark = uuid.uuid4().hex
        (self.var / "demo-www").mkdir(parents=True, exist_ok=True)
        self.items: list[str] = []
        self.publish()  # an empty feed until a test publishes
        config_file = tmp_path / "signals.yaml"
        config_file.write_text(config)
        env = {k: v for k, v in os.environ.items()
               if k not in ("REDIS_URL", "DATABASE_URL", "TULPAR_SMTP_HOST", "TULPAR_SMTP_PORT")}
        env.update(TULPAR_VAR_DIR=str(self.var), TULPAR_TEST_MARK=self.mark)
        self.out, self.err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            # A long --publish-every: the demo publisher stays out of the way.
            # The API on a free port: 8000 may be another test's or the user's.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services", "run", "--config", str(config_file),
                 "--concurrency", str(CONCURRENCY), "--publish-every", str(publish_every),
                 "--api-port", "0"],
                env=env, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def publish(self, title: str | None = None) -> None:
        if title:
            self.items.append(ITEM.format(title=title, guid=uuid.uuid4().hex))
        feed = self.var / "demo-www" / "wire.xml"
        feed.with_suffix(".tmp").write_text(FEED.format(items="".join(self.items)))
        feed.with_suffix(".tmp").rename(feed)

    def marked(self) -> dict[int, Proc]:
        mark = f"TULPAR_TEST_MARK={self.mark}".encode()
        found = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _is_marked(int(entry.name), mark, self.var):
                proc = _proc(int(entry.name))
                if proc:
                    found[proc.pid] = proc
        return found

    def children(self, word: str) -> list[Proc]:
        """Direct children of `tulpar run` whose command line holds `word`."""
        return [p for p in self.marked().values()
                if p.ppid == self.proc.pid and word in p.cmdline.split()]

    def redis_servers(self) -> list[Proc]:
        return [p for p in self.marked().values() if "redis-server" in p.cmdline]

    def worker_with_pool(self, timeout: float = 30.0, not_pid: int | None = None) -> tuple[Proc, list[Proc]]:
        """The main worker process once all its pool processes are up."""
        def ready():
            if self.proc.poll() is not None:
                pytest.fail(f"tulpar run exited with {self.proc.returncode}:\n{self.stderr()}")
            tree = self.marked()
            for worker in self.children("worker"):
                pool = [p for p in tree.values() if p.ppid == worker.pid]
                if worker.pid != not_pid and len(pool) == CONCURRENCY:
                    return worker, pool
            return None
        return wait_for(ready, timeout, "the worker and its pool processes")

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tulpar run still running after {timeout} s:\n{self.stderr()}")

    def kill_everything(self) -> None:
        """SIGKILL every marked process (only ours: the marker is this run's)."""
        for _ in range(20):
            left = self.marked()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def wait_for(check, timeout: float, what):
    """check()'s first true result, polled until `timeout`; `what` (or what()) names it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"no {what() if callable(what) else what} after {timeout} s")


@pytest.fixture
def service(tmp_path):
    svc = Service(tmp_path)
    try:
        yield svc
    finally:
        svc.kill_everything()


def _delivered(service: Service, title: str, timeout: float = 20.0) -> None:
    wait_for(lambda: f"signals: {title}" in service.stdout(), timeout,
             lambda: f"webhook line for {title!r} in tulpar's output; stderr:\n{service.stderr()}")


def _gone(pids, service: Service) -> bool:
    return not (set(pids) & set(service.marked()))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_stops_worker_pool_beat_api_and_redis_and_exits_0(service, signum):
    service.worker_with_pool()
    assert service.children("beat") and service.children("api") and service.redis_servers()

    service.proc.send_signal(signum)
    assert service.wait_exit(timeout=15) == 0, service.stderr()
    assert service.stdout().rstrip().endswith("tulpar: stopped")
    # `tulpar run` waited for every one of them: nothing is left once it exits.
    assert service.marked() == {}


@pytest.mark.timeout(60)
def test_a_worker_that_does_not_stop_is_killed_after_the_grace_period(service):
    worker, _ = service.worker_with_pool()
    os.kill(worker.pid, signal.SIGSTOP)  # SIGTERM stays pending: it cannot stop

    started = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    assert service.wait_exit(timeout=20) == 0, service.stderr()
    assert 7 < time.monotonic() - started < 15  # GRACE_SECONDS is 8
    assert "tulpar: worker still running; killing it" in service.stderr()
    assert service.marked() == {}  # the stopped worker and its pool went with its group


@pytest.mark.timeout(75)
def test_killed_worker_is_restarted_and_its_pool_processes_are_gone(service):
    worker, pool = service.worker_with_pool()
    service.publish("Signaltest one")
    _delivered(service, "Signaltest one")

    os.kill(worker.pid, signal.SIGKILL)
    wait_for(lambda: "tulpar: worker exited with -9; restarting" in service.stderr(), 10, "restart line")
    service.worker_with_pool(not_pid=worker.pid)
    assert _gone([p.pid for p in pool], service)  # no orphaned pool process left to deliver
    assert service.proc.poll() is None
    # The new worker takes tasks: a new item is polled, matched and delivered.
    service.publish("Signaltest two")
    _delivered(service, "Signaltest two")

    service.proc.send_signal(signal.SIGTERM)
    assert service.wait_exit(timeout=15) == 0, service.stderr()
    assert service.marked() == {}


@pytest.mark.timeout(60)
def test_killed_redis_server_is_restarted_on_the_same_port(service):
    service.worker_with_pool()
    [redis] = service.redis_servers()
    os.kill(redis.pid, signal.SIGKILL)
    wait_for(lambda: "tulpar: redis-server exited with -9; restarting" in service.stderr(), 10, "restart line")
    # Until it has started, the new server's command line is still its argv
    # (`redis-server --bind ...`); it then retitles itself `redis-server HOST:PORT`.
    [again] = wait_for(lambda: [p for p in service.redis_servers()
                                if p.pid != redis.pid and not p.cmdline.split()[1].startswith("-")],
                       10, "new redis-server, started")
    assert again.cmdline.split()[1] == redis.cmdline.split()[1]  # "127.0.0.1:<port>": the URL still works
    # Worker and beat reconnect by themselves: an item is still delivered.
    service.publish("Signaltest after redis")
    _delivered(service, "Signaltest after redis", timeout=25)

    service.proc.send_signal(signal.SIGTERM)
    assert service.wait_exit(timeout=15) == 0, service.stderr()
    assert service.marked() == {}


@pytest.mark.timeout(60)
def test_a_child_that_keeps_dying_stops_everything_with_exit_1(service):
    service.worker_with_pool()
    killed: set[int] = set()
    for _ in range(5):
        beat = wait_for(lambda: [p for p in service.children("beat") if p.pid not in killed],
                        10, "a new beat")[0]
        os.kill(beat.pid, signal.SIGKILL)
        killed.add(beat.pid)

    assert service.wait_exit(timeout=15) == 1, service.stderr()
    err = service.stderr()
    assert err.count("tulpar: beat exited with -9; restarting") == 4
    assert "beat exited with -9, 5 times within 60 s; giving up" in err
    assert service.stdout().rstrip().endswith("tulpar: stopped")
    assert service.marked() == {}


@pytest.mark.timeout(60)
def test_sigkill_of_tulpar_run_takes_its_children_down(service):
    service.worker_with_pool()
    # A running service is what is killed here: the worker has said "ready."
    wait_for(lambda: "ready." in (service.var / "log" / "worker.log").read_text(errors="replace"), 30,
             "the worker to be ready")
    wait_for(lambda: service.children("api"), 10, "the API")
    direct = [p for p in service.marked().values() if p.ppid == service.proc.pid]
    # worker, beat, API, redis-server: each got PDEATHSIG=SIGTERM
    assert len(direct) == 4, direct
    assert [p for p in direct if "redis-server" in p.cmdline.split()[0]]
    assert all(service.children(word) for word in ("worker", "beat", "api"))

    service.proc.kill()
    service.proc.wait(timeout=5)
    # The direct children get SIGTERM from the kernel and stop as they would
    # for us (the worker stops its pool); the pool processes set PDEATHSIG
    # themselves (SIGKILL when the worker dies).
    # 30 s: beat saves its schedule on the way out, which takes seconds on
    # a loaded machine (seen: 15 s not enough with a load average of 10).
    wait_for(lambda: service.marked() == {}, 30,
             lambda: f"end of the orphans: {list(service.marked().values())} still there")
