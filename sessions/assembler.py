"""The session assembler: envelopes in, one outcome per envelope out.

Every envelope ends in exactly one of (DESIGN.md, "Every input ends in exactly one place"):

``applied``
    valid, and either recorded in its session or a message we keep but do not bill on
    (BootNotification, Heartbeat, StatusNotification, MeterValues outside a transaction);
``duplicate``
    a message the session already holds: the same content (same action and payload;
    retries after a lost reply, resends after a reboot, whatever their message id), or
    for 2.0.1 the same ``seqNo`` in the same transaction. Message ids alone are not
    trusted: many chargers restart their message-id counter after a reboot;
``dead_lettered``
    with a reason: schema violation, 1.6 StartTransaction without the central system's
    answer, meter values for an unknown transaction, StopTransaction with an unknown or
    -1 transactionId that matches no single open transaction, timestamps far from
    ``received_at``, a second StartTransaction for a used transactionId.

Session state lives in a :class:`SessionStore` (narrow interface; in memory here, the
pipeline implements it over its ``sessions`` table). A session becomes *complete* when
its stop arrives or :meth:`SessionAssembler.close_idle` closes it; the outcome then
carries the :class:`~sessions.fold.CompletedSession` (version 0) and the assembler records
that it handed it out (``SessionState.issued``). Any later event for that session that
changes what billing sees is a *correction*: the outcome carries the new version, with the
id of the CDR to credit (``replaces_cdr_id``) and of the credit CDR (``credit_cdr_id``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple, Protocol

from schemas import ocpp16, ocpp201
from schemas.envelope import EventEnvelope
from schemas.ocpp import InvalidMessage, validate_response
from schemas.ocpp_base import set_dict as _set_dict, set_extra as _set_extra, set_fields_set as _set_fields_set
from schemas.ocpp_base import set_private as _set_private
from sessions.calls import MeterValuesCall, TransactionEventCall, checked_call
from sessions.config import AssemblerConfig
from sessions.events import (
    CdrIssued,
    ChargingStateChanged,
    DomainEvent,
    MessageRecorded,
    MeterValuesRecorded,
    SessionClosedIdle,
    SessionState,
    TransactionDetailsReported,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
    fields_set_of,
    trusted,
)
from sessions.fold import CompletedSession, summarize
from sessions.identity import session_id_for
from sessions.samples import samples_of

OutcomeKind = Literal["applied", "duplicate", "dead_lettered"]


@dataclass(frozen=True)
class AssemblyOutcome:
    """What became of one envelope. Exactly one ``kind``; the rest may be empty."""

    kind: OutcomeKind
    reason: str | None = None
    #: The session the envelope belongs to (None for messages outside any session).
    session_id: str | None = None
    #: Domain events recorded (empty unless applied to a session).
    events: tuple[DomainEvent, ...] = ()
    #: Sessions that became complete with this envelope (version 0: issue ``cdr_id``).
    completed: tuple[CompletedSession, ...] = ()
    #: Issued sessions changed by this envelope: credit ``replaces_cdr_id`` with
    #: ``credit_cdr_id``, then issue ``cdr_id`` (version >= 1).
    corrections: tuple[CompletedSession, ...] = ()
    #: The session's state after the envelope (persist it), when one was touched.
    state: SessionState | None = None


class SessionStore(Protocol):
    """Where session states live. Implementations return the state to mutate and keep
    what :meth:`put` gives them."""

    def get(self, session_id: str) -> SessionState | None: ...

    def put(self, state: SessionState) -> None: ...

    def sessions_of(self, charge_point_id: str) -> Iterable[SessionState]:
        """The charge point's open sessions plus those completed recently (at least within
        the idle timeout). Used to match a StopTransaction with an unknown id, 1.6
        MeterValues without one, and to recognise their resends."""
        ...

    def open_sessions(self) -> Iterable[SessionState]:
        """Every session not yet stopped nor closed (candidates for the idle timeout)."""
        ...


class InMemorySessionStore:
    """A dict of states; for tests, replay and the embedded demo."""

    def __init__(self, states: Iterable[SessionState] = ()) -> None:
        self.states: dict[str, SessionState] = {s.session_id: s for s in states}
        self._by_charge_point: dict[str, dict[str, SessionState]] = {}
        for state in self.states.values():
            self._by_charge_point.setdefault(state.charge_point_id, {})[state.session_id] = state

    def get(self, session_id: str) -> SessionState | None:
        return self.states.get(session_id)

    def put(self, state: SessionState) -> None:
        self.states[state.session_id] = state
        self._by_charge_point.setdefault(state.charge_point_id, {})[state.session_id] = state

    def sessions_of(self, charge_point_id: str) -> Iterable[SessionState]:
        return list(self._by_charge_point.get(charge_point_id, {}).values())

    def open_sessions(self) -> Iterable[SessionState]:
        return [s for s in self.states.values() if s.is_open]


#: ``json.dumps(..., sort_keys=True, separators=(",", ":"), default=str)`` without building
#: the encoder on every call (half the cost of a fingerprint); the same text.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
#: The C encoder behind it, built once and without the circular-reference bookkeeping
#: (``check_circular=False``: a payload decoded from JSON has no cycles). Same chunks, same
#: text as ``_CANONICAL_JSON.encode`` (issue 4: ~25% less per fingerprint). None when the
#: interpreter has no C accelerator.
_C_CANONICAL = (json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, str, json.encoder.c_encode_basestring_ascii,  # type: ignore[attr-defined]
    None, ":", ",", True, False, True)
    if json.encoder.c_make_encoder is not None and json.encoder.c_encode_basestring_ascii is not None  # type: ignore[attr-defined]
    else None)
_sha256 = hashlib.sha256


def fingerprint_of(action: str, payload: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of (action, payload): equal content, equal print."""
    if _C_CANONICAL is not None:
        text = "".join(_C_CANONICAL([action, payload], 0))
    else:  # pragma: no cover - CPython always has the C encoder
        text = _CANONICAL_JSON.encode([action, payload])
    return _sha256(text.encode()).hexdigest()


