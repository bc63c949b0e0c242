"""The compiled fast check agrees with jsonschema (the authority) on valid and broken payloads."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payload_mutation import mutate
from schemas.ocpp import _SCHEMA_DIRS, _schema_files, _validator

T = "2026-11-02T08:00:00Z"

BASES = {
    ("1.6", "StartTransaction.json"): {"connectorId": 1, "idTag": "04A2B3C4D5", "meterStart": 1000, "timestamp": T,
                                       "reservationId": 3},
    ("1.6", "MeterValues.json"): {"connectorId": 1, "transactionId": 5, "meterValue": [
        {"timestamp": T, "sampledValue": [{"value": "12.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register",
                                           "phase": "L1", "context": "Sample.Periodic", "location": "Outlet",
                                           "format": "Raw"}]}]},
    ("1.6", "StopTransaction.json"): {"transactionId": 5, "meterStop": 2000, "timestamp": T, "reason": "Local",
                                      "idTag": "X", "transactionData": [
                                          {"timestamp": T, "sampledValue": [{"value": "2000"}]}]},
    ("1.6", "StatusNotification.json"): {"connectorId": 1, "errorCode": "NoError", "status": "Charging",
                                         "timestamp": T, "info": "ok"},
    ("2.0.1", "TransactionEventRequest.json"): {
        "eventType": "Started", "timestamp": T, "triggerReason": "Authorized", "seqNo": 0, "offline": False,
        "numberOfPhasesUsed": 3, "cableMaxCurrent": 32,
        "transactionInfo": {"transactionId": "tx-1", "chargingState": "Charging", "remoteStartId": 1},
        "evse": {"id": 1, "connectorId": 1}, "idToken": {"idToken": "abc", "type": "ISO14443"},
        "meterValue": [{"timestamp": T, "sampledValue": [
            {"value": 12.5, "context": "Transaction.Begin", "measurand": "Energy.Active.Import.Register",
             "phase": "L2", "unitOfMeasure": {"unit": "kWh", "multiplier": 0}}]}],
        "customData": {"vendorId": "acme", "x": 1}},
    ("2.1", "TransactionEventRequest.json"): {
        "eventType": "Updated", "timestamp": T, "triggerReason": "MeterValuePeriodic", "seqNo": 4,
        "transactionInfo": {"transactionId": "tx-1", "chargingState": "SuspendedEV"},
        "meterValue": [{"timestamp": T, "sampledValue": [{"value": 1, "unitOfMeasure": {"unit": "Wh"}}]}]},
    ("2.0.1", "MeterValuesRequest.json"): {"evseId": 0, "meterValue": [{"timestamp": T, "sampledValue": [{"value": 5}]}]},
    ("2.0.1", "BootNotificationRequest.json"): {"reason": "PowerUp", "chargingStation": {
        "model": "M", "vendorName": "V", "modem": {"iccid": "1"}}},
}

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 0.5, Decimal("2"), Decimal("2.5"), "", "x" * 40, "Charging", "kWh", "Started", [], {}]),
    st.text(max_size=25), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _agree(version, file_name, payload):
    validator, fast = _validator(version, file_name)
    assert fast is not None
    assert fast(payload) == validator.is_valid(payload), payload


def test_the_fast_check_covers_the_messages_we_receive():
    for version, file_name in BASES:
        assert _validator(version, file_name)[1] is not None


@pytest.mark.parametrize("version", sorted(_SCHEMA_DIRS))
def test_fast_check_agrees_on_trivial_payloads_for_every_schema(version):
    for file_name in sorted(_schema_files(version)):
        validator, fast = _validator(version, file_name)
        if fast is None:
            continue
        for payload in ({}, {"unexpected": 1}, [], None, "x", 1, {"customData": {"vendorId": "v"}}):
            assert fast(payload) == validator.is_valid(payload), (file_name, payload)


@pytest.mark.parametrize("key", sorted(BASES))
def test_bases_are_valid(key):
    assert _validator(*key)[0].is_valid(BASES[key])
    _agree(*key, BASES[key])


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_fast_check_agrees_with_jsonschema_on_mutated_payloads(data):
    key = data.draw(st.sampled_from(sorted(BASES)))
    payload = copy.deepcopy(BASES[key])
    mutate(data, payload, ODD_VALUES, st.text(min_size=1, max_size=8))
    _agree(*key, payload)


# --- the generated check on keyword combinations the OCA schemas may not all exercise ---

import jsonschema  # noqa: E402

from schemas.ocpp_fastcheck import compile_schema, schema_source  # noqa: E402

SMALL_SCHEMAS = [
    {"enum": ["a", "b"]},
    {"type": "integer", "enum": ["a"]},
    {"maxLength": 2},
    {"minimum": 0, "maximum": 10},
    {"type": "number", "minimum": -1.5},
    {"type": "integer", "maximum": 3},
    {"items": {"type": "string"}, "minItems": 1, "maxItems": 2},
    {"type": "array", "items": {}},
    {"properties": {"a": {"type": "boolean"}, "b": {}}, "required": ["a"], "additionalProperties": False},
    {"type": "object", "properties": {"x": {"$ref": "#/definitions/X"}}, "definitions": {
        "X": {"type": "array", "items": {"type": "object", "required": ["y"], "properties": {
            "y": {"type": "string", "maxLength": 3, "enum": ["ab", "abcd"]}}}}}},
    {"type": "null"},
    {"type": "string", "additionalProperties": False, "enum": ["Wh"]},
]
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 15), st.floats(allow_nan=False, allow_infinity=False),
              st.sampled_from([1.0, 3.0, -1.5, 2.5, Decimal("1"), Decimal("-2.5")]),
              st.sampled_from(["", "a", "b", "ab", "abc", "abcd", "Wh"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["a", "b", "c", "x", "y"]), inner, max_size=3)),
    max_leaves=8,
)


@pytest.mark.parametrize("draft4", [True, False])
@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(SMALL_SCHEMAS) - 1), value=JSONISH)
def test_generated_check_agrees_with_jsonschema_on_small_schemas(draft4, index, value):
    schema = SMALL_SCHEMAS[index]
    check = compile_schema(schema, draft4=draft4)
    assert check is not None, schema_source(schema, draft4)
    cls = jsonschema.Draft4Validator if draft4 else jsonschema.Draft6Validator
    assert check(value) == cls(schema).is_valid(value), (schema, value)


def test_schemas_with_unsupported_keywords_are_left_to_jsonschema():
    for schema in ({"pattern": "x"}, {"type": ["string", "null"]}, {"multipleOf": 0.1},
                   {"additionalProperties": {"type": "string"}}, {"items": [{"type": "string"}]},
                   {"$ref": "http://example.com/x"}, {"enum": [1, 2]}):
        assert compile_schema(schema, draft4=False) is None, schema
