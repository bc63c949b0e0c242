"""Fold a session's events into what pricing and the CDR need (:class:`CompletedSession`).

Pure and deterministic: the same state always gives the same result, byte for byte.

Energy (docs/ocpp-sessions.md, rows on resets, units, baselines, lifetime registers)
-----------------------------------------------------------------------------------
The energy register values of the session (1.6 meterStart, meter values, meterStop;
2.0.1 Transaction.Begin / periodic / Transaction.End samples), in kWh, are put in time
order (at equal times: start, Transaction.Begin, samples, Transaction.End, stop). Then:

0. **kWh labelled as Wh** (or the reverse): when all periodic values fall outside the
   range of the start/end registers but inside it once scaled by 1000 (1/1000), they are
   rescaled; flag ``unit_mislabelled`` (see :func:`_fix_mislabelled_units`).

1. **Lifetime register in Start/Stop, session-relative MeterValues** (1.6): when
   meterStart > 0, every meter value (other than echoes of meterStart/meterStop) is below
   meterStart, and meterStop (if any) is not below meterStart, the meter values are
   offsets from meterStart. They are shifted by meterStart; flag
   ``lifetime_register_in_start_stop``.
2. **Walk** the register values, keeping the last accepted value ``prev``. A step of
   ``delta = value - prev`` over ``dt`` is *plausible* when
   ``0 <= delta <= max_power_kw * dt + jump_slack_kwh``; a plausible step adds ``delta``.
   Otherwise:

   * if the *next* value continues plausibly from ``prev``, this value is an outlier:
     ignored (flag ``outlier_ignored``), e.g. one sample in kWh labelled as Wh;
   * a drop to a value below half of ``prev`` that could have accrued since ``prev`` is a
     **register reset** (reboot, meterStop below meterStart): the segment restarts at 0,
     so ``value`` is added (flag ``register_reset``). Energy is never negative;
   * any other drop is a discontinuity: nothing added (flag ``register_drop``);
   * a rise faster than the connector's power is **implausible**: nothing added, the
     register continues from the new value (flag ``implausible_baseline`` when it is the
     first step, e.g. a Transaction.Begin of 0 after an offline reboot: "prefer the
     register continuity"; else ``implausible_jump``).

3. Readings without an energy value (SoC-only or clock-aligned batches, state changes)
   keep the last known session energy; they never reset it to zero.

Charging vs parking: 2.0.1 ``chargingState``. Charging and SuspendedEVSE count as charging
time: OCPI 2.2.1 (bugfixes text, mod_cdrs CdrDimensionType PARKING_TIME and its NOTE)
defines parking as time "during which the vehicle is not requesting power", and under
SuspendedEVSE the EV requests power that the EVSE withholds, so the driver must not pay
parking fees for it. EVConnected, SuspendedEV and Idle are parking. Before any state is known, and for 1.6, from the
energy flow: a reading is charging when the session energy rises until the next reading
or the reported import power is above zero. ``MeterReading.charging`` describes the
interval from that reading to the next one; the last reading (session end) is not
charging unless the charger says so.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal, Inexact, Rounded, getcontext
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.ocpp_base import construct
from schemas.readings import _FIELDS_SET as _READING_FIELDS_SET
from schemas.readings import MeterReading, reading_of
from sessions.config import AssemblerConfig
from sessions.events import SessionState, TransactionEnded, TransactionStarted
from sessions.identity import cdr_id_for, credit_cdr_id_for, ocpi_session_id_for

ZERO = Decimal(0)
REMARK_MAX = 255
#: 2.0.1 chargingState values billed as TIME (the vehicle requests power); the others
#: (EVConnected, SuspendedEV, Idle) are PARKING_TIME. See the module docstring.
TIME_STATES = frozenset({"Charging", "SuspendedEVSE"})


class SessionFlag(StrEnum):
    """What session assembly noticed; the matching remark says the details."""

    REGISTER_RESET = "register_reset"
    REGISTER_DROP = "register_drop"
    OUTLIER_IGNORED = "outlier_ignored"
    IMPLAUSIBLE_BASELINE = "implausible_baseline"
    IMPLAUSIBLE_JUMP = "implausible_jump"
    LIFETIME_REGISTER = "lifetime_register_in_start_stop"
    UNIT_MISLABELLED = "unit_mislabelled"
    PHASES_SUMMED = "phases_summed"
    SEQ_NO_GAP = "seq_no_gap"
    MISSING_START = "missing_start"
    CLOSED_IDLE = "closed_idle"
    STOP_MATCHED = "stop_matched_to_open_transaction"
    METER_VALUES_MATCHED = "meter_values_matched_by_connector"
    OFFLINE_EVENTS = "offline_events"
    MULTIPLE_STOPS = "multiple_stops"
    READINGS_OUTSIDE_SESSION = "readings_outside_session"
    NO_ENERGY_READING = "no_energy_reading"
    CORRECTED = "corrected"
    ID_TAG_NOT_ACCEPTED = "id_tag_not_accepted"


#: Not part of the content hash: the version and its ids, and the notes (flags, remarks),
#: so a late event that only changes a remark does not trigger a credit + re-issue.
_NOT_HASHED = frozenset({"version", "cdr_id", "replaces_cdr_id", "credit_cdr_id", "flags", "remarks", "issued_at"})
#: The same as the set pydantic's serializer takes (built once; never changed).
_NOT_HASHED_SET = set(_NOT_HASHED)


class CompletedSession(BaseModel):
    """A session ready for pricing and its CDR (one version of it).

    ``readings`` are in time order, the first at ``start`` with energy 0, the last at
    ``end`` with ``total_energy_kwh``. ``version`` 0 is the first issue; a correction
    (late event for an issued session) gives ``version >= 1``: the pipeline then issues
    the credit CDR ``credit_cdr_id`` for ``replaces_cdr_id`` and the new CDR ``cdr_id``.
    """

    model_config = ConfigDict(frozen=True)

    session_id: str
    charge_point_id: str
    transaction_id: str
    ocpp_version: str
    #: OCPI Session id for the CDR's ``session_id`` (deterministic, <= 36 chars).
    ocpi_session_id: str
    #: 1.6 connectorId; 2.0.1 evse.connectorId.
    connector_id: int | None
    #: 2.0.1 evse.id; 1.6: the connectorId (1.6 has one connector per EVSE).
    evse_id: int | None
    #: 1.6 idTag, 2.0.1 idToken.idToken.
    id_tag: str | None
    #: The central system's answer on the id tag (``Accepted``, ``Blocked``, ``Invalid``,
    #: ...), when known. Not ``Accepted``: flag ``id_tag_not_accepted``; billing decides.
    id_tag_status: str | None = None
    start: datetime
    end: datetime
    readings: tuple[MeterReading, ...]
    total_energy_kwh: Decimal
    #: No stop received: closed by the idle timeout and billed on the last reading.
    incomplete: bool
    stop_reason: str | None
    flags: tuple[str, ...]
    remarks: tuple[str, ...]
    #: When the central system learned what this version bills: the latest ``received_at``
    #: of the session's messages, or the idle-close time of an incomplete session. It is
    #: the CDR's ``last_updated``: taken from the event log (so a replay gives the same CDR)
    #: yet never earlier than the CDR could have been issued, so an eMSP that pulls CDRs
    #: with ``date_from`` = its last pull (OCPI 2.2.1 mod_cdrs, GET with date_from on
    #: last_updated) does not miss a CDR of an offline charger's late events. The charger's
    #: own ``end`` can lie days before that.
    issued_at: datetime
    version: int = 0
    cdr_id: str
    replaces_cdr_id: str | None = None
    credit_cdr_id: str | None = None

    def content_hash(self) -> str:
        """SHA-256 of everything billing depends on: times, ids, readings, energy,
        incomplete, stop reason (not the version, its ids, flags or remarks)."""
        body = self.__pydantic_serializer__.to_json(self, exclude=_NOT_HASHED_SET)
        return hashlib.sha256(body).hexdigest()

    @property
    def remark(self) -> str | None:
        """The remarks joined for the CDR's ``remark`` (OCPI string(255))."""
        return remark_text(self.remarks)

    def as_version(self, version: int) -> "CompletedSession":
        """This content issued as ``version`` (ids per :mod:`sessions.identity`)."""
        fields = self.__dict__
        charge_point_id, transaction_id = fields["charge_point_id"], fields["transaction_id"]
        if version == 0:
            return self._copy_with(
                {"version": 0, "cdr_id": cdr_id_for(charge_point_id, transaction_id),
                 "replaces_cdr_id": None, "credit_cdr_id": None}
            )
        flags = tuple(sorted(set(fields["flags"]) | {SessionFlag.CORRECTED.value}))
        remarks = fields["remarks"] + (f"re-issued as version {version} after late events",)
        return self._copy_with(
            {
                "version": version,
                "cdr_id": cdr_id_for(charge_point_id, transaction_id, version),
                "replaces_cdr_id": cdr_id_for(charge_point_id, transaction_id, version - 1),
                "credit_cdr_id": credit_cdr_id_for(charge_point_id, transaction_id, version - 1),
                "flags": flags,
                "remarks": remarks,
            }
        )

    def _copy_with(self, update: dict) -> "CompletedSession":
        """``self.model_copy(update=update)``: what pydantic's ``__copy__`` and the update
        do for this class (no extra, no private attributes: a copy of the instance dict
        updated, a copy of the fields set with the updated names added), without its
        generic detour (issue 4: ~40k instructions per session); subclasses and instances
        holding extra or private values take model_copy itself."""
        if (type(self) is not CompletedSession or self.__pydantic_extra__ is not None
                or self.__pydantic_private__ is not None):
            return self.model_copy(update=update)
        values = self.__dict__.copy()
        values.update(update)
        fields_set = set(self.__pydantic_fields_set__)
        fields_set.update(update)
        return construct(CompletedSession, values, fields_set)


