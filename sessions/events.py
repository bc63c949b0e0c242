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

Stored form (the pipeline's ``sessions`` + ``session_messages`` tables): the state's JSON
with an empty message list (:meth:`SessionState.head_json`) and the JSON arrays of its
messages appended as they were recorded (:meth:`SessionState.messages_json`); put together
by :func:`stored_json` they are the state's whole JSON, byte for byte.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Iterable, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter
from pydantic_core import to_json

from schemas.ocpp_base import construct


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_V = TypeVar("_V", bound=_Value)
#: Per value class, the set of all its field names: shared by the instances :func:`trusted`
#: builds (one object less to allocate and for the garbage collector to walk per value).
#: Never changed: the classes are frozen (pydantic adds to a fields set only on assignment)
#: and ``model_copy`` copies the set before updating it.
_FIELDS_SETS: dict[type, set[str]] = {}


def fields_set_of(cls: type) -> set[str]:
    """The fields set :func:`trusted` shares between the instances of ``cls`` it builds."""
    fields_set = _FIELDS_SETS.get(cls)
    if fields_set is None:
        fields_set = _FIELDS_SETS[cls] = set(cls.model_fields)
    return fields_set


def trusted(cls: type[_V], values: dict[str, Any]) -> _V:
    """An instance of the value class ``cls`` from ``values`` that already have the field
    types (what validation would return for them: datetimes, Decimals, tuples of value
    instances, ...), without validating them again (issue 4: the assembler builds its
    events from validated OCPP models). ``values`` names every field, in declaration order,
    defaults included, so the instance equals (and serialises like) the validated one;
    tests/unit/test_session_state_json.py checks that for the assembler's events."""
    fields_set = _FIELDS_SETS.get(cls)
    if fields_set is None:
        fields_set = _FIELDS_SETS[cls] = set(cls.model_fields)
    return construct(cls, values, fields_set)


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


class _Derived:
    """What the assembler and the store ask of a session again and again, kept up to date
    while messages are appended (a cache, never part of the state's value).

    Valid for ``messages`` (the very list object) up to ``count``; the messages of a state
    are append-only (the assembler never edits nor removes one), and
    :meth:`SessionState._derived` rebuilds from scratch whenever the list was replaced,
    shortened or its last seen element changed.
    """

    __slots__ = ("messages", "count", "last", "fingerprints", "seq_nos", "stopped", "started",
                 "offline", "last_received_at", "starters", "first", "head", "memo")

    def __init__(self) -> None:
        self.messages: list[MessageRecorded] | None = None
        self.count = 0
        self.last: MessageRecorded | None = None
        self.fingerprints: set[str] = set()
        self.seq_nos: set[int | None] = set()
        self.stopped = False
        self.started = False
        #: Some message was sent offline (2.0.1 ``offline``).
        self.offline = False
        self.last_received_at: datetime | None = None
        #: The messages with a TransactionStarted or TransactionDetailsReported event, in
        #: arrival order (where connector, id tag and start come from).
        self.starters: list[MessageRecorded] = []
        #: (how many starters it was read from, connector id, start id tag, start timestamp)
        self.first: tuple[int, int | None, str | None, datetime | None] | None = None
        #: (session id, charge point id, transaction id, version, the JSON up to the messages)
        self.head: tuple[str, str, str, str, str] | None = None
        #: Values derived from the ordered events (connector id, ...), for ``count``.
        self.memo: dict[str, Any] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Derived)  # a cache: two states never differ by it

    __hash__ = None  # type: ignore[assignment]

    def __copy__(self) -> "_Derived":
        return _Derived()

    def __deepcopy__(self, memo: dict) -> "_Derived":
        return _Derived()

    def extend(self, messages: list["MessageRecorded"], upto: int) -> None:
        event_kind = _EVENT_KINDS.get
        add_fingerprint = self.fingerprints.add
        add_seq_no = self.seq_nos.add
        last_received_at = self.last_received_at
        for message in messages[self.count:upto]:
            fields = message.__dict__
            add_fingerprint(fields["fingerprint"])
            add_seq_no(fields["seq_no"])
            if fields["offline"]:
                self.offline = True
            starter = False
            for event in fields["events"]:
                kind = event_kind(type(event))
                if kind is None:  # not one of the classes themselves (a subclass?): as before
                    kind = _event_kind_of(event)
                if kind == _ENDED:
                    self.stopped = True
                elif kind == _STARTED:
                    self.started = starter = True
                elif kind == _DETAILS:
                    starter = True
            if starter:
                self.starters.append(message)
            received_at = fields["received_at"]
            if last_received_at is None or received_at > last_received_at:
                last_received_at = received_at
        self.last_received_at = last_received_at
        self.count = upto
        self.last = messages[upto - 1] if upto else None
        if self.memo:
            self.memo = {}


