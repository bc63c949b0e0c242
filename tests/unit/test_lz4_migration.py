"""Migrations 0103_pipeline_lz4_json and 0104_pipeline_lz4_outbox are PostgreSQL-only: on
SQLite upgrade and downgrade change nothing (tests/integration/test_lz4_migration_pg.py
checks PostgreSQL)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from storage.db import alembic_config, make_engine


def test_lz4_migrations_are_a_no_op_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'lz4.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "heads")
    engine = make_engine(url)

    def schema():
        with engine.connect() as conn:
            return conn.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all()

    def versions():
        with engine.connect() as conn:
            return {v for (v,) in conn.execute(text("SELECT version_num FROM alembic_version"))}

    after = schema()
    assert "0104_pipeline_lz4_outbox" in versions()
    command.downgrade(cfg, "0102_pipeline_session_messages")
    assert "0102_pipeline_session_messages" in versions()
    assert schema() == after
    command.upgrade(cfg, "heads")
    assert schema() == after and "0104_pipeline_lz4_outbox" in versions()
    engine.dispose()