def remark_text(remarks: tuple[str, ...]) -> str | None:
    """:attr:`CompletedSession.remark` of these remarks."""
    if not remarks:
        return None
    text = "; ".join(remarks)
    return text if len(text) <= REMARK_MAX else text[: REMARK_MAX - 3] + "..."


# --- the fold -------------------------------------------------------------------------

_RANK_START, _RANK_BEGIN, _RANK_SAMPLE, _RANK_END, _RANK_STOP = range(5)
_RANK_OF_CONTEXT = {"Transaction.Begin": _RANK_BEGIN, "Transaction.End": _RANK_END}

#: One time-stamped value of the session (a sample, start, stop, state change, ...) is a
#: list ``[timestamp, rank, order, register, power_kw, current_a, charging_state,
#: is_sample, energy]`` (issue 4: ~15 per session, built at every fold; a list costs a
#: fraction of an object with attributes). Lists compare item by item, and ``order`` is
#: unique, so ``points.sort()`` orders them by time, then rank at equal times, then the
#: order they were made in, never comparing the values behind.
_TS, _RANK, _ORDER, _REG, _POWER, _CURRENT, _STATE, _IS_SAMPLE, _ENERGY = range(9)

class _Notes:
    __slots__ = ("flags", "remarks")

    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.remarks: list[str] = []

    def add(self, flag: str, remark: str | None = None) -> None:
        """Note ``flag`` (a :class:`SessionFlag` value) and ``remark`` (once, in order)."""
        self.flags.add(flag)
        if remark and remark not in self.remarks:
            self.remarks.append(remark)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _kwh(value: Decimal) -> str:
    return f"{value.normalize():f}"