class DecodedCall(NamedTuple):
    """What :meth:`SessionAssembler.apply` computes of an envelope before it needs any
    session state, computed ahead by :func:`decode_call` (pure: no store, no assembler)."""

    #: The validated OCPP call (:func:`sessions.calls.checked_call`: a plain call, or
    #: ``validate_call``'s model); None for a message outside sessions
    #: (BootNotification, ...) or an invalid one.
    model: Any
    #: Why the call is invalid (``InvalidMessage.reason``: the envelope is dead-lettered).
    reason: str | None
    #: :func:`fingerprint_of` the action and payload (valid calls; None: the handler computes it).
    fingerprint: str | None


def decode_call(envelope: EventEnvelope) -> DecodedCall | None:
    """The state-free part of applying ``envelope`` (OCPP validation, fingerprint), for
    :meth:`SessionAssembler.apply`. Exactly what ``apply`` computes itself: the validated
    models are frozen (shared ones too), so it does not matter how long before the envelope
    is applied this runs. None when validation fails other than with :class:`InvalidMessage`
    (a bug): ``apply`` then validates again and fails the same way, at the same point."""
    fields = envelope.__dict__
    try:
        model = checked_call(fields["ocpp_version"], fields["action"], fields["payload"])
    except InvalidMessage as exc:
        return DecodedCall(None, exc.reason, None)
    except Exception:  # noqa: BLE001 - see the docstring
        return None
    if model is None:
        return _OUTSIDE_SESSIONS
    try:
        return DecodedCall(model, None, fingerprint_of(fields["action"], fields["payload"]))
    except Exception:  # noqa: BLE001 - the handler computes it again and fails there, as it would
        return DecodedCall(model, None, None)


