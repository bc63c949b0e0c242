"""The two commands end to end on an embedded SQLite database and files."""

from __future__ import annotations

import json

from settlement_helpers import cdr

from chargeledger.cli import main

CONTRACTS = {
    "parties": [{"party": "NL*CPO", "role": "CPO"}, {"party": "DE*MSP", "role": "EMSP"}],
    "contracts": [{"id": "K1", "cpo": "NL*CPO", "emsp": "DE*MSP", "currency": "EUR", "vat": "from_cdr",
                   "tolerances": {"amount": "0.01", "energy_kwh": "0.01", "duration_s": 60, "start_s": 120}}],
}


def test_reconcile_then_issue_and_export_a_statement(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHARGELEDGER_COUNTRY_CODE", "NL")
    monkeypatch.setenv("CHARGELEDGER_PARTY_ID", "CPO")
    from chargeledger.settings import get_settings

    get_settings.cache_clear()
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    (tmp_path / "contracts.json").write_text(json.dumps(CONTRACTS))
    (tmp_path / "ours.jsonl").write_text("\n".join(json.dumps(cdr(i, evse=f"E{i}")) for i in ("A", "B", "C")))
    (tmp_path / "theirs.json").write_text(json.dumps(
        [cdr("A", evse="EA"), cdr("B", evse="EB", excl="11.00", incl="13.31"), cdr("D", evse="ED")]))
    (tmp_path / "inv.csv").write_text("invoice_id,cdr_id\nINV-1,A\nINV-1,B\nINV-1,D\n")
    rc = main(["reconcile", "--party", "DE*MSP", "--period", "2026-10", "--ours", str(tmp_path / "ours.jsonl"),
               "--partner-cdrs", str(tmp_path / "theirs.json"), "--invoices", str(tmp_path / "inv.csv"),
               "--contracts", str(tmp_path / "contracts.json"), "--db", db, "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    # A matched (10.00 each), B amount mismatch (10.00 vs 11.00), C missing at partner, D missing at us
    lines = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln and ln.split()[0] in (
        "matched", "amount_mismatch", "missing_at_partner", "missing_at_us", "total")}
    assert lines["matched"][1:] == ["1", "10.0000", "10.0000", "0.0000"]
    assert lines["amount_mismatch"][1:] == ["1", "10.0000", "11.0000", "1.0000"]
    assert lines["missing_at_partner"][1] == "1" and lines["missing_at_us"][1] == "1"
    assert "our engine agrees with: not_repriced 1" in out  # contract K1 names no tariff

    assert main(["statement", "--db", db, "issue", "--party", "DE*MSP", "--period", "2026-10"]) == 0
    out = capsys.readouterr().out
    sid = out.split()[2]
    # settled: A only, 10.00 net, 2.10 VAT, 12.10 incl
    assert "EUR NL*CPO: 1 CDRs, net 10.00, VAT 2.10, incl 12.10, net position 12.10" in out
    for fmt in ("csv", "parquet", "html"):
        assert main(["statement", "--db", db, "export", sid, "--format", fmt, "--out", str(tmp_path / f"s.{fmt}")]) == 0
    assert "12.10" in (tmp_path / "s.html").read_text()
    get_settings.cache_clear()


def test_reconcile_reports_a_bad_partner_file_and_exits_2(tmp_path, capsys):
    (tmp_path / "contracts.json").write_text(json.dumps(CONTRACTS))
    (tmp_path / "ours.jsonl").write_text(json.dumps(cdr("A")))
    (tmp_path / "theirs.jsonl").write_text(json.dumps(cdr("A")) + "\n" + json.dumps(cdr("B", currency="EURO")))
    rc = main(["reconcile", "--party", "DE*MSP", "--us", "NL*CPO", "--period", "2026-10", "--ours",
               str(tmp_path / "ours.jsonl"), "--partner-cdrs", str(tmp_path / "theirs.jsonl"),
               "--contracts", str(tmp_path / "contracts.json"), "--no-db", "--quiet"])
    assert rc == 2
    assert "theirs.jsonl:2: currency" in capsys.readouterr().err


def test_reconcile_refuses_a_currency_mismatch(tmp_path, capsys):
    (tmp_path / "contracts.json").write_text(json.dumps(CONTRACTS))
    (tmp_path / "ours.jsonl").write_text(json.dumps(cdr("A")))
    (tmp_path / "theirs.jsonl").write_text(json.dumps(cdr("A", currency="USD")))
    rc = main(["reconcile", "--party", "DE*MSP", "--us", "NL*CPO", "--period", "2026-10", "--ours",
               str(tmp_path / "ours.jsonl"), "--partner-cdrs", str(tmp_path / "theirs.jsonl"),
               "--contracts", str(tmp_path / "contracts.json"), "--no-db", "--quiet"])
    assert rc == 2
    assert "not in the contract currency EUR" in capsys.readouterr().err


def test_invoice_lines_for_cdrs_of_another_period_are_left_out(tmp_path, capsys):
    from datetime import datetime, timezone

    (tmp_path / "contracts.json").write_text(json.dumps(CONTRACTS))
    nov = datetime(2026, 11, 3, 9, tzinfo=timezone.utc)
    (tmp_path / "ours.jsonl").write_text(json.dumps(cdr("A")) + "\n" + json.dumps(cdr("N", start=nov)))
    (tmp_path / "theirs.jsonl").write_text(json.dumps(cdr("A")) + "\n" + json.dumps(cdr("N", start=nov)))
    (tmp_path / "inv.csv").write_text("invoice_id,cdr_id\nINV-1,A\nINV-1,N\n")
    rc = main(["reconcile", "--party", "DE*MSP", "--us", "NL*CPO", "--period", "2026-10", "--ours",
               str(tmp_path / "ours.jsonl"), "--partner-cdrs", str(tmp_path / "theirs.jsonl"),
               "--invoices", str(tmp_path / "inv.csv"), "--contracts", str(tmp_path / "contracts.json"), "--no-db"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "1 invoice line(s) name CDRs of another pair or period: left out" in captured.err
    counts = {ln.split()[0]: ln.split()[1] for ln in captured.out.splitlines()[2:] if ln and not ln.startswith("-")}
    assert counts["matched"] == "1" and counts["invoiced_not_delivered"] == "0"
