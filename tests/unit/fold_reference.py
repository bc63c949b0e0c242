"""session/fold.py's fold as it was before the issue 4 round 3 speed work (commit 5acc845,
``summarize`` and its helpers verbatim, CompletedSession and SessionFlag imported from the
application): the reference that test_fold_reference.py compares the faster code with.
Not used by the application."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter

from schemas.readings import MeterReading, reading_of
from sessions.config import AssemblerConfig
from sessions.events import SessionState, TransactionEnded, TransactionStarted
from sessions.fold import CompletedSession, SessionFlag
from sessions.identity import cdr_id_for, ocpi_session_id_for

ZERO = Decimal(0)
TIME_STATES = frozenset({"Charging", "SuspendedEVSE"})

# --- the fold -------------------------------------------------------------------------

_RANK_START, _RANK_BEGIN, _RANK_SAMPLE, _RANK_END, _RANK_STOP = range(5)
_RANK_OF_CONTEXT = {"Transaction.Begin": _RANK_BEGIN, "Transaction.End": _RANK_END}


class _Point:
    """One time-stamped value of the session (a sample, start, stop, state change, ...).
    Slotted, built with every field (issue 4: ~15 per session, built at each fold)."""

    __slots__ = ("timestamp", "rank", "order", "register", "power_kw", "current_a", "charging_state",
                 "is_sample", "energy")

    def __init__(self, timestamp: datetime, rank: int, order: int, register: Decimal | None = None,
                 power_kw: Decimal | None = None, current_a: Decimal | None = None,
                 charging_state: str | None = None, is_sample: bool = False) -> None:
        self.timestamp = timestamp
        self.rank = rank
        self.order = order
        self.register = register
        self.power_kw = power_kw
        self.current_a = current_a
        self.charging_state = charging_state
        self.is_sample = is_sample
        self.energy = ZERO


#: Sort key of the points: time, then rank at equal times, then the order they were made in.
_POINT_ORDER = attrgetter("timestamp", "rank", "order")


class _Notes:
    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.remarks: list[str] = []

    def add(self, flag: SessionFlag, remark: str | None = None) -> None:
        self.flags.add(flag.value)
        if remark and remark not in self.remarks:
            self.remarks.append(remark)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _kwh(value: Decimal) -> str:
    return f"{value.normalize():f}"


_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)


def _hours(dt: timedelta) -> Decimal:
    return Decimal(int(dt.total_seconds() * 1_000_000)) / _MICROSECONDS_PER_HOUR


def summarize(state: SessionState, config: AssemblerConfig) -> CompletedSession:
    """The session as it stands (version 0 ids); see the module docstring for the rules."""
    notes = _Notes()
    events = state.events()
    points: list[_Point] = []
    starts: list[TransactionStarted] = []
    ends: list[TransactionEnded] = []
    connector_id = evse_id = None
    id_tag = None
    id_tag_status: str | None = None
    add = points.append
    version_16 = state.ocpp_version == "1.6"

    for event in events:
        kind = event.type  # the discriminator: one class per value
        if kind == "MeterValuesRecorded":
            if event.matched_by_connector:
                notes.add(SessionFlag.METER_VALUES_MATCHED,
                          "meter values without transactionId attached by connector")
            for sample in event.samples:
                context = sample.context
                rank = _RANK_OF_CONTEXT.get(context, _RANK_SAMPLE) if context else _RANK_SAMPLE
                if sample.phases_summed:
                    notes.add(SessionFlag.PHASES_SUMMED, "per-phase energy values summed (no total sent)")
                # (timestamp, rank, order, register, power_kw, current_a, charging_state, is_sample)
                add(_Point(sample.timestamp, rank, len(points), sample.energy_kwh, sample.power_kw,
                           sample.current_a, None, True))
            continue
        if kind == "TransactionStarted":
            starts.append(event)
            add(_Point(event.timestamp, _RANK_START, len(points), register=event.meter_start_kwh))
        elif kind == "TransactionDetailsReported" or kind == "TransactionUpdated":
            add(_Point(event.timestamp, _RANK_SAMPLE, len(points)))
        if kind == "TransactionStarted" or kind == "TransactionDetailsReported":
            if version_16:
                connector_id = connector_id if connector_id is not None else event.connector_id
                evse_id = evse_id if evse_id is not None else event.connector_id
            else:
                evse_id = evse_id if evse_id is not None else event.evse_id
                connector_id = connector_id if connector_id is not None else event.connector_id
            id_tag = id_tag or event.id_tag
            id_tag_status = id_tag_status or event.id_tag_status
        elif kind == "ChargingStateChanged":
            add(_Point(event.timestamp, _RANK_SAMPLE, len(points), charging_state=event.charging_state))
        elif kind == "TransactionEnded":
            ends.append(event)
            id_tag = id_tag or event.id_tag
            add(_Point(event.timestamp, _RANK_STOP, len(points), register=event.meter_stop_kwh))
            if event.matched_from_transaction_id is not None:
                notes.add(SessionFlag.STOP_MATCHED,
                          f"stop with transactionId {event.matched_from_transaction_id} matched "
                          "to the only open transaction")

    if not points:  # pragma: no cover - a state always has at least one event
        raise ValueError(f"session {state.session_id} has no events")
    points.sort(key=_POINT_ORDER)

    # Start and end of the session.
    if starts:
        start = starts[0].timestamp
    else:
        start = points[0].timestamp
        notes.add(SessionFlag.MISSING_START, "start of the transaction not received")
    end_event = ends[-1] if ends else None
    if len(ends) > 1:
        notes.add(SessionFlag.MULTIPLE_STOPS, f"{len(ends)} stops received, the last one counts")
    incomplete = end_event is None
    end = end_event.timestamp if end_event is not None else points[-1].timestamp
    end = max(end, start)
    if incomplete and state.closed_idle is not None:
        notes.add(
            SessionFlag.CLOSED_IDLE,
            f"incomplete: no stop received; closed after {config.idle_timeout} without messages "
            f"(last at {_iso(state.closed_idle.last_received_at)}); billed on the last reading",
        )

    _fix_mislabelled_units(points, config, notes)
    _shift_session_relative_values(points, starts, end_event, config, notes)
    _walk_register(points, config, notes)
    readings = _readings(points, start, end, notes)
    total = readings[-1].energy_kwh or ZERO

    _note_seq_no_gaps(state, notes)
    if id_tag_status is not None and id_tag_status != "Accepted":
        notes.add(SessionFlag.ID_TAG_NOT_ACCEPTED, f"id tag not accepted by the central system ({id_tag_status})")
    if state.has_offline_messages:
        notes.add(SessionFlag.OFFLINE_EVENTS)

    return CompletedSession(
        session_id=state.session_id,
        charge_point_id=state.charge_point_id,
        transaction_id=state.transaction_id,
        ocpp_version=state.ocpp_version,
        ocpi_session_id=ocpi_session_id_for(state.charge_point_id, state.transaction_id),
        connector_id=connector_id,
        evse_id=evse_id,
        id_tag=id_tag,
        id_tag_status=id_tag_status,
        start=start,
        end=end,
        readings=readings,
        total_energy_kwh=total,
        incomplete=incomplete,
        stop_reason=end_event.reason if end_event is not None else None,
        issued_at=_issued_at(state, incomplete),
        flags=tuple(sorted(notes.flags)),
        remarks=tuple(notes.remarks),
        cdr_id=cdr_id_for(state.charge_point_id, state.transaction_id),
    )


def _issued_at(state: SessionState, incomplete: bool) -> datetime:
    """See ``CompletedSession.issued_at``."""
    last = state.last_received_at
    assert last is not None  # a state always has at least one message
    if incomplete and state.closed_idle is not None:
        return max(last, state.closed_idle.closed_at)
    return last


def _plausible_limit(dt: timedelta, config: AssemblerConfig) -> Decimal:
    hours = max(_hours(dt), ZERO)
    return config.max_power_kw * hours + config.jump_slack_kwh


def _fix_mislabelled_units(points: list[_Point], config: AssemblerConfig, notes: _Notes) -> None:
    """Rule 0: periodic values in kWh labelled as Wh (or the reverse).

    The anchors are the registers at the transaction's start and end (1.6 meterStart /
    meterStop, whose unit the schema fixes as Wh; 2.0.1 Transaction.Begin / .End samples).
    When every periodic value lies outside the anchors' range but inside it once scaled by
    1000 (or 1/1000), the periodic values carry the wrong unit label: they are rescaled
    and flagged (``unit_mislabelled``).
    """
    # one pass: the points with a register by rank (start/stop, begin/end, samples)
    start_stop: list[Decimal] = []
    begin_end: list[Decimal] = []
    samples: list[_Point] = []
    not_start_stop: list[_Point] = []  # every point with a register but start/stop, in order
    for p in points:
        register = p.register
        if register is None:
            continue
        rank = p.rank
        if rank == _RANK_SAMPLE:
            samples.append(p)
            not_start_stop.append(p)
        elif rank == _RANK_START or rank == _RANK_STOP:
            start_stop.append(register)
        else:
            begin_end.append(register)
            not_start_stop.append(p)
    if len(start_stop) >= 2:  # 1.6 meterStart/meterStop: their unit (Wh) is fixed by the schema
        anchors = start_stop
        periodic = not_start_stop
    else:  # 2.0.1: Transaction.Begin / Transaction.End samples
        anchors = begin_end
        periodic = samples
    if len(anchors) < 2 or not periodic:
        return
    if min(anchors) == max(anchors):
        return  # no energy between the anchors: nothing to fit the values into
    low, high = min(anchors) - config.jump_slack_kwh, max(anchors) + config.jump_slack_kwh

    def inside(values: list[Decimal]) -> bool:
        return all(low <= v <= high for v in values)

    raw = [p.register for p in periodic if p.register is not None]
    if inside(raw):
        return
    for exponent, label in ((3, "kWh labelled as Wh"), (-3, "Wh labelled as kWh")):
        if inside([v.scaleb(exponent) for v in raw]):
            for p in periodic:
                assert p.register is not None
                p.register = p.register.scaleb(exponent)
            notes.add(SessionFlag.UNIT_MISLABELLED,
                      f"meter values in {label}: rescaled to fit the start and stop registers")
            return


def _shift_session_relative_values(
    points: list[_Point],
    starts: list[TransactionStarted],
    end_event: TransactionEnded | None,
    config: AssemblerConfig,
    notes: _Notes,
) -> None:
    """Rule 1 of the module docstring (1.6 lifetime Start/Stop, relative MeterValues)."""
    if not starts or starts[0].meter_start_kwh is None:
        return
    meter_start = starts[0].meter_start_kwh
    meter_stop = end_event.meter_stop_kwh if end_event is not None else None
    if meter_start <= 0 or (meter_stop is not None and meter_stop < meter_start):
        return
    echoes = {meter_start, meter_stop}
    relative = [p for p in points if p.is_sample and p.register is not None and p.register not in echoes]
    if not relative or any(p.register >= meter_start for p in relative):
        return
    if meter_stop is not None:
        if max(p.register for p in relative) > meter_stop - meter_start + config.jump_slack_kwh:
            return  # not consistent with being offsets of this session: let the walk decide
    for p in relative:
        p.register = meter_start + p.register
    notes.add(
        SessionFlag.LIFETIME_REGISTER,
        f"meterStart/meterStop are a lifetime register ({_kwh(meter_start)} kWh at start) "
        "while meter values count from the session start; meter values shifted",
    )


def _walk_register(points: list[_Point], config: AssemblerConfig, notes: _Notes) -> None:
    """Rule 2 of the module docstring; sets ``energy`` (session-relative) on every point."""
    registers = [p for p in points if p.register is not None]
    if not registers:
        notes.add(SessionFlag.NO_ENERGY_READING, "no energy reading received; energy 0")
        return
    energy = ZERO
    prev: Decimal | None = None
    prev_ts: datetime | None = None
    #: interval -> its plausible limit (meter values come at a few fixed intervals)
    limits: dict[timedelta, Decimal] = {}
    for index, point in enumerate(registers):
        value = point.register
        assert value is not None
        if prev is None or prev_ts is None:
            prev, prev_ts = value, point.timestamp
            point.energy = energy
            continue
        delta = value - prev
        if ZERO <= delta:
            dt = point.timestamp - prev_ts
            limit = limits.get(dt)
            if limit is None:
                limit = limits[dt] = _plausible_limit(dt, config)
            plausible = delta <= limit
        else:
            plausible = False
        if plausible:
            energy += delta
            prev, prev_ts = value, point.timestamp
            point.energy = energy
            continue
        following = registers[index + 1] if index + 1 < len(registers) else None
        at = _iso(point.timestamp)
        if following is not None and following.register is not None and (
            ZERO <= following.register - prev <= _plausible_limit(following.timestamp - prev_ts, config)
        ):
            notes.add(SessionFlag.OUTLIER_IGNORED,
                      f"energy register {_kwh(value)} kWh at {at} out of line with its neighbours; ignored")
        elif delta < 0:
            if value >= 0 and value * 2 < prev and value <= _plausible_limit(point.timestamp - prev_ts, config):
                energy += value
                notes.add(SessionFlag.REGISTER_RESET,
                          f"energy register reset at {at} ({_kwh(prev)} -> {_kwh(value)} kWh); segments summed")
            else:
                notes.add(SessionFlag.REGISTER_DROP,
                          f"energy register dropped at {at} ({_kwh(prev)} -> {_kwh(value)} kWh); drop not billed")
            prev, prev_ts = value, point.timestamp
        else:
            if index == 1:
                notes.add(SessionFlag.IMPLAUSIBLE_BASELINE,
                          f"implausible start value {_kwh(prev)} kWh (next {_kwh(value)} kWh at {at}); "
                          "energy counted from the next reading")
            else:
                notes.add(SessionFlag.IMPLAUSIBLE_JUMP,
                          f"implausible energy jump at {at} ({_kwh(prev)} -> {_kwh(value)} kWh, above "
                          f"{_kwh(config.max_power_kw)} kW); jump not billed")
            prev, prev_ts = value, point.timestamp
        point.energy = energy
    # Points without a register keep the last known session energy.
    last = ZERO
    for point in points:
        if point.register is not None:
            last = point.energy
        else:
            point.energy = last


def _readings(points: list[_Point], start: datetime, end: datetime, notes: _Notes) -> tuple[MeterReading, ...]:
    """One reading per instant within [start, end]; first at start (0), last at end.

    Per instant (points with equal timestamps, in sort order): the energy of its last point,
    the last power and current reported at it, and the charging state as of its last point.
    """
    # rows: [timestamp, energy_kwh, power_kw, current_a, charging state]
    rows: list[list] = []
    outside = 0
    state: str | None = None
    row: list | None = None
    for point in points:
        timestamp = point.timestamp
        if timestamp < start or timestamp > end:
            outside += 1
            continue
        if row is None or row[0] != timestamp:
            row = [timestamp, None, None, None, None]
            rows.append(row)
        if point.power_kw is not None:
            row[2] = point.power_kw
        if point.current_a is not None:
            row[3] = point.current_a
        if point.charging_state is not None:
            state = point.charging_state
        row[1] = point.energy
        row[4] = state
    if outside:
        notes.add(SessionFlag.READINGS_OUTSIDE_SESSION,
                  f"{outside} reading(s) outside the session's start and end ignored")

    # Energy before start (readings dropped) is the session energy at the first kept point.
    if not rows or rows[0][0] > start:
        rows.insert(0, [start, ZERO, None, None, None])
    elif rows[0][1] is None:
        rows[0][1] = ZERO
    if rows[-1][0] < end:
        rows.append([end, rows[-1][1], None, None, rows[-1][4]])

    readings = []
    last = len(rows) - 1
    for i, (timestamp, energy, power, current, row_state) in enumerate(rows):
        if row_state is not None:
            charging = row_state in TIME_STATES
        elif i < last:
            charging = rows[i + 1][1] > energy or (power or ZERO) > 0
        else:
            charging = False
        readings.append(reading_of(timestamp, energy, power, current, charging))
    return tuple(readings)


def _note_seq_no_gaps(state: SessionState, notes: _Notes) -> None:
    seq_nos = state.seq_nos()
    if len(seq_nos) < 2:
        return
    present = set(seq_nos)
    missing = [n for n in range(seq_nos[0], seq_nos[-1] + 1) if n not in present]
    if missing:
        shown = ", ".join(str(n) for n in missing[:10]) + (" ..." if len(missing) > 10 else "")
        notes.add(SessionFlag.SEQ_NO_GAP, f"seqNo gap: missing {shown}")