_OUTSIDE_SESSIONS = DecodedCall(None, None, None)


_new_outcome = object.__new__
#: MessageRecorded's fields set, shared by the recorded messages like ``trusted`` shares one
#: per class (never changed: the values are frozen; see sessions.events.trusted).
_MESSAGE_FIELDS = fields_set_of(MessageRecorded)
_new_value = object.__new__


def _value(cls: type, values: dict[str, Any]) -> Any:
    """``trusted(cls, values)`` in one Python call (the domain events of every envelope)."""
    value = _new_value(cls)
    _set_dict(value, values)
    _set_fields_set(value, _VALUE_FIELDS[cls])
    _set_extra(value, None)
    _set_private(value, None)
    return value
_set_attribute = object.__setattr__


#: The outcome of a valid message outside any session (BootNotification, Heartbeat, ...):
#: one shared value (frozen; equal to ``AssemblyOutcome("applied")``).
_APPLIED_OUTSIDE_SESSIONS = AssemblyOutcome("applied")


def _dead(reason: str, session_id: str | None = None) -> AssemblyOutcome:
    return AssemblyOutcome("dead_lettered", reason=reason, session_id=session_id)


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


class SessionAssembler:
    """Applies envelopes to sessions (see the module docstring). Deterministic: the same
    envelopes in the same order (and the same ``close_idle`` calls) give the same results.
    """

    def __init__(self, config: AssemblerConfig | None = None, store: SessionStore | None = None) -> None:
        self.config = config or AssemblerConfig()
        self.store: SessionStore = store if store is not None else InMemorySessionStore()
        #: envelopes in / applied / duplicate / dead_lettered, for this instance's lifetime.
        self.counts: Counter[str] = Counter()

    # --- public API -------------------------------------------------------------------

    def apply(self, envelope: EventEnvelope, decoded: "DecodedCall | None" = None) -> AssemblyOutcome:
        """Apply one envelope; never raises for bad input (it is dead-lettered).

        ``decoded``: :func:`decode_call` of this envelope, computed ahead (the worker decodes
        the next batch while the last one commits); None computes it here, the same way."""
        counts = self.counts
        counts["in"] = counts.get("in", 0) + 1
        outcome = self._apply(envelope, decoded)
        kind = outcome.kind
        counts[kind] = counts.get(kind, 0) + 1
        return outcome

    def close_idle(self, now: datetime) -> list[CompletedSession]:
        """Close open sessions silent for ``config.idle_timeout`` as incomplete.

        ``now`` should be stream time (the ``received_at`` of the latest envelope, or the
        wall clock in a live worker); each closure is recorded in the session's state so a
        replay of the stored state gives the same CDR.
        """
        closed: list[CompletedSession] = []
        for state in sorted(self.store.open_sessions(), key=lambda s: s.session_id):
            last = state.last_received_at
            if not state.is_open or last is None or now - last < self.config.idle_timeout:
                continue
            state.closed_idle = SessionClosedIdle(closed_at=now, last_received_at=last)
            summary = summarize(state, self.config)
            issued = summary.as_version(0)
            state.issued.append(CdrIssued(version=0, cdr_id=issued.cdr_id, content_hash=summary.content_hash()))
            self.store.put(state)
            closed.append(issued)
        return closed

    # --- dispatch ---------------------------------------------------------------------

    def _apply(self, envelope: EventEnvelope, decoded: "DecodedCall | None" = None) -> AssemblyOutcome:
        if decoded is None:
            fields = envelope.__dict__
            try:
                model = checked_call(fields["ocpp_version"], fields["action"], fields["payload"])
            except InvalidMessage as exc:
                return _dead(exc.reason)
            fingerprint = None  # computed by the handler
        else:
            model, reason, fingerprint = decoded
            if reason is not None:
                return _dead(reason)
        if model is None:
            return _APPLIED_OUTSIDE_SESSIONS
        reason = self._implausible_timestamp(envelope, model)
        if reason is not None:
            return _dead(reason)
        handler = _HANDLERS.get(type(model))
        if handler is not None:
            return getattr(self, handler)(envelope, model, fingerprint)
        if isinstance(model, ocpp16.StartTransaction):
            return self._start_16(envelope, model, fingerprint)
        if isinstance(model, ocpp16.MeterValues):
            return self._meter_values_16(envelope, model, fingerprint)
        if isinstance(model, ocpp16.StopTransaction):
            return self._stop_16(envelope, model, fingerprint)
        if isinstance(model, ocpp201.TransactionEvent):
            return self._transaction_event(envelope, model, fingerprint)
        raise AssertionError(f"unhandled model {type(model).__name__}")  # pragma: no cover

    def _implausible_timestamp(self, envelope: EventEnvelope, model: Any) -> str | None:
        """Timestamps far in the future or past relative to ``received_at`` (docs table)."""
        received = envelope.__dict__["received_at"]
        limits = self.config.__dict__  # a frozen model: its fields are in its __dict__
        ahead, behind = limits["max_clock_ahead"], limits["max_clock_behind"]
        latest = received + ahead
        earliest = received - behind
        kind = type(model)
        if kind is TransactionEventCall or kind is MeterValuesCall:
            # the same checks on a plain call: its timestamp, then each meter value's (its
            # sample's timestamp), in order
            if kind is TransactionEventCall:
                ts = model.timestamp
                if ts > latest or ts < earliest:
                    return self._implausible(envelope, "timestamp", ts)
            for index, sample in enumerate(model.samples):
                ts = sample.__dict__["timestamp"]
                if ts > latest or ts < earliest:
                    return self._implausible(envelope, f"meterValue[{index}].timestamp", ts)
            return None
        found = _STAMPED_FIELDS.get(kind)
        has_timestamp, lists = found if found is not None else _stamped_fields(model)
        values = model.__dict__  # the model's fields (validated models hold every field there)
        if has_timestamp:
            ts = values["timestamp"]
            if ts > latest or ts < earliest:
                return self._implausible(envelope, "timestamp", ts)
        for field, wire in lists:
            meter_values = values[field]
            if not meter_values:
                continue
            for mv in meter_values:
                ts = mv.__dict__["timestamp"]
                if ts > latest or ts < earliest:
                    index = next(i for i, m in enumerate(meter_values) if m is mv)
                    return self._implausible(envelope, f"{wire}[{index}].timestamp", ts)
        return None

    def _implausible(self, envelope: EventEnvelope, where: str, ts: datetime) -> str:
        received = envelope.received_at
        if ts > received + self.config.max_clock_ahead:
            return (f"{envelope.action}: {where} {_iso(ts)} is {ts - received} after received_at "
                    f"{_iso(received)} (more than {self.config.max_clock_ahead} ahead; charger clock wrong?)")
        return (f"{envelope.action}: {where} {_iso(ts)} is {received - ts} before received_at "
                f"{_iso(received)} (more than {self.config.max_clock_behind} behind; charger clock wrong?)")

    def _new_state(self, envelope: EventEnvelope, transaction_id: str) -> SessionState:
        return SessionState.new(session_id_for(envelope.charge_point_id, transaction_id), envelope.charge_point_id,
                                transaction_id, envelope.ocpp_version)

    def _record(
        self,
        state: SessionState,
        envelope: EventEnvelope,
        fingerprint: str,
        events: tuple[DomainEvent, ...],
        seq_no: int | None = None,
        offline: bool = False,
    ) -> AssemblyOutcome:
        received = envelope.__dict__  # the envelope's fields (one attribute lookup)
        fields = state.__dict__
        # trusted(MessageRecorded, {...}) written out (once per message)
        message = _new_value(MessageRecorded)
        _set_dict(message, {
            "message_id": received["message_id"],
            "action": received["action"],
            "fingerprint": fingerprint,
            "received_at": received["received_at"],
            "seq_no": seq_no,
            "offline": offline,
            "events": events,
        })
        _set_fields_set(message, _MESSAGE_FIELDS)
        _set_extra(message, None)
        _set_private(message, None)
        fields["messages"].append(message)
        completed: tuple[CompletedSession, ...] = ()
        corrections: tuple[CompletedSession, ...] = ()
        issued_versions = fields["issued"]
        if issued_versions:
            summary = summarize(state, self.config)
            content = summary.content_hash()
            if content != issued_versions[-1].content_hash:
                version = issued_versions[-1].version + 1
                issued = summary.as_version(version)
                issued_versions.append(CdrIssued(version=version, cdr_id=issued.cdr_id, content_hash=content))
                corrections = (issued,)
        elif state._derived().stopped:  # state.stopped, without the property's call
            summary = summarize(state, self.config)
            issued = summary.as_version(0)
            issued_versions.append(CdrIssued(version=0, cdr_id=issued.cdr_id, content_hash=summary.content_hash()))
            completed = (issued,)
        self.store.put(state)
        # AssemblyOutcome("applied", session_id=..., events=..., ...) without the frozen
        # dataclass's field-by-field object.__setattr__ (every field set; once per recorded message)
        outcome = _new_outcome(AssemblyOutcome)
        _set_attribute(outcome, "__dict__", {
            "kind": "applied", "reason": None, "session_id": fields["session_id"], "events": events,
            "completed": completed, "corrections": corrections, "state": state})
        return outcome

    # --- OCPP 1.6 ---------------------------------------------------------------------

    def _start_16(self, envelope: EventEnvelope, msg: ocpp16.StartTransaction,
                  fingerprint: str | None = None) -> AssemblyOutcome:
        if envelope.response is None:
            return _dead(
                "StartTransaction (OCPP 1.6) without the central system's answer: the transactionId "
                "is assigned in StartTransaction.conf, so the message cannot be assigned to a session"
            )
        try:
            answer = validate_response("1.6", "StartTransaction", envelope.response)
        except InvalidMessage as exc:
            return _dead(f"StartTransaction answer: {exc.reason}")
        assert isinstance(answer, ocpp16.StartTransactionResponse)
        transaction_id = str(answer.transaction_id)
        if fingerprint is None:
            fingerprint = fingerprint_of(envelope.action, envelope.payload)
        state = self.store.get(session_id_for(envelope.charge_point_id, transaction_id))
        if state is not None:
            if state.has_fingerprint(fingerprint):
                return AssemblyOutcome("duplicate", session_id=state.session_id)
            if state.started:
                return _dead(
                    f"StartTransaction: transactionId {transaction_id} on {envelope.charge_point_id} "
                    "already started with different content (transactionId reused?)",
                    state.session_id,
                )
        else:
            state = self._new_state(envelope, transaction_id)
        event = trusted(TransactionStarted, {
            "type": "TransactionStarted",
            "timestamp": msg.timestamp,
            "connector_id": msg.connector_id,
            "evse_id": msg.connector_id,
            "id_tag": msg.id_tag,
            "meter_start_kwh": Decimal(msg.meter_start).scaleb(-3),
            "id_tag_status": answer.id_tag_info.status,
        })
        return self._record(state, envelope, fingerprint, (event,))

    def _meter_values_16(self, envelope: EventEnvelope, msg: ocpp16.MeterValues | MeterValuesCall,
                         fingerprint: str | None = None) -> AssemblyOutcome:
        received = envelope.__dict__  # the envelope's fields (one lookup)
        if type(msg) is MeterValuesCall:
            connector_id, transaction_id, samples = msg
            meter_value = None
        else:  # the model (validate_call): its samples are read below
            values = msg.__dict__
            connector_id, transaction_id, meter_value = values["connector_id"], values["transaction_id"], values[
                "meter_value"]
            samples = None
        matched = False
        if transaction_id is None:
            # Meter values outside a transaction (connector 0 = main meter, idle connector)
            # are valid and not billed; some chargers omit the id inside one: attach them to
            # the only open transaction on that connector.
            if connector_id == 0:
                return _APPLIED_OUTSIDE_SESSIONS
        if fingerprint is None:
            fingerprint = fingerprint_of(received["action"], received["payload"])
        if transaction_id is None:
            for state in self.store.sessions_of(envelope.charge_point_id):
                if state.has_fingerprint(fingerprint):
                    return AssemblyOutcome("duplicate", session_id=state.session_id)
            candidates = [
                s for s in self.store.sessions_of(envelope.charge_point_id)
                if s.is_open and s.ocpp_version == "1.6" and s.connector_id == connector_id
            ]
            if not candidates:
                return _APPLIED_OUTSIDE_SESSIONS
            if len(candidates) > 1:
                ids = ", ".join(sorted(s.transaction_id for s in candidates))
                return _dead(
                    f"MeterValues without transactionId on connector {connector_id}: "
                    f"{len(candidates)} open transactions ({ids}), ambiguous"
                )
            state, matched = candidates[0], True
        else:
            charge_point_id = received["charge_point_id"]
            state = self.store.get(session_id_for(charge_point_id, transaction_id))
            if state is None:
                return _dead(
                    f"MeterValues for unknown transaction {transaction_id} on "
                    f"{charge_point_id} (no StartTransaction applied for it)"
                )
            if state.has_fingerprint(fingerprint):
                return AssemblyOutcome("duplicate", session_id=state.session_id)
        event = _meter_values_recorded(samples_of(meter_value) if samples is None else samples, matched)
        return self._record(state, envelope, fingerprint, (event,))

    def _stop_16(self, envelope: EventEnvelope, msg: ocpp16.StopTransaction,
                 fingerprint: str | None = None) -> AssemblyOutcome:
        received = envelope.__dict__  # the envelope's and the model's fields (one lookup each)
        values = msg.__dict__
        if fingerprint is None:
            fingerprint = fingerprint_of(received["action"], received["payload"])
        transaction_id = str(values["transaction_id"])
        state = self.store.get(session_id_for(received["charge_point_id"], transaction_id))
        matched_from: str | None = None
        if state is None:
            for known in self.store.sessions_of(envelope.charge_point_id):
                if known.has_fingerprint(fingerprint):
                    return AssemblyOutcome("duplicate", session_id=known.session_id)
            found = self._match_stop(envelope, msg)
            if isinstance(found, str):
                return _dead(found)
            state, matched_from = found, transaction_id
        elif state.has_fingerprint(fingerprint):
            return AssemblyOutcome("duplicate", session_id=state.session_id)
        transaction_data = values["transaction_data"]
        recorded = _meter_values_recorded(samples_of(transaction_data)) if transaction_data else None
        ended = _transaction_ended(values["timestamp"], Decimal(values["meter_stop"]).scaleb(-3), values["reason"],
                                   values["id_tag"], matched_from)
        return self._record(state, envelope, fingerprint, (ended,) if recorded is None else (recorded, ended))

    def _match_stop(self, envelope: EventEnvelope, msg: ocpp16.StopTransaction) -> SessionState | str:
        """The open 1.6 transaction a StopTransaction with an unknown/-1 id belongs to.

        1.6 StopTransaction names no connector; the match is the charge point's only open
        transaction that started before the stop (narrowed by idTag when several are open
        and the stop names one). Anything else is ambiguous: dead-letter, never guess.
        """
        what = "-1" if msg.transaction_id == -1 else f"unknown transactionId {msg.transaction_id}"
        candidates = [
            s for s in self.store.sessions_of(envelope.charge_point_id)
            if s.is_open and s.ocpp_version == "1.6"
            and (s.start_timestamp is None or s.start_timestamp <= msg.timestamp)
        ]
        if len(candidates) > 1 and msg.id_tag:
            same_tag = [s for s in candidates if s.start_id_tag == msg.id_tag]
            candidates = same_tag or candidates
        if len(candidates) == 1:
            return candidates[0]
        prefix = f"StopTransaction with {what} on {envelope.charge_point_id}: "
        if not candidates:
            return prefix + "no open transaction to match it to"
        ids = ", ".join(sorted(s.transaction_id for s in candidates))
        return prefix + f"{len(candidates)} open transactions ({ids}), ambiguous"

    # --- OCPP 2.0.1 / 2.1 -------------------------------------------------------------

    def _transaction_event(self, envelope: EventEnvelope,
                           msg: ocpp201.TransactionEvent | TransactionEventCall,
                           fingerprint: str | None = None) -> AssemblyOutcome:
        received = envelope.__dict__  # the envelope's fields (one lookup)
        if type(msg) is TransactionEventCall:
            event_type, timestamp, trigger_reason, seq_no, offline, info, evse, id_tag, samples = msg
            meter_value = None
        else:  # the model (validate_call): its samples are read below
            values = msg.__dict__
            event_type, timestamp, trigger_reason, seq_no, offline = (
                values["event_type"], values["timestamp"], values["trigger_reason"], values["seq_no"], values["offline"])
            info, evse, id_token, meter_value = (values["transaction_info"], values["evse"], values["id_token"],
                                                 values["meter_value"])
            id_tag = None if id_token is None else id_token.__dict__["id_token"]
            samples = None
        info_values = info.__dict__
        transaction_id = info_values["transaction_id"]
        charge_point_id = received["charge_point_id"]
        if fingerprint is None:
            fingerprint = fingerprint_of(received["action"], received["payload"])
        session_id = session_id_for(charge_point_id, transaction_id)
        state = self.store.get(session_id)
        if state is not None:
            derived = state._derived()  # has_fingerprint and has_seq_no, one look at the derived facts
            if fingerprint in derived.fingerprints:
                return AssemblyOutcome("duplicate", session_id=session_id)
            if seq_no in derived.seq_nos:
                return AssemblyOutcome(
                    "duplicate", session_id=session_id,
                    reason=f"seqNo {seq_no} already recorded with different content; the first one is kept",
                )
        else:
            state = SessionState.new(session_id, charge_point_id, transaction_id, received["ocpp_version"])
        if evse is not None:
            evse_values = evse.__dict__
            evse_id, connector_id = evse_values["id"], evse_values["connector_id"]
        else:
            evse_id = connector_id = None
        id_tag_status = _id_token_status(envelope) if id_tag is not None else None
        events: list[DomainEvent] = []
        if event_type == "Started":
            events.append(_value(TransactionStarted, {
                "type": "TransactionStarted", "timestamp": timestamp, "connector_id": connector_id,
                "evse_id": evse_id, "id_tag": id_tag, "meter_start_kwh": None, "id_tag_status": id_tag_status}))
        elif evse_id is not None or id_tag is not None:
            events.append(_value(TransactionDetailsReported, {
                "type": "TransactionDetailsReported", "timestamp": timestamp, "connector_id": connector_id,
                "evse_id": evse_id, "id_tag": id_tag, "id_tag_status": id_tag_status}))
        charging_state = info_values["charging_state"]
        if charging_state is not None:
            events.append(_value(ChargingStateChanged, {
                "type": "ChargingStateChanged", "timestamp": timestamp, "charging_state": charging_state}))
        if samples is None:  # the model
            if meter_value:
                events.append(_meter_values_recorded(samples_of(meter_value)))
        elif samples:
            events.append(_meter_values_recorded(samples))
        if event_type == "Ended":
            events.append(_transaction_ended(timestamp, None, info_values["stopped_reason"], id_tag, None))
        if not events:
            events.append(_value(TransactionUpdated, {
                "type": "TransactionUpdated", "timestamp": timestamp, "trigger_reason": trigger_reason}))
        return self._record(state, envelope, fingerprint, tuple(events), seq_no, offline)


