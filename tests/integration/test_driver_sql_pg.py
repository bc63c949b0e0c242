"""The worker's driver-level SQL on the real PostgreSQL server: it stores and reads exactly
what the SQLAlchemy Core statements it replaced store and read (the same checks as
tests/unit/test_pipeline_driver_sql.py on SQLite)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage.db import make_engine, make_sessionmaker, upgrade
from tests.unit.test_pipeline_driver_sql import session_queries_read_what_core_reads, session_rows_both_ways


@pytest.fixture(scope="module")
def pg_sessions(pg_url):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    yield sessions
    with sessions.begin() as s:  # the module's rows only: other tests of the session share the database
        s.execute(text("DELETE FROM sessions WHERE session_key LIKE 'drv%'"))
    engine.dispose()


def test_session_rows_in_driver_form_store_what_core_stores(pg_sessions):
    session_rows_both_ways(pg_sessions)


def test_session_queries_read_what_core_reads(pg_sessions):
    session_queries_read_what_core_reads(pg_sessions)
