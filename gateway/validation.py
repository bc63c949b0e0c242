"""Schema check of an inbound CALL against the OCA JSON schemas shipped in the ``ocpp`` package.

A CALL whose action has no schema for the negotiated version is ``NotImplemented``; a
payload that fails its schema is classified by the JSON-schema keyword that failed
(OCPP-J 1.6 section 4.2.3, OCPP 2.0.1 Part 4 section 4.2.3):

=======================  ==========================
failing keyword          :class:`ErrorKind`
=======================  ==========================
required                 INCOMPLETE
additionalProperties     PDU_STRUCTURE
type, maxLength          TYPE (a CiString/identifierString length is part of the type)
minItems, maxItems       OCCURRENCE
anything else            PROPERTY (enum, minimum, pattern, ...)
=======================  ==========================
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaValidationError
from jsonschema.exceptions import best_match

from gateway.framing import ErrorKind, FrameError

_KIND_BY_KEYWORD = {
    "required": ErrorKind.INCOMPLETE,
    "additionalProperties": ErrorKind.PDU_STRUCTURE,
    "type": ErrorKind.TYPE,
    "maxLength": ErrorKind.TYPE,
    "minItems": ErrorKind.OCCURRENCE,
    "maxItems": ErrorKind.OCCURRENCE,
    "uniqueItems": ErrorKind.OCCURRENCE,
}


@lru_cache(maxsize=None)
def _validator(ocpp_version: str, action: str, response: bool):
    from ocpp.messages import MessageType, get_validator

    try:
        return get_validator(MessageType.CallResult if response else MessageType.Call, action, ocpp_version)
    except OSError:
        return None


def has_schema(ocpp_version: str, action: str) -> bool:
    """True when OCPP ``ocpp_version`` defines ``action`` (a request schema exists)."""
    return _validator(ocpp_version, action, False) is not None


def _classify(error: SchemaValidationError) -> tuple[ErrorKind, str]:
    kind = _KIND_BY_KEYWORD.get(str(error.validator), ErrorKind.PROPERTY)
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    return kind, f"{where}: {error.message}"


def check_call(ocpp_version: str, message_id: str, action: str, payload: dict[str, Any]) -> None:
    """Raise :class:`FrameError` when the CALL's payload violates its OCPP JSON schema."""
    validator = _validator(ocpp_version, action, False)
    if validator is None:
        raise FrameError(
            ErrorKind.NOT_IMPLEMENTED, f"action {action!r} is not defined by OCPP {ocpp_version}", message_id, action
        )
    error = best_match(validator.iter_errors(payload))
    if error is not None:
        kind, reason = _classify(error)
        raise FrameError(kind, f"{action} schema violation at {reason}", message_id, action)


def response_errors(ocpp_version: str, action: str, payload: dict[str, Any]) -> list[str]:
    """Schema violations of a CALLRESULT payload we would send (used by the tests)."""
    validator = _validator(ocpp_version, action, True)
    if validator is None:
        return [f"no response schema for {action}"]
    return [e.message for e in validator.iter_errors(payload)]
