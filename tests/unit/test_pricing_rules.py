"""One case per pricing rule (ocpi-pricing.md) and per tariff restriction (mod_tariffs).

Each expected figure is computed by hand in the comment beside it.
"""

from datetime import timedelta
from decimal import Decimal

import pytest

from pricing import (
    CurrencyMismatch,
    NoChargingPeriods,
    UnknownTimeZone,
    build_cdr,
    charging_periods_from_readings,
    credit_cdr,
    price_periods,
    price_session,
    reprice_cdr,
)
from pricing.periods import time_of_day_boundaries
from pricing.restrictions import compile_tariff, zone_for
from schemas.ocpi import AuthMethod, Cdr, CdrDimensionType, CdrLocation, CdrToken, Price
from pricing_support import FIXTURES, at, component, element, minutes, period, reading, spec_tariff, tariff

D = Decimal
AMS = "Europe/Amsterdam"


def price(t, periods, start, end, zone=AMS):
    return price_periods(periods, t, time_zone=zone, session_start=start, session_end=end)


def one_hour_energy(t, start_utc, kwh="10", zone=AMS, **extra):
    s = at(start_utc)
    return price(t, [period(s, ENERGY=kwh, TIME="1", **extra)], s, s + minutes(60), zone)


# ----------------------------------------------------------------------------- rule 1


def test_rule1_first_matching_element_per_dimension_and_dimensions_from_different_elements():
    # element 0: ENERGY 0.30 only before 12:00; element 1: TIME 2.00 + ENERGY 0.40; element 2: ENERGY 0.50
    # at 10:00 local: ENERGY from element 0 (10 x 0.30 = 3.00), TIME from element 1 (1 h x 2.00)
    t = tariff(
        element(component("ENERGY", "0.30"), end_time="12:00"),
        element(component("TIME", "2.00"), component("ENERGY", "0.40")),
        element(component("ENERGY", "0.50")),
    )
    p = one_hour_energy(t, "2026-11-23 09:00")  # 10:00 Amsterdam (UTC+1)
    energy_line, time_line = [l for l in p.lines if l.kind == "period"][:2]
    assert (energy_line.dimension, energy_line.element_index, energy_line.excl_vat) == ("ENERGY", 0, D("3.00"))
    assert (time_line.dimension, time_line.element_index, time_line.excl_vat) == ("TIME", 1, D("2.00"))
    # at 13:00 local element 0 no longer holds: ENERGY from element 1: 10 x 0.40 = 4.00
    p = one_hour_energy(t, "2026-11-23 12:00")
    assert p.total_energy_cost.excl_vat == D("4.0000")


def test_rule1_no_matching_element_means_that_dimension_is_free():
    # only an ENERGY component restricted to >= 50 kW; the period charges at 11 kW: free
    t = tariff(element(component("ENERGY", "0.30"), min_power=D(50)))
    p = one_hour_energy(t, "2026-11-23 09:00", MAX_POWER="11")
    assert p.total_cost == Price(excl_vat=D("0"), incl_vat=D("0"))


# ----------------------------------------------------------------------------- rule 2: restrictions


def test_start_and_end_time_in_local_time():
    # 0.40/kWh 09:00-18:00 local, else 0.20. 08:30 UTC = 09:30 Amsterdam (winter, UTC+1): 10 x 0.40
    t = tariff(element(component("ENERGY", "0.40"), start_time="09:00", end_time="18:00"),
               element(component("ENERGY", "0.20")))
    assert one_hour_energy(t, "2026-11-23 08:30").total_cost.excl_vat == D("4.0000")
    # 07:30 UTC = 08:30 local: before 09:00 -> 10 x 0.20 = 2.00
    assert one_hour_energy(t, "2026-11-23 07:30").total_cost.excl_vat == D("2.0000")
    # 17:00 UTC = 18:00 local: end_time is exclusive -> 2.00
    assert one_hour_energy(t, "2026-11-23 17:00").total_cost.excl_vat == D("2.0000")


@pytest.mark.parametrize(
    "utc, expected",
    [
        ("2026-11-23 22:00", "1.0000"),  # 23:00 local: inside 22:00-06:00 (wraps) -> 10 x 0.10
        ("2026-11-23 04:00", "1.0000"),  # 05:00 local: inside, after midnight -> 1.00
        ("2026-11-23 05:00", "3.0000"),  # 06:00 local: end exclusive -> 10 x 0.30
        ("2026-11-23 11:00", "3.0000"),  # 12:00 local: outside -> 3.00
    ],
)
def test_time_window_wrapping_past_midnight(utc, expected):
    t = tariff(element(component("ENERGY", "0.10"), start_time="22:00", end_time="06:00"),
               element(component("ENERGY", "0.30")))
    assert one_hour_energy(t, utc).total_cost.excl_vat == D(expected)


