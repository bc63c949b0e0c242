"""The worked examples of OCPI 2.2.1 mod_tariffs / mod_cdrs that state costs.

Every expected figure is worked out by hand in the comment next to it. Local time: the
example tariffs are German (DE), so Europe/Berlin (UTC+1 in November, UTC+2 in June).
"""

from decimal import Decimal

import pytest

from pricing import price_periods, price_session, reprice_cdr
from schemas.ocpi import Cdr, Price
from pricing_support import FIXTURES, at, minutes, period, reading, spec_tariff, tariff, element, component

D = Decimal
ZONE = "Europe/Berlin"


def priced(name, periods, start, end):
    return price_periods(periods, spec_tariff(name), time_zone=ZONE, session_start=start, session_end=end)


def cost(excl, incl):
    return Price(excl_vat=D(excl), incl_vat=D(incl))


def test_simple_025_per_kwh():
    # 20 kWh x 0.25 = 5.00; incl 10 % VAT: 5.00 x 1.1 = 5.50
    s = at("2026-11-23 10:00")
    p = priced("tariff_8_simple_025kwh", [period(s, ENERGY="20", TIME="1")], s, s + minutes(60))
    assert p.total_cost == cost("5.0000", "5.5000")
    assert p.total_energy_cost == cost("5.0000", "5.5000")


def test_025_per_kwh_plus_start_fee():
    # start 0.50 (+20 % = 0.60) + 20 kWh x 0.25 = 5.00 (+10 % = 5.50): 5.50 excl, 6.10 incl
    s = at("2026-11-23 10:00")
    p = priced("tariff_9_025kwh_start", [period(s, ENERGY="20", TIME="1")], s, s + minutes(60))
    assert p.total_cost == cost("5.5000", "6.1000")
    assert p.total_fixed_cost == cost("0.5000", "0.6000")


@pytest.mark.parametrize(
    "kwh, excl, incl",
    [
        ("20", "5.0000", "5.5000"),  # 20 x 0.25 = 5.00, x 1.1 = 5.50: above the minimum
        ("1", "0.5000", "0.5500"),  # 1 x 0.25 = 0.25 (0.275 incl) < min 0.50 / 0.55: raised
    ],
)
def test_025_per_kwh_with_min_price(kwh, excl, incl):
    s = at("2026-11-23 10:00")
    p = priced("tariff_12_025kwh_min_price", [period(s, ENERGY=kwh, TIME="1")], s, s + minutes(60))
    assert p.total_cost == cost(excl, incl)
    # rule 8: the dimension total stays as computed
    assert p.total_energy_cost.excl_vat == D(kwh) * D("0.25")


def test_025_per_kwh_parking_and_start_fee():
    # 0.50 start (0.60) + 20 kWh x 0.25 = 5.00 (5.50) + parking 40 min -> 45 min (step 900 s)
    # = 0.75 h x 2.00 = 1.50 (1.80): 7.00 excl, 7.90 incl
    s = at("2026-11-23 10:00")
    periods = [period(s, ENERGY="20", TIME="2"), period(s + minutes(120), PARKING_TIME=str(D(40) / D(60)))]
    p = priced("tariff_10_025kwh_parking_start", periods, s, s + minutes(160))
    assert p.total_cost == cost("7.0000", "7.9000")
    assert p.total_parking_cost == cost("1.5000", "1.8000")


@pytest.mark.parametrize(
    "kwh, excl, incl",
    [
        # 0.50 + 50 x 0.25 = 13.00 excl, 0.60 + 13.75 = 14.35 incl: capped at 10.00 / 11.00
        ("50", "10.0000", "11.0000"),
        # 0.50 + 30 x 0.25 = 8.00 excl, 0.60 + 7.50 x 1.1 = 8.85 incl: below the cap
        ("30", "8.0000", "8.8500"),
    ],
)
def test_start_fee_and_max_price(kwh, excl, incl):
    s = at("2019-06-03 10:00")  # before the tariff's end date 2019-06-30
    p = priced("tariff_6_025kwh_start_max_price", [period(s, ENERGY=kwh, TIME="3")], s, s + minutes(180))
    assert p.total_cost == cost(excl, incl)
    assert p.findings == []


