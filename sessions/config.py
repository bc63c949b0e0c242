"""Tunables of session assembly (one frozen object; defaults suit public AC/DC charging)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict


class AssemblerConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    #: A session with neither a stop nor any message for this long is closed as
    #: incomplete and billed on its last reading (docs/ocpp-sessions.md, "never ends").
    idle_timeout: timedelta = timedelta(hours=48)
    #: A message or meter value stamped further ahead of ``received_at`` is dead-lettered
    #: (charger clock wrong; billing it would put energy in the future).
    max_clock_ahead: timedelta = timedelta(hours=1)
    #: ... or further behind. Generous, because chargers deliver offline queues late.
    max_clock_behind: timedelta = timedelta(days=31)
    #: Highest power a connector can deliver; an energy register rising faster than this
    #: (plus ``jump_slack_kwh``) is implausible (docs: "a jump implausible for the
    #: connector's power is flagged").
    max_power_kw: Decimal = Decimal("400")
    #: Absolute slack for the jump check (meter resolution, timestamps rounded to seconds).
    jump_slack_kwh: Decimal = Decimal("0.5")

    @classmethod
    def from_settings(cls, settings: object) -> "AssemblerConfig":
        """From :class:`chargeledger.settings.Settings` (``session_idle_timeout_s``)."""
        seconds = getattr(settings, "session_idle_timeout_s", None)
        if seconds is None:
            return cls()
        return cls(idle_timeout=timedelta(seconds=int(seconds)))