@pytest.mark.parametrize(
    "utc, expected",
    [
        ("2026-11-23 22:59", "5.0000"),  # 23:59 local: 18:00-00:00 means until end of day -> 10 x 0.50
        ("2026-11-23 23:00", "1.0000"),  # 00:00 local: the next day, outside -> 10 x 0.10
        ("2026-11-23 16:00", "1.0000"),  # 17:00 local: before 18:00 -> 1.00
    ],
)
def test_end_time_midnight_means_end_of_day(utc, expected):
    t = tariff(element(component("ENERGY", "0.50"), start_time="18:00", end_time="00:00"),
               element(component("ENERGY", "0.10")))
    assert one_hour_energy(t, utc).total_cost.excl_vat == D(expected)


@pytest.mark.parametrize(
    "utc, expected",
    [
        ("2026-12-23 22:59", "1.0000"),  # 23:59 local on Dec 23: before start_date -> 10 x 0.10
        ("2026-12-23 23:00", "5.0000"),  # 00:00 local Dec 24: start_date inclusive -> 10 x 0.50
        ("2026-12-26 22:59", "5.0000"),  # 23:59 local Dec 26: still inside
        ("2026-12-26 23:00", "1.0000"),  # 00:00 local Dec 27: end_date exclusive -> 1.00
    ],
)
def test_start_date_inclusive_end_date_exclusive_in_local_time(utc, expected):
    t = tariff(element(component("ENERGY", "0.50"), start_date="2026-12-24", end_date="2026-12-27"),
               element(component("ENERGY", "0.10")))
    assert one_hour_energy(t, utc).total_cost.excl_vat == D(expected)


@pytest.mark.parametrize(
    "utc, expected",
    [
        ("2026-11-28 09:00", "5.0000"),  # Saturday 10:00 local -> weekend 10 x 0.50
        ("2026-11-29 22:59", "5.0000"),  # Sunday 23:59 local
        ("2026-11-29 23:00", "1.0000"),  # 00:00 local = Monday -> 10 x 0.10
        ("2026-11-27 23:00", "5.0000"),  # 00:00 local Saturday (23:00 UTC Friday)
    ],
)
def test_day_of_week_in_local_time(utc, expected):
    t = tariff(element(component("ENERGY", "0.50"), day_of_week=["SATURDAY", "SUNDAY"]),
               element(component("ENERGY", "0.10")))
    assert one_hour_energy(t, utc).total_cost.excl_vat == D(expected)


def test_min_kwh_inclusive_max_kwh_exclusive_counted_from_session_start():
    # 0.50 for the first 10 kWh (max_kwh 10), 0.30 from 10 kWh on (min_kwh 10).
    # periods: 10 kWh (starts at 0 kWh: 0.50 -> 5.00), 5 kWh (starts at exactly 10 kWh: min
    # inclusive -> 0.30 -> 1.50). Total 6.50
    t = tariff(element(component("ENERGY", "0.50"), max_kwh=D(10)), element(component("ENERGY", "0.30"), min_kwh=D(10)))
    s = at("2026-11-23 09:00")
    p = price(t, [period(s, ENERGY="10", TIME="0.5"), period(s + minutes(30), ENERGY="5", TIME="0.5")], s, s + minutes(60))
    assert p.total_cost.excl_vat == D("6.5000")


def test_min_duration_inclusive_max_duration_exclusive():
    # TIME 1.00/h while duration < 3600 s, 3.00/h from 3600 s. Periods 0-60 min, 60-90 min:
    # 1 h x 1.00 + 0.5 h x 3.00 = 2.50
    t = tariff(element(component("TIME", "1.00"), max_duration=3600), element(component("TIME", "3.00"), min_duration=3600))
    s = at("2026-11-23 09:00")
    p = price(t, [period(s, TIME="1"), period(s + minutes(60), TIME="0.5")], s, s + minutes(90))
    assert p.total_cost.excl_vat == D("2.5000")