def test_simple_2_per_hour():
    # 2.5 h x 2.00 = 5.00, x 1.1 = 5.50 (step 60 s: 150 min is whole minutes)
    s = at("2026-11-23 10:00")
    p = priced("tariff_1_simple_2hour", [period(s, ENERGY="11", TIME="2.5")], s, s + minutes(150))
    assert p.total_cost == cost("5.0000", "5.5000")


def test_3_per_hour_and_5_per_hour_parking():
    # charging 2.5 h x 3.00 = 7.50 (x 1.1 = 8.25); parking 42 min -> 45 min (step 300 s)
    # = 0.75 h x 5.00 = 3.75 (x 1.2 = 4.50): 11.25 excl, 12.75 incl
    s = at("2026-11-23 10:00")
    periods = [period(s, ENERGY="11", TIME="2.5"), period(s + minutes(150), PARKING_TIME="0.7")]
    p = priced("tariff_13_simple_3hour_5parking", periods, s, s + minutes(192))
    assert p.total_cost == cost("11.2500", "12.7500")


def test_ad_hoc_alt_text_tariff_and_alt_text_kept():
    # 2.5 h x 1.90 = 4.75; incl 5.2 % VAT: 4.75 x 1.052 = 4.997 (the spec shows it as 5.00)
    s = at("2026-11-23 10:00")
    p = priced("tariff_2_alt_text", [period(s, TIME="2.5")], s, s + minutes(150))
    assert p.total_cost == cost("4.7500", "4.9970")
    assert [t.language for t in p.tariff_alt_text] == ["en", "nl"]


def test_alt_url_tariff_with_100_wh_steps():
    # 20.45 kWh billed per 100 Wh -> 20.5 kWh x 0.25 = 5.125 (x 1.1 = 5.6375);
    # start 0.50 (0.60): 5.625 excl, 6.2375 incl (the spec rounds to 5.63 / 6.24 for display)
    s = at("2026-11-23 10:00")
    p = priced("tariff_3_alt_url", [period(s, ENERGY="20.45", TIME="1")], s, s + minutes(60))
    assert p.total_energy_cost == cost("5.1250", "5.6375")
    assert p.total_cost == cost("5.6250", "6.2375")


def test_complex_tariff_monday_morning():
    # Monday 09:30 Berlin, 165 min charging at 16 A (< 32 A: 1.00/h, step 900 s), then 42 min
    # parking at 12:15-12:57 (weekday 09-18: 5.00/h, step 300 s).
    # flat 2.50 (15 %: 2.875); charging 2.75 h x 1.00 = 2.75 (20 %: 3.30), not rounded since
    # parking follows; parking 42 -> 45 min = 0.75 x 5.00 = 3.75 (10 %: 4.125)
    # total 9.00 excl, 2.875 + 3.30 + 4.125 = 10.30 incl
    s = at("2026-11-23 08:30")
    readings = [reading(s, "0", amps="16"), reading(s + minutes(165), "30", amps="0", charging=False)]
    p = price_session(readings, spec_tariff("tariff_4_complex"), time_zone=ZONE, session_start=s,
                      session_end=s + minutes(207))
    assert p.total_cost == cost("9.0000", "10.3000")
    assert p.total_time_cost == cost("2.7500", "3.3000")
    assert p.total_parking_cost == cost("3.7500", "4.1250")


