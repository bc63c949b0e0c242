"""Finance API (API key, role ``read`` or ``admin``): CDRs and reports. Errors are RFC 9457
problem details; money is exact (JSON numbers with every digit, never floats)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from urllib.parse import urlencode

from api.errors import ProblemError
from api.jsonutil import ExactJSONResponse, RawJSON, format_decimal
from api.reports import ReportCache, ReportQuery, csv_columns
from api.security import (
    FinanceUser,
    api_key_header,
    auth_cache,
    authenticate_finance,
    bearer_header,
    finance_user,
    run_db_bound,
    get_db,
)
from storage.models import CdrRecord

router = APIRouter(tags=["finance"])

PARTY_PATTERN = r"^[A-Za-z]{2}[*-]?[A-Za-z0-9]{3}$"
MAX_PAGE = 1000


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except OverflowError:
        raise ProblemError(400, f"{value.isoformat()} is out of the representable range")


def _party(value: str) -> tuple[str, str]:
    v = value.replace("*", "").replace("-", "").upper()
    return v[:2], v[2:]


@router.get(
    "/cdrs",
    summary="Issued CDRs, filtered by start time and party, paginated",
    responses={200: {"description": "A page of OCPI 2.2.1 CDRs (exact money)"}},
)
def list_cdrs(
    request: Request,
    date_from: Annotated[datetime | None, Query(description="start_date_time >= this (UTC if no offset)")] = None,
    date_to: Annotated[datetime | None, Query(description="start_date_time < this (UTC if no offset)")] = None,
    party: Annotated[str | None, Query(pattern=PARTY_PATTERN,
                                       description="A party, e.g. NL*ABC: CDRs where it is the CPO or the eMSP")] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    offset: Annotated[int, Query(ge=0, le=2_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    user: FinanceUser = Depends(finance_user),
    db: Session = Depends(get_db),
):
    date_from, date_to = _utc(date_from), _utc(date_to)
    if date_from and date_to and date_to < date_from:
        raise ProblemError(400, "date_to must not be before date_from")
    conditions = []
    if date_from is not None:
        conditions.append(CdrRecord.start_date_time >= date_from)
    if date_to is not None:
        conditions.append(CdrRecord.start_date_time < date_to)
    if party:
        cc, pid = _party(party)
        conditions.append(or_(
            and_(CdrRecord.country_code == cc, CdrRecord.party_id == pid),
            and_(CdrRecord.emsp_country_code == cc, CdrRecord.emsp_party_id == pid),
        ))
    if currency:
        conditions.append(CdrRecord.currency == currency.upper())
    total = db.execute(select(func.count()).select_from(CdrRecord).where(*conditions)).scalar_one()
    texts = db.execute(
        select(CdrRecord.cdr_json).where(*conditions)
        .order_by(CdrRecord.start_date_time, CdrRecord.pk).offset(offset).limit(limit)
    ).scalars().all()
    body = {"total": int(total), "offset": offset, "limit": limit, "items": [RawJSON(t) for t in texts]}
    headers = {"X-Total-Count": str(total)}
    if offset + len(texts) < total and texts:
        params = {k: v for k, v in request.query_params.items() if k not in ("offset", "limit")}
        params.update(offset=str(offset + len(texts)), limit=str(limit))
        next_url = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(params)}"
        body["next"] = next_url
        headers["Link"] = f'<{next_url}>; rel="next"'
    return ExactJSONResponse(body, headers=headers)


def _report_cache(request: Request) -> ReportCache:
    cache = request.app.state.report_cache
    if cache is None:
        cache = request.app.state.report_cache = ReportCache(request.app.state.settings.report_cache_ttl_s)
    return cache


def _csv_cell(value) -> str:
    from decimal import Decimal

    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if hasattr(value, "isoformat"):  # dates and times (settlement lines); report rows hold none
        return value.isoformat()
    return str(value)


def _stream_csv(columns, rows, value=dict.get, every: int = 500):
    """CSV text in chunks of ``every`` rows (RFC 4180 line ends; money exact, empty = null).
    A row's cell for column ``c`` is ``value(row, c)``: dict rows by default, ``getattr`` for ORM rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for i, row in enumerate(rows, 1):
        writer.writerow([_csv_cell(value(row, c)) for c in columns])
        if i % every == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get(
    "/reports/revenue",
    summary="Revenue, energy, sessions and average price per kWh, per currency, by period and dimension",
    responses={200: {"description": "JSON report, or CSV with format=csv / Accept: text/csv",
                     "content": {"application/json": {}, "text/csv": {}}}},
)
async def revenue_report(
    request: Request,
    period: Annotated[Literal["day", "week", "month", "total"], Query(description="Bucket size in tz")] = "month",
    by: Annotated[list[Literal["location", "evse", "party", "tariff"]] | None,
                  Query(max_length=4, description="Break down by these dimensions")] = None,
    tz: Annotated[str, Query(min_length=1, max_length=64, description="IANA time zone, e.g. Europe/Amsterdam")] = "UTC",
    date_from: Annotated[date | None, Query(description="First local date (inclusive)")] = None,
    date_to: Annotated[date | None, Query(description="Last local date (exclusive)")] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="json (default) or csv")] = None,
    api_key: str | None = Security(api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Security(bearer_header),
):
    return await run_db_bound(request, "reports", _serve_report, request, period, by, tz, date_from, date_to,
                              currency, format, api_key, bearer)


def _serve_report(request, period, by, tz, date_from, date_to, currency, format, api_key, bearer):
    """Authentication and the (cached) report in one worker thread and one session."""
    with request.app.state.read_sessionmaker() as db:
        authenticate_finance(db, api_key, bearer, auth_cache(request))
        return _report(request, db, period, by, tz, date_from, date_to, currency, format)


def _report(request, db, period, by, tz, date_from, date_to, currency, format):
    try:
        ZoneInfo(tz)
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError, OSError for odd keys
        raise ProblemError(400, f"Unknown time zone {tz!r}; use an IANA name such as Europe/Amsterdam")
    if date_from and date_to and date_to <= date_from:
        raise ProblemError(400, "date_to must be after date_from")
    for d in (date_from, date_to):
        if d is not None and not (date(1970, 1, 2) <= d <= date(9999, 12, 30)):
            raise ProblemError(400, f"date {d} out of range")
    dims = tuple(dict.fromkeys(by or ()))
    q = ReportQuery(period=period, by=dims, tz=tz, date_from=date_from, date_to=date_to,
                    currency=currency.upper() if currency else None)
    try:
        report, rendered = _report_cache(request).get(db, q)
    except DBAPIError as exc:  # a zone Python knows but the database server does not
        if "time zone" not in str(exc.orig):
            raise
        raise ProblemError(400, f"Time zone {tz!r} is not known to the database server")
    want_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    if want_csv:
        filename = f"revenue_{period}{'_by_' + '_'.join(dims) if dims else ''}.csv"
        return StreamingResponse(
            _stream_csv(csv_columns(q), report["rows"]), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return Response(content=rendered, media_type="application/json")
