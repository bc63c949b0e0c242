"""Invariants of the engine, checked on generated tariffs and sessions (hypothesis).

Issue item 7: no negative cost; total = sum of the dimension costs before min/max;
incl >= excl; more energy never costs less under an energy-only tariff; splitting a period
where no boundary lies leaves the price unchanged; the same input gives the same output.
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal, localcontext

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pricing import price_periods, price_session
from pricing.engine import GROUPS, PRECISION, cdr_amount
from pricing.periods import time_of_day_boundaries
from pricing.restrictions import compile_tariff, zone_for
from schemas.ocpi import CdrDimension, CdrDimensionType, ChargingPeriod, Tariff
from pricing_support import reading

ZONE = "Europe/Amsterdam"
D = Decimal
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

prices = st.decimals(min_value=0, max_value=10, places=3)
vats = st.one_of(st.none(), st.sampled_from([D("0"), D("5.2"), D("10"), D("21")]))
hhmm = st.sampled_from(["00:00", "06:00", "07:30", "09:00", "12:00", "17:00", "18:00", "22:00"])
days = st.lists(st.sampled_from(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]),
                min_size=1, max_size=7, unique=True)


@st.composite
def restrictions(draw, *, quantities: bool):
    r = {}
    if draw(st.booleans()):
        r["start_time"] = draw(hhmm)
    if draw(st.booleans()):
        r["end_time"] = draw(hhmm)
    if draw(st.booleans()):
        r["day_of_week"] = draw(days)
    if quantities:
        if draw(st.booleans()):
            r["min_kwh"] = draw(st.decimals(min_value=0, max_value=40, places=1))
        if draw(st.booleans()):
            r["max_power"] = draw(st.decimals(min_value=1, max_value=50, places=1))
        if draw(st.booleans()):
            r["max_duration"] = draw(st.integers(min_value=60, max_value=20000))
    return r or None


def components(types, no_steps=False):
    steps = {"ENERGY": [0, 1, 100, 500], "TIME": [0, 1, 60, 300, 900], "PARKING_TIME": [0, 1, 60, 300, 900], "FLAT": [0, 1]}
    return st.lists(
        st.sampled_from(types).flatmap(
            lambda t: st.builds(lambda p, v, s: {"type": t, "price": p, "vat": v, "step_size": s},
                                prices, vats, st.sampled_from([0] if no_steps else steps[t]))
        ),
        min_size=1, max_size=3,
    )


@st.composite
def tariffs(draw, types=("ENERGY", "TIME", "PARKING_TIME", "FLAT"), quantities=True, min_max=True, no_steps=False):
    elements = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        el = {"price_components": [{k: v for k, v in c.items() if v is not None} for c in draw(components(list(types), no_steps))]}
        r = draw(restrictions(quantities=quantities))
        if r:
            el["restrictions"] = r
        elements.append(el)
    data = {"country_code": "NL", "party_id": "CLG", "id": "P", "currency": "EUR", "elements": elements,
            "last_updated": "2026-01-01T00:00:00Z"}
    if min_max and draw(st.booleans()):
        lo = draw(prices)
        data["min_price"] = {"excl_vat": lo, "incl_vat": lo * D("1.21")}
    if min_max and draw(st.booleans()):
        hi = draw(st.decimals(min_value=5, max_value=200, places=2))
        data["max_price"] = {"excl_vat": hi, "incl_vat": hi * D("1.21")}
    return Tariff.model_validate(data)


starts = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=timezone.utc))


@st.composite
def sessions(draw):
    """(start, end, periods): 1-6 periods of whole minutes, charging or parking."""
    start = draw(starts)
    t = start
    periods = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        minutes = draw(st.integers(min_value=1, max_value=240))
        hours = D(minutes) / D(60)
        if draw(st.booleans()):
            dims = [CdrDimension(type=CdrDimensionType.ENERGY, volume=draw(st.decimals(min_value=0, max_value=60, places=3))),
                    CdrDimension(type=CdrDimensionType.TIME, volume=hours)]
            if draw(st.booleans()):
                dims.append(CdrDimension(type=CdrDimensionType.MAX_POWER, volume=draw(st.decimals(min_value=1, max_value=150, places=1))))
        else:
            dims = [CdrDimension(type=CdrDimensionType.PARKING_TIME, volume=hours)]
        periods.append(ChargingPeriod(start_date_time=t, dimensions=dims))
        t += timedelta(minutes=minutes)
    return start, t, periods


def price(tariff, session):
    start, end, periods = session
    return price_periods(periods, tariff, time_zone=ZONE, session_start=start, session_end=end)


def all_prices(p):
    return [p.total_cost, p.total_fixed_cost, p.total_energy_cost, p.total_time_cost, p.total_parking_cost,
            p.total_reservation_cost]


@SETTINGS
@given(tariffs(), sessions())
def test_no_negative_cost_and_incl_at_least_excl(tariff, session):
    p = price(tariff, session)
    for total in all_prices(p):
        assert total.excl_vat >= 0
        assert total.incl_vat >= total.excl_vat
    for line in p.lines:
        if line.kind in ("period", "step_size"):
            assert line.excl_vat >= 0 and line.incl_vat >= line.excl_vat


@SETTINGS
@given(tariffs(min_max=False), sessions())
def test_total_is_the_sum_of_the_dimension_costs_before_min_max(tariff, session):
    p = price(tariff, session)
    with localcontext() as ctx:
        ctx.prec = PRECISION  # the engine's working precision
        excl = sum(p.exact[g][0] for g in GROUPS)
        incl = sum(p.exact[g][1] for g in GROUPS)
    assert p.exact["before_min_max"] == (excl, incl)
    assert p.total_cost.excl_vat == cdr_amount(excl) and p.total_cost.incl_vat == cdr_amount(incl)


@SETTINGS
@given(tariffs(), sessions())
def test_min_max_bound_the_total(tariff, session):
    p = price(tariff, session)
    if tariff.min_price is not None and tariff.max_price is None:
        assert p.total_cost.excl_vat >= cdr_amount(tariff.min_price.excl_vat)
    if tariff.max_price is not None:
        assert p.total_cost.excl_vat <= cdr_amount(tariff.max_price.excl_vat)


@SETTINGS
@given(tariffs(types=("ENERGY",), quantities=False, no_steps=True), sessions(), st.data())
def test_more_energy_never_costs_less_under_an_energy_only_tariff(tariff, session, data):
    # Without step_size. With it, rule 6 (the spec's "step_size of the last component")
    # can make more energy cheaper: see test_pricing_rules
    # test_rule6_more_energy_can_cost_less_when_the_last_component_is_cheaper.
    start, end, periods = session
    i = data.draw(st.integers(min_value=0, max_value=len(periods) - 1))
    extra = data.draw(st.decimals(min_value=0, max_value=20, places=3))
    dims = list(periods[i].dimensions)
    if any(d.type is CdrDimensionType.ENERGY for d in dims):
        dims = [d.model_copy(update={"volume": d.volume + extra}) if d.type is CdrDimensionType.ENERGY else d for d in dims]
    else:
        dims.append(CdrDimension(type=CdrDimensionType.ENERGY, volume=extra))
    more = periods[:i] + [periods[i].model_copy(update={"dimensions": dims})] + periods[i + 1:]
    base = price(tariff, session)
    bigger = price(tariff, (start, end, more))
    assert bigger.total_cost.excl_vat >= base.total_cost.excl_vat
    assert bigger.total_cost.incl_vat >= base.total_cost.incl_vat


def _half(period: ChargingPeriod) -> list[ChargingPeriod]:
    dims = [d.model_copy(update={"volume": d.volume / 2}) for d in period.dimensions
            if d.type in (CdrDimensionType.ENERGY, CdrDimensionType.TIME, CdrDimensionType.PARKING_TIME)]
    rest = [d for d in period.dimensions if d not in dims and d.type not in
            (CdrDimensionType.ENERGY, CdrDimensionType.TIME, CdrDimensionType.PARKING_TIME)]
    return dims, rest


@SETTINGS
@given(tariffs(quantities=False), sessions(), st.data())
def test_splitting_a_period_where_no_boundary_lies_leaves_the_price_unchanged(tariff, session, data):
    start, end, periods = session
    i = data.draw(st.integers(min_value=0, max_value=len(periods) - 1))
    a = periods[i].start_date_time
    b = periods[i + 1].start_date_time if i + 1 < len(periods) else end
    middle = a + (b - a) / 2
    bounds = time_of_day_boundaries(compile_tariff(tariff), zone_for(ZONE), a - timedelta(seconds=1), middle + timedelta(seconds=1))
    assume(not any(a < t <= middle for t in bounds))
    halves = [d.model_copy(update={"volume": d.volume / 2}) for d in periods[i].dimensions]
    first = periods[i].model_copy(update={"dimensions": halves})
    second = ChargingPeriod(start_date_time=middle, dimensions=halves)
    split = periods[:i] + [first, second] + periods[i + 1:]
    whole = price(tariff, session)
    parts = price(tariff, (start, end, split))
    assert parts.total_cost == whole.total_cost
    assert parts.totals() == whole.totals()


@SETTINGS
@given(tariffs(), sessions())
def test_same_input_same_output(tariff, session):
    assert price(tariff, session).to_json() == price(tariff, session).to_json()


@SETTINGS
@given(tariffs(), starts, st.lists(st.tuples(st.integers(min_value=1, max_value=90),
                                             st.decimals(min_value=0, max_value=30, places=2),
                                             st.booleans()), min_size=1, max_size=8))
def test_periods_from_readings_cover_the_session_and_keep_the_energy(tariff, start, steps):
    # the periods start at the session start, are ordered, their time adds up to the session
    # length and their energy to the last reading
    t, energy, readings = start, D(0), [reading(start, "0")]
    for minutes, kwh, charging in steps:
        t += timedelta(minutes=minutes)
        energy += kwh
        readings.append(reading(t, str(energy), charging=charging))
    p = price_session(readings, tariff, time_zone=ZONE, session_start=start, session_end=t)
    assert p.charging_periods[0].start_date_time == start
    starts_ = [cp.start_date_time for cp in p.charging_periods]
    assert starts_ == sorted(starts_) and len(set(starts_)) == len(starts_)
    hours = sum((cp.volume(CdrDimensionType.TIME) or 0) + (cp.volume(CdrDimensionType.PARKING_TIME) or 0)
                for cp in p.charging_periods)
    assert abs(hours * 3600 - D((t - start).total_seconds())) < D("0.000001")
    assert sum(cp.volume(CdrDimensionType.ENERGY) for cp in p.charging_periods) == energy


@SETTINGS
@given(tariffs(), st.lists(st.tuples(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
    st.decimals(min_value=0, max_value=60, places=2),
    st.integers(min_value=0, max_value=30000),
    st.one_of(st.none(), st.decimals(min_value=0, max_value=150, places=1)),
), min_size=1, max_size=20))
def test_remembered_selection_equals_rule_1_evaluated_afresh(tariff, contexts):
    # session_selection caches per bucket between the tariff's thresholds; it must give
    # exactly what active_element_for gives for every dimension
    from pricing.restrictions import PeriodContext, active_element_for, session_selection
    from schemas.ocpi import TariffDimensionType as T

    compiled = compile_tariff(tariff)
    zone = zone_for(ZONE)
    for when, kwh, seconds, power in contexts:
        ctx = PeriodContext(when.replace(tzinfo=timezone.utc).astimezone(zone), kwh, D(seconds), power, None)
        expected = tuple(active_element_for(d, compiled, ctx) for d in (T.ENERGY, T.TIME, T.PARKING_TIME, T.FLAT))
        assert session_selection(compiled, ctx) == expected
        assert session_selection(compiled, ctx) == expected  # from the cache
