"""`tulpar apply -f FILE [--tenant NAME] [--dry-run]`: what it prints, its
exit codes, and that it refuses an unmigrated database (real SQLite files)."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.accounts import channels, subscriptions, tenants
from services.cli import main
from services.store import Store

ROOT = Path(__file__).resolve().parents[3]
HOOK = "https://hooks.example.com/desk"

FILE = f"""
sources:
  - name: wire
    url: ${{SOME_UNSET_SOURCE_URL_TULPAR}}/rss
subscriptions:
  - name: cpc
    query: 'cpc AND halt*'
    channels: [mailto:energy@example.com, {HOOK}]
  - name: tenge
    fx: {{pair: KZT/USD, above: 0.0025}}
    channels: [mailto:fx@example.com]
"""


@pytest.fixture
def cli(var_db, capsys):
    def run(*args, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            old = sys.stdin
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()))
        try:
            code = main(list(args))
        finally:
            if stdin is not None:
                sys.stdin = old
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


@pytest.fixture
def subs_file(tmp_path):
    path = tmp_path / "subs.yaml"
    path.write_text(FILE)
    return path


def store_of(var_db) -> Store:
    return Store(var_db)


def test_apply_prints_the_difference_then_the_key_and_secret_once(cli, subs_file, var_db):
    code, out, err = cli("apply", "-f", str(subs_file), "--tenant", "acme")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{subs_file} -> tenant acme"
    assert lines[1] == "sources: 1 ignored (operator configuration: TULPAR_CONFIG, not a tenant's)"
    assert lines[2:9] == [
        "+ tenant acme: its API key is shown once, after applying",
        "+ channel mailto:energy@example.com: email, confirmed (added by the operator)",
        f"+ channel {HOOK}: webhook (its signing secret is shown once, after applying)",
        "+ channel mailto:fx@example.com: email, confirmed (added by the operator)",
        f'+ subscription cpc: query "cpc AND halt*" -> mailto:energy@example.com, {HOOK}',
        '+ subscription tenge: fx {"pair": "KZT/USD", "above": 0.0025} -> mailto:fx@example.com',
        lines[8],
    ]
    key = lines[8].removeprefix("tenant acme created; its API key (shown once, stored hashed): ")
    assert key.startswith("tlp_")
    secret = lines[9].removeprefix(f"webhook {HOOK}: signing secret (shown once): ")
    assert secret.startswith("whsec_")
    assert lines[10:] == ["applied: subscriptions 2 added, 0 changed, 0 removed; channels 3 added, 0 removed"]
    store = store_of(var_db)
    tenant = tenants.by_key(store, key)
    assert tenant.name == "acme"
    assert [c.secret for c in channels.list_(store, tenant.id) if c.target == HOOK] == [secret]

    # Again: nothing to do, and no secret shown a second time.
    code, out, err = cli("apply", "-f", str(subs_file), "--tenant", "acme")
    assert code == 0 and out.splitlines()[2:] == ["no changes"]
    assert "tlp_" not in out and "whsec_" not in out


def test_default_tenant_is_default(cli, subs_file, var_db):
    assert cli("apply", "-f", str(subs_file))[0] == 0
    assert tenants.by_name(store_of(var_db), "default") is not None


def test_dry_run_prints_the_difference_and_writes_nothing(cli, subs_file, var_db):
    code, out, err = cli("apply", "-f", str(subs_file), "--tenant", "acme", "--dry-run")
    assert code == 0, err
    assert out.splitlines()[0] == f"{subs_file} -> tenant acme (dry run: nothing is written)"
    assert "+ subscription cpc" in out
    assert out.splitlines()[-1] == ("would change: subscriptions 2 added, 0 changed, 0 removed; "
                                    "channels 3 added, 0 removed")
    assert "tlp_" not in out and "whsec_" not in out
    assert tenants.by_name(store_of(var_db), "acme") is None

    cli("apply", "-f", str(subs_file), "--tenant", "acme")
    subs_file.write_text(FILE.replace("cpc AND halt*", "cpc AND damage*"))
    code, out, _ = cli("apply", "-f", str(subs_file), "--tenant", "acme", "--dry-run")
    assert '~ subscription cpc: query "cpc AND halt*" -> "cpc AND damage*"' in out
    store = store_of(var_db)
    tenant = tenants.by_name(store, "acme")
    assert {v.row.name: v.row.query for v in subscriptions.page(store, tenant.id)[0]}["cpc"] == "cpc AND halt*"


def test_apply_reads_standard_input(cli, var_db):
    code, out, err = cli("apply", "-f", "-", "--tenant", "acme", stdin=FILE)
    assert code == 0, err
    assert out.startswith("<stdin> -> tenant acme\n")


# (file text, the error line on stderr)
BAD = [
    ("subscriptions:\n  - name: a\n    query: '(tariff OR'\n    channels: [mailto:a@example.com]\n",
     "tulpar apply: {file}:3: subscriptions[0].query: OR without a term after it"),
    ("subscriptions:\n  - name: a\n    query: tariff\n    channels: [mailto:a@example.com, 'ftp://x']\n",
     "tulpar apply: {file}:4: subscriptions[0].channels[1]: unsupported target 'ftp://x'"),
    ("sources: []\n", "tulpar apply: {file}:1: no subscriptions: section"),
    ("subscriptions: {a: 1}\n", "tulpar apply: {file}:1: subscriptions: must be a list"),
]


@pytest.mark.parametrize("text,message", BAD, ids=range(len(BAD)))
def test_a_bad_file_exits_2_naming_file_line_and_field(cli, tmp_path, var_db, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = cli("apply", "-f", str(path), "--tenant", "acme")
    assert code == 2 and out == ""
    assert err.startswith(message.format(file=path)), err
    assert tenants.by_name(store_of(var_db), "acme") is None


def test_a_missing_file_exits_2(cli, tmp_path):
    code, _, err = cli("apply", "-f", str(tmp_path / "nope.yaml"))
    assert code == 2 and err.startswith(f"tulpar apply: {tmp_path / 'nope.yaml'}: cannot read")


def test_a_bad_tenant_name_exits_2(cli, subs_file):
    code, out, err = cli("apply", "-f", str(subs_file), "--tenant", "Not A Name")
    assert code == 2 and out == ""
    assert err.startswith("tulpar apply: --tenant: a tenant name is 1-100 characters")


def test_an_unmigrated_database_exits_2_naming_db_upgrade(tmp_path, monkeypatch, capsys, subs_file):
    monkeypatch.setenv("TULPAR_VAR_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    (tmp_path / "fresh").mkdir()
    for args in (["apply", "-f", str(subs_file)], ["apply", "-f", str(subs_file), "--dry-run"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("tulpar apply: the database at ") and "run `tulpar db upgrade`" in err


def test_export_piped_into_apply_is_a_no_op(var_db, tmp_path, subs_file):
    """The real commands, as a shell runs them: apply -f <(export)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["TULPAR_VAR_DIR"] = str(tmp_path / "var")

    def sh(command: str) -> subprocess.CompletedProcess:
        return subprocess.run([shutil.which("bash"), "-c", command], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)

    tulpar = f"{sys.executable} -m services"
    first = sh(f"{tulpar} apply -f {subs_file} --tenant acme")
    assert first.returncode == 0, first.stderr
    again = sh(f"{tulpar} apply -f <({tulpar} export --tenant acme) --tenant acme")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:] == ["no changes"]
