"""The demo tenant `tulpar run` keeps: the config's subscriptions applied to
it, and one API key across runs, kept in a 0600 file (the database has only
its hash)."""
from __future__ import annotations

import socket
import stat
from datetime import datetime, timezone

from services.accounts import configcode, tenants
from services.local.demo import demo_tenant
from services.local.ports import preferred_port
from services.settings import Settings

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
SETTINGS = Settings(allow_private_targets=False)
FILE = """
subscriptions:
  - name: cpc
    query: 'cpc AND halt*'
    channels: [mailto:energy@example.com]
"""


def desired(text: str = FILE) -> configcode.Desired:
    return configcode.parse(text, "demo.yaml", SETTINGS)


def test_first_run_creates_the_tenant_and_keeps_its_key_private(store, tmp_path):
    key_file = tmp_path / "var" / "demo-api-key"
    demo = demo_tenant(store, "demo", desired(), key_file, SETTINGS, NOW)
    assert demo.key.startswith("tlp_") and demo.key == demo.applied.api_key
    assert key_file.read_text() == demo.key + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert tenants.by_key(store, demo.key).name == "demo"
    assert demo.applied.diff.counts().startswith("subscriptions 1 added")


def test_later_runs_print_the_same_key_and_change_nothing(store, tmp_path):
    key_file = tmp_path / "demo-api-key"
    first = demo_tenant(store, "demo", desired(), key_file, SETTINGS, NOW)
    key_file.chmod(0o644)
    again = demo_tenant(store, "demo", desired(), key_file, SETTINGS, NOW)
    assert again.key == first.key and again.applied.diff.empty
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert tenants.by_key(store, first.key).name == "demo"


def test_a_missing_or_stale_key_file_rotates_the_key(store, tmp_path):
    key_file = tmp_path / "demo-api-key"
    first = demo_tenant(store, "demo", desired(), key_file, SETTINGS, NOW)
    key_file.unlink()
    second = demo_tenant(store, "demo", desired(), key_file, SETTINGS, NOW)
    assert second.key != first.key and key_file.read_text().strip() == second.key
    assert tenants.by_key(store, first.key) is None  # the old key stops working
    assert tenants.by_key(store, second.key).name == "demo"

    # Another tenant's key, or garbage, in the file: rotated as well.
    other = tenants.create(store, "other", NOW).api_key
    for junk in (other, "tlp_not-a-key", "\xff"):
        key_file.write_text(junk)
        third = demo_tenant(store, "demo", desired(), key_file, SETTINGS, NOW)
        assert third.key not in (second.key, other)
        assert tenants.by_key(store, third.key).name == "demo"
        assert tenants.by_key(store, other).name == "other"
        second = third


def test_a_changed_file_is_applied_to_the_demo_tenant(store, tmp_path):
    key_file = tmp_path / "demo-api-key"
    demo_tenant(store, "demo", desired(), key_file, SETTINGS, NOW)
    changed = demo_tenant(store, "demo", desired(FILE.replace("halt*", "damage*")), key_file, SETTINGS, NOW)
    assert changed.applied.diff.lines() == ['~ subscription cpc: query "cpc AND halt*" -> "cpc AND damage*"']


def test_preferred_port_is_taken_when_free_else_another():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        other = preferred_port(taken)
        assert other != taken and other > 0
    assert preferred_port(taken) == taken  # free again
    assert preferred_port(0) > 0
