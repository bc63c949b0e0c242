"""Small builders for the pricing tests: tariffs, periods, readings in a few words."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from schemas.ocpi import CdrDimension, CdrDimensionType, ChargingPeriod, Tariff
from schemas.readings import MeterReading

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi"
UTC = timezone.utc
D = Decimal


def spec_tariff(name: str) -> Tariff:
    return Tariff.model_validate_json((FIXTURES / f"{name}.json").read_text())


def tariff(*elements: dict, currency: str = "EUR", **fields) -> Tariff:
    """A tariff from element dicts: {"price_components": [...], "restrictions": {...}}."""
    return Tariff.model_validate(
        {
            "country_code": "NL",
            "party_id": "CLG",
            "id": "T1",
            "currency": currency,
            "elements": list(elements),
            "last_updated": "2026-01-01T00:00:00Z",
            **fields,
        }
    )


def component(type_: str, price: str, step_size: int = 1, vat: str | None = None) -> dict:
    out = {"type": type_, "price": D(price), "step_size": step_size}
    if vat is not None:
        out["vat"] = D(vat)
    return out


def element(*components: dict, **restrictions) -> dict:
    out: dict = {"price_components": list(components)}
    if restrictions:
        out["restrictions"] = restrictions
    return out


def at(text: str) -> datetime:
    """'2026-11-23 09:30' as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def period(start: datetime, **volumes: str) -> ChargingPeriod:
    """period(t, ENERGY="5", TIME="0.5") -> a ChargingPeriod with those dimensions."""
    return ChargingPeriod(
        start_date_time=start,
        dimensions=[CdrDimension(type=CdrDimensionType[k], volume=D(v)) for k, v in volumes.items()],
    )


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours_of(minutes_: int) -> str:
    """Minutes as an exact hours string where possible (for period volumes)."""
    return str(D(minutes_) / D(60))


def reading(t: datetime, kwh: str | None = None, *, kw: str | None = None, amps: str | None = None,
            charging: bool = True) -> MeterReading:
    return MeterReading(
        timestamp=t,
        energy_kwh=None if kwh is None else D(kwh),
        power_kw=None if kw is None else D(kw),
        current_a=None if amps is None else D(amps),
        charging=charging,
    )
