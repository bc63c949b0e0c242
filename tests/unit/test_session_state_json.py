"""The stored session state's JSON (issue 4 speed work): the fast writer and reader give
exactly what pydantic writes and reads, for every state the assembler produces, and
states stored before the fast path (any pydantic-written text) still load."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import BaseModel

from schemas.envelope import EventEnvelope
from schemas.readings import MeterReading, reading_of
from sessions import SessionAssembler, SessionState, fingerprint_of, summarize
from sessions import events as events_module
from traffic_support import simulated_envelopes


def _envelopes(seed: int) -> list[EventEnvelope]:
    return simulated_envelopes(40, seed, "J")


def _pydantic_json(state: SessionState) -> str:
    return BaseModel.model_dump_json(state)


def test_to_json_is_pydantic_json_after_every_event_and_reads_back():
    assembler = SessionAssembler()
    checked = 0
    for envelope in _envelopes(seed=3):
        outcome = assembler.apply(envelope)
        state = outcome.state
        if state is None:
            continue
        text = state.model_dump_json()
        assert text == _pydantic_json(state)
        # hot read (this process wrote the text) and cold read (pydantic) agree
        hot = SessionState.model_validate_json(text)
        cold = BaseModel.model_validate_json.__func__(SessionState, text)  # type: ignore[attr-defined]
        assert hot == cold == state
        assert _pydantic_json(hot) == _pydantic_json(cold) == text
        assert (hot.status, hot.start_timestamp, hot.last_received_at, hot.connector_id, hot.start_id_tag) == (
            cold.status, cold.start_timestamp, cold.last_received_at, cold.connector_id, cold.start_id_tag)
        if state.issued or state.stopped:
            assert summarize(hot, assembler.config).model_dump_json() == summarize(
                cold, assembler.config).model_dump_json()
        checked += 1
    assert checked > 100


def test_text_written_elsewhere_loads_through_pydantic():
    """A stored state this process did not write (an old database, another worker, a
    hand-edited row with other whitespace) is parsed by pydantic, as before."""
    assembler = SessionAssembler()
    for envelope in _envelopes(seed=5):
        assembler.apply(envelope)
    state = next(s for s in assembler.store.states.values() if s.stopped)
    text = state.model_dump_json()
    loaded = SessionState.model_validate_json(text)
    assert loaded == state and loaded.model_dump_json() == text
    spaced = text.replace('","', '", "')  # JSON with other separators: same state
    assert SessionState.model_validate_json(spaced.encode()) == state


def test_a_state_read_back_then_extended_writes_what_pydantic_writes():
    assembler = SessionAssembler()
    envelopes = _envelopes(seed=9)
    for envelope in envelopes[: len(envelopes) // 2]:
        assembler.apply(envelope)
    for session_id, state in list(assembler.store.states.items()):
        text = state.model_dump_json()
        assembler.store.put(SessionState.model_validate_json(text))
    for envelope in envelopes[len(envelopes) // 2:]:
        outcome = assembler.apply(envelope)
        if outcome.state is not None:
            assert outcome.state.model_dump_json() == _pydantic_json(outcome.state)


def test_derived_facts_follow_replaced_messages():
    """The derived facts are a cache over ``messages``: replacing the list (or copying the
    state with other messages) never serves stale facts."""
    assembler = SessionAssembler()
    for envelope in _envelopes(seed=11):
        assembler.apply(envelope)
    state = next(s for s in assembler.store.states.values() if s.stopped and len(s.messages) > 2)
    assert state.stopped
    without_stop = [m for m in state.messages if not any(e.type == "TransactionEnded" for e in m.events)]
    stop = next(m for m in state.messages if m not in without_stop)
    assert state.has_fingerprint(stop.fingerprint)
    copy = state.model_copy(update={"messages": without_stop})
    assert copy.stopped is False and state.stopped is True
    state.messages = list(without_stop)
    assert state.stopped is False
    assert not state.has_fingerprint(stop.fingerprint)
    assert state.model_dump_json() == _pydantic_json(state)
    assert state.last_received_at == max(m.received_at for m in without_stop)


def test_empty_state_and_closed_idle_round_trip():
    at = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)
    state = SessionState(session_id="A%2FB/1", charge_point_id="A/B", transaction_id="1", ocpp_version="1.6")
    assert state.model_dump_json() == _pydantic_json(state)
    odd = SessionState(session_id='Z\u00fcrich-"1"\t\\/\u20ac', charge_point_id='Z\u00fcrich-"1"\t\\',
                       transaction_id="\u20ac\x01", ocpp_version="2.0.1")
    assert odd.model_dump_json() == _pydantic_json(odd)
    assert SessionState.model_validate_json(odd.model_dump_json()) == odd
    state.closed_idle = events_module.SessionClosedIdle(closed_at=at, last_received_at=at)
    state.issued.append(events_module.CdrIssued(version=0, cdr_id="S\u00e9\"x", content_hash="h"))
    text = state.model_dump_json()
    assert text == _pydantic_json(state)
    assert SessionState.model_validate_json(text) == state


def _same_as_validated(value) -> None:
    """``value`` (built by ``trusted``) equals what validating its fields gives: the same
    field values of the same types, the same JSON."""
    validated = type(value)(**value.__dict__)
    assert validated == value
    assert list(validated.__dict__) == list(value.__dict__)
    assert value.model_fields_set == validated.model_fields_set  # every field given
    for name, field_value in value.__dict__.items():
        assert type(validated.__dict__[name]) is type(field_value), name
    assert validated.model_dump_json() == value.model_dump_json()


def _every_kind_of_event() -> list[EventEnvelope]:
    """Hand-made messages giving each event type, per-phase sums, and 1.6 SignedData."""
    t0 = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)

    def env(action, payload, minute, version="2.0.1", response=None):
        at = t0 + timedelta(minutes=minute)
        return EventEnvelope(charge_point_id="K-1", ocpp_version=version, action=action,
                             message_id=f"k-{action}-{minute}", received_at=at + timedelta(seconds=1),
                             payload=payload, response=response)

    def iso(minute):
        return (t0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")

    def te(seq, minute, kind="Updated", info=None, **extra):
        payload = {"eventType": kind, "timestamp": iso(minute), "triggerReason": "Trigger", "seqNo": seq,
                   "transactionInfo": {"transactionId": "k-tx", **(info or {})}, **extra}
        return env("TransactionEvent", payload, minute)

    phases = [{"timestamp": iso(5), "sampledValue": [
        {"value": 1000.5, "phase": "L1", "unitOfMeasure": {"unit": "Wh"}},
        {"value": 1000.25, "phase": "L2-N", "unitOfMeasure": {"unit": "Wh"}},
        {"value": 7, "phase": "L3", "unitOfMeasure": {"unit": "kWh", "multiplier": 0}},
        {"value": 16, "phase": "L1", "measurand": "Current.Import", "unitOfMeasure": {"unit": "A"}},
        {"value": 15.5, "phase": "L2", "measurand": "Current.Import", "unitOfMeasure": {"unit": "A"}},
        {"value": 11, "measurand": "Power.Active.Import", "location": "Inlet", "unitOfMeasure": {"unit": "kW"}},
        {"value": 10900, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
        {"value": 80, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}}]}]
    return [
        te(0, 0, "Started", {"chargingState": "Charging"}, evse={"id": 1, "connectorId": 1},
           idToken={"idToken": "TOKEN-1", "type": "ISO14443"}),
        te(1, 2, idToken={"idToken": "TOKEN-1", "type": "ISO14443"}),
        te(2, 3),
        te(3, 5, meterValue=phases),
        te(4, 9, "Ended", {"stoppedReason": "EVDisconnected"}),
        env("StartTransaction", {"connectorId": 2, "idTag": "T16", "meterStart": 1000, "timestamp": iso(0)}, 0,
            "1.6", {"transactionId": 77, "idTagInfo": {"status": "Accepted"}}),
        env("MeterValues", {"connectorId": 2, "transactionId": 77, "meterValue": [{"timestamp": iso(4), "sampledValue": [
            {"value": "0A1B", "format": "SignedData"},
            {"value": "600", "phase": "L1", "unit": "Wh"}, {"value": "650", "phase": "L2", "unit": "Wh"}]}]},
            4, "1.6"),
        env("StopTransaction", {"transactionId": 77, "meterStop": 2300, "timestamp": iso(8), "reason": "Local",
                                "transactionData": [{"timestamp": iso(8), "sampledValue": [{"value": "2.3", "unit": "kWh"}]}]},
            8, "1.6"),
    ]


def test_events_built_without_validation_equal_validated_ones():
    assembler = SessionAssembler()
    kinds: set[str] = set()
    for envelope in _envelopes(seed=13) + _every_kind_of_event():
        assert assembler.apply(envelope).kind == "applied" or envelope.charge_point_id != "K-1"
    for state in assembler.store.states.values():
        for message in state.messages:
            _same_as_validated(message)
            for event in message.events:
                kinds.add(event.type)
                _same_as_validated(event)
                for sample in getattr(event, "samples", ()):
                    _same_as_validated(sample)
    assert kinds == {"TransactionStarted", "TransactionDetailsReported", "TransactionUpdated",
                     "MeterValuesRecorded", "ChargingStateChanged", "TransactionEnded"}
    summed = [sample for state in assembler.store.states.values() for message in state.messages
              for event in message.events for sample in getattr(event, "samples", ()) if sample.phases_summed]
    # 2.0.1: 1000.5 + 1000.25 Wh + 7 kWh = 1.0005 + 1.00025 + 7 = 9.00075 kWh; current 16 + 15.5 = 31.5 A;
    # power: the Outlet total 10900 W = 10.9 kW (not the Inlet's 11 kW). 1.6: 600 + 650 Wh = 1.25 kWh.
    assert sorted((s.energy_kwh, s.current_a, s.power_kw) for s in summed) == [
        (Decimal("1.25"), None, None), (Decimal("9.00075"), Decimal("31.5"), Decimal("10.9"))]


def test_readings_built_without_validation_equal_validated_ones():
    assembler = SessionAssembler()
    completed = []
    for envelope in _envelopes(seed=17) + _every_kind_of_event():
        completed.extend(assembler.apply(envelope).completed)
    assert len(completed) > 10
    for session in completed:
        for reading in session.readings:
            validated = MeterReading(**reading.__dict__)
            assert validated == reading and validated.model_dump_json() == reading.model_dump_json()
            assert {k: type(v) for k, v in validated.__dict__.items()} == {
                k: type(v) for k, v in reading.__dict__.items()}


def test_reading_of_refuses_a_naive_timestamp_like_the_validator():
    naive = datetime(2026, 11, 2, 8)
    with pytest.raises(ValueError, match="time zone"):
        reading_of(naive, Decimal("1"), None, None, True)


def test_fingerprint_is_the_sha256_of_the_canonical_json_as_stored_before():
    """Stored states keep fingerprints: the prebuilt encoder writes what json.dumps wrote."""
    payload = {"b": [1, 2.5, None, True], "a": {"z": "\u00e9\u20ac\"", "y": Decimal("1.50")},
               "t": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    text = json.dumps(["MeterValues", payload], sort_keys=True, separators=(",", ":"), default=str)
    assert fingerprint_of("MeterValues", payload) == hashlib.sha256(text.encode()).hexdigest()


#: A state as the first version of session assembly stored it (commit 9111bb9: no
#: ``id_tag_status`` in the events; here without ``closed_idle`` / ``issued`` keys at all).
OLD_STORED_STATE = (
    '{"session_id":"CP-OLD/12","charge_point_id":"CP-OLD","transaction_id":"12","ocpp_version":"1.6",'
    '"messages":[{"message_id":"m1","action":"StartTransaction","fingerprint":"f1",'
    '"received_at":"2026-11-02T08:00:01Z","seq_no":null,"offline":false,"events":[{"type":"TransactionStarted",'
    '"timestamp":"2026-11-02T08:00:00Z","connector_id":1,"evse_id":1,"id_tag":"TAG","meter_start_kwh":"1000"}]},'
    '{"message_id":"m2","action":"StopTransaction","fingerprint":"f2","received_at":"2026-11-02T08:30:01Z",'
    '"seq_no":null,"offline":false,"events":[{"type":"TransactionEnded","timestamp":"2026-11-02T08:30:00Z",'
    '"meter_stop_kwh":"1007.5","reason":"Local","id_tag":null,"matched_from_transaction_id":null}]}]}'
)


def test_a_state_stored_by_an_older_version_loads_and_writes_as_pydantic_would():
    state = SessionState.model_validate_json(OLD_STORED_STATE)
    assert state.stopped and state.status == "completed" and state.issued == [] and state.closed_idle is None
    assert state.has_fingerprint("f1") and state.connector_id == 1 and state.start_id_tag == "TAG"
    # 1007.5 - 1000 kWh = 7.5 kWh delivered
    assert summarize(state, SessionAssembler().config).total_energy_kwh == Decimal("7.5")
    assert state.model_dump_json() == _pydantic_json(state)
    assert '"id_tag_status":null' in state.model_dump_json()


# --- stored form: the JSON without messages + the messages appended (sessions + session_messages) ---


def test_the_stored_parts_add_up_to_the_state_json_after_every_event():
    """The worker stores ``head_json`` in the session row and appends ``messages_json(n)``
    (the messages since the last write) to ``session_messages``: read back in any split, the
    text is ``to_json`` byte for byte and the state equal to the one written."""
    from sessions.events import stored_json

    assembler = SessionAssembler()
    written: dict[str, list[str]] = {}  # session id -> the arrays appended so far
    checked = 0
    envelopes = _envelopes(seed=11)
    for envelope in envelopes[:len(envelopes) * 2 // 3]:  # some sessions stay open (closed idle below)
        state = assembler.apply(envelope).state
        if state is None:
            continue
        arrays = written.setdefault(state.session_id, [])
        stored = sum(len(json.loads(a)) for a in arrays)
        arrays.append(state.messages_json(stored))
        head = state.head_json()
        assert json.loads(head) == {**json.loads(_pydantic_json(state)), "messages": []}
        text = stored_json(head, arrays)
        assert text == _pydantic_json(state) == stored_json(head, [state.messages_json()])
        cold = BaseModel.model_validate_json.__func__(SessionState, text)  # type: ignore[attr-defined]
        assert SessionState.from_stored(head, arrays) == cold == state
        checked += 1
    assert checked > 100
    open_states = [s for s in assembler.store.states.values() if s.is_open]
    for state in open_states:
        state.head_json()  # known before the close
    assembler.close_idle(max(s.last_received_at for s in open_states) + timedelta(days=30))
    assert open_states and all(s.closed_idle is not None for s in open_states)
    for state in assembler.store.states.values():
        assert stored_json(state.head_json(), [state.messages_json()]) == _pydantic_json(state)


@pytest.mark.parametrize("charge_point_id", ['CP,"messages":[]', 'C\\"P', "CP\u00e9\u2028", '],"closed_idle":null'])
def test_the_stored_parts_add_up_for_any_identifiers(charge_point_id):
    """The messages go after the first ``,"messages":[`` of the head: never inside a string,
    whatever the identifiers hold (every ``"`` in a JSON string is escaped)."""
    from sessions.events import stored_json

    assembler = SessionAssembler()
    for envelope in _envelopes(seed=3)[:400]:
        assembler.apply(envelope.model_copy(update={"charge_point_id": charge_point_id}))
    states = [s for s in assembler.store.states.values() if s.messages]
    assert states
    for state in states:
        text = stored_json(state.head_json(), [state.messages_json(0)])
        assert text == _pydantic_json(state)
        assert SessionState.from_stored(state.head_json(), [state.messages_json()]) == state
    with pytest.raises(ValueError):
        stored_json(states[0].to_json(), [])  # a whole state is not a head
    with pytest.raises(ValueError):
        stored_json(states[0].head_json(), ['{"message_id": "x"}'])  # not an array
