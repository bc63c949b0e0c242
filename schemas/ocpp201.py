"""OCPP 2.0.1 / 2.1 TransactionEvent, the one message a transaction is billed from.

Field names follow OCPP 2.0.1 part 2 (messages and datatypes); the models accept the
camelCase wire names and expose snake_case attributes. OCPP 2.1's TransactionEventRequest
is a superset of 2.0.1's for everything modelled here (2.1 adds costDetails,
preconditioningStatus, evseSleep, transactionInfo.operationMode/tariffId/transactionLimit,
more measurands and location Upstream); the extra fields are validated by the 2.1 schema
and ignored by these models.

Field variants real chargers send (:func:`normalize_call` rewrites them *before* the
schema check):

accepted (unambiguous)
  * ``sampledValue.value`` as a string of a decimal number (``"1234.5"``) instead of a JSON
    number: parsed exactly.
  * ``unitOfMeasure.unit`` in another letter case (``kwh``): mapped to ``kWh``.
  * ``multiplier`` (power of ten) applied exactly: ``{"unit": "Wh", "multiplier": 3}`` is kWh.

rejected, with the field named in the reason
  * values that are not finite decimal numbers, or strings with a decimal comma.
  * an energy register whose unit is not an energy unit.
  * timestamps without a UTC offset.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, PrivateAttr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from schemas.ocpp_fastcheck import Builder
from schemas.ocpp_base import (
    meter_value_builder,
    EXACT,
    ENERGY_IMPORT_REGISTER,
    MISSING,
    known_exponent,
    known_utc,
    any_sampled_value,
    MeasurandReadings,
    DEFAULT_MEASURAND,
    NotFast,
    canonical_unit,
    construct,
    convert,
    decimal_from_json_number,
    decimal_from_text,
    fast_convert,
    fast_int,
    fast_str,
    fast_tuple_reader,
    fast_utc,
    fields_set_table,
    renamed_fields,
    set_dict,
    set_extra,
    set_fields_set,
    set_private,
)


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
        raise ValueError("out of range once converted to UTC") from None


class UnitOfMeasure(_Model):
    """UnitOfMeasureType: ``value * 10**multiplier`` is in ``unit``."""

    unit: str | None = None
    multiplier: int = 0


class SampledValue(MeasurandReadings, _Model):
    """SampledValueType. ``converted`` is kWh / kW / A for energy, power and current."""

    value: Decimal
    context: str = "Sample.Periodic"
    measurand: str = DEFAULT_MEASURAND
    phase: str | None = None
    location: str = "Outlet"
    unit_of_measure: UnitOfMeasure | None = None

    _converted: Decimal | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _parse_value(cls, data: Any) -> Any:
        if isinstance(data, dict) and "value" in data and not isinstance(data["value"], Decimal):
            data = dict(data)
            data["value"] = decimal_from_json_number(data["value"], "value")
        return data

    @model_validator(mode="after")
    def _convert(self) -> "SampledValue":
        self._converted = convert(self.measurand, self.value, self.unit, self.multiplier)
        return self

    @property
    def unit(self) -> str | None:
        return self.unit_of_measure.unit if self.unit_of_measure else None

    @property
    def multiplier(self) -> int:
        return self.unit_of_measure.multiplier if self.unit_of_measure else 0



class MeterValue(_Model):
    """MeterValueType: sampled values taken at one instant."""

    timestamp: AwareDatetime
    sampled_value: tuple[SampledValue, ...]

    _to_utc = field_validator("timestamp")(_utc)


class TransactionInfo(_Model):
    """TransactionType. ``charging_state`` is sent when it changed."""

    transaction_id: str
    charging_state: str | None = None
    time_spent_charging: int | None = None
    stopped_reason: str | None = None
    remote_start_id: int | None = None


class Evse(_Model):
    id: int
    connector_id: int | None = None


class IdToken(_Model):
    id_token: str
    type: str


class TransactionEvent(_Model):
    """TransactionEventRequest (OCPP 2.0.1 part 2 section 1.60; 2.1 likewise)."""

    event_type: str  # Started | Updated | Ended
    timestamp: AwareDatetime
    trigger_reason: str
    seq_no: int
    offline: bool = False
    number_of_phases_used: int | None = None
    cable_max_current: int | None = None
    reservation_id: int | None = None
    transaction_info: TransactionInfo
    evse: Evse | None = None
    id_token: IdToken | None = None
    meter_value: tuple[MeterValue, ...] = ()

    _to_utc = field_validator("timestamp")(_utc)


CALL_MODELS: dict[str, type[_Model]] = {"TransactionEvent": TransactionEvent}
RESPONSE_MODELS: dict[str, type[_Model]] = {}


# --- fast constructors (see schemas.ocpp_base: same result as model_validate, or NotFast) ---

_RENAMED = {model: renamed_fields(model) for model in
            (UnitOfMeasure, SampledValue, MeterValue, TransactionInfo, Evse, IdToken, TransactionEvent)}
#: TransactionInfo's optional fields: (wire name, Python name, the exact JSON class taken).
_TRANSACTION_INFO_OPTIONAL = (("chargingState", "charging_state", str),
                              ("timeSpentCharging", "time_spent_charging", int),
                              ("stoppedReason", "stopped_reason", str),
                              ("remoteStartId", "remote_start_id", int))
assert tuple(UnitOfMeasure.model_fields) == ("unit", "multiplier")
assert tuple(SampledValue.model_fields) == ("value", "context", "measurand", "phase", "location", "unit_of_measure")
_SAMPLED_VALUE_KEYS = frozenset(("value", "context", "measurand", "phase", "location"))
_SAMPLED_VALUE_WIRE_KEYS = _SAMPLED_VALUE_KEYS | {"unitOfMeasure"}
_new = object.__new__
assert tuple(MeterValue.model_fields) == ("timestamp", "sampled_value")
assert tuple(TransactionInfo.model_fields) == ("transaction_id",) + tuple(n for _, n, _ in _TRANSACTION_INFO_OPTIONAL)
assert tuple(Evse.model_fields) == ("id", "connector_id")
assert tuple(IdToken.model_fields) == ("id_token", "type")


def _fast_dict(data: Any, model: type) -> dict[str, Any]:
    if data.__class__ is not dict or not _RENAMED[model].isdisjoint(data):
        raise NotFast
    return data


#: The UnitOfMeasure models of objects with only ``unit`` and/or ``multiplier``, by
#: (unit, multiplier) (MISSING when absent), shared: they are frozen, and real traffic has
#: a handful of distinct ones.
_UNIT_OF_MEASURE_CACHE: dict[tuple[Any, Any], UnitOfMeasure] = {}


def _fast_unit_of_measure(data: Any) -> UnitOfMeasure:
    if data.__class__ is not dict:
        raise NotFast
    unit = data.get("unit", MISSING)
    multiplier = data.get("multiplier", MISSING)
    if (unit is not MISSING and unit.__class__ is not str) or (
            multiplier is not MISSING and multiplier.__class__ is not int):
        raise NotFast
    plain = len(data) == (unit is not MISSING) + (multiplier is not MISSING)  # no other key
    if plain:
        cached = _UNIT_OF_MEASURE_CACHE.get((unit, multiplier))
        if cached is not None:
            return cached
    if unit is not MISSING and canonical_unit(unit) != unit:
        raise NotFast  # normalize_call rewrites it (validate_call may try a payload as received)
    values: dict[str, Any] = {"unit": None, "multiplier": 0}
    fields_set = set()
    if unit is not MISSING:
        values["unit"] = unit
        fields_set.add("unit")
    if multiplier is not MISSING:
        values["multiplier"] = multiplier
        fields_set.add("multiplier")
    built = construct(UnitOfMeasure, values, fields_set)
    if plain and len(_UNIT_OF_MEASURE_CACHE) < 256:
        _UNIT_OF_MEASURE_CACHE[unit, multiplier] = built
    return built


def _fast_sampled_value(data: Any) -> SampledValue:
    if data.__class__ is not dict or "unit_of_measure" in data:
        raise NotFast
    value = data.get("value", MISSING)
    # as SampledValue._parse_value (decimal_from_json_number), then pydantic's Decimal
    if value.__class__ is int:
        value = Decimal(value)
    elif value.__class__ is float:
        value = Decimal(repr(value))
        if not value.is_finite():
            raise NotFast
    elif value.__class__ is not Decimal or not value.is_finite():
        raise NotFast
    context = data.get("context", "Sample.Periodic")
    measurand = data.get("measurand", DEFAULT_MEASURAND)
    phase = data.get("phase")
    location = data.get("location", "Outlet")
    if (context.__class__ is not str or measurand.__class__ is not str or location.__class__ is not str
            or (phase is not None and phase.__class__ is not str)):
        raise NotFast
    # wire names = field names, but unitOfMeasure; usually no other key (customData is
    # allowed): the keys as a set, unitOfMeasure renamed, is ~2x cheaper than intersecting
    fields_set = set(data)
    if fields_set <= _SAMPLED_VALUE_WIRE_KEYS:
        fields_set.discard("unitOfMeasure")
    else:
        fields_set = data.keys() & _SAMPLED_VALUE_KEYS
    uom = data.get("unitOfMeasure", MISSING)
    if uom is MISSING:
        uom, unit, multiplier = None, None, 0
    else:
        fields_set.add("unit_of_measure")
        uom = _fast_unit_of_measure(uom)
        unit, multiplier = uom.unit, uom.multiplier
    converted = fast_convert(measurand, value, unit, multiplier)
    obj = _new(SampledValue)  # construct(), inlined: the hottest model
    set_dict(obj, {"value": value, "context": context, "measurand": measurand, "phase": phase,
                      "location": location, "unit_of_measure": uom})
    set_fields_set(obj, fields_set)
    set_extra(obj, None)
    set_private(obj, {"_converted": converted})
    return obj


def _fast_meter_value(data: Any) -> MeterValue:
    if data.__class__ is not dict or "sampled_value" in data:
        raise NotFast
    samples = data.get("sampledValue")
    if samples.__class__ is not list:
        raise NotFast
    return _build_meter_value(data, data.get("timestamp"), map(_fast_sampled_value, samples))


#: A meterValue list (schema-valid) as the tuple of its MeterValue models.
_fast_meter_value_tuple = fast_tuple_reader(_fast_meter_value)


def _fast_transaction_info(data: Any) -> TransactionInfo:
    _fast_dict(data, TransactionInfo)
    transaction_id = data.get("transactionId")
    if transaction_id.__class__ is not str:
        raise NotFast
    values: dict[str, Any] = {"transaction_id": transaction_id}
    fields_set = {"transaction_id"}
    for key, name, kind in _TRANSACTION_INFO_OPTIONAL:
        given = data.get(key, MISSING)
        if given is MISSING:
            values[name] = None
        elif given.__class__ is kind:  # as fast_str / fast_int
            values[name] = given
            fields_set.add(name)
        else:
            raise NotFast
    return construct(TransactionInfo, values, fields_set)


def _fast_evse(data: Any) -> Evse:
    _fast_dict(data, Evse)
    values: dict[str, Any] = {"id": fast_int(data.get("id")), "connector_id": None}
    fields_set = {"id"}
    connector = data.get("connectorId", MISSING)
    if connector is not MISSING:
        values["connector_id"] = fast_int(connector)
        fields_set.add("connector_id")
    return construct(Evse, values, fields_set)


def _fast_id_token(data: Any) -> IdToken:
    _fast_dict(data, IdToken)
    values = {"id_token": fast_str(data.get("idToken")), "type": fast_str(data.get("type"))}
    return construct(IdToken, values, {"id_token", "type"})


#: TransactionEvent fields by wire name: (Python name, fast reader). A reader that is a
#: class (str, int, bool) takes a value of exactly that class as it is (as fast_str,
#: fast_int), anything else is NotFast; a function builds the value or raises NotFast.
_TRANSACTION_EVENT_FIELDS: dict[str, tuple[str, Any]] = {
    "eventType": ("event_type", str),
    "timestamp": ("timestamp", fast_utc),
    "triggerReason": ("trigger_reason", str),
    "seqNo": ("seq_no", int),
    "offline": ("offline", bool),
    "numberOfPhasesUsed": ("number_of_phases_used", int),
    "cableMaxCurrent": ("cable_max_current", int),
    "reservationId": ("reservation_id", int),
    "transactionInfo": ("transaction_info", _fast_transaction_info),
    "evse": ("evse", _fast_evse),
    "idToken": ("id_token", _fast_id_token),
    "meterValue": ("meter_value", _fast_meter_value_tuple),
}
#: Every field in declaration order with its default (required ones: MISSING).
_TRANSACTION_EVENT_DEFAULTS = {
    name: MISSING if field.is_required() else field.default for name, field in TransactionEvent.model_fields.items()
}
_TRANSACTION_EVENT_REQUIRED = frozenset(n for n, d in _TRANSACTION_EVENT_DEFAULTS.items() if d is MISSING)
assert {n for n, _ in _TRANSACTION_EVENT_FIELDS.values()} == set(_TRANSACTION_EVENT_DEFAULTS)
assert all(TransactionEvent.model_fields[n].alias == k for k, (n, _) in _TRANSACTION_EVENT_FIELDS.items())


def _fast_transaction_event(payload: dict[str, Any]) -> TransactionEvent:
    _fast_dict(payload, TransactionEvent)
    values = dict(_TRANSACTION_EVENT_DEFAULTS)
    fields_set = set()
    for key, given in payload.items():
        field = _TRANSACTION_EVENT_FIELDS.get(key)
        if field is not None:  # else an extra field (customData, OCPP 2.1 ones): ignored
            name, read = field
            if read.__class__ is type:
                if given.__class__ is not read:
                    raise NotFast
                values[name] = given
            else:
                values[name] = read(given)
            fields_set.add(name)
    if not _TRANSACTION_EVENT_REQUIRED <= fields_set:
        raise NotFast
    return construct(TransactionEvent, values, fields_set)


#: Action -> fast constructor of its CALL model (payload already passed its schema).
FAST_CALL_MODELS = {"TransactionEvent": _fast_transaction_event}



# --- one pass: schema check and model in one generated function ---------------------------
#
# As in schemas.ocpp16: schemas.ocpp compiles the TransactionEvent schemas (2.0.1 and 2.1)
# with these builders (schemas.ocpp_fastcheck.compile_builder); each gets the property
# values the generated check just read and checked (exact JSON classes, schema-valid, no
# key outside the schema's properties) and returns what the fast constructor above returns
# for that object, or raises where it would. tests/unit/test_ocpp_onepass.py pins both.


def _build_unit_of_measure(data: dict[str, Any], unit: Any, multiplier: Any) -> UnitOfMeasure:
    # the schema allows no key but unit, multiplier and customData (not a field): the model
    # is that of (unit, multiplier) alone
    cached = _UNIT_OF_MEASURE_CACHE.get((unit, multiplier))
    if cached is not None:
        return cached
    return _fast_unit_of_measure(data)


#: Fields sets by the bit mask of the optional fields given (ocpp_base.fields_set_table, shared).
_SAMPLED_VALUE_FIELDS_SETS = fields_set_table(("value",), ("context", "measurand", "phase", "location",
                                                           "unit_of_measure"))
_ID_TOKEN_FIELDS_SET = {"id_token", "type"}


def sampled_value_parts(data: dict[str, Any], value: Any, context: Any, measurand: Any, phase: Any,
                        location: Any, uom: Any) -> tuple[Any, ...]:
    """What the one-pass builder makes a SampledValue of, as a tuple: (value, context,
    measurand, phase, location, unit_of_measure, the fields-set mask, the converted value),
    or the same refusals (NotFast, DecimalException). Also the builder of the session
    assembler's plain calls (sessions.calls: no model object for a value read once)."""
    # as SampledValue._parse_value (decimal_from_json_number), then pydantic's Decimal
    kind = type(value)
    if kind is int:
        value = Decimal(value)
    elif kind is float:
        value = Decimal(repr(value))
        if not value.is_finite():
            raise NotFast
    elif not value.is_finite():  # a Decimal (the schema's number, exact classes)
        raise NotFast
    # the fields set: the given fields (customData, signedMeterValue are not fields)
    if context is MISSING:
        context, given = "Sample.Periodic", 0
    else:
        given = 1
    if measurand is MISSING:
        measurand = DEFAULT_MEASURAND
    else:
        given |= 2
    if phase is MISSING:
        phase = None
    else:
        given |= 4
    if location is MISSING:
        location = "Outlet"
    else:
        given |= 8
    if uom is MISSING:
        uom, unit, multiplier = None, None, 0
    else:
        given |= 16
        uom_fields = uom.__dict__
        unit, multiplier = uom_fields["unit"], uom_fields["multiplier"]
    exponent = known_exponent((measurand, unit, multiplier), MISSING)  # fast_convert, written out
    if exponent is None:
        converted = None
    elif exponent is MISSING:  # not cached yet
        converted = fast_convert(measurand, value, unit, multiplier)
    elif measurand == ENERGY_IMPORT_REGISTER and value < 0:
        raise NotFast
    else:
        converted = value.scaleb(exponent, EXACT)  # DecimalException: not built
    return (value, context, measurand, phase, location, uom, given, converted)


