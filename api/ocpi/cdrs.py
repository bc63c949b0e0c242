"""CDRs module (mod_cdrs.asciidoc).

* **Sender** ``GET /ocpi/cpo/2.2.1/cdrs``: our CDRs, paginated, ``last_updated`` in
  [``date_from``, ``date_to``), oldest first (transport_and_format.asciidoc, "Paginated
  Response": the sequence must not change between calls, so the order is
  ``last_updated, pk`` and new CDRs only append). A partner sees only CDRs whose eMSP
  (``cdr_token.country_code`` / ``party_id``) is one of its agreed parties.
* **Receiver** ``POST /ocpi/emsp/2.2.1/cdrs`` and ``GET .../cdrs/{country_code}/{party_id}/{id}``:
  partners (other CPOs) push their CDRs to us for settlement. A partner may only push CDRs
  it owns (``country_code`` / ``party_id`` among its parties). CDRs cannot be replaced: the
  same CDR again is answered 200 with the same ``Location``; the same id with other content
  is a 409.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request, Security
from starlette.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import and_, bindparam, func, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import OCPI_CLIENT_ERROR, OCPI_INVALID_PARAMETERS, OcpiError
from api.jsonutil import RawJSON
from api.ocpi.common import (
    VERSION,
    PageRequest,
    base_url,
    ocpi_response,
    page_request,
    pagination_headers,
    response_routing_headers,
    routing_parties,
)
from api.security import (
    OcpiClient,
    authenticate_ocpi,
    get_db,
    ocpi_auth_header,
    ocpi_registered_client,
    require_token_c,
    run_db_bound,
)
from schemas.ocpi import Cdr
from storage.api_tables import ReceivedCdr
from storage.models import CdrRecord

sender_router = APIRouter(prefix=f"/ocpi/cpo/{VERSION}", tags=["ocpi: cdrs (sender)"])
receiver_router = APIRouter(prefix=f"/ocpi/emsp/{VERSION}", tags=["ocpi: cdrs (receiver)"])


def our_party(request: Request) -> tuple[str, str]:
    s = request.app.state.settings
    return s.country_code.upper(), s.party_id.upper()


def emsp_party_filter(parties: set[tuple[str, str]]):
    """SQL condition: the CDR's eMSP is one of ``parties`` (equality when one, for the index)."""
    if not parties:
        return CdrRecord.pk.is_(None)  # matches nothing
    if len(parties) == 1:
        (cc, pid), = parties
        return and_(CdrRecord.emsp_country_code == cc, CdrRecord.emsp_party_id == pid)
    return tuple_(CdrRecord.emsp_country_code, CdrRecord.emsp_party_id).in_(sorted(parties))


class CountCache:
    """``X-Total-Count`` per (parties, window), valid while the CDR table's version (highest
    pk; CDRs are insert-only) is unchanged, so a crawl does not count 100k rows per page."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple, tuple[Any, int]] = {}

    def get(self, key: tuple, version: Any) -> int | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] == version else None

    def put(self, key: tuple, version: Any, total: int) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (version, total)


_PAGE_STATEMENTS: dict[tuple[bool, bool], Any] = {}


def _page_statement(has_from: bool, has_to: bool):
    """One statement for the table's version (highest pk) and a one-party page: the page's
    keys from the (eMSP, last_updated, pk) index, then only their rows' JSON (deferred join).
    Built once per filter shape (no per-request statement construction); the version comes
    in the same round trip and the same snapshot as the page."""
    key = (has_from, has_to)
    stmt = _PAGE_STATEMENTS.get(key)
    if stmt is None:
        window = (" AND last_updated >= :date_from" if has_from else "") + \
                 (" AND last_updated < :date_to" if has_to else "")
        stmt = text(
            "SELECT v.version, k.pk, c.cdr_json"
            " FROM (SELECT max(pk) AS version FROM cdrs) v"
            " LEFT JOIN (SELECT pk, last_updated AS lu FROM cdrs"
            " WHERE emsp_country_code = :cc AND emsp_party_id = :pid" + window +
            " ORDER BY last_updated, pk LIMIT :limit OFFSET :offset) k ON 1 = 1"
            " LEFT JOIN cdrs c ON c.pk = k.pk"
            " ORDER BY k.lu, k.pk"
        )
        ts = CdrRecord.__table__.c.last_updated.type
        if has_from:
            stmt = stmt.bindparams(bindparam("date_from", type_=ts))
        if has_to:
            stmt = stmt.bindparams(bindparam("date_to", type_=ts))
        _PAGE_STATEMENTS[key] = stmt
    return stmt


def _page_conditions(parties: set[tuple[str, str]], page: PageRequest) -> list:
    """The WHERE of a partner's CDR page: its parties as eMSP, last_updated in [date_from, date_to)."""
    conditions = [emsp_party_filter(parties)]
    if page.date_from is not None:
        conditions.append(CdrRecord.last_updated >= page.date_from)
    if page.date_to is not None:
        conditions.append(CdrRecord.last_updated < page.date_to)
    return conditions