_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)


def _hours(dt: timedelta) -> Decimal:
    return Decimal(int(dt.total_seconds() * 1_000_000)) / _MICROSECONDS_PER_HOUR


#: ``CompletedSession.model_fields_set`` of what :func:`summarize` returns: every field it
#: passes (all but the version and its two other ids, left at their defaults). Shared by
#: the instances (never changed: the class is frozen and ``model_copy`` copies the set).
_SUMMARY_FIELDS_SET = set(CompletedSession.model_fields) - {"version", "replaces_cdr_id", "credit_cdr_id"}


def summarize(state: SessionState, config: AssemblerConfig) -> CompletedSession:
    """The session as it stands (version 0 ids); see the module docstring for the rules.

    Speed (issue 4, round 3): points are lists, the readings and the result are built
    from values that already have their field types without validating them again;
    tests/unit/test_fold_reference.py compares the result with the code as it was
    (tests/unit/fold_reference.py) over thousands of random sessions."""
    notes = _Notes()
    points: list[list] = []
    starts: list[TransactionStarted] = []
    ends: list[TransactionEnded] = []
    connector_id = evse_id = None
    id_tag = None
    id_tag_status: str | None = None
    add = points.append
    rank_of = _RANK_OF_CONTEXT.get
    version_16 = state.ocpp_version == "1.6"
    phases_noted = False

    for event in state.events():
        kind = event.type  # the discriminator: one class per value
        if kind == "MeterValuesRecorded":
            fields = event.__dict__
            if fields["matched_by_connector"]:
                notes.add("meter_values_matched_by_connector",
                          "meter values without transactionId attached by connector")
            for sample in fields["samples"]:
                fields = sample.__dict__
                if fields["phases_summed"] and not phases_noted:
                    notes.add("phases_summed", "per-phase energy values summed (no total sent)")
                    phases_noted = True
                add([fields["timestamp"], rank_of(fields["context"], _RANK_SAMPLE), len(points),
                     fields["energy_kwh"], fields["power_kw"], fields["current_a"], None, True, ZERO])
            continue
        if kind == "ChargingStateChanged":
            fields = event.__dict__
            add([fields["timestamp"], _RANK_SAMPLE, len(points), None, None, None, fields["charging_state"], False,
                 ZERO])
            continue
        if kind == "TransactionEnded":
            ends.append(event)
            id_tag = id_tag or event.id_tag
            add([event.timestamp, _RANK_STOP, len(points), event.meter_stop_kwh, None, None, None, False, ZERO])
            if event.matched_from_transaction_id is not None:
                notes.add("stop_matched_to_open_transaction",
                          f"stop with transactionId {event.matched_from_transaction_id} matched "
                          "to the only open transaction")
            continue
        if kind == "TransactionStarted":
            starts.append(event)
            add([event.timestamp, _RANK_START, len(points), event.meter_start_kwh, None, None, None, False, ZERO])
        elif kind == "TransactionDetailsReported" or kind == "TransactionUpdated":
            add([event.timestamp, _RANK_SAMPLE, len(points), None, None, None, None, False, ZERO])
        if kind == "TransactionStarted" or kind == "TransactionDetailsReported":
            if version_16:
                connector_id = connector_id if connector_id is not None else event.connector_id
                evse_id = evse_id if evse_id is not None else event.connector_id
            else:
                evse_id = evse_id if evse_id is not None else event.evse_id
                connector_id = connector_id if connector_id is not None else event.connector_id
            id_tag = id_tag or event.id_tag
            id_tag_status = id_tag_status or event.id_tag_status

    if not points:  # pragma: no cover - a state always has at least one event
        raise ValueError(f"session {state.session_id} has no events")
    points.sort()

    # Start and end of the session.
    if starts:
        start = starts[0].timestamp
    else:
        start = points[0][_TS]
        notes.add("missing_start", "start of the transaction not received")
    end_event = ends[-1] if ends else None
    if len(ends) > 1:
        notes.add("multiple_stops", f"{len(ends)} stops received, the last one counts")
    incomplete = end_event is None
    end = end_event.timestamp if end_event is not None else points[-1][_TS]
    end = max(end, start)
    closed_idle = state.closed_idle
    if incomplete and closed_idle is not None:
        notes.add(
            "closed_idle",
            f"incomplete: no stop received; closed after {config.idle_timeout} without messages "
            f"(last at {_iso(closed_idle.last_received_at)}); billed on the last reading",
        )

    _fix_mislabelled_units(points, config, notes)
    _shift_session_relative_values(points, starts, end_event, config, notes)
    _walk_register(points, config, notes)
    readings = _readings(points, start, end, notes)
    total = readings[-1].energy_kwh or ZERO

    _note_seq_no_gaps(state, notes)
    if id_tag_status is not None and id_tag_status != "Accepted":
        notes.add("id_tag_not_accepted", f"id tag not accepted by the central system ({id_tag_status})")
    if state.has_offline_messages:
        notes.add("offline_events")

    charge_point_id = state.charge_point_id
    transaction_id = state.transaction_id
    values = {
        "session_id": state.session_id,
        "charge_point_id": charge_point_id,
        "transaction_id": transaction_id,
        "ocpp_version": state.ocpp_version,
        "ocpi_session_id": ocpi_session_id_for(charge_point_id, transaction_id),
        "connector_id": connector_id,
        "evse_id": evse_id,
        "id_tag": id_tag,
        "id_tag_status": id_tag_status,
        "start": start,
        "end": end,
        "readings": readings,
        "total_energy_kwh": total,
        "incomplete": incomplete,
        "stop_reason": end_event.reason if end_event is not None else None,
        "flags": tuple(sorted(notes.flags)),
        "remarks": tuple(notes.remarks),
        "issued_at": _issued_at(state, incomplete),
        "version": 0,
        "cdr_id": cdr_id_for(charge_point_id, transaction_id),
        "replaces_cdr_id": None,
        "credit_cdr_id": None,
    }
    if _plain_summary(values):
        return construct(CompletedSession, values, _SUMMARY_FIELDS_SET)
    del values["version"], values["replaces_cdr_id"], values["credit_cdr_id"]  # pragma: no cover
    return CompletedSession(**values)  # pragma: no cover - ids of a validated state are str


