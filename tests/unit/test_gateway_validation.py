"""Schema refusals and their CALLERROR codes (OCPP-J 1.6 4.2.3, OCPP 2.0.1 Part 4 4.2.3)."""

import pytest

from gateway.framing import ErrorKind, FrameError, error_code
from gateway.validation import check_call

START_16 = {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": "2026-11-25T10:00:00Z"}
EVENT_201 = {
    "eventType": "Started",
    "timestamp": "2026-11-25T10:00:00Z",
    "triggerReason": "CablePluggedIn",
    "seqNo": 0,
    "transactionInfo": {"transactionId": "tx-1"},
}


def refusal(version, action, payload):
    with pytest.raises(FrameError) as refused:
        check_call(version, "m1", action, payload)
    return refused.value, error_code(refused.value.kind, version)


def test_valid_calls_pass():
    check_call("1.6", "m1", "StartTransaction", START_16)
    check_call("2.0.1", "m1", "TransactionEvent", EVENT_201)
    check_call("2.1", "m1", "Heartbeat", {})


def test_missing_required_field_is_incomplete_in_16_and_an_occurrence_violation_in_201():
    payload = {k: v for k, v in START_16.items() if k != "meterStart"}
    err, code = refusal("1.6", "StartTransaction", payload)
    assert code == "ProtocolError" and "meterStart" in err.reason
    payload = {k: v for k, v in EVENT_201.items() if k != "seqNo"}
    err, code = refusal("2.0.1", "TransactionEvent", payload)
    assert code == "OccurrenceConstraintViolation" and "seqNo" in err.reason


def test_wrong_data_type_is_a_type_constraint_violation():
    err, code = refusal("1.6", "StartTransaction", {**START_16, "meterStart": "abc"})
    assert code == "TypeConstraintViolation" and err.message_id == "m1" and err.action == "StartTransaction"


def test_too_long_id_tag_violates_its_cistring20_type():
    _, code = refusal("1.6", "StartTransaction", {**START_16, "idTag": "X" * 21})
    assert code == "TypeConstraintViolation"


def test_value_outside_the_enumeration_is_a_property_constraint_violation():
    _, code = refusal("2.0.1", "TransactionEvent", {**EVENT_201, "eventType": "Begun"})
    assert code == "PropertyConstraintViolation"


def test_unknown_property_breaks_the_pdu_structure():
    _, code = refusal("1.6", "Heartbeat", {"extra": 1})
    assert code == "FormationViolation"
    _, code = refusal("2.0.1", "Heartbeat", {"extra": 1})
    assert code == "ProtocolError"


def test_empty_sampled_value_list_is_an_occurrence_violation():
    payload = {"connectorId": 1, "meterValue": [{"timestamp": "2026-11-25T10:00:00Z", "sampledValue": []}]}
    _, code = refusal("1.6", "MeterValues", payload)
    assert code == "OccurenceConstraintViolation"  # sic: OCPP-J 1.6 spells it so


def test_an_action_the_version_does_not_define_is_not_implemented():
    err, code = refusal("1.6", "TransactionEvent", EVENT_201)
    assert err.kind is ErrorKind.NOT_IMPLEMENTED and code == "NotImplemented"
