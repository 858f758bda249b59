"""tulpar domain code: importable and testable without Celery."""