assert list(CompletedSession.model_fields)[-4:] == ["version", "cdr_id", "replaces_cdr_id", "credit_cdr_id"], \
    "update summarize's values for the new field (declaration order)"


def _plain_summary(values: dict) -> bool:
    """The values are what validating them would keep as they are: the ids are exact
    ``str`` (a state built in code could hold anything pydantic accepts for them; the rest
    is typed by the events and readings the fold reads)."""
    return (type(values["session_id"]) is str and type(values["charge_point_id"]) is str
            and type(values["transaction_id"]) is str and type(values["ocpp_version"]) is str)


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


#: (max_power_kw, jump_slack_kwh, what of the Decimal context the limit's arithmetic
#: depends on) -> {interval: _plausible_limit}: a pure function of those, remembered across
#: sessions (meter values come at a few fixed intervals). Bounded: a full table is emptied.
_LIMITS: dict[tuple, dict[timedelta, Decimal]] = {}
_LIMITS_SIZE = 4096


def _limits_for(config: AssemblerConfig) -> dict[timedelta, Decimal]:
    """The remembered plausible limits for ``config`` in the current Decimal context: its
    precision, rounding, exponent limits and the traps an inexact division can raise are
    part of the key (a trapped Inexact or Rounded signal raises at every computation, so
    nothing is remembered then)."""
    context = getcontext()
    traps = context.traps
    if traps[Inexact] or traps[Rounded]:
        return {}
    fields = config.__dict__
    key = (fields["max_power_kw"], fields["jump_slack_kwh"], context.prec, context.rounding, context.Emin,
           context.Emax)
    limits = _LIMITS.get(key)
    if limits is None:
        if len(_LIMITS) >= 64:
            _LIMITS.clear()
        limits = _LIMITS[key] = {}
    elif len(limits) >= _LIMITS_SIZE:
        limits.clear()
    return limits


