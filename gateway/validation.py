"""Schema check of an inbound CALL, and the CALLERROR code a refusal gets.

Whether a CALL is accepted is decided by :func:`schemas.ocpp.validate_call` (OCA JSON
schemas of the ``ocpp`` package, after the unambiguous field variants real chargers send
have been normalised; exact models for the messages we bill on), so the gateway refuses
exactly what the pipeline could not apply. This module only adds the OCPP-J error
classification (OCPP-J 1.6 section 4.2.3, OCPP 2.0.1 Part 4 section 4.2.3):

* an action the version does not define: NOT_IMPLEMENTED;
* otherwise the JSON-schema keyword that fails on the (normalised) payload decides:

=======================  ==========================
failing keyword          :class:`ErrorKind`
=======================  ==========================
required                 INCOMPLETE
additionalProperties     PDU_STRUCTURE
type, maxLength          TYPE (a CiString/identifierString length is part of the type)
minItems, maxItems       OCCURRENCE
anything else            PROPERTY (enum, minimum, pattern, ...)
=======================  ==========================

* a payload that passes the schema but not the exact model (e.g. an unparseable
  timestamp or meter value): PROPERTY, a field "contains an invalid value".
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaValidationError
from jsonschema.exceptions import best_match

from gateway.framing import ErrorKind, FrameError
from schemas import ocpp16, ocpp201
from schemas.ocpp import InvalidMessage, known_actions, validate_call

_KIND_BY_KEYWORD = {
    "required": ErrorKind.INCOMPLETE,
    "additionalProperties": ErrorKind.PDU_STRUCTURE,
    "type": ErrorKind.TYPE,
    "maxLength": ErrorKind.TYPE,
    "minItems": ErrorKind.OCCURRENCE,
    "maxItems": ErrorKind.OCCURRENCE,
    "uniqueItems": ErrorKind.OCCURRENCE,
}
_NORMALIZE = {"1.6": ocpp16.normalize_call, "2.0.1": ocpp201.normalize_call, "2.1": ocpp201.normalize_call}


@lru_cache(maxsize=None)
def _validator(ocpp_version: str, action: str, response: bool):
    from ocpp.messages import MessageType, get_validator

    try:
        return get_validator(MessageType.CallResult if response else MessageType.Call, action, ocpp_version)
    except OSError:
        return None


@lru_cache(maxsize=4096)
def has_schema(ocpp_version: str, action: str) -> bool:
    """True when OCPP ``ocpp_version`` defines ``action`` (a request schema exists)."""
    return action in known_actions(ocpp_version)


def classify(ocpp_version: str, action: str, payload: dict[str, Any]) -> ErrorKind:
    """The error kind of a payload :func:`validate_call` refused (module docstring)."""
    try:
        normalized = _NORMALIZE[ocpp_version](action, payload)
    except InvalidMessage:
        return ErrorKind.PROPERTY
    validator = _validator(ocpp_version, action, False)
    error: SchemaValidationError | None = best_match(validator.iter_errors(normalized)) if validator else None
    if error is None:
        return ErrorKind.PROPERTY
    return _KIND_BY_KEYWORD.get(str(error.validator), ErrorKind.PROPERTY)


def check_call(ocpp_version: str, message_id: str, action: str, payload: dict[str, Any]) -> None:
    """Raise :class:`FrameError` when the CALL cannot be accepted (module docstring)."""
    if not has_schema(ocpp_version, action):
        raise FrameError(
            ErrorKind.NOT_IMPLEMENTED, f"action {action!r} is not defined by OCPP {ocpp_version}"[:255],
            message_id, action if len(action) <= 64 else None,
        )
    try:
        validate_call(ocpp_version, action, payload)
    except InvalidMessage as exc:
        raise FrameError(classify(ocpp_version, action, payload), exc.reason, message_id, action) from None


def response_errors(ocpp_version: str, action: str, payload: dict[str, Any]) -> list[str]:
    """Schema violations of a CALLRESULT payload we would send (used by the tests)."""
    validator = _validator(ocpp_version, action, True)
    if validator is None:
        return [f"no response schema for {action}"]
    return [e.message for e in validator.iter_errors(payload)]
