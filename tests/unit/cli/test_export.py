"""`tulpar export --tenant NAME`: the tenant's state in the config format,
no secrets, exit codes."""
from __future__ import annotations

import yaml

from services.accounts import channels, configcode, tenants
from services.cli import main
from services.settings import Settings
from services.store import Store

FILE = """
subscriptions:
  - name: cpc
    query: 'title:(cpc OR "caspian pipeline") AND (halt* OR damage)'
    channels: [mailto:energy@example.com, "https://hooks.example.com/t?token=abc"]
  - name: tenge
    fx: {pair: KZT/USD, change_pct: 1.0, window: 1d, direction: down, cooldown: 1d}
    channels: [mailto:fx@example.com]
"""


def test_export_writes_the_tenant_in_the_config_format(var_db, capsys):
    store = Store(var_db)
    from datetime import datetime, timezone

    done = configcode.apply(store, "acme", configcode.parse(FILE, "f.yaml", Settings()), Settings(),
                            datetime.now(timezone.utc))
    assert main(["export", "--tenant", "acme"]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out) == {"subscriptions": [
        {"name": "cpc", "query": 'title:(cpc OR "caspian pipeline") AND (halt* OR damage)',
         "channels": ["mailto:energy@example.com", "https://hooks.example.com/t?token=abc"]},
        {"name": "tenge", "fx": {"pair": "KZT/USD", "change_pct": 1.0, "window": "1d", "direction": "down",
                                 "cooldown": "1d"},
         "channels": ["mailto:fx@example.com"]}]}
    assert out.startswith("# tulpar export --tenant acme:")
    assert "    fx: {pair: KZT/USD, change_pct: 1.0, window: 1d, direction: down, cooldown: 1d}\n" in out
    # No secret: not the key, not the webhook's signing secret.
    [secret] = done.webhook_secrets.values()
    assert secret not in out and done.api_key not in out and "whsec_" not in out and "tlp_" not in out
    tenant = tenants.by_name(store, "acme")
    stored = [c.secret for c in channels.list_(store, tenant.id) if c.secret]
    assert stored and not any(secret in out for secret in stored)


def test_export_of_a_tenant_with_nothing_is_an_empty_list(var_db, capsys):
    from datetime import datetime, timezone

    tenants.create(Store(var_db), "empty", datetime.now(timezone.utc))
    assert main(["export", "--tenant", "empty"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == {"subscriptions": []}


def test_an_unknown_tenant_exits_2(var_db, capsys):
    assert main(["export", "--tenant", "nobody"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == "tulpar export: --tenant: no tenant 'nobody'\n"


def test_a_bad_tenant_name_exits_2(var_db, capsys):
    assert main(["export", "--tenant", "../x"]) == 2
    assert capsys.readouterr().err.startswith("tulpar export: --tenant: a tenant name is 1-100 characters")


def test_an_unmigrated_database_exits_2_naming_db_upgrade(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TULPAR_VAR_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    (tmp_path / "fresh").mkdir()
    assert main(["export", "--tenant", "acme"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tulpar export: the database at ") and "run `tulpar db upgrade`" in err