@pytest.mark.parametrize(
    "dims, expected",
    [
        ({"MAX_POWER": "22", "MIN_POWER": "3"}, "5.0000"),  # MAX_POWER 22 >= 22 (min inclusive) -> 10 x 0.50
        ({"MAX_POWER": "21.9"}, "2.0000"),  # < 22 -> fallback 10 x 0.20
        ({"MIN_POWER": "30"}, "5.0000"),  # no MAX_POWER: MIN_POWER 30 -> 0.50
        ({}, "2.0000"),  # neither: 10 kWh / 1 h = 10 kW -> 0.20
    ],
)
def test_power_restriction_uses_max_then_min_power_then_energy_over_time(dims, expected):
    t = tariff(element(component("ENERGY", "0.50"), min_power=D(22)), element(component("ENERGY", "0.20")))
    assert one_hour_energy(t, "2026-11-23 09:00", **dims).total_cost.excl_vat == D(expected)


def test_max_power_is_exclusive():
    # ENERGY 0.20 when power < 16 kW: at MAX_POWER exactly 16 the element does not hold -> 0.50
    t = tariff(element(component("ENERGY", "0.20"), max_power=D(16)), element(component("ENERGY", "0.50")))
    assert one_hour_energy(t, "2026-11-23 09:00", MAX_POWER="16").total_cost.excl_vat == D("5.0000")
    assert one_hour_energy(t, "2026-11-23 09:00", MAX_POWER="15.99").total_cost.excl_vat == D("2.0000")


@pytest.mark.parametrize(
    "dims, expected",
    [
        ({"MAX_CURRENT": "32"}, "3.0000"),  # min_current 32 inclusive -> TIME 1 h x 3.00
        ({"MAX_CURRENT": "31"}, "1.0000"),  # max_current 32 exclusive -> 1 h x 1.00
        ({"MIN_CURRENT": "40"}, "3.0000"),  # only MIN_CURRENT -> used -> 3.00
    ],
)
def test_current_restrictions(dims, expected):
    t = tariff(element(component("TIME", "1.00"), max_current=D(32)), element(component("TIME", "3.00"), min_current=D(32)))
    assert one_hour_energy(t, "2026-11-23 09:00", **dims).total_cost.excl_vat == D(expected)


def test_unknown_current_skips_the_element_and_says_so():
    # no current data: neither current element holds -> TIME free, with a finding
    t = tariff(element(component("TIME", "1.00"), max_current=D(32)), element(component("TIME", "3.00"), min_current=D(32)))
    p = one_hour_energy(t, "2026-11-23 09:00")
    assert p.total_cost.excl_vat == D("0")
    assert [f.code for f in p.findings] == ["restriction_not_evaluable"]


def test_reservation_elements_price_only_the_reservation():
    # element 0 (reservation): TIME 6.00/h; element 1: TIME 1.00/h.
    # reservation 0.5 h x 6.00 = 3.00 (reservation total); charging 1 h x 1.00 = 1.00 (time total)
    t = tariff(element(component("TIME", "6.00"), reservation="RESERVATION"), element(component("TIME", "1.00")))
    s = at("2026-11-23 09:00")
    p = price(t, [period(s, RESERVATION_TIME="0.5"), period(s + minutes(30), TIME="1")], s, s + minutes(90))
    assert p.total_reservation_cost.excl_vat == D("3.0000")
    assert p.total_time_cost.excl_vat == D("1.0000")
    assert p.total_time == D("1.0000")  # rule 5: reservation time not in total_time


# ----------------------------------------------------------------------------- rule 2: DST


def test_night_window_across_the_spring_forward_change():
    # Amsterdam 2026-03-29: 02:00 CET -> 03:00 CEST. Night 00:00-07:00 at 1.00/h, else 2.00/h.
    # Session 00:30 CET (23:30Z) to 08:30 CEST (06:30Z). 07:00 CEST = 05:00Z, so night is
    # 23:30Z-05:00Z = 5.5 h (the wall clock shows 6.5 h) and day 05:00Z-06:30Z = 1.5 h.
    # 5.5 x 1.00 + 1.5 x 2.00 = 8.50
    t = tariff(element(component("TIME", "1.00"), end_time="07:00"), element(component("TIME", "2.00")))
    s, e = at("2026-03-28 23:30"), at("2026-03-29 06:30")
    p = price_session([reading(s, "0"), reading(e, "40")], t, time_zone=AMS, session_start=s, session_end=e)
    assert [pp.start_date_time for pp in p.charging_periods] == [s, at("2026-03-29 05:00")]
    assert p.total_cost.excl_vat == D("8.5000")