_ENDED, _STARTED, _DETAILS, _OTHER = range(4)
#: The derived facts' kind of each event class (a dict look-up instead of up to three
#: isinstance calls per event: each miss goes through the pydantic metaclass's
#: ``__instancecheck__``); any other class: :func:`_event_kind_of`.
_EVENT_KINDS: dict[type, int] = {
    TransactionEnded: _ENDED, TransactionStarted: _STARTED, TransactionDetailsReported: _DETAILS,
    TransactionUpdated: _OTHER, MeterValuesRecorded: _OTHER, ChargingStateChanged: _OTHER}


def _event_kind_of(event: Any) -> int:
    """The kind of an event of any class, by isinstance (what :meth:`_Derived.extend` asked
    of every event before :data:`_EVENT_KINDS`)."""
    if isinstance(event, TransactionEnded):
        return _ENDED
    if isinstance(event, TransactionStarted):
        return _STARTED
    if isinstance(event, TransactionDetailsReported):
        return _DETAILS
    return _OTHER


#: Serialisers of the state's lists, the same pydantic schemas as the fields of
#: :class:`SessionState` (so their JSON is byte for byte what ``model_dump_json`` writes).
#: Messages with ``serialize_as_any``: each event through its own class's serializer instead
#: of the discriminated union's dispatch (issue 4: ~18% less per message). The events are
#: instances of exactly the union's classes (the assembler builds them, pydantic parses
#: them), so the text is the same; tests/unit/test_session_state_json.py compares it with
#: ``BaseModel.model_dump_json`` after every event of simulated traffic.
_MESSAGES_TO_JSON = functools.partial(TypeAdapter(list[MessageRecorded]).serializer.to_json,
                                      serialize_as_any=True)
_ISSUED_TO_JSON = TypeAdapter(list[CdrIssued]).serializer.to_json
_JSON_HEAD = '{"session_id":'
_MESSAGES_KEY = ',"messages":['

