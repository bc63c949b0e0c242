"""The compiled OCPI JSON writer (schemas/ocpi.py) writes exactly the bytes of the writer it
replaced (tests/unit/ocpi_json_reference.py, the old code verbatim): for the spec
fixtures, for generated Tariffs and CDRs with awkward strings and Decimals, and for models
changed behind validation's back (model_copy / model_construct with odd values)."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocpi_json_reference import reference_dumps, reference_model_dump_json
from pricing import credit_cdr
from schemas import ocpi
from schemas.ocpi import (
    AuthMethod,
    Cdr,
    CdrDimension,
    CdrDimensionType,
    ChargingPeriod,
    DayOfWeek,
    Price,
    Tariff,
    TariffDimensionType,
    format_ocpi_datetime,
    ocpi_dumps,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi"
SPEC_FILES = sorted(FIXTURES.glob("tariff_*.json")) + sorted(FIXTURES.glob("cdr*.json"))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
D = Decimal


def _outcome(fn, *args, **kwargs):
    """("ok", text) or ("error", exception type): what a writer did."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic's serialization warnings for odd values
        try:
            return "ok", fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the comparison is the point
            return "error", type(exc)


def assert_same_text(model) -> None:
    """Every way to write ``model`` gives the reference's bytes (or the same error)."""
    assert _outcome(model.model_dump_json) == _outcome(reference_model_dump_json, model)
    assert _outcome(model.model_dump_json, indent=2) == _outcome(reference_model_dump_json, model, indent=2)
    assert _outcome(model.model_dump_json, exclude_none=False) == _outcome(
        reference_model_dump_json, model, exclude_none=False)
    assert _outcome(ocpi_dumps, model) == _outcome(reference_dumps, model)
    nested = {"data": [model, (model,)], "count": 1, "none": None}
    assert _outcome(ocpi_dumps, nested) == _outcome(reference_dumps, nested)


# --------------------------------------------------------------------------------------
# Spec fixtures
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_spec_fixture_json_is_unchanged(path):
    model_class = Cdr if path.name.startswith("cdr") else Tariff
    model = model_class.model_validate_json(path.read_text())
    assert model.model_dump_json() == reference_model_dump_json(model)
    assert_same_text(model)


def test_spec_cdr_fixture_text_is_pinned():
    """The CDR fixture with every field, written compactly: pinned by its first bytes and
    its numbers (the literal texts of the fixture, e.g. 0.2500 stays 0.2500)."""
    cdr = Cdr.model_validate_json((FIXTURES / "cdr_every_field.json").read_text())
    text = cdr.model_dump_json()
    assert text.startswith('{"country_code":"NL","party_id":"CLG","id":"CDR-0001-credit",'
                           '"start_date_time":"2026-03-28T23:30:00Z","end_date_time":"2026-03-29T02:15:30.25Z",')
    raw_numbers = json.loads((FIXTURES / "cdr_every_field.json").read_text(), parse_float=str, parse_int=str)
    assert json.loads(text, parse_float=str, parse_int=str) == raw_numbers


def test_credit_cdr_of_a_spec_cdr_is_written_like_the_reference():
    cdr = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text())
    credit = credit_cdr(cdr, id="CREDIT-1", last_updated=datetime(2026, 5, 1, 12, tzinfo=timezone.utc))
    assert_same_text(credit)
    assert '"total_cost":{"excl_vat":-' in credit.model_dump_json()


# --------------------------------------------------------------------------------------
# Generated Tariffs and CDRs
# --------------------------------------------------------------------------------------

AWKWARD_DECIMALS = [D("0E-10"), D("1E+3"), D("-0"), D("12.30000"), D("-0.00"), D("0"), D("1E-7"), D("-1E-7"),
                    D("0.000001"), D("123456789012345678901234567890.1234567890"), D("5E+30"), D("-2.5E+2"),
                    D("0.1"), D("100"), D("-0E+3"), D("7.000E-3")]
