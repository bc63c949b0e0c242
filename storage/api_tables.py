"""Tables of the API concern: OCPI partners and their roles, finance API keys, the CDR push
outbox, and CDRs received from partners (OCPI CDRs receiver interface).

Secrets that *others* present to us (OCPI credentials tokens A and C, finance API keys) are
stored only as SHA-256 digests: they are long random strings we generate ourselves
(>= 256 bits), so a fast unsalted digest is enough to make a leaked table useless, and it
lets us look a token up by its digest. The token *we* present to a partner (their
``CREDENTIALS_TOKEN_B``) must be sent in clear on every request, so it is stored as given.

Migration: ``migrations/versions/0300_api.py`` (branch ``api``).
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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base
from storage.types import BigIntPK as BigId
from storage.types import Money, UtcDateTime

#: Partner lifecycle (OCPI 2.2.1 credentials module, "Registration").
PARTNER_PENDING = "PENDING"  # created by an admin, holds CREDENTIALS_TOKEN_A
PARTNER_REGISTERED = "REGISTERED"  # handshake done, holds CREDENTIALS_TOKEN_C
PARTNER_UNREGISTERED = "UNREGISTERED"  # DELETE on credentials; no token accepted any more


class Partner(Base):
    """A platform connected to us over OCPI (an eMSP, another CPO, a hub)."""

    __tablename__ = "ocpi_partners"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=PARTNER_PENDING)
    #: SHA-256 hex of the token the partner uses towards us (A while pending, then C).
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: "A" (only versions + credentials are allowed) or "C" (every module).
    token_kind: Mapped[str] = mapped_column(String(1), default="A")
    #: Accept the token without Base64 encoding (OCPI 2.1.1 / 2.2 habit); off by default.
    allow_plain_token: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The partner's versions endpoint and the token (B) we present to it.
    versions_url: Mapped[str | None] = mapped_column(Text)
    token_b: Mapped[str | None] = mapped_column(Text)
    #: Send the token to the partner without Base64 (if the partner needs that).
    send_plain_token: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[str | None] = mapped_column(String(10))
    #: JSON list of the partner's endpoints for ``version`` (from its version details).
    endpoints_json: Mapped[str | None] = mapped_column(Text)
    #: The partner's CDRs receiver endpoint, where we push our CDRs (None: it pulls).
    cdrs_receiver_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PartnerRole(Base):
    """A (country_code, party_id, role) the partner may act as.

    Declared by an admin when the partner is created; the credentials the partner sends
    must stay within them (otherwise it could claim someone else's party and read their
    CDRs). Business details come from the partner's credentials object.
    """

    __tablename__ = "ocpi_partner_roles"
    __table_args__ = (
        UniqueConstraint("country_code", "party_id", "role"),
        Index("ix_ocpi_partner_roles_partner", "partner_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("ocpi_partners.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(10))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    business_details_json: Mapped[str | None] = mapped_column(Text)


class ApiKey(Base):
    """A finance API key: role ``read`` (reports, CDRs) or ``admin`` (also partners, keys)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CdrOutbox(Base):
    """One CDR to POST to one partner's CDRs receiver (transactional outbox).

    Written in the same transaction as the CDR row (``storage.outbox.enqueue_cdr_push``);
    delivered by ``api.pusher`` in ``id`` order per partner. The unique constraint makes
    enqueueing idempotent by CDR id.
    """

    __tablename__ = "cdr_outbox"
    __table_args__ = (
        UniqueConstraint("partner_id", "cdr_country_code", "cdr_party_id", "cdr_id"),
        Index("ix_cdr_outbox_pending", "partner_id", "delivered_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("ocpi_partners.id", ondelete="CASCADE"))
    cdr_country_code: Mapped[str] = mapped_column(String(2))
    cdr_party_id: Mapped[str] = mapped_column(String(3))
    cdr_id: Mapped[str] = mapped_column(String(39))
    #: The OCPI CDR JSON exactly as it is to be sent (Decimals as exact JSON numbers).
    payload: Mapped[str] = mapped_column(Text)
    enqueued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Given up after too many attempts (the partner can still pull the CDR).
    dead_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The ``Location`` the partner returned for the created CDR.
    location: Mapped[str | None] = mapped_column(Text)


class ReceivedCdr(Base):
    """A CDR a partner (another CPO) pushed to our CDRs receiver; input for settlement."""

    __tablename__ = "ocpi_received_cdrs"
    __table_args__ = (
        UniqueConstraint("country_code", "party_id", "cdr_id"),
        Index("ix_ocpi_received_cdrs_partner_last_updated", "partner_id", "last_updated"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("ocpi_partners.id", ondelete="CASCADE"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    cdr_id: Mapped[str] = mapped_column(String(39))
    start_date_time: Mapped[datetime] = mapped_column(UtcDateTime)
    end_date_time: Mapped[datetime] = mapped_column(UtcDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    total_cost_excl_vat: Mapped[Decimal] = mapped_column(Money)
    total_cost_incl_vat: Mapped[Decimal | None] = mapped_column(Money)
    total_energy: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    credit: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_reference_id: Mapped[str | None] = mapped_column(String(39))
    last_updated: Mapped[datetime] = mapped_column(UtcDateTime)
    #: The CDR JSON as received (exact numbers); SHA-256 of it for duplicate detection.
    payload: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


# An index on the pipeline's table that the OCPI CDRs sender needs (created by 0300_api):
# count and page a partner's CDRs in (last_updated, pk) order straight from the index.
from storage.models import CdrRecord  # noqa: E402

Index(
    "ix_cdrs_emsp_last_updated",
    CdrRecord.emsp_country_code, CdrRecord.emsp_party_id, CdrRecord.last_updated, CdrRecord.pk,
)