def test_night_window_across_the_fall_back_change():
    # Amsterdam 2026-10-25: 03:00 CEST -> 02:00 CET. Session 00:30 CEST (22:30Z Oct 24) to
    # 08:30 CET (07:30Z). 07:00 CET = 06:00Z: night 22:30Z-06:00Z = 7.5 h x 1.00, day 1.5 h x 2.00
    # = 7.50 + 3.00 = 10.50
    t = tariff(element(component("TIME", "1.00"), end_time="07:00"), element(component("TIME", "2.00")))
    s, e = at("2026-10-24 22:30"), at("2026-10-25 07:30")
    p = price_session([reading(s, "0"), reading(e, "40")], t, time_zone=AMS, session_start=s, session_end=e)
    assert p.total_cost.excl_vat == D("10.5000")


def test_boundary_at_a_local_time_that_does_not_exist_is_the_jump_itself():
    # start_time 02:30 on 2026-03-29 in Amsterdam does not exist; the clock jumps from 02:00 CET
    # to 03:00 CEST at 01:00Z, which is when a "from 02:30" element starts to hold.
    t = tariff(element(component("TIME", "5.00"), start_time="02:30"), element(component("TIME", "1.00")))
    bounds = time_of_day_boundaries(compile_tariff(t), zone_for(AMS), at("2026-03-28 23:00"), at("2026-03-29 02:00"))
    assert at("2026-03-29 01:00") in bounds


def test_unknown_time_zone_is_a_clear_error():
    t = tariff(element(component("TIME", "1.00")))
    with pytest.raises(UnknownTimeZone):
        one_hour_energy(t, "2026-11-23 09:00", zone="Mars/Olympus")


# ----------------------------------------------------------------------------- rule 3: periods


def test_readings_split_into_charging_and_parking_periods():
    # charging 10:00-11:00 local (12 kWh), parking 11:00-11:30; TIME 2.00/h, PARKING 4.00/h:
    # 1 h x 2.00 + 0.5 h x 4.00 = 4.00; ENERGY 12 kWh total
    t = tariff(element(component("TIME", "2.00"), component("PARKING_TIME", "4.00")))
    s = at("2026-11-23 09:00")
    readings = [reading(s, "0", kw="11"), reading(s + minutes(30), "6", kw="12"),
                reading(s + minutes(60), "12", kw="0", charging=False)]
    p = price_session(readings, t, time_zone=AMS, session_start=s, session_end=s + minutes(90))
    assert len(p.charging_periods) == 2
    assert p.charging_periods[0].volume(CdrDimensionType.TIME) == D(1)
    assert p.charging_periods[0].volume(CdrDimensionType.MAX_POWER) == D(12)
    assert p.charging_periods[1].volume(CdrDimensionType.PARKING_TIME) == D("0.5")
    assert p.total_cost.excl_vat == D("4.0000")
    assert p.total_energy == D("12.0000")
    assert p.total_parking_time == D("0.5000")
    assert p.total_time == D("1.5000")


def test_readings_split_where_energy_crosses_a_kwh_threshold():
    # 0.30/kWh below 10 kWh, 0.20 from 10 kWh. 20 kWh linear over one hour: 10 kWh reached at
    # 30 min. 10 x 0.30 + 10 x 0.20 = 5.00
    t = tariff(element(component("ENERGY", "0.30"), max_kwh=D(10)), element(component("ENERGY", "0.20")))
    s = at("2026-11-23 09:00")
    periods = charging_periods_from_readings([reading(s, "0"), reading(s + minutes(60), "20")], t,
                                             time_zone=AMS, session_start=s, session_end=s + minutes(60))
    assert [p.start_date_time for p in periods] == [s, s + minutes(30)]
    assert [p.volume(CdrDimensionType.ENERGY) for p in periods] == [D(10), D(10)]
    p = price_periods(periods, t, time_zone=AMS, session_start=s, session_end=s + minutes(60))
    assert p.total_cost.excl_vat == D("5.0000")


