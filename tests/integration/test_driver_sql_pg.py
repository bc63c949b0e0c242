"""The worker's driver-level SQL on the real PostgreSQL server: it stores and reads exactly
what the SQLAlchemy Core statements it replaced store and read (the same checks as
tests/unit/test_pipeline_driver_sql.py on SQLite)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from tests.unit.test_pipeline_driver_sql import (
    cdr_rows_both_ways,
    session_queries_read_what_core_reads,
    session_rows_both_ways,
)


@pytest.fixture(scope="module")
def pg_sessions(pg_url):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    yield sessions
    with sessions.begin() as s:  # the module's rows only: other tests of the session share the database
        s.execute(text("DELETE FROM sessions WHERE session_key LIKE 'drv%'"))
        s.execute(text("DELETE FROM session_messages WHERE session_key LIKE 'drv%'"))
        s.execute(text("DELETE FROM cdrs WHERE party_id IN ('ZDA', 'ZDB')"))
        s.execute(text("DELETE FROM tracking WHERE consumer_group = 'drv-lock'"))
    engine.dispose()


def test_session_rows_in_driver_form_store_what_core_stores(pg_sessions):
    session_rows_both_ways(pg_sessions)


def test_session_queries_read_what_core_reads(pg_sessions):
    session_queries_read_what_core_reads(pg_sessions)


def test_cdr_rows_in_driver_form_store_what_core_stores(pg_sessions):
    cdr_rows_both_ways(pg_sessions)


def test_locked_positions_lock_those_tracking_rows_until_the_batch_ends(pg_sessions):
    """A second worker's batch on the same partitions waits for the first (FOR UPDATE)."""
    with pg_sessions.begin() as s:
        repo.track_many(s, "drv-lock", {("drv-t", 0): 5, ("drv-t", 1): 6})
    lock = ("SELECT \"offset\" FROM tracking WHERE consumer_group = 'drv-lock' AND partition = :p "
            "FOR UPDATE NOWAIT")
    with pg_sessions.begin() as s:
        assert repo.locked_positions(s, "drv-lock", "drv-t", {0}) == {0: 5}
        with pg_sessions() as other:
            with pytest.raises(DBAPIError):
                other.execute(text(lock), {"p": 0})
            other.rollback()
            assert other.execute(text(lock), {"p": 1}).scalar_one() == 6  # partition 1 is not locked
            other.rollback()
    with pg_sessions() as other:  # the lock ends with the transaction
        assert other.execute(text(lock), {"p": 0}).scalar_one() == 5
