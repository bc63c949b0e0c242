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

from schemas.ocpp_base import (
    MeasurandReadings,
    DEFAULT_MEASURAND,
    canonical_unit,
    convert,
    decimal_from_json_number,
    decimal_from_text,
)


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


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
    if not isinstance(meter_values, list) or not any(
        isinstance(mv, dict) and isinstance(mv.get("sampledValue"), list)
        and any(_sampled_value_needs_fix(sv) for sv in mv["sampledValue"])
        for mv in meter_values
    ):
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