def _build_sampled_value(data: dict[str, Any], value: Any, context: Any, measurand: Any, phase: Any,
                         location: Any, uom: Any) -> SampledValue:
    value, context, measurand, phase, location, uom, given, converted = sampled_value_parts(
        data, value, context, measurand, phase, location, uom)
    obj = _new(SampledValue)
    set_dict(obj, {"value": value, "context": context, "measurand": measurand, "phase": phase,
                   "location": location, "unit_of_measure": uom})
    set_fields_set(obj, _SAMPLED_VALUE_FIELDS_SETS[given])
    set_extra(obj, None)
    set_private(obj, {"_converted": converted})
    return obj


_build_meter_value = meter_value_builder(MeterValue)


#: TransactionInfo / Evse models by their values (MISSING when absent), shared: they are
#: frozen, and the events of one transaction repeat them. Emptied when full.
_TRANSACTION_INFO_CACHE: dict[tuple[Any, ...], TransactionInfo] = {}
_EVSE_CACHE: dict[tuple[Any, Any], Evse] = {}
_CACHE_SIZE = 4096


def _build_transaction_info(data: dict[str, Any], transaction_id: str, charging_state: Any,
                            time_spent: Any, stopped_reason: Any, remote_start_id: Any) -> TransactionInfo:
    key = (transaction_id, charging_state, time_spent, stopped_reason, remote_start_id)
    cached = _TRANSACTION_INFO_CACHE.get(key)
    if cached is not None:
        return cached
    values: dict[str, Any] = {"transaction_id": transaction_id}
    fields_set = {"transaction_id"}
    for (_, name, _), given in zip(_TRANSACTION_INFO_OPTIONAL, key[1:]):
        if given is MISSING:
            values[name] = None
        else:
            values[name] = given
            fields_set.add(name)
    built = construct(TransactionInfo, values, fields_set)
    if len(_TRANSACTION_INFO_CACHE) >= _CACHE_SIZE:
        _TRANSACTION_INFO_CACHE.clear()
    _TRANSACTION_INFO_CACHE[key] = built
    return built


