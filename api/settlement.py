"""Settlement reports for finance (API key, role read or admin): reconciliation runs with
their per-class counts and money, the runs' lines (JSON or streamed CSV), and issued
settlement statements (content exactly as issued, hash checked). Read-only: runs and
statements are made by ``chargeledger reconcile`` / ``chargeledger statement``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ProblemError
from api.finance import _stream_csv, _utc
from api.jsonutil import ExactJSONResponse, RawJSON
from api.security import FinanceUser, finance_user, get_db
from settlement import repository as repo
from settlement.reconcile import CLASSES
from storage.api_tables import ReceivedCdr
from storage.settlement_tables import SettlementResult, SettlementRun

router = APIRouter(prefix="/settlement", tags=["finance: settlement"])

PARTY = r"^[A-Za-z]{2}\*[A-Za-z0-9]{3}$"
PERIOD = r"^[0-9]{4}-[0-9]{2}$"
RESULT_COLUMNS = (
    "cls", "side", "match", "our_cdr_id", "partner_cdr_id", "invoice_id", "invoiced_cdr_id", "cpo", "emsp",
    "evse_id", "start_date_time", "our_cost_excl", "our_cost_incl", "partner_cost_excl", "partner_cost_incl",
    "our_energy", "partner_energy", "our_duration_s", "partner_duration_s", "note", "reprice_excl",
    "reprice_incl", "reprice_agrees_with", "reprice_detail",
)


def _run_view(db: Session, run: SettlementRun) -> dict:
    return {
        "id": run.id, "contract_id": run.contract_id, "party": run.party, "counterparty": run.counterparty,
        "period": run.period, "currency": run.currency, "created_at": run.created_at,
        "our_count": run.our_count, "partner_count": run.partner_count,
        "invoice_line_count": run.invoice_line_count, "matched_stored": run.matched_stored,
        "classes": [
            {"cls": c.cls, "count": c.count, "our_excl_vat": c.our_excl_vat, "our_incl_vat": c.our_incl_vat,
             "partner_excl_vat": c.partner_excl_vat, "partner_incl_vat": c.partner_incl_vat}
            for c in repo.run_classes(db, run.id)
        ],
    }


@router.get("/runs", summary="Reconciliation runs, newest first")
def list_runs(
    contract_id: Annotated[str | None, Query(max_length=64)] = None,
    period: Annotated[str | None, Query(pattern=PERIOD, description="YYYY-MM")] = None,
    party: Annotated[str | None, Query(pattern=PARTY, description="CC*PID on either side")] = None,
    user: FinanceUser = Depends(finance_user),
    db: Session = Depends(get_db),
):
    runs = repo.list_runs(db, contract_id=contract_id, period=period, party=party.upper() if party else None)
    return ExactJSONResponse([_run_view(db, r) for r in runs])


def _get_run(db: Session, run_id: str) -> SettlementRun:
    run = db.get(SettlementRun, run_id)
    if run is None:
        raise ProblemError(404, f"No reconciliation run {run_id}")
    return run


@router.get("/runs/{run_id}", summary="One run with its per-class counts and money")
def get_run(run_id: Annotated[str, Path(max_length=36)], user: FinanceUser = Depends(finance_user),
            db: Session = Depends(get_db)):
    return ExactJSONResponse(_run_view(db, _get_run(db, run_id)))


@router.get("/runs/{run_id}/results", summary="A run's lines (JSON page, or the whole run as streamed CSV)")
def run_results(
    run_id: Annotated[str, Path(max_length=36)],
    cls: Annotated[Literal[CLASSES] | None, Query(description="Only this class")] = None,  # type: ignore[valid-type]
    offset: Annotated[int, Query(ge=0, le=2_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    user: FinanceUser = Depends(finance_user),
    db: Session = Depends(get_db),
):
    _get_run(db, run_id)
    if format == "csv":
        engine = db.get_bind()

        def stream():
            q = select(SettlementResult).where(SettlementResult.run_id == run_id)
            if cls:
                q = q.where(SettlementResult.cls == cls)
            with Session(engine) as s:
                rows = s.scalars(q.order_by(SettlementResult.pk).execution_options(yield_per=2000))
                yield from _stream_csv(RESULT_COLUMNS, rows, value=getattr, every=1000)

        return StreamingResponse(stream(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="run_{run_id}.csv"'})
    rows, total = repo.run_results(db, run_id, cls=cls, offset=offset, limit=limit)
    items = [{c: getattr(r, c) for c in RESULT_COLUMNS} for r in rows]
    return ExactJSONResponse({"total": total, "offset": offset, "limit": limit, "items": items},
                             headers={"X-Total-Count": str(total)})


def _statement_view(db: Session, st) -> dict:
    return {
        "id": st.id, "kind": st.kind, "party": st.party, "counterparty": st.counterparty, "period": st.period,
        "issued_at": st.issued_at, "corrects_id": st.corrects_id, "content_hash": st.content_hash,
        "totals": [
            {"currency": t.currency, "party": t.party, "cdr_count": t.cdr_count, "net_excl_vat": t.net_excl_vat,
             "vat": t.vat, "total_incl_vat": t.total_incl_vat, "net_position": t.net_position}
            for t in repo.statement_totals(db, st.id)
        ],
    }


@router.get("/statements", summary="Issued settlement statements, oldest first")
def list_statements(
    party: Annotated[str | None, Query(pattern=PARTY)] = None,
    period: Annotated[str | None, Query(pattern=PERIOD)] = None,
    user: FinanceUser = Depends(finance_user),
    db: Session = Depends(get_db),
):
    statements = repo.list_statements(db, party=party.upper() if party else None, period=period)
    return ExactJSONResponse([_statement_view(db, s) for s in statements])


@router.get("/statements/{statement_id}", summary="One statement: its content exactly as issued, and totals")
def get_statement(statement_id: Annotated[str, Path(max_length=36)], user: FinanceUser = Depends(finance_user),
                  db: Session = Depends(get_db)):
    try:
        row, _ = repo.load_statement(db, statement_id)
    except repo.StatementError as exc:
        message = str(exc)
        raise ProblemError(404 if message.startswith("no statement") else 409, message)
    view = _statement_view(db, row)
    view["content"] = RawJSON(row.content_json)
    return ExactJSONResponse(view)


@router.get(
    "/received-cdrs",
    summary="CDRs partners pushed to our OCPI CDRs receiver, as a JSON array (input for `chargeledger reconcile`)",
    responses={200: {"description": "OCPI CDRs exactly as received (streamed JSON array)",
                     "content": {"application/json": {}}}},
)
def received_cdrs(
    party: Annotated[str, Query(pattern=PARTY, description="The CPO that issued them, CC*PID")],
    date_from: Annotated[datetime | None, Query(description="start_date_time >= this (UTC if no offset)")] = None,
    date_to: Annotated[datetime | None, Query(description="start_date_time < this (UTC if no offset)")] = None,
    user: FinanceUser = Depends(finance_user),
    db: Session = Depends(get_db),
):
    """Save the answer as ``partner.json`` and run ``chargeledger reconcile --partner-cdrs
    partner.json ...``: settlement reads OCPI CDR arrays."""
    cc, pid = party.upper().split("*")
    conditions = [ReceivedCdr.country_code == cc, ReceivedCdr.party_id == pid]
    for value, op in ((date_from, "ge"), (date_to, "lt")):
        if value is None:
            continue
        value = _utc(value)
        conditions.append(ReceivedCdr.start_date_time >= value if op == "ge" else ReceivedCdr.start_date_time < value)
    engine = db.get_bind()
    stmt = select(ReceivedCdr.payload).where(*conditions).order_by(ReceivedCdr.start_date_time, ReceivedCdr.cdr_id)

    def stream():
        yield "["
        with Session(engine) as s:
            for i, payload in enumerate(s.scalars(stmt.execution_options(yield_per=2000))):
                yield ("," if i else "") + "\n" + payload
        yield "\n]\n"

    return StreamingResponse(stream(), media_type="application/json",
                             headers={"Content-Disposition": f'attachment; filename="received_{cc}{pid}.json"'})
