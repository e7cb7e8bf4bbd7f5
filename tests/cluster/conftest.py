"""A real PostgreSQL for the proxy tests: skipped only when no server answers and CI is unset."""

from __future__ import annotations

import os
import uuid

import pytest

PG_URL = os.environ.get("TUNELAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _server_answers(url: str) -> bool:
    try:
        import sqlalchemy as sa

        with sa.create_engine(url, connect_args={"connect_timeout": 3}).connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except Exception:
        return False


@pytest.fixture
def pg_url() -> str:
    if not _server_answers(PG_URL):
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL does not answer at {PG_URL} (CI must not skip this test)")
        pytest.skip(f"no PostgreSQL server at {PG_URL}")
    return PG_URL


@pytest.fixture
def study_name() -> str:
    name = f"tunelab_proxy_{uuid.uuid4().hex[:10]}"
    yield name
    try:
        import optuna

        optuna.delete_study(study_name=name, storage=PG_URL)
    except Exception:
        pass
