"""`tulpar poll --once` twice at the same time on one SQLite file, and one
source's unexpected error not stopping the others."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from services import config as config_mod
from services.news import pipeline
from services.cli.poll import poll_all
from services.polling import Subscriptions
from services.settings import Settings
from services.store import Store

ROOT = Path(__file__).resolve().parents[3]
PER_ROUND = {"race": 40, "wire": 10}  # matching items each source publishes per round
ROUNDS = 4

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://t/</link>
<description>d</description>{items}</channel></rss>"""
ITEM = """<item><title>CPC halts loadings, report {guid}</title><guid>{guid}</guid>
<link>http://t/{guid}</link><description>Storm damage at the terminal.</description></item>"""

CONFIG = """
allow_private_targets: true
sources:
  - name: race
    url: {race}/race.xml
    interval: 1h
  - name: wire
    url: {wire}/wire.xml
    interval: 1h
subscriptions:
  - name: cpc
    query: 'cpc AND halt*'
    channels: [mailto:desk@example.com, http://127.0.0.1:9/hook]
"""


def feed(source: str, rounds: int) -> str:
    """Every item so far: each round adds PER_ROUND[source] new ones."""
    return RSS.format(items="".join(ITEM.format(guid=f"{source}-{r}-{n}")
                                    for r in range(rounds) for n in range(PER_ROUND[source])))


class Rendezvous:
    """A loopback feed server that holds each GET until the other poller's
    GET has arrived too: both then read the same items as unseen and commit
    them at about the same moment -- the race, every round, not by luck."""

    def __init__(self):
        self.body = b""
        self.meet = threading.Barrier(2, timeout=20)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    outer.meet.wait()
                except threading.BrokenBarrierError:
                    pass  # the other poller never came: serve anyway, the test says so
                body = outer.body
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.meet.abort()
        self.httpd.shutdown()
        self.httpd.server_close()


SUMMARY = re.compile(r"^(\w+): \d+ items, (\d+) new, \d+ matches, (\d+) deliveries queued$", re.M)


def test_two_polls_at_once_both_exit_cleanly_and_write_each_delivery_once(tmp_path, file_server, migrated):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["TULPAR_VAR_DIR"] = str(tmp_path / "var")
    # As deployed: `tulpar db upgrade` first (a poll refuses an unmigrated
    # database; two upgrades at once are tests/unit/store/test_migrations.py's).
    migrated(f"sqlite:///{tmp_path / 'var' / 'tulpar.db'}")
    with Rendezvous() as race:
        cfg = tmp_path / "tulpar.yaml"
        cfg.write_text(CONFIG.format(race=race.url, wire=file_server.url))
        both_saw_new = 0
        for rounds in range(1, ROUNDS + 1):
            race.body = feed("race", rounds).encode()
            (file_server.root / "wire.xml").write_text(feed("wire", rounds))
            polls = [subprocess.Popen([sys.executable, "-m", "services", "poll", "--once", "--config", str(cfg)],
                                      env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for _ in range(2)]
            outputs = [p.communicate(timeout=120) for p in polls]
            results = [(p.returncode, out, err) for p, (out, err) in zip(polls, outputs)]
            assert not race.meet.broken, "the two polls did not fetch together"
            for code, out, err in results:
                assert code == 0 and "Traceback" not in err, f"round {rounds}:\n{out}\n{err}"
            reports = [{m[0]: (int(m[1]), int(m[2])) for m in SUMMARY.findall(out)} for _, out, _ in results]
            for source, n in PER_ROUND.items():
                # Both polled every source (none skipped after a lost race);
                # between them they created each new delivery exactly once.
                assert all(source in r for r in reports), (source, results)
                assert sum(r[source][1] for r in reports) == 2 * n, (source, reports)
            both_saw_new += all(r["race"][0] == PER_ROUND["race"] for r in reports)
        # The race really happened: both read the same items as new and both
        # committed them (the loser's rows gave way instead of crashing).
        assert both_saw_new >= 1

    store = Store(f"sqlite:///{tmp_path / 'var' / 'tulpar.db'}")
    deliveries = store.deliveries()
    pairs = [(d.item_id, d.channel) for d in deliveries]
    assert len(pairs) == len(set(pairs)) == 2 * ROUNDS * sum(PER_ROUND.values())
    assert store.unseen("race", [f"race-{r}-{n}" for r in range(ROUNDS) for n in range(PER_ROUND["race"])]) == set()
    assert all(s.consecutive_errors == 0 for s in store.source_states())
    store.dispose()


CONFIG_THREE = """
allow_private_targets: true
sources:
  - {{name: first, url: "{base}/one.xml"}}
  - {{name: buggy, url: "{base}/two.xml"}}
  - {{name: last, url: "{base}/three.xml"}}
subscriptions:
  - name: cpc
    query: 'cpc AND halt*'
    channels: [mailto:desk@example.com]
"""


def test_an_unexpected_error_in_one_source_is_reported_and_the_rest_are_polled(
        store, file_server, monkeypatch, capsys):
    for name in ("one", "two", "three"):
        (file_server.root / f"{name}.xml").write_text(RSS.format(items=ITEM.format(guid=f"{name}-1")))
    settings = Settings(allow_private_targets=True)
    cfg = config_mod.parse(CONFIG_THREE.format(base=file_server.url), "tulpar.yaml", settings)
    real_read = pipeline.PIPELINE.read

    def read(source, *args):
        if source.name == "buggy":  # a bug we did not foresee, quoting a secret URL
            raise RuntimeError("cannot handle https://hooks.example.com/T0001/AbCdEfGhIjKlMnOpQrSt")
        return real_read(source, *args)

    monkeypatch.setattr(pipeline, "PIPELINE", dataclasses.replace(pipeline.PIPELINE, read=read))
    failed = poll_all(cfg, Subscriptions.of(cfg.subscriptions), store, settings, queue=None)
    out, err = capsys.readouterr()
    assert failed == 1
    assert "first: 1 items, 1 new, 1 matches, 1 deliveries queued" in out
    assert "last: 1 items, 1 new, 1 matches, 1 deliveries queued" in out
    assert "buggy: FAILED unexpected error: RuntimeError: cannot handle https://hooks.example.com/T0001/***" in err
    assert "AbCdEfGhIjKlMnOpQrSt" not in err + out and "Traceback" not in err
    assert sorted(d.item_source for d in store.deliveries()) == ["first", "last"]
    buggy = store.source_state("buggy")
    assert buggy.consecutive_errors == 1 and buggy.last_error.startswith("unexpected error: RuntimeError")

