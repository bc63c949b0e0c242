"""A meter reading of one session, in the units pricing works in.

This is the hand-off between session assembly (``sessions/``, which turns OCPP
MeterValues / StopTransaction / TransactionEvent into readings) and pricing
(``pricing/``, which splits readings into OCPI charging periods and prices them).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, field_validator

from schemas.ocpp_base import construct


class MeterReading(BaseModel):
    """The state of a session at one instant.

    ``energy_kwh`` is the energy delivered since the session started (session-relative,
    already corrected for register resets and unit/multiplier conversions by session
    assembly), or None when the sample had no energy value (pricing then keeps the last
    known value). ``power_kw`` and ``current_a`` are the instantaneous import values when
    the charger reported them. ``charging`` is False while the EV is connected but not
    drawing energy (parking): OCPP 2.0.1 chargingState other than Charging, or no energy
    flow in OCPP 1.6.
    """

    model_config = ConfigDict(frozen=True)

    timestamp: datetime
    energy_kwh: Decimal | None = None
    power_kw: Decimal | None = None
    current_a: Decimal | None = None
    charging: bool = True

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp must carry a time zone offset")
        return value


_FIELDS = frozenset(MeterReading.model_fields)
#: Shared by every reading built by :func:`reading_of` (the model is frozen: nothing adds to it;
#: ``model_copy`` copies it first).
_FIELDS_SET = set(_FIELDS)


def reading_of(
    timestamp: datetime,
    energy_kwh: Decimal | None,
    power_kw: Decimal | None,
    current_a: Decimal | None,
    charging: bool,
) -> MeterReading:
    """``MeterReading(...)`` for values that already have the field types (an aware
    datetime, Decimals or None, a bool), without validating them again: session assembly
    builds every reading of a session from its validated events (issue 4 speed work).
    A naive timestamp still raises, as the validator would."""
    if timestamp.tzinfo is None or type(charging) is not bool:
        return MeterReading(timestamp=timestamp, energy_kwh=energy_kwh, power_kw=power_kw,
                            current_a=current_a, charging=charging)
    return construct(MeterReading, {"timestamp": timestamp, "energy_kwh": energy_kwh, "power_kw": power_kw,
                                    "current_a": current_a, "charging": charging}, _FIELDS_SET)
