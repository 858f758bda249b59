"""`tulpar db upgrade` and the refusal to start on an unmigrated database,
on real databases (SQLite; PostgreSQL too when DATABASE_URL is set): from
empty, from a database `Store.create_schema()` made before migrations (rows
kept), twice, two at once; the migrated schema is exactly the models'; poll,
status, the worker and beat refuse an unmigrated database, naming the
command; the commands that need no database do not care."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from services.cli import main
from services.store import Store, schema
from services.store.db import NewDelivery
from services.store.models import AttemptOutcome, Base

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
T0 = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
HEAD = "0002"
# Tables an older release's create_schema() made, before the news-for-FX and
# rates tables existed (commit 6c6de27 added article, rate_observation and
# fx_rule_state): deployed databases may look like this.
OLDER_TABLES = ("source_state", "seen_article", "delivery", "attempt")


def schema_diff(url: str) -> list:
    """What Alembic's autogenerate would still change to reach the models."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        store.dispose()


def row_counts(url: str) -> dict[str, int]:
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                    for t in sorted(names) if t != "alembic_version"}
    finally:
        store.dispose()


def made_before_migrations(url: str, tables=None) -> dict[str, int]:
    """A database as deployed releases left it (create_all, no stamp), with
    rows in every table it has; returns the row counts."""
    store = Store(url)
    if tables is None:
        store.create_schema()
    else:
        Base.metadata.create_all(store.engine, tables=[Base.metadata.tables[t] for t in tables])
    ids = store.commit_poll(source="wire", url="http://w/feed", etag='"e1"', last_modified=None,
                            seen_ids=["a1", "a2"], now=T0,
                            deliveries=[NewDelivery("k1", "wire", "a1", "cpc", "mailto:desk@example.com",
                                                    {"subject": "s"})])
    store.claim(ids[0], T0, lease=timedelta(seconds=30))
    store.record_attempt(ids[0], outcome=AttemptOutcome.SENT, now=T0)
    if tables is None:
        with store.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO rate_observation (source, pair, rate, observed_at, fetched_at) "
                                 "VALUES ('nbk', 'USD/KZT', '518.2', :t, :t)"), {"t": T0.replace(tzinfo=None)})
            conn.execute(sa.text("INSERT INTO fx_rule_state (subscription, armed) VALUES ('usd', :a)"),
                         {"a": True})
    store.dispose()
    counts = row_counts(url)
    assert counts["delivery"] == 1 and counts["attempt"] == 1 and counts["seen_article"] == 2
    return counts


def fill_0001(url: str) -> dict[str, int]:
    """Rows in the tables 0002 alters (delivery, article), written with the
    0001 columns only."""
    engine = sa.create_engine(url)
    t = T0.replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO delivery (idempotency_key, item_source, item_id, subscription, channel, payload, "
            "status, attempts, created_at, next_attempt_at) VALUES ('k', 'wire', 'a1', 'cpc', "
            "'mailto:d@example.com', '{}', 'pending', 0, :t, :t)"), {"t": t})
        conn.execute(sa.text("INSERT INTO article (source, article_id, title, link, countries, stored_at) "
                             "VALUES ('wire', 'a1', 'CPC halts loadings', 'http://w/a1', ',KZ,', :t)"), {"t": t})
    engine.dispose()
    return {"delivery": 1, "article": 1}


# --- upgrade ---------------------------------------------------------------

# (what is there before, what `upgrade` reports)
STARTS = [
    ("empty", f"created at {HEAD}"),
    ("create_schema", f"adopted the tables made before migrations, now at {HEAD}"),
    ("older create_schema", f"adopted the tables made before migrations, now at {HEAD}"),
    ("migrated", f"already at {HEAD}"),
    ("at 0001", f"migrated from 0001 to {HEAD}"),
]


@pytest.mark.parametrize("start, said", STARTS, ids=[s[0] for s in STARTS])
def test_upgrade_reaches_the_models_schema_and_keeps_every_row(db_url, start, said):
    rows: dict[str, int] = {}
    if start == "create_schema":
        rows = made_before_migrations(db_url)
    elif start == "older create_schema":
        rows = made_before_migrations(db_url, OLDER_TABLES)
    elif start == "migrated":
        schema.upgrade(db_url)
    elif start == "at 0001":  # the schema of the release before tenants, with its rows
        schema.upgrade(db_url, target="0001")
        rows = row_counts(db_url) | fill_0001(db_url)
    done = schema.upgrade(db_url)
    assert done.describe("DB") == f"DB: {said}"
    assert done.to == HEAD == schema.head_revision() == schema.current_revision(db_url)
    assert schema_diff(db_url) == []  # exactly the models' tables, indexes and constraints
    after = row_counts(db_url)
    assert set(after) == set(Base.metadata.tables)
    assert {t: n for t, n in after.items() if t in rows} == rows  # nothing lost
    assert schema.upgrade(db_url).describe("DB") == f"DB: already at {HEAD}"  # and again: nothing to do