decimals = st.one_of(st.sampled_from(AWKWARD_DECIMALS), st.decimals(allow_nan=False, allow_infinity=False))
#: any text: quotes, backslashes, control characters, non-ASCII, astral planes
texts = st.text(max_size=40)
ascii_texts = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=36)
zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)), None])
datetimes = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30), timezones=zones)


def _optional(strategy):
    return st.one_of(st.none(), strategy)


def _drop_absent(draw, fields: dict) -> dict:
    """Leave out some None fields entirely (absent vs null in the input)."""
    return {k: v for k, v in fields.items() if v is not None or draw(st.booleans())}


@st.composite
def prices(draw):
    return draw(st.fixed_dictionaries({"excl_vat": decimals}, optional={"incl_vat": _optional(decimals)}))


@st.composite
def tariff_dicts(draw):
    component = st.fixed_dictionaries(
        {"type": st.sampled_from(list(TariffDimensionType)), "price": decimals,
         "step_size": st.integers(0, 10**6)}, optional={"vat": _optional(decimals)})
    restrictions = st.fixed_dictionaries({}, optional={
        "start_time": st.from_regex(r"^([0-1][0-9]|2[0-3]):[0-5][0-9]\Z"),
        "end_time": _optional(st.from_regex(r"^([0-1][0-9]|2[0-3]):[0-5][0-9]\Z")),
        "start_date": st.from_regex(r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])\Z"),
        "min_kwh": decimals, "max_kwh": _optional(decimals), "min_current": decimals, "max_current": decimals,
        "min_power": decimals, "max_power": _optional(decimals), "min_duration": st.integers(-5, 10**7),
        "max_duration": _optional(st.integers(0, 10**7)),
        "day_of_week": _optional(st.lists(st.sampled_from(list(DayOfWeek)), max_size=3)),
        "reservation": st.sampled_from(list(ocpi.ReservationRestrictionType)),
    })
    element = st.fixed_dictionaries({"price_components": st.lists(component, min_size=1, max_size=3)},
                                    optional={"restrictions": _optional(restrictions)})
    energy_mix = st.fixed_dictionaries({"is_green_energy": st.booleans()}, optional={
        "energy_sources": st.lists(st.fixed_dictionaries({
            "source": st.sampled_from(list(ocpi.EnergySourceCategory)), "percentage": decimals}), max_size=2),
        "environ_impact": st.lists(st.fixed_dictionaries({
            "category": st.sampled_from(list(ocpi.EnvironmentalImpactCategory)), "amount": decimals}), max_size=2),
        "supplier_name": st.text(max_size=64), "energy_product_name": _optional(st.text(max_size=64)),
    })
    return draw(st.fixed_dictionaries(
        {"country_code": ascii_texts.map(lambda s: s[:2]), "party_id": ascii_texts.map(lambda s: s[:3]),
         "id": ascii_texts, "currency": st.text(min_size=3, max_size=3),
         "elements": st.lists(element, min_size=1, max_size=3), "last_updated": datetimes},
        optional={"type": _optional(st.sampled_from(list(ocpi.TariffType))),
                  "tariff_alt_text": st.lists(st.fixed_dictionaries({"language": st.text(max_size=2), "text": texts}),
                                              max_size=2),
                  "tariff_alt_url": _optional(st.text(max_size=80)), "min_price": prices(),
                  "max_price": _optional(prices()), "start_date_time": _optional(datetimes),
                  "end_date_time": datetimes, "energy_mix": _optional(energy_mix)}))