def _fix_mislabelled_units(points: list[list], config: AssemblerConfig, notes: _Notes) -> None:
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
    samples: list[list] = []
    not_start_stop: list[list] = []  # every point with a register but start/stop, in order
    for p in points:
        register = p[_REG]
        if register is None:
            continue
        rank = p[_RANK]
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
    lowest, highest = min(anchors), max(anchors)
    if lowest == highest:
        return  # no energy between the anchors: nothing to fit the values into
    slack = config.jump_slack_kwh
    low, high = lowest - slack, highest + slack
    raw = [p[_REG] for p in periodic]
    for v in raw:
        if not low <= v <= high:
            break
    else:
        return  # every periodic value fits as labelled
    for exponent, label in ((3, "kWh labelled as Wh"), (-3, "Wh labelled as kWh")):
        if all(low <= v <= high for v in [v.scaleb(exponent) for v in raw]):
            for p in periodic:
                p[_REG] = p[_REG].scaleb(exponent)
            notes.add("unit_mislabelled", f"meter values in {label}: rescaled to fit the start and stop registers")
            return


def _shift_session_relative_values(
    points: list[list],
    starts: list[TransactionStarted],
    end_event: TransactionEnded | None,
    config: AssemblerConfig,
    notes: _Notes,
) -> None:
    """Rule 1 of the module docstring (1.6 lifetime Start/Stop, relative MeterValues)."""
    if not starts:
        return
    meter_start = starts[0].meter_start_kwh
    if meter_start is None:
        return
    meter_stop = end_event.meter_stop_kwh if end_event is not None else None
    if meter_start <= 0 or (meter_stop is not None and meter_stop < meter_start):
        return
    echoes = {meter_start, meter_stop}
    relative = [p for p in points if p[_IS_SAMPLE] and p[_REG] is not None and p[_REG] not in echoes]
    if not relative:
        return
    for p in relative:
        if p[_REG] >= meter_start:
            return
    if meter_stop is not None:
        if max(p[_REG] for p in relative) > meter_stop - meter_start + config.jump_slack_kwh:
            return  # not consistent with being offsets of this session: let the walk decide
    for p in relative:
        p[_REG] = meter_start + p[_REG]
    notes.add(
        "lifetime_register_in_start_stop",
        f"meterStart/meterStop are a lifetime register ({_kwh(meter_start)} kWh at start) "
        "while meter values count from the session start; meter values shifted",
    )


