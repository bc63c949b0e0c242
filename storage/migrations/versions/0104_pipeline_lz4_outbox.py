"""Pipeline: the CDR push outbox's payload compressed with LZ4 too (PostgreSQL).

The worker writes a ``cdr_outbox`` row per CDR and receiving partner in the CDR's own
transaction (``storage.outbox``), its ``payload`` the CDR JSON (~2.4 KB: over the TOAST
threshold, so compressed on every insert), like ``cdrs.cdr_json`` in
0103_pipeline_lz4_json: see there (the same conditions, the text stored unchanged).
A revision of its own because the table is the API's (0300_api).

Revision ID: 0104_pipeline_lz4_outbox
Revises: 0103_pipeline_lz4_json
"""
from __future__ import annotations

from alembic import op

revision = "0104_pipeline_lz4_outbox"
down_revision = "0103_pipeline_lz4_json"
branch_labels = None
depends_on = ("0300_api",)


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or bind.dialect.server_version_info < (14,):
        return False
    methods = bind.exec_driver_sql(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'").scalar()
    return bool(methods) and "lz4" in methods


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE cdr_outbox ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE cdr_outbox ALTER COLUMN payload SET COMPRESSION default")