def test_complex_tariff_saturday_afternoon_with_the_spec_error_corrected():
    # Saturday 13:30 Berlin, 114 min at 43 A (>= 32 A weekend: 1.25/h, step 600 s), then 71 min
    # parking 15:24-16:35 (Saturday 10-17: 6.00/h, step 300 s).
    # flat 2.50 (2.875); charging 1.9 h x 1.25 = 2.375 (x 1.2 = 2.85) -- the spec prints 2.28,
    # see ocpi-pricing.md; parking 71 -> 75 min = 1.25 h x 6 = 7.50 (x 1.1 = 8.25)
    # total 12.375 excl, 2.875 + 2.85 + 8.25 = 13.975 incl
    s = at("2026-11-28 12:30")
    readings = [reading(s, "0", amps="43"), reading(s + minutes(114), "20", amps="0", charging=False)]
    p = price_session(readings, spec_tariff("tariff_4_complex"), time_zone=ZONE, session_start=s,
                      session_end=s + minutes(185))
    assert p.total_time_cost == cost("2.3750", "2.8500")
    assert p.total_parking_cost == cost("7.5000", "8.2500")
    assert p.total_cost == cost("12.3750", "13.9750")


def test_free_of_charge_tariff_gives_zero_costs():
    # rule 11: FLAT 0.00 only -> every cost 0, no error
    s = at("2026-11-23 10:00")
    p = priced("tariff_5_free_of_charge", [period(s, ENERGY="20", TIME="1"), period(s + minutes(60), PARKING_TIME="1")],
               s, s + minutes(120))
    assert p.total_cost == cost("0", "0")
    assert p.total_energy == D("20")


def test_reservation_5_per_hour():
    # reservation 15 min x 5.00/h = 1.25 (x 1.2 = 1.50); start 0.50 (0.60); 20 kWh x 0.25 = 5.00
    # (5.50): 6.75 excl, 7.60 incl
    s = at("2026-11-23 10:00")
    periods = [period(s, RESERVATION_TIME="0.25"), period(s + minutes(15), ENERGY="20", TIME="1")]
    p = priced("tariff_15_reservation_5_euro_per_hour", periods, s, s + minutes(75))
    assert p.total_reservation_cost == cost("1.2500", "1.5000")
    assert p.total_cost == cost("6.7500", "7.6000")
    # rule 5: reservation time is not part of total_time
    assert p.total_time == D("1")


def test_reservation_fee_and_5_per_hour_billed_per_5_minutes():
    # fee 2.00 (2.40); 13 -> 15 min (step 300 s) x 5.00/h = 1.25 (1.50); start 0.50 (0.60);
    # 20 kWh x 0.25 = 5.00 (5.50): 8.75 excl, 10.00 incl
    s = at("2026-11-23 10:00")
    periods = [period(s, RESERVATION_TIME=str(D(13) / D(60))), period(s + minutes(13), ENERGY="20", TIME="1")]
    p = priced("tariff_16_reservation_2_euro_fee_5_euro_per_hour", periods, s, s + minutes(73))
    assert p.total_reservation_cost == cost("3.2500", "3.9000")
    assert p.total_fixed_cost == cost("0.5000", "0.6000")
    assert p.total_cost == cost("8.7500", "10.0000")


def test_reservation_with_expire_fee_used_and_expired():
    t = "tariff_17_reservation_with_expire_fee"
    s = at("2026-11-23 10:00")
    # used: 22 -> 30 min (step 600 s) x 2.00/h = 1.00 (1.20); 0.50 (0.60); 5.00 (5.50):
    # 6.50 excl, 7.30 incl; no expiry fee
    used = priced(t, [period(s, RESERVATION_TIME=str(D(22) / D(60))), period(s + minutes(22), ENERGY="20", TIME="1")],
                  s, s + minutes(82))
    assert used.total_cost == cost("6.5000", "7.3000")
    # expired after 1 h: fee 4.00 (4.80) + 1 h x 2.00 = 2.00 (2.40): 6.00 excl, 7.20 incl
    expired = priced(t, [period(s, RESERVATION_TIME="1")], s, s + minutes(60))
    assert expired.total_cost == cost("6.0000", "7.2000")
    assert expired.total_reservation_cost == cost("6.0000", "7.2000")


