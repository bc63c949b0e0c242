"""Parties and contracts from JSON and TOML files; bad contracts are named."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from settlement.contracts import BillingDirection, ContractError, Period, VatTreatment, load_contracts


def test_example_contracts_file_loads():
    book = load_contracts("settlement/examples/contracts.json")
    c = book.contract_for("NL*CLG", "DE*MSP")
    assert (c.cpo, c.emsp, c.hub, c.currency) == ("NL*CLG", "DE*MSP", "BE*HUB", "EUR")
    assert c.billing_direction is BillingDirection.DIRECT and c.issuer == "NL*CLG"
    assert c.tolerances.amount == Decimal("0.01") and c.tariff["id"] == "AC-STANDARD"
    assert {p.key for p in book.parties} == {"NL*CLG", "DE*MSP", "BE*HUB"}


def test_toml_with_a_tariff_file_next_to_it(tmp_path):
    (tmp_path / "tariff.json").write_text(json.dumps({"id": "T1", "currency": "SEK"}))
    (tmp_path / "c.toml").write_text(
        '[[parties]]\nparty = "SE*AAA"\nrole = "cpo"\n\n'
        '[[contracts]]\nid = "k"\ncpo = "SE*AAA"\nemsp = "NO*BBB"\ncurrency = "sek"\n'
        'billing_direction = "reverse"\nvat = "rate"\nvat_rate = "25"\ntariff = "tariff.json"\n'
        '[contracts.tolerances]\namount = "0.05"\n')
    c = load_contracts(tmp_path / "c.toml").get("k")
    assert (c.currency, c.issuer, c.vat, c.vat_rate) == ("SEK", "NO*BBB", VatTreatment.RATE, Decimal("25"))
    assert c.tariff == {"id": "T1", "currency": "SEK"} and c.tolerances.amount == Decimal("0.05")


@pytest.mark.parametrize("change, message", [
    ({"currency": "XXQ"}, "unknown currency"),
    ({"cpo": "NLCLGX"}, "not an OCPI identity"),
    ({"vat": "rate"}, "needs vat_rate"),
    ({"emsp": None}, "missing field 'emsp'"),
])
def test_bad_contracts_are_refused_with_the_reason(tmp_path, change, message):
    contract = {"id": "k", "cpo": "NL*CLG", "emsp": "DE*MSP", "currency": "EUR", **change}
    (tmp_path / "c.json").write_text(json.dumps({"contracts": [contract]}))
    with pytest.raises(ContractError, match=message):
        load_contracts(tmp_path / "c.json")


def test_period_is_a_utc_month():
    p = Period.parse("2026-12")
    assert (p.start.isoformat(), p.end.isoformat()) == ("2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
    with pytest.raises(ContractError):
        Period.parse("2026-13")
