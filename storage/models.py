"""Tables of the pipeline core: the event log copy, sessions, CDRs, tariffs, tracking.

Written by the stream worker (``streams/``) and read by the API, settlement and replay.

* ``events``: every record consumed from ``ocpp-events``, raw bytes as received, with its
  Kafka coordinates and its outcome (applied / duplicate / dead_lettered). The topic is
  the truth; this table is a copy that ``chargeledger replay --from-db`` can rebuild from.
* ``sessions``: one row per charging session (charge point id, transaction id), holding
  the aggregate's state (its event list) so the worker resumes where it stopped.
* ``cdrs``: issued OCPI 2.2.1 CDRs. ``cdr_json`` holds the exact bytes published on the
  ``cdrs`` topic; ``content_hash`` is SHA-256 of those bytes. The natural key
  (country_code, party_id, id) is unique: a CDR id never appears with different content.
  An issued CDR is never edited; a correction is a credit CDR plus a replacement.
* ``tariffs``: OCPI tariffs as received on the compacted ``tariffs`` topic, one row per
  version (``last_updated``); pricing uses the version valid at the session's start.
* ``tracking``: per (consumer group, topic, partition) the next offset to consume, written
  in the same transaction as the effects of the records before it (exactly-once effect).
* ``dead_letters``: inputs we could not apply, with the reason and the original bytes.
* ``pipeline_counters``: events_in / applied / dead_lettered / duplicates per consumer
  group, updated in the same transaction, so ``in == applied + dead_lettered + duplicates``
  holds exactly across crashes and restarts.

Money and energy are ``Numeric`` (Decimal); times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base
from storage.types import BigIntPK, Money, Quantity, UtcDateTime


class EventRecord(Base):
    """One record of ``ocpp-events`` as consumed, raw, with what became of it.

    Written for every record, read only by (topic, partition, offset): no other index
    (each one cost every insert; migration 0101_pipeline_event_indexes dropped two unused)."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("topic", "partition", "offset"),)

    pk: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    #: From the envelope when it parsed, else the record key (may be None).
    charge_point_id: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(64))
    ocpp_version: Mapped[str | None] = mapped_column(String(8))
    action: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The record value exactly as it was on the topic.
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    #: ``applied`` | ``duplicate`` | ``dead_lettered``
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    #: The session the event belongs to, when it was applied to one.
    session_key: Mapped[str | None] = mapped_column(String(300))


class SessionRecord(Base):
    """A charging session's event-sourced state: (charge point id, transaction id)."""

    __tablename__ = "sessions"

    #: ``<charge point id>/<transaction id>``
    session_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    charge_point_id: Mapped[str] = mapped_column(String(255), index=True)
    transaction_id: Mapped[str] = mapped_column(String(64))
    ocpp_version: Mapped[str] = mapped_column(String(8))
    #: ``open`` | ``completed`` | ``incomplete`` (closed by idle timeout)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The aggregate's state (``sessions.SessionState``) as JSON with an empty message list
    #: (``SessionState.head_json``); its recorded messages are the session's
    #: :class:`SessionMessagesRecord` rows (the whole JSON: ``sessions.events.stored_json``).
    state_head_json: Mapped[str] = mapped_column(Text)
    #: Number of recorded messages (= the messages in the session's SessionMessagesRecord rows).
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    #: The CDR currently in force for this session (the last non-credit CDR issued).
    cdr_id: Mapped[str | None] = mapped_column(String(39))
    #: Time of the last applied event (from the events, not the wall clock).
    last_event_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: +1 at every write of the row (every writer: ``SET version = version + 1``), so a copy
    #: of the state kept in memory is current while the row still has its version.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class SessionMessagesRecord(Base):
    """Recorded messages of a session, appended once each: one row per write of the session
    that recorded new messages (never updated). Migration 0102_pipeline_session_messages."""

    __tablename__ = "session_messages"

    session_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    #: Index of the row's first message in the session's message list.
    first_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: JSON array of the messages from ``first_index`` on, each as in the state's JSON.
    messages_json: Mapped[str] = mapped_column(Text)


