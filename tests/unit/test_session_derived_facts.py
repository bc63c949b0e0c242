"""Facts a session state keeps up to date while messages are appended (issue 4 speed work,
round 2) equal what a scan of all its messages in protocol order gives.

The reference functions below are the scans the state used to run on every call."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from schemas.envelope import EventEnvelope
from sessions import SessionAssembler, SessionState
from sessions.events import TransactionDetailsReported, TransactionStarted
from traffic_support import simulated_envelopes

T0 = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)


def _envelopes(seed: int) -> list[EventEnvelope]:
    return simulated_envelopes(60, seed, "D")


def _first_of_events_scan(state: SessionState) -> tuple:
    """(connector id, start id tag, start timestamp) by scanning every event in order."""
    ordered = (list(state.messages) if state.ocpp_version == "1.6"
               else sorted(state.messages, key=lambda m: (m.seq_no is None, m.seq_no or 0)))
    connector_id = start_id_tag = start_timestamp = None
    found_connector = found_tag = found_start = False
    for event in [e for m in ordered for e in m.events]:
        if isinstance(event, (TransactionStarted, TransactionDetailsReported)):
            if not found_connector:
                if event.connector_id is not None and state.ocpp_version == "1.6":
                    connector_id, found_connector = event.connector_id, True
                elif event.evse_id is not None:
                    connector_id, found_connector = event.evse_id, True
            if not found_tag and event.id_tag:
                start_id_tag, found_tag = event.id_tag, True
        if not found_start and isinstance(event, TransactionStarted):
            start_timestamp, found_start = event.timestamp, True
    return connector_id, start_id_tag, start_timestamp


def _facts(state: SessionState) -> tuple:
    return (state.connector_id, state.start_id_tag, state.start_timestamp, state.seq_nos(),
            state.has_offline_messages, state.open_since)


def _facts_scan(state: SessionState) -> tuple:
    stopped = any(type(e).__name__ == "TransactionEnded" for m in state.messages for e in m.events)
    return (*_first_of_events_scan(state),
            sorted({m.seq_no for m in state.messages if m.seq_no is not None}),
            any(m.offline for m in state.messages),
            # open_since: the last received_at while neither stopped nor closed idle
            None if stopped or state.closed_idle is not None else max(m.received_at for m in state.messages))


@pytest.mark.parametrize("seed", [1, 5, 9])
def test_kept_facts_equal_a_scan_after_every_event(seed):
    assembler = SessionAssembler()
    checked = 0
    for envelope in _envelopes(seed):
        state = assembler.apply(envelope).state
        if state is None:
            continue
        assert _facts(state) == _facts_scan(state)
        # a state read back cold (parsed) agrees
        cold = SessionState.model_validate_json(state.model_dump_json(), strict=False)
        assert _facts(cold) == _facts(state)
        checked += 1
    assert checked > 200


def _te(tx: str, seq_no: int, minute: int, event_type: str = "Updated", *, evse: dict | None = None,
        id_token: str | None = None, offline: bool = False) -> EventEnvelope:
    ts = T0 + timedelta(minutes=minute)
    payload: dict = {"eventType": event_type, "timestamp": ts.isoformat().replace("+00:00", "Z"),
                     "triggerReason": "Authorized", "seqNo": seq_no, "transactionInfo": {"transactionId": tx}}
    if evse is not None:
        payload["evse"] = evse
    if id_token is not None:
        payload["idToken"] = {"idToken": id_token, "type": "ISO14443"}
    if offline:
        payload["offline"] = True
    return EventEnvelope(charge_point_id="CP-D", ocpp_version="2.0.1", action="TransactionEvent",
                         message_id=f"m-{seq_no}-{minute}", received_at=ts + timedelta(seconds=1),
                         payload=payload)


def test_details_arriving_before_the_start_follow_seq_no_order():
    """2.0.1: facts come from the first message in seqNo order, not in arrival order."""
    assembler = SessionAssembler()
    arrivals = [
        _te("tx-1", 3, 30, evse={"id": 7, "connectorId": 2}, id_token="LATE", offline=True),
        _te("tx-1", 1, 10, id_token="EARLY"),
        _te("tx-1", 0, 5, "Started", evse={"id": 4, "connectorId": 1}),
        _te("tx-1", 5, 50, "Ended"),
    ]
    last = T0 + timedelta(minutes=30, seconds=1)  # open since the latest received_at, not the last arrival's
    expected = [
        (7, "LATE", None, [3], True, last),
        (7, "EARLY", None, [1, 3], True, last),
        (4, "EARLY", T0 + timedelta(minutes=5), [0, 1, 3], True, last),
        (4, "EARLY", T0 + timedelta(minutes=5), [0, 1, 3, 5], True, None),  # stopped
    ]
    for envelope, facts in zip(arrivals, expected):
        state = assembler.apply(envelope).state
        assert state is not None
        assert _facts(state) == _facts_scan(state) == facts


# --- the same values as the code it replaced ---------------------------------------------

def test_cdr_id_digest_is_the_base32_sha256_of_the_json_pair_as_before():
    """Base32 of the digest's first 20 bytes starts with the same 26 characters as base32 of
    all 32 (each 5 bytes give 8 characters); the JSON is ``json.dumps(..., ensure_ascii=False)``."""
    import base64
    import hashlib
    import json

    from sessions.identity import _digest

    for charge_point_id, transaction_id in [("CP-1", "12"), ("CP-1", 12), ("\u00e9\"/\\x", "tx"),
                                            ("\x00\u2028", "\U0001f600"), ("", "")]:
        canonical = json.dumps([charge_point_id, str(transaction_id)], ensure_ascii=False)
        raw = hashlib.sha256(canonical.encode("utf-8")).digest()
        assert _digest(charge_point_id, transaction_id) == base64.b32encode(raw).decode("ascii")[:26]


def test_json_pair_of_the_cdr_id_digest_is_json_dumps():
    """The pair written directly (round 3) is ``json.dumps(..., ensure_ascii=False)``: random
    strings over quotes, backslashes, control, non-printable and non-ASCII characters."""
    import json
    import random

    from sessions.identity import _json_pair

    class Id(str):
        def __str__(self) -> str:
            return "other"

        def __format__(self, spec: str) -> str:
            return "other"

    rng = random.Random(4)
    alphabet = ["a", "Z", "0", "-", "/", "%", " ", '"', "\\", "\x00", "\x1f", "\x7f", "\u00ad", "\u00e9",
                "\u2028", "\ud800", "\U0001f600", "\n", "\t"]
    cases = [("CP-1", "12"), (Id("CP"), "1"), ("CP", Id("tx")), ("", "")]
    cases += [("".join(rng.choices(alphabet, k=rng.randrange(0, 6))), "".join(rng.choices(alphabet, k=rng.randrange(0, 6))))
              for _ in range(3000)]
    for charge_point_id, transaction_id in cases:
        assert _json_pair(charge_point_id, transaction_id) == json.dumps([charge_point_id, transaction_id],
                                                                         ensure_ascii=False)


@pytest.mark.parametrize("seed", [2, 7])
def test_content_hash_is_the_sha256_of_the_json_without_the_version_and_notes(seed):
    import hashlib

    from sessions import summarize
    from sessions.fold import _NOT_HASHED

    assembler = SessionAssembler()
    hashed = 0
    for envelope in _envelopes(seed):
        state = assembler.apply(envelope).state
        if state is not None and state.issued:
            summary = summarize(state, assembler.config)
            for version in (summary, summary.as_version(1)):
                body = version.model_dump_json(exclude=set(_NOT_HASHED))
                assert version.content_hash() == hashlib.sha256(body.encode()).hexdigest()
                hashed += 1
    assert hashed > 50


def test_fingerprints_of_varied_payloads_are_those_of_json_dumps():
    import hashlib
    import json
    from decimal import Decimal

    from sessions import fingerprint_of

    payloads = [
        {}, {"a": []}, {"z": 1, "a": {"y": [1.5, 1e-07, 1e16, 2**70, -0.0, True, False, None]}},
        {"s": "\u00e9\u20ac\"\\\n\t\x00\x7f\U0001f600", "k\u00e9y": "v"},
        {"nested": [{"b": 1, "a": 2}, [[], {}], "x"]}, {"n": float("inf"), "m": float("nan")},
        {"decimal": Decimal("1.50"), "when": T0},
    ]
    for payload in payloads:
        text = json.dumps(["MeterValues", payload], sort_keys=True, separators=(",", ":"), default=str)
        assert fingerprint_of("MeterValues", payload) == hashlib.sha256(text.encode()).hexdigest()


def test_values_built_without_validation_share_a_fields_set_nobody_changes():
    from sessions.events import Sample, trusted

    values = {"timestamp": T0, "energy_kwh": None, "power_kw": None, "current_a": None, "context": None,
              "phases_summed": False}
    first, second = trusted(Sample, dict(values)), trusted(Sample, dict(values))
    validated = Sample(**values)
    assert first.model_fields_set == validated.model_fields_set == set(Sample.model_fields)
    copy = first.model_copy(update={"context": "Sample.Periodic"})
    assert copy.context == "Sample.Periodic" and first.context is None
    assert second.model_fields_set == set(Sample.model_fields) and first == second == validated
    with pytest.raises(Exception):  # noqa: B017 - frozen: pydantic refuses any assignment
        first.context = "x"  # type: ignore[misc]
    assert first.model_fields_set == set(Sample.model_fields)


def test_base32_head_is_the_start_of_base32():
    import base64
    import hashlib

    from sessions.identity import _base32_head

    for n in range(2000):
        raw = hashlib.sha256(n.to_bytes(4, "big")).digest()
        assert _base32_head(raw) == base64.b32encode(raw).decode("ascii")[:26]
    for raw in (bytes(32), b"\xff" * 32, bytes(range(32))):
        assert _base32_head(raw) == base64.b32encode(raw).decode("ascii")[:26]


def test_a_new_state_equals_a_validated_one():
    fast = SessionState.new("CP/1", "CP", "1", "2.0.1")
    validated = SessionState(session_id="CP/1", charge_point_id="CP", transaction_id="1", ocpp_version="2.0.1")
    assert fast == validated and fast.model_fields_set == validated.model_fields_set
    assert fast.model_dump_json() == validated.model_dump_json()
    assert fast.messages == [] and fast.issued == [] and fast.messages is not SessionState.new("a", "b", "c", "1.6").messages
    assert not fast.stopped and fast.is_open and fast.last_received_at is None
    with pytest.raises(ValueError):  # not a str: validated as before
        SessionState.new("CP/1", "CP", 1, "1.6")  # type: ignore[arg-type]


def test_event_kinds_by_class_are_what_isinstance_says():
    """The derived facts look an event's kind up by its class (sessions.events._EVENT_KINDS)
    instead of isinstance: every class of the DomainEvent union is there with the kind the
    isinstance chain gives, and an event of another class (a subclass) still takes the chain."""
    import typing

    from sessions import events

    union = typing.get_args(typing.get_args(events.DomainEvent)[0])
    assert set(events._EVENT_KINDS) == set(union)
    for cls in union:
        fields = {name: (T0 if name == "timestamp" else ()) for name, f in cls.model_fields.items() if f.is_required()}
        if "charging_state" in fields:
            fields["charging_state"] = "Charging"
        assert events._EVENT_KINDS[cls] == events._event_kind_of(cls(**fields)), cls

    class LateEnded(events.TransactionEnded):
        pass

    state = SessionState(session_id="CP/1", charge_point_id="CP", transaction_id="1", ocpp_version="2.0.1")
    state.messages.append(events.MessageRecorded(message_id="m", action="TransactionEvent", fingerprint="f",
                                                 received_at=T0, events=(TransactionStarted(timestamp=T0),)))
    assert state.started and not state.stopped
    state.messages.append(events.MessageRecorded.model_construct(
        message_id="n", action="TransactionEvent", fingerprint="g", received_at=T0, seq_no=None, offline=False,
        events=(LateEnded(timestamp=T0),)))
    assert state.stopped
