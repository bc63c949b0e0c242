"""pricing/cdr.py build_cdr (issue 4 speed work) gives the CDR the code before it gave: the
Cdr validated from the same fields (not ``Cdr(**fields)``), the periods rounded for the CDR
by ``_cdr_period`` instead of ``engine.cdr_period`` (model_copy). Compared on generated
periods and sessions: equal models, the same OCPI JSON (so the same Decimal
representations), the same fields set, the same ``__dict__`` key order, the same errors.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing import price_periods
from pricing.cdr import _cdr_period, build_cdr
from pricing.engine import cdr_period
from schemas.ocpi import AuthMethod, Cdr, CdrDimension, CdrDimensionType, ChargingPeriod, Tariff
from pricing_support import FIXTURES

D = Decimal
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UTC = timezone.utc

small_volumes = st.one_of(
    st.sampled_from([D("0"), D("0E-9"), D("1.2345"), D("1.00000"), D("12.3456789"), D("5E-7"), D("14.080"),
                     D("0.066666666666666666666666666666666666667")]),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=0, max_value=100),
)
volumes = st.one_of(
    st.sampled_from([D("0"), D("0E-9"), D("-0"), D("1.2345"), D("1.23450"), D("1.00000"), D("12.3456789"),
                     D("1E+3"), D("5E-7"), D("0.066666666666666666666666666666666666667"), D("-0.25"),
                     D("14.080"), D("99999999999.99995"), D("0.00005"), D("-0.00005")]),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-1000, max_value=1000),
    st.decimals(allow_nan=False, allow_infinity=False),
)


@st.composite
def periods(draw, volumes=volumes):
    dims = [CdrDimension(type=draw(st.sampled_from(list(CdrDimensionType))), volume=draw(volumes))
            for _ in range(draw(st.integers(1, 6)))]
    start = datetime(2026, 5, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 10**6)))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return ChargingPeriod(start_date_time=start, dimensions=dims)  # no tariff_id: not in the fields set
    if kind == 1:
        return ChargingPeriod(start_date_time=start, dimensions=dims, tariff_id="T-1")
    if kind == 2:  # built without validation, as a caller of price_periods may
        return ChargingPeriod.model_construct(start_date_time=start, dimensions=tuple(dims))
    return ChargingPeriod(start_date_time=start, dimensions=dims, tariff_id=None).model_copy(update={"tariff_id": "X"})


def same_models(a, b):
    assert type(a) is type(b)
    assert a == b
    assert list(a.__dict__) == list(b.__dict__)
    assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__
    assert a.__pydantic_extra__ == b.__pydantic_extra__
    assert a.__pydantic_private__ == b.__pydantic_private__


@SETTINGS
@given(periods())
def test_cdr_period_same_as_the_engines(period):
    try:
        expected = cdr_period(period)
    except Exception as exc:  # noqa: BLE001 - a volume too large for 4 decimals: the same error
        with pytest.raises(type(exc)):
            _cdr_period(period)
        return
    got = _cdr_period(period)
    same_models(got, expected)
    assert got.model_dump_json() == expected.model_dump_json()
    assert list(got.dimensions) == list(expected.dimensions)
    for a, b in zip(got.dimensions, expected.dimensions):
        same_models(a, b)
        assert str(a.volume) == str(b.volume)
    if expected is period:
        assert got is period  # nothing to round: the period itself


def test_odd_dimensions_take_the_engines_way():
    start = datetime(2026, 5, 1, tzinfo=UTC)
    # a dimension built without its volume in the fields set, and a dimension subclass
    bare = CdrDimension.model_construct(type=CdrDimensionType.TIME, volume=D("1"), _fields_set={"type"})
    long = CdrDimension(type=CdrDimensionType.ENERGY, volume=D("1.234567"))

    class MyDimension(CdrDimension):
        pass

    for dims in ([bare, long], [long, bare], [MyDimension(type=CdrDimensionType.ENERGY, volume=D("2.123456"))]):
        period = ChargingPeriod(start_date_time=start, dimensions=dims)
        got, expected = _cdr_period(period), cdr_period(period)
        same_models(got, expected)
        for a, b in zip(got.dimensions, expected.dimensions):
            same_models(a, b)
    # a NaN volume (possible only without validation): the same error
    nan = ChargingPeriod.model_construct(start_date_time=start, dimensions=[
        CdrDimension.model_construct(type=CdrDimensionType.ENERGY, volume=D("NaN"))])
    with pytest.raises(TypeError):
        cdr_period(nan)
    with pytest.raises(TypeError):
        _cdr_period(nan)


def reference_build_cdr(priced, *, tariff, credit=False, remark=None, credit_reference_id=None, **fields):
    """build_cdr as it was before the speed work."""
    return Cdr(
        currency=priced.currency,
        tariffs=[tariff],
        charging_periods=[cdr_period(p) for p in priced.charging_periods],
        remark=remark,
        credit=True if credit else None,
        credit_reference_id=credit_reference_id,
        **fields,
        **priced.totals(),
    )


EXAMPLE = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text())
TARIFF = Tariff.model_validate({
    "country_code": "NL", "party_id": "CLG", "id": "T", "currency": "EUR", "last_updated": "2026-01-01T00:00:00Z",
    "elements": [{"price_components": [{"type": "FLAT", "price": D("0.50"), "vat": 21, "step_size": 1}]},
                 {"price_components": [{"type": "ENERGY", "price": D("0.35"), "vat": D("21.0"), "step_size": 1},
                                       {"type": "TIME", "price": D("1.20"), "step_size": 300}]},
                 {"price_components": [{"type": "PARKING_TIME", "price": 6, "step_size": 60}]}]})


@SETTINGS
@given(st.lists(periods(small_volumes), min_size=1, max_size=4), st.booleans(), st.sampled_from([None, "late events"]),
       st.sampled_from(["CDR-1"] * 6 + ["X" * 39, "X" * 40, "bad\u00e9id"]), st.sampled_from(["CLG", "CL"]))
def test_build_cdr_same_as_before(given_periods, credit, remark, cdr_id, party_id):
    start = datetime(2026, 5, 1, tzinfo=UTC)
    try:
        priced = price_periods(given_periods, TARIFF, time_zone="Europe/Amsterdam", session_start=start,
                               session_end=start + timedelta(days=30))
    except Exception:  # noqa: BLE001 - not this test's subject
        return
    fields = dict(id=cdr_id, country_code="NL", party_id=party_id, session_id="S-1", start_date_time=start,
                  end_date_time=start + timedelta(days=30), cdr_token=EXAMPLE.cdr_token,
                  auth_method=AuthMethod.AUTH_REQUEST, cdr_location=EXAMPLE.cdr_location,
                  last_updated=start + timedelta(days=31))
    try:
        expected = reference_build_cdr(priced, tariff=TARIFF, credit=credit, remark=remark,
                                       credit_reference_id="CDR-0" if credit else None, **fields)
    except Exception as exc:  # noqa: BLE001 - the same error below
        with pytest.raises(type(exc)) as raised:
            build_cdr(priced, tariff=TARIFF, credit=credit, remark=remark,
                      credit_reference_id="CDR-0" if credit else None, **fields)
        assert str(raised.value) == str(exc)
        return
    got = build_cdr(priced, tariff=TARIFF, credit=credit, remark=remark,
                    credit_reference_id="CDR-0" if credit else None, **fields)
    same_models(got, expected)
    assert got.model_dump_json() == expected.model_dump_json()
    for a, b in zip(got.charging_periods, expected.charging_periods):
        same_models(a, b)
        for x, y in zip(a.dimensions, b.dimensions):
            same_models(x, y)