class CdrRecord(Base):
    """An issued OCPI 2.2.1 CDR (mod_cdrs.asciidoc section 3.1 Object description)."""

    __tablename__ = "cdrs"
    __table_args__ = (
        UniqueConstraint("country_code", "party_id", "id", name="uq_cdrs_natural_key"),
        Index("ix_cdrs_start_date_time", "start_date_time"),
        Index("ix_cdrs_emsp", "emsp_country_code", "emsp_party_id"),
        Index("ix_cdrs_last_updated", "last_updated"),
    )

    pk: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    #: The CPO that issued the CDR (OCPI CDR.country_code / party_id).
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    #: OCPI CDR.id, CiString(39), deterministic from the session (and correction number).
    id: Mapped[str] = mapped_column(String(39))
    start_date_time: Mapped[datetime] = mapped_column(UtcDateTime)
    end_date_time: Mapped[datetime] = mapped_column(UtcDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    total_cost_excl_vat: Mapped[Decimal] = mapped_column(Money)
    total_cost_incl_vat: Mapped[Decimal | None] = mapped_column(Money)
    #: kWh
    total_energy: Mapped[Decimal] = mapped_column(Quantity)
    #: hours
    total_time: Mapped[Decimal | None] = mapped_column(Quantity)
    total_parking_time: Mapped[Decimal | None] = mapped_column(Quantity)
    credit: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_reference_id: Mapped[str | None] = mapped_column(String(39))
    #: The eMSP whose token was used (CDR.cdr_token.country_code / party_id).
    emsp_country_code: Mapped[str | None] = mapped_column(String(2))
    emsp_party_id: Mapped[str | None] = mapped_column(String(3))
    location_id: Mapped[str | None] = mapped_column(String(36))
    evse_uid: Mapped[str | None] = mapped_column(String(36))
    #: The tariff used to price the session (first of CDR.tariffs), and its version.
    tariff_id: Mapped[str | None] = mapped_column(String(36))
    tariff_version: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: OCPI CDR.last_updated: derived from the session's events, never the wall clock.
    last_updated: Mapped[datetime] = mapped_column(UtcDateTime)
    session_key: Mapped[str | None] = mapped_column(String(300), index=True)
    #: The CDR JSON exactly as published on the ``cdrs`` topic.
    cdr_json: Mapped[str] = mapped_column(Text)
    #: SHA-256 (hex) of ``cdr_json`` encoded as UTF-8.
    content_hash: Mapped[str] = mapped_column(String(64))
    #: False until the CDR was produced on the ``cdrs`` topic (transactional outbox).
    published: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class TariffRecord(Base):
    """One version of an OCPI 2.2.1 Tariff (mod_tariffs.asciidoc section 3.1)."""

    __tablename__ = "tariffs"
    __table_args__ = (
        UniqueConstraint("country_code", "party_id", "id", "last_updated", name="uq_tariffs_version"),
    )

    pk: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    id: Mapped[str] = mapped_column(String(36), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    #: The version: OCPI Tariff.last_updated.
    last_updated: Mapped[datetime] = mapped_column(UtcDateTime)
    #: OCPI Tariff.start_date_time / end_date_time (None: open ended).
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime)
    tariff_json: Mapped[str] = mapped_column(Text)


class TrackingRecord(Base):
    """Next offset to consume per (consumer group, topic, partition)."""

    __tablename__ = "tracking"

    consumer_group: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The next offset to read (last processed offset + 1), Kafka's commit convention.
    offset: Mapped[int] = mapped_column(BigInteger)


class DeadLetterRecord(Base):
    """An input that could not be applied, with the reason and its original bytes."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint("source_topic", "source_partition", "source_offset"),
    )

    pk: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source_topic: Mapped[str] = mapped_column(String(255))
    source_partition: Mapped[int] = mapped_column(Integer)
    source_offset: Mapped[int] = mapped_column(BigInteger)
    charge_point_id: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    original: Mapped[bytes] = mapped_column(LargeBinary)
    #: When the input was received (from the envelope, when it parsed).
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: False until the dead letter was produced on ``ocpp-events-dlq`` (outbox).
    published: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class PipelineCounter(Base):
    """Exact pipeline counters, per consumer group (events_in, applied, ...)."""

    __tablename__ = "pipeline_counters"

    consumer_group: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
