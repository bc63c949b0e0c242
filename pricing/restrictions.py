"""Tariff restrictions and the choice of the active element (OCPI 2.2.1 mod_tariffs).

A tariff is compiled once (``compile_tariff``) into plain values: times of day in seconds,
dates as ``date``, days of week as ISO numbers, and per dimension the list of candidate
elements. Each restriction is one function below, named after it; ``restrictions_hold`` is
their logical AND (mod_tariffs TariffRestrictions: "When more than one restriction is set,
they are to be treated as a logical AND").

Rules cited as "rule N" are in ../shared/docs/ocpi-pricing.md.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.ocpi import (
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffRestrictions,
)

DAY_NUMBERS = {
    "MONDAY": 0,
    "TUESDAY": 1,
    "WEDNESDAY": 2,
    "THURSDAY": 3,
    "FRIDAY": 4,
    "SATURDAY": 5,
    "SUNDAY": 6,
}
SECONDS_PER_DAY = 86400


class UnknownTimeZone(ValueError):
    """The time zone name is not an IANA zone this machine knows."""


@lru_cache(maxsize=512)
def zone_for(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (rule 2: restrictions are evaluated in the location's local time)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise UnknownTimeZone(f"unknown time zone {name!r} (expected an IANA name like 'Europe/Amsterdam')") from exc


def _time_of_day_seconds(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


@dataclass(frozen=True, slots=True)
class CompiledElement:
    """One TariffElement with its restrictions turned into comparable values."""

    index: int
    #: Per dimension, the first component of that type in the element and its index
    #: (mod_tariffs: "Only one Price Component per dimension can be active").
    components: dict[TariffDimensionType, tuple[int, PriceComponent]]
    restrictions: TariffRestrictions | None
    start_s: int | None = None
    end_s: int | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    days: frozenset[int] | None = None
    reservation: ReservationRestrictionType | None = None
    #: True when some restriction needs the local wall time (time of day, date, weekday).
    needs_local_time: bool = False
    #: True when the element has no restriction at all.
    unrestricted: bool = True
    uses_power: bool = False
    uses_current: bool = False
    #: The restriction functions below that apply to this element (filled by compile_element).
    checks: tuple = ()


@dataclass(frozen=True, slots=True)
class CompiledTariff:
    tariff: Tariff
    elements: tuple[CompiledElement, ...]
    #: Candidates per dimension for a session (elements without a reservation restriction).
    session_candidates: dict[TariffDimensionType, tuple[CompiledElement, ...]]
    #: Candidates per dimension for a reservation that was followed by a session.
    reservation_candidates: dict[TariffDimensionType, tuple[CompiledElement, ...]]
    #: Candidates per dimension for a reservation that expired: RESERVATION_EXPIRES
    #: elements first (mod_tariffs ReservationRestrictionType NOTE), then RESERVATION.
    expired_candidates: dict[TariffDimensionType, tuple[CompiledElement, ...]]
    needs_local_time: bool
    #: Seconds of the day where a time-of-day/date/weekday restriction can change.
    day_boundaries: frozenset[int]
    kwh_thresholds: tuple[Decimal, ...]
    duration_thresholds: tuple[int, ...]
    power_thresholds: tuple[Decimal, ...] = field(default=())
    current_thresholds: tuple[Decimal, ...] = field(default=())
    #: Sorted seconds of the day where a time-of-day restriction starts or ends.
    time_cuts: tuple[int, ...] = field(default=())
    #: Sorted dates where a date restriction starts or ends.
    date_cuts: tuple[date, ...] = field(default=())
    uses_days: bool = False
    #: (bucket key) -> the active elements for (ENERGY, TIME, PARKING_TIME, FLAT) of a session period.
    selections: dict = field(default_factory=dict, compare=False, repr=False)
    #: The engine's own memo (pricing.engine): the plan of the hot loop and, per bucket
    #: key, the selected elements resolved to their components.
    engine_memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def uses_power(self) -> bool:
        return bool(self.power_thresholds)

    @property
    def uses_current(self) -> bool:
        return bool(self.current_thresholds)

    @property
    def uses_duration(self) -> bool:
        return bool(self.duration_thresholds)


def compile_element(index: int, element) -> CompiledElement:
    components: dict[TariffDimensionType, tuple[int, PriceComponent]] = {}
    for ci, component in enumerate(element.price_components):
        components.setdefault(component.type, (ci, component))
    r = element.restrictions
    if r is None:
        return CompiledElement(index=index, components=components, restrictions=None)
    start_s = _time_of_day_seconds(r.start_time) if r.start_time else None
    end_s = _time_of_day_seconds(r.end_time) if r.end_time else None
    if end_s == 0:
        end_s = SECONDS_PER_DAY  # rule 2 / mod_tariffs end_time: "To stop at end of the day use: 00:00"
    days = frozenset(DAY_NUMBERS[d.value] for d in r.day_of_week) if r.day_of_week else None
    start_date = date.fromisoformat(r.start_date) if r.start_date else None
    end_date = date.fromisoformat(r.end_date) if r.end_date else None
    needs_local = any(v is not None for v in (start_s, end_s, start_date, end_date, days))
    unrestricted = not any(
        v is not None
        for v in (
            start_s, end_s, start_date, end_date, days, r.min_kwh, r.max_kwh, r.min_current,
            r.max_current, r.min_power, r.max_power, r.min_duration, r.max_duration, r.reservation,
        )
    )
    element = CompiledElement(
        index=index,
        components=components,
        restrictions=r,
        start_s=start_s,
        end_s=end_s,
        start_date=start_date,
        end_date=end_date,
        min_kwh=r.min_kwh,
        max_kwh=r.max_kwh,
        min_current=r.min_current,
        max_current=r.max_current,
        min_power=r.min_power,
        max_power=r.max_power,
        min_duration=r.min_duration,
        max_duration=r.max_duration,
        days=days,
        reservation=r.reservation,
        needs_local_time=needs_local,
        unrestricted=unrestricted,
        uses_power=r.min_power is not None or r.max_power is not None,
        uses_current=r.min_current is not None or r.max_current is not None,
    )
    checks = [reservation_restriction_holds]
    if start_s is not None or end_s is not None:
        checks.append(_local(time_of_day_restriction_holds))
    if start_date is not None or end_date is not None:
        checks.append(_local(date_restriction_holds))
    if days is not None:
        checks.append(_local(day_of_week_restriction_holds))
    if r.min_kwh is not None or r.max_kwh is not None:
        checks.append(lambda el, ctx: energy_restriction_holds(el, ctx.kwh))
    if r.min_duration is not None or r.max_duration is not None:
        checks.append(lambda el, ctx: duration_restriction_holds(el, ctx.duration_s))
    if element.uses_power:
        checks.append(lambda el, ctx: power_restriction_holds(el, ctx.power))
    if element.uses_current:
        checks.append(lambda el, ctx: current_restriction_holds(el, ctx.current))
    object.__setattr__(element, "checks", tuple(checks))
    return element


def _local(rule):
    """Adapt a local-time restriction function to (element, context)."""

    def check(el: CompiledElement, ctx: PeriodContext) -> bool:
        return ctx.local is not None and rule(el, ctx.local)

    check.__name__ = rule.__name__
    return check


_COMPILED: dict[int, CompiledTariff] = {}


def _up_to_first_unrestricted(candidates: list[CompiledElement]) -> tuple[CompiledElement, ...]:
    """Elements after an unrestricted one can never be the first match (rule 1): drop them."""
    for i, el in enumerate(candidates):
        if el.unrestricted:
            return tuple(candidates[: i + 1])
    return tuple(candidates)


def compile_tariff(tariff: Tariff) -> CompiledTariff:
    """Compile (and cache, per tariff object) the tariff's elements for fast matching."""
    cached = _COMPILED.get(id(tariff))
    if cached is not None and cached.tariff is tariff:
        return cached
    elements = tuple(compile_element(i, e) for i, e in enumerate(tariff.elements))
    session: dict[TariffDimensionType, list[CompiledElement]] = {d: [] for d in TariffDimensionType}
    reservation: dict[TariffDimensionType, list[CompiledElement]] = {d: [] for d in TariffDimensionType}
    expires_first: dict[TariffDimensionType, list[CompiledElement]] = {d: [] for d in TariffDimensionType}
    expires_then: dict[TariffDimensionType, list[CompiledElement]] = {d: [] for d in TariffDimensionType}
    for el in elements:
        for dim in el.components:
            if el.reservation is None:
                session[dim].append(el)
            elif el.reservation is ReservationRestrictionType.RESERVATION:
                reservation[dim].append(el)
                expires_then[dim].append(el)
            else:
                expires_first[dim].append(el)
    boundaries: set[int] = set()
    kwh: set[Decimal] = set()
    durations: set[int] = set()
    powers: set[Decimal] = set()
    currents: set[Decimal] = set()
    for el in elements:
        if el.start_s is not None:
            boundaries.add(el.start_s % SECONDS_PER_DAY)
        if el.end_s is not None:
            boundaries.add(el.end_s % SECONDS_PER_DAY)
        if (el.start_s is None) != (el.end_s is None):
            # only one end given: the window starts (no start_time) or ends (no
            # end_time) at local midnight, which is a boundary too
            boundaries.add(0)
        if el.days is not None or el.start_date is not None or el.end_date is not None:
            boundaries.add(0)
        kwh.update(v for v in (el.min_kwh, el.max_kwh) if v is not None)
        durations.update(v for v in (el.min_duration, el.max_duration) if v is not None)
        powers.update(v for v in (el.min_power, el.max_power) if v is not None)
        currents.update(v for v in (el.min_current, el.max_current) if v is not None)
    compiled = CompiledTariff(
        tariff=tariff,
        elements=elements,
        session_candidates={d: _up_to_first_unrestricted(v) for d, v in session.items()},
        reservation_candidates={d: tuple(v) for d, v in reservation.items()},
        expired_candidates={d: tuple(expires_first[d] + expires_then[d]) for d in TariffDimensionType},
        needs_local_time=any(el.needs_local_time for el in elements),
        day_boundaries=frozenset(boundaries),
        kwh_thresholds=tuple(sorted(kwh)),
        duration_thresholds=tuple(sorted(durations)),
        power_thresholds=tuple(sorted(powers)),
        current_thresholds=tuple(sorted(currents)),
        time_cuts=tuple(sorted({s for el in elements for s in (el.start_s, el.end_s) if s is not None})),
        date_cuts=tuple(sorted({d for el in elements for d in (el.start_date, el.end_date) if d is not None})),
        uses_days=any(el.days is not None for el in elements),
    )
    if len(_COMPILED) > 1024:
        _COMPILED.clear()
    _COMPILED[id(tariff)] = compiled
    return compiled