def test_readings_split_at_a_duration_threshold_and_a_power_change():
    # TIME 1.00/h for the first hour (max_duration 3600), 3.00/h after; ENERGY 0.30 below 11 kW
    # (max_power 11), 0.50 at or above.
    # readings: 0 kWh at 0 min (7 kW reported), 4 kWh at 40 min (18 kW from then on), 16 kWh at
    # 80 min, 19 kWh at 90 min. Periods: 0-40 min (7 kW), 40-60 min, 60-90 min (duration 3600 s).
    # TIME: 60 min x 1.00 + 30 min x 3.00 = 1.00 + 1.50 = 2.50
    # ENERGY: 4 kWh at 7 kW x 0.30 = 1.20; 15 kWh at 18 kW x 0.50 = 7.50 -> 8.70. Total 11.20
    t = tariff(
        element(component("TIME", "1.00"), max_duration=3600),
        element(component("TIME", "3.00")),
        element(component("ENERGY", "0.30"), max_power=D(11)),
        element(component("ENERGY", "0.50")),
    )
    s = at("2026-11-23 09:00")
    readings = [reading(s, "0", kw="7"), reading(s + minutes(40), "4", kw="18"), reading(s + minutes(80), "16", kw="18"),
                reading(s + minutes(90), "19", kw="18")]
    p = price_session(readings, t, time_zone=AMS, session_start=s, session_end=s + minutes(90))
    assert [pp.start_date_time for pp in p.charging_periods] == [s, s + minutes(40), s + minutes(60)]
    assert p.total_time_cost.excl_vat == D("2.5000")
    assert p.total_energy_cost.excl_vat == D("8.7000")


def test_readings_with_the_same_price_are_merged_into_one_period():
    t = tariff(element(component("ENERGY", "0.25")))
    s = at("2026-11-23 09:00")
    readings = [reading(s + minutes(i), str(i)) for i in range(0, 61, 5)]
    periods = charging_periods_from_readings(readings, t, time_zone=AMS, session_start=s, session_end=s + minutes(60))
    assert len(periods) == 1
    assert periods[0].volume(CdrDimensionType.ENERGY) == D(60)


def test_missing_energy_keeps_the_last_known_value():
    # readings 0, 5, None, 8: the None sample adds nothing; total 8 kWh x 0.25 = 2.00
    t = tariff(element(component("ENERGY", "0.25")))
    s = at("2026-11-23 09:00")
    readings = [reading(s, "0"), reading(s + minutes(10), "5"), reading(s + minutes(20)), reading(s + minutes(30), "8")]
    p = price_session(readings, t, time_zone=AMS, session_start=s, session_end=s + minutes(30))
    assert p.total_energy == D("8.0000")
    assert p.total_cost.excl_vat == D("2.0000")


def test_zero_length_session_gets_one_period_and_the_flat_fee():
    # rule 4: FLAT 1.50 even for a session of no time
    t = tariff(element(component("FLAT", "1.50"), component("ENERGY", "0.25")))
    s = at("2026-11-23 09:00")
    p = price_session([], t, time_zone=AMS, session_start=s, session_end=s)
    assert len(p.charging_periods) == 1
    assert p.total_cost.excl_vat == D("1.5000")


def test_no_periods_is_an_error():
    t = tariff(element(component("ENERGY", "0.25")))
    s = at("2026-11-23 09:00")
    with pytest.raises(NoChargingPeriods):
        price(t, [], s, s)


def test_repricing_reports_a_period_that_spans_a_boundary_and_does_not_resplit():
    # day 0.40 from 07:00, night 0.20 before; one given period 06:00-08:00 local with 10 kWh:
    # priced at its start (night) -> 10 x 0.20 = 2.00, with a period_spans_boundary finding
    t = tariff(element(component("ENERGY", "0.20"), end_time="07:00"), element(component("ENERGY", "0.40")))
    cdr = _cdr_with([period(at("2026-11-23 05:00"), ENERGY="10", TIME="2")], at("2026-11-23 05:00"), at("2026-11-23 07:00"))
    p = reprice_cdr(cdr, t, time_zone=AMS)
    assert p.total_cost.excl_vat == D("2.0000")
    assert "period_spans_boundary" in [f.code for f in p.findings]


# ----------------------------------------------------------------------------- rule 4: FLAT


def test_rule4_flat_once_per_session_at_the_first_active_flat():
    # element 0: FLAT 1.00 from 18:00; element 1: FLAT 0.50. Session 17:00-19:00 local in two
    # periods: the first period's active FLAT is element 1's 0.50; charged once: 0.50
    t = tariff(element(component("FLAT", "1.00"), start_time="18:00"), element(component("FLAT", "0.50")))
    s = at("2026-11-23 16:00")
    p = price(t, [period(s, TIME="1"), period(s + minutes(60), TIME="1")], s, s + minutes(120))
    flats = [l for l in p.lines if l.dimension == "FLAT"]
    assert len(flats) == 1 and flats[0].excl_vat == D("0.50")
    assert p.total_fixed_cost.excl_vat == D("0.5000")


# ----------------------------------------------------------------------------- rule 6: step_size


