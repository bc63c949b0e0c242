"""The API on the real PostgreSQL server and Kafka broker: migrations, health, OCPI CDR pages,
reports aggregated in SQL, the outbox written in the CDR's transaction."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from storage.outbox import enqueue_cdr_push
from tests.apitools import add_api_key, add_partner, cdr_json, insert_cdr, migrated_sessionmaker


@pytest.fixture(scope="module")
def pg_env(settings):
    sm = migrated_sessionmaker(settings.database_url)
    key = add_api_key(sm, "read")
    _, de = add_partner(sm, "DE eMSP", [("EMSP", "DE", "8AA")], cdrs_receiver_url="http://127.0.0.1:1/cdrs",
                        token_b="b-token")
    with sm() as db:
        # Jan 31 23:30 UTC is Feb 1 00:30 in Amsterdam: a January CDR in UTC, February locally.
        insert_cdr(db, cdr_json("PG-1", start="2026-01-15T10:00:00Z", excl="10.0050", incl="12.1061",
                                energy="20.000"))
        insert_cdr(db, cdr_json("PG-2", start="2026-01-31T23:30:00Z", excl="5.0000", incl="6.0500",
                                energy="10.000"))
        insert_cdr(db, cdr_json("PG-3", start="2026-01-20T08:00:00Z", excl="3.3333", incl="4.0333",
                                energy="5.000", currency="CHF"))
        db.commit()
    app = create_app(settings.model_copy(update={"cdr_push_enabled": False, "report_cache_ttl_s": 0}))
    with TestClient(app) as client:
        yield client, key, de, sm


def test_health_is_up_with_the_real_broker_and_database(pg_env):
    client = pg_env[0]
    r = client.get("/health")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert checks["kafka"]["status"] == "up" and checks["kafka"]["brokers"] >= 1
    assert checks["database"] == {**checks["database"], "status": "up", "dialect": "postgresql"}


def test_monthly_revenue_in_amsterdam_time_aggregated_in_sql(pg_env):
    client, key = pg_env[0], pg_env[1]
    r = client.get("/reports/revenue", params={"period": "month", "tz": "Europe/Amsterdam"},
                   headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    rows = json.loads(r.text, parse_float=Decimal)["rows"]
    by = {(row["period_start"], row["currency"]): row for row in rows}
    # CHF: 3.3333 -> 3.33; EUR January: only PG-1, 10.0050 -> 10.01 (half up);
    # EUR February (local): PG-2, 5.00; avg price PG-1: 10.0050 / 20 = 0.500250 -> 0.5003
    assert by[("2026-01-01", "CHF")]["revenue_excl_vat"] == Decimal("3.33")
    assert by[("2026-01-01", "EUR")]["revenue_excl_vat"] == Decimal("10.01")
    assert by[("2026-01-01", "EUR")]["avg_price_per_kwh_excl_vat"] == Decimal("0.5003")
    assert by[("2026-02-01", "EUR")]["revenue_excl_vat"] == Decimal("5.00")
    assert by[("2026-02-01", "EUR")]["energy_kwh"] == Decimal("10")
    # In UTC both EUR CDRs are January: 10.0050 + 5.0000 = 15.0050 -> 15.01
    r = client.get("/reports/revenue", params={"period": "month"}, headers={"X-API-Key": key})
    utc = {(row["period_start"], row["currency"]): row for row in json.loads(r.text, parse_float=Decimal)["rows"]}
    assert utc[("2026-01-01", "EUR")]["revenue_excl_vat"] == Decimal("15.01")
    assert utc[("2026-01-01", "EUR")]["sessions"] == 2


def test_ocpi_page_and_outbox_on_postgres(pg_env):
    client, _, de, sm = pg_env
    r = client.get("/ocpi/cpo/2.2.1/cdrs", headers={"Authorization": "Token " + base64.b64encode(de.encode()).decode()})
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "3"
    with sm() as db:
        row = insert_cdr(db, cdr_json("PG-4", start="2026-03-01T10:00:00Z"))
        assert enqueue_cdr_push(db, row) == 1
        assert enqueue_cdr_push(db, row) == 0  # idempotent by CDR id
        db.commit()


def test_incremental_report_equals_a_full_recomputation(pg_env):
    from api.reports import ReportCache, ReportQuery, build_report

    sm = pg_env[3]
    q = ReportQuery(period="day", by=("location", "party"), tz="Europe/Amsterdam", date_from=None, date_to=None,
                    currency=None)
    cache = ReportCache(ttl_s=600)
    with sm() as db:
        before, _ = cache.get(db, q)
        insert_cdr(db, cdr_json("PG-INC-1", start="2026-01-15T11:00:00Z", excl="0.0049", energy="0.010"))
        insert_cdr(db, cdr_json("PG-INC-2", start="2026-05-05T05:00:00Z", excl="2.5000", location="L-NEW"))
        db.commit()
        after, _ = cache.get(db, q)  # cached sums + the two new CDRs only
        assert after == build_report(db, q)
        assert after != before


@pytest.mark.parametrize("period", ["day", "week", "month", "total"])
def test_sql_aggregation_matches_the_python_grouping(pg_env, period):
    """The PostgreSQL path (date_trunc on start AT TIME ZONE tz) and the portable Python path
    give the same groups, for a zone with a half-hour offset too."""
    from api.reports import ReportQuery, _aggregate_python, _aggregate_sql, dimension_columns

    sm = pg_env[3]
    for tz in ("Europe/Amsterdam", "Asia/Kolkata", "America/St_Johns"):
        q = ReportQuery(period=period, by=("evse", "tariff"), tz=tz, date_from=None, date_to=None, currency=None)
        dims = dimension_columns(q.by)
        with sm() as db:
            sql_rows = _aggregate_sql(db, q, dims, [])
            py_rows = _aggregate_python(db, q, dims, [])
        normalise = lambda rows: sorted((tuple(str(v) for v in r) for r in rows))  # noqa: E731
        assert normalise(sql_rows) == normalise(py_rows)
