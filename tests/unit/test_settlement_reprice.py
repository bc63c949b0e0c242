"""Amount mismatches re-priced with the contract tariff: which side our engine agrees with."""

from __future__ import annotations

import json
from decimal import Decimal

from settlement_helpers import cdr, contract

from settlement.frames import cdr_frame
from settlement.reconcile import reconcile
from settlement.reprice import explain_amount_mismatches

# 0.35 EUR/kWh excl VAT, VAT 21%, billed per Wh (step_size 1)
TARIFF = {
    "country_code": "NL", "party_id": "CPO", "id": "AC1", "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": "0.35", "vat": "21", "step_size": 1}]}],
    "last_updated": "2026-01-01T00:00:00Z",
}


def run(our_excl, our_incl, their_excl, their_incl, tariff=TARIFF):
    ours = [cdr("A", kwh="20.000", excl=our_excl, incl=our_incl)]
    theirs = [cdr("A", kwh="20.000", excl=their_excl, incl=their_incl)]
    rec = reconcile(cdr_frame(ours), cdr_frame(theirs),
                    contract(tariff=tariff, time_zone="Europe/Amsterdam"))
    explain_amount_mismatches(rec, [json.dumps(d) for d in theirs])
    return next(rec.records())


def test_engine_agrees_with_us_when_the_partner_overcharged():
    # 20 kWh x 0.35 = 7.00 excl; x 1.21 = 8.47 incl. Ours 7.00/8.47, partner 7.50/9.075 (0.375/kWh)
    line = run("7.00", "8.47", "7.50", "9.075")
    assert line["cls"] == "amount_mismatch"
    assert (line["reprice_excl"], line["reprice_incl"]) == (Decimal("7.0000"), Decimal("8.4700"))
    assert line["reprice_agrees_with"] == "us"
    detail = json.loads(line["reprice_detail"])
    energy = [b for b in detail["breakdown"] if b["dimension"] == "ENERGY" and b["kind"] == "period"]
    assert energy and energy[0]["unit_price"] == "0.35" and Decimal(energy[0]["quantity"]) == Decimal("20")


def test_engine_agrees_with_the_partner_when_we_undercharged():
    # we billed 6.50/7.865; the tariff says 7.00/8.47, as the partner billed
    line = run("6.50", "7.865", "7.00", "8.47")
    assert line["reprice_agrees_with"] == "partner"


def test_engine_agrees_with_neither():
    line = run("6.50", "7.865", "7.50", "9.075")
    assert line["reprice_agrees_with"] == "neither"
    assert line["reprice_excl"] == Decimal("7.0000")


def test_no_tariff_in_the_contract_says_so():
    line = run("7.00", "8.47", "7.50", "9.075", tariff=None)
    assert line["reprice_agrees_with"] == "not_repriced"
    assert "names no tariff" in json.loads(line["reprice_detail"])["reason"]
