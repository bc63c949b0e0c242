"""Credentials module (credentials.asciidoc): registration, update and unregistration.

We are the *Receiver* of the credentials handshake: an admin creates the partner and hands
it ``CREDENTIALS_TOKEN_A`` and our versions URL out of band; the partner (the Sender) POSTs
its credentials (``CREDENTIALS_TOKEN_B`` and its versions URL); we fetch its versions and
version details with token B, then answer with a fresh ``CREDENTIALS_TOKEN_C``. Token A
stops working at that moment.

* POST on a registered partner, and PUT / DELETE on an unregistered one: HTTP 405.
* The partner's versions endpoint unreachable or failing: status 3001; no 2.2.1: 3002;
  no endpoints at all: 3003 (HTTP 200, the request itself was fine: status_codes.asciidoc).
* The roles in the credentials must be among those an admin agreed for this partner; a
  partner cannot claim another party (it would see that party's CDRs).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import (
    OCPI_CLIENT_ERROR,
    OCPI_INVALID_PARAMETERS,
    OCPI_NO_MATCHING_ENDPOINTS,
    OCPI_UNABLE_TO_USE_CLIENT_API,
    OCPI_UNSUPPORTED_VERSION,
    OcpiError,
)
from api.ocpi.common import VERSION, ocpi_response, versions_url
from api.security import (
    OcpiClient,
    business_details_json,
    get_db,
    hash_secret,
    invalidate_auth,
    new_token,
    ocpi_authorization,
    ocpi_client,
)
from storage.api_tables import (
    PARTNER_PENDING,
    PARTNER_REGISTERED,
    PARTNER_UNREGISTERED,
    Partner,
    PartnerRole,
)

router = APIRouter(prefix=f"/ocpi/{VERSION}", tags=["ocpi: credentials"])

Role = Literal["CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"]


class Image(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: Annotated[str, Field(max_length=255)]
    category: str
    type: Annotated[str, Field(max_length=4)]


class BusinessDetails(BaseModel):
    """mod_locations.asciidoc, BusinessDetails class."""

    model_config = ConfigDict(extra="ignore")
    name: Annotated[str, Field(min_length=1, max_length=100)]
    website: Annotated[str | None, Field(max_length=255)] = None
    logo: Image | None = None


class CredentialsRole(BaseModel):
    """credentials.asciidoc, CredentialsRole class."""

    model_config = ConfigDict(extra="ignore")
    role: Role
    business_details: BusinessDetails
    party_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{3}$")]
    country_code: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]


class Credentials(BaseModel):
    """credentials.asciidoc, Credentials object."""

    model_config = ConfigDict(extra="ignore")
    token: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7E]+$")]
    url: Annotated[str, Field(max_length=255, pattern=r"^https?://[\x21-\x7E]+$")]
    roles: Annotated[list[CredentialsRole], Field(min_length=1)]


def our_credentials(request: Request, token: str) -> dict:
    settings = request.app.state.settings
    details = {"name": settings.business_name}
    return {
        "token": token,
        "url": versions_url(request),
        "roles": [
            {"role": "CPO", "business_details": details, "party_id": settings.party_id,
             "country_code": settings.country_code},
            {"role": "EMSP", "business_details": details, "party_id": settings.party_id,
             "country_code": settings.country_code},
        ],
    }


def _registration_error(status_code: int, message: str) -> OcpiError:
    return OcpiError(200, status_code, message)


def _ocpi_get(http: httpx.Client, url: str, token: str, plain: bool, request: Request):
    headers = {
        "Authorization": ocpi_authorization(token, plain),
        "X-Request-ID": request.state.request_id if hasattr(request.state, "request_id") else "",
        "X-Correlation-ID": request.state.correlation_id if hasattr(request.state, "correlation_id") else "",
    }
    try:
        response = http.get(url, headers={k: v for k, v in headers.items() if v})
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise _registration_error(OCPI_UNABLE_TO_USE_CLIENT_API, f"GET {url} failed: {type(exc).__name__}: {exc}")
    if response.status_code != 200:
        raise _registration_error(OCPI_UNABLE_TO_USE_CLIENT_API, f"GET {url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise _registration_error(OCPI_UNABLE_TO_USE_CLIENT_API, f"GET {url} did not answer JSON")
    if not isinstance(body, dict) or body.get("status_code") != 1000:
        status = body.get("status_code") if isinstance(body, dict) else None
        raise _registration_error(OCPI_UNABLE_TO_USE_CLIENT_API, f"GET {url} answered OCPI status {status}")
    return body.get("data")


def fetch_partner_endpoints(request: Request, versions_url_: str, token_b: str, plain: bool) -> list[dict]:
    """GET the partner's versions, pick 2.2.1, GET its details (credentials.asciidoc, Registration)."""
    http: httpx.Client = request.app.state.http_client
    versions = _ocpi_get(http, versions_url_, token_b, plain, request)
    if not isinstance(versions, list):
        raise _registration_error(OCPI_UNABLE_TO_USE_CLIENT_API, "versions endpoint did not return a list")
    details_url = next(
        (v.get("url") for v in versions if isinstance(v, dict) and v.get("version") == VERSION), None
    )
    if not details_url or not isinstance(details_url, str):
        offered = [v.get("version") for v in versions if isinstance(v, dict)]
        raise _registration_error(OCPI_UNSUPPORTED_VERSION, f"partner offers versions {offered}, we need {VERSION}")
    details = _ocpi_get(http, details_url, token_b, plain, request)
    endpoints = details.get("endpoints") if isinstance(details, dict) else None
    if not isinstance(endpoints, list) or not endpoints:
        raise _registration_error(OCPI_NO_MATCHING_ENDPOINTS, "partner's version details list no endpoints")
    return [e for e in endpoints if isinstance(e, dict)]