class SessionState(BaseModel):
    """The stored state of one session: the recorded messages and the decisions taken.

    JSON-able (``model_dump_json`` / ``model_validate_json``, or the same as
    :meth:`to_json` / :meth:`from_json`). Mutated only by
    :class:`sessions.assembler.SessionAssembler` (and by the pipeline appending to
    ``issued``); ``messages`` is append-only.

    Speed (issue 4): the derived facts (fingerprints, seqNos, stopped, ...) are kept up to
    date incrementally, and the pipeline stores the state in parts (:meth:`head_json`, and
    each recorded message's JSON appended once: :meth:`messages_json`). The JSON format is
    unchanged: ``to_json`` is byte-identical to pydantic's ``model_dump_json``, and any
    stored state (older ones included) loads.
    """

    model_config = ConfigDict(extra="forbid")

    session_id: str
    charge_point_id: str
    transaction_id: str
    ocpp_version: str
    messages: list[MessageRecorded] = Field(default_factory=list)
    closed_idle: SessionClosedIdle | None = None
    issued: list[CdrIssued] = Field(default_factory=list)

    _cache: _Derived = PrivateAttr(default_factory=_Derived)

    # --- JSON -------------------------------------------------------------------------

    def _head(self, derived: _Derived, fields: dict[str, Any]) -> str:
        """The JSON up to the messages (``...,"messages":[``), cached in the derived facts."""
        session_id = fields["session_id"]
        head = derived.head
        if not (head and head[0] is session_id and head[1] is fields["charge_point_id"]
                and head[2] is fields["transaction_id"] and head[3] is fields["ocpp_version"]):
            head = derived.head = (session_id, self.charge_point_id, self.transaction_id, self.ocpp_version,
                                   "".join((_JSON_HEAD, to_json(session_id).decode(),
                                            ',"charge_point_id":', to_json(self.charge_point_id).decode(),
                                            ',"transaction_id":', to_json(self.transaction_id).decode(),
                                            ',"ocpp_version":', to_json(self.ocpp_version).decode(),
                                            _MESSAGES_KEY)))
        return head[4]

    @staticmethod
    def _tail(fields: dict[str, Any]) -> str:
        """The JSON after the messages (``],"closed_idle":...}``)."""
        closed_idle = fields["closed_idle"]
        issued = fields["issued"]
        return "".join(('],"closed_idle":', "null" if closed_idle is None else closed_idle.model_dump_json(),
                        ',"issued":', _ISSUED_TO_JSON(issued).decode() if issued else "[]", "}"))

    def to_json(self) -> str:
        """The state's JSON, byte for byte ``BaseModel.model_dump_json(self)``."""
        fields = self.__dict__
        return "".join((self._head(self._derived(), fields),
                        _MESSAGES_TO_JSON(fields["messages"]).decode()[1:-1], self._tail(fields)))

    @classmethod
    def from_json(cls, text: str | bytes | bytearray) -> "SessionState":
        """The state of a stored JSON text (any that pydantic's ``model_validate_json`` reads)."""
        return super().model_validate_json(text)

    @classmethod
    def new(cls, session_id: str, charge_point_id: str, transaction_id: str, ocpp_version: str) -> "SessionState":
        """``SessionState(session_id=..., charge_point_id=..., transaction_id=...,
        ocpp_version=...)`` for four ``str`` values, without validating them (the assembler
        opens a session per transaction; issue 4). Anything else goes through validation."""
        if not (type(session_id) is str and type(charge_point_id) is str and type(transaction_id) is str
                and type(ocpp_version) is str):
            return cls(session_id=session_id, charge_point_id=charge_point_id, transaction_id=transaction_id,
                       ocpp_version=ocpp_version)
        return construct(cls, {
            "session_id": session_id, "charge_point_id": charge_point_id, "transaction_id": transaction_id,
            "ocpp_version": ocpp_version, "messages": [], "closed_idle": None, "issued": []},
            {"session_id", "charge_point_id", "transaction_id", "ocpp_version"}, {"_cache": _Derived()})

    def model_dump_json(self, **kwargs: Any) -> str:  # type: ignore[override]
        """Without arguments: :meth:`to_json` (the same text, faster)."""
        if kwargs:
            return super().model_dump_json(**kwargs)
        return self.to_json()

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> "SessionState":  # type: ignore[override]
        """Without keyword arguments: :meth:`from_json`."""
        if kwargs:
            return super().model_validate_json(json_data, **kwargs)
        return cls.from_json(json_data)

    # --- stored form: the JSON without the messages + the messages appended ---------

    def head_json(self) -> str:
        """The state's JSON with an empty message list (what the ``sessions`` row keeps;
        the recorded messages are stored apart, each appended once: :meth:`messages_json`).
        ``stored_json(s.head_json(), [s.messages_json()])`` is ``s.to_json()``."""
        fields = self.__dict__
        return self._head(self._derived(), fields) + self._tail(fields)

    def messages_json(self, start: int = 0) -> str:
        """The JSON array of the recorded messages from ``start`` on, each message's JSON as
        in :meth:`to_json`."""
        return _MESSAGES_TO_JSON(self.__dict__["messages"][start:]).decode()

    @classmethod
    def from_stored(cls, head_json: str, messages_json: Iterable[str]) -> "SessionState":
        """The state stored as :meth:`head_json` and the :meth:`messages_json` arrays of its
        messages, in order (parsed as the whole JSON text: :func:`stored_json`)."""
        return cls.from_json(stored_json(head_json, messages_json))

    # --- what the store and the assembler ask of a session --------------------------

    def _derived(self) -> _Derived:
        private = self.__pydantic_private__
        derived = private.get("_cache") if private is not None else None
        if derived is not None:  # fast path: nothing appended since the last call
            messages = self.messages
            count = derived.count
            if derived.messages is messages and count == len(messages) and (
                    not count or messages[-1] is derived.last):
                return derived
        if private is None:  # pragma: no cover - pydantic always sets it for this model
            private = {}
            object.__setattr__(self, "__pydantic_private__", private)
        derived = private.get("_cache")
        if derived is None:
            derived = private["_cache"] = _Derived()
        messages = self.messages
        count = len(messages)
        if (derived.messages is not messages or count < derived.count
                or (derived.count and messages[derived.count - 1] is not derived.last)):
            derived.__init__()  # type: ignore[misc]
            derived.messages = messages
        if count > derived.count:
            derived.extend(messages, count)
        return derived

    def events(self) -> list[DomainEvent]:
        derived = self._derived()
        events = derived.memo.get("events")
        if events is None:
            events = derived.memo["events"] = [
                event for message in self.ordered_messages() for event in message.events]
        return list(events)

    def ordered_messages(self) -> list[MessageRecorded]:
        """Messages in protocol order: 2.0.1 by seqNo (OCPP 2.0.1 E01/E07: seqNo is
        incremented per TransactionEvent), 1.6 in arrival order (a 1.6 charger delivers a
        transaction's messages in order)."""
        if self.ocpp_version == "1.6":
            return list(self.messages)
        return sorted(self.messages, key=lambda m: (m.seq_no is None, m.seq_no or 0))

    def has_fingerprint(self, fingerprint: str) -> bool:
        return fingerprint in self._derived().fingerprints

    def has_seq_no(self, seq_no: int) -> bool:
        return seq_no in self._derived().seq_nos

    def seq_nos(self) -> list[int]:
        """The 2.0.1 seqNos recorded, ascending (each once)."""
        return sorted(n for n in self._derived().seq_nos if n is not None)

    @property
    def has_offline_messages(self) -> bool:
        """Some recorded message was sent while the charger was offline (2.0.1)."""
        return self._derived().offline

    @property
    def stopped(self) -> bool:
        return self._derived().stopped

    @property
    def started(self) -> bool:
        return self._derived().started

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
        return self._derived().last_received_at

    @property
    def open_since(self) -> datetime | None:
        """``last_received_at`` while the session :attr:`is_open`, else None (the worker's
        idle-deadline index asks it after every message: one look at the derived facts)."""
        derived = self._derived()
        return None if derived.stopped or self.closed_idle is not None else derived.last_received_at

    def _first_of_events(self, index: int) -> Any:
        """The first connector id, id tag and start in protocol order (see
        :meth:`ordered_messages`), read from the messages with a start or details event
        only: ordered by the same stable key, they keep their relative order."""
        derived = self._derived()
        first = derived.first
        starters = derived.starters
        if first is None or first[0] != len(starters):  # read again only after a new starter
            connector_id = start_id_tag = start_timestamp = None
            found_connector = found_tag = found_start = False
            if self.ocpp_version != "1.6" and len(starters) > 1:
                starters = sorted(starters, key=lambda m: (m.seq_no is None, m.seq_no or 0))
            for event in [event for message in starters for event in message.events]:
                if isinstance(event, (TransactionStarted, TransactionDetailsReported)):
                    if not found_connector:
                        if event.connector_id is not None and self.ocpp_version == "1.6":
                            connector_id, found_connector = event.connector_id, True
                        elif event.evse_id is not None:
                            connector_id, found_connector = event.evse_id, True
                    if not found_tag and event.id_tag:
                        start_id_tag, found_tag = event.id_tag, True
                if not found_start and isinstance(event, TransactionStarted):
                    start_timestamp, found_start = event.timestamp, True
            first = derived.first = (len(derived.starters), connector_id, start_id_tag, start_timestamp)
        return first[index]

    @property
    def connector_id(self) -> int | None:
        """The connector (1.6) or EVSE (2.0.1) id the transaction runs on, when known."""
        return self._first_of_events(1)

    @property
    def start_id_tag(self) -> str | None:
        return self._first_of_events(2)

    @property
    def start_timestamp(self) -> datetime | None:
        return self._first_of_events(3)