def test_rule6_step_size_zero_means_no_rounding():
    # 7 min x 6.00/h = 0.70, no rounding with step_size 0
    t = tariff(element(component("TIME", "6.00", 0)))
    s = at("2026-11-23 09:00")
    p = price(t, [period(s, TIME=str(D(7) / D(60)))], s, s + minutes(7))
    assert p.total_cost.excl_vat == D("0.7000")


def test_rule6_time_rounded_when_no_parking_component_is_used():
    # TIME 6.00/h step 300 s, 7 min charging + 3 min parking (no PARKING component):
    # TIME 7 -> 10 min = 1/6 h x 6.00 = 1.00
    t = tariff(element(component("TIME", "6.00", 300)))
    s = at("2026-11-23 09:00")
    p = price(t, [period(s, TIME=str(D(7) / D(60))), period(s + minutes(7), PARKING_TIME="0.05")], s, s + minutes(10))
    assert p.total_cost.excl_vat == D("1.0000")
    assert [l.kind for l in p.lines].count("step_size") == 1


def test_rule6_more_energy_can_cost_less_when_the_last_component_is_cheaper():
    # A consequence of rule 6 (mod_cdrs: the step_size and price of the *last* component):
    # day ENERGY 1.00/kWh step 500 Wh, night 0.01/kWh step 500 Wh (night from 22:00 local).
    # A: 0.1 kWh by day only: billed 0.1 -> 0.5 kWh, extra 0.4 at 1.00: 0.10 + 0.40 = 0.50
    # B: the same plus 0.1 kWh at night: billed 0.2 -> 0.5, extra 0.3 at the night price 0.01:
    #    0.10 + 0.001 + 0.003 = 0.104
    t = tariff(element(component("ENERGY", "0.01", 500), start_time="22:00"), element(component("ENERGY", "1.00", 500)))
    s = at("2026-11-23 20:00")  # 21:00 Amsterdam
    day = period(s, ENERGY="0.1", TIME="1")
    a = price(t, [day], s, s + minutes(60))
    b = price(t, [day, period(s + minutes(60), ENERGY="0.1", TIME="1")], s, s + minutes(120))
    assert a.total_cost.excl_vat == D("0.5000")
    assert b.total_cost.excl_vat == D("0.1040")


# ----------------------------------------------------------------------------- rule 7: VAT


def test_rule7_vat_per_component_and_absent_vat_means_none():
    # ENERGY 10 kWh x 0.30 = 3.00 at 21 % -> 3.63; TIME 1 h x 1.00 without vat -> 1.00;
    # FLAT 0.50 at 0 % -> 0.50. incl = 3.63 + 1.00 + 0.50 = 5.13; excl = 4.50
    t = tariff(element(component("ENERGY", "0.30", vat="21"), component("TIME", "1.00"),
                       component("FLAT", "0.50", vat="0")))
    p = one_hour_energy(t, "2026-11-23 09:00")
    assert p.total_cost == Price(excl_vat=D("4.5000"), incl_vat=D("5.1300"))
    assert p.total_time_cost == Price(excl_vat=D("1.0000"), incl_vat=D("1.0000"))


# ----------------------------------------------------------------------------- rule 8: min / max


def test_rule8_min_price_without_incl_bounds_incl_by_its_excl():
    # 1 kWh x 0.25 = 0.25 (10 %: 0.275); min_price excl 1.00 only: excl -> 1.00, incl -> 1.00
    t = tariff(element(component("ENERGY", "0.25", vat="10")), min_price={"excl_vat": D("1.00")})
    p = one_hour_energy(t, "2026-11-23 09:00", kwh="1")
    assert p.total_cost == Price(excl_vat=D("1.0000"), incl_vat=D("1.0000"))
    assert p.total_energy_cost == Price(excl_vat=D("0.2500"), incl_vat=D("0.2750"))
    assert [l.kind for l in p.lines][-1] == "min_price"


def test_rule8_max_price_bounds_excl_and_incl_separately():
    # 40 kWh x 0.25 = 10.00 excl, 12.10 incl (21 %); max 9.00 excl / 12.50 incl:
    # excl capped to 9.00, incl (12.10) stays under 12.50
    t = tariff(element(component("ENERGY", "0.25", vat="21")), max_price={"excl_vat": D("9.00"), "incl_vat": D("12.50")})
    p = one_hour_energy(t, "2026-11-23 09:00", kwh="40")
    assert p.total_cost == Price(excl_vat=D("9.0000"), incl_vat=D("12.1000"))


# ----------------------------------------------------------------------------- rule 9: rounding


