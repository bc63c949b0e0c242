"""Money and quantities for reconciliation: exact Decimals at the edges, scaled integers inside.

Why integers inside. Reconciling a million CDRs per side with a pandas column of
``Decimal`` objects is slow (every comparison is a Python call). OCPI 2.2.1 CDR totals are
rounded to at most 4 decimals (our rule, DESIGN.md "Money"; prices in a tariff carry at
most 4), so an amount is held as an ``int64`` count of 1/10 000 of the currency unit
(:data:`MONEY_SCALE`). Conversion is exact for every value with at most 4 decimals; a value
with more decimals is an input error (:class:`PrecisionError`), never silently rounded.
``int64`` holds up to ~9.2e14 currency units at this scale: far above any statement.

Energy (kWh) is held as an ``int64`` count of 1e-6 kWh (milliwatt-hours,
:data:`ENERGY_SCALE`); partner CDRs may carry more decimals than that, so energy is rounded
ROUND_HALF_UP to 1e-6 kWh when scaled (tolerances are far coarser). Durations are whole
seconds.

Reports in a currency round to the currency's ISO 4217 minor unit with ROUND_HALF_UP
(:func:`round_to_minor_unit`).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MONEY_SCALE = 10_000  # 1 unit of the int64 money columns = 0.0001 of the currency
ENERGY_SCALE = 1_000_000  # 1 unit of the int64 energy columns = 0.000001 kWh

_MONEY_QUANTUM = Decimal("0.0001")
_ENERGY_QUANTUM = Decimal("0.000001")

#: ISO 4217 minor units (number of decimals) of the currencies we settle in. A currency not
#: listed is an error (:class:`UnknownCurrency`), never a default of 2.
MINOR_UNITS: dict[str, int] = {
    # 2 decimals
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
    "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "HRK": 2, "RSD": 2, "TRY": 2, "CAD": 2,
    "AUD": 2, "NZD": 2, "SGD": 2, "HKD": 2, "CNY": 2, "INR": 2, "ZAR": 2, "BRL": 2,
    "MXN": 2, "ILS": 2, "AED": 2, "SAR": 2, "THB": 2, "MYR": 2, "PHP": 2, "UAH": 2,
    "MAD": 2, "EGP": 2, "TWD": 2,
    # 0 decimals
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "PYG": 0, "UGX": 0, "XOF": 0,
    "XAF": 0,
    # 3 decimals
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
    # 4 decimals
    "CLF": 4, "UYW": 4,
}


class UnknownCurrency(ValueError):
    """A currency code that is not in :data:`MINOR_UNITS`."""


class PrecisionError(ValueError):
    """An amount with more decimals than the CDR totals may carry (4)."""


def minor_unit(currency: str) -> int:
    """Decimals of ``currency`` per ISO 4217."""
    try:
        return MINOR_UNITS[currency.upper()]
    except KeyError:
        raise UnknownCurrency(f"unknown currency {currency!r} (no ISO 4217 minor unit known)") from None


def round_to_minor_unit(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded to ``currency``'s minor unit, ROUND_HALF_UP (DESIGN.md "Money")."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


def to_decimal(value: object) -> Decimal:
    """A Decimal from a str/int/Decimal; floats go through ``repr`` (shortest round trip)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, float):
        value = repr(value)
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return d


def money_to_units(value: object) -> int:
    """Exact int64 count of 0.0001 for a CDR amount; more than 4 decimals is an error."""
    d = to_decimal(value)
    q = d.quantize(_MONEY_QUANTUM)
    if q != d:
        raise PrecisionError(f"amount {value} has more than 4 decimals")
    return int(q.scaleb(4))


def units_to_money(units: int) -> Decimal:
    """Inverse of :func:`money_to_units` (always 4 decimals)."""
    return Decimal(int(units)).scaleb(-4).quantize(_MONEY_QUANTUM)


def energy_to_units(value: object) -> int:
    """kWh as an int64 count of 1e-6 kWh, ROUND_HALF_UP."""
    return int(to_decimal(value).quantize(_ENERGY_QUANTUM, rounding=ROUND_HALF_UP).scaleb(6))


def units_to_energy(units: int) -> Decimal:
    """Inverse of :func:`energy_to_units` (6 decimals)."""
    return Decimal(int(units)).scaleb(-6).quantize(_ENERGY_QUANTUM)
