"""The fast paths of ``validate_call`` decide exactly like the detailed path.

``schemas.ocpp.validate_call`` confirms a payload with a generated schema check
(``schemas.ocpp_fastcheck``) and builds the billed models directly (``FAST_CALL_MODELS`` of
``schemas.ocpp16`` / ``schemas.ocpp201``). The reference here is the detailed path written
out plainly: normalise, ``jsonschema`` (best match as the reason), ``model_validate``. Both
must give the same model (field values with their exact Decimal digits and UTC datetimes,
fields set, private attributes) or the same reason, word for word.
"""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jsonschema.exceptions import best_match
from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError

from payload_mutation import mutate
from schemas import ocpp16, ocpp201
from schemas.ocpp import (
    _VERSION_MODULES,
    _check_version_and_action,
    _pydantic_reason,
    _schema_reason,
    _validator,
    validate_call,
)
from schemas.ocpp_base import InvalidMessage, NotFast, fast_utc, parse_utc

T = "2026-11-02T08:00:00Z"

BASES = {
    ("1.6", "StartTransaction"): {"connectorId": 1, "idTag": "04A2B3C4D5", "meterStart": 1000, "timestamp": T,
                                  "reservationId": 3},
    ("1.6", "MeterValues"): {"connectorId": 1, "transactionId": 5, "meterValue": [
        {"timestamp": T, "sampledValue": [
            {"value": "12.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register", "phase": "L1",
             "context": "Sample.Periodic", "location": "Outlet", "format": "Raw"},
            {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "AP;0;3;ALCV3ABBBISHMA2RYEGAZE3HV5YQBQRQAEHAR", "format": "SignedData"},
            {"value": "230.1", "measurand": "Voltage", "unit": "V"}]}]},
    ("1.6", "StopTransaction"): {"transactionId": 5, "meterStop": 2000, "timestamp": "2026-11-02T09:00:00.123+01:00",
                                 "reason": "Local", "idTag": "X", "transactionData": [
                                     {"timestamp": T, "sampledValue": [{"value": "2000"}]}]},
    ("2.0.1", "TransactionEvent"): {
        "eventType": "Started", "timestamp": T, "triggerReason": "Authorized", "seqNo": 0, "offline": False,
        "numberOfPhasesUsed": 3, "cableMaxCurrent": 32, "reservationId": 9,
        "transactionInfo": {"transactionId": "tx-1", "chargingState": "Charging", "remoteStartId": 1,
                            "timeSpentCharging": 10, "stoppedReason": "Local"},
        "evse": {"id": 1, "connectorId": 1}, "idToken": {"idToken": "abc", "type": "ISO14443"},
        "meterValue": [{"timestamp": "2026-11-02T08:00:00.5-03:30", "sampledValue": [
            {"value": 12.5, "context": "Transaction.Begin", "measurand": "Energy.Active.Import.Register",
             "phase": "L2", "location": "Outlet", "unitOfMeasure": {"unit": "kWh", "multiplier": 0}},
            {"value": 7, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
            {"value": "16.5", "measurand": "Current.Import", "unitOfMeasure": {"unit": "A", "multiplier": 0}},
            {"value": 3, "unitOfMeasure": {"multiplier": 3}}]}],
        "customData": {"vendorId": "acme", "x": 1}},
    ("2.1", "TransactionEvent"): {
        "eventType": "Updated", "timestamp": T, "triggerReason": "MeterValuePeriodic", "seqNo": 4,
        "transactionInfo": {"transactionId": "tx-1", "chargingState": "SuspendedEV", "operationMode": "ChargingOnly"},
        "meterValue": [{"timestamp": T, "sampledValue": [{"value": 1, "unitOfMeasure": {"unit": "Wh"}}]}]},
}


def reference(version: str, action: str, payload: Any) -> BaseModel | None:
    """The detailed path on its own: what ``validate_call`` decided before the fast paths."""
    file_name = _check_version_and_action(version, action, False)
    if not isinstance(payload, dict):
        raise InvalidMessage(f"{action}: payload must be a JSON object, got {type(payload).__name__}")
    module = _VERSION_MODULES[version]
    try:
        payload = module.normalize_call(action, payload)
    except InvalidMessage as exc:
        raise InvalidMessage(f"{action}: {exc.reason}") from None
    error = best_match(_validator(version, file_name)[0].iter_errors(payload))
    if error is not None:
        raise InvalidMessage(_schema_reason(action, error))
    model = module.CALL_MODELS.get(action)
    if model is None:
        return None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidMessage(_pydantic_reason(action, exc)) from None


def state(value: Any) -> Any:
    """Everything observable of a validated model, exact (Decimal digits, tzinfo, fields set)."""
    if isinstance(value, BaseModel):
        return (type(value).__qualname__, type(value).__module__,
                {k: state(v) for k, v in value.__dict__.items()}, list(value.__dict__),
                sorted(value.__pydantic_fields_set__), value.__pydantic_extra__,
                state(value.__pydantic_private__))
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), repr(value.tzinfo))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, [state(v) for v in value])
    if isinstance(value, dict):
        return {k: state(v) for k, v in value.items()}
    return (type(value).__name__, repr(value))


