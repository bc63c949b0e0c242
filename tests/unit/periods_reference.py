"""The readings -> charging periods code as it was before the issue 4 speed work (commit
a0d40b1, pricing/periods.py verbatim but for absolute imports): the reference that
test_periods_fastpath.py compares the faster code with. Not used by the application.

Charging periods: from meter readings, split at every price boundary (rule 3).

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

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from schemas.ocpi import CdrDimension, CdrDimensionType, ChargingPeriod, Tariff, TariffDimensionType
from schemas.readings import MeterReading

from pricing.engine import (
    PRECISION,
    SECONDS_PER_HOUR,
    ZERO,
    Finding,
    PricingError,
    current_for_restrictions,
    power_for_restrictions,
    seconds_between,
)
from pricing.restrictions import CompiledTariff, PeriodContext, active_element_for, compile_tariff, zone_for

_UTC = timezone.utc
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


def time_of_day_boundaries(
    compiled: CompiledTariff, zone: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """Instants strictly inside (start, end) where a time-of-day, date or weekday
    restriction of the tariff can change (rule 2: local time, DST-aware)."""
    if not compiled.day_boundaries or end <= start:
        return []
    first_day = start.astimezone(zone).date() - _ONE_DAY
    last_day = end.astimezone(zone).date() + _ONE_DAY
    seconds = sorted(compiled.day_boundaries)
    out: set[datetime] = set()
    day = first_day
    while day <= last_day:
        for s in seconds:
            naive = datetime(day.year, day.month, day.day, s // 3600, (s % 3600) // 60)
            for instant in _local_to_utc(naive, zone):
                if start < instant < end:
                    out.add(instant)
        day += _ONE_DAY
    return sorted(out)


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

    def __init__(self, points: list[tuple[datetime, Decimal]]):
        self.times = [t for t, _ in points]
        self.values = [e for _, e in points]
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
        return value.quantize(_INTERPOLATION_QUANTUM, rounding=ROUND_HALF_UP)

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


def _energy_curve(readings: Sequence[MeterReading], start: datetime, end: datetime) -> _EnergyCurve:
    points: list[tuple[datetime, Decimal]] = [(start, ZERO)]
    for r in readings:
        if r.energy_kwh is None:
            continue  # MeterReading: "pricing then keeps the last known value"
        t = min(max(r.timestamp, start), end)
        if t == start:
            continue  # energy is session-relative: 0 at the session start by definition
        if t == points[-1][0]:
            points[-1] = (t, r.energy_kwh)
        else:
            points.append((t, r.energy_kwh))
    return _EnergyCurve(points)


# ------------------------------------------------------------------------------------
# Readings -> periods
# ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Piece:
    start: datetime
    end: datetime
    energy: Decimal
    charging: bool
    power: Decimal | None  # effective power for restrictions
    current: Decimal | None
    signature: tuple


def _state_at(readings: Sequence[MeterReading], times: list[datetime], t: datetime) -> MeterReading | None:
    i = bisect_right(times, t) - 1
    if i < 0:
        return readings[0] if readings else None
    return readings[i]


def _signature(compiled: CompiledTariff, ctx: PeriodContext, charging: bool) -> tuple:
    def idx(dim: TariffDimensionType) -> int | None:
        el = active_element_for(dim, compiled, ctx)
        return None if el is None else el.index

    time_dim = TariffDimensionType.TIME if charging else TariffDimensionType.PARKING_TIME
    return (charging, idx(TariffDimensionType.ENERGY), idx(time_dim), idx(TariffDimensionType.FLAT))


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
    if session_end < session_start:
        raise PricingError("session ends before it starts")
    compiled = compile_tariff(tariff)
    zone = zone_for(time_zone)
    ordered = sorted(readings, key=lambda r: r.timestamp)
    with localcontext() as dec:
        dec.prec = PRECISION
        return _periods(ordered, compiled, zone, session_start, session_end)


def _periods(readings, compiled: CompiledTariff, zone, start, end) -> list[ChargingPeriod]:
    tariff = compiled.tariff
    curve = _energy_curve(readings, start, end)
    reading_times = [r.timestamp for r in readings]

    instants: set[datetime] = {start, end}
    instants.update(t for t in reading_times if start < t < end)
    instants.update(time_of_day_boundaries(compiled, zone, start, end))
    instants.update(duration_boundaries(compiled, start, end))
    for k in compiled.kwh_thresholds:
        if k > 0:
            crossing = curve.crossing(k)
            if crossing is not None and start < crossing < end:
                instants.add(crossing)
    points = sorted(instants)

    if len(points) == 1:  # zero-length session
        first = _state_at(readings, reading_times, start)
        return [_emit(start, start, ZERO, first.charging if first else True, [], [], tariff.id)]

    needs_local = compiled.needs_local_time
    pieces: list[_Piece] = []
    energy_before = curve.at(points[0])
    for a, b in zip(points, points[1:]):
        energy_after = curve.at(b)
        energy = energy_after - energy_before
        state = _state_at(readings, reading_times, a)
        charging = True if state is None else state.charging
        seconds = seconds_between(a, b)
        hours = seconds / SECONDS_PER_HOUR
        reported_power = None if state is None else state.power_kw
        power = power_for_restrictions(
            reported_power, None, energy, hours if charging else None, None if charging else hours
        )
        current = current_for_restrictions(None if state is None else state.current_a, None)
        ctx = PeriodContext(
            a.astimezone(zone) if needs_local else None,
            energy_before,
            seconds_between(start, a),
            power,
            current,
        )
        pieces.append(_Piece(a, b, energy, charging, power, current, _signature(compiled, ctx, charging)))
        energy_before = energy_after

    # MIN/MAX_POWER go into the periods when the charger reported power or the tariff
    # has power restrictions (then derived power too, so that re-pricing the periods
    # finds the same elements, rule 5).
    with_power = bool(compiled.power_thresholds) or any(r.power_kw is not None for r in readings)
    periods: list[ChargingPeriod] = []
    group: list[_Piece] = []
    for piece in pieces:
        if group and piece.signature != group[0].signature:
            periods.append(_emit_group(group, tariff.id, with_power))
            group = []
        group.append(piece)
    periods.append(_emit_group(group, tariff.id, with_power))
    return periods


def _emit_group(group: list[_Piece], tariff_id: str, with_power: bool) -> ChargingPeriod:
    energy = sum((p.energy for p in group), ZERO)
    powers = [p.power for p in group if p.power is not None] if with_power else []
    currents = [p.current for p in group if p.current is not None]
    return _emit(group[0].start, group[-1].end, energy, group[0].charging, powers, currents, tariff_id)


def _emit(start, end, energy, charging, powers, currents, tariff_id) -> ChargingPeriod:
    hours = seconds_between(start, end) / SECONDS_PER_HOUR
    dims = [
        CdrDimension(type=CdrDimensionType.ENERGY, volume=energy),
        CdrDimension(type=CdrDimensionType.TIME if charging else CdrDimensionType.PARKING_TIME, volume=hours),
    ]
    if powers:
        dims.append(CdrDimension(type=CdrDimensionType.MIN_POWER, volume=min(powers)))
        dims.append(CdrDimension(type=CdrDimensionType.MAX_POWER, volume=max(powers)))
    if currents:
        dims.append(CdrDimension(type=CdrDimensionType.MIN_CURRENT, volume=min(currents)))
        dims.append(CdrDimension(type=CdrDimensionType.MAX_CURRENT, volume=max(currents)))
    return ChargingPeriod(start_date_time=start, dimensions=dims, tariff_id=tariff_id)


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
