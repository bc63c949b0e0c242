"""OCPP 1.6 (JSON) messages we bill on: StartTransaction, MeterValues, StopTransaction.

Field names follow the OCPP 1.6 specification (section 6: messages, section 7: types);
the models accept the camelCase wire names and expose snake_case attributes. Payloads are
first validated against the OCA JSON schema (``ocpp/v16/schemas``) by
:func:`schemas.ocpp.validate_call`; these models then give them exact types.

Field variants real chargers send (:func:`normalize_call` rewrites them *before* the
schema check, so the schema still guards everything else):

accepted (unambiguous)
  * ``sampledValue.value`` as a JSON number instead of a string (``1234.5`` for
    ``"1234.5"``): turned into the string of that number (floats via ``repr``, exact).
  * a unit in another letter case (``kwh``, ``KWH``, ``wh``): mapped to the OCPP spelling.
  * ``meterStart`` / ``meterStop`` as an integral float (``1234.0``) or a string of digits
    (``"1234"``): turned into the integer.

rejected (ambiguous or not a reading), with the field named in the reason
  * ``meterStart`` / ``meterStop`` with a fraction (``1234.5``): the schema says whole Wh;
    negative ones, and negative energy register values.
  * values with a decimal comma (``"12,5"``), empty values, NaN / Infinity.
  * an energy register in a unit that is not an energy unit (e.g. ``"A"``).
  * timestamps without a UTC offset (OCPP-J timestamps are RFC 3339 with an offset; a
    naive local time could be any zone).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
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


class SampledValue(MeasurandReadings, _Model):
    """One sampled value (OCPP 1.6 section 7.43).

    ``value`` is the exact number (None for ``format`` SignedData, whose text is kept in
    ``signed_data``); ``converted`` is the value in kWh / kW / A for the energy register,
    import power and import current, None for other measurands.
    """

    value: Decimal | None
    signed_data: str | None = None
    context: str = "Sample.Periodic"
    format: str = "Raw"
    measurand: str = DEFAULT_MEASURAND
    phase: str | None = None
    location: str = "Outlet"
    #: As sent (None: the measurand's default, Wh for energy).
    unit: str | None = None

    _converted: Decimal | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _parse_value(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "value" not in data:
            return data
        raw = data["value"]
        if isinstance(raw, Decimal) or raw is None:
            return data
        data = dict(data)
        if data.get("format") == "SignedData":
            data["signed_data"], data["value"] = raw, None
        elif isinstance(raw, str):
            data["value"] = decimal_from_text(raw, "value")
        return data

    @model_validator(mode="after")
    def _convert(self) -> "SampledValue":
        if self.value is not None:
            self._converted = convert(self.measurand, self.value, self.unit, 0)
        return self


    @property
    def multiplier(self) -> int:
        """OCPP 1.6 has no multiplier; present so both versions read alike."""
        return 0


class MeterValue(_Model):
    """Sampled values taken at one instant (OCPP 1.6 section 7.42)."""

    timestamp: AwareDatetime
    sampled_value: tuple[SampledValue, ...]

    _to_utc = field_validator("timestamp")(_utc)


class StartTransaction(_Model):
    """StartTransaction.req (OCPP 1.6 section 6.45). ``meter_start`` is in Wh."""

    connector_id: int
    id_tag: str
    meter_start: int = Field(ge=0)
    reservation_id: int | None = None
    timestamp: AwareDatetime

    _to_utc = field_validator("timestamp")(_utc)


class IdTagInfo(_Model):
    status: str
    expiry_date: AwareDatetime | None = None
    parent_id_tag: str | None = None


class StartTransactionResponse(_Model):
    """StartTransaction.conf (OCPP 1.6 section 6.46): the central system's transactionId."""

    id_tag_info: IdTagInfo
    transaction_id: int


class MeterValues(_Model):
    """MeterValues.req (OCPP 1.6 section 6.31). ``transaction_id`` is absent outside one."""

    connector_id: int
    transaction_id: int | None = None
    meter_value: tuple[MeterValue, ...]


class StopTransaction(_Model):
    """StopTransaction.req (OCPP 1.6 section 6.49). ``meter_stop`` is in Wh."""

    transaction_id: int
    meter_stop: int = Field(ge=0)
    timestamp: AwareDatetime
    id_tag: str | None = None
    reason: str = "Local"
    transaction_data: tuple[MeterValue, ...] = ()

    _to_utc = field_validator("timestamp")(_utc)