@st.composite
def cdr_dicts(draw):
    dimension = st.fixed_dictionaries({"type": st.sampled_from(list(CdrDimensionType)), "volume": decimals})
    period = st.fixed_dictionaries({"start_date_time": datetimes, "dimensions": st.lists(dimension, min_size=1,
                                                                                         max_size=4)},
                                   optional={"tariff_id": _optional(ascii_texts)})
    location = st.fixed_dictionaries(
        {"id": ascii_texts, "address": st.text(max_size=45), "city": st.text(max_size=45),
         "country": st.text(max_size=3),
         "coordinates": st.fixed_dictionaries({
             "latitude": st.from_regex(r"^-?[0-9]{1,2}\.[0-9]{5,7}\Z").filter(lambda s: len(s) <= 10),
             "longitude": st.from_regex(r"^-?[0-9]{1,3}\.[0-9]{5,7}\Z").filter(lambda s: len(s) <= 11)}),
         "evse_uid": ascii_texts, "evse_id": ascii_texts, "connector_id": ascii_texts,
         "connector_standard": st.sampled_from(list(ocpi.ConnectorType)),
         "connector_format": st.sampled_from(list(ocpi.ConnectorFormat)),
         "connector_power_type": st.sampled_from(list(ocpi.PowerType))},
        optional={"name": _optional(texts), "postal_code": st.text(max_size=10), "state": st.text(max_size=20)})
    signed = st.fixed_dictionaries(
        {"encoding_method": ascii_texts,
         "signed_values": st.lists(st.fixed_dictionaries({"nature": ascii_texts.map(lambda s: s[:32]),
                                                          "plain_data": texts, "signed_data": texts}),
                                   min_size=1, max_size=2)},
        optional={"encoding_method_version": st.integers(-3, 10**12), "public_key": _optional(texts),
                  "url": texts})
    return draw(st.fixed_dictionaries(
        {"country_code": ascii_texts.map(lambda s: s[:2]), "party_id": ascii_texts.map(lambda s: s[:3]),
         "id": ascii_texts, "start_date_time": datetimes, "end_date_time": datetimes,
         "cdr_token": st.fixed_dictionaries({"country_code": ascii_texts.map(lambda s: s[:2]),
                                             "party_id": ascii_texts.map(lambda s: s[:3]), "uid": ascii_texts,
                                             "type": st.sampled_from(list(ocpi.TokenType)),
                                             "contract_id": ascii_texts}),
         "auth_method": st.sampled_from(list(AuthMethod)), "cdr_location": location,
         "currency": st.text(min_size=3, max_size=3),
         "charging_periods": st.lists(period, min_size=1, max_size=3), "total_cost": prices(),
         "total_energy": decimals, "total_time": decimals, "last_updated": datetimes},
        optional={"session_id": _optional(ascii_texts), "authorization_reference": ascii_texts,
                  "meter_id": _optional(texts), "tariffs": _optional(st.lists(tariff_dicts(), max_size=2)),
                  "signed_data": _optional(signed), "total_fixed_cost": _optional(prices()),
                  "total_energy_cost": prices(), "total_time_cost": _optional(prices()),
                  "total_parking_time": _optional(decimals), "total_parking_cost": prices(),
                  "total_reservation_cost": _optional(prices()), "remark": _optional(texts),
                  "invoice_reference_id": ascii_texts, "credit": _optional(st.booleans()),
                  "credit_reference_id": _optional(ascii_texts),
                  "home_charging_compensation": st.booleans()}))


@SETTINGS
@given(tariff_dicts())
def test_generated_tariffs_are_written_like_the_reference(data):
    assert_same_text(Tariff.model_validate(data))


@SETTINGS
@given(cdr_dicts())
def test_generated_cdrs_are_written_like_the_reference(data):
    assert_same_text(Cdr.model_validate(data))


#: Values put into a CDR without validation (model_copy / model_construct), as code could.
ODD_UPDATES = st.one_of(
    st.fixed_dictionaries({"total_energy": st.one_of(st.integers(), st.just(D("NaN")), st.just(D("-Infinity")),
                                                     st.just(0.1), st.just(True), decimals)}),
    st.fixed_dictionaries({"remark": st.one_of(st.sampled_from(list(AuthMethod)), st.integers(), texts)}),
    st.fixed_dictionaries({"last_updated": datetimes}),
    st.fixed_dictionaries({"start_date_time": st.dates()}),
    st.fixed_dictionaries({"credit": st.one_of(st.booleans(), st.integers(0, 2))}),
    st.fixed_dictionaries({"auth_method": st.one_of(st.sampled_from(list(CdrDimensionType)), texts)}),
    st.fixed_dictionaries({"total_cost": st.one_of(st.builds(Price, excl_vat=decimals), st.just({"excl_vat": 1}))}),
    st.fixed_dictionaries({"charging_periods": st.one_of(
        st.just(()), st.just([]), st.lists(st.builds(
            ChargingPeriod.model_construct, start_date_time=datetimes,
            dimensions=st.lists(st.builds(CdrDimension.model_construct, type=st.sampled_from(list(CdrDimensionType)),
                                          volume=decimals), max_size=2)), max_size=2).map(tuple))}),
    st.fixed_dictionaries({"not_a_field": st.integers()}),
    st.fixed_dictionaries({"tariffs": st.just([None])}),
)


