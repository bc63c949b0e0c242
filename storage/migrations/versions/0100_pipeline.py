"""Pipeline core: events, sessions, cdrs, tariffs, tracking, dead letters, counters.

Mirrors storage/models.py (written by hand, see that module for the meaning of each
column). Money Numeric(18, 4); energy and time Numeric(18, 6).

Revision ID: 0100_pipeline
Revises: 0001_core
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0100_pipeline"
down_revision = "0001_core"
branch_labels = ("pipeline",)
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Money = sa.Numeric(18, 4)
Quantity = sa.Numeric(18, 6)
Utc = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("pk", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("charge_point_id", sa.String(255)),
        sa.Column("message_id", sa.String(64)),
        sa.Column("ocpp_version", sa.String(8)),
        sa.Column("action", sa.String(64)),
        sa.Column("received_at", Utc),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("session_key", sa.String(300)),
        sa.PrimaryKeyConstraint("pk", name="pk_events"),
        sa.UniqueConstraint("topic", "partition", "offset", name="uq_events_topic_partition_offset"),
    )
    op.create_index("ix_events_charge_point_id_message_id", "events", ["charge_point_id", "message_id"])
    op.create_index("ix_events_session_key", "events", ["session_key"])

    op.create_table(
        "sessions",
        sa.Column("session_key", sa.String(300), nullable=False),
        sa.Column("charge_point_id", sa.String(255), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("ocpp_version", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", Utc),
        sa.Column("ended_at", Utc),
        sa.Column("state_json", sa.Text, nullable=False),
        sa.Column("event_count", sa.Integer, nullable=False),
        sa.Column("cdr_id", sa.String(39)),
        sa.Column("last_event_at", Utc),
        sa.PrimaryKeyConstraint("session_key", name="pk_sessions"),
    )
    op.create_index("ix_sessions_charge_point_id", "sessions", ["charge_point_id"])

    op.create_table(
        "cdrs",
        sa.Column("pk", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("party_id", sa.String(3), nullable=False),
        sa.Column("id", sa.String(39), nullable=False),
        sa.Column("start_date_time", Utc, nullable=False),
        sa.Column("end_date_time", Utc, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_cost_excl_vat", Money, nullable=False),
        sa.Column("total_cost_incl_vat", Money),
        sa.Column("total_energy", Quantity, nullable=False),
        sa.Column("total_time", Quantity),
        sa.Column("total_parking_time", Quantity),
        sa.Column("credit", sa.Boolean, nullable=False),
        sa.Column("credit_reference_id", sa.String(39)),
        sa.Column("emsp_country_code", sa.String(2)),
        sa.Column("emsp_party_id", sa.String(3)),
        sa.Column("location_id", sa.String(36)),
        sa.Column("evse_uid", sa.String(36)),
        sa.Column("tariff_id", sa.String(36)),
        sa.Column("tariff_version", Utc),
        sa.Column("last_updated", Utc, nullable=False),
        sa.Column("session_key", sa.String(300)),
        sa.Column("cdr_json", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("published", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_cdrs"),
        sa.UniqueConstraint("country_code", "party_id", "id", name="uq_cdrs_natural_key"),
    )
    op.create_index("ix_cdrs_start_date_time", "cdrs", ["start_date_time"])
    op.create_index("ix_cdrs_emsp", "cdrs", ["emsp_country_code", "emsp_party_id"])
    op.create_index("ix_cdrs_last_updated", "cdrs", ["last_updated"])
    op.create_index("ix_cdrs_session_key", "cdrs", ["session_key"])
    op.create_index("ix_cdrs_published", "cdrs", ["published"])

    op.create_table(
        "tariffs",
        sa.Column("pk", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("party_id", sa.String(3), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("last_updated", Utc, nullable=False),
        sa.Column("valid_from", Utc),
        sa.Column("valid_to", Utc),
        sa.Column("tariff_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_tariffs"),
        sa.UniqueConstraint("country_code", "party_id", "id", "last_updated", name="uq_tariffs_version"),
    )
    op.create_index("ix_tariffs_id", "tariffs", ["id"])

    op.create_table(
        "tracking",
        sa.Column("consumer_group", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "topic", "partition", name="pk_tracking"),
    )

    op.create_table(
        "dead_letters",
        sa.Column("pk", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("source_topic", sa.String(255), nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column("charge_point_id", sa.String(255)),
        sa.Column("message_id", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("original", sa.LargeBinary, nullable=False),
        sa.Column("received_at", Utc),
        sa.Column("published", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_dead_letters"),
        sa.UniqueConstraint(
            "source_topic", "source_partition", "source_offset",
            name="uq_dead_letters_source_topic_source_partition_source_offset",
        ),
    )
    op.create_index("ix_dead_letters_published", "dead_letters", ["published"])

    op.create_table(
        "pipeline_counters",
        sa.Column("consumer_group", sa.String(255), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "name", name="pk_pipeline_counters"),
    )


def downgrade() -> None:
    for table in ("pipeline_counters", "dead_letters", "tracking", "tariffs", "cdrs", "sessions", "events"):
        op.drop_table(table)
