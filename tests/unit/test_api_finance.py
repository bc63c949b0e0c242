"""Finance API: API keys and roles, GET /cdrs, revenue reports (JSON and CSV), health, admin."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.apitools import add_api_key, cdr_json, insert_cdr, make_settings, migrated_sessionmaker


def exact(response) -> dict:
    return json.loads(response.text, parse_float=Decimal)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'fin.db'}"
    sm = migrated_sessionmaker(url)
    read_key = add_api_key(sm, "read")
    admin_key = add_api_key(sm, "admin")
    with sm() as db:
        # EUR, location L1 / EVSE E1, eMSP DE*8AA, tariff T1 unless said otherwise.
        rows = [
            # A: Jan 5 (Amsterdam), 10 kWh, 3.5050 excl / 4.2411 incl
            cdr_json("A", start="2026-01-05T09:00:00Z", energy="10", excl="3.5050", incl="4.2411",
                     location="L1", evse="E1", tariff="T1"),
            # B: Jan 31 23:30 UTC = Feb 1 00:30 Amsterdam, 20 kWh, 7.0000 / 8.4700, L2, FR*XYZ
            cdr_json("B", start="2026-01-31T23:30:00Z", energy="20", excl="7.0000", incl="8.4700",
                     location="L2", evse="E9", tariff="T2", emsp=("FR", "XYZ")),
            # C: credit for A (negative cost, same energy), Jan 6
            cdr_json("C", start="2026-01-05T09:00:00Z", energy="10", excl="-3.5050", incl="-4.2411",
                     location="L1", evse="E1", tariff="T1", credit_of="A", last_updated="2026-01-06T00:00:00Z"),
            # D: re-issued A, 10 kWh, 3.0000 / 3.6300
            cdr_json("D", start="2026-01-05T09:00:00Z", energy="10", excl="3.0000", incl="3.6300",
                     location="L1", evse="E1", tariff="T1"),
            # E: CHF, Jan 10, 8 kWh, 2.4449 excl, no incl
            cdr_json("E", start="2026-01-10T12:00:00Z", energy="8", excl="2.4449", incl=None, currency="CHF",
                     location="L3", evse="E3", tariff="T3"),
        ]
        for r in rows:
            insert_cdr(db, r)
        db.commit()
    app = create_app(make_settings(url))
    with TestClient(app) as client:
        yield client, read_key, admin_key


def test_finance_endpoints_need_an_api_key(env):
    client = env[0]
    r = client.get("/cdrs")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and "API key" in body["detail"]
    assert client.get("/reports/revenue", headers={"X-API-Key": "wrong"}).status_code == 401


def test_read_role_cannot_use_admin_endpoints(env):
    client, read_key, admin_key = env
    r = client.post("/admin/api-keys", json={"name": "x", "role": "read"}, headers={"X-API-Key": read_key})
    assert r.status_code == 403 and "needs role 'admin'" in r.json()["detail"]
    r = client.post("/admin/api-keys", json={"name": "x", "role": "read"}, headers={"X-API-Key": admin_key})
    assert r.status_code == 201
    new_key = r.json()["key"]
    assert client.get("/cdrs", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200


def test_cdrs_are_filtered_by_date_and_party_and_paginated(env):
    client, key, _ = env
    h = {"X-API-Key": key}
    body = exact(client.get("/cdrs", params={"limit": 2}, headers=h))
    assert body["total"] == 5 and len(body["items"]) == 2 and "offset=2" in body["next"]
    body = exact(client.get("/cdrs", params={"party": "FR*XYZ"}, headers=h))
    assert [c["id"] for c in body["items"]] == ["B"]
    body = exact(client.get("/cdrs", params={"date_from": "2026-01-05T09:00:00Z",
                                             "date_to": "2026-01-10T12:00:00Z"}, headers=h))
    assert sorted(c["id"] for c in body["items"]) == ["A", "C", "D"]  # E starts exactly at date_to
    assert body["items"][0]["total_cost"]["excl_vat"] in (Decimal("3.5050"), Decimal("-3.5050"), Decimal("3.0000"))


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "5000"}, {"party": "NL"}, {"date_from": "x"},
                                    {"offset": "-3"}, {"currency": "EURO"}])
def test_malformed_finance_parameters_are_400_problems(env, params):
    client, key, _ = env
    r = client.get("/cdrs", params=params, headers={"X-API-Key": key})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"].startswith("query.")


def test_dates_beyond_the_calendar_are_400_not_500(env):
    client, key, _ = env
    r = client.get("/cdrs", params={"date_from": "9999-12-31T23:59:59-05:00"}, headers={"X-API-Key": key})
    assert r.status_code == 400 and "out of the representable range" in r.json()["detail"]


def test_monthly_report_in_amsterdam_nets_credits_and_keeps_currencies_apart(env):
    client, key, _ = env
    r = client.get("/reports/revenue", params={"period": "month", "tz": "Europe/Amsterdam"},
                   headers={"X-API-Key": key})
    assert r.status_code == 200
    rows = {(x["period_start"], x["currency"]): x for x in exact(r)["rows"]}
    assert set(rows) == {("2026-01-01", "CHF"), ("2026-01-01", "EUR"), ("2026-02-01", "EUR")}
    jan = rows[("2026-01-01", "EUR")]
    # A + C + D: sessions 1 - 1 + 1 = 1; energy 10 - 10 + 10 = 10 kWh;
    # excl 3.5050 - 3.5050 + 3.0000 = 3.0000 -> 3.00; incl 4.2411 - 4.2411 + 3.6300 = 3.63
    # avg 3.0000 / 10 = 0.3000
    assert jan["sessions"] == 1 and jan["cdrs"] == 3
    assert jan["energy_kwh"] == Decimal("10")
    assert jan["revenue_excl_vat"] == Decimal("3.00") and jan["revenue_incl_vat"] == Decimal("3.63")
    assert jan["avg_price_per_kwh_excl_vat"] == Decimal("0.3000")
    feb = rows[("2026-02-01", "EUR")]  # B, in February local time
    assert feb["revenue_excl_vat"] == Decimal("7.00") and feb["avg_price_per_kwh_excl_vat"] == Decimal("0.3500")
    chf = rows[("2026-01-01", "CHF")]
    # 2.4449 -> 2.44 (half up only from .xx5); no incl_vat on the CDR -> null, not 0
    assert chf["revenue_excl_vat"] == Decimal("2.44") and chf["revenue_incl_vat"] is None
    # 2.4449 / 8 = 0.3056125 -> 0.3056
    assert chf["avg_price_per_kwh_excl_vat"] == Decimal("0.3056")
    totals = {t["currency"]: t for t in exact(r)["totals"]}
    # EUR total: 3.0000 + 7.0000 = 10.00 over 30 kWh, 2 sessions
    assert totals["EUR"]["revenue_excl_vat"] == Decimal("10.00") and totals["EUR"]["sessions"] == 2
    assert totals["CHF"]["revenue_excl_vat"] == Decimal("2.44")


def test_report_by_location_and_party_with_a_date_range(env):
    client, key, _ = env
    r = client.get("/reports/revenue", params=[("period", "total"), ("by", "location"), ("by", "party"),
                                               ("date_from", "2026-01-01"), ("date_to", "2026-02-01"),
                                               ("tz", "Europe/Amsterdam"), ("currency", "EUR")],
                   headers={"X-API-Key": key})
    rows = exact(r)["rows"]
    # B is on Feb 1 locally, so January in Amsterdam holds only L1 (A, C, D)
    assert [(x["location_id"], x["emsp_country_code"], x["emsp_party_id"]) for x in rows] == [("L1", "DE", "8AA")]
    assert rows[0]["revenue_excl_vat"] == Decimal("3.00")


def test_weekly_and_daily_buckets_start_on_monday_and_local_midnight(env):
    client, key, _ = env
    rows = exact(client.get("/reports/revenue", params={"period": "week", "tz": "Europe/Amsterdam", "currency": "EUR"},
                            headers={"X-API-Key": key}))["rows"]
    # 2026-01-05 is a Monday; 2026-02-01 is a Sunday -> its week starts Monday 2026-01-26
    assert [x["period_start"] for x in rows] == ["2026-01-05", "2026-01-26"]
    rows = exact(client.get("/reports/revenue", params={"period": "day", "currency": "EUR"},
                            headers={"X-API-Key": key}))["rows"]
    assert [x["period_start"] for x in rows] == ["2026-01-05", "2026-01-31"]  # in UTC, B is still Jan 31


def test_report_as_streamed_csv(env):
    client, key, _ = env
    r = client.get("/reports/revenue", params={"period": "month", "tz": "Europe/Amsterdam", "format": "csv"},
                   headers={"X-API-Key": key})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0].keys() >= {"period_start", "currency", "revenue_excl_vat", "avg_price_per_kwh_excl_vat"}
    eur_jan = next(x for x in rows if x["currency"] == "EUR" and x["period_start"] == "2026-01-01")
    assert eur_jan["revenue_excl_vat"] == "3.00" and eur_jan["revenue_incl_vat"] == "3.63"
    chf = next(x for x in rows if x["currency"] == "CHF")
    assert chf["revenue_incl_vat"] == ""
    by_accept = client.get("/reports/revenue", headers={"X-API-Key": key, "Accept": "text/csv"})
    assert by_accept.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize("params, reason", [
    ({"tz": "Mars/Olympus"}, "Unknown time zone"),
    ({"tz": "../../etc/passwd"}, "Unknown time zone"),
    ({"period": "year"}, "period"),
    ({"by": "planet"}, "by"),
    ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "date_to must be after"),
    ({"date_from": "0001-01-01"}, "out of range"),
])
def test_bad_report_parameters_are_400_with_a_reason(env, params, reason):
    client, key, _ = env
    r = client.get("/reports/revenue", params=params, headers={"X-API-Key": key})
    assert r.status_code == 400, r.text
    assert reason in json.dumps(r.json())


def test_health_reports_an_unreachable_broker_as_503(env):
    client = env[0]
    r = client.get("/health")  # settings point Kafka at 127.0.0.1:1
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["kafka"]["status"] == "down" and checks["kafka"]["error"]
    assert checks["database"]["status"] == "up"


def test_openapi_is_served_without_authentication(env):
    client = env[0]
    doc = client.get("/openapi.json").json()
    assert "/ocpi/cpo/2.2.1/cdrs" in doc["paths"] and "Cdr" in doc["components"]["schemas"]


def test_cached_report_is_recomputed_when_a_cdr_is_added(tmp_path):
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    sm = migrated_sessionmaker(url)
    key = add_api_key(sm, "read")
    with sm() as db:
        insert_cdr(db, cdr_json("K1", excl="1.0000"))
        db.commit()
    with TestClient(create_app(make_settings(url, report_cache_ttl_s=600))) as client:
        first = exact(client.get("/reports/revenue", headers={"X-API-Key": key}))["totals"][0]
        assert first["revenue_excl_vat"] == Decimal("1.00")
        with sm() as db:
            insert_cdr(db, cdr_json("K2", excl="2.0000"))
            db.commit()
        # 1.0000 + 2.0000 = 3.00: the new CDR changes the table's version, the cache misses
        second = exact(client.get("/reports/revenue", headers={"X-API-Key": key}))["totals"][0]
        assert second["revenue_excl_vat"] == Decimal("3.00")
