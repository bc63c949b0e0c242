"""Gateway: registered charge points (hashed passwords) and the transaction id counter.

Revision ID: 0400_gateway
Revises: 0001_core
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0400_gateway"
down_revision = "0001_core"
branch_labels = ("gateway",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_charge_points",
        sa.Column("charge_point_id", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("charge_point_id", name="pk_gateway_charge_points"),
    )
    op.create_table(
        "gateway_counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_gateway_counters"),
    )
    # OCPP 1.6 transactionId is a (32-bit in practice) integer; start at 1.
    op.bulk_insert(
        sa.table("gateway_counters", sa.column("name", sa.String), sa.column("next_value", sa.BigInteger)),
        [{"name": "transaction_id", "next_value": 1}],
    )


def downgrade() -> None:
    op.drop_table("gateway_counters")
    op.drop_table("gateway_charge_points")