#: Action -> model for the actions we bill on; other known actions validate to None.
CALL_MODELS: dict[str, type[_Model]] = {
    "StartTransaction": StartTransaction,
    "MeterValues": MeterValues,
    "StopTransaction": StopTransaction,
}
RESPONSE_MODELS: dict[str, type[_Model]] = {"StartTransaction": StartTransactionResponse}


# --- fast constructors (see schemas.ocpp_base: same result as model_validate, or NotFast) ---

_SAMPLED_VALUE_RENAMED = renamed_fields(SampledValue)
_METER_VALUE_RENAMED = renamed_fields(MeterValue)
_START_RENAMED = renamed_fields(StartTransaction)
_METER_VALUES_RENAMED = renamed_fields(MeterValues)
_STOP_RENAMED = renamed_fields(StopTransaction)
_SAMPLED_VALUE_OPTIONAL = ("context", "format", "measurand", "phase", "location", "unit")
_SAMPLED_VALUE_KEYS = frozenset(("value",) + _SAMPLED_VALUE_OPTIONAL)
assert tuple(SampledValue.model_fields) == ("value", "signed_data") + _SAMPLED_VALUE_OPTIONAL
_new = object.__new__
assert _SAMPLED_VALUE_RENAMED == {"signed_data"}
assert tuple(MeterValue.model_fields) == ("timestamp", "sampled_value")
assert tuple(StartTransaction.model_fields) == ("connector_id", "id_tag", "meter_start", "reservation_id", "timestamp")
assert tuple(MeterValues.model_fields) == ("connector_id", "transaction_id", "meter_value")
assert tuple(StopTransaction.model_fields) == (
    "transaction_id", "meter_stop", "timestamp", "id_tag", "reason", "transaction_data")


def _fast_sampled_value(data: Any) -> SampledValue:
    if data.__class__ is not dict or "signedData" in data or "signed_data" in data:
        raise NotFast
    raw = data.get("value")
    if raw.__class__ is not str:
        raise NotFast
    context = data.get("context", "Sample.Periodic")
    format_ = data.get("format", "Raw")
    measurand = data.get("measurand", DEFAULT_MEASURAND)
    phase = data.get("phase")
    location = data.get("location", "Outlet")
    unit = data.get("unit")
    if (context.__class__ is not str or format_.__class__ is not str or measurand.__class__ is not str
            or location.__class__ is not str or (phase is not None and phase.__class__ is not str)
            or (unit is not None and unit.__class__ is not str)):
        raise NotFast
    # wire names = field names here; the schema allows no other key (additionalProperties
    # false), so the keys are their intersection with the fields (a set of them: ~2x cheaper)
    fields_set = set(data)
    if not fields_set <= _SAMPLED_VALUE_KEYS:
        fields_set = data.keys() & _SAMPLED_VALUE_KEYS
    if format_ == "SignedData":  # as SampledValue._parse_value
        value, signed_data, converted = None, raw, None
        fields_set.add("signed_data")
    else:
        signed_data = None
        try:
            value = decimal_from_text(raw, "value")
        except ValueError:  # InvalidMessage: pydantic writes the reason
            raise NotFast from None
        converted = fast_convert(measurand, value, unit, 0)
    obj = _new(SampledValue)  # construct(), inlined: the hottest model
    set_dict(obj, {"value": value, "signed_data": signed_data, "context": context, "format": format_,
                      "measurand": measurand, "phase": phase, "location": location, "unit": unit})
    set_fields_set(obj, fields_set)
    set_extra(obj, None)
    set_private(obj, {"_converted": converted})
    return obj


def _fast_meter_value(data: Any) -> MeterValue:
    if data.__class__ is not dict or not _METER_VALUE_RENAMED.isdisjoint(data):
        raise NotFast
    samples = data.get("sampledValue")
    if samples.__class__ is not list:
        raise NotFast
    return _build_meter_value(data, data.get("timestamp"), map(_fast_sampled_value, samples))


#: A meterValue list (schema-valid) as the tuple of its MeterValue models.
_fast_meter_value_tuple = fast_tuple_reader(_fast_meter_value)


