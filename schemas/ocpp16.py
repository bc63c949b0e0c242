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

from schemas.ocpp_base import (
    MeasurandReadings,
    DEFAULT_MEASURAND,
    canonical_unit,
    convert,
    decimal_from_text,
)


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


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
    if not any(
        isinstance(mv, dict) and isinstance(mv.get("sampledValue"), list)
        and any(_sampled_value_needs_fix(sv) for sv in mv["sampledValue"])
        for mv in meter_values
    ):
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


def normalize_call(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with the unambiguous field variants rewritten (module docstring).

    Copy-on-write: the caller's payload is never modified; it is returned as is when it
    needs no rewrite.
    """
    fields = {"MeterValues": ("meterValue", None), "StopTransaction": ("transactionData", "meterStop"),
              "StartTransaction": (None, "meterStart")}.get(action)
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
