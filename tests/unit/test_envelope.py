from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas.envelope import EventEnvelope


def _envelope(**overrides):
    fields = dict(
        charge_point_id="CP-1",
        ocpp_version="1.6",
        action="Heartbeat",
        message_id="m-1",
        received_at=datetime(2026, 11, 1, 12, tzinfo=timezone(timedelta(hours=1))),
        payload={},
    )
    fields.update(overrides)
    return EventEnvelope(**fields)


def test_envelope_round_trips_through_bytes_and_normalises_to_utc():
    env = _envelope()
    back = EventEnvelope.from_bytes(env.to_bytes())
    assert back == env
    assert back.received_at == datetime(2026, 11, 1, 11, tzinfo=timezone.utc)
    assert env.kafka_key() == b"CP-1"


def test_envelope_rejects_naive_timestamp_and_unknown_version():
    with pytest.raises(ValidationError):
        _envelope(received_at=datetime(2026, 11, 1, 12))
    with pytest.raises(ValidationError):
        _envelope(ocpp_version="1.5")


# --- from_bytes's fast path (schemas.envelope._plain_envelope) decides like validate_json ---

import json  # noqa: E402

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from pydantic_core import from_json  # noqa: E402

from schemas.envelope import _plain_envelope  # noqa: E402
from streams.simulate import simulate_traffic  # noqa: E402

_VALIDATE_JSON = EventEnvelope.__pydantic_validator__.validate_json


def _decision(parse, raw):
    """What ``parse(raw)`` leaves: the model's whole state with value types, or the error text."""
    try:
        env = parse(raw)
    except Exception as exc:  # noqa: BLE001 - ValidationError, or what the _utc validator raises
        return ("refused", type(exc), str(exc))
    # repr: the payload may hold NaN (not equal to itself) and -0.0 (equal to 0.0)
    return ("accepted", env.__class__, repr(env.__dict__), [type(v) for v in env.__dict__.values()],
            env.received_at.tzinfo, env.__pydantic_fields_set__, env.__pydantic_extra__, env.__pydantic_private__)


def _same_as_pydantic(raw):
    assert _decision(EventEnvelope.from_bytes, raw) == _decision(_VALIDATE_JSON, raw)


def test_simulated_records_parse_like_validate_json_and_take_the_fast_path():
    traffic = simulate_traffic(4, 24, seed=3, charge_point_prefix="T", malformed=10, duplicates=3)
    plain = 0
    for record in traffic.records:
        _same_as_pydantic(record.value)
        try:
            data = from_json(record.value)
        except ValueError:
            continue
        plain += isinstance(data, dict) and _plain_envelope(data) is not None
    assert plain >= len(traffic.records) - 10  # all but (some of) the malformed ones


_BASE = {"charge_point_id": "CP-1", "ocpp_version": "2.0.1", "action": "TransactionEvent", "message_id": "m-1",
         "received_at": "2026-11-02T08:00:00.123Z", "payload": {"eventType": "Started", "seqNo": 1.5}}
_LONG = "x" * 255


@pytest.mark.parametrize("change", [
    {}, {"response": None}, {"response": {"transactionId": 4}}, {"response": []}, {"response": "x"},
    {"response": 1}, {"extra": 1}, {"charge_point_id": ""}, {"charge_point_id": _LONG},
    {"charge_point_id": _LONG + "x"}, {"charge_point_id": "é" * 255}, {"charge_point_id": "é" * 256},
    {"charge_point_id": 7}, {"charge_point_id": None}, {"action": "A" * 64}, {"action": "A" * 65}, {"action": ""},
    {"message_id": "m" * 64}, {"message_id": "m" * 65}, {"message_id": ""}, {"message_id": 12},
    {"ocpp_version": "1.6"}, {"ocpp_version": "2.1"}, {"ocpp_version": "1.5"}, {"ocpp_version": 1.6},
    {"ocpp_version": "2.0.1 "}, {"ocpp_version": "2.0"}, {"ocpp_version": "2"}, {"payload": []}, {"payload": None}, {"payload": "{}"},
    {"payload": {"a": float("nan"), "b": 10**30, "c": -0.0, "d": [None, True, {"e": "\u00e9"}]}},
    {"received_at": "2026-11-02T08:00:00Z"}, {"received_at": "2026-11-02T09:00:00+01:00"},
    {"received_at": "2026-11-02T08:00:00.123456-03:30"}, {"received_at": "2026-11-02T08:00:00.1234567Z"},
    {"received_at": "2026-11-02T08:00:00"}, {"received_at": "2026-11-02 08:00:00Z"},
    {"received_at": "2026-11-02t08:00:00z"}, {"received_at": "2026-11-02T08:00:00+00:60"},
    {"received_at": "2026-11-02T08:00:60Z"}, {"received_at": "2026-02-30T08:00:00Z"}, {"received_at": "2026-11-02"},
    {"received_at": 1793606400}, {"received_at": 1793606400.5}, {"received_at": None},
    {"received_at": "0001-01-01T00:00:00+01:00"}, {"received_at": "9999-12-31T23:59:59-01:00"},
])
def test_envelope_variants_decide_like_validate_json(change):
    fields = {**_BASE, **change}
    _same_as_pydantic(json.dumps(fields).encode())
    for missing in _BASE:
        _same_as_pydantic(json.dumps({k: v for k, v in fields.items() if k != missing}).encode())


