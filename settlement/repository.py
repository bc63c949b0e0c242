"""Settlement's database shell: store and load contracts, partner imports, runs, statements.

The core (reconcile.py, statements.py) never imports this module. Every writer here runs
in the caller's transaction or opens exactly one (``with session.begin()``), so a partner
file, a run or a statement is written whole or not at all.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from settlement.contracts import (
    BillingDirection,
    Contract,
    ContractBook,
    Party,
    Period,
    Role,
    Tolerances,
    VatTreatment,
)
from settlement.frames import cdr_row, conform, empty_cdr_frame, frame_from_rows
from settlement.imports import InvoiceLines, PartnerCdrs
from settlement.money import energy_to_units, money_to_units, units_to_energy, units_to_money
from settlement.reconcile import CLASSES, LINE_COLUMNS, MATCHED, Reconciliation
from storage.settlement_tables import (
    SettlementContract,
    SettlementImport,
    SettlementInvoiceLine,
    SettlementParty,
    SettlementPartnerCdr,
    SettlementResult,
    SettlementRun,
    SettlementRunClass,
    SettlementStatement,
    SettlementStatementTotal,
)

_BATCH = 5000


def _now() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- parties and contracts


def save_book(session: Session, book: ContractBook) -> None:
    """Insert or replace parties and contracts (terms may change between periods; runs and
    statements keep the terms they used in their own rows/content)."""
    for p in book.parties:
        session.merge(SettlementParty(country_code=p.country_code, party_id=p.party_id,
                                      role=p.role.value, name=p.name))
    for c in book.contracts:
        t = c.tolerances
        session.merge(SettlementContract(
            id=c.id, cpo=c.cpo, emsp=c.emsp, hub=c.hub, currency=c.currency,
            billing_direction=c.billing_direction.value, vat=c.vat.value, vat_rate=c.vat_rate,
            tariff_json=None if c.tariff is None else json.dumps(c.tariff, default=str),
            time_zone=c.time_zone, tolerance_amount=t.amount, tolerance_energy_kwh=t.energy_kwh,
            tolerance_duration_s=t.duration_s, tolerance_start_s=t.start_s,
            billing_period=c.billing_period, updated_at=_now(),
        ))


def load_book(session: Session) -> ContractBook:
    parties = tuple(Party(r.country_code, r.party_id, Role(r.role), r.name)
                    for r in session.scalars(select(SettlementParty)))
    contracts = []
    for r in session.scalars(select(SettlementContract).order_by(SettlementContract.id)):
        contracts.append(Contract(
            id=r.id, cpo=r.cpo, emsp=r.emsp, hub=r.hub, currency=r.currency,
            billing_direction=BillingDirection(r.billing_direction), vat=VatTreatment(r.vat),
            vat_rate=r.vat_rate, tariff=None if r.tariff_json is None else json.loads(r.tariff_json, parse_float=Decimal),
            time_zone=r.time_zone,
            tolerances=Tolerances(Decimal(r.tolerance_amount), Decimal(r.tolerance_energy_kwh),
                                  r.tolerance_duration_s, r.tolerance_start_s),
            billing_period=r.billing_period,
        ))
    return ContractBook(parties, tuple(contracts))


# ---------------------------------------------------------------- partner imports


def store_partner_cdrs(session: Session, parsed: PartnerCdrs, partner: str) -> int:
    """Write a validated partner CDR file in the caller's transaction; returns the import id.

    Call inside ``with session.begin():`` so the import row and all CDR rows commit together.
    """
    imp = SettlementImport(kind="partner_cdrs", partner=partner, source_file=parsed.source,
                           sha256=parsed.sha256, row_count=len(parsed.frame), imported_at=_now())
    session.add(imp)
    session.flush()
    f = parsed.frame
    rows = []
    for i, r in enumerate(f.itertuples(index=False)):
        rows.append({
            "import_id": imp.id, "source_line": parsed.lines[i], "partner": partner,
            "cdr_id": r.cdr_id, "cpo": r.cpo, "emsp": r.emsp, "evse_id": r.evse_id,
            "start_date_time": r.start_date_time.to_pydatetime(), "end_date_time": r.end_date_time.to_pydatetime(),
            "currency": r.currency, "total_cost_excl_vat": units_to_money(r.cost_excl),
            "total_cost_incl_vat": units_to_money(r.cost_incl), "total_energy": units_to_energy(r.energy),
            "credit": bool(r.credit), "credit_reference_id": r.credit_reference_id,
            "cdr_json": parsed.docs[i] if parsed.docs else None,
        })
        if len(rows) >= _BATCH:
            session.execute(insert(SettlementPartnerCdr), rows)
            rows = []
    if rows:
        session.execute(insert(SettlementPartnerCdr), rows)
    return imp.id


def store_invoices(session: Session, parsed: InvoiceLines, partner: str) -> int:
    """Write validated invoice lines in the caller's transaction; returns the import id."""
    imp = SettlementImport(kind="invoices", partner=partner, source_file=parsed.source,
                           sha256=parsed.sha256, row_count=len(parsed.frame), imported_at=_now())
    session.add(imp)
    session.flush()
    rows = []
    for i, r in enumerate(parsed.frame.to_dict("records")):
        rows.append({
            "import_id": imp.id, "source_line": parsed.lines[i], "issuer": r["issuer"] or partner,
            "invoice_id": r["invoice_id"], "record_id": r["record_id"], "cdr_id": r["cdr_id"],
            "cpo": r["cpo"], "amount_excl_vat": r["amount_excl_vat"], "amount_incl_vat": r["amount_incl_vat"],
            "currency": r["currency"], "issued_at": r["issued_at"],
        })
    for k in range(0, len(rows), _BATCH):
        session.execute(insert(SettlementInvoiceLine), rows[k:k + _BATCH])
    return imp.id