def _build_evse(data: dict[str, Any], id_: int, connector_id: Any) -> Evse:
    key = (id_, connector_id)
    cached = _EVSE_CACHE.get(key)
    if cached is not None:
        return cached
    if connector_id is MISSING:
        built = construct(Evse, {"id": id_, "connector_id": None}, {"id"})
    else:
        built = construct(Evse, {"id": id_, "connector_id": connector_id}, {"id", "connector_id"})
    if len(_EVSE_CACHE) >= _CACHE_SIZE:
        _EVSE_CACHE.clear()
    _EVSE_CACHE[key] = built
    return built


def _build_id_token(data: dict[str, Any], id_token: str, type_: str) -> IdToken:
    return construct(IdToken, {"id_token": id_token, "type": type_}, _ID_TOKEN_FIELDS_SET)


_TRANSACTION_EVENT_FIELDS_SETS = fields_set_table(
    ("event_type", "timestamp", "trigger_reason", "seq_no", "transaction_info"),
    ("offline", "number_of_phases_used", "cable_max_current", "reservation_id", "evse", "id_token", "meter_value"))


def _build_transaction_event(data: dict[str, Any], event_type: str, timestamp: str, trigger_reason: str,
                             seq_no: int, offline: Any, phases: Any, cable_max_current: Any, reservation_id: Any,
                             info: TransactionInfo, evse: Any, id_token: Any,
                             meter_values: Any) -> TransactionEvent:
    if offline is MISSING:
        offline, given = False, 0
    else:
        given = 1
    if phases is MISSING:
        phases = None
    else:
        given |= 2
    if cable_max_current is MISSING:
        cable_max_current = None
    else:
        given |= 4
    if reservation_id is MISSING:
        reservation_id = None
    else:
        given |= 8
    if evse is MISSING:
        evse = None
    else:
        given |= 16
    if id_token is MISSING:
        id_token = None
    else:
        given |= 32
    if meter_values is MISSING:
        meter_values = ()
    else:
        meter_values = tuple(meter_values)
        given |= 64
    obj = _new(TransactionEvent)
    set_dict(obj, {"event_type": event_type, "timestamp": known_utc(timestamp) or fast_utc(timestamp), "trigger_reason": trigger_reason,
                   "seq_no": seq_no, "offline": offline, "number_of_phases_used": phases,
                   "cable_max_current": cable_max_current, "reservation_id": reservation_id,
                   "transaction_info": info, "evse": evse, "id_token": id_token, "meter_value": meter_values})
    set_fields_set(obj, _TRANSACTION_EVENT_FIELDS_SETS[given])
    set_extra(obj, None)
    set_private(obj, None)
    return obj