#: The handler (method name) of each validated OCPP model class; subclasses of these
#: models go through the isinstance chain.
_HANDLERS: dict[type, str] = {
    ocpp16.StartTransaction: "_start_16",
    ocpp16.MeterValues: "_meter_values_16",
    ocpp16.StopTransaction: "_stop_16",
    ocpp201.TransactionEvent: "_transaction_event",
    MeterValuesCall: "_meter_values_16",
    TransactionEventCall: "_transaction_event",
}

#: Per OCPP model class: (has ``timestamp``, its lists of MeterValues as (field, wire name)).
_STAMPED_FIELDS: dict[type, tuple[bool, tuple[tuple[str, str], ...]]] = {}


def _stamped_fields(model: Any) -> tuple[bool, tuple[tuple[str, str], ...]]:
    """Where a validated OCPP model carries timestamps (fields are per class)."""
    found = _STAMPED_FIELDS.get(type(model))
    if found is None:
        lists = tuple((field, wire) for field, wire in (("meter_value", "meterValue"),
                                                       ("transaction_data", "transactionData"))
                      if hasattr(model, field))
        found = _STAMPED_FIELDS[type(model)] = (hasattr(model, "timestamp"), lists)
    return found


def _meter_values_recorded(samples: tuple, matched_by_connector: bool = False) -> MeterValuesRecorded:
    """``trusted(MeterValuesRecorded, {...})``, written out."""
    value = _new_value(MeterValuesRecorded)
    _set_dict(value, {"type": "MeterValuesRecorded", "samples": samples, "matched_by_connector": matched_by_connector})
    _set_fields_set(value, _MVR_FIELDS)
    _set_extra(value, None)
    _set_private(value, None)
    return value


