"""Settlement reports through the finance API: runs, their lines (JSON, CSV), statements."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from settlement.statements import canonical_json, content_hash
from storage.settlement_tables import (
    SettlementResult,
    SettlementRun,
    SettlementRunClass,
    SettlementStatement,
    SettlementStatementTotal,
)
from tests.apitools import add_api_key, make_settings, migrated_sessionmaker

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('settle') / 's.db'}"
    sm = migrated_sessionmaker(url)
    key = add_api_key(sm, "read")
    content = {"kind": "pair", "period": "2026-10", "party": "NL*CLG", "counterparty": "DE*8AA",
               "totals": [{"currency": "EUR", "net_excl_vat": "12.3400"}]}
    with sm() as db:
        db.add(SettlementRun(id="run-1", contract_id="C1", party="NL*CLG", counterparty="DE*8AA", period="2026-10",
                             currency="EUR", created_at=T0, our_count=3, partner_count=3, invoice_line_count=0,
                             ours_source="db", partner_source="file", matched_stored=False))
        db.flush()
        db.add(SettlementRunClass(run_id="run-1", cls="amount_mismatch", count=1, our_excl_vat=Decimal("4.0000"),
                                  our_incl_vat=Decimal("4.8400"), partner_excl_vat=Decimal("4.1000"),
                                  partner_incl_vat=Decimal("4.9610")))
        db.add_all([
            SettlementResult(run_id="run-1", cls="amount_mismatch", side="both", our_cdr_id="A",
                             partner_cdr_id="A", our_cost_excl=Decimal("4.0000"), partner_cost_excl=Decimal("4.1000")),
            SettlementResult(run_id="run-1", cls="missing_at_partner", side="ours", our_cdr_id="B",
                             our_cost_excl=Decimal("1.2345")),
        ])
        db.add(SettlementStatement(id="st-1", kind="pair", party="NL*CLG", counterparty="DE*8AA", period="2026-10",
                                   issued_at=T0, corrects_id=None, run_ids='["run-1"]',
                                   content_json=canonical_json(content), content_hash=content_hash(content)))
        db.flush()
        db.add(SettlementStatementTotal(statement_id="st-1", currency="EUR", party="DE*8AA", cdr_count=3,
                                        net_excl_vat=Decimal("12.3400"), vat=Decimal("2.5914"),
                                        total_incl_vat=Decimal("14.9314"), net_position=Decimal("-14.9314")))
        db.commit()
    with TestClient(create_app(make_settings(url))) as client:
        yield client, {"X-API-Key": key}


def exact(r):
    return json.loads(r.text, parse_float=Decimal)


def test_runs_with_class_money(env):
    client, h = env
    runs = exact(client.get("/settlement/runs", params={"period": "2026-10", "party": "DE*8AA"}, headers=h))
    assert [r["id"] for r in runs] == ["run-1"]
    assert runs[0]["classes"][0]["partner_incl_vat"] == Decimal("4.9610")
    assert client.get("/settlement/runs/nope", headers=h).status_code == 404


def test_run_lines_as_json_page_and_csv(env):
    client, h = env
    page = exact(client.get("/settlement/runs/run-1/results", params={"cls": "missing_at_partner"}, headers=h))
    assert page["total"] == 1 and page["items"][0]["our_cost_excl"] == Decimal("1.2345")
    r = client.get("/settlement/runs/run-1/results", params={"format": "csv"}, headers=h)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["our_cdr_id"] for x in rows] == ["A", "B"] and rows[1]["our_cost_excl"] == "1.2345"
    assert client.get("/settlement/runs/run-1/results", params={"cls": "nonsense"}, headers=h).status_code == 400


def test_statement_content_as_issued(env):
    client, h = env
    listed = exact(client.get("/settlement/statements", params={"party": "DE*8AA"}, headers=h))
    assert listed[0]["totals"][0]["net_position"] == Decimal("-14.9314")
    one = exact(client.get("/settlement/statements/st-1", headers=h))
    assert one["content"]["totals"][0]["net_excl_vat"] == "12.3400"
    assert client.get("/settlement/statements/none", headers=h).status_code == 404
    assert client.get("/settlement/statements").status_code == 401