def test_reservation_with_expire_time_used_and_expired():
    t = "tariff_18_reservation_with_expire_time"
    s = at("2026-11-23 10:00")
    # used: 22 -> 30 min x 3.00/h = 1.50 (1.80); 0.50 (0.60); 5.00 (5.50): 7.00 / 7.90
    used = priced(t, [period(s, RESERVATION_TIME=str(D(22) / D(60))), period(s + minutes(22), ENERGY="20", TIME="1")],
                  s, s + minutes(82))
    assert used.total_cost == cost("7.0000", "7.9000")
    # expired after 1.5 h: the RESERVATION_EXPIRES time price 6.00/h: 9.00 (10.80)
    expired = priced(t, [period(s, RESERVATION_TIME="1.5")], s, s + minutes(90))
    assert expired.total_cost == cost("9.0000", "10.8000")


def _step_size_session(start_local_utc, charge_min, park_min):
    s = at(start_local_utc)
    readings = [reading(s, "0"), reading(s + minutes(charge_min), "5", charging=False)]
    return price_session(readings, spec_tariff("tariff_14_step_size"), time_zone=ZONE, session_start=s,
                         session_end=s + minutes(charge_min + park_min))


def test_step_size_switching_element_1():
    # 16:55 Berlin: 5 min x 1.20/h = 0.10, 5 min x 2.40/h = 0.20; parking 2 min -> 15 min
    # (step 900 s of the parking component) x 1.00/h = 0.25: total 0.55 (no VAT in the tariff)
    p = _step_size_session("2026-11-23 15:55", 10, 2)
    assert p.total_time_cost == cost("0.3000", "0.3000")
    assert p.total_parking_cost == cost("0.2500", "0.2500")
    assert p.total_cost == cost("0.5500", "0.5500")


def test_step_size_switching_element_2():
    # 16:35 Berlin, 35 min charging: 25 min x 1.20/h = 0.50 and 10 min x 2.40/h = 0.40; the
    # total 35 min is rounded up to 45 min (step 900 s of the last component, 2.40/h): 10 min
    # extra x 2.40/h = 0.40. 0.50 + 0.40 + 0.40 = 1.30
    p = _step_size_session("2026-11-23 15:35", 35, 0)
    assert p.total_cost == cost("1.3000", "1.3000")


def test_step_size_switching_to_free_element():
    # 19:40 Berlin: 12 min charging x 2.40/h = 0.48; parking 19:52-20:12, priced only until
    # 20:00 (8 min), rounded up to 15 min (step 900 s) x 1.00/h = 0.25. 0.48 + 0.25 = 0.73
    p = _step_size_session("2026-11-23 18:40", 12, 20)
    assert p.total_parking_cost == cost("0.2500", "0.2500")
    assert p.total_cost == cost("0.7300", "0.7300")
    assert p.total_parking_time == D("0.3333")  # 20 min, the free 12 minutes included


def test_max_power_restriction_example():
    # 1 kWh at 6 kW: 0.20; 40 kWh at 48 kW: fallback 0.50 -> 20.00; 0.5 kWh at 4 kW: 0.10.
    # 20.30 excl; incl 20 %: 24.36
    s = at("2026-11-23 10:00")
    periods = [
        period(s, ENERGY="1", TIME=str(D(10) / D(60)), MAX_POWER="6"),
        period(s + minutes(10), ENERGY="40", TIME="0.8333", MAX_POWER="48"),
        period(s + minutes(60), ENERGY="0.5", TIME="0.125", MAX_POWER="4"),
    ]
    p = priced("tariffrestriction_example_max_power", periods, s, s + minutes(67.5))
    assert p.total_cost == cost("20.3000", "24.3600")


def test_max_duration_restriction_example():
    # 40 min session: 5 kWh in the first 30 min (free), 1.2 kWh after (30 <= 40 < 60 min:
    # 0.25/kWh) = 0.30 excl, 0.36 incl (20 %)
    s = at("2026-11-23 10:00")
    readings = [reading(s, "0"), reading(s + minutes(30), "5"), reading(s + minutes(40), "6.2")]
    p = price_session(readings, spec_tariff("tariffrestriction_example_max_duration"), time_zone=ZONE,
                      session_start=s, session_end=s + minutes(40))
    assert p.total_cost == cost("0.3000", "0.3600")


