"""The CDR row made from plain data (streams.cdrs.session_cdr_row: pricing.engine.price_rows
over the period rows of pricing.periods.period_rows_from_readings, the JSON written by
pricing.cdr.cdr_json_from_rows) is the row of the models' path (session_cdr -> Billing._cdr_rows:
ChargingPeriods, Prices, the validated Cdr and its model_dump_json), byte for byte, over
random sessions (readings in several offsets, microseconds, missing energy / power /
current, parking, zero-length sessions), random tariffs (every restriction, prices with
and without VAT, step sizes, min/max price, validity) and random ids, tokens and remarks:
the same keys in the same order, equal values of the same types (Decimals with the same
text, datetimes with the same offset), the same JSON; the same error when the models'
path fails, or None (the pipeline then takes the models' path).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_periods_fastpath import ZONES, restrictions, sessions

import streams.cdrs as cdrs
from chargeledger.settings import get_settings
from pricing import price_periods
from pricing.engine import _RESULT_FIELDS, price_rows
from pricing.periods import charging_periods_from_readings, period_rows_from_readings
from schemas.ocpi import Price, Tariff
from sessions import CompletedSession
from streams.billing import Billing
from streams.tariffs import sample_tariff_json

D = Decimal
UTC = timezone.utc
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

prices = st.one_of(st.sampled_from([D("0"), D("0.25"), D("0.35"), D("6.00"), D("0.5"), D("1E+1"), D("0.123456")]),
                   st.decimals(min_value=0, max_value=50, places=4))


@st.composite
def tariffs(draw):
    elements = []
    for _ in range(draw(st.integers(1, 5))):
        types = draw(st.lists(st.sampled_from(["ENERGY", "TIME", "PARKING_TIME", "FLAT"]), min_size=1, max_size=3))
        components = []
        for t in types:
            c = {"type": t, "price": draw(prices), "step_size": draw(st.sampled_from([0, 1, 60, 300, 1000]))}
            vat = draw(st.sampled_from([None, D("21"), D("21.0"), D("5.5"), D("0")]))
            if vat is not None:
                c["vat"] = vat
            components.append(c)
        el = {"price_components": components}
        r = draw(restrictions())
        if r:
            el["restrictions"] = r
        elements.append(el)
    fields = {"country_code": "NL", "party_id": "CLG", "currency": draw(st.sampled_from(["EUR", "CHF"])),
              "id": draw(st.sampled_from(["T", "TARIFF-2", "X" * 36])), "elements": elements,
              "last_updated": "2026-01-01T00:00:00Z"}
    if draw(st.booleans()):
        fields["min_price"] = {"excl_vat": draw(prices)}
    if draw(st.booleans()):
        fields["max_price"] = {"excl_vat": draw(prices), "incl_vat": draw(prices)}
    if draw(st.integers(0, 4)) == 0:
        fields["start_date_time"] = "2026-06-01T00:00:00Z"
    if draw(st.integers(0, 4)) == 0:
        fields["tariff_alt_text"] = [{"language": "en", "text": "a \"quoted\" text, ünïcode"}]
    return Tariff.model_validate(fields)


REMARKS = [(), ("stop matched",), ("é" * 100, "x" * 200), ("a\\b \"c\"\n",), ("r",) * 80]
ID_TAGS = [None, "", "NLTNMC00012345", "FREVPC86878803", "local-card", "x" * 40, "deabc123"]


@st.composite
def completed(draw):
    start, end, readings = draw(sessions())
    cp = draw(st.sampled_from(["CP-1", "W0012-V2"] * 8 + ["cp/ü"]))  # (not printable ASCII: refused)
    tx = draw(st.sampled_from(["1", "dc45d803-091d-43b4-860c-c4fe19e79b84"]))
    version = draw(st.sampled_from([0, 0, 1, 3]))
    return CompletedSession(
        session_id=f"{cp}/{tx}", charge_point_id=cp, transaction_id=tx, ocpp_version="2.0.1",
        ocpi_session_id=draw(st.sampled_from(["T65UNITIDI7MHY3VDD4QJXNHPJI"] * 8 + ["T" * 36, "T" * 37])),
        connector_id=draw(st.sampled_from([None, 1, 2])), evse_id=draw(st.sampled_from([None, 1, 3])),
        id_tag=draw(st.sampled_from(ID_TAGS)), start=start, end=end, readings=tuple(sorted(readings, key=lambda r: r.timestamp)),
        total_energy_kwh=D("1.5"), incomplete=draw(st.booleans()), stop_reason=None, flags=(),
        remarks=draw(st.sampled_from(REMARKS)),
        issued_at=end + timedelta(seconds=draw(st.sampled_from([0, 1, 3600])),
                                  microseconds=draw(st.sampled_from([0, 87000, 1]))),
        version=version,
        cdr_id=draw(st.sampled_from(["S65UNITIDI7MHY3VDD4QJXNHPJI", f"S65UNITIDI7MHY3VDD4QJXNHPJI-R{version}"] * 8
                                    + ["S" * 39, "S" * 40, "S\u00e9", "S\x7f", "S x"])),
    )


def _settings(zone: str, party: tuple[str, str]):
    return get_settings().model_copy(update={"location_time_zone": zone, "country_code": party[0],
                                             "party_id": party[1]})


def _same_value(a, b) -> None:
    assert type(a) is type(b)
    assert a == b
    if isinstance(a, Decimal):
        assert str(a) == str(b)
    if isinstance(a, datetime):
        assert a.utcoffset() == b.utcoffset() and type(a.tzinfo) is type(b.tzinfo)


def _models_row(session, tariff, settings_):
    return Billing._cdr_rows(session, [cdrs.session_cdr(session, tariff, settings_)])[0]


def _compare(session, tariff, settings_) -> bool:
    """True when the plain path made the row (else it left it to the models)."""
    try:
        expected = _models_row(session, tariff, settings_)
    except Exception as exc:  # noqa: BLE001 - the plain path: the same error, or None
        try:
            got = cdrs.session_cdr_row(session, tariff, settings_)
        except Exception as plain_exc:  # noqa: BLE001
            assert (type(plain_exc), str(plain_exc)) == (type(exc), str(exc))
            return False
        assert got is None
        return False
    got = cdrs.session_cdr_row(session, tariff, settings_)
    if got is None:
        return False
    assert list(got) == list(expected)
    for key in expected:
        _same_value(got[key], expected[key])
    return True


@SETTINGS
@given(completed(), tariffs(), st.sampled_from(ZONES), st.sampled_from([("NL", "CLG"), ("DE", "ABC"), ("N", "X")]))
def test_the_plain_row_is_the_models_row(session, tariff, zone, party):
    _compare(session, tariff, _settings(zone, party))


@SETTINGS
@given(completed(), st.sampled_from(ZONES))
def test_the_plain_row_is_the_models_row_with_the_sample_tariff(session, zone):
    _compare(session, Tariff.model_validate_json(sample_tariff_json()), _settings(zone, ("NL", "CLG")))


@pytest.mark.parametrize("party", [("NLX", "CLG"), ("NL", "CLGX"), ("N\u00e9", "CLG"), ("NL", "C\x7fG")])
def test_values_validation_would_refuse_are_left_to_the_models(party):
    # country_code CiString(2), party_id CiString(3): build_cdr's validation fails; the
    # plain path does not write a CDR the models would refuse
    # (an EVSE id the party makes unprintable fails the CdrLocation first, in both paths)
    session = _plain_session()
    tariff = Tariff.model_validate_json(sample_tariff_json())
    try:
        assert cdrs.session_cdr_row(session, tariff, _settings("Europe/Amsterdam", party)) is None
    except ValueError as exc:
        assert "CdrLocation" in str(exc)
    with pytest.raises(ValueError):
        _models_row(session, tariff, _settings("Europe/Amsterdam", party))


def _plain_session() -> CompletedSession:
    from schemas.readings import MeterReading

    t0 = datetime(2026, 3, 2, 7, 55, tzinfo=UTC)
    readings = (MeterReading(timestamp=t0, energy_kwh=D(0), charging=True),
                MeterReading(timestamp=t0 + timedelta(minutes=15), energy_kwh=D("5.335"), power_kw=D("21.340"),
                             charging=True),
                MeterReading(timestamp=t0 + timedelta(minutes=30), energy_kwh=D("10.670"), charging=False))
    return CompletedSession(
        session_id="W/1", charge_point_id="W", transaction_id="1", ocpp_version="2.0.1",
        ocpi_session_id="T65UNITIDI7MHY3VDD4QJXNHPJI", connector_id=1, evse_id=1, id_tag="FREVPC86878803",
        start=t0, end=t0 + timedelta(minutes=30), readings=readings, total_energy_kwh=D("10.670"), incomplete=False,
        stop_reason="EVDisconnected", flags=(), remarks=(), issued_at=t0 + timedelta(minutes=30, seconds=1),
        cdr_id="S65UNITIDI7MHY3VDD4QJXNHPJI")


def test_a_worker_session_takes_the_plain_path():
    # the sample tariff's session: EUR 0.50 per session + 10.670 kWh x 0.35 (07:55-08:25
    # local 08:55-09:25, day rate) = 0.50 + 3.7345 = 4.2345 excl; x 1.21 = 0.605 + 4.518745
    # = 5.123745 -> 5.1237 incl
    session = _plain_session()
    tariff = Tariff.model_validate_json(sample_tariff_json())
    assert _compare(session, tariff, _settings("Europe/Amsterdam", ("NL", "CLG")))
    row = cdrs.session_cdr_row(session, tariff, _settings("Europe/Amsterdam", ("NL", "CLG")))
    assert '"total_cost":{"excl_vat":4.2345,"incl_vat":5.1237}' in row["cdr_json"]


@SETTINGS
@given(sessions(), tariffs(), st.sampled_from(ZONES))
def test_price_rows_is_price_periods_of_the_periods(session, tariff, zone):
    # price_rows over the period rows prices as price_periods over the ChargingPeriods
    # made of them: every field, the Prices as their (excl_vat, incl_vat) pairs
    start, end, readings = session
    kwargs = {"time_zone": zone, "session_start": start, "session_end": end}
    try:
        periods = charging_periods_from_readings(readings, tariff, **kwargs)
    except Exception as exc:  # noqa: BLE001
        with pytest.raises(type(exc)):
            period_rows_from_readings(readings, tariff, **kwargs)
        return
    priced = price_periods(periods, tariff, **kwargs)
    plain = price_rows(period_rows_from_readings(readings, tariff, **kwargs), tariff, **kwargs)
    for name, value in zip(_RESULT_FIELDS, plain):
        expected = getattr(priced, name)
        if name == "charging_periods":
            assert value is None
        elif isinstance(expected, Price):
            assert type(value) is tuple and len(value) == 2
            _same_value(value[0], expected.excl_vat)
            _same_value(value[1], expected.incl_vat)
        elif name in ("period_selections", "extra_records", "step_records", "exact", "findings"):
            assert value == expected
        else:
            _same_value(value, expected)


def test_period_starts_are_in_utc_as_the_validated_periods_hold_them():
    # A session starting in a zone (not UTC) across the DST change of 2026-03-29 in
    # Amsterdam: the 2 h min_duration boundary (start + 7200 s) is a wall-clock instant of
    # that zone. A ChargingPeriod holds its start in UTC, so the engine takes the duration
    # of a later period as the real time since the session start (1 h here), not the wall
    # time (2 h): the rows must hold UTC starts too, or the parking of the second period
    # would be priced (found by the property test above).
    from zoneinfo import ZoneInfo

    from schemas.readings import MeterReading

    amsterdam = ZoneInfo("Europe/Amsterdam")
    start = datetime(2026, 3, 29, 1, 30, tzinfo=amsterdam)
    session = _plain_session().model_copy(update={
        "start": start, "end": datetime(2026, 3, 29, 7, 3, 20, tzinfo=amsterdam),
        "readings": (MeterReading(timestamp=datetime(2026, 3, 29, 0, 30, tzinfo=UTC), energy_kwh=D(0),
                                  charging=False),)})
    tariff = Tariff.model_validate_json(sample_tariff_json())
    assert _compare(session, tariff, _settings("Europe/Amsterdam", ("NL", "CLG")))
    rows = period_rows_from_readings(session.readings, tariff, time_zone="Europe/Amsterdam", session_start=start,
                                     session_end=session.end)
    assert all(row[0].tzinfo is UTC for row in rows)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.none(), st.sampled_from(ID_TAGS), st.text(max_size=45),
                 st.from_regex(r"[A-Za-z]{2}[A-Za-z0-9]{3}[ -~]{0,40}", fullmatch=True)),
       st.sampled_from([("NL", "CLG"), ("N", "X"), ("NLX", "CLG"), ("NL", "C\x7fG"), ("é", "CLG")]))
def test_the_token_json_is_the_tokens(id_tag, party):
    # streams.cdrs._token_json: the JSON and eMSP of _cdr_token's validated CdrToken, or
    # None (then _cdr_token decides; it refuses what the JSON writer does not keep)
    written = cdrs._token_json(id_tag, *party)
    try:
        token = cdrs._cdr_token(id_tag, *party)
    except ValueError:
        assert written is None
        return
    if written is not None:
        assert written == (token.model_dump_json(), token.country_code, token.party_id)


def test_the_kept_tariff_text_is_the_tariffs_json():
    tariff = Tariff.model_validate_json(sample_tariff_json())
    assert cdrs.tariff_json(tariff) == tariff.model_dump_json()
    session = _plain_session()
    settings_ = _settings("Europe/Amsterdam", ("NL", "CLG"))
    assert cdrs.session_cdr_row(session, tariff, settings_, cdrs.tariff_json(tariff)) == \
        _models_row(session, tariff, settings_)
