"""Authentication: OCPI credentials tokens for partners, API keys for finance users.

OCPI (transport_and_format.asciidoc, "Authorization header"): ``Authorization: Token <b64>``
where ``<b64>`` is the Base64 (RFC 4648 section 4) of the UTF-8 credentials token. Many 2.1.1 /
2.2 implementations send the token without encoding; we accept that only for partners whose
``allow_plain_token`` flag an admin has set. A missing or unknown token is HTTP 401. A
``CREDENTIALS_TOKEN_A`` (registration not finished) is accepted only by the versions and
credentials modules; everywhere else it is a 401 too.

Finance: ``X-API-Key: <key>`` (or ``Authorization: Bearer <key>``); role ``read`` may read
reports and CDRs, role ``admin`` may also manage partners and keys.

Both kinds of secret are stored as SHA-256 digests only (see ``storage.api_tables``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import OCPI_CLIENT_ERROR, OcpiError, ProblemError
from storage.api_tables import (
    PARTNER_UNREGISTERED,
    ApiKey,
    Partner,
    PartnerRole,
)

ROLE_READ = "read"
ROLE_ADMIN = "admin"
FINANCE_ROLES = (ROLE_READ, ROLE_ADMIN)


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a token or key (what we store and look up)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh credentials token / API key: 256 random bits, printable ASCII, 43 characters."""
    return secrets.token_urlsafe(32)


def encode_ocpi_token(token: str) -> str:
    """The ``Authorization`` header value for an OCPI credentials token (Base64 of UTF-8)."""
    return "Token " + base64.b64encode(token.encode("utf-8")).decode("ascii")


def ocpi_authorization(token: str, plain: bool) -> str:
    """The ``Authorization`` header value we send a partner: its token as is if it wants it
    plain (``send_plain_token``), else Base64 encoded."""
    return f"Token {token}" if plain else encode_ocpi_token(token)


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One SQLAlchemy session per request. GET requests only read, so they get an autocommit
    session (``app.state.read_sessionmaker``): no BEGIN / ROLLBACK round trips.

    ``async`` only so FastAPI does not hop to a worker thread to create it (no I/O happens
    here); the session is used by the sync dependencies and endpoints in their threads."""
    state = request.app.state
    maker = state.read_sessionmaker if request.method in ("GET", "HEAD") else state.sessionmaker
    with maker() as session:
        yield session


class AuthCache:
    """Principals of valid secrets, keyed by the secret's SHA-256 (never the secret itself),
    for ``ttl_s`` seconds. Only successful look-ups are kept (an unknown secret is looked up
    every time, so a new key or partner works at once). :meth:`invalidate` (after a change to
    keys or partners is committed) empties it; a look-up that started before an invalidation
    does not store its (possibly old) answer, thanks to the generation counter."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, str], tuple[float, object]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def generation(self) -> int:
        return self._generation

    def get(self, kind: str, digest: str):
        if self.ttl_s <= 0:
            return None
        entry = self._entries.get((kind, digest))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, kind: str, digest: str, value: object, generation: int) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= 10_000:
                self._entries.clear()
            self._entries[(kind, digest)] = (time.monotonic() + self.ttl_s, value)

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


def auth_cache(request: Request) -> AuthCache | None:
    return getattr(request.app.state, "auth_cache", None)


def invalidate_auth(request: Request) -> None:
    """Call after committing a change to API keys, partners or their roles."""
    cache = auth_cache(request)
    if cache is not None:
        cache.invalidate()


# ----------------------------------------------------------------------------------- finance

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="FinanceApiKey",
    description="Finance API key (role read or admin).",
)
_bearer = HTTPBearer(auto_error=False, scheme_name="FinanceBearer", description="Finance API key as a bearer token.")


@dataclass(frozen=True)
class FinanceUser:
    key_id: int
    name: str
    role: str


api_key_header = _api_key_header
bearer_header = _bearer