@pytest.mark.parametrize("raw", [
    b"", b"null", b"[]", b"{}", b"\x00not json", b"\xef\xbb\xbf{}", b'{"a": "\\ud800"}',
    json.dumps(_BASE).encode() + b" x", json.dumps(_BASE).encode() + b"\n",
    # duplicate keys: the last one counts, in both parsers
    b'{"charge_point_id": "", ' + json.dumps(_BASE).encode()[1:],
    json.dumps(_BASE).encode()[:-1] + b', "charge_point_id": ""}',
    json.dumps(_BASE).encode()[:-1] + b', "payload": {"x": 1, "x": 2}}',
    json.dumps(_BASE).encode().decode().encode("utf-16"),
])
def test_odd_record_values_decide_like_validate_json(raw):
    _same_as_pydantic(raw)


@pytest.mark.parametrize("value", [None, 5, memoryview(json.dumps(_BASE).encode()), json.dumps(_BASE),
                                   bytearray(json.dumps(_BASE).encode())])
def test_record_values_of_other_types_decide_like_validate_json(value):
    """A tombstone's None (or any non-bytes value) gets pydantic's ValidationError, as before."""
    _same_as_pydantic(value)


_TEXT = st.one_of(st.text(max_size=70), st.sampled_from(["", "a", "x" * 64, "x" * 65, "x" * 255, "x" * 256]))
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(fields=st.fixed_dictionaries({}, optional={
    "charge_point_id": st.one_of(_TEXT, _JSON),
    "ocpp_version": st.one_of(st.sampled_from(["1.6", "2.0.1", "2.1", "1.5", "2.0"]), _JSON),
    "action": st.one_of(_TEXT, _JSON),
    "message_id": st.one_of(_TEXT, _JSON),
    "received_at": st.one_of(
        st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?([Zz]|[+-][0-9]{2}:?[0-9]{2})?",
                      fullmatch=True), _JSON),
    "payload": _JSON, "response": _JSON, "extra": _JSON}))
@example(fields={**_BASE, "response": None})
def test_random_envelopes_decide_like_validate_json(fields):
    _same_as_pydantic(json.dumps(fields).encode())


# --- received_at's shortcut (schemas.envelope._received_at) reads like parse_utc ---

from schemas.envelope import _received_at  # noqa: E402
from schemas.ocpp_base import NotFast, parse_utc  # noqa: E402


def _read(parse, value):
    try:
        parsed = parse(value)
    except NotFast:
        return "NotFast"
    return (parsed, parsed.tzinfo, type(parsed))


_TIMESTAMP_TEXTS = [
    "2026-11-02T08:00:00Z", "2026-11-02T08:00:00.1Z", "2026-11-02T08:00:00.123Z", "2026-11-02T08:00:00.123456Z",
    "2026-11-02T08:00:00.1234567Z", "2026-11-02T08:00:00.Z", "2026-11-02T08:00:00z", "2026-11-02t08:00:00Z",
    "2026-11-02 08:00:00Z", "2026-11-02T08:00Z", "2026-11-02T08:00:00+00:00", "2026-11-02T08:00:00-03:30",
    "2026-13-02T08:00:00Z", "2026-02-29T08:00:00Z", "2024-02-29T08:00:00Z", "2026-11-02T24:00:00Z",
    "2026-11-02T08:60:00Z", "2026-11-02T08:00:60Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z", "2026-11-0２T08:00:00Z", "٢٠٢٦-11-02T08:00:00Z", "2026-11-02T08:00:00Z ",
    " 2026-11-02T08:00:00Z", "2026-11-02T08:00:00ZZ", "", "Z", "2026-11-02", 20261102, None, b"2026-11-02T08:00:00Z",
    "2026-11-02T08:00:00\ud800Z", "2026-11-02T08:00:00.12345\u00e9Z", "2026-11-02T08:00:00.000000Z",
]


@pytest.mark.parametrize("value", _TIMESTAMP_TEXTS)
def test_received_at_reads_like_parse_utc(value):
    assert _read(_received_at, value) == _read(parse_utc, value)


@settings(max_examples=1500, deadline=None)
@given(value=st.one_of(
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,7})?Z?", fullmatch=True),
    st.from_regex(r"[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z", fullmatch=True),
    st.text(alphabet="0123456789-T:.Z+ ", min_size=18, max_size=28)))
def test_random_timestamps_read_like_parse_utc(value):
    assert _read(_received_at, value) == _read(parse_utc, value)
