"""Pipeline: drop the two secondary indexes of ``events`` that no query uses.

``ix_events_charge_point_id_message_id`` and ``ix_events_session_key`` were maintained for
every raw event the worker inserts (a random-key B-tree insert each: on SQLite ~3 µs of CPU
per event and ~1.6 KB per event written to the WAL and the database file) but nothing reads
through them: duplicates are found in the session state, not in ``events``; replay reads
the events by (topic, partition, offset), the unique constraint's index; replay's compare
selects ``session_key`` by topic, again through that index (EXPLAIN QUERY PLAN: SEARCH
events USING INDEX ... (topic=?)). Downgrade creates them again.

Revision ID: 0101_pipeline_event_indexes
Revises: 0100_pipeline
"""
from __future__ import annotations

from alembic import op

revision = "0101_pipeline_event_indexes"
down_revision = "0100_pipeline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_charge_point_id_message_id", table_name="events")
    op.drop_index("ix_events_session_key", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_charge_point_id_message_id", "events", ["charge_point_id", "message_id"])
    op.create_index("ix_events_session_key", "events", ["session_key"])
