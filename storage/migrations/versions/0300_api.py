"""API concern: OCPI partners and roles, finance API keys, CDR push outbox, received CDRs.

Tables match ``storage/api_tables.py``; plus an index on the pipeline's ``cdrs`` table for
the OCPI CDRs sender (a partner's CDRs by last_updated).

Revision ID: 0300_api
Revises: 0001_core
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0300_api"
down_revision = "0001_core"
branch_labels = ("api",)
#: The cdrs table (for the OCPI sender index below) comes from the pipeline branch.
depends_on = ("0100_pipeline",)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ocpi_partners",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("token_kind", sa.String(1), nullable=False),
        sa.Column("allow_plain_token", sa.Boolean(), nullable=False),
        sa.Column("versions_url", sa.Text(), nullable=True),
        sa.Column("token_b", sa.Text(), nullable=True),
        sa.Column("send_plain_token", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(10), nullable=True),
        sa.Column("endpoints_json", sa.Text(), nullable=True),
        sa.Column("cdrs_receiver_url", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ocpi_partners"),
        sa.UniqueConstraint("token_hash", name="uq_ocpi_partners_token_hash"),
    )
    op.create_table(
        "ocpi_partner_roles",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("partner_id", BigId, nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("party_id", sa.String(3), nullable=False),
        sa.Column("business_details_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ocpi_partner_roles"),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["ocpi_partners.id"], ondelete="CASCADE",
            name="fk_ocpi_partner_roles_partner_id_ocpi_partners",
        ),
        sa.UniqueConstraint(
            "country_code", "party_id", "role", name="uq_ocpi_partner_roles_country_code_party_id_role"
        ),
    )
    op.create_index("ix_ocpi_partner_roles_partner", "ocpi_partner_roles", ["partner_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "cdr_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("partner_id", BigId, nullable=False),
        sa.Column("cdr_country_code", sa.String(2), nullable=False),
        sa.Column("cdr_party_id", sa.String(3), nullable=False),
        sa.Column("cdr_id", sa.String(39), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("enqueued_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("dead_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cdr_outbox"),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["ocpi_partners.id"], ondelete="CASCADE",
            name="fk_cdr_outbox_partner_id_ocpi_partners",
        ),
        sa.UniqueConstraint(
            "partner_id", "cdr_country_code", "cdr_party_id", "cdr_id",
            name="uq_cdr_outbox_partner_id_cdr_country_code_cdr_party_id_cdr_id",
        ),
    )
    op.create_index("ix_cdr_outbox_pending", "cdr_outbox", ["partner_id", "delivered_at", "id"])
    op.create_table(
        "ocpi_received_cdrs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("partner_id", BigId, nullable=False),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("party_id", sa.String(3), nullable=False),
        sa.Column("cdr_id", sa.String(39), nullable=False),
        sa.Column("start_date_time", TS, nullable=False),
        sa.Column("end_date_time", TS, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_cost_excl_vat", sa.Numeric(18, 4), nullable=False),
        sa.Column("total_cost_incl_vat", sa.Numeric(18, 4), nullable=True),
        sa.Column("total_energy", sa.Numeric(18, 4), nullable=False),
        sa.Column("credit", sa.Boolean(), nullable=False),
        sa.Column("credit_reference_id", sa.String(39), nullable=True),
        sa.Column("last_updated", TS, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ocpi_received_cdrs"),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["ocpi_partners.id"], ondelete="CASCADE",
            name="fk_ocpi_received_cdrs_partner_id_ocpi_partners",
        ),
        sa.UniqueConstraint(
            "country_code", "party_id", "cdr_id",
            name="uq_ocpi_received_cdrs_country_code_party_id_cdr_id",
        ),
    )
    op.create_index(
        "ix_ocpi_received_cdrs_partner_last_updated", "ocpi_received_cdrs", ["partner_id", "last_updated"]
    )


    # OCPI CDRs sender: a partner's CDRs in last_updated order (count + page from the index).
    op.create_index(
        "ix_cdrs_emsp_last_updated", "cdrs", ["emsp_country_code", "emsp_party_id", "last_updated", "pk"]
    )


def downgrade() -> None:
    op.drop_index("ix_cdrs_emsp_last_updated", table_name="cdrs")
    op.drop_table("ocpi_received_cdrs")
    op.drop_table("cdr_outbox")
    op.drop_table("api_keys")
    op.drop_table("ocpi_partner_roles")
    op.drop_table("ocpi_partners")