def cdr_page(db: Session, parties: set[tuple[str, str]], page: PageRequest, limit: int,
             counts: CountCache | None = None) -> tuple[list[str], int]:
    """(CDR JSON texts of the page, total matching) for a partner's parties.

    The page is found on the (eMSP, last_updated, pk) index alone and only its rows' JSON is
    read ("deferred join"), so a deep offset does not fetch the JSON of the rows it skips.
    """
    if counts is not None and len(parties) == 1:
        return _one_party_page(db, next(iter(parties)), page, limit, counts)
    conditions = _page_conditions(parties, page)
    total = None
    if counts is not None:
        version = db.execute(select(func.max(CdrRecord.pk))).scalar_one()
        key = (tuple(sorted(parties)), page.date_from, page.date_to)
        total = counts.get(key, version)
    if total is None:
        total = int(db.execute(select(func.count()).select_from(CdrRecord).where(*conditions)).scalar_one())
        if counts is not None:
            counts.put(key, version, total)
    if page.offset >= total:
        return [], total
    keys = (
        select(CdrRecord.pk.label("pk"), CdrRecord.last_updated.label("lu")).where(*conditions)
        .order_by(CdrRecord.last_updated, CdrRecord.pk).offset(page.offset).limit(limit).subquery()
    )
    rows = db.execute(
        select(CdrRecord.cdr_json).join(keys, CdrRecord.pk == keys.c.pk).order_by(keys.c.lu, keys.c.pk)
    ).scalars().all()
    return list(rows), total


def _one_party_page(db: Session, party: tuple[str, str], page: PageRequest, limit: int,
                    counts: CountCache) -> tuple[list[str], int]:
    """The hot path of :func:`cdr_page` (one round trip when ``X-Total-Count`` is cached)."""
    params: dict[str, Any] = {"cc": party[0], "pid": party[1], "limit": limit, "offset": page.offset}
    if page.date_from is not None:
        params["date_from"] = page.date_from
    if page.date_to is not None:
        params["date_to"] = page.date_to
    rows = db.connection().execute(
        _page_statement(page.date_from is not None, page.date_to is not None), params).all()
    version = rows[0][0]
    texts = [row[2] for row in rows if row[1] is not None]
    key = ((party,), page.date_from, page.date_to)
    total = counts.get(key, version)
    if total is None:
        conditions = _page_conditions({party}, page)
        total = int(db.execute(
            select(func.count()).select_from(CdrRecord).where(CdrRecord.pk <= version, *conditions)
        ).scalar_one()) if version is not None else 0
        counts.put(key, version, total)
    return texts, total


def _get_cdrs(request: Request, page: PageRequest, client: OcpiClient, db: Session):
    settings = request.app.state.settings
    parties = routing_parties(request, client, our_party(request))
    limit = page.effective_limit(settings.ocpi_page_limit)
    counts = request.app.state.cdr_count_cache
    texts, total = cdr_page(db, parties, page, limit, counts)
    headers = pagination_headers(request, page, total, limit, len(texts))
    headers.update(response_routing_headers(request, our_party(request), client))
    return ocpi_response([RawJSON(t) for t in texts], headers=headers)


PAGINATED = {
    200: {
        "description": "A page of CDRs in the OCPI envelope",
        "headers": {
            "X-Total-Count": {"schema": {"type": "integer"}, "description": "CDRs matching the query"},
            "X-Limit": {"schema": {"type": "integer"}, "description": "Largest page the server returns"},
            "Link": {"schema": {"type": "string"}, "description": '<next page URL>; rel="next"'},
        },
    }
}


def _serve_cdrs(request: Request, page: PageRequest, authorization: str | None):
    """Authentication and the page in one worker thread and one session (the hot path)."""
    with request.app.state.read_sessionmaker() as db:
        client = require_token_c(authenticate_ocpi(request, db, authorization))
        return _get_cdrs(request, page, client, db)


@sender_router.get("/cdrs", summary="Our CDRs where you are the eMSP (paginated)", responses=PAGINATED)
async def get_cdrs(request: Request, page: PageRequest = Depends(page_request),
                   authorization: str | None = Security(ocpi_auth_header)):
    return await run_db_bound(request, "ocpi_cdrs", _serve_cdrs, request, page, authorization)


@sender_router.get("/cdrs/", include_in_schema=False)
async def get_cdrs_slash(request: Request, page: PageRequest = Depends(page_request),
                         authorization: str | None = Security(ocpi_auth_header)):
    return await run_db_bound(request, "ocpi_cdrs", _serve_cdrs, request, page, authorization)


# ------------------------------------------------------------------------------ receiver

