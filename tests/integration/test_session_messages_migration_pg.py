"""Migration 0102_pipeline_session_messages on the real PostgreSQL server (upgrade from rows
in the old form, downgrade, upgrade again): the same checks as
tests/unit/test_session_messages_migration.py on SQLite, in a database of its own."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.unit.test_session_messages_migration import migration_keeps_every_state


@pytest.fixture
def empty_pg_url(pg_url):
    """A second fresh database next to the session's (this test migrates down and up)."""
    url = make_url(pg_url)
    name = f"clmig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migration_keeps_every_state_on_postgresql(empty_pg_url):
    migration_keeps_every_state(empty_pg_url)
