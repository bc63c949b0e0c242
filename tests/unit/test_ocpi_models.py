"""OCPI 2.2.1 Tariff and CDR models: every field, exact numbers, spec examples round-trip."""

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.ocpi import (
    Cdr,
    CdrDimensionType,
    Price,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    ocpi_dumps,
    ocpi_loads,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi"
TARIFF_FILES = sorted(p for p in FIXTURES.glob("tariff*.json"))
CDR_FILES = sorted(p for p in FIXTURES.glob("cdr*.json"))


def _as_text_tree(raw: str):
    """JSON with every number kept as its literal text: the strictest equality."""
    return json.loads(raw, parse_float=str, parse_int=str)


def test_fixtures_are_present():
    assert len(TARIFF_FILES) >= 19
    assert len(CDR_FILES) >= 2


@pytest.mark.parametrize("path", TARIFF_FILES, ids=lambda p: p.name)
def test_spec_tariff_example_round_trips_exactly(path):
    raw = path.read_text()
    tariff = Tariff.model_validate_json(raw)
    dumped = tariff.model_dump_json()
    assert _as_text_tree(dumped) == _as_text_tree(raw)
    assert Tariff.model_validate_json(dumped) == tariff


@pytest.mark.parametrize("path", CDR_FILES, ids=lambda p: p.name)
def test_spec_cdr_example_round_trips_exactly(path):
    raw = path.read_text()
    cdr = Cdr.model_validate_json(raw)
    dumped = cdr.model_dump_json(indent=2)
    assert _as_text_tree(dumped) == _as_text_tree(raw)
    assert Cdr.model_validate_json(dumped) == cdr


def test_money_and_energy_are_decimal_with_their_exact_text():
    cdr = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text())
    assert cdr.total_cost == Price(excl_vat=Decimal("4.00"), incl_vat=Decimal("4.40"))
    assert isinstance(cdr.total_energy, Decimal) and str(cdr.total_energy) == "15.342"
    assert cdr.charging_periods[0].volume(CdrDimensionType.TIME) == Decimal("1.973")
    assert cdr.start_date_time == datetime(2015, 6, 29, 21, 39, 9, tzinfo=timezone.utc)
    # The dump writes JSON numbers (not strings, not floats), text unchanged.
    assert '"excl_vat":4.00' in cdr.model_dump_json()


def test_long_decimals_survive_a_json_round_trip_without_float_noise():
    # 0.1 + 0.2 style noise would show in the 17th digit; 30 digits must come back as is.
    price = Price(excl_vat=Decimal("0.123456789012345678901234567891"), incl_vat=Decimal("1E+2"))
    text = price.model_dump_json()
    assert text == '{"excl_vat":0.123456789012345678901234567891,"incl_vat":100}'
    assert Price.model_validate_json(text) == price
    assert ocpi_loads(ocpi_dumps([price]))[0]["excl_vat"] == Decimal("0.123456789012345678901234567891")


def test_datetime_without_designator_is_utc_and_offsets_are_converted():
    base = json.loads((FIXTURES / "tariff_1_simple_2hour.json").read_text())
    base["last_updated"] = "2016-12-29T17:45:09.2"
    naive = Tariff.model_validate(base)
    assert naive.last_updated == datetime(2016, 12, 29, 17, 45, 9, 200000, tzinfo=timezone.utc)
    assert '"last_updated":"2016-12-29T17:45:09.2Z"' in naive.model_dump_json()
    base["last_updated"] = "2016-12-29T18:45:09+01:00"
    assert Tariff.model_validate(base).last_updated == datetime(2016, 12, 29, 17, 45, 9, tzinfo=timezone.utc)


def test_absent_vat_stays_absent_and_differs_from_zero():
    no_vat = PriceComponent(type=TariffDimensionType.FLAT, price=Decimal("0.00"), step_size=0)
    zero = PriceComponent(type=TariffDimensionType.FLAT, price=Decimal("0.00"), vat=Decimal("0.0"), step_size=0)
    assert "vat" not in no_vat.model_dump_json()
    assert '"vat":0.0' in zero.model_dump_json()


def test_floats_are_refused_in_ocpi_output():
    with pytest.raises(TypeError):
        ocpi_dumps({"excl_vat": 0.1})


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t["elements"].clear(),  # elements: card. +
        lambda t: t["elements"][0]["price_components"][0].update(type="KWH"),
        lambda t: t["elements"][0]["price_components"][0].update(price="NaN"),
        lambda t: t["elements"][0].update(restrictions={"start_time": "24:00"}),
        lambda t: t["elements"][0].update(restrictions={"start_date": "2015-13-01"}),
        lambda t: t["elements"][0].update(restrictions={"day_of_week": ["FUNDAY"]}),
        lambda t: t.update(currency="EURO"),
        lambda t: t.pop("last_updated"),
    ],
)
def test_invalid_tariffs_are_rejected(mutate):
    data = json.loads((FIXTURES / "tariff_4_complex.json").read_text())
    mutate(data)
    with pytest.raises(ValidationError):
        Tariff.model_validate(data)


def test_cdr_without_charging_periods_is_rejected():
    data = json.loads((FIXTURES / "cdr_example.json").read_text())
    data["charging_periods"] = []
    with pytest.raises(ValidationError):
        Cdr.model_validate(data)