def test_a_create_schema_database_matches_the_migrated_one(db_url):
    # The baseline is the schema deployed databases already have: adopting
    # one by stamping it (nothing to create) is only right if so.
    Store(db_url).create_schema()
    assert schema_diff(db_url) == []


def test_two_upgrades_at_once_both_succeed(db_url):
    # Two containers starting together, or `tulpar run` beside a release
    # step: separate processes, as deployed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TULPAR_")} | {"DATABASE_URL": db_url}
    runs = [subprocess.Popen([sys.executable, "-m", "services", "db", "upgrade"], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = sorted(p.communicate(timeout=120) for p in runs)
    assert [p.returncode for p in runs] == [0, 0], outputs
    # One created it; the other waited for it and found it done.
    shown = schema.shown(db_url)
    assert [out for out, _ in outputs] == [f"{shown}: already at {HEAD}\n", f"{shown}: created at {HEAD}\n"], outputs
    assert schema_diff(db_url) == []


# --- the refusal -----------------------------------------------------------

# (the database, the message after "the database at URL ")
UNMIGRATED = [
    ("empty", f"is not migrated (at none, need {HEAD}): run `tulpar db upgrade`"),
    ("create_schema", f"is not migrated (at none, need {HEAD}): run `tulpar db upgrade`"),
    ("stamped by a newer tulpar", f"is at 9999, newer than this tulpar knows (head {HEAD}): run a tulpar that has it"),
]


def unmigrated(url: str, kind: str) -> None:
    store = Store(url)
    if kind != "empty":
        store.create_schema()
    if kind == "stamped by a newer tulpar":
        with store.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(sa.text("INSERT INTO alembic_version VALUES ('9999')"))
    store.dispose()


@pytest.mark.parametrize("kind, message", UNMIGRATED, ids=[u[0] for u in UNMIGRATED])
def test_require_migrated_says_what_is_wrong_and_what_to_run(db_url, kind, message):
    unmigrated(db_url, kind)
    store = Store(db_url)
    with pytest.raises(schema.NotMigrated) as raised:
        schema.require_migrated(store, db_url)
    store.dispose()
    assert str(raised.value) == f"the database at {schema.shown(db_url)} {message}"
    assert isinstance(raised.value, schema.TulparError)


def test_the_message_masks_a_password_in_the_url():
    store = Store("sqlite://")  # in memory: empty
    with pytest.raises(schema.NotMigrated) as raised:
        schema.require_migrated(store, "postgresql://tulpar:s3cret@db.example:5432/tulpar")
    assert str(raised.value) == ("the database at postgresql://***@db.example:5432/tulpar is not migrated "
                                 f"(at none, need {HEAD}): run `tulpar db upgrade`")


# (command, its arguments)
REFUSING = [
    ("poll", ["poll", "--once", "--config", "{config}"]),
    ("status", ["status"]),
    ("status --json", ["status", "--json"]),
]


@pytest.mark.parametrize("name, argv", REFUSING, ids=[r[0] for r in REFUSING])
def test_poll_and_status_refuse_an_unmigrated_database(db_url, tmp_path, monkeypatch, capsys, name, argv):
    unmigrated(db_url, "create_schema")
    config = tmp_path / "tulpar.yaml"
    config.write_text("sources: []\nsubscriptions: []\n")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main([a.format(config=config) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"tulpar: the database at {schema.shown(db_url)} is not migrated (at none, need {HEAD}): "
                   f"run `tulpar db upgrade`\n")
    # Refused, not repaired: the database is as it was.
    assert schema.current_revision(db_url) is None


def test_status_says_so_when_there_is_no_database_to_open(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://tulpar:s3cret@127.0.0.1:1/tulpar")
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tulpar: cannot open the database at postgresql://***@127.0.0.1:1/tulpar: ")
    assert err.endswith("; check DATABASE_URL\n") and "s3cret" not in err


@pytest.fixture
def worker_env(db_url, tmp_path, monkeypatch):
    """The environment of a worker or beat on `db_url` (Redis never reached:
    the check comes before the broker)."""
    config = tmp_path / "tulpar.yaml"
    config.write_text("sources: []\nsubscriptions: []\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TULPAR_")}
    env.update(DATABASE_URL=db_url, REDIS_URL="redis://127.0.0.1:1/0", TULPAR_CONFIG=str(config),
               TULPAR_VAR_DIR=str(tmp_path / "var"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_the_worker_runtime_refuses_an_unmigrated_database(db_url, worker_env, monkeypatch):
    from workers import runtime as rt_mod

    unmigrated(db_url, "create_schema")
    monkeypatch.setattr(rt_mod, "_current", None)
    expected = (f"the database at {schema.shown(db_url)} is not migrated (at none, need {HEAD}): "
                f"run `tulpar db upgrade`")
    with pytest.raises(schema.NotMigrated) as raised:
        rt_mod.runtime()
    assert str(raised.value) == expected
    schema.upgrade(db_url)
    assert rt_mod.runtime().store is not None
    rt_mod.runtime().store.dispose()
    monkeypatch.setattr(rt_mod, "_current", None)


# (process, its command line after `python -m celery -A workers.app`)
CELERY = [
    ("worker", ["worker", "--pool", "solo", "--loglevel", "INFO"]),
    ("beat", ["beat", "--loglevel", "INFO", "--schedule", "{var}/beat-schedule"]),
]


@pytest.mark.parametrize("name, argv", CELERY, ids=[c[0] for c in CELERY])
def test_celery_worker_and_beat_refuse_to_start_on_an_unmigrated_database(db_url, worker_env, tmp_path,
                                                                          name, argv):
    unmigrated(db_url, "empty")
    (tmp_path / "var").mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "celery", "-A", "workers.app",
                           *[a.format(var=tmp_path / "var") for a in argv]],
                          env=worker_env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (f"tulpar: the database at {schema.shown(db_url)} is not migrated (at none, need {HEAD}): "
            f"run `tulpar db upgrade`") in done.stderr


# --- commands that need no database ------------------------------------------

# (command line; each must work with DATABASE_URL at an unmigrated or missing database)
NO_DATABASE = [
    ["rules", "--presets", str(DATA / "presets"), "check", "cpc AND halt*"],
    ["rules", "--presets", str(DATA / "presets"), "show", "topic:tariffs"],
    ["classify", "--rules", str(DATA / "classify" / "rules.yaml"), str(DATA / "classify" / "articles.jsonl"),
     "--presets", str(DATA / "presets")],
    ["fx", "evaluate", "--rules", str(DATA / "fx" / "rules.yaml"), str(DATA / "fx" / "quotes.csv")],
    ["fx", "fetch", "--source", "nbk", str(DATA / "rates" / "nbk" / "get_rates_2026-11-20.xml")],
    ["fetch", str(DATA / "feeds" / "cpc_and_weather.xml")],
]


@pytest.mark.parametrize("database", ["missing file", "unmigrated file"])
@pytest.mark.parametrize("argv", NO_DATABASE, ids=[" ".join(a[:2]) for a in NO_DATABASE])
def test_commands_without_a_database_work_whatever_database_url_says(tmp_path, monkeypatch, capsys,
                                                                     database, argv):
    path = tmp_path / "nowhere" / "tulpar.db"
    if database == "unmigrated file":
        unmigrated(f"sqlite:///{path}", "create_schema")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    assert main(argv) == 0, capsys.readouterr().err
    assert capsys.readouterr().out
    assert path.exists() is (database == "unmigrated file")  # not even created


# --- the command -------------------------------------------------------------

def tulpar(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TULPAR_")}
    env["DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "services", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_tulpar_db_upgrade_and_current(db_url):
    shown = schema.shown(db_url)
    # (command, exit code, stdout) in order, on one database
    steps = [
        (("db", "current"), 1, f"{shown}: at none, this tulpar needs {HEAD} (run `tulpar db upgrade`)\n"),
        (("db", "upgrade"), 0, f"{shown}: created at {HEAD}\n"),
        (("db", "upgrade"), 0, f"{shown}: already at {HEAD}\n"),
        (("db", "current"), 0, f"{shown}: at {HEAD}, this tulpar needs {HEAD} (up to date)\n"),
    ]
    for args, code, out in steps:
        done = tulpar(*args, url=db_url)
        assert (done.returncode, done.stdout, done.stderr) == (code, out, ""), args


# (DATABASE_URL, the start of the message on stderr)
UNUSABLE = [
    ("nosuch://db", "tulpar db upgrade: cannot use the database at nosuch://db: "),
    ("postgresql://tulpar:s3cret@127.0.0.1:1/tulpar",
     "tulpar db upgrade: cannot open the database at postgresql://***@127.0.0.1:1/tulpar: "),
]


@pytest.mark.parametrize("url, message", UNUSABLE, ids=["unknown scheme", "refused"])
def test_tulpar_db_upgrade_exits_2_when_the_url_is_unusable(url, message):
    done = tulpar("db", "upgrade", url=url)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(message) and done.stderr.endswith("; check DATABASE_URL\n")
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr


def test_a_migration_that_fails_says_so_and_exits_2(db_url, monkeypatch, capsys):
    # An object in the way of the baseline: an index with the name of one of
    # its own (index names are per database on SQLite, per schema on PostgreSQL).
    store = Store(db_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE other (stored_at INTEGER)"))
        conn.execute(sa.text("CREATE INDEX ix_article_stored_at ON other (stored_at)"))
    store.dispose()
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["db", "upgrade"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"tulpar db upgrade: migrating the database at {schema.shown(db_url)} "
                          f"from none to {HEAD} failed: ")
    assert "ix_article_stored_at" in err and "already exists" in err
    # All or nothing: not stamped, and none of the tables made before it
    # failed are left (a second try would have taken them for adopted ones).
    assert schema.current_revision(db_url) is None
    assert set(row_counts(db_url)) == {"other"}
