"""Tables of settlement: parties, contracts, partner data, reconciliation runs, statements.

* ``settlement_parties`` / ``settlement_contracts``: settlement/contracts.py, stored so the
  API and later runs see the same terms (the tariff used for re-pricing is kept as JSON).
* ``settlement_imports``: one row per imported partner file (kind, partner, file, SHA-256,
  row count). Its rows land in ``settlement_partner_cdrs`` / ``settlement_invoice_lines``
  in the same transaction: a file is imported whole or not at all.
* ``settlement_runs`` / ``settlement_run_classes`` / ``settlement_results``: one
  reconciliation (contract, period), its counts and money per class, and its lines
  (settlement/reconcile.py LINE_COLUMNS plus the re-pricing verdict). ``matched`` lines
  are stored only on request (``--store-matched``): they are the bulk and say nothing.
* ``settlement_statements`` / ``settlement_statement_totals``: issued statements. A
  statement is immutable: ``content_json`` is the whole statement, ``content_hash`` its
  SHA-256, and triggers (see the 0200 migration) refuse UPDATE and DELETE on both tables.
  A correction is a new statement whose ``corrects_id`` names the old one.

Money Numeric(18, 4) (currency totals are rounded to the minor unit); energy
Numeric(18, 6) kWh; times timezone-aware UTC. No foreign keys to pipeline tables.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base
from storage.types import BigIntPK as _BigIntPK
from storage.types import Money as _Money
from storage.types import Quantity as _Energy
from storage.types import UtcDateTimeType as _Utc



class SettlementParty(Base):
    __tablename__ = "settlement_parties"
    country_code: Mapped[str] = mapped_column(String(2), primary_key=True)
    party_id: Mapped[str] = mapped_column(String(3), primary_key=True)
    role: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")


class SettlementContract(Base):
    __tablename__ = "settlement_contracts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cpo: Mapped[str] = mapped_column(String(7), index=True)
    emsp: Mapped[str] = mapped_column(String(7), index=True)
    hub: Mapped[str | None] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(3))
    billing_direction: Mapped[str] = mapped_column(String(8))
    vat: Mapped[str] = mapped_column(String(16))
    vat_rate: Mapped[Decimal | None] = mapped_column(Numeric(9, 4))
    tariff_json: Mapped[str | None] = mapped_column(Text)
    time_zone: Mapped[str] = mapped_column(String(64))
    tolerance_amount: Mapped[Decimal] = mapped_column(_Money)
    tolerance_energy_kwh: Mapped[Decimal] = mapped_column(_Energy)
    tolerance_duration_s: Mapped[int] = mapped_column(Integer)
    tolerance_start_s: Mapped[int] = mapped_column(Integer)
    billing_period: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(_Utc)


class SettlementImport(Base):
    __tablename__ = "settlement_imports"
    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # partner_cdrs | invoices
    partner: Mapped[str] = mapped_column(String(7), index=True)
    source_file: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(_Utc)


class SettlementPartnerCdr(Base):
    __tablename__ = "settlement_partner_cdrs"
    __table_args__ = (
        Index("ix_settlement_partner_cdrs_pair_start", "cpo", "emsp", "start_date_time"),
    )
    pk: Mapped[int] = mapped_column(_BigIntPK, primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("settlement_imports.id"), index=True)
    source_line: Mapped[int] = mapped_column(Integer)
    partner: Mapped[str] = mapped_column(String(7))
    cdr_id: Mapped[str] = mapped_column(String(39), index=True)
    cpo: Mapped[str] = mapped_column(String(7))
    emsp: Mapped[str] = mapped_column(String(7))
    evse_id: Mapped[str] = mapped_column(String(48))
    start_date_time: Mapped[datetime] = mapped_column(_Utc)
    end_date_time: Mapped[datetime] = mapped_column(_Utc)
    currency: Mapped[str] = mapped_column(String(3))
    total_cost_excl_vat: Mapped[Decimal] = mapped_column(_Money)
    total_cost_incl_vat: Mapped[Decimal] = mapped_column(_Money)
    total_energy: Mapped[Decimal] = mapped_column(_Energy)
    credit: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_reference_id: Mapped[str | None] = mapped_column(String(39))
    #: The CDR as the partner sent it (OCPI JSON), when the import was JSON; used to re-price.
    cdr_json: Mapped[str | None] = mapped_column(Text)


class SettlementInvoiceLine(Base):
    __tablename__ = "settlement_invoice_lines"
    pk: Mapped[int] = mapped_column(_BigIntPK, primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("settlement_imports.id"), index=True)
    source_line: Mapped[int] = mapped_column(Integer)
    issuer: Mapped[str] = mapped_column(String(7), index=True)
    invoice_id: Mapped[str] = mapped_column(String(255), index=True)
    #: OCPI 2.3.0 InvoiceReconciliationRecord.id, when the line came from one.
    record_id: Mapped[str | None] = mapped_column(String(36))
    cdr_id: Mapped[str] = mapped_column(String(39), index=True)
    cpo: Mapped[str | None] = mapped_column(String(7))
    amount_excl_vat: Mapped[Decimal | None] = mapped_column(_Money)
    amount_incl_vat: Mapped[Decimal | None] = mapped_column(_Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    issued_at: Mapped[datetime | None] = mapped_column(_Utc)


class SettlementRun(Base):
    __tablename__ = "settlement_runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contract_id: Mapped[str] = mapped_column(String(64), index=True)
    party: Mapped[str] = mapped_column(String(7))
    counterparty: Mapped[str] = mapped_column(String(7))
    period: Mapped[str] = mapped_column(String(7), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(_Utc)
    our_count: Mapped[int] = mapped_column(Integer)
    partner_count: Mapped[int] = mapped_column(Integer)
    invoice_line_count: Mapped[int] = mapped_column(Integer)
    ours_source: Mapped[str] = mapped_column(Text)
    partner_source: Mapped[str] = mapped_column(Text)
    matched_stored: Mapped[bool] = mapped_column(Boolean, default=False)


class SettlementRunClass(Base):
    __tablename__ = "settlement_run_classes"
    run_id: Mapped[str] = mapped_column(ForeignKey("settlement_runs.id"), primary_key=True)
    cls: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    our_excl_vat: Mapped[Decimal] = mapped_column(_Money)
    our_incl_vat: Mapped[Decimal] = mapped_column(_Money)
    partner_excl_vat: Mapped[Decimal] = mapped_column(_Money)
    partner_incl_vat: Mapped[Decimal] = mapped_column(_Money)


class SettlementResult(Base):
    __tablename__ = "settlement_results"
    __table_args__ = (Index("ix_settlement_results_run_cls", "run_id", "cls"),)
    pk: Mapped[int] = mapped_column(_BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("settlement_runs.id"))
    cls: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    match: Mapped[str | None] = mapped_column(String(16))
    our_cdr_id: Mapped[str | None] = mapped_column(String(39))
    partner_cdr_id: Mapped[str | None] = mapped_column(String(39))
    invoice_id: Mapped[str | None] = mapped_column(String(255))
    invoiced_cdr_id: Mapped[str | None] = mapped_column(String(39))
    cpo: Mapped[str | None] = mapped_column(String(7))
    emsp: Mapped[str | None] = mapped_column(String(7))
    evse_id: Mapped[str | None] = mapped_column(String(48))
    start_date_time: Mapped[datetime | None] = mapped_column(_Utc)
    our_cost_excl: Mapped[Decimal | None] = mapped_column(_Money)
    our_cost_incl: Mapped[Decimal | None] = mapped_column(_Money)
    partner_cost_excl: Mapped[Decimal | None] = mapped_column(_Money)
    partner_cost_incl: Mapped[Decimal | None] = mapped_column(_Money)
    our_energy: Mapped[Decimal | None] = mapped_column(_Energy)
    partner_energy: Mapped[Decimal | None] = mapped_column(_Energy)
    our_duration_s: Mapped[int | None] = mapped_column(Integer)
    partner_duration_s: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    #: Re-pricing of the partner's CDR with the contract tariff (amount mismatches only).
    reprice_excl: Mapped[Decimal | None] = mapped_column(_Money)
    reprice_incl: Mapped[Decimal | None] = mapped_column(_Money)
    reprice_agrees_with: Mapped[str | None] = mapped_column(String(16))
    reprice_detail: Mapped[str | None] = mapped_column(Text)


class SettlementStatement(Base):
    __tablename__ = "settlement_statements"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # pair | hub
    party: Mapped[str] = mapped_column(String(7), index=True)
    counterparty: Mapped[str | None] = mapped_column(String(7), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    issued_at: Mapped[datetime] = mapped_column(_Utc)
    corrects_id: Mapped[str | None] = mapped_column(ForeignKey("settlement_statements.id"))
    run_ids: Mapped[str] = mapped_column(Text)  # JSON list of settlement_runs.id
    content_json: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)


class SettlementStatementTotal(Base):
    __tablename__ = "settlement_statement_totals"
    statement_id: Mapped[str] = mapped_column(ForeignKey("settlement_statements.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    #: For a pair statement: the pair; for a hub statement: each party of the hub.
    party: Mapped[str] = mapped_column(String(7), primary_key=True)
    cdr_count: Mapped[int] = mapped_column(Integer)
    net_excl_vat: Mapped[Decimal] = mapped_column(_Money)
    vat: Mapped[Decimal] = mapped_column(_Money)
    total_incl_vat: Mapped[Decimal] = mapped_column(_Money)
    #: What ``party`` receives (+) or pays (-) in this currency, incl VAT.
    net_position: Mapped[Decimal] = mapped_column(_Money)
