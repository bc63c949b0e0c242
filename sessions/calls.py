"""The billed OCPP calls as the session assembler reads them, without model objects.

:func:`schemas.ocpp.validate_call` returns pydantic models: for a TransactionEvent or a 1.6
MeterValues, one object per call, per MeterValue and per SampledValue (each ~6-9k
instructions to create and free), which the assembler reads once and drops. For the
payloads validate_call's one pass builds as received (the common case), :func:`checked_call`
runs the very same generated check (:func:`schemas.ocpp.compile_call_builder`) with
builders that make what the assembler needs directly: the :class:`sessions.events.Sample`
of each meter value and a tuple of the call's other fields (:class:`TransactionEventCall`,
:class:`MeterValuesCall`). Every other payload (one the one pass is not sure of, a billed
value per phase, another action) goes through validate_call as before, and the assembler
reads the model. tests/unit/test_session_calls.py checks that both give the same values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, NamedTuple

from schemas import ocpp16, ocpp201
from schemas.ocpp import compile_call_builder, validate_call
from schemas.ocpp_base import MISSING, fast_utc, known_utc
from sessions.events import Sample
from sessions.samples import sample_builder


class TransactionEventCall(NamedTuple):
    """A 2.0.1 / 2.1 TransactionEvent: the fields of ``ocpp201.TransactionEvent`` the
    assembler reads, and its meter values' samples."""

    event_type: str
    timestamp: datetime
    trigger_reason: str
    seq_no: int
    offline: bool
    transaction_info: ocpp201.TransactionInfo
    evse: ocpp201.Evse | None
    #: ``idToken.idToken`` (None: no idToken)
    id_tag: str | None
    #: :func:`sessions.samples.samples_of` of ``meterValue`` (one per meter value, in order)
    samples: tuple[Sample, ...]


class MeterValuesCall(NamedTuple):
    """A 1.6 MeterValues: its fields and its meter values' samples."""

    connector_id: int
    transaction_id: int | None
    samples: tuple[Sample, ...]


_new_tuple = tuple.__new__


def _transaction_event(data: dict[str, Any], event_type: str, timestamp: str, trigger_reason: str, seq_no: int,
                       offline: Any, phases: Any, cable_max_current: Any, reservation_id: Any,
                       info: ocpp201.TransactionInfo, evse: Any, id_tag: Any, samples: Any) -> TransactionEventCall:
    return _new_tuple(TransactionEventCall, (
        event_type, known_utc(timestamp) or fast_utc(timestamp), trigger_reason, seq_no,
        False if offline is MISSING else offline, info, None if evse is MISSING else evse,
        None if id_tag is MISSING else id_tag, () if samples is MISSING else tuple(samples)))


def _id_tag(data: dict[str, Any], id_token: str, type_: str) -> str:
    return id_token


def _meter_values_16(data: dict[str, Any], connector_id: int, transaction_id: Any,
                     samples: list[Sample]) -> MeterValuesCall:
    return _new_tuple(MeterValuesCall, (connector_id, None if transaction_id is MISSING else transaction_id,
                                        tuple(samples)))


def _builders(models: dict[tuple[str, ...], Any], plain: dict[tuple[str, ...], Callable]) -> dict:
    """The models' one-pass builders (same nodes, same properties) with ``plain`` ones."""
    return {path: builder._replace(build=plain.get(path, builder.build)) for path, builder in models.items()}


_TRANSACTION_EVENT = _builders(ocpp201.ONE_PASS_BUILDERS["TransactionEvent"], {
    (): _transaction_event,
    ("idToken",): _id_tag,
    ("meterValue", "[]"): sample_builder(1, 2, 3, 4, 7),
    ("meterValue", "[]", "sampledValue", "[]"): ocpp201.sampled_value_parts,
})
_METER_VALUES_16 = _builders(ocpp16.ONE_PASS_BUILDERS["MeterValues"], {
    (): _meter_values_16,
    ("meterValue", "[]"): sample_builder(2, 4, 5, 6, 9),
    ("meterValue", "[]", "sampledValue", "[]"): ocpp16.sampled_value_parts,
})
#: version -> action -> builders of the plain calls
_PLAIN_BUILDERS: dict[str, dict[str, dict]] = {
    "1.6": {"MeterValues": _METER_VALUES_16},
    "2.0.1": {"TransactionEvent": _TRANSACTION_EVENT},
    "2.1": {"TransactionEvent": _TRANSACTION_EVENT},
}
#: version -> action -> compiled one pass (None: none for it), filled on first use
_COMPILED: dict[str, dict[str, Callable[[Any], Any] | None]] = {version: {} for version in _PLAIN_BUILDERS}


def _compiled(ocpp_version: str, action: str) -> Callable[[Any], Any] | None:
    by_action = _COMPILED.get(ocpp_version)
    if by_action is None:
        return None
    build = by_action.get(action, MISSING)
    if build is MISSING:
        builders = _PLAIN_BUILDERS[ocpp_version].get(action)
        if builders is None:
            return None
        build = by_action[action] = compile_call_builder(ocpp_version, action, builders)
    return build


def checked_call(ocpp_version: str, action: str, payload: Any) -> Any:
    """:func:`schemas.ocpp.validate_call`, with a plain call (:class:`TransactionEventCall`,
    :class:`MeterValuesCall`) instead of the model where the one pass builds it: the same
    refusals (InvalidMessage with the same reason) and the same values."""
    if type(payload) is dict and type(ocpp_version) is str and type(action) is str:
        build = _compiled(ocpp_version, action)
        if build is not None:
            try:
                call = build(payload)
            except Exception:  # noqa: BLE001 - NotFast or a surprise: validate_call decides
                call = None
            if call is not None:
                return call
    return validate_call(ocpp_version, action, payload)


__all__ = ["MeterValuesCall", "TransactionEventCall", "checked_call"]
