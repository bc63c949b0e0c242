"""Domain events of a charging session and the session's stored state.

Events are small immutable values named in the past tense, derived from one OCPP message
each (an envelope may yield several: a 2.0.1 TransactionEvent can start the transaction,
change the charging state and carry meter values at once). They are version-neutral:
energy is already in kWh (Decimal), timestamps in UTC.

The stored state of a session (:class:`SessionState`) is its list of recorded messages
(each with the events it yielded) plus the assembler's own decisions (closed by idle
timeout; CDR versions issued). Everything else (energy, readings, flags) is derived by
folding the events (:func:`sessions.fold.summarize`), so the state is plain JSON and
replaying the same messages rebuilds it exactly.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sample(_Value):
    """What a meter reported at one instant, in billing units.

    ``energy_kwh`` is the *register* (Energy.Active.Import.Register) as sent, converted
    to kWh, not yet session-relative; per-phase registers are summed when the charger sent
    no total (``phases_summed``). Power (kW) and current (A) likewise.
    """

    timestamp: datetime
    energy_kwh: Decimal | None = None
    power_kw: Decimal | None = None
    current_a: Decimal | None = None
    #: OCPP ReadingContext of the energy value (Transaction.Begin, Sample.Periodic, ...).
    context: str | None = None
    phases_summed: bool = False


class TransactionStarted(_Value):
    """1.6 StartTransaction, or 2.0.1 TransactionEvent eventType Started."""

    type: Literal["TransactionStarted"] = "TransactionStarted"
    timestamp: datetime
    connector_id: int | None = None
    evse_id: int | None = None
    id_tag: str | None = None
    #: 1.6 meterStart (Wh in the message), in kWh. 2.0.1 sends a Transaction.Begin sample.
    meter_start_kwh: Decimal | None = None
    #: The central system's verdict on the id tag (1.6 StartTransaction.conf idTagInfo.status;
    #: 2.0.1 TransactionEventResponse idTokenInfo.status when the envelope carries it).
    id_tag_status: str | None = None


class TransactionDetailsReported(_Value):
    """2.0.1 Updated/Ended event naming the EVSE or the id token (sent once, maybe late)."""

    type: Literal["TransactionDetailsReported"] = "TransactionDetailsReported"
    timestamp: datetime
    connector_id: int | None = None
    evse_id: int | None = None
    id_tag: str | None = None
    id_tag_status: str | None = None


class TransactionUpdated(_Value):
    """2.0.1 TransactionEvent that carried nothing else (e.g. a trigger without values)."""

    type: Literal["TransactionUpdated"] = "TransactionUpdated"
    timestamp: datetime
    trigger_reason: str | None = None


class MeterValuesRecorded(_Value):
    """Meter values of the transaction (1.6 MeterValues / transactionData, 2.0.1 meterValue)."""

    type: Literal["MeterValuesRecorded"] = "MeterValuesRecorded"
    samples: tuple[Sample, ...]
    #: A 1.6 MeterValues without transactionId, attached to the only open transaction on
    #: its connector.
    matched_by_connector: bool = False


class ChargingStateChanged(_Value):
    """2.0.1 transactionInfo.chargingState (Charging, EVConnected, SuspendedEV, ...)."""

    type: Literal["ChargingStateChanged"] = "ChargingStateChanged"
    timestamp: datetime
    charging_state: str


class TransactionEnded(_Value):
    """1.6 StopTransaction, or 2.0.1 TransactionEvent eventType Ended."""

    type: Literal["TransactionEnded"] = "TransactionEnded"
    timestamp: datetime
    #: 1.6 meterStop in kWh; 2.0.1 sends a Transaction.End sample instead.
    meter_stop_kwh: Decimal | None = None
    reason: str | None = None
    id_tag: str | None = None
    #: Set when a 1.6 StopTransaction carried an unknown or -1 transactionId and was
    #: matched to this session as the only open transaction of the charge point.
    matched_from_transaction_id: str | None = None


DomainEvent = Annotated[
    Union[
        TransactionStarted,
        TransactionDetailsReported,
        TransactionUpdated,
        MeterValuesRecorded,
        ChargingStateChanged,
        TransactionEnded,
    ],
    Field(discriminator="type"),
]


class MessageRecorded(_Value):
    """One OCPP message applied to the session, with the events it yielded."""

    message_id: str
    action: str
    #: SHA-256 of the canonical JSON of (action, payload): identical content = duplicate.
    fingerprint: str
    received_at: datetime
    #: 2.0.1 seqNo (None for 1.6).
    seq_no: int | None = None
    offline: bool = False
    events: tuple[DomainEvent, ...]


class SessionClosedIdle(_Value):
    """The assembler closed the session: no stop and no message for the idle timeout."""

    closed_at: datetime
    last_received_at: datetime


class CdrIssued(_Value):
    """The assembler handed a version of the session to billing (the pipeline issues it)."""

    version: int
    cdr_id: str
    #: :meth:`sessions.fold.SessionSummary.content_hash` of what was issued.
    content_hash: str


class SessionState(BaseModel):
    """The stored state of one session: the recorded messages and the decisions taken.

    JSON-able (``model_dump_json`` / ``model_validate_json``). Mutated only by
    :class:`sessions.assembler.SessionAssembler`.
    """

    model_config = ConfigDict(extra="forbid")

    session_id: str
    charge_point_id: str
    transaction_id: str
    ocpp_version: str
    messages: list[MessageRecorded] = Field(default_factory=list)
    closed_idle: SessionClosedIdle | None = None
    issued: list[CdrIssued] = Field(default_factory=list)

    # --- what the store and the assembler ask of a session --------------------------

    def events(self) -> list[DomainEvent]:
        return [event for message in self.ordered_messages() for event in message.events]

    def ordered_messages(self) -> list[MessageRecorded]:
        """Messages in protocol order: 2.0.1 by seqNo (OCPP 2.0.1 E01/E07: seqNo is
        incremented per TransactionEvent), 1.6 in arrival order (a 1.6 charger delivers a
        transaction's messages in order)."""
        if self.ocpp_version == "1.6":
            return list(self.messages)
        return sorted(self.messages, key=lambda m: (m.seq_no is None, m.seq_no or 0))

    def has_fingerprint(self, fingerprint: str) -> bool:
        return any(m.fingerprint == fingerprint for m in self.messages)

    def has_seq_no(self, seq_no: int) -> bool:
        return any(m.seq_no == seq_no for m in self.messages)

    @property
    def stopped(self) -> bool:
        return any(isinstance(e, TransactionEnded) for m in self.messages for e in m.events)

    @property
    def started(self) -> bool:
        return any(isinstance(e, TransactionStarted) for m in self.messages for e in m.events)

    @property
    def issued_version(self) -> int | None:
        """Version of the last CDR handed to billing, None while never issued."""
        return self.issued[-1].version if self.issued else None

    @property
    def is_open(self) -> bool:
        """Not yet stopped and not closed by the idle timeout."""
        return not self.stopped and self.closed_idle is None

    @property
    def status(self) -> str:
        """``open`` | ``completed`` (stop received) | ``incomplete`` (closed idle)."""
        if self.stopped:
            return "completed"
        return "incomplete" if self.closed_idle is not None else "open"

    @property
    def last_received_at(self) -> datetime | None:
        return max((m.received_at for m in self.messages), default=None)

    @property
    def connector_id(self) -> int | None:
        """The connector (1.6) or EVSE (2.0.1) id the transaction runs on, when known."""
        for event in self.events():
            if isinstance(event, (TransactionStarted, TransactionDetailsReported)):
                if event.connector_id is not None and self.ocpp_version == "1.6":
                    return event.connector_id
                if event.evse_id is not None:
                    return event.evse_id
        return None

    @property
    def start_id_tag(self) -> str | None:
        for event in self.events():
            if isinstance(event, (TransactionStarted, TransactionDetailsReported)) and event.id_tag:
                return event.id_tag
        return None

    @property
    def start_timestamp(self) -> datetime | None:
        for event in self.events():
            if isinstance(event, TransactionStarted):
                return event.timestamp
        return None
