"""The event envelope: one OCPP message as it lands on the ``ocpp-events`` topic.

The envelope is the unit of the event log. Its JSON is the Kafka record value; the record
key is the charge point id, so one charger's messages stay in order on one partition.
The payload is kept exactly as the charger sent it (validation happens downstream, and an
invalid payload is dead-lettered with its original bytes, never dropped).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import from_json

from schemas.ocpp_base import MISSING, NotFast, construct, parse_utc

OcppVersion = Literal["1.6", "2.0.1", "2.1"]


class EventEnvelope(BaseModel):
    """One inbound OCPP CALL (charger -> central system), as received."""

    #: cache_strings="keys": the payload's values (timestamps, ids, meter readings) rarely
    #: repeat, so caching them as well only costs time (measured ~5% of from_bytes).
    model_config = ConfigDict(frozen=True, extra="forbid", cache_strings="keys")

    charge_point_id: str = Field(min_length=1, max_length=255)
    ocpp_version: OcppVersion
    #: OCPP action name, e.g. ``StartTransaction`` or ``TransactionEvent``.
    action: str = Field(min_length=1, max_length=64)
    #: The OCPP-J message id (unique per charger for a CALL); used to drop duplicates.
    message_id: str = Field(min_length=1, max_length=64)
    #: When the central system received the message (UTC).
    received_at: datetime
    payload: dict[str, Any]
    #: The CALLRESULT payload the central system answered with, when the edge that wrote
    #: the envelope answered the charger itself (gateway, simulator). OCPP 1.6 needs it:
    #: StartTransaction's transactionId is assigned by the central system and exists
    #: only in the answer (OCPP 1.6 section 4.8 / 6.46).
    response: dict[str, Any] | None = None

    @field_validator("received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("received_at must carry a time zone offset")
        try:
            return value.astimezone(timezone.utc)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
            raise ValueError("received_at is out of range once converted to UTC") from None

    def kafka_key(self) -> bytes:
        return self.charge_point_id.encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "EventEnvelope":
        """The envelope in ``raw`` (JSON); raises pydantic's ``ValidationError``. What
        ``model_validate_json`` does (once per event).

        Fast path: pydantic-core's own JSON parser (``from_json``, the parser
        ``validate_json`` runs: same numbers, strings, last-wins duplicate keys) and the
        field checks written out (:func:`_plain_envelope`), about half the cost of
        ``validate_json``. Anything outside the plain shape (invalid JSON, a missing,
        extra or mistyped field, an unusual timestamp) is decided and worded by
        ``validate_json`` as before; tests/unit/test_envelope.py compares both.
        """
        try:
            data = _parse_json(raw, cache_strings="keys")
        except Exception:  # noqa: BLE001 - not JSON, or not bytes/str (a tombstone's None): pydantic words it
            data = None
        if data.__class__ is dict:
            envelope = _plain_envelope(data)
            if envelope is not None:
                return envelope
        return cls.__pydantic_validator__.validate_json(raw)


_parse_json = from_json
_VERSIONS = frozenset(("1.6", "2.0.1", "2.1"))
assert tuple(EventEnvelope.model_fields) == (
    "charge_point_id", "ocpp_version", "action", "message_id", "received_at", "payload", "response")
_REQUIRED = frozenset(("charge_point_id", "ocpp_version", "action", "message_id", "received_at", "payload"))
_WITH_RESPONSE = _REQUIRED | {"response"}


#: The ASCII digits -> "d": the shape of a timestamp text (see _received_at).
_DIGIT_SHAPE = bytes.maketrans(b"0123456789", b"dddddddddd")
#: The shapes of a UTC RFC 3339 timestamp as our edges write ``received_at`` (pydantic: whole
#: seconds or microseconds, "Z"), any fraction of 1 to 6 digits.
_Z_SHAPES = frozenset([b"dddd-dd-ddTdd:dd:ddZ"] + [b"dddd-dd-ddTdd:dd:dd." + b"d" * n + b"Z" for n in range(1, 7)])
_from_iso = datetime.fromisoformat


def _received_at(value: Any) -> datetime:
    """:func:`schemas.ocpp_base.parse_utc`: for a text of one of the ``_Z_SHAPES`` (the shapes
    of the pattern parse_utc checks with a regular expression that end in "Z") without the
    regular expression (issue 4: ~3x cheaper); anything else through parse_utc.
    tests/unit/test_envelope.py compares both."""
    if value.__class__ is str and value.isascii() and value.encode().translate(_DIGIT_SHAPE) in _Z_SHAPES:
        try:
            return _from_iso(value).astimezone(timezone.utc)
        except (ValueError, OverflowError):
            raise NotFast from None
    return parse_utc(value)


def _plain_envelope(data: dict[str, Any]) -> EventEnvelope | None:
    """The envelope ``validate_json`` builds from the parsed JSON object ``data`` when every
    field has its plain shape (exact ``str`` within its length bounds, a known version, an
    RFC 3339 timestamp with an offset, JSON objects), else None (pydantic decides)."""
    try:
        charge_point_id = data["charge_point_id"]
        version = data["ocpp_version"]
        action = data["action"]
        message_id = data["message_id"]
        payload = data["payload"]
        received_text = data["received_at"]
    except KeyError:  # a field is missing: worded by pydantic
        return None
    response = data.get("response", MISSING)
    if (charge_point_id.__class__ is not str or not 0 < len(charge_point_id) <= 255
            or version.__class__ is not str or version not in _VERSIONS
            or action.__class__ is not str or not 0 < len(action) <= 64
            or message_id.__class__ is not str or not 0 < len(message_id) <= 64
            or payload.__class__ is not dict):
        return None
    if response is MISSING:
        if len(data) != 6:  # an extra key (extra="forbid"), worded by pydantic
            return None
        fields_set = set(_REQUIRED)
        response = None
    elif response is None or response.__class__ is dict:
        if len(data) != 7:
            return None
        fields_set = set(_WITH_RESPONSE)
    else:
        return None
    try:
        received_at = _received_at(received_text)  # unique texts (ms): not memoised
    except NotFast:
        return None
    return construct(EventEnvelope, {
        "charge_point_id": charge_point_id, "ocpp_version": version, "action": action, "message_id": message_id,
        "received_at": received_at, "payload": payload, "response": response}, fields_set)
