"""Shared fixtures: real servers on loopback, free ports, throwaway directories."""
from __future__ import annotations

import os
import shutil

import pytest
import redis

from services.local.http_servers import FileServer, WebhookSink
from services.local.mail_sink import MailSink
from services.local.redis_process import RedisProcess
from services.store import Store, schema


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a free port for the whole session (AOF on)."""
    with RedisProcess(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def mail_sink(tmp_path):
    with MailSink(tmp_path / "mail") as sink:
        yield sink


@pytest.fixture
def webhook_sink(tmp_path):
    with WebhookSink(tmp_path / "webhooks") as sink:
        yield sink


@pytest.fixture
def file_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with FileServer(root) as server:
        yield server


def _database_urls() -> list[str]:
    urls = ["sqlite"]
    if os.environ.get("DATABASE_URL"):
        urls.append("postgres")
    return urls


@pytest.fixture(params=_database_urls())
def db_url(request, tmp_path):
    """SQLite always; PostgreSQL too when DATABASE_URL is set (each test gets a
    fresh schema there)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tulpar.db'}"
        return
    import uuid

    import sqlalchemy as sa

    base = os.environ["DATABASE_URL"]
    if base.startswith("postgresql://"):
        base = "postgresql+psycopg://" + base[len("postgresql://"):]
    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory):
    """One SQLite file `tulpar db upgrade` made, for the session: copying it
    gives a test a migrated database in a millisecond, where running the
    migrations (Alembic's imports and scripts) costs tens."""
    path = tmp_path_factory.mktemp("migrated") / "template.db"
    schema.upgrade(f"sqlite:///{path}")
    return path


def migrate(url: str, template) -> None:
    """Bring the database at `url` to the head revision, as `tulpar db
    upgrade` would: a copy of the session's template for a new SQLite file,
    the migrations themselves elsewhere (PostgreSQL)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not os.path.exists(url[len(prefix):]):
        os.makedirs(os.path.dirname(url[len(prefix):]), exist_ok=True)
        shutil.copyfile(template, url[len(prefix):])
    else:
        schema.upgrade(url)


@pytest.fixture
def migrated(migrated_sqlite_template):
    """migrate(url): a database at `url` as `tulpar db upgrade` leaves it."""
    return lambda url: migrate(url, migrated_sqlite_template)


@pytest.fixture
def store(db_url, migrated):
    """A Store on a migrated database (the schema production runs on, with
    its alembic_version stamp), on each database `db_url` names."""
    migrated(db_url)
    s = Store(db_url)
    yield s
    s.dispose()


@pytest.fixture
def var_db(tmp_path, monkeypatch, migrated):
    """The environment of a process with no DATABASE_URL: TULPAR_VAR_DIR in
    tmp_path, whose default SQLite file is migrated. Returns its URL."""
    monkeypatch.setenv("TULPAR_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'var' / 'tulpar.db'}"
    migrated(url)
    return url


@pytest.fixture
def broker(redis_server):
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture
def worker_app(broker, monkeypatch):
    """The workers' real Celery app with its tasks; its configuration is read
    from the environment on first use (workers/app.py), so REDIS_URL first."""
    monkeypatch.setenv("REDIS_URL", broker)
    import workers.tasks  # noqa: F401  (registers the tasks)
    from workers.app import app

    return app
