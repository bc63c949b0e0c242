"""Runs stored and queried (what the API serves), on the embedded SQLite database."""

from __future__ import annotations

from decimal import Decimal

from settlement_helpers import cdr, contract

from settlement import repository as repo
from settlement.contracts import ContractBook
from settlement.frames import cdr_frame
from settlement.reconcile import reconcile
from settlement.statements import build_statement
from storage.db import make_engine, make_sessionmaker, upgrade


def test_a_run_is_stored_with_its_findings_and_can_be_queried(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    Session = make_sessionmaker(make_engine(url))
    c = contract()
    ours = [cdr("A", evse="E1"), cdr("B", evse="E2", excl="5.00", incl="6.05"), cdr("C", evse="E3")]
    theirs = [cdr("A", evse="E1"), cdr("B", evse="E2", excl="5.50", incl="6.66")]
    rec = reconcile(cdr_frame(ours), cdr_frame(theirs), c, period="2026-10")
    with Session.begin() as s:
        repo.save_book(s, ContractBook((), (c,)))
        run_id = repo.save_run(s, rec, party="NL*CPO", ours_source="test", partner_source="test")
    with Session() as s:
        assert [r.id for r in repo.list_runs(s, period="2026-10", party="DE*MSP")] == [run_id]
        classes = {r.cls: (r.count, r.our_excl_vat, r.partner_excl_vat) for r in repo.run_classes(s, run_id)}
        # matched A: 10.00 both; B: ours 5.00, partner 5.50; C: ours 10.00 only
        assert classes["matched"] == (1, Decimal("10.0000"), Decimal("10.0000"))
        assert classes["amount_mismatch"] == (1, Decimal("5.0000"), Decimal("5.5000"))
        assert classes["missing_at_partner"] == (1, Decimal("10.0000"), Decimal("0.0000"))
        page, total = repo.run_results(s, run_id)
        assert total == 2  # matched lines are not stored by default
        assert {(r.cls, r.our_cdr_id) for r in page} == {("amount_mismatch", "B"), ("missing_at_partner", "C")}
        page, total = repo.run_results(s, run_id, cls="amount_mismatch")
        assert total == 1 and page[0].partner_cost_excl == Decimal("5.5000")
        cp = repo.contract_period_of_run(s, run_id, c)
    content = build_statement("pair", "NL*CPO", "DE*MSP", "2026-10", [cp])
    with Session.begin() as s:
        sid = repo.issue_statement(s, content)
    with Session() as s:
        assert [st.id for st in repo.list_statements(s, party="DE*MSP")] == [sid]
        totals = {t.party: t.net_position for t in repo.statement_totals(s, sid)}
        # settled: A only, 12.10 incl VAT from the eMSP to the CPO
        assert totals == {"NL*CPO": Decimal("12.1000"), "DE*MSP": Decimal("-12.1000")}
