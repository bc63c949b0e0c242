"""Migration 0103_pipeline_lz4_json is PostgreSQL-only: on SQLite upgrade and downgrade change
nothing (tests/integration/test_lz4_migration_pg.py checks PostgreSQL)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from storage.db import alembic_config, make_engine


def test_lz4_migration_is_a_no_op_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'lz4.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0102_pipeline_session_messages")
    engine = make_engine(url)

    def schema():
        with engine.connect() as conn:
            return conn.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all()

    before = schema()
    command.upgrade(cfg, "0103_pipeline_lz4_json")
    assert schema() == before
    command.downgrade(cfg, "0102_pipeline_session_messages")
    assert schema() == before
    command.upgrade(cfg, "heads")
    engine.dispose()
