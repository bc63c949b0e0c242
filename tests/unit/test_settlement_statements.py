"""Statements: rounding (net first, VAT separately), net positions, hub netting, immutability."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from settlement_helpers import contract

from settlement import repository as repo
from settlement.contracts import ContractBook, VatTreatment
from settlement.money import round_to_minor_unit
from settlement.statements import (
    ClassTotals,
    ContractPeriod,
    build_statement,
    content_hash,
    export_csv,
    export_html,
    export_parquet,
    settle_contract,
)
from storage.db import make_engine, make_sessionmaker, upgrade

D = Decimal


def cp(c, matched_excl, matched_incl, *, count=3, extra=None, period="2026-10"):
    classes = {"matched": ClassTotals(count, D(matched_excl), D(matched_incl), D(matched_excl), D(matched_incl))}
    classes.update(extra or {})
    return ContractPeriod(c, period, classes)


def test_minor_units_round_half_up():
    assert round_to_minor_unit(D("1.005"), "EUR") == D("1.01")
    assert round_to_minor_unit(D("1.5"), "JPY") == D("2")
    assert round_to_minor_unit(D("1.0005"), "KWD") == D("1.001")


def test_net_is_rounded_first_and_vat_separately_from_the_cdrs():
    # settled excl 10.0049 + 5.0001 = 15.0050 -> net 15.01 (half up)
    # incl 12.1059 + 6.0501 = 18.1560; VAT exact = 18.1560 - 15.0050 = 3.1510 -> 3.15; incl = 15.01 + 3.15 = 18.16
    c = contract()
    p = ContractPeriod(c, "2026-10", {
        "matched": ClassTotals(1, D("10.0049"), D("12.1059"), D("10.0049"), D("12.1059")),
        "delivered_not_invoiced": ClassTotals(1, D("5.0001"), D("6.0501"), D("5.0001"), D("6.0501")),
    })
    a = settle_contract(p)
    assert (a.count, a.net_excl_vat, a.vat, a.total_incl_vat) == (2, D("15.01"), D("3.15"), D("18.16"))


def test_vat_rate_applies_to_the_rounded_net():
    # net 100.005 -> 100.01; VAT 21% of 100.01 = 21.0021 -> 21.00; total 121.01
    c = contract(vat=VatTreatment.RATE, vat_rate=D("21"))
    a = settle_contract(cp(c, "100.005", "0"))
    assert (a.net_excl_vat, a.vat, a.total_incl_vat) == (D("100.01"), D("21.00"), D("121.01"))


def test_reverse_charge_has_no_vat():
    c = contract(vat=VatTreatment.REVERSE_CHARGE)
    a = settle_contract(cp(c, "50.00", "60.50"))
    assert (a.net_excl_vat, a.vat, a.total_incl_vat) == (D("50.00"), D("0.00"), D("50.00"))


def test_disputed_classes_stay_out_of_the_totals_and_are_listed():
    c = contract()
    p = cp(c, "10.00", "12.10", extra={"amount_mismatch": ClassTotals(1, D("5.00"), D("6.05"), D("5.50"), D("6.66"))})
    s = build_statement("pair", "NL*CPO", "DE*MSP", "2026-10", [p])
    assert s["contracts"][0]["net_excl_vat"] == "10.00"
    assert s["contracts"][0]["disputed"] == {"amount_mismatch": {"count": 1, "our_excl_vat": "5.00", "partner_excl_vat": "5.50"}}


def test_pair_net_position_nets_both_directions():
    # NL*CPO is CPO for DE*MSP: DE*MSP owes 121.00 incl; DE*MSP is also a CPO (as DE*MSP) with NL*CPO as eMSP: 24.20
    c1 = contract(id="c1")
    c2 = contract(id="c2", cpo="DE*MSP", emsp="NL*CPO")
    s = build_statement("pair", "NL*CPO", "DE*MSP", "2026-10", [cp(c1, "100.00", "121.00"), cp(c2, "20.00", "24.20")])
    pos = {t["party"]: D(t["net_position"]) for t in s["totals"]}
    # NL*CPO: receives 121.00, pays 24.20 -> +96.80; DE*MSP the opposite
    assert pos == {"NL*CPO": D("96.80"), "DE*MSP": D("-96.80")}
    assert {t["party"]: t["net_excl_vat"] for t in s["totals"]} == {"NL*CPO": "100.00", "DE*MSP": "20.00"}


def test_hub_net_positions_across_its_parties_sum_to_zero_per_currency():
    hub = "BE*HUB"
    cs = [
        cp(contract(id="a", cpo="NL*AAA", emsp="DE*XXX", hub=hub), "10.00", "12.10"),
        cp(contract(id="b", cpo="NL*AAA", emsp="FR*YYY", hub=hub), "20.00", "24.20"),
        cp(contract(id="c", cpo="FR*YYY", emsp="DE*XXX", hub=hub), "5.00", "6.05"),
    ]
    s = build_statement("hub", hub, None, "2026-10", cs)
    pos = {t["party"]: D(t["net_position"]) for t in s["totals"]}
    # AAA receives 12.10 + 24.20 = 36.30; XXX pays 12.10 + 6.05 = 18.15; YYY receives 6.05, pays 24.20 -> -18.15
    assert pos == {"NL*AAA": D("36.30"), "DE*XXX": D("-18.15"), "FR*YYY": D("-18.15")}
    assert sum(pos.values()) == 0


def test_exports_csv_parquet_html(tmp_path):
    s = build_statement("pair", "NL*CPO", "DE*MSP", "2026-10", [cp(contract(), "10.00", "12.10")])
    export_csv(s, tmp_path / "s.csv")
    export_parquet(s, tmp_path / "s.parquet")
    export_html(s, tmp_path / "s.html", statement_id="X")
    assert "position,2026-10" in (tmp_path / "s.csv").read_text()
    t = pq.read_table(tmp_path / "s.parquet")
    assert str(t.schema.field("net_position").type) == "decimal128(18, 4)"
    assert D("12.10") in t.column("net_position").to_pylist()
    html = (tmp_path / "s.html").read_text()
    assert "Net positions" in html and "12.10" in html


def test_issued_statement_is_immutable_and_a_correction_references_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    Session = make_sessionmaker(make_engine(url))
    c = contract()
    with Session.begin() as s:
        repo.save_book(s, ContractBook((), (c,)))
    first = build_statement("pair", "NL*CPO", "DE*MSP", "2026-10", [cp(c, "10.00", "12.10")])
    with Session.begin() as s:
        sid = repo.issue_statement(s, first)
    with pytest.raises(repo.StatementError, match="already issued"), Session.begin() as s:
        repo.issue_statement(s, first)
    db = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="immutable"):
        db.execute("UPDATE settlement_statements SET period = '2026-11'")
    with pytest.raises(sqlite3.DatabaseError, match="immutable"):
        db.execute("DELETE FROM settlement_statement_totals")
    db.close()
    fixed = build_statement("pair", "NL*CPO", "DE*MSP", "2026-10", [cp(c, "11.00", "13.31")], corrects=sid)
    with Session.begin() as s:
        sid2 = repo.issue_statement(s, fixed)
    with Session() as s:
        row, content = repo.load_statement(s, sid2)
        assert row.corrects_id == sid and content["corrects"] == sid
        assert row.content_hash == content_hash(fixed)
        old, old_content = repo.load_statement(s, sid)
        assert old_content["contracts"][0]["net_excl_vat"] == "10.00"