@dataclass(slots=True)
class PeriodContext:
    """What the restrictions look at, at the start of one charging period (rule 3)."""

    #: Local wall time at the period start (rule 2), None when no restriction needs it.
    local: datetime | None
    #: Energy consumed from the session start to the period start, kWh (rule 2).
    kwh: Decimal
    #: Seconds from the session start to the period start (rule 2).
    duration_s: Decimal
    #: Power for power restrictions, kW (rule 5), None when unknown.
    power: Decimal | None
    #: Current for current restrictions, A (rule 5), None when unknown.
    current: Decimal | None
    #: True for the reservation part of a session (RESERVATION_TIME).
    reservation: bool = False
    #: True when the reservation expired (no charging session followed it).
    expired: bool = False


# ------------------------------------------------------------------------------------
# One function per restriction
# ------------------------------------------------------------------------------------


def time_of_day_restriction_holds(el: CompiledElement, local: datetime) -> bool:
    """start_time inclusive, end_time exclusive, local wall time (mod_tariffs
    TariffRestrictions start_time/end_time; rule 2). ``end_time < start_time`` wraps past
    midnight; an end_time of 00:00 means the end of the day. Equal start and end: an
    empty window (never active)."""
    if el.start_s is None and el.end_s is None:
        return True
    t = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1_000_000
    start = el.start_s if el.start_s is not None else 0
    end = el.end_s if el.end_s is not None else SECONDS_PER_DAY
    if start <= end:
        return start <= t < end
    return t >= start or t < end  # wraps past midnight


