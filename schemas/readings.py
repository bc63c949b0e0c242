"""A meter reading of one session, in the units pricing works in.

This is the hand-off between session assembly (``sessions/``, which turns OCPP
MeterValues / StopTransaction / TransactionEvent into readings) and pricing
(``pricing/``, which splits readings into OCPI charging periods and prices them).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, field_validator


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
