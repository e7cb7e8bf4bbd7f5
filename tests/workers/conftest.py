"""A real PostgreSQL for worker tests (tests/fixtures/postgres.py)."""

from fixtures.postgres import PG_URL, pg_url, study_name

__all__ = ["PG_URL", "pg_url", "study_name"]