def test_rule9_total_is_the_rounded_exact_sum_not_the_sum_of_rounded_parts():
    # ENERGY 0.5 kWh x 0.0001 = 0.00005 -> 0.0001 (half up); TIME 0.5 h x 0.0001 = 0.00005 -> 0.0001
    # total exact 0.0001 -> 0.0001 (sum of the rounded parts would be 0.0002)
    t = tariff(element(component("ENERGY", "0.0001"), component("TIME", "0.0001")))
    s = at("2026-11-23 09:00")
    p = price(t, [period(s, ENERGY="0.5", TIME="0.5")], s, s + minutes(30))
    assert p.total_energy_cost.excl_vat == D("0.0001")
    assert p.total_time_cost.excl_vat == D("0.0001")
    assert p.total_cost.excl_vat == D("0.0001")


def test_rule9_an_exact_half_from_a_repeating_hour_fraction_rounds_up():
    # 3 s x 0.06/h = 0.00005 exactly; 3/3600 h is 0.000833... so the noise guard matters -> 0.0001
    t = tariff(element(component("TIME", "0.06", 0)))
    s = at("2026-11-23 09:00")
    p = price_session([reading(s, "0"), reading(s + timedelta(seconds=3), "0.001")], t, time_zone=AMS,
                      session_start=s, session_end=s + timedelta(seconds=3))
    assert p.total_cost.excl_vat == D("0.0001")


# ----------------------------------------------------------------------------- rule 10: which tariff


def test_rule10_tariff_validity_excluding_the_session_is_a_warning():
    t = spec_tariff("tariff_6_025kwh_start_max_price")  # ends 2019-06-30T23:59:59Z
    s = at("2026-11-23 09:00")
    p = price(t, [period(s, ENERGY="10", TIME="1")], s, s + minutes(60))
    assert [f.code for f in p.findings] == ["tariff_expired"]
    assert p.total_cost.excl_vat == D("3.0000")  # still priced: 0.50 + 10 x 0.25


def test_rule10_repricing_uses_the_given_tariff_whatever_the_periods_tariff_id():
    # period tariff_id "OTHER"; priced with T1: 10 kWh x 0.30 = 3.00
    t = tariff(element(component("ENERGY", "0.30")))
    s = at("2026-11-23 09:00")
    cp = period(s, ENERGY="10", TIME="1").model_copy(update={"tariff_id": "OTHER"})
    p = reprice_cdr(_cdr_with([cp], s, s + minutes(60)), t, time_zone=AMS)
    assert p.total_cost.excl_vat == D("3.0000")


def test_repricing_with_another_currency_is_an_error():
    t = tariff(element(component("ENERGY", "0.30")), currency="GBP")
    s = at("2026-11-23 09:00")
    with pytest.raises(CurrencyMismatch):
        reprice_cdr(_cdr_with([period(s, ENERGY="1", TIME="1")], s, s + minutes(60)), t, time_zone=AMS)


# ----------------------------------------------------------------------------- CDRs


def _cdr_with(periods, start, end) -> Cdr:
    base = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text())
    return base.model_copy(update={"charging_periods": periods, "start_date_time": start, "end_date_time": end})


def test_build_cdr_and_its_credit():
    # 12.34567 kWh billed per 1 Wh -> 12.346 kWh x 0.25 = 3.0865 excl; x 1.21 = 3.734665 -> 3.7347 incl
    t = tariff(element(component("ENERGY", "0.25", vat="21")))
    s = at("2026-11-23 09:00")
    priced = price(t, [period(s, ENERGY="12.34567", TIME="1")], s, s + minutes(60))
    example = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text())
    cdr = build_cdr(
        priced, id="CDR-1", country_code="NL", party_id="CLG", session_id="S-1", start_date_time=s,
        end_date_time=s + minutes(60), cdr_token=example.cdr_token, auth_method=AuthMethod.WHITELIST,
        cdr_location=example.cdr_location, tariff=t, last_updated=s + minutes(61),
    )
    assert cdr.total_cost == Price(excl_vat=D("3.0865"), incl_vat=D("3.7347"))
    assert cdr.charging_periods[0].volume(CdrDimensionType.ENERGY) == D("12.3457")  # 4 decimals
    assert cdr.total_energy == D("12.3457")
    assert cdr.tariffs == [t] and cdr.credit is None
    assert Cdr.model_validate_json(cdr.model_dump_json()) == cdr

    # mod_cdrs Credit CDRs: all the data of the original; only total_cost negated
    credit = credit_cdr(cdr, id="CDR-1-C", last_updated=s + minutes(120))
    assert credit.credit is True and credit.credit_reference_id == "CDR-1"
    assert credit.total_cost == Price(excl_vat=D("-3.0865"), incl_vat=D("-3.7347"))
    assert credit.total_energy_cost == cdr.total_energy_cost
    assert credit.total_energy == cdr.total_energy
    assert credit.charging_periods == cdr.charging_periods
    assert credit.id == "CDR-1-C"
    assert Cdr.model_validate_json(credit.model_dump_json()) == credit
    with pytest.raises(ValueError):
        credit_cdr(credit, id="CDR-1-C-C", last_updated=s + minutes(121))


