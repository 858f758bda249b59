"""Shared fixtures: real servers on loopback, free ports, throwaway directories."""
from __future__ import annotations

import os

import pytest
import redis

from services.local.http_servers import FileServer, WebhookSink
from services.local.mail_sink import MailSink
from services.local.redis_process import RedisProcess
from services.store import Store


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


@pytest.fixture
def store(db_url):
    """A Store with its schema, on each database `db_url` names."""
    s = Store(db_url)
    s.create_schema()
    yield s
    s.dispose()


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
