"""`tulpar run` and the database's subscriptions: the config's subscriptions
applied to the tenant `demo`, the API started beside worker and beat, its
address and the demo key printed, the same key on the next run, and alerts
still delivered (now through the demo tenant: the workers run with
TULPAR_CONFIG_SUBSCRIPTIONS=0)."""
from __future__ import annotations

import re
import signal
import stat
import time

import httpx
import pytest

from tests.unit.cli.test_run_signals import Service, wait_for

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
      - mailto:desk@example.com
"""


def _lines(service: Service) -> tuple[str, str]:
    out = wait_for(lambda: "demo API key: " in service.stdout() and service.stdout(), 45,
                   lambda: f"the demo key line; stdout:\n{service.stdout()}\nstderr:\n{service.stderr()}")
    api = re.search(r"^api: (http://127\.0\.0\.1:\d+)$", out, re.M)
    key = re.search(r"^demo API key: (tlp_\S+)$", out, re.M)
    assert api and key, out
    return api.group(1), key.group(1)


def _stop(service: Service) -> None:
    service.proc.send_signal(signal.SIGTERM)
    assert service.wait_exit(timeout=15) == 0, service.stderr()
    assert service.marked() == {}


@pytest.mark.timeout(150)
def test_run_serves_the_api_with_the_demo_tenant_and_keeps_its_key(tmp_path):
    service = Service(tmp_path, config=CONFIG)
    try:
        api, key = _lines(service)
        assert "tulpar: TULPAR_ADMIN_TOKEN is unset" in service.stdout()
        key_file = service.var / "demo-api-key"
        assert key_file.read_text().strip() == key
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert httpx.get(f"{api}/healthz", timeout=5).status_code == 200
        # The config's subscription is the demo tenant's, over the API.
        listed = httpx.get(f"{api}/v1/subscriptions", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert listed.status_code == 200, listed.text
        [sub] = listed.json()["items"]
        assert sub["name"] == "signals" and sub["query"] == "signaltest*" and len(sub["channels"]) == 2

        # Alerts still arrive, once each (the worker matches the database's
        # subscription only): a webhook and an email.
        service.worker_with_pool()
        service.publish("Signaltest delivered")
        wait_for(lambda: len(list(service.var.glob("webhooks/*.json"))) >= 1
                 and len(list(service.var.glob("mail/*.eml"))) >= 1, 40,
                 lambda: f"a webhook and an email; stdout:\n{service.stdout()}\nstderr:\n{service.stderr()}")
        wait_for(lambda: "signals: Signaltest delivered" in service.stdout(), 5, "the webhook's line")
        time.sleep(3)  # a second copy would come within this
        assert len(list(service.var.glob("webhooks/*.json"))) == 1
        assert len(list(service.var.glob("mail/*.eml"))) == 1
        _stop(service)
    finally:
        service.kill_everything()

    # The next run on the same var/: the same key and, with the webhook sink
    # back on its port, the same channels: nothing to change.
    port = (service.var / "demo-webhook-port").read_text()
    (tmp_path / "stdout.txt").unlink()
    again = Service(tmp_path, config=CONFIG)
    try:
        api2, key2 = _lines(again)
        assert key2 == key
        if (service.var / "demo-webhook-port").read_text() == port:  # else taken meanwhile: a new channel
            assert "1 subscriptions of tenant demo (no changes)" in again.stdout()
        assert httpx.get(f"{api2}/v1/subscriptions", headers={"Authorization": f"Bearer {key}"},
                         timeout=5).status_code == 200
        _stop(again)
    finally:
        again.kill_everything()


@pytest.mark.timeout(60)
def test_a_config_the_api_would_refuse_stops_run_before_anything_starts(tmp_path):
    too_complex = " OR ".join(f"w{i}" for i in range(120))
    service = Service(tmp_path, config=CONFIG.replace("'signaltest*'", f"'{too_complex}'"))
    try:
        assert service.wait_exit(timeout=30) == 2
        assert "signals.yaml:9: subscriptions[0].query: the query is too complex" in service.stderr()
        assert not (service.var / "tulpar.db").exists()
    finally:
        service.kill_everything()