@SETTINGS
@given(cdr_dicts(), st.lists(ODD_UPDATES, min_size=1, max_size=3))
def test_models_changed_behind_validation_are_written_like_the_reference(data, updates):
    cdr = Cdr.model_validate(data)
    for update in updates:
        cdr = cdr.model_copy(update=update)
    assert_same_text(cdr)


def test_fields_missing_from_a_constructed_model_are_left_out_like_the_reference():
    price = Price.model_construct(incl_vat=D("1.50"))
    assert price.model_dump_json() == reference_model_dump_json(price) == '{"incl_vat":1.50}'
    assert_same_text(Price.model_construct())


def test_instance_dict_order_is_followed_like_pydantic():
    """pydantic-core writes a model's instance dict in its own order; so do we."""
    price = Price(excl_vat=D("1"), incl_vat=D("2"))
    object.__setattr__(price, "__dict__", {"incl_vat": D("2"), "excl_vat": D("1")})
    assert price.model_dump_json() == reference_model_dump_json(price) == '{"incl_vat":2,"excl_vat":1}'


def test_a_subclass_outside_the_module_is_written_through_model_dump():
    class Fancy(Price):
        note: str = "x"

        @property
        def double(self) -> Decimal:
            return self.excl_vat * 2

    fancy = Fancy(excl_vat=D("2.50"))
    assert ocpi._field_plan(Fancy) is None
    assert_same_text(fancy)
    assert fancy.model_dump_json() == '{"excl_vat":2.50,"note":"x"}'


def test_floats_are_still_refused():
    cdr = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text())
    with pytest.raises(TypeError, match="float"):
        cdr.model_copy(update={"total_time": 1.5}).model_dump_json()
    with pytest.raises(TypeError, match="float"):
        ocpi_dumps([Price(excl_vat=D("1")), 0.1])


@SETTINGS
@given(decimals)
def test_decimal_text_is_the_plain_exact_text(value):
    expected = format(value, "f")  # the old writer's text: exact, no exponent
    assert ocpi._decimal_text(value) == ("0" if expected == "-0" else expected)
    assert D(ocpi._decimal_text(value)) == value


def _old_format_ocpi_datetime(value: datetime) -> str:
    """format_ocpi_datetime before its fast path (the reference)."""
    utc = value.astimezone(timezone.utc) if value.tzinfo else value
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += ("." + f"{utc.microsecond:06d}").rstrip("0")
    return text + "Z"


@SETTINGS
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones))
def test_datetime_text_is_unchanged(value):
    assert format_ocpi_datetime(value) == _old_format_ocpi_datetime(value)


def test_datetime_text_examples():
    utc = timezone.utc
    assert format_ocpi_datetime(datetime(2015, 6, 29, 20, 39, 9, tzinfo=utc)) == "2015-06-29T20:39:09Z"
    assert format_ocpi_datetime(datetime(2016, 12, 29, 17, 45, 9, 200000, tzinfo=utc)) == "2016-12-29T17:45:09.2Z"
    assert format_ocpi_datetime(datetime(2016, 12, 29, 17, 45, 9, 10, tzinfo=utc)) == "2016-12-29T17:45:09.00001Z"
    # strftime does not pad years before 1000: kept as it was
    assert format_ocpi_datetime(datetime(999, 1, 1, tzinfo=utc)) == _old_format_ocpi_datetime(
        datetime(999, 1, 1, tzinfo=utc))
