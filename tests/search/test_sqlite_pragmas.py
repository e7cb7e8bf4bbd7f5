"""The run folder's SQLite study runs in write-ahead-log mode with synchronous=NORMAL from its first
connection on, Optuna's table creation included (search/storage.py)."""

from __future__ import annotations

import sqlite3

import optuna

from tunelab.search import storage as storage_module


def test_every_connection_has_the_pragmas_from_before_the_tables_exist(tmp_path, monkeypatch) -> None:
    seen: list[bool] = []  # per new connection: did Optuna's tables exist yet?
    apply = storage_module._fast_sqlite

    def spy(dbapi_connection, record) -> None:
        cursor = dbapi_connection.cursor()
        seen.append(bool(cursor.execute("select name from sqlite_master where name = 'studies'").fetchall()))
        cursor.close()
        apply(dbapi_connection, record)

    monkeypatch.setattr(storage_module, "_fast_sqlite", spy)
    path = tmp_path / "study.db"
    storage = storage_module.make_storage(f"sqlite:///{path}")
    study = optuna.create_study(study_name="pragmas", storage=storage)
    study.set_user_attr("k", 1)
    assert seen and seen[0] is False  # the first connection, which made the tables, was set up too
    connection = storage.engine.raw_connection()
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        connection.close()
    storage_module.close_storage(study)
    with sqlite3.connect(path) as reader:  # the study, folded back from its log, in the one file
        assert reader.execute("select count(*) from studies").fetchone()[0] == 1