def outcome(fn, version, action, payload):
    try:
        return "ok", state(fn(version, action, payload))
    except InvalidMessage as exc:
        return "refused", exc.reason
    except Exception as exc:  # noqa: BLE001 - should not happen (an absurd multiplier is refused):
        return "raised", type(exc).__name__  # whatever the detailed path does, the fast path does too


def assert_same(version, action, payload):
    original = copy.deepcopy(payload)
    got = outcome(validate_call, version, action, payload)
    assert got == outcome(reference, version, action, payload), payload
    assert payload == original  # neither path modifies the caller's payload
    return got


@pytest.mark.parametrize("key", sorted(BASES))
def test_bases_take_the_fast_path_and_match_pydantic(key):
    version, action = key
    module = _VERSION_MODULES[version]
    payload = module.normalize_call(action, BASES[key])
    fast = module.FAST_CALL_MODELS[action](payload)  # no NotFast: the fast path is really taken
    assert state(fast) == state(module.CALL_MODELS[action].model_validate(payload))
    assert assert_same(version, action, BASES[key])[0] == "ok"


def test_every_billed_action_has_a_fast_constructor():
    assert set(ocpp16.FAST_CALL_MODELS) == set(ocpp16.CALL_MODELS)
    assert set(ocpp201.FAST_CALL_MODELS) == set(ocpp201.CALL_MODELS)


@pytest.mark.parametrize(
    "version, action, payload",
    [
        # shapes the fast constructors hand to pydantic, which decides as before
        ("1.6", "StartTransaction", {**BASES["1.6", "StartTransaction"], "meterStart": -1}),
        ("1.6", "StartTransaction", {**BASES["1.6", "StartTransaction"], "timestamp": "2026-11-02T08:00:00"}),
        ("1.6", "StartTransaction", {**BASES["1.6", "StartTransaction"], "timestamp": "2026-11-02 08:00:00Z"}),
        ("1.6", "StartTransaction", {**BASES["1.6", "StartTransaction"], "timestamp": "2026-11-02T08:00:00.1234567Z"}),
        ("1.6", "StartTransaction", {**BASES["1.6", "StartTransaction"], "timestamp": "2026-02-30T08:00:00Z"}),
        ("1.6", "StartTransaction", {**BASES["1.6", "StartTransaction"], "timestamp": "2026-11-02T24:00:00Z"}),
        ("1.6", "StartTransaction", {**BASES["1.6", "StartTransaction"], "timestamp": "2026-11-02t08:00:00z"}),
        ("1.6", "StartTransaction", {**BASES["1.6", "StartTransaction"], "timestamp": "yesterday"}),
        ("1.6", "StartTransaction", {**BASES["1.6", "StartTransaction"], "meterStart": 12.0}),
        ("1.6", "StopTransaction", {**BASES["1.6", "StopTransaction"], "meterStop": "1234"}),
        ("1.6", "StopTransaction", {**BASES["1.6", "StopTransaction"], "transactionData": []}),
        ("1.6", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T, "sampledValue": [
            {"value": "12,5"}]}]}),
        ("1.6", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T, "sampledValue": [
            {"value": "10", "unit": "A"}]}]}),
        ("1.6", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T, "sampledValue": [
            {"value": "-10"}]}]}),
        ("1.6", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T, "sampledValue": [
            {"value": 12.5, "unit": "kwh"}]}]}),
        ("1.6", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T, "sampledValue": [
            {"value": "NaN"}]}]}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "seqNo": 5.0}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "seqNo": True}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "evse": {"id": 1.0}}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": 5, "unitOfMeasure": {"unit": "A"}}]}]}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": -5}]}]}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": 1e308, "unitOfMeasure": {"multiplier": 3}}]}]}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": Decimal("NaN")}]}]}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": Decimal("1.50")}]}]}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": 2.0, "unitOfMeasure": {"unit": "Wh", "multiplier": 2.0}}]}]}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": 2, "unitOfMeasure": {"unit": "Wh", "customData": {
                "vendorId": "v"}}}]}]}),
        ("2.0.1", "TransactionEvent", {**BASES["2.0.1", "TransactionEvent"], "meterValue": []}),
        ("2.0.1", "TransactionEvent", {"eventType": "Ended", "timestamp": T, "triggerReason": "EVDeparted",
                                       "seqNo": 9, "transactionInfo": {"transactionId": "t"}}),
        ("2.0.1", "TransactionEvent", {"eventType": "Ended", "timestamp": T, "triggerReason": "EVDeparted",
                                       "seqNo": 9, "transactionInfo": {"transactionId": "t"}, "seq_no": 3}),
        ("2.0.1", "Heartbeat", {}),
        ("2.0.1", "Heartbeat", {"x": 1}),
        ("1.6", "Heartbeat", []),
        ("1.5", "Heartbeat", {}),
    ],
)
def test_edge_payloads_decide_like_the_detailed_path(version, action, payload):
    assert_same(version, action, payload)