def received_cdr_url(request: Request, country_code: str, party_id: str, cdr_id: str) -> str:
    return (f"{base_url(request)}/ocpi/emsp/{VERSION}/cdrs/"
            f"{quote(country_code, safe='')}/{quote(party_id, safe='')}/{quote(cdr_id, safe='')}")


async def _cdr_from_body(request: Request) -> tuple[Cdr, str]:
    raw = await request.body()
    try:
        cdr = Cdr.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        raise OcpiError(400, OCPI_INVALID_PARAMETERS, f"Invalid CDR: {summary}", data=errors)
    except (ValueError, OverflowError, TypeError) as exc:  # not JSON at all, or values out of range
        raise OcpiError(400, OCPI_INVALID_PARAMETERS, f"Request body is not valid JSON: {exc}")
    return cdr, cdr.model_dump_json()


@receiver_router.post(
    "/cdrs",
    summary="Receive a partner's CDR (for settlement)",
    status_code=201,
    responses={201: {"description": "Stored; Location header points at it"},
               200: {"description": "Already stored with identical content"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Cdr"}}}}},
)
async def post_cdr(request: Request, client: OcpiClient = Depends(ocpi_registered_client)):
    cdr, canonical = await _cdr_from_body(request)
    routing_parties(request, client, our_party(request))
    owner = (cdr.country_code.upper(), cdr.party_id.upper())
    if owner not in client.parties():
        raise OcpiError(403, OCPI_CLIENT_ERROR,
                        f"CDR belongs to {owner[0]}*{owner[1]}, which is not one of your parties")
    return await run_in_threadpool(_store_received, request, client, cdr, canonical)


def _store_received(request: Request, client: OcpiClient, cdr: Cdr, canonical: str):
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    cc, pid = cdr.country_code.upper(), cdr.party_id.upper()
    location = received_cdr_url(request, cc, pid, cdr.id)
    headers = {"Location": location}
    headers.update(response_routing_headers(request, our_party(request), client))
    with request.app.state.sessionmaker() as db:
        existing = db.execute(select(ReceivedCdr).where(
            ReceivedCdr.country_code == cc, ReceivedCdr.party_id == pid, ReceivedCdr.cdr_id == cdr.id
        )).scalar_one_or_none()
        if existing is None:
            db.add(ReceivedCdr(
                partner_id=client.partner_id, country_code=cc, party_id=pid, cdr_id=cdr.id,
                start_date_time=cdr.start_date_time, end_date_time=cdr.end_date_time, currency=cdr.currency,
                total_cost_excl_vat=cdr.total_cost.excl_vat, total_cost_incl_vat=cdr.total_cost.incl_vat,
                total_energy=cdr.total_energy, credit=bool(cdr.credit), credit_reference_id=cdr.credit_reference_id,
                last_updated=cdr.last_updated, payload=canonical, content_hash=digest,
                received_at=datetime.now(timezone.utc),
            ))
            try:
                db.commit()
                return ocpi_response(http_status=201, headers=headers)
            except IntegrityError:  # a concurrent POST of the same CDR won the race
                db.rollback()
                existing = db.execute(select(ReceivedCdr).where(
                    ReceivedCdr.country_code == cc, ReceivedCdr.party_id == pid, ReceivedCdr.cdr_id == cdr.id
                )).scalar_one()
        if existing.content_hash == digest:
            return ocpi_response(http_status=200, status_message="CDR already received", headers=headers)
        raise OcpiError(409, OCPI_CLIENT_ERROR,
                        f"CDR {cc}*{pid}*{cdr.id} was already received with other content; CDRs cannot be "
                        "replaced, send a credit CDR with a new id (mod_cdrs.asciidoc, Credit CDRs)")


@receiver_router.get("/cdrs/{country_code}/{party_id}/{cdr_id}", summary="A CDR you pushed to us")
def get_received_cdr(
    request: Request,
    country_code: Annotated[str, Path(pattern=r"^[A-Za-z]{2}$")],
    party_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9]{3}$")],
    cdr_id: Annotated[str, Path(min_length=1, max_length=39)],
    client: OcpiClient = Depends(ocpi_registered_client),
    db: Session = Depends(get_db),
):
    cc, pid = country_code.upper(), party_id.upper()
    row = None
    if (cc, pid) in client.parties():
        row = db.execute(select(ReceivedCdr.payload).where(
            ReceivedCdr.country_code == cc, ReceivedCdr.party_id == pid, ReceivedCdr.cdr_id == cdr_id
        )).scalar_one_or_none()
    if row is None:  # another party's CDR is "not found" too (transport_and_format.asciidoc)
        raise OcpiError(404, OCPI_CLIENT_ERROR, f"No CDR {cc}*{pid}*{cdr_id} among yours")
    headers = response_routing_headers(request, our_party(request), client)
    return ocpi_response(RawJSON(row), headers=headers)
