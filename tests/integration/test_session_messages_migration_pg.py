"""Migration 0102_pipeline_session_messages on the real PostgreSQL server (upgrade from rows
in the old form, downgrade, upgrade again): the same checks as
tests/unit/test_session_messages_migration.py on SQLite, in a database of its own."""

from __future__ import annotations

from tests.unit.test_session_messages_migration import migration_keeps_every_state


def test_migration_keeps_every_state_on_postgresql(empty_pg_url):
    migration_keeps_every_state(empty_pg_url)