def test_our_cdr_reprices_to_its_own_totals():
    # price_session -> build_cdr -> reprice_cdr: the CDR's periods give back its totals.
    # day 0.40/kWh until 18:00 local, then 0.25; parking 3.00/h step 900 s; FLAT 1.00 (21 %)
    # 17:00-18:00 local: 11 kWh x 0.40 = 4.40; 18:00-18:30: 5.5 kWh x 0.25 = 1.375;
    # parking 18:30-18:40 (10 min -> 15 min) = 0.25 h x 3.00 = 0.75; FLAT 1.00
    # total 7.525 excl, x 1.21 = 9.10525 incl -> 9.1053
    t = tariff(
        element(component("FLAT", "1.00", vat="21")),
        element(component("ENERGY", "0.40", vat="21"), end_time="18:00"),
        element(component("ENERGY", "0.25", vat="21"), component("PARKING_TIME", "3.00", 900, vat="21")),
    )
    s = at("2026-11-23 16:00")
    readings = [reading(s, "0", kw="11"), reading(s + minutes(90), "16.5", kw="0", charging=False)]
    priced = price_session(readings, t, time_zone=AMS, session_start=s, session_end=s + minutes(100))
    assert priced.total_cost == Price(excl_vat=D("7.5250"), incl_vat=D("9.1053"))
    example = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text())
    cdr = build_cdr(
        priced, id="CDR-2", country_code="NL", party_id="CLG", session_id="S-2", start_date_time=s,
        end_date_time=s + minutes(100), cdr_token=example.cdr_token, auth_method=AuthMethod.AUTH_REQUEST,
        cdr_location=example.cdr_location, tariff=t, last_updated=s + minutes(101),
    )
    again = reprice_cdr(cdr, t, time_zone=AMS)
    assert again.totals() == priced.totals()
    assert again.findings == []


def test_breakdown_as_table_and_json():
    # 10 kWh x 0.30 = 3.00, step 500 Wh: nothing extra; TIME 1 h x 1.00
    t = tariff(element(component("ENERGY", "0.30", 500), component("TIME", "1.00")))
    p = one_hour_energy(t, "2026-11-23 09:00")
    from pricing import explain
    from schemas.ocpi import ocpi_loads

    table = explain(p)
    assert "ENERGY" in table and "total_cost" in table
    data = ocpi_loads(p.to_json())
    assert [(l["dimension"], l["excl_vat"]) for l in data["breakdown"]] == [("ENERGY", D("3.00")), ("TIME", D("1.00"))]
    assert data["total_cost"] == {"excl_vat": D("4.0000"), "incl_vat": D("4.0000")}


@pytest.mark.parametrize("restriction", [{"start_time": "22:00"}, {"end_time": "02:00"}])
def test_readings_split_at_local_midnight_for_a_window_with_one_end(restriction):
    # a window with only start_time runs to the end of the day, one with only end_time
    # from the start of the day: local midnight is a boundary of both (rule 3).
    # Session 22:30-00:30 local (Amsterdam, UTC+1 in November), 20 kWh at an even pace:
    # start_time 22:00: 22:30-00:00 = 15 kWh x 0.10 = 1.50, 00:00-00:30 = 5 kWh x 0.30 = 1.50 -> 3.00
    # end_time 02:00:   22:30-00:00 = 15 kWh x 0.30 = 4.50, 00:00-00:30 = 5 kWh x 0.10 = 0.50 -> 5.00
    t = tariff(element(component("ENERGY", "0.10"), **restriction), element(component("ENERGY", "0.30")))
    s, e = at("2026-11-23 21:30"), at("2026-11-23 23:30")
    p = price_session([reading(s, "0"), reading(e, "20")], t, time_zone=AMS, session_start=s, session_end=e)
    assert [cp.start_date_time for cp in p.charging_periods] == [s, at("2026-11-23 23:00")]
    expected = D("3.0000") if "start_time" in restriction else D("5.0000")
    assert p.total_energy_cost.excl_vat == expected