def finance_user(
    request: Request,
    db: Session = Depends(get_db),
    api_key: str | None = Security(_api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
) -> FinanceUser:
    """Any valid, unrevoked finance API key (roles read and admin)."""
    return authenticate_finance(db, api_key, bearer, auth_cache(request))


def authenticate_finance(db: Session, api_key: str | None,
                         bearer: HTTPAuthorizationCredentials | None,
                         cache: AuthCache | None = None) -> FinanceUser:
    key = api_key or (bearer.credentials if bearer else None)
    challenge = {"WWW-Authenticate": 'Bearer realm="chargeledger"'}
    if not key:
        raise ProblemError(401, "Missing API key: send it in the X-API-Key header", headers=challenge)
    digest = hash_secret(key)
    if cache is not None:
        user = cache.get("finance", digest)
        if user is not None:
            return user
        generation = cache.generation()
    row = db.execute(select(ApiKey).where(ApiKey.key_hash == digest)).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise ProblemError(401, "Unknown or revoked API key", headers=challenge)
    user = FinanceUser(key_id=row.id, name=row.name, role=row.role)
    if cache is not None:
        cache.put("finance", digest, user, generation)
    return user


async def finance_admin(user: FinanceUser = Depends(finance_user)) -> FinanceUser:
    """A finance API key with the admin role."""
    if user.role != ROLE_ADMIN:
        raise ProblemError(403, f"API key {user.name!r} has role {user.role!r}; this needs role 'admin'")
    return user


def create_api_key(db: Session, name: str, role: str) -> str:
    """Store a new API key (hashed) and return the key itself; it is shown only once."""
    if role not in FINANCE_ROLES:
        raise ValueError(f"role must be one of {FINANCE_ROLES}")
    key = new_token()
    db.add(ApiKey(name=name, key_hash=hash_secret(key), role=role, created_at=datetime.now(timezone.utc)))
    db.flush()
    return key


# -------------------------------------------------------------------------------------- OCPI

_ocpi_auth_header = APIKeyHeader(
    name="Authorization", auto_error=False, scheme_name="OcpiToken",
    description="OCPI credentials token: 'Token <Base64 of the token>'.",
)


@dataclass(frozen=True)
class PartyRole:
    role: str
    country_code: str
    party_id: str


@dataclass(frozen=True)
class OcpiClient:
    """The authenticated OCPI partner of a request."""

    partner_id: int
    name: str
    token_kind: str
    status: str
    roles: tuple[PartyRole, ...] = field(default_factory=tuple)

    def parties(self) -> set[tuple[str, str]]:
        """(country_code, party_id) pairs the partner acts as, upper-cased (CiString)."""
        return {(r.country_code.upper(), r.party_id.upper()) for r in self.roles}


def token_candidates(header_value: str | None) -> list[tuple[str, bool]]:
    """Possible credentials tokens in an ``Authorization`` value: ``[(token, was_base64)]``.

    The Base64-decoded reading comes first; the literal reading second (used only for
    partners that allow non-encoded tokens).
    """
    if not header_value:
        return []
    scheme, _, value = header_value.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return []
    out: list[tuple[str, bool]] = []
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8").strip()
        if decoded and all(0x21 <= ord(c) <= 0x7E for c in decoded):
            out.append((decoded, True))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    out.append((value, False))
    return out


def _unauthorized(message: str) -> OcpiError:
    return OcpiError(401, OCPI_CLIENT_ERROR, message, headers={"WWW-Authenticate": "Token"})


ocpi_auth_header = _ocpi_auth_header


def ocpi_client(
    request: Request,
    db: Session = Depends(get_db),
    authorization: str | None = Security(_ocpi_auth_header),
) -> OcpiClient:
    """The partner behind the credentials token (token A or C)."""
    return authenticate_ocpi(request, db, authorization)


def authenticate_ocpi(request: Request, db: Session, authorization: str | None) -> OcpiClient:
    if not authorization:
        raise _unauthorized("Missing Authorization header: send 'Authorization: Token <Base64 of your token>'")
    candidates = token_candidates(authorization)
    if not candidates:
        raise _unauthorized("Authorization header must be 'Token <Base64 of your credentials token>'")
    cache = auth_cache(request)
    for token, was_base64 in candidates:
        digest = hash_secret(token)
        cached = cache.get("ocpi", digest) if cache is not None else None
        if cached is not None:
            client, allow_plain = cached
            if not was_base64 and not allow_plain:
                raise _unauthorized(
                    "Credentials token must be Base64-encoded in the Authorization header (OCPI 2.2.1)"
                )
            request.state.ocpi_client = client
            request.state.ocpi_token = token
            return client
        generation = cache.generation() if cache is not None else 0
        rows = db.execute(
            select(Partner.id, Partner.name, Partner.status, Partner.token_kind, Partner.allow_plain_token,
                   PartnerRole.role, PartnerRole.country_code, PartnerRole.party_id)
            .outerjoin(PartnerRole, PartnerRole.partner_id == Partner.id)
            .where(Partner.token_hash == digest)
            .order_by(PartnerRole.id)
        ).all()
        if not rows or rows[0].status == PARTNER_UNREGISTERED:
            continue
        first = rows[0]
        if not was_base64 and not first.allow_plain_token:
            raise _unauthorized(
                "Credentials token must be Base64-encoded in the Authorization header (OCPI 2.2.1)"
            )
        client = OcpiClient(
            partner_id=first.id,
            name=first.name,
            token_kind=first.token_kind,
            status=first.status,
            roles=tuple(PartyRole(r.role, r.country_code, r.party_id) for r in rows if r.role is not None),
        )
        if cache is not None:
            cache.put("ocpi", digest, (client, bool(first.allow_plain_token)), generation)
        request.state.ocpi_client = client
        request.state.ocpi_token = token
        return client
    raise _unauthorized("Unknown credentials token")


async def ocpi_registered_client(client: OcpiClient = Depends(ocpi_client)) -> OcpiClient:
    """A partner that finished registration (token C); token A is refused outside
    versions/credentials (transport_and_format.asciidoc, "Authorization header")."""
    return require_token_c(client)


def require_token_c(client: OcpiClient) -> OcpiClient:
    if client.token_kind != "C":
        raise _unauthorized("CREDENTIALS_TOKEN_A is only valid for the versions and credentials modules")
    return client


def business_details_json(details: dict | None) -> str | None:
    return json.dumps(details, sort_keys=True) if details is not None else None


async def run_db_bound(request: Request, lane: str, fn, *args):
    """``fn(*args)`` in a worker thread, at most ``DB_THREADS`` at once per process and lane
    (the hot read endpoints: "reports", "ocpi_cdrs"; a lane each so that a slow report
    computation does not hold up CDR pages). Measured at 50 clients on 2 cores: with the
    default 40 threads the threads queue for the GIL (p99 x3) and the engine opens and closes
    overflow PostgreSQL connections (about one new backend per 10 requests); 4 per lane keeps
    both below the pool's 10 connections."""
    import asyncio

    import anyio.to_thread

    loop = asyncio.get_running_loop()
    state = request.app.state
    limiters = getattr(state, "db_limiters", None)
    if limiters is None or limiters[0] is not loop:
        limiters = state.db_limiters = (loop, {})
    limiter = limiters[1].get(lane)
    if limiter is None:
        limiter = limiters[1][lane] = anyio.CapacityLimiter(DB_THREADS)
    return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=limiter)


#: Worker threads per lane for the hot read endpoints (see :func:`run_db_bound`).
DB_THREADS = 4
