"""Shortcuts on the CDR path of the worker (issue 4 speed work) against the code they stand
for: the tariff version pick of ``streams.billing`` (``_TariffVersions``) against
``storage.repositories.pick_tariff_version``, and ``pricing.cdr._more_than_4_decimals``
against ``engine.cdr_number``'s test ``value.as_tuple().exponent < -4``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal, localcontext
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing.cdr import _more_than_4_decimals
from storage.repositories import pick_tariff_version
from streams.billing import _TariffVersions

UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _instants(draw_hours):
    return st.integers(0, draw_hours).map(lambda h: T0 + timedelta(hours=h))


@st.composite
def versions(draw, windows: bool):
    out = []
    for n in range(draw(st.integers(0, 6))):
        valid_from = valid_to = None
        if windows and draw(st.booleans()):
            valid_from = draw(st.none() | _instants(40))
            valid_to = draw(st.none() | _instants(40))
        # few distinct last_updated values: ties are part of the case
        out.append(SimpleNamespace(id=f"T{n % 2}", last_updated=draw(_instants(6)), valid_from=valid_from,
                                   valid_to=valid_to, tariff_json="{}"))
    return out


@settings(max_examples=400, deadline=None)
@given(st.booleans().flatmap(versions), _instants(40), st.none() | _instants(8))
def test_tariff_version_pick_same_as_the_repository(found, at, known_at):
    expected = pick_tariff_version(found, at, known_at=known_at)
    record, key = _TariffVersions(found).pick(at, known_at)
    assert record is expected
    assert key == (None if expected is None else (expected.id, expected.last_updated))


def test_tariff_version_pick_without_windows_bisects():
    v1 = SimpleNamespace(id="T", last_updated=T0, valid_from=None, valid_to=None)
    v2 = SimpleNamespace(id="T", last_updated=T0 + timedelta(days=2), valid_from=None, valid_to=None)
    v2b = SimpleNamespace(id="T", last_updated=T0 + timedelta(days=2), valid_from=None, valid_to=None)
    picker = _TariffVersions([v2, v1, v2b])
    assert picker.sorted == [v1, v2, v2b]  # sorted by last_updated, ties in query order
    assert picker.pick(T0, T0 - timedelta(days=1))[0] is v1  # nothing published yet: the first
    assert picker.pick(T0, T0 + timedelta(days=1))[0] is v1
    assert picker.pick(T0, T0 + timedelta(days=2))[0] is v2b  # the last of the ties
    assert picker.pick(T0, None)[0] is v2b
    assert _TariffVersions([]).pick(T0, T0) == (None, None)


decimals = st.one_of(
    st.decimals(),  # every form: exponents, -0, NaN, sNaN, infinities
    st.decimals(allow_nan=False, allow_infinity=False, places=6),
    st.sampled_from([Decimal("0"), Decimal("0E-9"), Decimal("-0.00000"), Decimal("1.2345"), Decimal("1.23450"),
                     Decimal("1E+3"), Decimal("5E-7"), Decimal("0.000001"), Decimal("0.0000001"),
                     Decimal("12345678901234567890.12345"), Decimal("0.066666666666666666666666666666666666667")]),
    st.tuples(st.integers(-10**12, 10**12), st.integers(-12, 3)).map(lambda t: Decimal(t[0]).scaleb(t[1])),
)


def _reference(value: Decimal):
    try:
        return value.as_tuple().exponent < -4  # type: ignore[operator]
    except TypeError as exc:  # NaN: exponent "n" / "N", infinity "F"
        return type(exc)


def _ours(value: Decimal):
    try:
        return _more_than_4_decimals(value)
    except TypeError as exc:
        return type(exc)


@settings(max_examples=600, deadline=None)
@given(decimals, st.booleans())
def test_more_than_4_decimals_same_as_the_exponent_test(value, lower_case_exponent):
    with localcontext() as ctx:
        if lower_case_exponent:
            ctx.capitals = 0  # str() writes "1e-7"
        assert _ours(value) == _reference(value)


@pytest.mark.parametrize("text, expected", [("0.6", False), ("0.6000", False), ("0.60000", True), ("4.950", False),
                                            ("1E-4", False), ("1E-5", True), ("1E+2", False), ("7", False)])
def test_more_than_4_decimals_examples(text, expected):
    assert _more_than_4_decimals(Decimal(text)) is expected
