"""Partner files in: formats, and bad rows named by file, line and field with nothing imported."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from settlement_helpers import cdr
from sqlalchemy import func, select

from settlement import repository as repo
from settlement.imports import ImportFailed, read_invoices, read_partner_cdrs
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.settlement_tables import SettlementImport, SettlementPartnerCdr

CSV_HEADER = ("id,country_code,party_id,emsp_country_code,emsp_party_id,evse_id,start_date_time,"
              "end_date_time,currency,total_cost_excl_vat,total_cost_incl_vat,total_energy,credit,credit_reference_id\n")


def test_json_array_reads_every_cdr_with_exact_money(tmp_path):
    p = tmp_path / "p.json"
    p.write_text(json.dumps([cdr("A", excl="10.1234", incl="12.2493"), cdr("B", evse="E2")], indent=2))
    got = read_partner_cdrs(p)
    assert got.frame["cdr_id"].tolist() == ["A", "B"]
    # 10.1234 EUR = 101234 units of 0.0001
    assert got.frame["cost_excl"].tolist() == [101234, 100000]
    assert got.lines[0] == 2 and got.lines[1] > 2  # "[" on line 1, the first element starts on line 2
    assert json.loads(got.docs[0])["id"] == "A"


def test_single_object_and_ocpi_envelope_and_json_lines(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps(cdr("A")))
    (tmp_path / "env.json").write_text(json.dumps({"data": [cdr("A"), cdr("B")], "status_code": 1000}))
    (tmp_path / "l.jsonl").write_text(json.dumps(cdr("A")) + "\n\n" + json.dumps(cdr("B")) + "\n")
    assert read_partner_cdrs(tmp_path / "one.json").frame["cdr_id"].tolist() == ["A"]
    assert read_partner_cdrs(tmp_path / "env.json").frame["cdr_id"].tolist() == ["A", "B"]
    got = read_partner_cdrs(tmp_path / "l.jsonl")
    assert got.frame["cdr_id"].tolist() == ["A", "B"] and got.lines == [1, 3]


def test_csv_reads_the_documented_columns(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text(CSV_HEADER
                 + "A,NL,CPO,DE,MSP,E1,2026-10-05T08:00:00Z,2026-10-05T09:00:00Z,EUR,10.00,12.10,20.5,,\n"
                 + "A-C,NL,CPO,DE,MSP,E1,2026-10-05T08:00:00Z,2026-10-05T09:00:00Z,EUR,-10.00,-12.10,20.5,true,A\n")
    f = read_partner_cdrs(p).frame
    assert f["cdr_id"].tolist() == ["A", "A-C"]
    assert f["credit"].tolist() == [False, True]
    assert f["energy"].tolist() == [20_500_000, 20_500_000]  # 20.5 kWh in 1e-6 kWh


def test_bad_rows_are_named_by_file_line_and_field(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(CSV_HEADER
                 + "A,NL,CPO,DE,MSP,E1,2026-10-05T08:00:00Z,2026-10-05T09:00:00Z,EUR,10.00,12.10,20,,\n"
                 + "B,NL,CPO,DE,MSP,E1,yesterday,2026-10-05T09:00:00Z,EUR,10.00,12.10,20,,\n"
                 + "C,NL,CPO,DE,MSP,E1,2026-10-05T08:00:00Z,2026-10-05T09:00:00Z,EUR,10.00001,,20,,\n"
                 + "D,NL,CPO,DE,MSP,E1,2026-10-05T08:00:00Z,2026-10-05T09:00:00Z,EUR,10.00,,20,true,\n")
    with pytest.raises(ImportFailed) as ei:
        read_partner_cdrs(p)
    got = [(e.line, e.field) for e in ei.value.errors]
    assert got == [(3, "start_date_time"), (4, "total_cost_excl_vat"), (5, "credit_reference_id")]
    assert f"{p}:3: start_date_time:" in str(ei.value)


def test_bad_json_cdr_names_the_ocpi_field(tmp_path):
    bad = cdr("B")
    bad["cdr_location"]["evse_id"] = 7
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(cdr("A")) + "\n" + json.dumps(bad) + "\n{not json\n")
    with pytest.raises(ImportFailed) as ei:
        read_partner_cdrs(p)
    got = [(e.line, e.field) for e in ei.value.errors]
    assert got == [(2, "cdr_location.evse_id"), (3, "(json)")]


def test_a_file_with_a_bad_row_is_not_half_imported(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    Session = make_sessionmaker(make_engine(url))
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(cdr(i)) for i in ("A", "B")))
    bad = tmp_path / "bad.jsonl"
    broken = cdr("Y")
    del broken["currency"]
    bad.write_text("\n".join([json.dumps(cdr("X")), json.dumps(broken)]))
    with pytest.raises(ImportFailed, match=r"bad.jsonl:2: currency"):
        parsed = read_partner_cdrs(bad)
        with Session.begin() as s:  # never reached: validation fails first
            repo.store_partner_cdrs(s, parsed, "NL*CPO")
    with Session.begin() as s:
        repo.store_partner_cdrs(s, read_partner_cdrs(good), "NL*CPO")
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(SettlementImport)) == 1
        assert sorted(s.scalars(select(SettlementPartnerCdr.cdr_id))) == ["A", "B"]
        frame, docs = repo.load_partner_cdrs(s, [1])
        assert frame["cost_excl"].tolist() == [100000, 100000] and json.loads(docs[0])["id"] == "A"


def test_invoice_csv_and_ocpi_invoice_reconciliation_records(tmp_path):
    c = tmp_path / "inv.csv"
    c.write_text("invoice_id,cdr_id,amount_excl_vat,currency\nINV-1,A,10.00,EUR\nINV-1,B,,\n")
    got = read_invoices(c, issuer="NL*CPO").frame
    assert got[["invoice_id", "cdr_id"]].values.tolist() == [["INV-1", "A"], ["INV-1", "B"]]
    assert got["amount_excl_vat"].tolist()[0] == Decimal("10.00")
    r = tmp_path / "ir.json"
    r.write_text(json.dumps([{"country_code": "NL", "party_id": "CPO", "id": "IR1", "invoice_id": "INV-9",
                              "cdrs": ["A", "B", "C"], "last_updated": "2026-11-02T10:00:00Z"}]))
    got = read_invoices(r).frame
    assert got["cdr_id"].tolist() == ["A", "B", "C"]
    assert set(got["issuer"]) == {"NL*CPO"} and set(got["record_id"]) == {"IR1"}


def test_bad_invoice_reconciliation_record_is_named(tmp_path):
    r = tmp_path / "ir.json"
    r.write_text('[\n{"country_code": "NL", "party_id": "CPO", "id": "IR1", "invoice_id": "I",'
                 ' "cdrs": [], "last_updated": "2026-11-02T10:00:00Z"}\n]')
    with pytest.raises(ImportFailed) as ei:
        read_invoices(r)
    assert [(e.line, e.field) for e in ei.value.errors] == [(2, "cdrs")]
