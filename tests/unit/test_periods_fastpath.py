"""The faster readings -> charging periods code (issue 4 speed work) gives exactly what the
code before it gave (kept verbatim as ``periods_reference``): the same periods (model
equality and the same OCPI JSON, so the same Decimal representations), the same errors.

Generated: tariffs with every restriction that creates a boundary (times of day, dates,
weekdays, kWh, duration, power, current), readings unsorted, with repeated and
out-of-session timestamps, several offsets, microseconds, missing energy / power / current,
parking; sessions across DST changes in several zones, zero-length sessions.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import periods_reference as reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing import periods as fast
from schemas.ocpi import Tariff
from schemas.readings import MeterReading

D = Decimal
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZONES = ["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"]
HHMM = ["00:00", "01:30", "02:00", "02:30", "03:00", "06:59", "07:00", "12:00", "18:45", "23:00", "23:59"]
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


@st.composite
def restrictions(draw):
    r = {}
    for key, values in (
        ("start_time", st.sampled_from(HHMM)),
        ("end_time", st.sampled_from(HHMM)),
        ("start_date", st.sampled_from(["2026-03-29", "2026-10-25", "2026-06-01"])),
        ("end_date", st.sampled_from(["2026-03-30", "2026-11-01", "2027-01-01"])),
        ("day_of_week", st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True)),
        ("min_kwh", st.decimals(min_value=0, max_value=30, places=2)),
        ("max_kwh", st.decimals(min_value=0, max_value=60, places=3)),
        ("min_power", st.sampled_from([D("3.7"), D("11"), D("22.00")])),
        ("max_power", st.sampled_from([D("7.4"), D("11"), D("50")])),
        ("min_current", st.sampled_from([D(6), D(16)])),
        ("max_current", st.sampled_from([D(16), D("31.5")])),
        ("min_duration", st.sampled_from([0, 59, 1800, 7200])),
        ("max_duration", st.sampled_from([60, 3600, 5401])),
    ):
        if draw(st.integers(0, 4)) == 0:
            r[key] = draw(values)
    return r or None


@st.composite
def tariffs(draw):
    elements = []
    for _ in range(draw(st.integers(1, 5))):
        types = draw(st.lists(st.sampled_from(["ENERGY", "TIME", "PARKING_TIME", "FLAT"]), min_size=1, max_size=3))
        el = {"price_components": [{"type": t, "price": D("0.25"), "step_size": 1} for t in types]}
        r = draw(restrictions())
        if r:
            el["restrictions"] = r
        elements.append(el)
    return Tariff.model_validate({"country_code": "NL", "party_id": "CLG", "id": draw(st.sampled_from(["T", "TARIFF-2"])),
                                  "currency": "EUR", "elements": elements, "last_updated": "2026-01-01T00:00:00Z"})


OFFSETS = [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
START_ZONES = [timezone.utc] * 4 + [timezone(timedelta(hours=2)), ZoneInfo("Europe/Amsterdam"),
                                    ZoneInfo("America/New_York")]


@st.composite
def sessions(draw):
    base = draw(st.sampled_from([datetime(2026, 3, 29, 0, 30), datetime(2026, 10, 25, 0, 10),
                                 datetime(2026, 11, 1, 4, 0), datetime(2026, 6, 5, 21, 0)]))
    start = (base + timedelta(minutes=draw(st.integers(-600, 600)),
                              microseconds=draw(st.sampled_from([0, 0, 1, 999999])))).replace(tzinfo=timezone.utc)
    # a session start in another fixed offset or in a zone (what pricing gets from us is UTC)
    start = start.astimezone(draw(st.sampled_from(START_ZONES)))
    length = draw(st.sampled_from([0, 1, 60, 3600, 7199, 7200, 20000, 50000, 200000]))
    end = start + timedelta(seconds=length)
    readings = []
    energy = D(0)
    for _ in range(draw(st.integers(0, 12))):
        at = start + timedelta(seconds=draw(st.integers(-600, length + 600)),
                               microseconds=draw(st.sampled_from([0, 0, 0, 250000])))
        energy += draw(st.sampled_from([D(0), D("0.5"), D("1.25"), D("7.125"), D("12")]))
        readings.append(MeterReading(
            timestamp=at.astimezone(draw(st.sampled_from(OFFSETS))),
            energy_kwh=draw(st.sampled_from([energy, energy, None])),
            power_kw=draw(st.sampled_from([None, D(0), D("7.4"), D("11.000"), D("22"), D("49.99")])),
            current_a=draw(st.sampled_from([None, None, D(0), D(16), D("32.0")])),
            charging=draw(st.booleans()),
        ))
    if draw(st.integers(0, 30)) == 0:
        end = start - timedelta(seconds=1)  # an error, in both
    return start, end, readings


def outcome(module, readings, tariff, zone, start, end):
    try:
        return module.charging_periods_from_readings(readings, tariff, time_zone=zone, session_start=start,
                                                     session_end=end)
    except Exception as exc:  # noqa: BLE001 - compared below
        return (type(exc), str(exc))


@SETTINGS
@given(tariffs(), sessions(), st.sampled_from(ZONES), st.booleans())
def test_same_periods_as_the_reference(tariff, session, zone, clear_caches):
    start, end, readings = session
    if clear_caches:
        fast._DAY_INSTANTS.clear()
        fast._TIME_KEYS.clear()
    expected = outcome(reference, readings, tariff, zone, start, end)
    got = outcome(fast, readings, tariff, zone, start, end)
    if isinstance(expected, tuple):
        assert got == expected
        return
    assert got == expected
    assert [p.model_dump_json() for p in got] == [p.model_dump_json() for p in expected]
    assert [p.__pydantic_fields_set__ for p in got] == [p.__pydantic_fields_set__ for p in expected]
    assert [[d.__pydantic_fields_set__ for d in p.dimensions] for p in got] == \
        [[d.__pydantic_fields_set__ for d in p.dimensions] for p in expected]
    # the day instants come from the cache the second time: still the same
    assert outcome(fast, readings, tariff, zone, start, end) == expected


@SETTINGS
@given(tariffs(), sessions(), st.sampled_from(ZONES))
def test_same_time_of_day_boundaries(tariff, session, zone):
    from pricing.restrictions import compile_tariff, zone_for

    start, end, _ = session
    compiled, z = compile_tariff(tariff), zone_for(zone)
    assert fast.time_of_day_boundaries(compiled, z, start, end) == \
        reference.time_of_day_boundaries(compiled, z, start, end)
    assert fast.time_of_day_boundaries(compiled, z, start - timedelta(days=3), end) == \
        reference.time_of_day_boundaries(compiled, z, start - timedelta(days=3), end)


def test_derived_power_of_a_zero_energy_piece_keeps_its_representation():
    # 06:00-07:00 UTC has no reported power and no energy (interpolated 0E-9 kWh between
    # two readings of 0 kWh): its power for restrictions is ``(energy or ZERO) / hours`` =
    # 0 / 1 = Decimal("0") (not 0E-9), and that value becomes MIN_POWER since the later
    # reading reports power. The 07:00 time-of-day boundary cuts the piece there.
    tariff = Tariff.model_validate({
        "country_code": "NL", "party_id": "CLG", "id": "T", "currency": "EUR", "last_updated": "2026-01-01T00:00:00Z",
        "elements": [{"price_components": [{"type": "FLAT", "price": 1, "step_size": 1}],
                      "restrictions": {"start_time": "07:00"}},
                     {"price_components": [{"type": "ENERGY", "price": D("0.3"), "step_size": 1}]}]})
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=timezone.utc)
    readings = [MeterReading(timestamp=t0, energy_kwh=D(0), charging=True),
                MeterReading(timestamp=t0 + timedelta(hours=2), energy_kwh=D(0), power_kw=D(11), charging=True)]
    periods = fast.charging_periods_from_readings(readings, tariff, time_zone="UTC", session_start=t0,
                                                  session_end=t0 + timedelta(hours=3))
    assert periods == reference.charging_periods_from_readings(readings, tariff, time_zone="UTC", session_start=t0,
                                                               session_end=t0 + timedelta(hours=3))
    assert str(periods[0].volume(fast.CdrDimensionType.MIN_POWER)) == "0"


class _AlwaysMissing(dict):
    """A selections memo that never finds anything (every piece then asks session_selection)."""

    def get(self, key, default=None):
        return default


@SETTINGS
@given(tariffs(), sessions(), st.sampled_from(ZONES))
def test_the_written_out_selection_key_is_restrictions_selection_key(tariff, session, zone):
    # Every piece looks its selection up with the key written out in _periods; with a memo
    # that never finds it, session_selection gets every piece's context: the key looked up
    # just before must be selection_key of that context.
    from unittest import mock

    from pricing import restrictions

    start, end, readings = session
    compiled = restrictions.compile_tariff(tariff)
    # priced once first: the time digits of every piece's instant are then remembered
    # (_TIME_KEYS), and each looked-up key below, with those digits, is checked against
    # the selection key of the context built from the instant's local time
    outcome(fast, readings, tariff, zone, start, end)
    looked_up = []

    class Spy(_AlwaysMissing):
        def get(self, key, default=None):
            looked_up.append(key)
            return default

    checked = []

    def checking_selection(c, ctx):
        assert c is compiled
        assert looked_up[-1] == restrictions.selection_key(c, ctx)
        checked.append(ctx)
        return restrictions.session_selection(c, ctx)

    saved = compiled.selections
    object.__setattr__(compiled, "selections", Spy())
    try:
        with mock.patch.object(fast, "session_selection", checking_selection):
            got = outcome(fast, readings, tariff, zone, start, end)
    finally:
        object.__setattr__(compiled, "selections", saved)
    assert len(looked_up) == 2 * len(checked)  # ours, then session_selection's own look-up
    assert got == outcome(reference, readings, tariff, zone, start, end)


def test_duration_digit_with_a_session_start_in_a_zone_across_dst():
    # The duration digit is read from the instants start + timedelta(seconds=d) only when
    # start has a fixed offset: with a zone, start + 7200 s is wall-clock arithmetic
    # (03:30 CEST, one hour after 01:30 CET) while seconds_between counts the real
    # seconds to a reading in UTC; the pieces from 01:30 UTC (where the real two hours
    # are not up yet) must come out as the reference has them.
    from zoneinfo import ZoneInfo

    tariff = Tariff.model_validate({
        "country_code": "NL", "party_id": "CLG", "id": "T", "currency": "EUR", "last_updated": "2026-01-01T00:00:00Z",
        "elements": [{"price_components": [{"type": "TIME", "price": D("1"), "step_size": 1}],
                      "restrictions": {"min_duration": 7200}},
                     {"price_components": [{"type": "TIME", "price": D("2"), "step_size": 1}]}]})
    start = datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))  # 00:30 UTC
    end = datetime(2026, 3, 29, 4, 0, tzinfo=timezone.utc)
    readings = [MeterReading(timestamp=datetime(2026, 3, 29, 0, 30, tzinfo=timezone.utc), energy_kwh=D(0)),
                MeterReading(timestamp=datetime(2026, 3, 29, 1, 45, tzinfo=timezone.utc), energy_kwh=D(1)),
                MeterReading(timestamp=datetime(2026, 3, 29, 2, 15, tzinfo=timezone.utc), energy_kwh=D(2))]
    for session_start in (start, start.astimezone(timezone.utc), start.astimezone(timezone(timedelta(hours=5)))):
        got = outcome(fast, readings, tariff, "Europe/Amsterdam", session_start, end)
        expected = outcome(reference, readings, tariff, "Europe/Amsterdam", session_start, end)
        assert got == expected
        assert [p.model_dump_json() for p in got] == [p.model_dump_json() for p in expected]


def _windowed_tariff():
    # ENERGY at 0.30 from 01:00 to 12:00 local time, else 0.20
    return Tariff.model_validate({
        "country_code": "NL", "party_id": "CLG", "id": "T", "currency": "EUR", "last_updated": "2026-01-01T00:00:00Z",
        "elements": [{"price_components": [{"type": "ENERGY", "price": D("0.30"), "step_size": 1}],
                      "restrictions": {"start_time": "01:00", "end_time": "12:00"}},
                     {"price_components": [{"type": "ENERGY", "price": D("0.20"), "step_size": 1}]}]})


def _same_as_reference(readings, tariff, zone, start, end):
    got = outcome(fast, readings, tariff, zone, start, end)
    expected = outcome(reference, readings, tariff, zone, start, end)
    assert got == expected
    assert [p.model_dump_json() for p in got] == [p.model_dump_json() for p in expected]


def test_remembered_time_digits_are_per_zone():
    # The same instants priced in one zone, then in another: the digits remembered for
    # the first zone must not serve the second (01:30 UTC is 02:30 in Amsterdam, inside
    # the window, and 21:30 the day before in New York, outside it).
    fast._TIME_KEYS.clear()
    tariff = _windowed_tariff()
    start = datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc)
    end = start + timedelta(hours=4)
    readings = [MeterReading(timestamp=start + timedelta(minutes=30 * k), energy_kwh=D(k)) for k in range(8)]
    for zone in ("Europe/Amsterdam", "America/New_York", "Europe/Amsterdam", "UTC"):
        _same_as_reference(readings, tariff, zone, start, end)


def test_time_digits_are_remembered_only_for_fixed_offsets():
    # 02:30 in Amsterdam on 2026-10-25 happens twice (00:30 and 01:30 UTC); the two
    # datetimes are equal dict keys (same tzinfo: compared by wall time). Priced in UTC
    # with a window from 01:00, one is outside and one inside: a session with the second
    # must not get the digits remembered for the first.
    fast._TIME_KEYS.clear()
    tariff = _windowed_tariff()
    ams = ZoneInfo("Europe/Amsterdam")
    first = datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=ams)
    second = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ams)
    assert first == second and first.astimezone(timezone.utc) != second.astimezone(timezone.utc)
    start = datetime(2026, 10, 25, 0, 0, tzinfo=timezone.utc)
    end = datetime(2026, 10, 25, 3, 0, tzinfo=timezone.utc)
    for at in (first, second):
        readings = [MeterReading(timestamp=start, energy_kwh=D(0)), MeterReading(timestamp=at, energy_kwh=D(2)),
                    MeterReading(timestamp=end, energy_kwh=D(5))]
        _same_as_reference(readings, tariff, "UTC", start, end)