def test_shared_unit_of_measure_models_equal_fresh_ones():
    payload = {"eventType": "Updated", "timestamp": T, "triggerReason": "MeterValuePeriodic", "seqNo": 1,
               "transactionInfo": {"transactionId": "t"}, "meterValue": [{"timestamp": T, "sampledValue": [
                   {"value": 1, "unitOfMeasure": {"unit": "Wh"}}, {"value": 2, "unitOfMeasure": {"multiplier": 1}},
                   {"value": 3, "unitOfMeasure": {}}, {"value": 4, "unitOfMeasure": {"unit": "Wh"}}]}]}
    for _ in range(2):  # the second round reads the cache
        assert_same("2.0.1", "TransactionEvent", payload)


# --- property: mutated payloads -------------------------------------------------------

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 0.5, -1, Decimal("2"), Decimal("2.5"), "", "x" * 40, "Charging", "kWh", "kwh", "W", "A",
                     "Started", "12,5", "1e3", " 7 ", "-0", "SignedData", "Raw", "Power.Active.Import", T,
                     "2026-11-02T08:00:00+05:45", "2026-11-02T08:00:00.999999-00:00", "2026-11-02T08:00:00",
                     "2026-11-02T08:00Z", [], {}, {"unit": "kWh"}, {"vendorId": "v"}]),
    st.text(max_size=25), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_validate_call_agrees_with_the_detailed_path_on_mutated_payloads(data):
    key = data.draw(st.sampled_from(sorted(BASES)))
    payload = copy.deepcopy(BASES[key])
    keys = ["value", "unit", "multiplier", "measurand", "format", "context", "phase", "location", "unitOfMeasure",
            "timestamp", "seqNo", "offline", "evse", "idToken", "connectorId", "transactionId", "customData",
            "signedData", "meterStart", "reservationId", "sampledValue", "transactionData", "meterValue", "x"]
    mutate(data, payload, ODD_VALUES, st.sampled_from(keys) | st.text(min_size=1, max_size=8), rounds=(0, 3),
           repeat_items=True)
    assert_same(*key, payload)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**20, 10**20),
                       st.decimals(allow_nan=False, allow_infinity=False, places=4),
                       st.from_regex(r"-?[0-9]{1,8}(\.[0-9]{1,6})?([eE][+-]?[0-9]{1,2})?", fullmatch=True)),
       unit=st.sampled_from([None, "Wh", "kWh", "kwh", "W", "kW", "A", "V"]),
       multiplier=st.one_of(st.none(), st.integers(-3, 3)),
       measurand=st.sampled_from([None, "Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
                                  "Voltage"]))
