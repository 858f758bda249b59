"""Celery app and thin tasks over services/."""
