"""Pricing charging periods with an OCPI 2.2.1 tariff: the rules of ocpi-pricing.md.

``price_periods`` walks the periods once: for each period and dimension it finds the
active element (rule 1), prices the quantity with that element's component (rules 4, 5,
7), then applies step_size once per session (rule 6), sums the cost groups, bounds the
total by min/max price (rule 8) and rounds the CDR totals (rule 9). Every amount is a line
of the breakdown. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from bisect import bisect_right
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Context, Decimal, getcontext, localcontext, setcontext
from typing import Any, Iterable, NamedTuple, Sequence
from zoneinfo import ZoneInfo

from schemas.ocpi import (
    CdrDimensionType,
    ChargingPeriod,
    Price,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    format_ocpi_datetime,
    ocpi_dumps,
)

from .restrictions import (
    CompiledTariff,
    PeriodContext,
    active_element_for,
    compile_tariff,
    session_selection,
    zone_for,
)

ZERO = Decimal(0)
#: Price(excl_vat=..., incl_vat=...) builds its object with this validator.
_validate_price = Price.__pydantic_validator__.validate_python
ONE = Decimal(1)
HUNDRED = Decimal(100)
SECONDS_PER_HOUR = Decimal(3600)
WH_PER_KWH = Decimal(1000)
CDR_QUANTUM = Decimal("0.0001")
#: Rule 9 noise guard: quantities in hours derived from seconds (x / 3600) carry a
#: 28-digit tail; amounts are first brought to 18 decimals so that an exact half
#: (e.g. 0.00005) is not turned into 0.0000499999... before the 4-decimal rounding.
NOISE_QUANTUM = Decimal("1e-18")
#: Resolution of step_size arithmetic: one microsecond, one micro-Wh.
UNIT_QUANTUM = Decimal("0.000001")
#: Working precision of the engine's Decimal context.
PRECISION = 40
#: The engine's Decimal context: the default context (ROUND_HALF_EVEN for inexact
#: results, the default traps) at PRECISION digits. Pricing runs in it (the caller's is
#: put back afterwards), so a CDR does not depend on the caller's Decimal context. Only
#: its flags change while it is in use (no trap or precision is ever set on it), and
#: flags do not change any result, so one object serves every call and thread.
_ENGINE_CONTEXT = Context(prec=PRECISION)

_ENERGY = TariffDimensionType.ENERGY
_TIME = TariffDimensionType.TIME
_PARKING = TariffDimensionType.PARKING_TIME
_FLAT = TariffDimensionType.FLAT
_CDR_ENERGY = CdrDimensionType.ENERGY
_CDR_TIME = CdrDimensionType.TIME
_CDR_PARKING = CdrDimensionType.PARKING_TIME
_CDR_RESERVATION = CdrDimensionType.RESERVATION_TIME
_CDR_MAX_POWER = CdrDimensionType.MAX_POWER
_CDR_MIN_POWER = CdrDimensionType.MIN_POWER
_CDR_MAX_CURRENT = CdrDimensionType.MAX_CURRENT
_CDR_MIN_CURRENT = CdrDimensionType.MIN_CURRENT


class PricingError(ValueError):
    """Input the engine cannot price (no periods, a currency mismatch, ...)."""


class NoChargingPeriods(PricingError):
    pass


class CurrencyMismatch(PricingError):
    pass


# ------------------------------------------------------------------------------------
# Result types
# ------------------------------------------------------------------------------------

#: Cost groups = the OCPI CDR totals they feed.
ENERGY_GROUP = "energy"
TIME_GROUP = "time"
PARKING_GROUP = "parking"
FIXED_GROUP = "fixed"
RESERVATION_GROUP = "reservation"
GROUPS = (FIXED_GROUP, ENERGY_GROUP, TIME_GROUP, PARKING_GROUP, RESERVATION_GROUP)


class BreakdownLine(NamedTuple):
    """One line of the audit trail: what priced which quantity, for how much.

    ``kind`` is "period" (a period's quantity of one dimension), "step_size" (the
    rounding-up extra of rule 6), "min_price" / "max_price" (rule 8 adjustment of the
    total; ``group`` is "total" then). Quantities are in the OCPI unit of the dimension:
    kWh for ENERGY, hours for TIME / PARKING_TIME / RESERVATION_TIME, 1 for FLAT.
    Amounts are exact (unrounded).
    """

    kind: str
    group: str
    dimension: str
    period_index: int | None
    element_index: int | None
    component_index: int | None
    quantity: Decimal
    unit_price: Decimal | None
    vat: Decimal | None
    excl_vat: Decimal
    incl_vat: Decimal
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "group": self.group,
            "dimension": self.dimension,
            "period_index": self.period_index,
            "element_index": self.element_index,
            "component_index": self.component_index,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "vat": self.vat,
            "excl_vat": self.excl_vat,
            "incl_vat": self.incl_vat,
            "note": self.note or None,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a person should look at; the price is still computed."""

    code: str
    message: str
    period_index: int | None = None

    def __str__(self) -> str:
        where = f"period {self.period_index}: " if self.period_index is not None else ""
        return f"{self.code}: {where}{self.message}"