assert tuple(TransactionEvent.model_fields) == (
    "event_type", "timestamp", "trigger_reason", "seq_no", "offline", "number_of_phases_used", "cable_max_current",
    "reservation_id", "transaction_info", "evse", "id_token", "meter_value")
assert _TRANSACTION_EVENT_DEFAULTS["offline"] is False and _TRANSACTION_EVENT_DEFAULTS["meter_value"] == ()

#: Action -> the builders of its one-pass check-and-build (object path -> Builder), for the
#: 2.0.1 and 2.1 schemas alike (the 2.1 properties these models ignore are checked, not read).
ONE_PASS_BUILDERS: dict[str, dict[tuple[str, ...], Builder]] = {
    "TransactionEvent": {
        (): Builder(("eventType", "timestamp", "triggerReason", "seqNo", "offline", "numberOfPhasesUsed",
                     "cableMaxCurrent", "reservationId", "transactionInfo", "evse", "idToken", "meterValue"),
                    _build_transaction_event),
        ("transactionInfo",): Builder(("transactionId", "chargingState", "timeSpentCharging", "stoppedReason",
                                       "remoteStartId"), _build_transaction_info),
        ("evse",): Builder(("id", "connectorId"), _build_evse),
        ("idToken",): Builder(("idToken", "type"), _build_id_token),
        ("meterValue", "[]"): Builder(("timestamp", "sampledValue"), _build_meter_value),
        ("meterValue", "[]", "sampledValue", "[]"): Builder(
            ("value", "context", "measurand", "phase", "location", "unitOfMeasure"), _build_sampled_value),
        ("meterValue", "[]", "sampledValue", "[]", "unitOfMeasure"): Builder(("unit", "multiplier"),
                                                                              _build_unit_of_measure),
    },
}

