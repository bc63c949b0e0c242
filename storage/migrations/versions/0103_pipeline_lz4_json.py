"""Pipeline: the big JSON columns the worker writes every batch compressed with LZ4 (PostgreSQL).

``cdrs.cdr_json`` (~2.4 KB per CDR) and ``session_messages.messages_json`` (~3.5 KB per
row, up to ~12 KB) are over PostgreSQL's 2 KB TOAST threshold, so the server compresses
every value the worker inserts; with the default method (pglz) that was most of the
server's time for those INSERTs. LZ4 compresses such JSON to about the same size at a
fraction of the CPU. Measured with pg_stat_statements over ``benchmarks/pipeline.py --only
throughput`` (20,000 events, one worker): INSERT INTO cdrs 72 -> 44 µs per row,
INSERT INTO session_messages 64 -> 26 µs per row (both tables ~equal in size).

Only the compression of values written from now on changes (stored values keep theirs;
PostgreSQL reads both): the text stored and read back is the same. Nothing on SQLite, on
PostgreSQL before 14 (no per-column compression) or on a server built without LZ4.
Downgrade puts the columns back on the server's default method.

Revision ID: 0103_pipeline_lz4_json
Revises: 0102_pipeline_session_messages
"""
from __future__ import annotations

from alembic import op

revision = "0103_pipeline_lz4_json"
down_revision = "0102_pipeline_session_messages"
branch_labels = None
depends_on = None

#: (table, column) compressed with LZ4.
COLUMNS = (("cdrs", "cdr_json"), ("session_messages", "messages_json"))


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or bind.dialect.server_version_info < (14,):
        return False
    methods = bind.exec_driver_sql(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'").scalar()
    return bool(methods) and "lz4" in methods


def _set_compression(method: str) -> None:
    if _lz4_available():
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("default")