def _walk_register(points: list[list], config: AssemblerConfig, notes: _Notes) -> None:
    """Rule 2 of the module docstring; sets ``energy`` (session-relative) on every point."""
    registers = [p for p in points if p[_REG] is not None]
    if not registers:
        notes.add("no_energy_reading", "no energy reading received; energy 0")
        return
    energy = ZERO
    first = registers[0]
    prev: Decimal = first[_REG]
    prev_ts: datetime = first[_TS]
    #: interval -> its plausible limit (meter values come at a few fixed intervals)
    limits = _limits_for(config)
    count = len(registers)
    for index in range(1, count):
        point = registers[index]
        value = point[_REG]
        timestamp = point[_TS]
        delta = value - prev
        if ZERO <= delta:
            dt = timestamp - prev_ts
            limit = limits.get(dt)
            if limit is None:
                limit = limits[dt] = _plausible_limit(dt, config)
            if delta <= limit:
                energy += delta
                prev, prev_ts = value, timestamp
                point[_ENERGY] = energy
                continue
        following = registers[index + 1] if index + 1 < count else None
        at = _iso(timestamp)
        if following is not None and (
            ZERO <= following[_REG] - prev <= _plausible_limit(following[_TS] - prev_ts, config)
        ):
            notes.add("outlier_ignored",
                      f"energy register {_kwh(value)} kWh at {at} out of line with its neighbours; ignored")
        elif delta < 0:
            if value >= 0 and value * 2 < prev and value <= _plausible_limit(timestamp - prev_ts, config):
                energy += value
                notes.add("register_reset",
                          f"energy register reset at {at} ({_kwh(prev)} -> {_kwh(value)} kWh); segments summed")
            else:
                notes.add("register_drop",
                          f"energy register dropped at {at} ({_kwh(prev)} -> {_kwh(value)} kWh); drop not billed")
            prev, prev_ts = value, timestamp
        else:
            if index == 1:
                notes.add("implausible_baseline",
                          f"implausible start value {_kwh(prev)} kWh (next {_kwh(value)} kWh at {at}); "
                          "energy counted from the next reading")
            else:
                notes.add("implausible_jump",
                          f"implausible energy jump at {at} ({_kwh(prev)} -> {_kwh(value)} kWh, above "
                          f"{_kwh(config.max_power_kw)} kW); jump not billed")
            prev, prev_ts = value, timestamp
        point[_ENERGY] = energy
    # Points without a register keep the last known session energy.
    last = ZERO
    for point in points:
        if point[_REG] is not None:
            last = point[_ENERGY]
        else:
            point[_ENERGY] = last