def test_sampled_values_convert_exactly_like_the_detailed_path(value, unit, multiplier, measurand):
    sample_201: dict[str, Any] = {"value": value}
    uom: dict[str, Any] = {}
    if unit is not None:
        uom["unit"] = unit
    if multiplier is not None:
        uom["multiplier"] = multiplier
    if uom:
        sample_201["unitOfMeasure"] = uom
    if measurand is not None:
        sample_201["measurand"] = measurand
    event = {**BASES["2.1", "TransactionEvent"], "meterValue": [{"timestamp": T, "sampledValue": [sample_201]}]}
    assert_same("2.0.1", "TransactionEvent", event)
    sample_16 = {k: v for k, v in sample_201.items() if k != "unitOfMeasure"}
    if unit is not None:
        sample_16["unit"] = unit
    assert_same("1.6", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T, "sampledValue": [sample_16]}]})


_AWARE = TypeAdapter(AwareDatetime)


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?(Z|[+-][0-9]{2}:[0-9]{2})",
                  fullmatch=True),
    st.builds(lambda y, mo, d, h, mi, s, frac, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{off}",
              st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60),
              st.integers(0, 61), st.sampled_from(["", ".5", ".123456", ".000001", ".1234567"]),
              st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-03:30", "+05:45", "+14:00", "-12:00",
                               "+23:59", "-23:59", "+24:00", "+99:99", "z", ""])),
))
@example("0001-01-01T00:00:00-00:60")  # fromisoformat reads it as -01:00; pydantic refuses it
@example("2026-11-02T08:00:00+00:60")
@example("2026-11-02T08:00:00+24:00")
def test_fast_timestamps_read_like_pydantic(text):
    try:
        fast = fast_utc(text)
    except NotFast:
        return  # pydantic decides
    parsed = _AWARE.validate_python(text)  # must not refuse what the fast path accepted
    assert fast == parsed and fast.utcoffset().total_seconds() == 0
    assert state(fast) == state(parsed.astimezone(fast.tzinfo))
    assert state(fast_utc(text)) == state(fast) == state(parse_utc(text))  # the second read: the memo


def test_timestamp_memo_keeps_only_accepted_texts_and_stays_bounded():
    from schemas import ocpp_base

    ocpp_base._UTC_MEMO.clear()
    for text in ("2026-11-02T08:00:00", "2026-11-02T08:00:00+00:60", "yesterday"):
        for _ in range(2):
            with pytest.raises(NotFast):
                fast_utc(text)
    for bad in (None, 5, b"2026-11-02T08:00:00Z"):
        with pytest.raises(NotFast):
            fast_utc(bad)
    assert ocpp_base._UTC_MEMO == {}
    first = fast_utc("2026-11-02T09:00:00+01:00")
    assert fast_utc("2026-11-02T09:00:00+01:00") is first and state(first) == state(parse_utc("2026-11-02T08:00:00Z"))
    for second in range(ocpp_base._UTC_MEMO_SIZE + 5):
        fast_utc(f"2026-11-02T08:{second // 60 % 60:02d}:{second % 60:02d}.{second // 3600}Z")
        assert len(ocpp_base._UTC_MEMO) <= ocpp_base._UTC_MEMO_SIZE


def test_common_timestamp_shapes_take_the_fast_path():
    for text in (T, "2026-11-02T08:00:00+01:00", "2026-11-02T08:00:00.123Z", "2026-11-02T08:00:00.123456-05:00"):
        assert fast_utc(text) == _AWARE.validate_python(text)