def stored_json(head_json: str, messages_json: Iterable[str]) -> str:
    """The JSON text of a state stored in parts: ``head_json``, its JSON with an empty
    message list (:meth:`SessionState.head_json`), and JSON arrays of its messages in order
    (:meth:`SessionState.messages_json` of successive ranges). The result is the text the
    whole state was (or would have been) written as: ``to_json`` puts the messages between
    ``"messages":[`` and ``]`` and nothing else changes. The first ``,"messages":[`` is the
    field's: every ``"`` inside a JSON string is escaped, so ``,"`` occurs only between
    fields."""
    at = head_json.find(_MESSAGES_KEY)
    end = at + len(_MESSAGES_KEY)
    if at < 0 or head_json[end:end + 1] != "]":
        raise ValueError(f"not the JSON of a session state without messages: {head_json[:200]!r}")
    inner = []
    for chunk in messages_json:
        if not (chunk.startswith("[") and chunk.endswith("]")):
            raise ValueError(f"not a JSON array of recorded messages: {chunk[:200]!r}")
        if len(chunk) > 2:
            inner.append(chunk[1:-1])
    return "".join((head_json[:end], ",".join(inner), head_json[end:]))


assert tuple(SessionState.model_fields) == ("session_id", "charge_point_id", "transaction_id", "ocpp_version",
                                            "messages", "closed_idle", "issued"), \
    "update SessionState._head/_tail (to_json, head_json) for the new field"