def _readings(points: list[list], start: datetime, end: datetime, notes: _Notes) -> tuple[MeterReading, ...]:
    """One reading per instant within [start, end]; first at start (0), last at end.

    Per instant (points with equal timestamps, in sort order): the energy of its last point,
    the last power and current reported at it, and the charging state as of its last point.
    """
    # rows: [timestamp, energy_kwh, power_kw, current_a, charging state]
    rows: list[list] = []
    outside = 0
    state: str | None = None
    row: list | None = None
    for timestamp, _, _, _, power, current, charging_state, _, energy in points:
        if timestamp < start or timestamp > end:
            outside += 1
            continue
        if row is None or row[0] != timestamp:
            row = [timestamp, None, None, None, None]
            rows.append(row)
        if power is not None:
            row[2] = power
        if current is not None:
            row[3] = current
        if charging_state is not None:
            state = charging_state
        row[1] = energy
        row[4] = state
    if outside:
        notes.add("readings_outside_session",
                  f"{outside} reading(s) outside the session's start and end ignored")

    # Energy before start (readings dropped) is the session energy at the first kept point.
    if not rows or rows[0][0] > start:
        rows.insert(0, [start, ZERO, None, None, None])
    elif rows[0][1] is None:
        rows[0][1] = ZERO
    if rows[-1][0] < end:
        rows.append([end, rows[-1][1], None, None, rows[-1][4]])

    readings = []
    add = readings.append
    last = len(rows) - 1
    for i, (timestamp, energy, power, current, row_state) in enumerate(rows):
        if row_state is not None:
            charging = row_state in TIME_STATES
        elif i < last:
            charging = rows[i + 1][1] > energy or (power or ZERO) > 0
        else:
            charging = False
        if timestamp.tzinfo is None or type(charging) is not bool:  # pragma: no cover - the states' times are aware
            add(reading_of(timestamp, energy, power, current, charging))
            continue
        # what reading_of(...) builds for these values, without its checks (done above)
        add(construct(MeterReading, {"timestamp": timestamp, "energy_kwh": energy, "power_kw": power,
                                     "current_a": current, "charging": charging}, _READING_FIELDS_SET))
    return tuple(readings)


def _note_seq_no_gaps(state: SessionState, notes: _Notes) -> None:
    seq_nos = state.seq_nos()  # ascending, each once
    if len(seq_nos) < 2 or seq_nos[-1] - seq_nos[0] + 1 == len(seq_nos):
        return
    present = set(seq_nos)
    missing = [n for n in range(seq_nos[0], seq_nos[-1] + 1) if n not in present]
    if missing:
        shown = ", ".join(str(n) for n in missing[:10]) + (" ..." if len(missing) > 10 else "")
        notes.add("seq_no_gap", f"seqNo gap: missing {shown}")