def test_cdrs_step_size_energy_over_a_price_change():
    # mod_cdrs step_size: 0.20/kWh before 17:00, 0.27 after, both step 500 Wh; 4.3 + 1.1 kWh =
    # 5.4 -> 5.5 kWh; the extra 0.1 kWh at the last price 0.27.
    # 4.3 x 0.20 = 0.86; 1.1 x 0.27 = 0.297; 0.1 x 0.27 = 0.027: 1.184
    t = tariff(
        element(component("ENERGY", "0.20", 500), end_time="17:00"),
        element(component("ENERGY", "0.27", 500)),
    )
    s = at("2026-11-23 15:00")  # 16:00 Berlin
    periods = [period(s, ENERGY="4.3", TIME="1"), period(s + minutes(60), ENERGY="1.1", TIME="0.5")]
    p = price_periods(periods, t, time_zone=ZONE, session_start=s, session_end=s + minutes(90))
    assert p.total_energy_cost == cost("1.1840", "1.1840")


def test_cdrs_step_size_time_over_a_price_change():
    # 5.00/h before 17:00, 7.00/h after, step 600 s: 6 + 22 = 28 min -> 30 min; so 24 min after
    # 17:00 are billed: 6 min x 5/h = 0.50; 24 min x 7/h = 2.80: 3.30
    t = tariff(
        element(component("TIME", "5.00", 600), end_time="17:00"),
        element(component("TIME", "7.00", 600)),
    )
    s = at("2026-11-23 15:54")  # 16:54 Berlin
    periods = [period(s, TIME="0.1"), period(s + minutes(6), TIME=str(D(22) / D(60)))]
    p = price_periods(periods, t, time_zone=ZONE, session_start=s, session_end=s + minutes(28))
    assert p.total_time_cost == cost("3.3000", "3.3000")


def test_cdrs_step_size_only_parking_rounded_when_both_used():
    # charging 1.00/h, parking 2.00/h, both step 600 s: 21 min charging (not rounded) = 0.35;
    # 16 min parking -> 20 min = 0.6667 (2/3 x 1.00): total 0.35 + 0.666666... = 1.0167
    t = tariff(element(component("TIME", "1.00", 600), component("PARKING_TIME", "2.00", 600)))
    s = at("2026-11-23 10:00")
    periods = [period(s, TIME="0.35"), period(s + minutes(21), PARKING_TIME=str(D(16) / D(60)))]
    p = price_periods(periods, t, time_zone=ZONE, session_start=s, session_end=s + minutes(37))
    assert p.total_time_cost == cost("0.3500", "0.3500")
    assert p.total_parking_cost == cost("0.6667", "0.6667")
    assert p.total_cost == cost("1.0167", "1.0167")


@pytest.mark.parametrize(
    "step, excl",
    [
        (1, "0.0290"),  # 115.2 Wh -> 116 Wh x 0.25/kWh = 0.029
        (25, "0.0313"),  # -> 125 Wh x 0.25 = 0.03125 -> 0.0313 (ROUND_HALF_UP; the spec shows 0.031)
        (500, "0.1250"),  # -> 500 Wh x 0.25 = 0.125
    ],
)
def test_energy_step_size_examples_of_price_component(step, excl):
    t = tariff(element(component("ENERGY", "0.25", step)))
    s = at("2026-11-23 10:00")
    p = price_periods([period(s, ENERGY="0.1152", TIME="0.1")], t, time_zone=ZONE, session_start=s,
                      session_end=s + minutes(6))
    assert p.total_cost.excl_vat == D(excl)


def test_spec_cdr_example_reprices_to_its_own_totals():
    # TIME 1.973 h at 2.00/h, step 300 s: 7102.8 s -> 7200 s = 2 h x 2.00 = 4.00; x 1.1 = 4.40
    cdr = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text())
    p = reprice_cdr(cdr, cdr.tariffs[0], time_zone="Europe/Brussels")
    assert p.total_cost == cost("4.0000", "4.4000")
    assert p.total_time_cost == cost("4.0000", "4.4000")