def normal_if_schema_valid(action: str) -> bool:
    """Whether :func:`normalize_call` returns every ``action`` payload unchanged that passes
    its OCA schema as received and, for TransactionEvent, :func:`_fast_transaction_event`.
    It rewrites string values (the schema wants numbers) and units in another letter case
    (the schema takes any string: the fast constructor refuses those); it does not touch
    other actions. Not MeterValues (no model, so no fast constructor to refuse a ``kwh``)."""
    return action != "MeterValues"


def _sampled_value_needs_fix(sv: Any) -> bool:
    if not isinstance(sv, dict):
        return False
    if isinstance(sv.get("value"), str):
        return True
    uom = sv.get("unitOfMeasure")
    return isinstance(uom, dict) and isinstance(uom.get("unit"), str) and canonical_unit(uom["unit"]) != uom["unit"]


def normalize_call(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with the unambiguous field variants rewritten (module docstring).

    Copy-on-write: the caller's payload is never modified; it is returned as is when it
    needs no rewrite.
    """
    if action not in ("TransactionEvent", "MeterValues"):
        return payload
    meter_values = payload.get("meterValue")
    if not isinstance(meter_values, list) or not any_sampled_value(meter_values, _sampled_value_needs_fix):
        return payload
    fixed_values = []
    for index, mv in enumerate(meter_values):
        if isinstance(mv, dict) and isinstance(mv.get("sampledValue"), list):
            mv = dict(mv)
            samples = []
            for sv_index, sv in enumerate(mv["sampledValue"]):
                if _sampled_value_needs_fix(sv):
                    sv = dict(sv)
                    if isinstance(sv.get("value"), str):
                        where = f"meterValue[{index}].sampledValue[{sv_index}].value"
                        sv["value"] = decimal_from_text(sv["value"], where)
                    uom = sv.get("unitOfMeasure")
                    if isinstance(uom, dict) and isinstance(uom.get("unit"), str):
                        sv["unitOfMeasure"] = {**uom, "unit": canonical_unit(uom["unit"])}
                samples.append(sv)
            mv["sampledValue"] = samples
        fixed_values.append(mv)
    return {**payload, "meterValue": fixed_values}