def date_restriction_holds(el: CompiledElement, local: datetime) -> bool:
    """start_date inclusive, end_date exclusive, on the local date (mod_tariffs; rule 2)."""
    day = local.date()
    if el.start_date is not None and day < el.start_date:
        return False
    if el.end_date is not None and day >= el.end_date:
        return False
    return True


def day_of_week_restriction_holds(el: CompiledElement, local: datetime) -> bool:
    """The local weekday is one of ``day_of_week`` (mod_tariffs DayOfWeek; rule 2). Each
    restriction is checked on its own at the instant: a 22:00-06:00 window restricted to
    FRIDAY holds on Friday 22:00-24:00 and Friday 00:00-06:00, not Saturday 02:00."""
    return el.days is None or local.weekday() in el.days


def energy_restriction_holds(el: CompiledElement, kwh: Decimal) -> bool:
    """min_kwh inclusive, max_kwh exclusive, energy counted from the session start (rule 2)."""
    if el.min_kwh is not None and kwh < el.min_kwh:
        return False
    if el.max_kwh is not None and kwh >= el.max_kwh:
        return False
    return True


def duration_restriction_holds(el: CompiledElement, seconds: Decimal) -> bool:
    """min_duration inclusive, max_duration exclusive, seconds since the session start
    (rule 2; mod_tariffs min_duration "(inclusive)" in its table)."""
    if el.min_duration is not None and seconds < el.min_duration:
        return False
    if el.max_duration is not None and seconds >= el.max_duration:
        return False
    return True