def _cdrs_receiver(endpoints: list[dict]) -> str | None:
    for e in endpoints:
        if e.get("identifier") == "cdrs" and e.get("role") == "RECEIVER" and isinstance(e.get("url"), str):
            return e["url"]
    return None


def store_registration(request: Request, db: Session, partner: Partner, versions_url_: str, token_b: str,
                       endpoints: list[dict]) -> None:
    """Record a completed registration with ``partner`` (the token we present, its versions URL
    and 2.2.1 endpoints), commit, and drop cached authentications."""
    partner.status = PARTNER_REGISTERED
    partner.versions_url = versions_url_
    partner.token_b = token_b
    partner.version = VERSION
    partner.endpoints_json = json.dumps(endpoints)
    partner.cdrs_receiver_url = _cdrs_receiver(endpoints)
    partner.updated_at = datetime.now(timezone.utc)
    db.commit()
    invalidate_auth(request)


def _check_roles(db: Session, partner: Partner, creds: Credentials) -> list[PartnerRole]:
    agreed = db.execute(select(PartnerRole).where(PartnerRole.partner_id == partner.id)).scalars().all()
    index = {(r.role, r.country_code.upper(), r.party_id.upper()): r for r in agreed}
    matched = []
    for role in creds.roles:
        key = (role.role, role.country_code.upper(), role.party_id.upper())
        if key not in index:
            raise OcpiError(400, OCPI_INVALID_PARAMETERS,
                            f"role {role.role} {key[1]}*{key[2]} was not agreed for this partner; ask us to add it")
        matched.append((index[key], role))
    for row, role in matched:
        row.business_details_json = business_details_json(role.business_details.model_dump(exclude_none=True))
    return [row for row, _ in matched]


def _register(request: Request, db: Session, partner: Partner, creds: Credentials) -> str:
    endpoints = fetch_partner_endpoints(request, creds.url, creds.token, partner.send_plain_token)
    _check_roles(db, partner, creds)
    token_c = new_token()
    partner.token_hash = hash_secret(token_c)
    partner.token_kind = "C"
    store_registration(request, db, partner, creds.url, creds.token, endpoints)
    return token_c


def _partner(db: Session, client: OcpiClient) -> Partner:
    return db.get(Partner, client.partner_id)


@router.get("/credentials", summary="Our credentials object for the calling partner")
def get_credentials(request: Request, client: OcpiClient = Depends(ocpi_client)):
    return ocpi_response(our_credentials(request, request.state.ocpi_token))


@router.post("/credentials", summary="Register: the partner sends its credentials (token B), gets token C")
def post_credentials(creds: Credentials, request: Request, client: OcpiClient = Depends(ocpi_client),
                     db: Session = Depends(get_db)):
    partner = _partner(db, client)
    if partner.status != PARTNER_PENDING:
        raise OcpiError(405, OCPI_CLIENT_ERROR, "Already registered: use PUT to update the credentials",
                        headers={"Allow": "GET, PUT, DELETE"})
    token_c = _register(request, db, partner, creds)
    return ocpi_response(our_credentials(request, token_c))


@router.put("/credentials", summary="Update: new partner credentials, endpoints fetched again, new token C")
def put_credentials(creds: Credentials, request: Request, client: OcpiClient = Depends(ocpi_client),
                    db: Session = Depends(get_db)):
    partner = _partner(db, client)
    if partner.status != PARTNER_REGISTERED:
        raise OcpiError(405, OCPI_CLIENT_ERROR, "Not registered yet: use POST to register",
                        headers={"Allow": "GET, POST"})
    token_c = _register(request, db, partner, creds)
    return ocpi_response(our_credentials(request, token_c))


@router.delete("/credentials", summary="Unregister: the partner's token stops working")
def delete_credentials(request: Request, client: OcpiClient = Depends(ocpi_client), db: Session = Depends(get_db)):
    partner = _partner(db, client)
    if partner.status != PARTNER_REGISTERED:
        raise OcpiError(405, OCPI_CLIENT_ERROR, "Not registered: nothing to unregister",
                        headers={"Allow": "GET, POST"})
    partner.status = PARTNER_UNREGISTERED
    partner.token_hash = None
    partner.updated_at = datetime.now(timezone.utc)
    db.commit()
    invalidate_auth(request)
    return ocpi_response()