def test_construct_sets_the_slots_like_object_setattr():
    """ocpp_base.construct calls pydantic's slot setters directly; the instance must be
    the one ``object.__setattr__`` by name gives (also for SampledValue, whose MRO holds a
    plain mixin with its own ``__dict__`` descriptor)."""
    from schemas.envelope import EventEnvelope
    from schemas.ocpp_base import construct
    from schemas.readings import MeterReading

    for cls in (ocpp16.SampledValue, ocpp201.SampledValue, ocpp201.TransactionEvent, EventEnvelope, MeterReading):
        values = {name: f"v-{name}" for name in cls.model_fields}
        fields_set = set(list(cls.model_fields)[:2])
        private = {"_converted": Decimal("1.5")} if cls.__private_attributes__ else None
        built = construct(cls, values, fields_set, private)
        by_name = object.__new__(cls)
        for slot, value in (("__dict__", values), ("__pydantic_fields_set__", fields_set),
                            ("__pydantic_extra__", None), ("__pydantic_private__", private)):
            object.__setattr__(by_name, slot, value)
        assert type(built) is cls and built.__dict__ is values and built.__pydantic_fields_set__ is fields_set
        assert built.__pydantic_extra__ is None and built.__pydantic_private__ is private
        assert state(built) == state(by_name) and built == by_name
        assert built.model_dump() == by_name.model_dump()
        for name in cls.model_fields:
            assert getattr(built, name) == f"v-{name}"


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_payloads_checked_as_received_need_no_normalising(data):
    """validate_call checks and builds a payload as received before normalize_call
    (schemas.ocpp._AS_RECEIVED); that is only right when normalize_call would return it
    unchanged: pinned here on mutated payloads, with the unit and value variants it rewrites."""
    from schemas.ocpp import _AS_RECEIVED, _plan

    key = data.draw(st.sampled_from(sorted(BASES) + [("2.0.1", "MeterValues"), ("1.6", "Heartbeat")]))
    version, action = key
    payload = copy.deepcopy(BASES.get(key, BASES.get((version, "TransactionEvent"), BASES["1.6", "MeterValues"])))
    if action == "Heartbeat":
        payload = {}
    samples = [sv for mv in payload.get("meterValue", payload.get("transactionData", [])) for sv in mv["sampledValue"]]
    for sv in samples:
        choice = data.draw(st.sampled_from(["keep", "unit", "value", "both"]))
        if choice in ("unit", "both"):
            unit = data.draw(st.sampled_from(["kwh", "KWH", "wh", "W", "kW", "w", "a", "Wh", "celsius", "odd"]))
            if version == "1.6":
                sv["unit"] = unit
            else:
                sv["unitOfMeasure"] = {**sv.get("unitOfMeasure", {}), "unit": unit}
        if choice in ("value", "both"):
            sv["value"] = data.draw(st.sampled_from(["12.5", "7", "1,5", 12.5, 3, Decimal("2.50")]))
    _plan(version, action, False)  # fills _AS_RECEIVED
    plain = _AS_RECEIVED.get(version, {}).get(action)
    if action == "MeterValues" and version != "1.6":
        assert plain is None  # normalize_call rewrites `kwh`, and no constructor refuses it
        return
    assert plain is not None
    check, build = plain
    try:
        if build is True:  # the one-pass check-and-build (schemas.ocpp_fastcheck.compile_builder)
            accepted = check(payload) is not None
        else:
            accepted = check(payload) and (build is None or build(payload) is not None)
    except Exception:  # noqa: BLE001 - NotFast, or a builder's refusal: not accepted as received
        accepted = False
    if accepted:
        assert _VERSION_MODULES[version].normalize_call(action, payload) is payload
    assert_same(version, action, payload)


@pytest.mark.parametrize("module, data", [
    (ocpp16, {"value": "12.5", "unit": "kWh"}), (ocpp16, {"value": "12.5", "x": 1, "customData": {}}),
    (ocpp201, {"value": 12.5, "unitOfMeasure": {"unit": "kWh"}}), (ocpp201, {"value": 12.5}),
    (ocpp201, {"value": 12.5, "unitOfMeasure": {"unit": "kWh"}, "customData": {"vendorId": "v"}}),
    (ocpp201, {"value": 12.5, "customData": {"vendorId": "v"}, "phase": "L1"}),
])
def test_sampled_value_fields_set_with_and_without_extra_keys(module, data):
    """The fast SampledValue constructors take the keys as the fields set when there is
    no other key (the schema's additionalProperties, customData); with one, as pydantic."""
    assert state(module._fast_sampled_value(data)) == state(module.SampledValue.model_validate(data))
