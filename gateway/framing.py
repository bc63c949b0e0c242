"""OCPP-J RPC framing: parse inbound WebSocket frames, build CALLRESULT / CALLERROR frames.

OCPP-J 1.6 section 4 and OCPP 2.0.1 Part 4 section 4: every frame is a JSON array

* CALL        ``[2, "<messageId>", "<action>", {payload}]``
* CALLRESULT  ``[3, "<messageId>", {payload}]``
* CALLERROR   ``[4, "<messageId>", "<errorCode>", "<errorDescription>", {errorDetails}]``

The message id is a string of at most 36 characters. Errors are classified here in
version-neutral :class:`ErrorKind` terms; :func:`error_code` turns a kind into the error
code the negotiated OCPP version defines (1.6 and 2.x spell some of them differently:
``FormationViolation`` vs ``FormatViolation``, ``OccurenceConstraintViolation`` vs
``OccurrenceConstraintViolation``, and only 2.x has ``RpcFrameworkError`` and
``MessageTypeNotSupported``). Pure: no I/O.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

CALL, CALLRESULT, CALLERROR = 2, 3, 4
MAX_MESSAGE_ID_LENGTH = 36
#: OCPP 2.0.1 Part 4 section 4.2.3: use "-1" when the message id could not be read.
UNKNOWN_MESSAGE_ID = "-1"


class ErrorKind(enum.Enum):
    """Why a frame could not be answered with a CALLRESULT, independent of OCPP version."""

    #: Not a valid RPC frame: not JSON, not an array, wrong element count, unreadable message id.
    RPC_FRAME = "rpc_frame"
    #: The MessageTypeId is not one of 2, 3, 4.
    MESSAGE_TYPE = "message_type"
    #: The payload does not have the PDU structure (not an object, unknown property).
    PDU_STRUCTURE = "pdu_structure"
    #: A required property is missing.
    INCOMPLETE = "incomplete"
    #: An array has too few / too many items.
    OCCURRENCE = "occurrence"
    #: A value has the wrong data type (or exceeds the length of its string type).
    TYPE = "type"
    #: A value is out of its allowed range / not in its enumeration / badly formatted.
    PROPERTY = "property"
    #: The action is not known to the central system.
    NOT_IMPLEMENTED = "not_implemented"
    #: The action is known but not one the central system accepts from a charge point.
    NOT_SUPPORTED = "not_supported"
    #: Our side failed (e.g. the event log did not acknowledge the message).
    INTERNAL = "internal"


_CODES_16 = {
    ErrorKind.RPC_FRAME: "FormationViolation",
    ErrorKind.MESSAGE_TYPE: "FormationViolation",
    ErrorKind.PDU_STRUCTURE: "FormationViolation",
    ErrorKind.INCOMPLETE: "ProtocolError",  # 1.6: "Payload for Action is incomplete"
    ErrorKind.OCCURRENCE: "OccurenceConstraintViolation",  # sic, OCPP-J 1.6 4.2.3
    ErrorKind.TYPE: "TypeConstraintViolation",
    ErrorKind.PROPERTY: "PropertyConstraintViolation",
    ErrorKind.NOT_IMPLEMENTED: "NotImplemented",
    ErrorKind.NOT_SUPPORTED: "NotSupported",
    ErrorKind.INTERNAL: "InternalError",
}
_CODES_2X = {
    ErrorKind.RPC_FRAME: "RpcFrameworkError",
    ErrorKind.MESSAGE_TYPE: "MessageTypeNotSupported",
    ErrorKind.PDU_STRUCTURE: "ProtocolError",  # 2.0.1: "not conform the PDU structure"
    ErrorKind.INCOMPLETE: "OccurrenceConstraintViolation",
    ErrorKind.OCCURRENCE: "OccurrenceConstraintViolation",
    ErrorKind.TYPE: "TypeConstraintViolation",
    ErrorKind.PROPERTY: "PropertyConstraintViolation",
    ErrorKind.NOT_IMPLEMENTED: "NotImplemented",
    ErrorKind.NOT_SUPPORTED: "NotSupported",
    ErrorKind.INTERNAL: "InternalError",
}


def error_code(kind: ErrorKind, ocpp_version: str) -> str:
    """The CALLERROR errorCode for ``kind`` as OCPP ``ocpp_version`` names it."""
    return (_CODES_16 if ocpp_version == "1.6" else _CODES_2X)[kind]


@dataclass(frozen=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class CallResult:
    message_id: str
    payload: Any


@dataclass(frozen=True)
class CallError:
    message_id: str
    error_code: str
    description: str
    details: Any


class FrameError(Exception):
    """A frame that cannot be processed; answered with a CALLERROR."""

    def __init__(self, kind: ErrorKind, reason: str, message_id: str = UNKNOWN_MESSAGE_ID,
                 action: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.message_id = message_id
        self.action = action
        self.details = details or {}


Frame = Call | CallResult | CallError


def parse_frame(raw: str | bytes) -> Frame:
    """Parse one WebSocket message into a CALL, CALLRESULT or CALLERROR.

    Raises :class:`FrameError` for anything that is not a well-formed OCPP-J frame; the
    error carries the message id when it could be read, so the CALLERROR can echo it.
    """
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(ErrorKind.RPC_FRAME, "frame is not UTF-8 text") from None
    try:
        frame = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise FrameError(ErrorKind.RPC_FRAME, "frame is not valid JSON") from None
    if not isinstance(frame, list):
        raise FrameError(ErrorKind.RPC_FRAME, f"frame must be a JSON array, got {type(frame).__name__}")
    if len(frame) < 2:
        raise FrameError(ErrorKind.RPC_FRAME, "frame must contain MessageTypeId and MessageId")
    message_type, message_id = frame[0], frame[1]
    if not isinstance(message_id, str) or not message_id or len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise FrameError(
            ErrorKind.RPC_FRAME,
            f"MessageId must be a non-empty string of at most {MAX_MESSAGE_ID_LENGTH} characters",
        )
    if type(message_type) is not int or message_type not in (CALL, CALLRESULT, CALLERROR):
        raise FrameError(ErrorKind.MESSAGE_TYPE, f"MessageTypeId {message_type!r} is not supported", message_id)
    if message_type == CALL:
        if len(frame) != 4:
            raise FrameError(ErrorKind.RPC_FRAME, f"a CALL has 4 elements, got {len(frame)}", message_id)
        action, payload = frame[2], frame[3]
        if not isinstance(action, str) or not action:
            raise FrameError(ErrorKind.RPC_FRAME, "Action must be a non-empty string", message_id)
        if not isinstance(payload, dict):
            raise FrameError(
                ErrorKind.PDU_STRUCTURE, f"payload of {action} must be a JSON object", message_id, action
            )
        return Call(message_id, action, payload)
    if message_type == CALLRESULT:
        if len(frame) != 3:
            raise FrameError(ErrorKind.RPC_FRAME, f"a CALLRESULT has 3 elements, got {len(frame)}", message_id)
        return CallResult(message_id, frame[2])
    if len(frame) != 5:
        raise FrameError(ErrorKind.RPC_FRAME, f"a CALLERROR has 5 elements, got {len(frame)}", message_id)
    return CallError(message_id, str(frame[2]), str(frame[3]), frame[4])


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def call_result_frame(message_id: str, payload: dict[str, Any]) -> str:
    return _dumps([CALLRESULT, message_id, payload])


def call_error_frame(message_id: str, code: str, description: str, details: dict[str, Any] | None = None) -> str:
    # OCPP 2.0.1 limits errorDescription to 255 characters.
    return _dumps([CALLERROR, message_id, code, description[:255], details or {}])


def call_frame(message_id: str, action: str, payload: dict[str, Any]) -> str:
    return _dumps([CALL, message_id, action, payload])