def load_partner_cdrs(session: Session, import_ids: Iterable[int]) -> tuple[pd.DataFrame, list[str | None]]:
    """The CDR frame (and per-row OCPI JSON) of the given partner imports."""
    ids = list(import_ids)
    q = (select(SettlementPartnerCdr).where(SettlementPartnerCdr.import_id.in_(ids))
         .order_by(SettlementPartnerCdr.pk))
    rows, docs = [], []
    for r in session.scalars(q):
        rows.append({
            "cdr_id": r.cdr_id, "cpo": r.cpo, "emsp": r.emsp, "evse_id": r.evse_id,
            "start_date_time": r.start_date_time, "end_date_time": r.end_date_time,
            "currency": r.currency, "cost_excl": money_to_units(Decimal(r.total_cost_excl_vat)),
            "cost_incl": money_to_units(Decimal(r.total_cost_incl_vat)),
            "energy": energy_to_units(Decimal(r.total_energy)), "credit": bool(r.credit),
            "credit_reference_id": r.credit_reference_id,
        })
        docs.append(r.cdr_json)
    return frame_from_rows(rows), docs


def load_our_cdrs(session: Session, contract: Contract, period: Period) -> tuple[pd.DataFrame, list[str]]:
    """Our issued CDRs of this contract's pair and period, from the pipeline's ``cdrs`` table.

    Read with plain SQL on its documented columns (storage/models.py ``cdrs``): the owning
    CPO, the eMSP and the start, then each row's ``cdr_json`` is parsed like a partner's.
    """
    cc, pid = contract.cpo.split("*")
    ecc, epid = contract.emsp.split("*")
    q = text(
        "SELECT cdr_json FROM cdrs WHERE country_code = :cc AND party_id = :pid "
        "AND emsp_country_code = :ecc AND emsp_party_id = :epid "
        "AND start_date_time >= :start AND start_date_time < :end ORDER BY pk"
    )
    docs = [r[0] for r in session.execute(q, {"cc": cc, "pid": pid, "ecc": ecc, "epid": epid,
                                               "start": period.start, "end": period.end})]
    rows = [cdr_row(json.loads(d, parse_float=Decimal)) for d in docs]
    return (frame_from_rows(rows) if rows else empty_cdr_frame()), docs


# ---------------------------------------------------------------- runs


def _dec_or_none(v: Any) -> Any:
    return None if v is None else v


