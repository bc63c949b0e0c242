"""The engine's hot loop (pricing.engine._price): its memo and shortcuts give rule 1's answer.

The loop remembers, per tariff, the selected elements per bucket key (time-of-day minute
table, duration thresholds compared as timedeltas, per-component runs of periods). These
cases pin the places where a shortcut could differ from evaluating every period afresh.
"""

from datetime import timedelta
from decimal import Decimal

import pricing.engine as engine
from pricing import price_periods
from pricing_support import at, component, element, period, tariff

D = Decimal
ZONE = "Europe/Amsterdam"


def _power_tariff():
    # element 0: ENERGY 0.25/kWh below 11 kW; element 1: ENERGY 0.40/kWh otherwise
    return tariff(element(component("ENERGY", "0.25"), max_power=11), element(component("ENERGY", "0.40")))


def _power_periods():
    t = at("2026-11-23 09:00")
    return t, t + timedelta(hours=1, minutes=30), [
        period(t, ENERGY="1", MAX_POWER="7"),
        period(t + timedelta(minutes=30), ENERGY="2", MAX_POWER="22"),
        period(t + timedelta(hours=1), ENERGY="3", MAX_POWER="7"),
    ]


def test_a_component_used_again_after_another_keeps_adding_to_its_sum():
    # 1 kWh @ 0.25 + 2 kWh @ 0.40 + 3 kWh @ 0.25 = 0.25 + 0.80 + 0.75 = 1.80 (no VAT)
    start, end, periods = _power_periods()
    priced = price_periods(periods, _power_tariff(), time_zone=ZONE, session_start=start, session_end=end)
    assert priced.total_energy_cost.excl_vat == D("1.8000")
    assert priced.total_cost.incl_vat == D("1.8000")
    assert [(line.period_index, line.element_index, line.quantity) for line in priced.lines] == [
        (0, 0, D("1")), (1, 1, D("2")), (2, 0, D("3"))
    ]


def test_the_memo_emptied_in_the_middle_of_a_session_changes_nothing(monkeypatch):
    # the same session as above, with a memo that is cleared at every new bucket key
    start, end, periods = _power_periods()
    normal = price_periods(periods, _power_tariff(), time_zone=ZONE, session_start=start, session_end=end)
    monkeypatch.setattr(engine, "_MEMO_LIMIT", 1)
    tiny = price_periods(periods, _power_tariff(), time_zone=ZONE, session_start=start, session_end=end)
    assert tiny.to_json() == normal.to_json()
    assert tiny.total_energy_cost.excl_vat == D("1.8000")


def test_min_duration_holds_from_the_exact_microsecond():
    # PARKING_TIME 2.00/h from 3600 s after the session start (min_duration inclusive),
    # 1.00/h before. Periods of 0.5 h starting at 0 s, 3599.999999 s and 3600 s:
    # 0.5 x 1.00 + 0.5 x 1.00 + 0.5 x 2.00 = 0.50 + 0.50 + 1.00 = 2.00
    t = at("2026-11-23 09:00")
    tar = tariff(element(component("PARKING_TIME", "2.00", 1), min_duration=3600),
                 element(component("PARKING_TIME", "1.00", 1)))
    periods = [
        period(t, PARKING_TIME="0.5"),
        period(t + timedelta(seconds=3599, microseconds=999999), PARKING_TIME="0.5"),
        period(t + timedelta(seconds=3600), PARKING_TIME="0.5"),
    ]
    priced = price_periods(periods, tar, time_zone=ZONE, session_start=t, session_end=t + timedelta(hours=2))
    assert [line.element_index for line in priced.lines if line.kind == "period"] == [1, 1, 0]
    assert priced.total_parking_cost.excl_vat == D("2.0000")


