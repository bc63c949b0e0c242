"""`chargeledger price` and `chargeledger tariff check`: outputs, messages, exit codes."""

import json
from decimal import Decimal

from chargeledger.cli import main
from pricing.lint import lint_tariff
from pricing.zones import NoSingleZone, zone_for_country
from schemas.ocpi import Cdr, ocpi_loads
from pricing_support import FIXTURES, component, element, tariff

import pytest

D = Decimal
CDR = FIXTURES / "cdr_example.json"
TARIFF_2H = FIXTURES / "tariff_put_example.json"  # TIME 2.00/h, 10 %, step 300 s


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_price_prints_the_repriced_cdr_with_every_total(capsys):
    # TIME 1.973 h -> 7200 s (step 300) = 2 h x 2.00 = 4.00, x 1.1 = 4.40; BEL -> Europe/Brussels
    code, out, err = run(capsys, "price", "--tariff", str(TARIFF_2H), str(CDR))
    assert code == 0
    cdr = Cdr.model_validate_json(out)
    assert cdr.total_cost.excl_vat == D("4.0000") and cdr.total_cost.incl_vat == D("4.4000")
    data = json.loads(out, parse_float=str)
    for name in ("total_cost", "total_fixed_cost", "total_energy_cost", "total_time_cost",
                 "total_parking_cost", "total_reservation_cost"):
        assert set(data[name]) == {"excl_vat", "incl_vat"}
    for name in ("total_energy", "total_time", "total_parking_time"):
        assert name in data
    assert data["total_cost"]["excl_vat"] == "4.0000"  # a JSON number with 4 decimals
    assert [t["id"] for t in data["tariffs"]] == ["12"]
    assert "total_energy: CDR says 15.342" in err  # the example has no ENERGY dimension


def test_price_explain_prints_the_breakdown(capsys):
    code, out, _ = run(capsys, "price", "--tariff", str(TARIFF_2H), "--explain", str(CDR))
    assert code == 0
    assert "step_size" in out and "billed 7102.8 s rounded up to 7200 s" in out


def test_price_json_lines_prices_each_line(tmp_path, capsys):
    text = CDR.read_text()
    one = json.dumps(json.loads(text))
    other = json.loads(text)
    other["id"] = "B"
    path = tmp_path / "cdrs.jsonl"
    path.write_text(one + "\n" + json.dumps(other) + "\n")
    code, out, _ = run(capsys, "price", "--tariff", str(TARIFF_2H), str(path))
    assert code == 0
    lines = out.strip().splitlines()
    assert [ocpi_loads(l)["id"] for l in lines] == ["12345", "B"]


def test_price_without_charging_periods_is_a_clear_error(tmp_path, capsys):
    data = json.loads(CDR.read_text())
    data["charging_periods"] = []
    path = tmp_path / "cdr.json"
    path.write_text(json.dumps(data))
    code, out, err = run(capsys, "price", "--tariff", str(TARIFF_2H), str(path))
    assert code == 1 and out == ""
    assert "has no charging periods" in err


def test_price_currency_mismatch_is_a_clear_error(tmp_path, capsys):
    t = json.loads(TARIFF_2H.read_text())
    t["currency"] = "GBP"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(t))
    code, _, err = run(capsys, "price", "--tariff", str(path), str(CDR))
    assert code == 1
    assert "is in EUR, the tariff 12 in GBP" in err


def test_price_invalid_json_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    code, _, err = run(capsys, "price", "--tariff", str(TARIFF_2H), str(path))
    assert code == 2 and "is not valid JSON" in err
    code, _, err = run(capsys, "price", "--tariff", str(path), str(CDR))
    assert code == 2 and "tariff" in err and "is not valid JSON" in err


def test_price_unknown_time_zone_is_a_clear_error(capsys):
    code, _, err = run(capsys, "price", "--tariff", str(TARIFF_2H), "--timezone", "Europe/Atlantis", str(CDR))
    assert code == 2 and "unknown time zone 'Europe/Atlantis'" in err


def test_price_country_with_several_zones_asks_for_a_time_zone(tmp_path, capsys):
    data = json.loads(CDR.read_text())
    data["cdr_location"]["country"] = "ESP"
    path = tmp_path / "cdr.json"
    path.write_text(json.dumps(data))
    code, _, err = run(capsys, "price", "--tariff", str(TARIFF_2H), str(path))
    assert code == 1 and "3 time zones" in err and "--timezone" in err
    code, out, _ = run(capsys, "price", "--tariff", str(TARIFF_2H), "--timezone", "Europe/Madrid", str(path))
    assert code == 0


def test_zone_for_country_uses_single_zone_countries():
    assert zone_for_country("NLD") == "Europe/Amsterdam"
    assert zone_for_country("DEU") == "Europe/Berlin"  # Busingen keeps Berlin's clock
    with pytest.raises(NoSingleZone):
        zone_for_country("USA")


# ----------------------------------------------------------------------------- tariff check


def codes(t):
    return sorted(f.code for f in lint_tariff(t))


def test_tariff_check_clean_tariff(capsys):
    code, out, _ = run(capsys, "tariff", "check", str(FIXTURES / "tariff_10_025kwh_parking_start.json"))
    assert code == 0 and "no findings" in out


def test_tariff_check_flags_free_hours(capsys):
    code, out, _ = run(capsys, "tariff", "check", str(FIXTURES / "tariff_4_complex.json"))
    assert code == 1
    assert "PARKING_TIME has no matching element" in out and "SUNDAY 00:00-24:00" in out


def test_lint_free_hours_depending_on_power():
    # ENERGY only priced at >= 11 kW: below that, every hour is free
    t = tariff(element(component("ENERGY", "0.30"), min_power=D(11)))
    [f] = lint_tariff(t)
    assert f.code == "free_hours" and "power 0 kW" in f.message and "every day 00:00-24:00" in f.message


def test_lint_hidden_element_and_hidden_component():
    t = tariff(
        element(component("ENERGY", "0.30"), component("TIME", "1.00"), start_time="08:00", end_time="20:00"),
        element(component("ENERGY", "0.40"), start_time="09:00", end_time="17:00"),  # hidden entirely
        element(component("ENERGY", "0.20"), component("PARKING_TIME", "2.00"), start_time="10:00", end_time="11:00"),
        element(component("ENERGY", "0.25"), component("TIME", "1.00")),
    )
    found = {(f.code, f.element_index) for f in lint_tariff(t)}
    assert ("hidden_element", 1) in found
    assert ("hidden_component", 2) in found  # its ENERGY; PARKING_TIME still used
    assert ("hidden_element", 3) not in found


def test_lint_step_size_on_flat_reservation_energy_and_min_above_max():
    t = tariff(
        element(component("FLAT", "1.00", step_size=300), component("ENERGY", "0.25")),
        element(component("ENERGY", "0.10"), component("TIME", "3.00"), reservation="RESERVATION"),
        min_price={"excl_vat": D("10")},
        max_price={"excl_vat": D("5")},
    )
    assert codes(t) == ["min_above_max", "reservation_component", "step_size_on_flat"]


def test_lint_restrictions_that_never_hold():
    t = tariff(
        element(component("ENERGY", "0.30"), start_time="10:00", end_time="10:00"),
        element(component("ENERGY", "0.20"), min_kwh=D(10), max_kwh=D(5)),
        element(component("ENERGY", "0.25")),
    )
    assert codes(t) == ["never_active", "never_active"]
