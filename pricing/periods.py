"""Charging periods: from meter readings, split at every price boundary (rule 3).

mod_cdrs ChargingPeriod: "A CPO SHALL at least start (and add) a ChargingPeriod every
moment/event that has relevance for the total costs of a CDR." The boundaries where a
tariff's price can change are: local times of day, local midnights (dates, day of week),
kWh thresholds, duration thresholds, power and current thresholds, and the switch between
charging and parking. ``charging_periods_from_readings`` cuts the session at all of them
(interpolating energy linearly between readings, as mod_cdrs allows: "it can be
interpolated by the CPO using the metering information before and after that moment"),
then merges neighbouring pieces that the tariff prices the same way.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import islice
from operator import itemgetter
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, getcontext, setcontext
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from schemas.ocpi import CdrDimensionType, ChargingPeriod, Tariff, TariffDimensionType, _to_utc
from schemas.readings import MeterReading

from .engine import (
    _ENGINE_CONTEXT,
    SECONDS_PER_HOUR,
    ZERO,
    Finding,
    PricingError,
    current_for_restrictions,
    power_for_restrictions,
    seconds_between,
)
from .restrictions import (
    CompiledTariff,
    PeriodContext,
    active_element_for,
    compile_tariff,
    session_selection,
    zone_for,
)

_UTC = timezone.utc
#: date.max's ordinal - 2 (time_of_day_boundaries: a span of UTC dates + 2 days)
_LAST_ORDINAL = date.max.toordinal() - 2
_ONE_DAY = timedelta(days=1)
_MICRO = Decimal("0.000001")
_INTERPOLATION_QUANTUM = Decimal("1e-9")


# ------------------------------------------------------------------------------------
# Boundaries
# ------------------------------------------------------------------------------------


def _local_to_utc(naive: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants where local wall time reaches ``naive``: one normally, two in a
    repeated hour (DST end), and the transition instant when ``naive`` does not exist
    (DST start: the clock jumps past it, so the boundary is the jump itself)."""
    first = naive.replace(tzinfo=zone, fold=0).astimezone(_UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    if first == second:
        return [first]
    exists = first.astimezone(zone).replace(tzinfo=None) == naive
    if exists:  # ambiguous (repeated) local time: both instants
        return sorted({first, second})
    # Nonexistent local time: find the transition between the two candidates.
    lo, hi = min(first, second), max(first, second)
    offset_lo = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == offset_lo:
            lo = mid
        else:
            hi = mid
    return [hi]


#: (sorted seconds of the day, zone, local date) -> the UTC instants where that date's local
#: wall time reaches each of the seconds (``_local_to_utc``, in order): a pure function of
#: the key, remembered because every session of a tariff asks for the same few days. The
#: zone object is part of the key (held by the dict, so its identity is never reused).
_DAY_INSTANTS: dict[tuple, tuple[datetime, ...]] = {}
_DAY_INSTANTS_LIMIT = 8192
#: (day boundaries, zone, first local date, last local date) -> the sorted distinct instants
#: of ``_day_instants`` over those dates: what time_of_day_boundaries filters by the session.
_SPAN_INSTANTS: dict[tuple, tuple[datetime, ...]] = {}


def _day_instants(seconds: tuple[int, ...], zone: ZoneInfo, day) -> tuple[datetime, ...]:
    key = (seconds, zone, day)
    found = _DAY_INSTANTS.get(key)
    if found is None:
        instants: list[datetime] = []
        for s in seconds:
            instants.extend(_local_to_utc(datetime(day.year, day.month, day.day, s // 3600, (s % 3600) // 60), zone))
        found = tuple(instants)
        if len(_DAY_INSTANTS) >= _DAY_INSTANTS_LIMIT:
            _DAY_INSTANTS.clear()
        _DAY_INSTANTS[key] = found
    return found


def time_of_day_boundaries(
    compiled: CompiledTariff, zone: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """Instants strictly inside (start, end) where a time-of-day, date or weekday
    restriction of the tariff can change (rule 2: local time, DST-aware)."""
    if not compiled.day_boundaries or end <= start:
        return []
    if start.tzinfo is _UTC and end.tzinfo is _UTC and 3 <= start.toordinal() <= end.toordinal() < _LAST_ORDINAL:
        # The local days from the UTC date of start - 2 to that of end + 2 (ordinals in the
        # key): they hold the local days from start's - 1 to end's + 1 (a UTC offset is
        # less than a day), and the boundaries of the other days lie outside (start, end).
        # The same instants inside the session, without converting start and end to the zone.
        first_ordinal, last_ordinal = start.toordinal() - 2, end.toordinal() + 2
        key = (compiled.day_boundaries, zone, first_ordinal, last_ordinal)
        first_day = last_day = None
    else:
        first_day = start.astimezone(zone).date() - _ONE_DAY
        last_day = end.astimezone(zone).date() + _ONE_DAY
        key = (compiled.day_boundaries, zone, first_day, last_day)
    instants = _SPAN_INSTANTS.get(key)
    if instants is None:
        if first_day is None:
            first_day, last_day = date.fromordinal(first_ordinal), date.fromordinal(last_ordinal)
        # every boundary instant of those local days, without repeats, in order
        seconds = tuple(sorted(compiled.day_boundaries))
        found: set[datetime] = set()
        day = first_day
        while day <= last_day:
            found.update(_day_instants(seconds, zone, day))
            day += _ONE_DAY
        instants = tuple(sorted(found))
        if len(_SPAN_INSTANTS) >= _DAY_INSTANTS_LIMIT:
            _SPAN_INSTANTS.clear()
        _SPAN_INSTANTS[key] = instants
    # the instants strictly inside (start, end): a slice of the sorted instants
    low = bisect_right(instants, start)
    return list(instants[low:bisect_left(instants, end, low)])


def duration_boundaries(compiled: CompiledTariff, start: datetime, end: datetime) -> list[datetime]:
    """Instants strictly inside (start, end) where min/max_duration is reached (rule 2)."""
    out = []
    for d in compiled.duration_thresholds:
        instant = start + timedelta(seconds=d)
        if start < instant < end:
            out.append(instant)
    return out


# ------------------------------------------------------------------------------------
# Energy as a function of time
# ------------------------------------------------------------------------------------


class _EnergyCurve:
    """Session-relative energy, linear between known readings, flat after the last."""

    def __init__(self, times: list[datetime], values: list[Decimal]):
        self.times = times
        self.values = values
        self.fixed: dict[datetime, Decimal] = {}

    def at(self, t: datetime) -> Decimal:
        fixed = self.fixed.get(t)
        if fixed is not None:
            return fixed
        i = bisect_right(self.times, t) - 1
        if i < 0:
            return self.values[0]
        if self.times[i] == t or i + 1 >= len(self.times):
            return self.values[i]
        t0, t1 = self.times[i], self.times[i + 1]
        e0, e1 = self.values[i], self.values[i + 1]
        # Interpolated energy is kept to a micro-Wh (1e-9 kWh), so that period energies are
        # short exact decimals that add up to the readings in any Decimal context.
        value = e0 + (e1 - e0) * seconds_between(t0, t) / seconds_between(t0, t1)
        return value.quantize(_INTERPOLATION_QUANTUM, ROUND_HALF_UP)  # (positional: faster)

    def crossing(self, kwh: Decimal) -> datetime | None:
        """The first instant where the energy reaches ``kwh`` (exactly ``kwh`` there)."""
        for i in range(len(self.times) - 1):
            e0, e1 = self.values[i], self.values[i + 1]
            if e0 < kwh <= e1:
                t0, t1 = self.times[i], self.times[i + 1]
                fraction = (kwh - e0) / (e1 - e0)
                micros = int((seconds_between(t0, t1) * fraction / _MICRO).to_integral_value())
                instant = t0 + timedelta(microseconds=micros)
                if instant in self.times:
                    return instant
                self.fixed[instant] = kwh
                return instant
        return None


def _energy_curve(readings: Sequence[tuple], start: datetime, end: datetime) -> _EnergyCurve:
    """``readings``: the readings' fields (:func:`_reading_fields`), in time order."""
    times: list[datetime] = [start]
    values: list[Decimal] = [ZERO]
    for r in readings:
        energy = r[1]
        if energy is None:
            continue  # MeterReading: "pricing then keeps the last known value"
        t = r[0]  # min(max(timestamp, start), end), the same object as those give
        if start > t:
            t = start
        if end < t:
            t = end
        if t == start:
            continue  # energy is session-relative: 0 at the session start by definition
        if t == times[-1]:
            times[-1] = t
            values[-1] = energy
        else:
            times.append(t)
            values.append(energy)
    return _EnergyCurve(times, values)


# ------------------------------------------------------------------------------------
# Readings -> periods
# ------------------------------------------------------------------------------------


def charging_periods_from_readings(
    readings: Iterable[MeterReading],
    tariff: Tariff,
    *,
    time_zone: str,
    session_start: datetime,
    session_end: datetime,
) -> list[ChargingPeriod]:
    """OCPI charging periods of one of our sessions, split at every price boundary.

    ``readings`` are ``schemas.readings.MeterReading``: session-relative energy (None =
    keep the last known value), instantaneous power / current, and the charging flag. A
    reading's state holds until the next reading; before the first reading, the first
    reading's state applies. Charging pieces carry TIME, parking pieces PARKING_TIME
    (hours), both ENERGY (kWh); MIN/MAX_POWER and MIN/MAX_CURRENT when known. The result
    always has at least one period (a zero-length session gets one empty period).
    """
    return _period_rows(readings, tariff, time_zone, session_start, session_end, emit=True)


def period_rows_from_readings(
    readings: Iterable[MeterReading],
    tariff: Tariff,
    *,
    time_zone: str,
    session_start: datetime,
    session_end: datetime,
) -> list[tuple]:
    """:func:`charging_periods_from_readings` as plain period rows (``engine.PeriodRow``:
    start, ENERGY, TIME, PARKING_TIME, RESERVATION_TIME, MAX_POWER, MIN_POWER,
    MAX_CURRENT, MIN_CURRENT volumes, None where the period has no such dimension), the
    values the ChargingPeriods are made of (:func:`_emit`), without making them: what
    ``engine.price_rows`` prices and a CDR's JSON is written from (issue 4: the periods'
    validation was a fifth of the periods' cost)."""
    return _period_rows(readings, tariff, time_zone, session_start, session_end, emit=False)


def _period_rows(readings: Iterable[MeterReading], tariff: Tariff, time_zone: str, session_start: datetime,
                 session_end: datetime, emit: bool) -> list:
    """The period rows of :func:`period_rows_from_readings`, or (``emit``) the
    ChargingPeriods made of them (:func:`_emit`), in the engine's Decimal context."""
    if session_end < session_start:
        raise PricingError("session ends before it starts")
    compiled = compile_tariff(tariff)
    zone = zone_for(time_zone)
    ordered = sorted(_reading_fields(readings), key=_TIMESTAMP)
    caller_context = getcontext()
    # The engine's context (PRECISION digits, else the default one), like price_periods:
    # what ``with localcontext() as c: c.prec = PRECISION`` gives a caller on the default
    # context, without copying a context per session; the caller's is put back.
    setcontext(_ENGINE_CONTEXT)
    try:
        rows = _periods(ordered, compiled, zone, session_start, session_end)
        if not emit:
            return rows
        tariff_id = compiled.tariff.id
        return [_emit(row, tariff_id) for row in rows]
    finally:
        setcontext(caller_context)


_TIMESTAMP = itemgetter(0)


def _reading_fields(readings: Iterable[MeterReading]) -> list[tuple]:
    """(timestamp, energy_kwh, power_kw, current_a, charging) of each reading, in order:
    read once from the instance dict of a MeterReading (pydantic models have a
    ``__getattr__``, so every attribute read takes the slow generic path), by attribute
    from anything else."""
    out = []
    add = out.append
    for r in readings:
        if type(r) is MeterReading:
            fields = r.__dict__
            try:
                add((fields["timestamp"], fields["energy_kwh"], fields["power_kw"], fields["current_a"],
                     fields["charging"]))
                continue
            except KeyError:  # pragma: no cover - a field missing (model_construct): as below
                pass
        add((r.timestamp, r.energy_kwh, r.power_kw, r.current_a, r.charging))
    return out
_ENERGY_DIM = CdrDimensionType.ENERGY
_TIME_DIM = CdrDimensionType.TIME
_PARKING_DIM = CdrDimensionType.PARKING_TIME
_MIN_POWER_DIM = CdrDimensionType.MIN_POWER
_MAX_POWER_DIM = CdrDimensionType.MAX_POWER
_MIN_CURRENT_DIM = CdrDimensionType.MIN_CURRENT
_MAX_CURRENT_DIM = CdrDimensionType.MAX_CURRENT
# What ``ChargingPeriod(...)`` runs (BaseModel.__init__ hands its
# keywords to the same validator), without the keyword-argument detour.
_charging_period = ChargingPeriod.__pydantic_validator__.validate_python


#: (time cuts, uses days, date cuts, zone) -> {instant: its time digits of the selection key}
#: (see _periods), for instants with a fixed UTC offset (``datetime.timezone``): those are
#: equal dict keys exactly when they are the same instant (in any offset), and the digits
#: depend only on the instant, the zone and the cuts. (Not other tzinfos: a wall time in a
#: repeated hour equals its other instant there.) Bounded: a full table is emptied, and so
#: is the outer one.
_TIME_KEYS: dict[tuple, dict[datetime, tuple]] = {}
_TIME_KEYS_LIMIT = 16384


def _time_keys_of(time_cuts, uses_days, date_cuts, zone) -> dict[datetime, tuple]:
    key = (time_cuts, uses_days, date_cuts, zone)
    found = _TIME_KEYS.get(key)
    if found is None:
        if len(_TIME_KEYS) >= 256:
            _TIME_KEYS.clear()
        found = _TIME_KEYS[key] = {}
    return found


def _periods(readings, compiled: CompiledTariff, zone, start, end) -> list[tuple]:
    """The period rows (see :func:`period_rows_from_readings`) of ``readings``, the
    readings' fields (:func:`_reading_fields`) sorted by time. In the engine's context."""
    curve = _energy_curve(readings, start, end)
    reading_times = [r[0] for r in readings]

    inner = [t for t in reading_times if start < t < end]
    boundaries = time_of_day_boundaries(compiled, zone, start, end)
    boundaries.extend(duration_boundaries(compiled, start, end))
    for k in compiled.kwh_thresholds:
        if k > 0:
            crossing = curve.crossing(k)
            if crossing is not None and start < crossing < end:
                boundaries.append(crossing)
    if boundaries:
        instants: set[datetime] = {start, end}
        instants.update(inner)
        instants.update(boundaries)
        points = sorted(instants)
    else:
        # sorted({start, end, *inner}) without hashing: the reading times are in order,
        # strictly inside (start, end); the first of equal instants is kept, as the set does
        points = [start]
        last = start
        for t in inner:
            if t != last:
                points.append(t)
                last = t
        if end != last:
            points.append(end)

    first = readings[0] if readings else None
    if len(points) == 1:  # zero-length session: the state at its start
        i = bisect_right(reading_times, start) - 1
        state = readings[i] if i >= 0 else first
        return [_row(start, start, ZERO, state[4] if state else True, [], [])]

    # One piece per pair of neighbouring points: (start, end, energy, charging, power for
    # restrictions, current, signature). The state of a piece is the reading in force at
    # its start (the first reading's before it). Its signature is what the tariff prices
    # it by: charging or parking and the active element (rule 1) of ENERGY, of TIME or
    # PARKING_TIME, and of FLAT, from ``session_selection`` (the same answer as
    # ``active_element_for`` per dimension, remembered per tariff bucket). The bucket key
    # is ``restrictions.selection_key`` written out here (the same tuple; a test checks it
    # for every piece), so a remembered selection is found without building a
    # PeriodContext; on a miss session_selection computes and remembers it. Signatures are
    # remembered per session by (key, charging).
    needs_local = compiled.needs_local_time
    time_cuts, uses_days, date_cuts = compiled.time_cuts, compiled.uses_days, compiled.date_cuts
    kwh_cuts, duration_cuts = compiled.kwh_thresholds, compiled.duration_thresholds
    # The duration digit, bisect_right(duration_cuts, seconds_between(start, a)), read from
    # the instants where each duration is reached, start + timedelta(seconds=d), without
    # building a Decimal per piece: the same count when every d is an int (timedelta holds
    # it exactly) and start has a fixed offset (then a - start and a compared with
    # start + td agree: both naive when a has the same tzinfo, else both in UTC).
    duration_instants = None
    if duration_cuts and type(start.tzinfo) is timezone and all(type(d) is int for d in duration_cuts):
        try:
            duration_instants = [start + timedelta(seconds=d) for d in duration_cuts]
        except OverflowError:
            duration_instants = None
    power_cuts, current_cuts = compiled.power_thresholds, compiled.current_thresholds
    # MIN/MAX_POWER go into the periods when the charger reported power or the tariff
    # has power restrictions (then derived power too, so that re-pricing the periods
    # finds the same elements, rule 5). Without either, a piece's power is never read.
    with_power = bool(power_cuts) or any(r[2] is not None for r in readings)
    # The time digits of an instant (a pure function of the instant, the zone and the
    # tariff's cuts), remembered across sessions: chargers sample at the same clock times.
    time_keys = _time_keys_of(time_cuts, uses_days, date_cuts, zone) if needs_local else None
    selections = compiled.selections
    signatures: dict[tuple, tuple] = {}
    energy_at = curve.at
    periods: list[tuple] = []
    group_start = group_signature = group_charging = None
    group_energy = ZERO
    group_powers: list = []
    group_currents: list = []
    energy_before = energy_at(points[0])
    a = points[0]
    for b in islice(points, 1, None):
        energy_after = energy_at(b)
        energy = energy_after - energy_before
        i = bisect_right(reading_times, a) - 1
        state = readings[i] if i >= 0 else first
        if state is None:
            charging = True
            reported_power = current = None
        else:
            charging = state[4]
            reported_power = state[2]
            current = state[3]  # current_for_restrictions(current_a, None)
        # power_for_restrictions(reported power, None, energy, hours if charging else
        # None, None if charging else hours), with the hours only computed when needed
        if reported_power is not None:
            power = reported_power
        elif not with_power:
            power = None  # not read: no power cuts, not written
        else:
            hours = seconds_between(a, b) / SECONDS_PER_HOUR
            if charging:
                power = (energy or ZERO) / hours if hours else None
            else:
                power = ZERO if hours else None
        # restrictions.selection_key(compiled, PeriodContext(local, energy_before,
        # seconds_between(start, a), power, current))
        local = None
        if needs_local:
            fixed = type(a.tzinfo) is timezone  # (then equal keys are the same instant)
            time_key = time_keys.get(a) if fixed else None  # type: ignore[union-attr]
            if time_key is None:
                local = a.astimezone(zone)
                seconds = local.hour * 3600 + local.minute * 60 + local.second
                if local.microsecond:
                    seconds += local.microsecond / 1_000_000
                time_key = (
                    bisect_right(time_cuts, seconds) if time_cuts else 0,
                    local.weekday() if uses_days else 0,
                    bisect_right(date_cuts, local.date()) if date_cuts else 0,
                )
                if fixed:
                    if len(time_keys) >= _TIME_KEYS_LIMIT:  # type: ignore[arg-type]
                        time_keys.clear()  # type: ignore[union-attr]
                    time_keys[a] = time_key  # type: ignore[index]
        else:
            time_key = None
        key = (
            time_key,
            bisect_right(kwh_cuts, energy_before) if kwh_cuts else 0,
            (bisect_right(duration_instants, a) if duration_instants is not None
             else bisect_right(duration_cuts, seconds_between(start, a))) if duration_cuts else 0,
            (-1 if power is None else bisect_right(power_cuts, power)) if power_cuts else 0,
            (-1 if current is None else bisect_right(current_cuts, current)) if current_cuts else 0,
        )
        signature = signatures.get((key, charging))
        if signature is None:
            sel = selections.get(key)
            if sel is None:
                if needs_local and local is None:
                    local = a.astimezone(zone)
                sel = session_selection(compiled, PeriodContext(local, energy_before, seconds_between(start, a),
                                                                power, current))
            el_energy = sel[0]
            el_time = sel[1] if charging else sel[2]
            el_flat = sel[3]
            signature = signatures[(key, charging)] = (
                charging,
                None if el_energy is None else el_energy.index,
                None if el_time is None else el_time.index,
                None if el_flat is None else el_flat.index,
            )
        # Neighbouring pieces with the same signature are one period (a group): its
        # energy is ``sum(the pieces' energies, ZERO)`` (the same additions in the same
        # order), its powers and currents those of its pieces that have them; it is
        # written when a piece with another signature starts, the last one after the loop.
        if group_start is not None and signature != group_signature:
            periods.append(_row(group_start, a, group_energy, group_charging, group_powers, group_currents))
            group_start = None
        if group_start is None:
            group_start, group_signature, group_charging = a, signature, charging
            group_energy = ZERO + energy
            group_powers = [power] if with_power and power is not None else []
            group_currents = [current] if current is not None else []
        else:
            group_energy += energy
            if with_power and power is not None:
                group_powers.append(power)
            if current is not None:
                group_currents.append(current)
        energy_before = energy_after
        a = b
    periods.append(_row(group_start, a, group_energy, group_charging, group_powers, group_currents))
    return periods


def _row(start, end, energy, charging, powers, currents) -> tuple:
    """The period row of a period from ``start`` to ``end``: ENERGY ``energy``, TIME (or
    PARKING_TIME when not ``charging``) its hours, MIN/MAX_POWER and MIN/MAX_CURRENT of
    ``powers`` / ``currents`` when there are any (``min`` / ``max``: the first of equal
    values, so its representation). The start as the ChargingPeriod holds it: in UTC
    (OcpiDateTime's ``_to_utc``; the same instant, but a difference with another datetime of
    its zone is then taken in real time, not wall time)."""
    hours = seconds_between(start, end) / SECONDS_PER_HOUR
    start = _to_utc(start)
    if powers:
        max_power, min_power = max(powers), min(powers)
    else:
        max_power = min_power = None
    if currents:
        max_current, min_current = max(currents), min(currents)
    else:
        max_current = min_current = None
    if charging:
        return (start, energy, hours, None, None, max_power, min_power, max_current, min_current)
    return (start, energy, None, hours, None, max_power, min_power, max_current, min_current)


def _emit(row: tuple, tariff_id: str) -> ChargingPeriod:
    """The ChargingPeriod of a period row made by :func:`_row`: ENERGY, TIME or
    PARKING_TIME, then MIN/MAX_POWER and MIN/MAX_CURRENT when present."""
    start, energy, charging, parking, _, max_power, min_power, max_current, min_current = row
    # The dimensions given as dicts to the period's validator, which validates each as a
    # CdrDimension (what CdrDimension(type=..., volume=...) runs) in one call.
    dims = [{"type": _ENERGY_DIM, "volume": energy},
            {"type": _TIME_DIM, "volume": charging} if parking is None else {"type": _PARKING_DIM, "volume": parking}]
    if min_power is not None:
        dims.append({"type": _MIN_POWER_DIM, "volume": min_power})
        dims.append({"type": _MAX_POWER_DIM, "volume": max_power})
    if min_current is not None:
        dims.append({"type": _MIN_CURRENT_DIM, "volume": min_current})
        dims.append({"type": _MAX_CURRENT_DIM, "volume": max_current})
    return _charging_period({"start_date_time": start, "dimensions": dims, "tariff_id": tariff_id})


# ------------------------------------------------------------------------------------
# Re-pricing: periods that span a boundary (rule 3)
# ------------------------------------------------------------------------------------


def boundary_findings(
    periods: Sequence[ChargingPeriod],
    compiled: CompiledTariff,
    zone: ZoneInfo,
    session_start: datetime,
    session_end: datetime,
) -> list[Finding]:
    """Rule 3: a given period is priced by the restrictions at its start; when a boundary
    inside it would change the active element of a dimension it has, say so (the period
    is not re-split)."""
    findings: list[Finding] = []
    day_bounds = time_of_day_boundaries(compiled, zone, session_start, session_end)
    needs_local = compiled.needs_local_time
    kwh_so_far = ZERO
    for i, p in enumerate(periods):
        a = p.start_date_time
        b = periods[i + 1].start_date_time if i + 1 < len(periods) else session_end
        energy = p.volume(CdrDimensionType.ENERGY) or ZERO
        charging = p.volume(CdrDimensionType.TIME)
        parking = p.volume(CdrDimensionType.PARKING_TIME)
        power = power_for_restrictions(
            p.volume(CdrDimensionType.MAX_POWER), p.volume(CdrDimensionType.MIN_POWER), energy, charging, parking
        )
        current = current_for_restrictions(p.volume(CdrDimensionType.MAX_CURRENT), p.volume(CdrDimensionType.MIN_CURRENT))
        dims = [d for d, q in ((TariffDimensionType.ENERGY, energy), (TariffDimensionType.TIME, charging),
                               (TariffDimensionType.PARKING_TIME, parking)) if q]
        if not dims or b <= a:
            kwh_so_far += energy
            continue
        span = seconds_between(a, b)

        def ctx_at(t: datetime, kwh: Decimal | None = None) -> PeriodContext:
            if kwh is None:
                kwh = kwh_so_far + energy * seconds_between(a, t) / span
            return PeriodContext(t.astimezone(zone) if needs_local else None, kwh,
                                 seconds_between(session_start, t), power, current)

        def active(ctx: PeriodContext) -> tuple:
            return tuple(
                None if (el := active_element_for(d, compiled, ctx)) is None else el.index for d in dims
            )

        at_start = active(ctx_at(a, kwh_so_far))
        candidates: list[tuple[datetime, Decimal | None, str]] = []
        lo = bisect_right(day_bounds, a)
        for t in day_bounds[lo:]:
            if t >= b:
                break
            candidates.append((t, None, "local time"))
        for d in compiled.duration_thresholds:
            t = session_start + timedelta(seconds=d)
            if a < t < b:
                candidates.append((t, None, f"duration {d} s"))
        for k in compiled.kwh_thresholds:
            if kwh_so_far < k < kwh_so_far + energy:
                t = a + timedelta(seconds=float(span * (k - kwh_so_far) / energy))
                candidates.append((t, k, f"{k} kWh"))
        for t, k, why in sorted(candidates, key=lambda c: c[0]):
            if active(ctx_at(t, k)) != at_start:
                findings.append(
                    Finding(
                        "period_spans_boundary",
                        f"the price changes inside the period ({why} at {t.astimezone(zone).isoformat()}); "
                        "priced by the restrictions at its start (rule 3)",
                        i,
                    )
                )
                break
        kwh_so_far += energy
    return findings
