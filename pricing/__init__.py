"""The OCPI 2.2.1 tariff engine: (session, tariff) -> priced CDR. Pure: no Kafka, SQL, HTTP.

Rules: ../shared/docs/ocpi-pricing.md (numbered "rule N" in docstrings) and the spec text
(mod_tariffs, mod_cdrs). Money is Decimal throughout; only CDR totals are rounded (4
decimals, ROUND_HALF_UP).

Public API (stable names; the pipeline, settlement and API call these):

``charging_periods_from_readings(readings, tariff, *, time_zone, session_start, session_end)
-> list[ChargingPeriod]``
    Our own session's meter readings (``schemas.readings.MeterReading``) cut into OCPI
    charging periods at every boundary where the price can change (rule 3).

``price_periods(periods, tariff, *, time_zone, session_start, session_end) -> PricedSession``
    Price given charging periods. ``PricedSession`` has ``charging_periods``, every OCPI
    total (``total_cost``, ``total_fixed_cost``, ``total_energy_cost``, ``total_time_cost``,
    ``total_parking_cost``, ``total_reservation_cost`` as ``Price``; ``total_energy``,
    ``total_time``, ``total_parking_time``), ``currency``, the breakdown ``lines``, and
    ``findings`` (``warnings`` as strings). Raises ``NoChargingPeriods``.

``price_session(readings, tariff, *, time_zone, session_start, session_end) -> PricedSession``
    The two above in one call.

``build_cdr(priced, *, id, country_code, party_id, session_id, start_date_time,
end_date_time, cdr_token, auth_method, cdr_location, tariff, last_updated, remark=None,
credit=False, credit_reference_id=None) -> Cdr``
    The OCPI CDR of a priced session.

``credit_cdr(original, *, id, last_updated) -> Cdr``
    The credit CDR of an issued one (negated costs, credit=True, credit_reference_id).

``reprice_cdr(cdr, tariff, *, time_zone) -> PricedSession``
    Price a given CDR's periods as given (rule 3) with this tariff (rule 10), with findings
    for a tariff whose validity excludes the session and for periods that span a boundary.
    Raises ``CurrencyMismatch``.

``explain(priced) -> str`` renders the breakdown as a table; ``lint_tariff(tariff)`` lists
what in a tariff will surprise someone; ``zone_for_country(alpha3)`` gives the IANA zone of
a country that has exactly one. Errors derive from ``PricingError`` (a ``ValueError``);
an unknown zone name raises ``UnknownTimeZone``.
"""

from .cdr import build_cdr, credit_cdr, price_session, reprice_cdr, repriced_cdr
from .engine import (
    BreakdownLine,
    CurrencyMismatch,
    Finding,
    NoChargingPeriods,
    PricedSession,
    PricingError,
    explain,
    price_periods,
)
from .periods import charging_periods_from_readings
from .restrictions import UnknownTimeZone, active_element_for, compile_tariff

__all__ = [
    "BreakdownLine",
    "CurrencyMismatch",
    "Finding",
    "NoChargingPeriods",
    "PricedSession",
    "PricingError",
    "UnknownTimeZone",
    "active_element_for",
    "build_cdr",
    "charging_periods_from_readings",
    "compile_tariff",
    "credit_cdr",
    "explain",
    "price_periods",
    "price_session",
    "reprice_cdr",
    "repriced_cdr",
]
