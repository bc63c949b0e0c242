"""Migrations 0103_pipeline_lz4_json and 0104_pipeline_lz4_outbox on the real PostgreSQL
server: after upgrade the worker's big JSON columns compress new values with LZ4 and read back the same text; downgrade puts
them back on the server's default method; upgrade again works. In a database of its own."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from storage.db import alembic_config, make_engine

COLUMNS = {("cdrs", "cdr_json"), ("session_messages", "messages_json"), ("cdr_outbox", "payload")}


def _methods(conn) -> dict[tuple[str, str], str]:
    """(table, column) -> the column's compression setting ('l': lz4, '': server default)."""
    return {(t, c): m for t, c, m in conn.execute(text(
        "SELECT c.relname, a.attname, a.attcompression FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE c.relname IN ('cdrs', 'session_messages', 'sessions', 'events', 'cdr_outbox') AND a.attnum > 0 "
        "AND NOT a.attisdropped AND a.attcompression <> ''"))}


def test_lz4_json_columns_upgrade_downgrade(empty_pg_url):
    engine = make_engine(empty_pg_url)
    with engine.connect() as conn:
        if "lz4" not in conn.exec_driver_sql(
                "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'").scalar():
            pytest.skip("this PostgreSQL server is built without LZ4 (the migration does nothing)")
    cfg = alembic_config(empty_pg_url)
    command.upgrade(cfg, "heads")
    # a messages array over the 2 KB TOAST threshold, as the worker writes them
    document = "[" + ",".join(f'{{"action":"MeterValues","n":{i},"value":"{i * 7919 % 1000:03d}.5"}}'
                              for i in range(200)) + "]"
    assert len(document) > 8000
    with engine.begin() as conn:
        assert _methods(conn) == {column: "l" for column in COLUMNS}
        conn.execute(text("INSERT INTO session_messages (session_key, first_index, messages_json) "
                          "VALUES ('A/1', 0, :j)"), {"j": document})
        stored, method = conn.execute(text(
            "SELECT messages_json, pg_column_compression(messages_json) FROM session_messages")).one()
        assert stored == document and method == "lz4"
    command.downgrade(cfg, "0102_pipeline_session_messages")
    with engine.begin() as conn:
        assert _methods(conn) == {}
        # the value written under LZ4 still reads back the same; a new one takes the default
        assert conn.execute(text("SELECT messages_json FROM session_messages")).scalar() == document
        conn.execute(text("INSERT INTO session_messages (session_key, first_index, messages_json) "
                          "VALUES ('A/1', 200, :j)"), {"j": document})
        default = conn.exec_driver_sql("SHOW default_toast_compression").scalar()
        assert conn.execute(text("SELECT pg_column_compression(messages_json) FROM session_messages "
                                 "WHERE first_index = 200")).scalar() == default
    command.upgrade(cfg, "heads")
    with engine.connect() as conn:
        assert _methods(conn) == {column: "l" for column in COLUMNS}
    engine.dispose()