@dataclass
class PricedSession:
    """A priced session: the periods, every OCPI total (rounded, rule 9), the breakdown.

    Totals are ``Price`` (excl_vat, incl_vat) rounded to 4 decimals ROUND_HALF_UP, each
    the rounding of its exact sum (``exact`` keeps the unrounded values). ``total_cost``
    is bounded by the tariff's min/max price; the group totals are not (rule 8).
    ``lines`` is the breakdown (built when first read: pricing keeps compact records).
    """

    currency: str
    tariff_id: str
    session_start: datetime
    session_end: datetime
    charging_periods: list[ChargingPeriod]
    total_cost: Price
    total_fixed_cost: Price
    total_energy_cost: Price
    total_time_cost: Price
    total_parking_cost: Price
    total_reservation_cost: Price
    total_energy: Decimal
    total_time: Decimal
    total_parking_time: Decimal
    total_reservation_time: Decimal
    findings: list[Finding]
    exact: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    tariff_alt_text: list[Any] = field(default_factory=list)
    #: Per charging period: the selected elements of its session part, resolved to their
    #: components (engine internal), or None when the period has reservation time only.
    period_selections: list = field(default_factory=list, repr=False)
    #: Period index -> breakdown records of FLAT fees and reservation time of that period.
    extra_records: dict = field(default_factory=dict, repr=False)
    #: rule 6 extras (``_step_record``), made breakdown lines on demand
    step_records: list[tuple] = field(default_factory=list, repr=False)
    #: min/max price lines (rule 8)
    bound_lines: list[BreakdownLine] = field(default_factory=list, repr=False)
    _lines: list[BreakdownLine] | None = field(default=None, repr=False, compare=False)

    @property
    def period_records(self) -> list[tuple]:
        """(period index, group, dimension, element, component index, component, quantity)
        per priced period and dimension, in pricing order: ENERGY, TIME, PARKING_TIME of
        the session part, its FLAT fee, then reservation time and fee. Rebuilt from the
        periods and the recorded selections (pricing itself keeps only those)."""
        out: list[tuple] = []
        extras = self.extra_records
        for i, sel in enumerate(self.period_selections):
            if sel is not None:
                energy, charging, parking = _read_period(self.charging_periods[i])[:3]
                for qty, r, group, name in (
                    (energy, sel[0], ENERGY_GROUP, "ENERGY"),
                    (charging, sel[1], TIME_GROUP, "TIME"),
                    (parking, sel[2], PARKING_GROUP, "PARKING_TIME"),
                ):
                    if qty and r is not None:
                        out.append((i, group, name, r[0], r[1], r[2], qty))
            more = extras.get(i)
            if more:
                out.extend(more)
        return out

    @property
    def lines(self) -> list[BreakdownLine]:
        """Every breakdown line: per period and dimension, then step_size, then min/max."""
        if self._lines is None:
            out = []
            # Built lazily, possibly long after pricing ran: use the engine's precision, not
            # the caller's (default 28 digits), so the lines add up exactly to the totals.
            with localcontext(_ENGINE_CONTEXT):
                for i, group, dimension, el, ci, component, qty in self.period_records:
                    excl = component.price if dimension == "FLAT" else qty * component.price
                    out.append(_line("period", group, dimension, i, el, ci, component, qty, excl,
                                     "reservation fee" if group == RESERVATION_GROUP and dimension == "FLAT" else ""))
                self._lines = out + self.adjustment_lines
        return self._lines

    @property
    def adjustment_lines(self) -> list[BreakdownLine]:
        """The step_size lines (rule 6), then the min/max price lines (rule 8)."""
        return [step_size_line(r) for r in self.step_records] + self.bound_lines

    @property
    def warnings(self) -> list[str]:
        return [str(f) for f in self.findings]

    def totals(self) -> dict[str, Any]:
        """The OCPI CDR total_* fields of this session."""
        return {
            "total_cost": self.total_cost,
            "total_fixed_cost": self.total_fixed_cost,
            "total_energy": self.total_energy,
            "total_energy_cost": self.total_energy_cost,
            "total_time": self.total_time,
            "total_time_cost": self.total_time_cost,
            "total_parking_time": self.total_parking_time,
            "total_parking_cost": self.total_parking_cost,
            "total_reservation_cost": self.total_reservation_cost,
        }

    def to_ocpi_dict(self) -> dict[str, Any]:
        """OCPI field names: currency, charging periods (volumes rounded for the CDR),
        every total; plus our breakdown and findings."""
        return {
            "currency": self.currency,
            "start_date_time": self.session_start,
            "end_date_time": self.session_end,
            "charging_periods": [cdr_period(p) for p in self.charging_periods],
            **self.totals(),
            "breakdown": [line.as_dict() for line in self.lines],
            "findings": [str(f) for f in self.findings],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        return ocpi_dumps(self.to_ocpi_dict(), indent=indent)


# ------------------------------------------------------------------------------------
# The rules, one function each
# ------------------------------------------------------------------------------------


def vat_factor(component: PriceComponent) -> Decimal | None:
    return None if component.vat is None else ONE + component.vat / HUNDRED


def apply_vat(excl: Decimal, component: PriceComponent) -> Decimal:
    """Rule 7 (mod_tariffs PriceComponent.vat): incl = excl x (1 + vat/100); no ``vat``
    means no VAT applies: incl = excl. VAT is per component."""
    if component.vat is None:
        return excl
    return excl * (ONE + component.vat / HUNDRED)


def energy_cost(kwh: Decimal, component: PriceComponent) -> Decimal:
    """Rule 5: ENERGY is priced per kWh (mod_tariffs TariffDimensionType ENERGY)."""
    return kwh * component.price


def time_cost(hours: Decimal, component: PriceComponent) -> Decimal:
    """Rule 5: TIME per hour of charging, PARKING_TIME per hour of parking, and the TIME
    component of a reservation element per hour of reservation."""
    return hours * component.price


def flat_cost(component: PriceComponent) -> Decimal:
    """Rule 4: FLAT is a fixed amount (charged once per session, see price_periods)."""
    return component.price


def round_up_to_step(quantity: Decimal, step: Decimal) -> Decimal:
    """mod_tariffs PriceComponent.step_size: "rounded up to the smallest multiple of
    step_size that is greater than" (or equal to) the consumed amount."""
    if step <= 0 or quantity <= 0:
        return quantity
    return (quantity / step).to_integral_value(rounding=ROUND_CEILING) * step


def cdr_amount(value: Decimal) -> Decimal:
    """Rule 9: CDR totals are rounded once, to 4 decimals, ROUND_HALF_UP (after the
    noise guard that removes the 28th-digit tail of hour fractions)."""
    # the rounding mode passed positionally: the keyword costs _decimal twice the call
    return value.quantize(NOISE_QUANTUM, ROUND_HALF_UP).quantize(CDR_QUANTUM, ROUND_HALF_UP)


#: The Price of a cost group with nothing in it (frozen, so one object serves all).
_ZERO_PRICE = Price(excl_vat=cdr_amount(ZERO), incl_vat=cdr_amount(ZERO))
#: cdr_amount(ZERO): 0.0000 (Decimal is immutable, so one object serves all)
_ZERO_AMOUNT = cdr_amount(ZERO)


def cdr_number(value: Decimal) -> Decimal:
    """A CDR quantity (kWh, hours) with at most 4 decimals (types.asciidoc number: "4
    decimals"), shorter values kept as they are."""
    if value.as_tuple().exponent >= -4:  # type: ignore[operator]
        return value
    return cdr_amount(value)


def cdr_period(period: ChargingPeriod) -> ChargingPeriod:
    """The period as written into a CDR: every volume with at most 4 decimals."""
    if all(d.volume.as_tuple().exponent >= -4 for d in period.dimensions):  # type: ignore[operator]
        return period
    dims = [d.model_copy(update={"volume": cdr_number(d.volume)}) for d in period.dimensions]
    return period.model_copy(update={"dimensions": dims})


def power_for_restrictions(
    max_power: Decimal | None,
    min_power: Decimal | None,
    energy_kwh: Decimal | None,
    charging_hours: Decimal | None,
    parking_hours: Decimal | None,
) -> Decimal | None:
    """Rule 5: compare power restrictions with the period's MAX_POWER when it has one,
    else MIN_POWER, else energy / charging time. A period with only parking time draws
    no power (0 kW). Otherwise unknown (None)."""
    if max_power is not None:
        return max_power
    if min_power is not None:
        return min_power
    if charging_hours:
        return (energy_kwh or ZERO) / charging_hours
    if parking_hours:
        return ZERO
    return None


def current_for_restrictions(max_current: Decimal | None, min_current: Decimal | None) -> Decimal | None:
    """Rule 5: MAX_CURRENT when the period has it, else MIN_CURRENT, else unknown."""
    return max_current if max_current is not None else min_current


def tariff_validity_findings(tariff: Tariff, session_start: datetime) -> list[Finding]:
    """Rule 10 (mod_tariffs Tariff start_date_time / end_date_time): the tariff valid at
    the session start prices the whole session; warn when its validity excludes it."""
    findings = []
    if tariff.start_date_time is not None and session_start < tariff.start_date_time:
        findings.append(
            Finding(
                "tariff_not_yet_valid",
                f"tariff {tariff.id} starts {format_ocpi_datetime(tariff.start_date_time)}, "
                f"after the session start {format_ocpi_datetime(session_start)}",
            )
        )
    if tariff.end_date_time is not None and session_start >= tariff.end_date_time:
        findings.append(
            Finding(
                "tariff_expired",
                f"tariff {tariff.id} ended {format_ocpi_datetime(tariff.end_date_time)}, "
                f"before the session start {format_ocpi_datetime(session_start)}",
            )
        )
    return findings


# ------------------------------------------------------------------------------------
# Pricing a session
# ------------------------------------------------------------------------------------


def _line(kind, group, dimension, period_index, el, ci, component, quantity, excl, note=""):
    return BreakdownLine(
        kind, group, dimension, period_index, None if el is None else el.index, ci, quantity,
        None if component is None else component.price,
        None if component is None else component.vat,
        excl,
        excl if component is None else apply_vat(excl, component),
        note,
    )


def _step_record(billed, last, last_period, dimension, group, units_per_quantity, factor):
    """Rule 6 (mod_cdrs "step_size"; mod_tariffs PriceComponent.step_size) for one
    dimension: once per session, the billed total of a dimension is rounded up to a
    multiple of the step_size of the last component used for it, the extra billed at that
    component's price. ENERGY on its own (step in Wh). TIME and PARKING_TIME (step in
    seconds): when a PARKING_TIME component was used only the parking total is rounded,
    else the TIME total. Reservation time (step in seconds) on its own, as the spec's
    reservation examples do. step_size 0: no rounding.

    ``last`` starts with (element, component index, component), ``factor`` is
    ``vat_factor`` of that component. Returns None when rule 6 adds nothing, else the
    record (group, dimension, period index, element, component index, component, extra
    quantity, excl, incl, billed units, rounded units) that ``step_size_line`` makes a
    breakdown line."""
    if billed <= 0:
        return None
    component = last[2]
    step_size = component.step_size
    if step_size <= 0:
        return None
    # Wh or seconds; quantized to a millionth (microsecond / micro-Wh) so that hours
    # derived from seconds (x / 3600, a 40-digit tail) come back to whole units.
    billed_units = (billed * units_per_quantity).quantize(UNIT_QUANTUM, ROUND_HALF_UP)
    rounded_units = round_up_to_step(billed_units, Decimal(step_size))
    extra_units = rounded_units - billed_units
    if extra_units <= 0:
        return None
    extra = extra_units / units_per_quantity
    excl = extra_units * component.price / units_per_quantity
    # apply_vat with the component's factor
    return (group, dimension, last_period, last[0], last[1], component, extra, excl,
            excl if factor is None else excl * factor, billed_units, rounded_units)


def step_size_line(record: tuple) -> BreakdownLine:
    """The breakdown line of a ``_step_record`` record."""
    group, dimension, last_period, el, ci, component, extra, excl, incl, billed_units, rounded_units = record
    unit = "Wh" if dimension == "ENERGY" else "s"
    return BreakdownLine(
        "step_size", group, dimension, last_period, el.index, ci, extra, component.price, component.vat, excl, incl,
        f"billed {billed_units.normalize(_ENGINE_CONTEXT):f} {unit} rounded up to {rounded_units.normalize(_ENGINE_CONTEXT):f} {unit} "
        f"(step_size {component.step_size})",
    )


def apply_min_max_price(
    tariff: Tariff, excl: Decimal, incl: Decimal, lines: list[BreakdownLine]
) -> tuple[Decimal, Decimal]:
    """Rule 8 (mod_tariffs Tariff min_price / max_price and their NOTEs): bound the total
    cost, excl and incl VAT each on its own. A min_price without incl_vat bounds incl by
    its excl_vat (VAT is never negative); a max_price without incl_vat leaves incl alone.
    The dimension totals stay as computed; the difference is a line of its own."""
    new_excl, new_incl = excl, incl
    if tariff.min_price is not None:
        floor_excl = tariff.min_price.excl_vat
        floor_incl = tariff.min_price.incl_vat if tariff.min_price.incl_vat is not None else floor_excl
        new_excl = max(new_excl, floor_excl)
        new_incl = max(new_incl, floor_incl)
        if (new_excl, new_incl) != (excl, incl):
            lines.append(
                BreakdownLine("min_price", "total", "TOTAL", None, None, None, ONE, None, None,
                              new_excl - excl, new_incl - incl, note="raised to the tariff's min_price")
            )
    if tariff.max_price is not None:
        before_excl, before_incl = new_excl, new_incl
        new_excl = min(new_excl, tariff.max_price.excl_vat)
        if tariff.max_price.incl_vat is not None:
            new_incl = min(new_incl, tariff.max_price.incl_vat)
        if (new_excl, new_incl) != (before_excl, before_incl):
            lines.append(
                BreakdownLine("max_price", "total", "TOTAL", None, None, None, ONE, None, None,
                              new_excl - before_excl, new_incl - before_incl,
                              note="capped at the tariff's max_price")
            )
    return new_excl, new_incl


_MICRO = Decimal("0.000001")


def seconds_between(a: datetime, b: datetime) -> Decimal:
    """Exact seconds from ``a`` to ``b`` (microsecond resolution), as Decimal."""
    delta = b - a
    whole = Decimal(delta.days * 86400 + delta.seconds)
    if delta.microseconds:
        return whole + Decimal(delta.microseconds) * _MICRO
    return whole


def _cdr_price(excl: Decimal, incl: Decimal) -> Price:
    """Price(excl_vat=cdr_amount(excl), incl_vat=cdr_amount(incl)) (rule 9). Built by the
    validator pydantic's __init__ runs, without the keyword-argument detour; a cost group
    nothing was added to (still the ZERO object) is the shared, immutable 0.0000 / 0.0000."""
    if excl is ZERO and incl is ZERO:
        return _ZERO_PRICE
    return _validate_price({  # cdr_amount, inline
        "excl_vat": excl.quantize(NOISE_QUANTUM, ROUND_HALF_UP).quantize(CDR_QUANTUM, ROUND_HALF_UP),
        "incl_vat": incl.quantize(NOISE_QUANTUM, ROUND_HALF_UP).quantize(CDR_QUANTUM, ROUND_HALF_UP),
    })


#: ``_cdr_pair`` of a cost group nothing was added to: the values of _ZERO_PRICE.
_ZERO_PAIR = (_ZERO_AMOUNT, _ZERO_AMOUNT)


def _cdr_pair(excl: Decimal, incl: Decimal) -> tuple[Decimal, Decimal]:
    """The (excl_vat, incl_vat) of ``_cdr_price(excl, incl)``, without making the Price."""
    if excl is ZERO and incl is ZERO:
        return _ZERO_PAIR
    return (excl.quantize(NOISE_QUANTUM, ROUND_HALF_UP).quantize(CDR_QUANTUM, ROUND_HALF_UP),
            incl.quantize(NOISE_QUANTUM, ROUND_HALF_UP).quantize(CDR_QUANTUM, ROUND_HALF_UP))


def _period_end(periods: Sequence[ChargingPeriod], i: int, session_end: datetime) -> datetime:
    return periods[i + 1].start_date_time if i + 1 < len(periods) else session_end


def _pricing_inputs(periods: Sequence, tariff: Tariff, time_zone: str,
                    session_start: datetime) -> tuple[CompiledTariff, ZoneInfo, list[Finding]]:
    """What :func:`price_periods` and :func:`price_rows` start from: the compiled tariff,
    the time zone and the findings list (the tariff's validity at the session's start).
    Refuses an empty ``periods``."""
    if not periods:
        raise NoChargingPeriods("no charging periods to price")
    compiled = compile_tariff(tariff)
    zone = zone_for(time_zone)
    findings: list[Finding] = (
        [] if tariff.start_date_time is None and tariff.end_date_time is None
        else tariff_validity_findings(tariff, session_start)
    )
    return compiled, zone, findings


def price_periods(
    periods: Sequence[ChargingPeriod],
    tariff: Tariff,
    *,
    time_zone: str,
    session_start: datetime,
    session_end: datetime,
    check_boundaries: bool = False,
) -> PricedSession:
    """Price charging periods with ``tariff`` (rules 1-11 of ocpi-pricing.md).

    Restrictions are evaluated at each period's start, in ``time_zone`` (rules 2, 3).
    ``check_boundaries`` adds a finding for every period that spans a price boundary
    (used when re-pricing a partner's CDR, rule 3).
    """
    compiled, zone, findings = _pricing_inputs(periods, tariff, time_zone, session_start)
    caller_context = getcontext()
    setcontext(_ENGINE_CONTEXT)  # what ``with localcontext(...)`` does, without copying it
    try:
        fields = _price([_read_row(p) for p in periods], compiled, zone, session_start, session_end, findings,
                        lambda: _reservation_expired(periods), False)
        priced = PricedSession(*fields[:4], list(periods), *fields[5:])
        if check_boundaries:
            from .periods import boundary_findings  # local import: periods imports engine

            findings.extend(boundary_findings(periods, compiled, zone, session_start, session_end))
        return priced
    finally:
        setcontext(caller_context)


#: A charging period as the engine reads it (``_read_row``): (start, ENERGY, TIME,
#: PARKING_TIME, RESERVATION_TIME, MAX_POWER, MIN_POWER, MAX_CURRENT, MIN_CURRENT volumes),
#: None where the period has no such dimension (the last of a repeated type).
PeriodRow = tuple


def price_rows(
    rows: Sequence[PeriodRow],
    tariff: Tariff,
    *,
    time_zone: str,
    session_start: datetime,
    session_end: datetime,
) -> tuple:
    """:func:`price_periods` of periods given as rows (``PeriodRow``; e.g.
    ``periods.period_rows_from_readings``), with each period's dimensions at most once, as
    plain values: the fields of the PricedSession in ``_RESULT_FIELDS`` order, with None
    for ``charging_periods`` and every Price as its (excl_vat, incl_vat) pair (the values
    the Price would hold). The same pricing code (``_price``) as price_periods."""
    compiled, zone, findings = _pricing_inputs(rows, tariff, time_zone, session_start)
    caller_context = getcontext()
    setcontext(_ENGINE_CONTEXT)
    try:
        return _price(rows, compiled, zone, session_start, session_end, findings,
                      lambda: _rows_reservation_expired(rows), True)
    finally:
        setcontext(caller_context)


def _read_row(p: ChargingPeriod) -> PeriodRow:
    """The ``PeriodRow`` of a ChargingPeriod."""
    energy = charging = parking = reservation = None
    max_power = min_power = max_current = min_current = None
    for d in p.dimensions:
        t = d.type
        if t is _CDR_ENERGY:
            energy = d.volume
        elif t is _CDR_TIME:
            charging = d.volume
        elif t is _CDR_MAX_POWER:
            max_power = d.volume
        elif t is _CDR_PARKING:
            parking = d.volume
        elif t is _CDR_RESERVATION:
            reservation = d.volume
        elif t is _CDR_MIN_POWER:
            min_power = d.volume
        elif t is _CDR_MAX_CURRENT:
            max_current = d.volume
        elif t is _CDR_MIN_CURRENT:
            min_current = d.volume
    return (p.start_date_time, energy, charging, parking, reservation, max_power, min_power, max_current,
            min_current)


def _rows_reservation_expired(rows: Sequence[PeriodRow]) -> bool:
    """``_reservation_expired`` of periods whose rows these are (each dimension at most
    once per period)."""
    has_session_part = False
    has_reservation = False
    for row in rows:
        if row[4] is not None and row[4] > 0:
            has_reservation = True
        if row[1] is not None or row[2] is not None or row[3] is not None:
            has_session_part = True
    return has_reservation and not has_session_part


def _read_period(p: ChargingPeriod) -> tuple:
    """(energy, charging, parking, reservation, max_power, min_power, max_current,
    min_current) volumes of a period, None where absent (the last of a repeated type)."""
    energy = charging = parking = reservation = None
    max_power = min_power = max_current = min_current = None
    for d in p.dimensions:
        t = d.type
        if t is _CDR_ENERGY:
            energy = d.volume
        elif t is _CDR_TIME:
            charging = d.volume
        elif t is _CDR_PARKING:
            parking = d.volume
        elif t is _CDR_RESERVATION:
            reservation = d.volume
        elif t is _CDR_MAX_POWER:
            max_power = d.volume
        elif t is _CDR_MIN_POWER:
            min_power = d.volume
        elif t is _CDR_MAX_CURRENT:
            max_current = d.volume
        elif t is _CDR_MIN_CURRENT:
            min_current = d.volume
    return energy, charging, parking, reservation, max_power, min_power, max_current, min_current


def _reservation_expired(periods: Sequence[ChargingPeriod]) -> bool:
    """A reservation expired when the session has reservation time and nothing else
    (no ENERGY, TIME or PARKING_TIME dimension in any period)."""
    has_session_part = False
    has_reservation = False
    for p in periods:
        for d in p.dimensions:
            t = d.type
            if t is _CDR_RESERVATION:
                if d.volume > 0:
                    has_reservation = True
            elif t is _CDR_ENERGY or t is _CDR_TIME or t is _CDR_PARKING:
                has_session_part = True
    return has_reservation and not has_session_part


def _resolve(selected: tuple) -> tuple:
    """The session selection (ENERGY, TIME, PARKING_TIME, FLAT elements), each with the
    component that prices it, the key of its cost sum and its VAT factor (rule 7):
    (element, component index, component, (group, element index, component index),
    ``vat_factor(component)``), or None. Called inside the engine's Decimal context, so
    the factor is the value ``apply_vat`` computes."""
    out = []
    for el, dim, group in zip(selected, (_ENERGY, _TIME, _PARKING), (ENERGY_GROUP, TIME_GROUP, PARKING_GROUP)):
        if el is None:
            out.append(None)
        else:
            ci, component = el.components[dim]
            out.append((el, ci, component, (group, el.index, ci), vat_factor(component)))
    el = selected[3]
    if el is None:
        out.append(None)
    else:
        # FLAT: also the fixed cost group's exact sums and Price when this is the
        # session's FLAT (its only entry: ZERO + price, VAT as apply_vat adds it)
        ci, component = el.components[_FLAT]
        factor = vat_factor(component)
        excl = ZERO + component.price
        incl = ZERO + (component.price if factor is None else component.price * factor)
        out.append((el, ci, component, (FIXED_GROUP, el.index, ci), factor, excl, incl, _cdr_price(excl, incl),
                    _cdr_pair(excl, incl)))
    return tuple(out)


def _plan(compiled: CompiledTariff) -> tuple:
    """What the hot loop needs of a tariff, made once per tariff (``engine_memo``): the
    memo of resolved selections, the bucket tables, the flags and thresholds, whether the
    tariff has a session FLAT, and the radix of each bucket digit of the memo key. The key
    is restrictions.selection_key's buckets as the digits of one int: time of day (most
    significant), weekday (7), date (len + 1), kWh (len + 1), duration (len + 1), power and
    current (len + 2: 0 for unknown, else 1 + the bucket); each digit lies in [0, radix),
    so two different bucket tuples never give the same key. A period priced without local
    time has -1 as its time digits (keys < 0, apart from all others). Last, per session
    dimension (ENERGY, TIME, PARKING_TIME, FLAT): whether one of its candidates has a
    local-time restriction."""
    return (
        {},
        _duration_deltas(compiled),
        _minute_buckets(compiled.time_cuts),
        compiled.needs_local_time,
        compiled.uses_power,
        compiled.uses_current,
        compiled.uses_duration,
        compiled.time_cuts,
        compiled.uses_days,
        compiled.date_cuts,
        compiled.kwh_thresholds,
        compiled.duration_thresholds,
        compiled.power_thresholds,
        compiled.current_thresholds,
        not compiled.session_candidates[_FLAT],
        len(compiled.date_cuts) + 1,
        len(compiled.kwh_thresholds) + 1,
        len(compiled.duration_thresholds) + 1,
        len(compiled.power_thresholds) + 2,
        len(compiled.current_thresholds) + 2,
        *(any(el.needs_local_time for el in compiled.session_candidates[dim])
          for dim in (_ENERGY, _TIME, _PARKING, _FLAT)),
    )


#: Bound of the per-tariff memo of resolved selections (one entry per bucket key).
_MEMO_LIMIT = 65536


def _minute_buckets(time_cuts: tuple[int, ...]) -> tuple[int, ...] | None:
    """``bisect_right(time_cuts, seconds of the day)`` per minute of the day. The cuts are
    whole minutes (HH:MM), so no cut lies inside a minute and every second (and
    microsecond) of a minute falls in the bucket of its first second. None without cuts
    or with a cut that is not a whole minute."""
    if not time_cuts or any(c % 60 for c in time_cuts):
        return None
    return tuple(bisect_right(time_cuts, m * 60) for m in range(24 * 60))


def _duration_deltas(compiled: CompiledTariff) -> tuple[timedelta, ...] | None:
    """The duration thresholds as timedeltas: ``start - session_start`` compares with them
    exactly as its exact seconds (``seconds_between``) compare with the seconds. None when
    a threshold is beyond what a timedelta holds (then the seconds are compared)."""
    try:
        return tuple(timedelta(seconds=s) for s in compiled.duration_thresholds)
    except OverflowError:
        return None


def _price(rows, compiled: CompiledTariff, zone, session_start, session_end, findings, expired_of, plain):
    # The hot loop of the engine: one pass over the periods, locals only, no object built
    # per period. The active elements of a period come from the tariff's memo keyed by
    # the buckets between its thresholds (the key of ``session_selection``, which computes
    # them on a miss); the cost sums are accumulated per component in exactly the order
    # (and with exactly the additions) of one ``+=`` per period, so every Decimal result
    # is the same as a plain per-period walk. The breakdown is kept as the per-period
    # selections and rebuilt on demand (``PricedSession.lines``).
    tariff = compiled.tariff
    plan = compiled.engine_memo.get("plan")
    if plan is None:
        plan = compiled.engine_memo["plan"] = _plan(compiled)
    (resolved, duration_deltas, minute_buckets, needs_local, needs_power, needs_current, needs_duration,
     time_cuts, uses_days, date_cuts, kwh_thresholds, duration_thresholds, power_thresholds,
     current_thresholds, session_flat_found, dates_radix, kwh_radix, duration_radix, power_radix,
     current_radix, local_e, local_t, local_p, local_f) = plan
    needs_power_or_current = needs_power or needs_current
    reservation_flat_found = False

    #: (group, element index, component index) -> [element, component index, component, quantity, is FLAT]
    billed: dict[tuple, list] = {}
    selections: list = []
    select = selections.append
    extras: dict[int, list[tuple]] = {}
    res_billed = ZERO  # reservation time billed, its last component and period (rule 6)
    res_last = res_last_i = None

    expired = None  # known at the first period with reservation time (_reservation_expired)
    flat = None  # the session's FLAT (resolved), once found

    total_charging = total_parking = total_reservation = ZERO
    # The running kWh total is needed in the loop only when an element has a kWh
    # restriction; otherwise the session's total energy is the billed energy sum
    # (the same nonzero volumes in the same order) unless an energy period went
    # unpriced (``unpriced_e``), and then it is summed here after all.
    track_kwh = bool(kwh_thresholds)
    unpriced_e = False
    # Likewise the session's charging and parking time totals are the billed TIME and
    # PARKING_TIME sums unless a period's time went unpriced (``unpriced_t``,
    # ``unpriced_p``); from then on they are summed here (the billed sum so far first).
    unpriced_t = unpriced_p = False
    kwh_so_far = ZERO  # also the session's total energy (when summed, see above)
    previous_start = session_start
    # rule 5: report (once) a period whose power/current a restriction needs but lacks
    check_evaluable = needs_power_or_current
    # Per session dimension: the component of the current run of periods, its cost-sum
    # list in ``billed`` and the running quantity of that list; the billed total of the
    # dimension (rule 6) and the last component and period that priced it.
    cur_e = cur_t = cur_p = None
    list_e = list_t = list_p = None
    acc_e = acc_t = acc_p = None
    # While a dimension has had one run only (``multi_*`` false) its billed total is that
    # run's sum ``acc_*``: the same values added in the same order (from ZERO, which adds
    # nothing to the value), so the same value; rule 6 reads only its value. From the
    # second run on it is summed on its own. ``cur_*`` is the last component used.
    billed_e = billed_t = billed_p = ZERO
    multi_e = multi_t = multi_p = False
    last_e_i = last_t_i = last_p_i = None

    for i, (start, energy, charging, parking, reservation, max_power, min_power, max_current,
            min_current) in enumerate(rows):
        if start < previous_start or start > session_end:
            if start < session_start or start > session_end:
                findings.append(Finding("period_outside_session", f"period starts {format_ocpi_datetime(start)}, outside the session", i))
            else:
                findings.append(Finding("periods_out_of_order", "period starts before the previous one", i))
        previous_start = start
        # is_signed() (negative or -0) first: cheaper than the comparison it guards
        if ((energy is not None and energy.is_signed() and energy < ZERO)
                or (charging is not None and charging.is_signed() and charging < ZERO)
                or (parking is not None and parking.is_signed() and parking < ZERO)):
            findings.append(Finding("negative_quantity", "a negative ENERGY/TIME/PARKING_TIME volume is priced as given", i))
        # Local time only when an active element of what this period holds can depend on
        # it (rule 1: a dimension whose candidates have no time-of-day / day / date
        # restriction has the same active element at any local time): the memo key then
        # gets -1 for its time digits, and the selection made without local time is read
        # only for those dimensions.
        if needs_local and (reservation or (energy and local_e) or (charging and local_t) or (parking and local_p)
                            or (local_f and not session_flat_found)):
            local = start.astimezone(zone)
        else:
            local = None
        if not needs_power_or_current:
            power = current = None
        else:
            if not needs_power:
                power = None
            elif max_power is not None:
                power = max_power  # power_for_restrictions' first case, inline
            else:
                power = power_for_restrictions(max_power, min_power, energy, charging, parking)
            current = (max_current if max_current is not None else min_current) if needs_current else None
        if energy is not None or charging is not None or parking is not None or not reservation:
            # the buckets of restrictions.selection_key as the digits of one int (see _plan)
            if local is not None:
                if minute_buckets is not None:
                    key = minute_buckets[local.hour * 60 + local.minute]
                elif time_cuts:
                    seconds = local.hour * 3600 + local.minute * 60 + local.second
                    if local.microsecond:
                        seconds += local.microsecond / 1_000_000
                    key = bisect_right(time_cuts, seconds)
                else:
                    key = 0
                if uses_days:
                    key = key * 7 + local.weekday()
                if date_cuts:
                    key = key * dates_radix + bisect_right(date_cuts, local.date())
            else:
                key = -1 if needs_local else 0
            if kwh_thresholds:
                key = key * kwh_radix + bisect_right(kwh_thresholds, kwh_so_far)
            if needs_duration:
                if duration_deltas is not None:
                    key = key * duration_radix + bisect_right(duration_deltas, start - session_start)
                else:
                    key = key * duration_radix + bisect_right(duration_thresholds, seconds_between(session_start, start))
            if needs_power:
                key = key * power_radix + (0 if power is None else 1 + bisect_right(power_thresholds, power))
            if needs_current:
                key = key * current_radix + (0 if current is None else 1 + bisect_right(current_thresholds, current))
            sel = resolved.get(key)
            if sel is None:
                duration_s = seconds_between(session_start, start) if needs_duration else ZERO
                sel = _resolve(session_selection(compiled, PeriodContext(local, kwh_so_far, duration_s, power, current)))
                if len(resolved) >= _MEMO_LIMIT:
                    resolved.clear()
                resolved[key] = sel
            select(sel)
            r = sel[0]
            if energy and r is not None:
                if r is cur_e:
                    acc_e += energy
                    if multi_e:
                        billed_e += energy
                else:
                    if list_e is not None:
                        list_e[3] = acc_e
                        if not multi_e:
                            billed_e = acc_e  # the first run's sum (see below)
                            multi_e = True
                        billed_e += energy
                    list_e = billed.get(r[3])
                    if list_e is None:
                        list_e = billed[r[3]] = [r[0], r[1], r[2], energy, False, r[4]]
                        acc_e = energy
                    else:
                        acc_e = list_e[3] + energy
                    cur_e = r
                last_e_i = i
            elif energy and not unpriced_e:
                unpriced_e = True
                if not track_kwh:  # catch up: the energy billed so far, in period order
                    kwh_so_far = ZERO if acc_e is None else billed_e if multi_e else acc_e
            r = sel[1]
            if charging and r is not None:
                if r is cur_t:
                    acc_t += charging
                    if multi_t:
                        billed_t += charging
                else:
                    if list_t is not None:
                        list_t[3] = acc_t
                        if not multi_t:
                            billed_t = acc_t  # the first run's sum (see below)
                            multi_t = True
                        billed_t += charging
                    list_t = billed.get(r[3])
                    if list_t is None:
                        list_t = billed[r[3]] = [r[0], r[1], r[2], charging, False, r[4]]
                        acc_t = charging
                    else:
                        acc_t = list_t[3] + charging
                    cur_t = r
                last_t_i = i
            elif charging and not unpriced_t:
                unpriced_t = True  # catch up: the TIME billed so far, in period order
                total_charging = ZERO if acc_t is None else billed_t if multi_t else acc_t
            r = sel[2]
            if parking and r is not None:
                if r is cur_p:
                    acc_p += parking
                    if multi_p:
                        billed_p += parking
                else:
                    if list_p is not None:
                        list_p[3] = acc_p
                        if not multi_p:
                            billed_p = acc_p  # the first run's sum (see below)
                            multi_p = True
                        billed_p += parking
                    list_p = billed.get(r[3])
                    if list_p is None:
                        list_p = billed[r[3]] = [r[0], r[1], r[2], parking, False, r[4]]
                        acc_p = parking
                    else:
                        acc_p = list_p[3] + parking
                    cur_p = r
                last_p_i = i
            elif parking and not unpriced_p:
                unpriced_p = True  # catch up: the PARKING_TIME billed so far, in period order
                total_parking = ZERO if acc_p is None else billed_p if multi_p else acc_p
            if not session_flat_found:
                r = sel[3]
                if r is not None:
                    session_flat_found = True
                    flat = r  # the fixed cost group's only entry (rule 4), priced in _resolve
                    extras.setdefault(i, []).append((i, FIXED_GROUP, "FLAT", r[0], r[1], r[2], ONE))
            if check_evaluable and ((needs_power and power is None) or (needs_current and current is None)):
                check_evaluable = False
                findings.append(Finding(
                    "restriction_not_evaluable",
                    "an element has a power/current restriction but the period has no power/current data; "
                    "such elements were skipped",
                    i,
                ))
        else:
            select(None)
        if reservation:
            if expired is None:
                expired = expired_of()
            duration_s = seconds_between(session_start, start) if needs_duration else ZERO
            rctx = PeriodContext(local, kwh_so_far, duration_s, power, current, reservation=True, expired=expired)
            el = active_element_for(_TIME, compiled, rctx)
            if el is not None:
                ci, component = el.components[_TIME]
                extras.setdefault(i, []).append((i, RESERVATION_GROUP, "RESERVATION_TIME", el, ci, component, reservation))
                key = (RESERVATION_GROUP, el.index, ci)
                acc = billed.get(key)
                if acc is None:
                    billed[key] = [el, ci, component, reservation, False, vat_factor(component)]
                else:
                    acc[3] += reservation
                res_billed += reservation
                res_last = (el, ci, component)
                res_last_i = i
            if not reservation_flat_found:
                el = active_element_for(_FLAT, compiled, rctx)
                if el is not None:
                    reservation_flat_found = True
                    ci, component = el.components[_FLAT]
                    extras.setdefault(i, []).append((i, RESERVATION_GROUP, "FLAT", el, ci, component, ONE))
                    billed[(RESERVATION_GROUP, el.index, ci, "fee")] = [el, ci, component, ONE, True, vat_factor(component)]

        if energy is not None and (track_kwh or unpriced_e):
            kwh_so_far += energy
        if charging is not None and unpriced_t:
            total_charging += charging
        if parking is not None and unpriced_p:
            total_parking += parking
        if reservation is not None:
            total_reservation += reservation

    # the running quantities back into their cost-sum lists
    if list_e is not None:
        list_e[3] = acc_e
        if not multi_e:
            billed_e = acc_e
    if list_t is not None:
        list_t[3] = acc_t
        if not multi_t:
            billed_t = acc_t
    if list_p is not None:
        list_p[3] = acc_p
        if not multi_p:
            billed_p = acc_p
    if not unpriced_t:
        total_charging = billed_t  # the same nonzero volumes in the same order: the same value
    if not unpriced_p:
        total_parking = billed_p
    # rule 6 (_step_record per dimension): ENERGY, then PARKING_TIME when a PARKING_TIME
    # component was used, else TIME, then RESERVATION_TIME; ``cur_*`` is the last
    # component used (element, component index, component, key, VAT factor)
    steps = []
    if cur_e is not None:
        record = _step_record(billed_e, cur_e, last_e_i, "ENERGY", ENERGY_GROUP, WH_PER_KWH, cur_e[4])
        if record is not None:
            steps.append(record)
    if cur_p is not None:
        record = _step_record(billed_p, cur_p, last_p_i, "PARKING_TIME", PARKING_GROUP, SECONDS_PER_HOUR, cur_p[4])
        if record is not None:
            steps.append(record)
    elif cur_t is not None:
        record = _step_record(billed_t, cur_t, last_t_i, "TIME", TIME_GROUP, SECONDS_PER_HOUR, cur_t[4])
        if record is not None:
            steps.append(record)
    if res_last is not None:
        record = _step_record(res_billed, res_last, res_last_i, "RESERVATION_TIME", RESERVATION_GROUP,
                              SECONDS_PER_HOUR, vat_factor(res_last[2]))
        if record is not None:
            steps.append(record)

    # Costs per component: the sum of the quantities it priced x its price (rules 4, 5),
    # VAT on that (rule 7). Exact: the same as summing the per-period lines.
    # The fixed group holds the session's FLAT only (rule 4; the reservation fee is in the
    # reservation group): its sums and Price come with the selection (_resolve).
    if flat is None:
        fixed_excl = fixed_incl = ZERO
        fixed_price = _ZERO_PAIR if plain else _ZERO_PRICE
    else:
        fixed_excl, fixed_incl, fixed_price = flat[5], flat[6], flat[8 if plain else 7]
    # the other cost sums per group, in GROUPS order
    energy_sum, time_sum, parking_sum, reservation_sum = [ZERO, ZERO], [ZERO, ZERO], [ZERO, ZERO], [ZERO, ZERO]
    sums = {ENERGY_GROUP: energy_sum, TIME_GROUP: time_sum, PARKING_GROUP: parking_sum,
            RESERVATION_GROUP: reservation_sum}
    for key, (el, ci, component, qty, is_flat, factor) in billed.items():
        excl = component.price if is_flat else qty * component.price  # flat_cost, energy_cost, time_cost
        acc = sums[key[0]]
        acc[0] += excl
        acc[1] += excl if factor is None else excl * factor  # apply_vat with the factor made once

    for step in steps:
        acc = sums[step[0]]
        acc[0] += step[7]
        acc[1] += step[8]
    adjustments: list[BreakdownLine] = []  # the min/max lines (step_size lines: from steps)
    # sum(..., ZERO) over the groups in GROUPS order, written out
    exact_excl = ZERO + fixed_excl + energy_sum[0] + time_sum[0] + parking_sum[0] + reservation_sum[0]
    exact_incl = ZERO + fixed_incl + energy_sum[1] + time_sum[1] + parking_sum[1] + reservation_sum[1]
    if tariff.min_price is None and tariff.max_price is None:
        bounded_excl, bounded_incl = exact_excl, exact_incl  # apply_min_max_price has nothing to do
    else:
        bounded_excl, bounded_incl = apply_min_max_price(tariff, exact_excl, exact_incl, adjustments)

    price = _cdr_pair if plain else _cdr_price
    exact = {  # GROUPS order, then the bounded and the unbounded total
        FIXED_GROUP: (fixed_excl, fixed_incl),
        ENERGY_GROUP: (energy_sum[0], energy_sum[1]),
        TIME_GROUP: (time_sum[0], time_sum[1]),
        PARKING_GROUP: (parking_sum[0], parking_sum[1]),
        RESERVATION_GROUP: (reservation_sum[0], reservation_sum[1]),
        "total": (bounded_excl, bounded_incl),
        "before_min_max": (exact_excl, exact_incl),
    }
    total_energy = kwh_so_far if track_kwh or unpriced_e else billed_e
    total_time = total_charging + total_parking
    # PricedSession's fields in their order (_RESULT_FIELDS; a keyword call of 22
    # arguments costs four times a positional one); the totals rounded as cdr_amount does
    return (
        tariff.currency,  # currency
        tariff.id,  # tariff_id
        session_start,  # session_start
        session_end,  # session_end
        None,  # charging_periods (price_periods puts the periods here)
        price(bounded_excl, bounded_incl),  # total_cost
        fixed_price,  # total_fixed_cost
        price(energy_sum[0], energy_sum[1]),  # total_energy_cost
        price(time_sum[0], time_sum[1]),  # total_time_cost
        price(parking_sum[0], parking_sum[1]),  # total_parking_cost
        price(reservation_sum[0], reservation_sum[1]),  # total_reservation_cost
        total_energy.quantize(NOISE_QUANTUM, ROUND_HALF_UP).quantize(CDR_QUANTUM, ROUND_HALF_UP),  # total_energy
        total_time.quantize(NOISE_QUANTUM, ROUND_HALF_UP).quantize(CDR_QUANTUM, ROUND_HALF_UP),  # total_time
        # an untouched total (still the ZERO object) is 0.0000, as cdr_amount(ZERO) gives
        _ZERO_AMOUNT if total_parking is ZERO else cdr_amount(total_parking),  # total_parking_time
        _ZERO_AMOUNT if total_reservation is ZERO else cdr_amount(total_reservation),  # total_reservation_time
        findings,  # findings
        exact,  # exact
        list(tariff.tariff_alt_text or ()),  # tariff_alt_text
        selections,  # period_selections
        extras,  # extra_records
        steps,  # step_records
        adjustments,  # bound_lines
    )


#: The fields of PricedSession in the order ``_price`` passes them (pinned by a test).
_RESULT_FIELDS = (
    "currency", "tariff_id", "session_start", "session_end", "charging_periods", "total_cost",
    "total_fixed_cost", "total_energy_cost", "total_time_cost", "total_parking_cost",
    "total_reservation_cost", "total_energy", "total_time", "total_parking_time",
    "total_reservation_time", "findings", "exact", "tariff_alt_text", "period_selections",
    "extra_records", "step_records", "bound_lines",
)


def explain(priced: PricedSession) -> str:
    """The breakdown as a text table (``chargeledger price --explain``)."""
    header = ("kind", "period", "dimension", "elem", "comp", "quantity", "unit price", "vat %", "excl VAT", "incl VAT", "note")
    rows: list[tuple[str, ...]] = [header]

    def num(v: Decimal | None, places: int = 6) -> str:
        if v is None:
            return "-"
        q = v.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP).normalize()
        return f"{q:f}"

    for line in priced.lines:
        rows.append((
            line.kind,
            "-" if line.period_index is None else str(line.period_index),
            line.dimension,
            "-" if line.element_index is None else str(line.element_index),
            "-" if line.component_index is None else str(line.component_index),
            num(line.quantity),
            num(line.unit_price),
            num(line.vat),
            num(line.excl_vat),
            num(line.incl_vat),
            line.note,
        ))
    for name, value in priced.totals().items():
        if isinstance(value, Price):
            rows.append(("total", "", name, "", "", "", "", "", f"{value.excl_vat:f}", f"{value.incl_vat:f}", ""))
        else:
            rows.append(("total", "", name, "", "", f"{value:f}", "", "", "", "", ""))
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    for f in priced.findings:
        out.append(f"finding: {f}")
    return "\n".join(out)


def sum_lines(lines: Iterable[BreakdownLine], group: str) -> tuple[Decimal, Decimal]:
    excl = incl = ZERO
    for line in lines:
        if line.group == group:
            excl += line.excl_vat
            incl += line.incl_vat
    return excl, incl