def test_time_of_day_bucket_changes_at_the_minute_of_the_restriction():
    # ENERGY 0.20/kWh 23:00-07:00 local, else 0.30. Amsterdam in November is UTC+1:
    # 21:59:59.999999 UTC = 22:59:59.999999 local (day), 22:00 UTC = 23:00 local (night).
    # 1 kWh x 0.30 + 1 kWh x 0.20 = 0.50
    t = at("2026-11-23 21:30")
    tar = tariff(element(component("ENERGY", "0.20"), start_time="23:00", end_time="07:00"),
                 element(component("ENERGY", "0.30")))
    periods = [
        period(t + timedelta(minutes=29, seconds=59, microseconds=999999), ENERGY="1"),
        period(t + timedelta(minutes=30), ENERGY="1"),
    ]
    priced = price_periods(periods, tar, time_zone=ZONE, session_start=t, session_end=t + timedelta(hours=1))
    assert [line.element_index for line in priced.lines if line.kind == "period"] == [1, 0]
    assert priced.total_energy_cost.excl_vat == D("0.5000")


def test_breakdown_lines_add_up_exactly_to_the_exact_total_whatever_the_callers_precision():
    # TIME 1.00/h for three periods of 20 min = 1/3 h each (a repeating decimal):
    # each line is 0.333... at the engine's precision, and the three lines must add up to the
    # engine's exact (unrounded) total, even when the caller reads the breakdown under a
    # lower Decimal precision than the engine prices with.
    import decimal

    t = at("2026-11-23 09:00")
    third = D(1) / D(3)
    periods = [period(t + timedelta(minutes=20 * k), TIME=str(third)) for k in range(3)]
    priced = price_periods(periods, tariff(element(component("TIME", "1.00"))), time_zone=ZONE,
                           session_start=t, session_end=t + timedelta(hours=1))
    with decimal.localcontext(decimal.Context(prec=10)):
        lines = priced.lines
    exact_excl, _ = priced.exact["before_min_max"]
    assert sum((line.excl_vat for line in lines), D(0)) == exact_excl


def test_the_hot_loop_passes_the_result_fields_in_their_declared_order():
    # _price builds PricedSession positionally (a keyword call of 22 arguments costs four
    # times as much); a field added or moved in the dataclass must be matched there
    import dataclasses

    from pricing.engine import PricedSession

    declared = tuple(f.name for f in dataclasses.fields(PricedSession) if f.init and f.name != "_lines")
    assert declared == engine._RESULT_FIELDS


def test_the_callers_decimal_context_is_put_back_and_does_not_change_the_price():
    # TIME 1.00/h for 1/3 h (20 min) and 2/3 h: 1/3 + 2/3 = 1.0000 at the engine's 40 digits,
    # whatever precision and rounding the caller has set; the caller's context is the same
    # object afterwards, also when pricing raises
    import decimal

    import pytest

    t = at("2026-11-23 09:00")
    periods = [period(t, TIME=str(D(1) / D(3))), period(t + timedelta(minutes=20), TIME=str(D(2) / D(3)))]
    tar = tariff(element(component("TIME", "1.00")))
    normal = price_periods(periods, tar, time_zone=ZONE, session_start=t, session_end=t + timedelta(hours=1))
    with decimal.localcontext(decimal.Context(prec=5, rounding=decimal.ROUND_DOWN)) as caller:
        odd = price_periods(periods, tar, time_zone=ZONE, session_start=t, session_end=t + timedelta(hours=1))
        assert decimal.getcontext() is caller
        with pytest.raises(engine.NoChargingPeriods):
            price_periods([], tar, time_zone=ZONE, session_start=t, session_end=t)
        with pytest.raises(Exception):
            price_periods(periods, tar, time_zone="Nowhere/None", session_start=t, session_end=t)
        assert decimal.getcontext() is caller
    assert odd.to_json() == normal.to_json()
    assert normal.total_time_cost.excl_vat == D("1.0000")


