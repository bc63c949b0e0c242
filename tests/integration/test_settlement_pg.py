"""Settlement on the real PostgreSQL server: partner imports are all or nothing, issued
statements cannot be changed, our CDRs are read from the pipeline's cdrs table."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from settlement import repository as repo
from settlement.contracts import Contract, ContractBook, Period
from settlement.imports import ImportFailed, read_partner_cdrs
from settlement.reconcile import reconcile
from settlement.statements import ClassTotals, ContractPeriod, build_statement
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.settlement_tables import SettlementImport, SettlementPartnerCdr
from tests.unit.settlement_helpers import cdr


@pytest.fixture(scope="module")
def Session(pg_url):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _counts(Session):
    with Session() as s:
        return (s.scalar(select(func.count()).select_from(SettlementImport)),
                s.scalar(select(func.count()).select_from(SettlementPartnerCdr)))


def test_partner_file_with_a_bad_row_imports_nothing(Session, tmp_path):
    before = _counts(Session)
    rows = [cdr(f"R{i}", evse=f"E{i}") for i in range(10)]
    rows[7]["total_energy"] = "lots"
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ImportFailed, match=r"bad.jsonl:8: total_energy"):
        parsed = read_partner_cdrs(p)
        with Session.begin() as s:
            repo.store_partner_cdrs(s, parsed, "NL*CPO")
    assert _counts(Session) == before


def test_a_row_the_database_refuses_mid_file_rolls_back_the_whole_import(Session, tmp_path):
    # 12 000 valid CDRs (three insert batches of 5 000); PostgreSQL refuses a NUL character
    # in text, here in the last row's EVSE id, after two batches were already sent.
    before = _counts(Session)
    p = tmp_path / "big.jsonl"
    p.write_text("\n".join(json.dumps(cdr(f"B{i}", evse=f"E{i}")) for i in range(12_000)))
    parsed = read_partner_cdrs(p)
    parsed.frame.loc[11_999, "evse_id"] = "E\x00"
    with pytest.raises(DBAPIError), Session.begin() as s:
        repo.store_partner_cdrs(s, parsed, "NL*CPO")
    assert _counts(Session) == before


def test_issued_statement_cannot_be_updated_or_deleted_and_a_correction_references_it(Session):
    c = Contract(id="PG-K", cpo="NL*CPO", emsp="DE*PGM", currency="EUR")
    with Session.begin() as s:
        repo.save_book(s, ContractBook((), (c,)))
    cp = ContractPeriod(c, "2026-10", {"matched": ClassTotals(2, D("20.00"), D("24.20"), D("20.00"), D("24.20"))})
    content = build_statement("pair", "NL*CPO", "DE*PGM", "2026-10", [cp])
    with Session.begin() as s:
        sid = repo.issue_statement(s, content)
    for sql in ("UPDATE settlement_statements SET period = '2026-11' WHERE id = :id",
                "DELETE FROM settlement_statements WHERE id = :id",
                "UPDATE settlement_statement_totals SET net_position = 0 WHERE statement_id = :id",
                "DELETE FROM settlement_statement_totals WHERE statement_id = :id"):
        with pytest.raises(DBAPIError, match="immutable"), Session.begin() as s:
            s.execute(text(sql), {"id": sid})
    cp2 = ContractPeriod(c, "2026-10", {"matched": ClassTotals(2, D("21.00"), D("25.41"), D("21.00"), D("25.41"))})
    with Session.begin() as s:
        sid2 = repo.issue_statement(s, build_statement("pair", "NL*CPO", "DE*PGM", "2026-10", [cp2], corrects=sid))
    with Session() as s:
        row, stored = repo.load_statement(s, sid2)
        assert row.corrects_id == sid
        _, old = repo.load_statement(s, sid)
        # the original still says 20.00 net, 4.20 VAT, 24.20 incl
        assert (old["contracts"][0]["net_excl_vat"], old["contracts"][0]["vat_amount"],
                old["contracts"][0]["total_incl_vat"]) == ("20.00", "4.20", "24.20")


def test_our_cdrs_come_from_the_pipeline_cdrs_table(Session):
    from schemas.ocpi import Cdr
    from storage.models import CdrRecord

    c = Contract(id="PG-DB", cpo="NL*DBC", emsp="DE*DBM", currency="EUR")
    with Session.begin() as s:
        for i, start_day in enumerate((5, 6)):
            doc = cdr(f"DB{i}", evse=f"E{i}", cpo="NL*DBC", emsp="DE*DBM",
                      start=datetime(2026, 10, start_day, 8, tzinfo=timezone.utc))
            m = Cdr.model_validate(doc)
            body = m.model_dump_json()
            s.add(CdrRecord(
                country_code=m.country_code, party_id=m.party_id, id=m.id, start_date_time=m.start_date_time,
                end_date_time=m.end_date_time, currency=m.currency, total_cost_excl_vat=m.total_cost.excl_vat,
                total_cost_incl_vat=m.total_cost.incl_vat, total_energy=m.total_energy, total_time=m.total_time,
                credit=False, emsp_country_code="DE", emsp_party_id="DBM", location_id="LOC1",
                evse_uid=f"E{i}", last_updated=m.last_updated, cdr_json=body,
                content_hash=hashlib.sha256(body.encode()).hexdigest(), published=True))
    with Session() as s:
        ours, _ = repo.load_our_cdrs(s, c, Period.parse("2026-10"))
    assert sorted(ours["cdr_id"]) == ["DB0", "DB1"]
    theirs = ours.iloc[[0]]
    rec = reconcile(ours, theirs, c, period="2026-10")
    assert rec.classes_of("ours") == {"DB0": "matched", "DB1": "missing_at_partner"}
