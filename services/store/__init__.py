"""Persistence: SQLAlchemy 2 models over SQLite (default) or PostgreSQL."""
from services.store.db import Store

__all__ = ["Store"]