def power_restriction_holds(el: CompiledElement, power: Decimal | None) -> bool:
    """min_power inclusive, max_power exclusive (mod_tariffs: "more than, or equal to" /
    "less than"; rule 2). Unknown power: the restriction does not hold (the element is
    skipped and a finding says so)."""
    if not el.uses_power:
        return True
    if power is None:
        return False
    if el.min_power is not None and power < el.min_power:
        return False
    if el.max_power is not None and power >= el.max_power:
        return False
    return True


def current_restriction_holds(el: CompiledElement, current: Decimal | None) -> bool:
    """min_current inclusive, max_current exclusive (mod_tariffs; rule 2). Unknown current:
    the restriction does not hold."""
    if not el.uses_current:
        return True
    if current is None:
        return False
    if el.min_current is not None and current < el.min_current:
        return False
    if el.max_current is not None and current >= el.max_current:
        return False
    return True


def reservation_restriction_holds(el: CompiledElement, ctx: PeriodContext) -> bool:
    """An element with ``reservation`` prices only a reservation; one without it only the
    session (mod_tariffs TariffRestrictions reservation; rule 5). RESERVATION_EXPIRES
    elements apply only to a reservation that expired."""
    if el.reservation is None:
        return not ctx.reservation
    if not ctx.reservation:
        return False
    if el.reservation is ReservationRestrictionType.RESERVATION_EXPIRES:
        return ctx.expired
    return True


def restrictions_hold(el: CompiledElement, ctx: PeriodContext) -> bool:
    """All restrictions of the element hold at the period start (logical AND). Only the
    functions of the restrictions the element has are called (``el.checks``)."""
    if el.unrestricted:
        return not ctx.reservation
    for check in el.checks:
        if not check(el, ctx):
            return False
    return True


def candidates_for(compiled: CompiledTariff, dimension: TariffDimensionType, ctx: PeriodContext):
    if not ctx.reservation:
        return compiled.session_candidates[dimension]
    if ctx.expired:
        return compiled.expired_candidates[dimension]
    return compiled.reservation_candidates[dimension]


_SESSION_DIMENSIONS = (
    TariffDimensionType.ENERGY,
    TariffDimensionType.TIME,
    TariffDimensionType.PARKING_TIME,
    TariffDimensionType.FLAT,
)


def _bucket(cuts, value) -> int:
    """Which interval between the sorted cuts holds ``value`` (min inclusive, max
    exclusive restrictions are constant inside one); -1 for an unknown value."""
    return -1 if value is None else bisect_right(cuts, value)


def selection_key(compiled: CompiledTariff, ctx: PeriodContext) -> tuple:
    """The restriction-relevant facts of a period, reduced to the buckets between the
    tariff's own thresholds: two periods with the same key have the same active elements."""
    local = ctx.local
    if compiled.needs_local_time and local is not None:
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        if local.microsecond:
            seconds += local.microsecond / 1_000_000
        time_key = (
            bisect_right(compiled.time_cuts, seconds) if compiled.time_cuts else 0,
            local.weekday() if compiled.uses_days else 0,
            bisect_right(compiled.date_cuts, local.date()) if compiled.date_cuts else 0,
        )
    else:
        time_key = None
    return (
        time_key,
        bisect_right(compiled.kwh_thresholds, ctx.kwh) if compiled.kwh_thresholds else 0,
        bisect_right(compiled.duration_thresholds, ctx.duration_s) if compiled.duration_thresholds else 0,
        _bucket(compiled.power_thresholds, ctx.power) if compiled.power_thresholds else 0,
        _bucket(compiled.current_thresholds, ctx.current) if compiled.current_thresholds else 0,
    )


def session_selection(compiled: CompiledTariff, ctx: PeriodContext) -> tuple:
    """Rule 1 for the four session dimensions at once (ENERGY, TIME, PARKING_TIME,
    FLAT), remembered per tariff by ``selection_key``: the same answer as
    ``active_element_for`` for each dimension, computed once per bucket."""
    key = selection_key(compiled, ctx)
    found = compiled.selections.get(key)
    if found is None:
        found = tuple(active_element_for(d, compiled, ctx) for d in _SESSION_DIMENSIONS)
        if len(compiled.selections) > 65536:
            compiled.selections.clear()
        compiled.selections[key] = found
    return found


def active_element_for(
    dimension: TariffDimensionType, compiled: CompiledTariff, ctx: PeriodContext
) -> CompiledElement | None:
    """Rule 1 (mod_tariffs Tariff object): the first element in list order that has a
    component of ``dimension`` and whose restrictions all hold; None = free."""
    for el in candidates_for(compiled, dimension, ctx):
        if restrictions_hold(el, ctx):
            return el
    return None
