"""Settlement: parties, contracts, partner imports, reconciliation runs, statements.

Mirrors storage/settlement_tables.py (see there for the meaning of each table). Issued
statements are immutable: triggers refuse UPDATE and DELETE on settlement_statements and
settlement_statement_totals, on SQLite and PostgreSQL alike.

Revision ID: 0200_settlement
Revises: 0001_core
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0200_settlement"
down_revision = "0001_core"
branch_labels = ("settlement",)
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Money = sa.Numeric(18, 4)
Energy = sa.Numeric(18, 6)
Utc = sa.DateTime(timezone=True)

_IMMUTABLE = ("settlement_statements", "settlement_statement_totals")


def upgrade() -> None:
    op.create_table(
        "settlement_parties",
        sa.Column("country_code", sa.String(2), primary_key=True),
        sa.Column("party_id", sa.String(3), primary_key=True),
        sa.Column("role", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
    )
    op.create_table(
        "settlement_contracts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("cpo", sa.String(7), nullable=False, index=True),
        sa.Column("emsp", sa.String(7), nullable=False, index=True),
        sa.Column("hub", sa.String(7)),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("billing_direction", sa.String(8), nullable=False),
        sa.Column("vat", sa.String(16), nullable=False),
        sa.Column("vat_rate", sa.Numeric(9, 4)),
        sa.Column("tariff_json", sa.Text),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("tolerance_amount", Money, nullable=False),
        sa.Column("tolerance_energy_kwh", Energy, nullable=False),
        sa.Column("tolerance_duration_s", sa.Integer, nullable=False),
        sa.Column("tolerance_start_s", sa.Integer, nullable=False),
        sa.Column("billing_period", sa.String(16), nullable=False),
        sa.Column("updated_at", Utc, nullable=False),
    )
    op.create_table(
        "settlement_imports",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("partner", sa.String(7), nullable=False, index=True),
        sa.Column("source_file", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("imported_at", Utc, nullable=False),
    )
    op.create_table(
        "settlement_partner_cdrs",
        sa.Column("pk", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("import_id", sa.BigInteger, sa.ForeignKey("settlement_imports.id"), nullable=False, index=True),
        sa.Column("source_line", sa.Integer, nullable=False),
        sa.Column("partner", sa.String(7), nullable=False),
        sa.Column("cdr_id", sa.String(39), nullable=False, index=True),
        sa.Column("cpo", sa.String(7), nullable=False),
        sa.Column("emsp", sa.String(7), nullable=False),
        sa.Column("evse_id", sa.String(48), nullable=False),
        sa.Column("start_date_time", Utc, nullable=False),
        sa.Column("end_date_time", Utc, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_cost_excl_vat", Money, nullable=False),
        sa.Column("total_cost_incl_vat", Money, nullable=False),
        sa.Column("total_energy", Energy, nullable=False),
        sa.Column("credit", sa.Boolean, nullable=False),
        sa.Column("credit_reference_id", sa.String(39)),
        sa.Column("cdr_json", sa.Text),
        sa.Index("ix_settlement_partner_cdrs_pair_start", "cpo", "emsp", "start_date_time"),
    )
    op.create_table(
        "settlement_invoice_lines",
        sa.Column("pk", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("import_id", sa.BigInteger, sa.ForeignKey("settlement_imports.id"), nullable=False, index=True),
        sa.Column("source_line", sa.Integer, nullable=False),
        sa.Column("issuer", sa.String(7), nullable=False, index=True),
        sa.Column("invoice_id", sa.String(255), nullable=False, index=True),
        sa.Column("record_id", sa.String(36)),
        sa.Column("cdr_id", sa.String(39), nullable=False, index=True),
        sa.Column("cpo", sa.String(7)),
        sa.Column("amount_excl_vat", Money),
        sa.Column("amount_incl_vat", Money),
        sa.Column("currency", sa.String(3)),
        sa.Column("issued_at", Utc),
    )
    op.create_table(
        "settlement_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contract_id", sa.String(64), nullable=False, index=True),
        sa.Column("party", sa.String(7), nullable=False),
        sa.Column("counterparty", sa.String(7), nullable=False),
        sa.Column("period", sa.String(7), nullable=False, index=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("our_count", sa.Integer, nullable=False),
        sa.Column("partner_count", sa.Integer, nullable=False),
        sa.Column("invoice_line_count", sa.Integer, nullable=False),
        sa.Column("ours_source", sa.Text, nullable=False),
        sa.Column("partner_source", sa.Text, nullable=False),
        sa.Column("matched_stored", sa.Boolean, nullable=False),
    )
    op.create_table(
        "settlement_run_classes",
        sa.Column("run_id", sa.String(36), sa.ForeignKey("settlement_runs.id"), primary_key=True),
        sa.Column("cls", sa.String(32), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("our_excl_vat", Money, nullable=False),
        sa.Column("our_incl_vat", Money, nullable=False),
        sa.Column("partner_excl_vat", Money, nullable=False),
        sa.Column("partner_incl_vat", Money, nullable=False),
    )
    op.create_table(
        "settlement_results",
        sa.Column("pk", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), sa.ForeignKey("settlement_runs.id"), nullable=False),
        sa.Column("cls", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("match", sa.String(16)),
        sa.Column("our_cdr_id", sa.String(39)),
        sa.Column("partner_cdr_id", sa.String(39)),
        sa.Column("invoice_id", sa.String(255)),
        sa.Column("invoiced_cdr_id", sa.String(39)),
        sa.Column("cpo", sa.String(7)),
        sa.Column("emsp", sa.String(7)),
        sa.Column("evse_id", sa.String(48)),
        sa.Column("start_date_time", Utc),
        sa.Column("our_cost_excl", Money),
        sa.Column("our_cost_incl", Money),
        sa.Column("partner_cost_excl", Money),
        sa.Column("partner_cost_incl", Money),
        sa.Column("our_energy", Energy),
        sa.Column("partner_energy", Energy),
        sa.Column("our_duration_s", sa.Integer),
        sa.Column("partner_duration_s", sa.Integer),
        sa.Column("note", sa.Text),
        sa.Column("reprice_excl", Money),
        sa.Column("reprice_incl", Money),
        sa.Column("reprice_agrees_with", sa.String(16)),
        sa.Column("reprice_detail", sa.Text),
        sa.Index("ix_settlement_results_run_cls", "run_id", "cls"),
    )
    op.create_table(
        "settlement_statements",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("party", sa.String(7), nullable=False, index=True),
        sa.Column("counterparty", sa.String(7), index=True),
        sa.Column("period", sa.String(7), nullable=False, index=True),
        sa.Column("issued_at", Utc, nullable=False),
        sa.Column("corrects_id", sa.String(36), sa.ForeignKey("settlement_statements.id")),
        sa.Column("run_ids", sa.Text, nullable=False),
        sa.Column("content_json", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "settlement_statement_totals",
        sa.Column("statement_id", sa.String(36), sa.ForeignKey("settlement_statements.id"), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("party", sa.String(7), primary_key=True),
        sa.Column("cdr_count", sa.Integer, nullable=False),
        sa.Column("net_excl_vat", Money, nullable=False),
        sa.Column("vat", Money, nullable=False),
        sa.Column("total_incl_vat", Money, nullable=False),
        sa.Column("net_position", Money, nullable=False),
    )
    _immutability_triggers()


def _immutability_triggers() -> None:
    """An issued statement is never changed or removed (issue 5, "Statements")."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION settlement_statement_immutable() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'issued settlement statements are immutable (%), issue a correction', TG_OP;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in _IMMUTABLE:
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION settlement_statement_immutable()"
            )
    elif dialect == "sqlite":
        for table in _IMMUTABLE:
            for op_name in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'issued settlement statements are immutable ({op_name}), "
                    f"issue a correction'); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in _IMMUTABLE:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
        op.execute("DROP FUNCTION IF EXISTS settlement_statement_immutable()")
    for table in ("settlement_statement_totals", "settlement_statements", "settlement_results",
                  "settlement_run_classes", "settlement_runs", "settlement_invoice_lines",
                  "settlement_partner_cdrs", "settlement_imports", "settlement_contracts",
                  "settlement_parties"):
        op.drop_table(table)
