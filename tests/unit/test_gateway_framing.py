"""OCPP-J framing: which frames parse, and which CALLERROR code each refusal gets per version."""

import json

import pytest

from gateway.framing import (
    Call,
    CallError,
    CallResult,
    ErrorKind,
    FrameError,
    call_error_frame,
    call_result_frame,
    error_code,
    parse_frame,
)


def test_a_call_parses_into_message_id_action_and_payload():
    frame = parse_frame('[2,"19223201","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
    assert frame == Call("19223201", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})


def test_binary_utf8_frames_parse_like_text():
    assert parse_frame(b'[2,"1","Heartbeat",{}]') == Call("1", "Heartbeat", {})


def test_call_results_and_errors_from_the_charger_parse():
    assert parse_frame('[3,"7",{"status":"Accepted"}]') == CallResult("7", {"status": "Accepted"})
    assert parse_frame('[4,"7","NotSupported","no",{}]') == CallError("7", "NotSupported", "no", {})


@pytest.mark.parametrize(
    "raw, why",
    [
        ("not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        ('{"a":1}', "JSON array"),
        ("[2]", "MessageTypeId and MessageId"),
        ('[2, 17, "Heartbeat", {}]', "MessageId"),
        ('[2, "", "Heartbeat", {}]', "MessageId"),
        ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "36"),
    ],
)
def test_frames_whose_message_id_cannot_be_read_are_answered_with_id_minus_one(raw, why):
    with pytest.raises(FrameError) as refused:
        parse_frame(raw)
    assert refused.value.kind is ErrorKind.RPC_FRAME
    assert refused.value.message_id == "-1"
    assert why in refused.value.reason


def test_a_call_with_a_missing_element_echoes_its_message_id():
    with pytest.raises(FrameError) as refused:
        parse_frame('[2,"abc","Heartbeat"]')
    assert (refused.value.kind, refused.value.message_id) == (ErrorKind.RPC_FRAME, "abc")


def test_an_unknown_message_type_is_refused_with_its_message_id():
    with pytest.raises(FrameError) as refused:
        parse_frame('[5,"abc","Heartbeat",{}]')
    assert (refused.value.kind, refused.value.message_id) == (ErrorKind.MESSAGE_TYPE, "abc")


def test_a_payload_that_is_not_an_object_breaks_the_pdu_structure():
    with pytest.raises(FrameError) as refused:
        parse_frame('[2,"abc","Heartbeat",[]]')
    assert (refused.value.kind, refused.value.action) == (ErrorKind.PDU_STRUCTURE, "Heartbeat")


@pytest.mark.parametrize(
    "kind, v16, v201",
    [
        # OCPP-J 1.6 section 4.2.3 vs OCPP 2.0.1 Part 4 section 4.2.3.
        (ErrorKind.RPC_FRAME, "FormationViolation", "RpcFrameworkError"),
        (ErrorKind.MESSAGE_TYPE, "FormationViolation", "MessageTypeNotSupported"),
        (ErrorKind.PDU_STRUCTURE, "FormationViolation", "ProtocolError"),
        (ErrorKind.INCOMPLETE, "ProtocolError", "OccurrenceConstraintViolation"),
        (ErrorKind.OCCURRENCE, "OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
        (ErrorKind.TYPE, "TypeConstraintViolation", "TypeConstraintViolation"),
        (ErrorKind.PROPERTY, "PropertyConstraintViolation", "PropertyConstraintViolation"),
        (ErrorKind.NOT_IMPLEMENTED, "NotImplemented", "NotImplemented"),
        (ErrorKind.NOT_SUPPORTED, "NotSupported", "NotSupported"),
        (ErrorKind.INTERNAL, "InternalError", "InternalError"),
    ],
)
def test_error_codes_use_each_versions_spelling(kind, v16, v201):
    assert error_code(kind, "1.6") == v16
    assert error_code(kind, "2.0.1") == v201
    assert error_code(kind, "2.1") == v201


def test_answer_frames_are_compact_json_arrays():
    assert call_result_frame("1", {"currentTime": "x"}) == '[3,"1",{"currentTime":"x"}]'
    frame = json.loads(call_error_frame("1", "InternalError", "d" * 300))
    assert frame[:3] == [4, "1", "InternalError"]
    assert len(frame[3]) == 255  # OCPP 2.0.1: errorDescription is at most 255 characters
    assert frame[4] == {}
