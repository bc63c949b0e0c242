"""Tariffs module, Sender interface (mod_tariffs.asciidoc): ``GET /ocpi/cpo/2.2.1/tariffs``.

The current version of each tariff (the row with the latest ``last_updated`` per
country_code/party_id/id), filtered on that ``last_updated`` and paginated like CDRs.

Visibility: tariffs owned by us (our country_code/party_id: what we charge every eMSP) and
tariffs owned by one of the partner's own parties. Tariffs of other CPOs stay hidden.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.orm import Session

from api.jsonutil import RawJSON
from api.ocpi.cdrs import PAGINATED, our_party
from api.ocpi.common import (
    VERSION,
    PageRequest,
    ocpi_response,
    page_request,
    pagination_headers,
    response_routing_headers,
    routing_parties,
)
from api.security import OcpiClient, get_db, ocpi_registered_client
from storage.models import TariffRecord

router = APIRouter(prefix=f"/ocpi/cpo/{VERSION}", tags=["ocpi: tariffs (sender)"])


def tariff_page(db: Session, owners: set[tuple[str, str]], page: PageRequest, limit: int) -> tuple[list[str], int]:
    latest = (
        select(TariffRecord.country_code, TariffRecord.party_id, TariffRecord.id,
               func.max(TariffRecord.last_updated).label("latest"))
        .where(tuple_(TariffRecord.country_code, TariffRecord.party_id).in_(sorted(owners)))
        .group_by(TariffRecord.country_code, TariffRecord.party_id, TariffRecord.id)
        .subquery()
    )
    joined = and_(
        TariffRecord.country_code == latest.c.country_code,
        TariffRecord.party_id == latest.c.party_id,
        TariffRecord.id == latest.c.id,
        TariffRecord.last_updated == latest.c.latest,
    )
    conditions = []
    if page.date_from is not None:
        conditions.append(TariffRecord.last_updated >= page.date_from)
    if page.date_to is not None:
        conditions.append(TariffRecord.last_updated < page.date_to)
    base = select(TariffRecord.tariff_json).join(latest, joined).where(*conditions)
    total = db.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = db.execute(
        base.order_by(TariffRecord.last_updated, TariffRecord.pk).offset(page.offset).limit(limit)
    ).scalars().all()
    return list(rows), int(total)


def _get_tariffs(request: Request, page: PageRequest, client: OcpiClient, db: Session):
    settings = request.app.state.settings
    ours = our_party(request)
    owners = routing_parties(request, client, ours) | {ours}
    limit = page.effective_limit(settings.ocpi_page_limit)
    texts, total = tariff_page(db, owners, page, limit)
    headers = pagination_headers(request, page, total, limit, len(texts))
    headers.update(response_routing_headers(request, ours, client))
    return ocpi_response([RawJSON(t) for t in texts], headers=headers)


@router.get("/tariffs", summary="Current tariffs (ours and your own)", responses=PAGINATED)
def get_tariffs(request: Request, page: PageRequest = Depends(page_request),
                client: OcpiClient = Depends(ocpi_registered_client), db: Session = Depends(get_db)):
    return _get_tariffs(request, page, client, db)


@router.get("/tariffs/", include_in_schema=False)
def get_tariffs_slash(request: Request, page: PageRequest = Depends(page_request),
                      client: OcpiClient = Depends(ocpi_registered_client), db: Session = Depends(get_db)):
    return _get_tariffs(request, page, client, db)
