"""Admin API (finance API key with role ``admin``): OCPI partners, API keys, the push outbox."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import ProblemError
from api.jsonutil import ExactJSONResponse
from api.ocpi.common import versions_url
from api.security import (
    FinanceUser,
    create_api_key,
    finance_admin,
    get_db,
    hash_secret,
    invalidate_auth,
    new_token,
)
from storage.api_tables import (
    PARTNER_PENDING,
    PARTNER_REGISTERED,
    CdrOutbox,
    Partner,
    PartnerRole,
)

router = APIRouter(prefix="/admin", tags=["admin"])


class PartyRoleIn(BaseModel):
    role: Literal["CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"]
    country_code: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]
    party_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{3}$")]


class PartnerIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    roles: Annotated[list[PartyRoleIn], Field(min_length=1, max_length=50)]
    allow_plain_token: bool = False
    send_plain_token: bool = False


class ApiKeyIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Literal["read", "admin"]


def _partner_view(db: Session, partner: Partner) -> dict:
    roles = db.execute(select(PartnerRole).where(PartnerRole.partner_id == partner.id)).scalars().all()
    pending = db.execute(
        select(func.count()).select_from(CdrOutbox).where(
            CdrOutbox.partner_id == partner.id, CdrOutbox.delivered_at.is_(None), CdrOutbox.dead_at.is_(None)
        )
    ).scalar_one()
    return {
        "id": partner.id,
        "name": partner.name,
        "status": partner.status,
        "roles": [{"role": r.role, "country_code": r.country_code, "party_id": r.party_id} for r in roles],
        "allow_plain_token": partner.allow_plain_token,
        "versions_url": partner.versions_url,
        "version": partner.version,
        "cdrs_receiver_url": partner.cdrs_receiver_url,
        "cdr_pushes_pending": pending,
        "updated_at": partner.updated_at,
    }


@router.post("/partners", status_code=201, summary="Create an OCPI partner; returns its CREDENTIALS_TOKEN_A once")
def create_partner(body: PartnerIn, request: Request, db: Session = Depends(get_db),
                   user: FinanceUser = Depends(finance_admin)):
    now = datetime.now(timezone.utc)
    token_a = new_token()
    partner = Partner(
        name=body.name, status=PARTNER_PENDING, token_hash=hash_secret(token_a), token_kind="A",
        allow_plain_token=body.allow_plain_token, send_plain_token=body.send_plain_token,
        created_at=now, updated_at=now,
    )
    db.add(partner)
    db.flush()
    seen = set()
    for r in body.roles:
        key = (r.role, r.country_code.upper(), r.party_id.upper())
        if key in seen:
            continue
        seen.add(key)
        db.add(PartnerRole(partner_id=partner.id, role=key[0], country_code=key[1], party_id=key[2]))
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise ProblemError(409, "One of these roles already belongs to another partner")
    view = _partner_view(db, partner)
    view["token_a"] = token_a
    view["our_versions_url"] = versions_url(request)
    return ExactJSONResponse(view, status_code=201)


@router.get("/partners", summary="List OCPI partners (no secrets)")
def list_partners(db: Session = Depends(get_db), user: FinanceUser = Depends(finance_admin)):
    partners = db.execute(select(Partner).order_by(Partner.id)).scalars().all()
    return ExactJSONResponse([_partner_view(db, p) for p in partners])


@router.get("/partners/{partner_id}", summary="One OCPI partner")
def get_partner(partner_id: Annotated[int, Path(ge=1, le=2**62)], db: Session = Depends(get_db),
                user: FinanceUser = Depends(finance_admin)):
    partner = db.get(Partner, partner_id)
    if partner is None:
        raise ProblemError(404, f"No partner {partner_id}")
    return ExactJSONResponse(_partner_view(db, partner))


@router.post("/api-keys", status_code=201, summary="Create a finance API key; the key is shown only once")
def post_api_key(body: ApiKeyIn, db: Session = Depends(get_db), user: FinanceUser = Depends(finance_admin)):
    key = create_api_key(db, body.name, body.role)
    db.commit()
    return ExactJSONResponse({"name": body.name, "role": body.role, "key": key}, status_code=201)


class RegisterIn(BaseModel):
    """What the partner gave us out of band: its versions URL and a CREDENTIALS_TOKEN_A."""

    versions_url: Annotated[str, Field(max_length=255, pattern=r"^https?://[\x21-\x7E]+$")]
    token: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7E]+$")]


@router.post("/partners/{partner_id}/register",
             summary="Register with a partner as the credentials Sender (we start the handshake)")
def register_with_partner(partner_id: Annotated[int, Path(ge=1, le=2**62)], body: RegisterIn, request: Request,
                          db: Session = Depends(get_db), user: FinanceUser = Depends(finance_admin)):
    """credentials.asciidoc, Registration, with us as the Sender: GET the partner's versions
    and details with its token A, create token B for it, POST our credentials to its
    credentials endpoint, keep the token C it answers with for our requests to it."""
    import httpx

    from api.errors import OcpiError
    from api.ocpi.credentials import fetch_partner_endpoints, our_credentials, store_registration
    from api.security import ocpi_authorization

    partner = db.get(Partner, partner_id)
    if partner is None:
        raise ProblemError(404, f"No partner {partner_id}")
    if partner.status == PARTNER_REGISTERED:
        raise ProblemError(409, f"Partner {partner_id} is already registered; it can update with PUT")
    try:
        endpoints = fetch_partner_endpoints(request, body.versions_url, body.token, partner.send_plain_token)
    except OcpiError as exc:
        raise ProblemError(422, f"Partner's API not usable (OCPI {exc.status_code}): {exc.message}")
    credentials_url = next((e.get("url") for e in endpoints if e.get("identifier") == "credentials"), None)
    if not isinstance(credentials_url, str):
        raise ProblemError(422, "Partner's version details list no credentials endpoint")
    # Token B: the partner's key to our API. Valid from now on, since the partner may call our
    # versions endpoint with it while it handles our POST.
    token_b = new_token()
    partner.token_hash = hash_secret(token_b)
    partner.token_kind = "C"
    partner.updated_at = datetime.now(timezone.utc)
    db.commit()
    invalidate_auth(request)
    http: httpx.Client = request.app.state.http_client
    auth = ocpi_authorization(body.token, partner.send_plain_token)
    try:
        response = http.post(credentials_url, json=our_credentials(request, token_b),
                             headers={"Authorization": auth})
        answer = response.json()
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise ProblemError(422, f"POST {credentials_url} failed: {type(exc).__name__}: {exc}")
    data = answer.get("data") if isinstance(answer, dict) else None
    if response.status_code != 200 or answer.get("status_code") != 1000 or not isinstance(data, dict) \
            or not isinstance(data.get("token"), str):
        raise ProblemError(422, f"Partner refused our credentials: HTTP {response.status_code}, "
                                f"{str(answer)[:300]}")
    # data["token"] is its token C: what we present from now on
    store_registration(request, db, partner,
                       data.get("url") if isinstance(data.get("url"), str) else body.versions_url,
                       data["token"], endpoints)
    return ExactJSONResponse(_partner_view(db, partner))