def _fast_start(payload: dict[str, Any]) -> StartTransaction:
    if not _START_RENAMED.isdisjoint(payload):
        raise NotFast
    meter_start = fast_int(payload.get("meterStart"))
    if meter_start < 0:
        raise NotFast
    values = {"connector_id": fast_int(payload.get("connectorId")), "id_tag": fast_str(payload.get("idTag")),
              "meter_start": meter_start, "reservation_id": None, "timestamp": fast_utc(payload.get("timestamp"))}
    fields_set = {"connector_id", "id_tag", "meter_start", "timestamp"}
    reservation = payload.get("reservationId", MISSING)
    if reservation is not MISSING:
        values["reservation_id"] = fast_int(reservation)
        fields_set.add("reservation_id")
    return construct(StartTransaction, values, fields_set)


def _fast_meter_values(payload: dict[str, Any]) -> MeterValues:
    if not _METER_VALUES_RENAMED.isdisjoint(payload):
        raise NotFast
    values = {"connector_id": fast_int(payload.get("connectorId")), "transaction_id": None,
              "meter_value": _fast_meter_value_tuple(payload.get("meterValue"))}
    fields_set = {"connector_id", "meter_value"}
    transaction = payload.get("transactionId", MISSING)
    if transaction is not MISSING:
        values["transaction_id"] = fast_int(transaction)
        fields_set.add("transaction_id")
    return construct(MeterValues, values, fields_set)


#: StopTransaction's optional fields: (wire name, Python name, fast reader).
_STOP_OPTIONAL = (("idTag", "id_tag", fast_str), ("reason", "reason", fast_str),
                  ("transactionData", "transaction_data", _fast_meter_value_tuple))


def _fast_stop(payload: dict[str, Any]) -> StopTransaction:
    if not _STOP_RENAMED.isdisjoint(payload):
        raise NotFast
    meter_stop = fast_int(payload.get("meterStop"))
    if meter_stop < 0:
        raise NotFast
    values = {"transaction_id": fast_int(payload.get("transactionId")), "meter_stop": meter_stop,
              "timestamp": fast_utc(payload.get("timestamp")), "id_tag": None, "reason": "Local",
              "transaction_data": ()}
    fields_set = {"transaction_id", "meter_stop", "timestamp"}
    for key, name, read in _STOP_OPTIONAL:
        given = payload.get(key, MISSING)
        if given is not MISSING:
            values[name] = read(given)
            fields_set.add(name)
    return construct(StopTransaction, values, fields_set)


#: Action -> fast constructor of its CALL model (payload already passed its schema).
FAST_CALL_MODELS = {
    "StartTransaction": _fast_start,
    "MeterValues": _fast_meter_values,
    "StopTransaction": _fast_stop,
}



# --- one pass: schema check and model in one generated function ---------------------------
#
# schemas.ocpp compiles each billed CALL schema with these builders
# (schemas.ocpp_fastcheck.compile_builder): the generated function checks the payload and
# calls a builder per model object with the property values it just read and checked (exact
# JSON classes, schema-valid, no key outside the schema's properties), so nothing is read
# twice. Each builder returns what the fast constructor above returns for that object, or
# raises (NotFast, ...) where it would: tests/unit/test_ocpp_onepass.py pins both.


#: Fields sets by the bit mask of the optional fields given (ocpp_base.fields_set_table, shared).
_SAMPLED_VALUE_FIELDS_SETS = fields_set_table(("value",), _SAMPLED_VALUE_OPTIONAL + ("signed_data",))
_SIGNED = 1 << len(_SAMPLED_VALUE_OPTIONAL)
_Decimal = Decimal
_START_FIELDS_SETS = fields_set_table(("connector_id", "id_tag", "meter_start", "timestamp"), ("reservation_id",))
_METER_VALUES_FIELDS_SETS = fields_set_table(("connector_id", "meter_value"), ("transaction_id",))
_STOP_FIELDS_SETS = fields_set_table(("transaction_id", "meter_stop", "timestamp"),
                                     ("id_tag", "reason", "transaction_data"))