def save_run(
    session: Session,
    rec: Reconciliation,
    *,
    party: str,
    ours_source: str,
    partner_source: str,
    store_matched: bool = False,
) -> str:
    """Store a reconciliation run: its header, counts and money per class, and its lines
    (all but ``matched`` ones unless ``store_matched``). Caller owns the transaction."""
    run_id = str(uuid.uuid4())
    c = rec.contract
    session.add(SettlementRun(
        id=run_id, contract_id=c.id, party=party, counterparty=c.counterparty(party),
        period=rec.period or "", currency=c.currency, created_at=_now(), our_count=rec.our_count,
        partner_count=rec.partner_count, invoice_line_count=rec.invoice_line_count,
        ours_source=ours_source, partner_source=partner_source, matched_stored=store_matched,
    ))
    session.flush()
    for row in rec.summary().itertuples(index=False):
        session.add(SettlementRunClass(run_id=run_id, cls=row[0], count=int(row.count),
                                       our_excl_vat=row.our_excl_vat, our_incl_vat=row.our_incl_vat,
                                       partner_excl_vat=row.partner_excl_vat,
                                       partner_incl_vat=row.partner_incl_vat))
    lines = rec.lines if store_matched else rec.lines[rec.lines["cls"] != MATCHED]
    sub = Reconciliation(rec.contract, rec.period, lines, rec.our_count, rec.partner_count,
                         rec.invoice_line_count)
    cols = {c.name for c in SettlementResult.__table__.columns}
    batch = []
    for r in sub.records():
        r = {k: v for k, v in r.items() if k in cols}
        r["cls"] = str(r["cls"])
        r["run_id"] = run_id
        if isinstance(r.get("reprice_detail"), (dict, list)):
            r["reprice_detail"] = json.dumps(r["reprice_detail"], default=str)
        batch.append(r)
        if len(batch) >= _BATCH:
            session.execute(insert(SettlementResult), batch)
            batch = []
    if batch:
        session.execute(insert(SettlementResult), batch)
    return run_id


def load_run_lines(session: Session, run_id: str) -> tuple[SettlementRun, pd.DataFrame]:
    """A stored run and its stored lines (Decimal money, as in the table)."""
    run = session.get(SettlementRun, run_id)
    if run is None:
        raise KeyError(f"no reconciliation run {run_id!r}")
    q = select(SettlementResult).where(SettlementResult.run_id == run_id).order_by(SettlementResult.pk)
    cols = [c.name for c in SettlementResult.__table__.columns if c.name not in ("pk", "run_id")]
    rows = [{c: getattr(r, c) for c in cols} for r in session.scalars(q)]
    return run, pd.DataFrame.from_records(rows, columns=cols)


# ---------------------------------------------------------------- statements


class StatementError(ValueError):
    """A statement that cannot be issued (already issued, bad correction, ...)."""


def contract_period_of_run(session: Session, run_id: str, contract: Contract):
    """The :class:`~settlement.statements.ContractPeriod` of a stored run."""
    from settlement.statements import ContractPeriod

    run = session.get(SettlementRun, run_id)
    if run is None:
        raise StatementError(f"no reconciliation run {run_id!r}")
    rows = session.scalars(select(SettlementRunClass).where(SettlementRunClass.run_id == run_id))
    summary = [{"cls": r.cls, "count": r.count, "our_excl_vat": r.our_excl_vat, "our_incl_vat": r.our_incl_vat,
                "partner_excl_vat": r.partner_excl_vat, "partner_incl_vat": r.partner_incl_vat} for r in rows]
    return ContractPeriod.from_summary(contract, run.period, summary, run_id)


def latest_runs(session: Session, contract_ids: Iterable[str], period: str) -> dict[str, str]:
    """contract id -> id of its latest run for ``period``."""
    out: dict[str, str] = {}
    q = (select(SettlementRun).where(SettlementRun.contract_id.in_(list(contract_ids)),
                                     SettlementRun.period == period)
         .order_by(SettlementRun.created_at))
    for r in session.scalars(q):
        out[r.contract_id] = r.id
    return out