def _transaction_ended(timestamp: datetime, meter_stop_kwh: Decimal | None, reason: str | None,
                       id_tag: str | None, matched_from: str | None) -> TransactionEnded:
    return _value(TransactionEnded, {
        "type": "TransactionEnded", "timestamp": timestamp, "meter_stop_kwh": meter_stop_kwh, "reason": reason,
        "id_tag": id_tag, "matched_from_transaction_id": matched_from})


#: trusted's fields set of each event class the assembler builds (shared, never changed).
_VALUE_FIELDS: dict[type, set[str]] = {cls: fields_set_of(cls) for cls in (
    TransactionStarted, TransactionDetailsReported, TransactionUpdated, MeterValuesRecorded, ChargingStateChanged,
    TransactionEnded)}
_MVR_FIELDS = _VALUE_FIELDS[MeterValuesRecorded]


def _id_token_status(envelope: EventEnvelope) -> str | None:
    """idTokenInfo.status of a 2.0.1/2.1 TransactionEventResponse, when the envelope has it.

    Read leniently: the answer is ours (the central system's), not the charger's input, so
    a malformed one is ignored rather than dead-lettering the charger's message.
    """
    response = envelope.response
    if not isinstance(response, dict):
        return None
    info = response.get("idTokenInfo")
    status = info.get("status") if isinstance(info, dict) else None
    return status if isinstance(status, str) else None


def replay(
    envelopes: Iterable[EventEnvelope], config: AssemblerConfig | None = None
) -> tuple[SessionAssembler, list[AssemblyOutcome]]:
    """Apply envelopes in order to a fresh in-memory assembler (tests, replay tooling)."""
    assembler = SessionAssembler(config)
    outcomes = [assembler.apply(envelope) for envelope in envelopes]
    return assembler, outcomes


__all__ = [
    "AssemblyOutcome",
    "DecodedCall",
    "InMemorySessionStore",
    "SessionAssembler",
    "SessionStore",
    "decode_call",
    "fingerprint_of",
    "replay",
]