def sampled_value_parts(data: dict[str, Any], raw: str, context: Any, format_: Any, measurand: Any, phase: Any,
                        location: Any, unit: Any) -> tuple[Any, ...]:
    """What the one-pass builder makes a SampledValue of, as a tuple: (value, signed_data,
    context, format, measurand, phase, location, unit, the fields-set mask, the converted
    value), or the same refusals (NotFast, InvalidOperation, DecimalException). Also the
    builder of the session assembler's plain calls (sessions.calls)."""
    # the schema's properties are the field names (and no other key): the fields set is
    # the given ones (bit i: _SAMPLED_VALUE_OPTIONAL[i])
    if context is MISSING:
        context, given = "Sample.Periodic", 0
    else:
        given = 1
    if format_ is MISSING:
        format_ = "Raw"
    else:
        given |= 2
    if measurand is MISSING:
        measurand = DEFAULT_MEASURAND
    else:
        given |= 4
    if phase is MISSING:
        phase = None
    else:
        given |= 8
    if location is MISSING:
        location = "Outlet"
    else:
        given |= 16
    if unit is MISSING:
        unit = None
    else:
        given |= 32
    if format_ == "SignedData":  # as SampledValue._parse_value
        value, signed_data, converted = None, raw, None
        given |= _SIGNED
    else:
        signed_data = None
        # decimal_from_text(raw): Decimal strips the blanks str.strip strips, and refuses an
        # empty text or a comma (InvalidOperation: the detailed path words the refusal)
        value = _Decimal(raw)
        if not value.is_finite():
            raise NotFast
        exponent = known_exponent((measurand, unit, 0), MISSING)  # fast_convert, written out
        if exponent is None:
            converted = None
        elif exponent is MISSING:  # not cached yet
            converted = fast_convert(measurand, value, unit, 0)
        elif measurand == ENERGY_IMPORT_REGISTER and value < 0:
            raise NotFast
        else:
            converted = value.scaleb(exponent, EXACT)  # DecimalException: not built
    return (value, signed_data, context, format_, measurand, phase, location, unit, given, converted)


def _build_sampled_value(data: dict[str, Any], raw: str, context: Any, format_: Any, measurand: Any, phase: Any,
                         location: Any, unit: Any) -> SampledValue:
    value, signed_data, context, format_, measurand, phase, location, unit, given, converted = sampled_value_parts(
        data, raw, context, format_, measurand, phase, location, unit)
    obj = _new(SampledValue)
    set_dict(obj, {"value": value, "signed_data": signed_data, "context": context, "format": format_,
                   "measurand": measurand, "phase": phase, "location": location, "unit": unit})
    set_fields_set(obj, _SAMPLED_VALUE_FIELDS_SETS[given])
    set_extra(obj, None)
    set_private(obj, {"_converted": converted})
    return obj


_build_meter_value = meter_value_builder(MeterValue)


def _build_start(data: dict[str, Any], connector_id: int, id_tag: str, meter_start: int, reservation: Any,
                 timestamp: str) -> StartTransaction:
    if meter_start < 0:
        raise NotFast
    if reservation is MISSING:
        reservation, given = None, 0
    else:
        given = 1
    return construct(StartTransaction, {"connector_id": connector_id, "id_tag": id_tag, "meter_start": meter_start,
                                        "reservation_id": reservation, "timestamp": known_utc(timestamp) or fast_utc(timestamp)},
                     _START_FIELDS_SETS[given])


def _build_meter_values(data: dict[str, Any], connector_id: int, transaction: Any,
                        meter_values: list[MeterValue]) -> MeterValues:
    if transaction is MISSING:
        transaction, given = None, 0
    else:
        given = 1
    return construct(MeterValues, {"connector_id": connector_id, "transaction_id": transaction,
                                   "meter_value": tuple(meter_values)}, _METER_VALUES_FIELDS_SETS[given])


def _build_stop(data: dict[str, Any], transaction_id: int, meter_stop: int, timestamp: str, id_tag: Any,
                reason: Any, transaction_data: Any) -> StopTransaction:
    if meter_stop < 0:
        raise NotFast
    if id_tag is MISSING:
        id_tag, given = None, 0
    else:
        given = 1
    if reason is MISSING:
        reason = "Local"
    else:
        given |= 2
    if transaction_data is MISSING:
        transaction_data = ()
    else:
        transaction_data = tuple(transaction_data)
        given |= 4
    return construct(StopTransaction, {"transaction_id": transaction_id, "meter_stop": meter_stop,
                                       "timestamp": known_utc(timestamp) or fast_utc(timestamp), "id_tag": id_tag, "reason": reason,
                                       "transaction_data": transaction_data}, _STOP_FIELDS_SETS[given])