def issue_statement(session: Session, content: dict[str, Any]) -> str:
    """Store a statement (content, hash, totals) in the caller's transaction; returns its id.

    Identical content issued twice is refused (the hash is unique); a correction must name
    an existing statement of the same kind, parties and period.
    """
    from settlement.statements import canonical_json, content_hash

    digest = content_hash(content)
    existing = session.scalar(select(SettlementStatement).where(SettlementStatement.content_hash == digest))
    if existing is not None:
        raise StatementError(f"this statement was already issued as {existing.id} (same content)")
    if content.get("corrects"):
        old = session.get(SettlementStatement, content["corrects"])
        if old is None:
            raise StatementError(f"statement {content['corrects']} to correct does not exist")
        if (old.kind, old.party, old.counterparty, old.period) != (
                content["kind"], content["party"], content["counterparty"], content["period"]):
            raise StatementError("a correction must have the same kind, parties and period as the statement it corrects")
    sid = str(uuid.uuid4())
    run_ids = [c["run_id"] for c in content["contracts"] if c.get("run_id")]
    session.add(SettlementStatement(
        id=sid, kind=content["kind"], party=content["party"], counterparty=content.get("counterparty"),
        period=content["period"], issued_at=_now(), corrects_id=content.get("corrects"),
        run_ids=json.dumps(run_ids), content_json=canonical_json(content), content_hash=digest,
    ))
    session.flush()
    for t in content["totals"]:
        session.add(SettlementStatementTotal(
            statement_id=sid, currency=t["currency"], party=t["party"], cdr_count=t["cdr_count"],
            net_excl_vat=Decimal(t["net_excl_vat"]), vat=Decimal(t["vat"]),
            total_incl_vat=Decimal(t["total_incl_vat"]), net_position=Decimal(t["net_position"]),
        ))
    session.flush()
    return sid


def load_statement(session: Session, statement_id: str) -> tuple[SettlementStatement, dict[str, Any]]:
    """A stored statement and its content; the content hash is checked on the way out."""
    from settlement.statements import content_hash

    row = session.get(SettlementStatement, statement_id)
    if row is None:
        raise StatementError(f"no statement {statement_id!r}")
    content = json.loads(row.content_json)
    if content_hash(content) != row.content_hash:
        raise StatementError(f"statement {statement_id}: content does not match its hash")
    return row, content


# ---------------------------------------------------------------- queries (for the API)


def list_runs(session: Session, *, contract_id: str | None = None, period: str | None = None,
              party: str | None = None) -> list[SettlementRun]:
    """Reconciliation runs, newest first, optionally for one contract / period / party."""
    q = select(SettlementRun)
    if contract_id:
        q = q.where(SettlementRun.contract_id == contract_id)
    if period:
        q = q.where(SettlementRun.period == period)
    if party:
        q = q.where((SettlementRun.party == party) | (SettlementRun.counterparty == party))
    return list(session.scalars(q.order_by(SettlementRun.created_at.desc())))


def run_classes(session: Session, run_id: str) -> list[SettlementRunClass]:
    """Counts and money per class of a run (every class, in the order of CLASSES)."""
    rows = {r.cls: r for r in session.scalars(select(SettlementRunClass).where(SettlementRunClass.run_id == run_id))}
    return [rows[c] for c in CLASSES if c in rows]


def run_results(session: Session, run_id: str, *, cls: str | None = None, offset: int = 0,
                limit: int = 100) -> tuple[list[SettlementResult], int]:
    """One page of a run's stored lines (optionally of one class) and the total count."""
    from sqlalchemy import func

    q = select(SettlementResult).where(SettlementResult.run_id == run_id)
    if cls:
        q = q.where(SettlementResult.cls == cls)
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    page = session.scalars(q.order_by(SettlementResult.pk).offset(offset).limit(limit))
    return list(page), int(total or 0)


def list_statements(session: Session, *, party: str | None = None, period: str | None = None) -> list[SettlementStatement]:
    """Issued statements, oldest first, where ``party`` is either side (or the hub)."""
    q = select(SettlementStatement)
    if party:
        q = q.where((SettlementStatement.party == party) | (SettlementStatement.counterparty == party))
    if period:
        q = q.where(SettlementStatement.period == period)
    return list(session.scalars(q.order_by(SettlementStatement.issued_at)))


def statement_totals(session: Session, statement_id: str) -> list[SettlementStatementTotal]:
    q = select(SettlementStatementTotal).where(SettlementStatementTotal.statement_id == statement_id)
    return list(session.scalars(q.order_by(SettlementStatementTotal.currency, SettlementStatementTotal.party)))
