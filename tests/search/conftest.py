"""A real PostgreSQL for the storage-write tests (tests/fixtures/postgres.py)."""

from fixtures.postgres import pg_url

__all__ = ["pg_url"]