def test_periods_priced_without_local_time_when_their_dimensions_do_not_depend_on_it():
    # ENERGY 0.30/kWh (no restriction); PARKING_TIME 2.00/h 08:00-20:00 local, else 1.00/h.
    # Amsterdam in November is UTC+1. The charging period needs no local time (its
    # ENERGY candidates have no time restriction); the parking periods do:
    # 18:00 UTC = 19:00 local: 10 kWh x 0.30 = 3.00
    # 18:30 UTC = 19:30 local, in the window: 0.5 h x 2.00 = 1.00
    # 19:00 UTC = 20:00 local, end_time exclusive: 1 h x 1.00 = 1.00
    # total 3.00 + 1.00 + 1.00 = 5.00
    t = at("2026-11-23 18:00")
    tar = tariff(element(component("ENERGY", "0.30")),
                 element(component("PARKING_TIME", "2.00"), start_time="08:00", end_time="20:00"),
                 element(component("PARKING_TIME", "1.00")))
    periods = [period(t, ENERGY="10"), period(t + timedelta(minutes=30), PARKING_TIME="0.5"),
               period(t + timedelta(minutes=60), PARKING_TIME="1")]
    for _ in range(2):  # the second time from the memo
        priced = price_periods(periods, tar, time_zone=ZONE, session_start=t, session_end=t + timedelta(hours=2))
        assert [(line.period_index, line.element_index) for line in priced.lines] == [(0, 0), (1, 1), (2, 2)]
        assert priced.total_energy_cost.excl_vat == D("3.0000")
        assert priced.total_parking_cost.excl_vat == D("2.0000")
        assert priced.total_cost.excl_vat == D("5.0000")


def test_a_flat_fee_restricted_to_a_time_window_is_found_in_a_later_period():
    # FLAT 1.00 active 10:00-12:00 local, ENERGY 0.20/kWh unrestricted. UTC+1 (November):
    # 08:00 UTC = 09:00 local (no FLAT yet), 09:00 UTC = 10:00 local (FLAT, once).
    # 1 kWh x 0.20 + 1 kWh x 0.20 + 1.00 = 1.40
    t = at("2026-11-23 08:00")
    tar = tariff(element(component("FLAT", "1.00"), start_time="10:00", end_time="12:00"),
                 element(component("ENERGY", "0.20")))
    periods = [period(t, ENERGY="1"), period(t + timedelta(hours=1), ENERGY="1")]
    priced = price_periods(periods, tar, time_zone=ZONE, session_start=t, session_end=t + timedelta(hours=2))
    assert priced.total_fixed_cost.excl_vat == D("1.0000")
    assert priced.total_cost.excl_vat == D("1.4000")
    assert [(line.period_index, line.dimension) for line in priced.lines] == [(0, "ENERGY"), (1, "ENERGY"), (1, "FLAT")]


def test_time_totals_count_every_period_when_some_time_went_unpriced():
    # TIME 1.00/h only in the first 30 minutes (max_duration 1800 s), then no TIME element;
    # PARKING_TIME 2.00/h only from 60 minutes on (min_duration 3600 s). Periods:
    # 0 min TIME 0.5 h (priced), 30 min TIME 0.5 h (unpriced), 60 min PARKING 0.25 h
    # (priced): total_time = 0.5 + 0.5 + 0.25 = 1.25 h; total_parking_time = 0.25 h
    # cost = 0.5 x 1.00 + 0.25 x 2.00 = 0.50 + 0.50 = 1.00
    t = at("2026-11-23 09:00")
    tar = tariff(element(component("TIME", "1.00"), max_duration=1800),
                 element(component("PARKING_TIME", "2.00"), min_duration=3600))
    periods = [period(t, TIME="0.5"), period(t + timedelta(minutes=30), TIME="0.5"),
               period(t + timedelta(minutes=60), PARKING_TIME="0.25")]
    priced = price_periods(periods, tar, time_zone=ZONE, session_start=t, session_end=t + timedelta(minutes=75))
    assert priced.total_time == D("1.2500")
    assert priced.total_parking_time == D("0.2500")
    assert priced.total_cost.excl_vat == D("1.0000")
    # parking unpriced before 60 min, priced after: 0.5 h (30-60 min, unpriced) + 0.5 h
    # (60-90 min, 2.00/h) = 1.0 h of parking, of it 1.00 billed
    periods = [period(t, TIME="0.5"), period(t + timedelta(minutes=30), PARKING_TIME="0.5"),
               period(t + timedelta(minutes=60), PARKING_TIME="0.5")]
    priced = price_periods(periods, tar, time_zone=ZONE, session_start=t, session_end=t + timedelta(minutes=90))
    assert priced.total_time == D("1.5000")
    assert priced.total_parking_time == D("1.0000")
    assert priced.total_cost.excl_vat == D("1.5000")  # 0.5 x 1.00 + 0.5 x 2.00