_SAMPLED_VALUE_BUILDER = Builder(("value", "context", "format", "measurand", "phase", "location", "unit"),
                                 _build_sampled_value)
_METER_VALUE_BUILDER = Builder(("timestamp", "sampledValue"), _build_meter_value)

#: Action -> the builders of its one-pass check-and-build (object path -> Builder).
ONE_PASS_BUILDERS: dict[str, dict[tuple[str, ...], Builder]] = {
    "StartTransaction": {(): Builder(("connectorId", "idTag", "meterStart", "reservationId", "timestamp"),
                                     _build_start)},
    "MeterValues": {(): Builder(("connectorId", "transactionId", "meterValue"), _build_meter_values),
                    ("meterValue", "[]"): _METER_VALUE_BUILDER,
                    ("meterValue", "[]", "sampledValue", "[]"): _SAMPLED_VALUE_BUILDER},
    "StopTransaction": {(): Builder(("transactionId", "meterStop", "timestamp", "idTag", "reason",
                                     "transactionData"), _build_stop),
                        ("transactionData", "[]"): _METER_VALUE_BUILDER,
                        ("transactionData", "[]", "sampledValue", "[]"): _SAMPLED_VALUE_BUILDER},
}

def normal_if_schema_valid(action: str) -> bool:
    """Whether :func:`normalize_call` returns every ``action`` payload unchanged that passes
    its OCA schema as received: for every 1.6 action. It rewrites only what the 1.6 schemas
    refuse: a number as ``sampledValue.value`` (a string in the schema), a unit outside the
    schema's enum (every enum spelling is its own canonical_unit), a ``meterStart`` /
    ``meterStop`` that is not an integer (draft 4: floats are not integers).
    tests/unit/test_ocpp_fastbuild.py checks it on mutated payloads."""
    return True


def _sampled_value_needs_fix(sv: Any) -> bool:
    if not isinstance(sv, dict):
        return False
    value, unit = sv.get("value"), sv.get("unit")
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return True
    return isinstance(unit, str) and canonical_unit(unit) != unit


def _fixed_sampled_value(sv: dict[str, Any]) -> dict[str, Any]:
    out = dict(sv)
    value = out.get("value")
    if isinstance(value, float):
        out["value"] = repr(value)
    elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        out["value"] = str(value)
    if isinstance(out.get("unit"), str):
        out["unit"] = canonical_unit(out["unit"])
    return out


def _normalized_meter_values(meter_values: Any) -> Any:
    """The meterValue list with variants fixed; the same object when nothing needs it."""
    if not isinstance(meter_values, list):
        return meter_values
    if not any_sampled_value(meter_values, _sampled_value_needs_fix):
        return meter_values
    out = []
    for mv in meter_values:
        if isinstance(mv, dict) and isinstance(mv.get("sampledValue"), list):
            mv = dict(mv)
            mv["sampledValue"] = [
                _fixed_sampled_value(sv) if _sampled_value_needs_fix(sv) else sv for sv in mv["sampledValue"]
            ]
        out.append(mv)
    return out


def _whole_wh(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


#: Action -> (its meter value list field, its whole-Wh field) that normalize_call rewrites.
_NORMALIZED_FIELDS: dict[str, tuple[str | None, str | None]] = {
    "MeterValues": ("meterValue", None), "StopTransaction": ("transactionData", "meterStop"),
    "StartTransaction": (None, "meterStart")}


def normalize_call(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with the unambiguous field variants rewritten (module docstring).

    Copy-on-write: the caller's payload is never modified; it is returned as is when it
    needs no rewrite.
    """
    fields = _NORMALIZED_FIELDS.get(action)
    if fields is None:
        return payload
    list_field, wh_field = fields
    changes: dict[str, Any] = {}
    if list_field is not None and list_field in payload:
        fixed = _normalized_meter_values(payload[list_field])
        if fixed is not payload[list_field]:
            changes[list_field] = fixed
    if wh_field is not None and wh_field in payload:
        fixed = _whole_wh(payload[wh_field])
        if fixed is not payload[wh_field]:
            changes[wh_field] = fixed
    return {**payload, **changes} if changes else payload
