"""`tulpar poll --once` and `tulpar run`: exit codes and what they leave behind."""
import json
import os
import subprocess
import sys
from pathlib import Path

from services.store import Store

ROOT = Path(__file__).resolve().parents[3]

# One story a CPC rule wants, one it does not.
FEED = (Path(__file__).resolve().parents[2] / "data" / "feeds" / "cpc_and_weather.xml").read_text()

CONFIG = """
allow_private_targets: true
sources:
  - name: broken
    url: {base}/missing.xml
  - name: wire
    url: {base}/wire.xml
subscriptions:
  - name: cpc
    query: 'cpc AND halt*'
    channels: [mailto:desk@example.com, http://127.0.0.1:9/hook]
"""


def run(args, tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    full.update(TULPAR_VAR_DIR=str(tmp_path / "var"), **env)
    return subprocess.run([sys.executable, "-m", "services", *args], env=full, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_poll_once_keeps_polling_after_a_broken_source_and_fills_the_outbox(tmp_path, file_server, migrated):
    migrated(f"sqlite:///{tmp_path / 'var' / 'tulpar.db'}")  # `tulpar db upgrade`, as deployed
    (file_server.root / "wire.xml").write_text(FEED)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.format(base=file_server.url))
    result = run(["poll", "--once", "--config", str(cfg)], tmp_path)
    assert result.returncode == 1, result.stderr  # one source failed
    assert "broken: FAILED" in result.stderr and "404" in result.stderr
    assert "wire: 2 items, 2 new, 1 matches, 2 deliveries queued" in result.stdout
    assert "REDIS_URL is not set" in result.stderr
    store = Store(f"sqlite:///{tmp_path / 'var' / 'tulpar.db'}")
    assert sorted(d.channel for d in store.deliveries("pending")) == [
        "http://127.0.0.1:9/hook", "mailto:desk@example.com"]
    assert store.source_state("broken").consecutive_errors == 1
    again = run(["poll", "--once", "--config", str(cfg)], tmp_path)
    assert "wire: 0 items" in again.stdout  # 304: nothing changed
    assert len(store.deliveries()) == 2

    status = run(["status", "--json"], tmp_path)
    assert status.returncode == 1  # a source is failing
    report = json.loads(status.stdout)
    by_name = {s["name"]: s for s in report["sources"]}
    assert by_name["broken"]["consecutive_errors"] == 2 and "404" in by_name["broken"]["last_error"]
    assert by_name["wire"]["consecutive_errors"] == 0 and by_name["wire"]["last_ok_at"]
    assert report["deliveries"] == {"pending": 2} and report["healthy"] is False
    text = run(["status"], tmp_path).stdout
    assert "FAILING x2" in text and "pending 2" in text


def test_bad_config_exits_2_and_starts_nothing(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sources:\n  - name: x\n    url: gopher://x\n")
    for args in (["run", "--config", str(cfg)], ["poll", "--once", "--config", str(cfg)]):
        result = run(args, tmp_path)
        assert result.returncode == 2
        assert f"{cfg}:3: sources[0].url" in result.stderr
    assert not (tmp_path / "var").exists()  # no database, no redis, no sinks
