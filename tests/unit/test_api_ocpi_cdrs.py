"""OCPI CDRs sender and receiver, authentication and routing headers (SQLite, TestClient)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.apitools import add_partner, cdr_json, insert_cdr, make_settings, migrated_sessionmaker


def tok(token: str) -> dict:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.db'}"
    sm = migrated_sessionmaker(url)
    _, de_token = add_partner(sm, "DE eMSP", [("EMSP", "DE", "8AA")])
    _, fr_token = add_partner(sm, "FR eMSP", [("EMSP", "FR", "XYZ")])
    _, pending_token = add_partner(sm, "pending", [("EMSP", "BE", "PEN")], registered=False)
    with sm() as db:
        # 5 CDRs for DE*8AA (last_updated 10:00..14:00 on Jan 10), 2 for FR*XYZ
        for i in range(5):
            insert_cdr(db, cdr_json(f"DE-{i}", last_updated=f"2026-01-10T{10 + i:02d}:00:00Z"))
        for i in range(2):
            insert_cdr(db, cdr_json(f"FR-{i}", emsp=("FR", "XYZ"), last_updated=f"2026-01-10T{10 + i:02d}:30:00Z"))
        db.commit()
    app = create_app(make_settings(url, ocpi_page_limit=2))
    with TestClient(app) as client:
        yield client, de_token, fr_token, pending_token


def test_partner_pages_through_only_its_own_cdrs(env):
    client, de, _, _ = env
    r = client.get("/ocpi/cpo/2.2.1/cdrs", headers=tok(de))
    assert r.status_code == 200
    body = r.json()
    assert body["status_code"] == 1000 and "timestamp" in body
    assert [c["id"] for c in body["data"]] == ["DE-0", "DE-1"]
    assert r.headers["X-Total-Count"] == "5"
    assert r.headers["X-Limit"] == "2"  # server max, though the client asked for nothing
    assert r.headers["Link"].endswith('/ocpi/cpo/2.2.1/cdrs?offset=2&limit=2>; rel="next"')
    seen = []
    url = "/ocpi/cpo/2.2.1/cdrs"
    while url:
        r = client.get(url, headers=tok(de))
        seen += [c["id"] for c in r.json()["data"]]
        link = r.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    assert seen == ["DE-0", "DE-1", "DE-2", "DE-3", "DE-4"]  # the last page has no Link


def test_date_from_is_inclusive_and_date_to_exclusive(env):
    client, de, _, _ = env
    # last_updated 11:00 (DE-1) included, 13:00 (DE-3) excluded -> DE-1, DE-2
    r = client.get("/ocpi/cpo/2.2.1/cdrs", params={"date_from": "2026-01-10T11:00:00Z",
                                                   "date_to": "2026-01-10T13:00:00Z", "limit": 10},
                   headers=tok(de))
    assert [c["id"] for c in r.json()["data"]] == ["DE-1", "DE-2"]
    assert r.headers["X-Total-Count"] == "2"
    assert "Link" not in r.headers


def test_next_link_keeps_the_filters(env):
    client, de, _, _ = env
    r = client.get("/ocpi/cpo/2.2.1/cdrs/", params={"date_from": "2026-01-10T11:00:00", "limit": 1},
                   headers=tok(de))
    assert r.status_code == 200
    link = r.headers["Link"]
    assert "offset=1" in link and "limit=1" in link and "date_from=2026-01-10T11%3A00%3A00Z" in link


def test_cdr_money_is_exact_in_the_page(env):
    client, de, _, _ = env
    r = client.get("/ocpi/cpo/2.2.1/cdrs", headers=tok(de))
    raw = json.loads(r.text, parse_float=Decimal)
    assert raw["data"][0]["total_cost"] == {"excl_vat": Decimal("4.00"), "incl_vat": Decimal("4.40")}
    assert '"excl_vat":4.00' in r.text.replace(" ", "")


def test_another_partys_cdrs_are_never_served(env):
    client, _, fr, _ = env
    r = client.get("/ocpi/cpo/2.2.1/cdrs", params={"limit": 100}, headers=tok(fr))
    assert {c["cdr_token"]["party_id"] for c in r.json()["data"]} == {"XYZ"}
    assert r.headers["X-Total-Count"] == "2"
    # claiming to be DE*8AA in the routing headers is refused
    r = client.get("/ocpi/cpo/2.2.1/cdrs", headers={**tok(fr), "OCPI-from-country-code": "DE",
                                                     "OCPI-from-party-id": "8AA"})
    assert r.status_code == 403
    assert r.json()["status_code"] == 2001 and "not one of your registered parties" in r.json()["status_message"]


def test_routing_headers_on_the_response(env):
    client, de, _, _ = env
    r = client.get("/ocpi/cpo/2.2.1/cdrs", headers={**tok(de), "X-Request-ID": "req-1",
                                                     "X-Correlation-ID": "corr-1"})
    assert r.headers["OCPI-from-country-code"] == "NL" and r.headers["OCPI-from-party-id"] == "CLG"
    assert r.headers["OCPI-to-country-code"] == "DE" and r.headers["OCPI-to-party-id"] == "8AA"
    assert r.headers["X-Request-ID"] == "req-1" and r.headers["X-Correlation-ID"] == "corr-1"
    r = client.get("/ocpi/cpo/2.2.1/cdrs", headers={**tok(de), "OCPI-to-country-code": "BE",
                                                     "OCPI-to-party-id": "OTH"})
    assert r.status_code == 400 and "this platform is NL*CLG" in r.json()["status_message"]


@pytest.mark.parametrize("headers, reason", [
    ({}, "Missing Authorization"),
    ({"Authorization": "Bearer abc"}, "must be 'Token"),
    ({"Authorization": "Token " + base64.b64encode(b"nope").decode()}, "Unknown credentials token"),
    ({"Authorization": "Token"}, "must be 'Token"),
])
def test_missing_or_bad_tokens_are_401_with_a_reason(env, headers, reason):
    client = env[0]
    r = client.get("/ocpi/cpo/2.2.1/cdrs", headers=headers)
    assert r.status_code == 401
    assert r.json()["status_code"] == 2000 and reason in r.json()["status_message"]


def test_plain_token_only_when_configured(env):
    client, de, _, _ = env
    r = client.get("/ocpi/cpo/2.2.1/cdrs", headers={"Authorization": f"Token {de}"})
    assert r.status_code == 401 and "Base64" in r.json()["status_message"]


def test_token_a_is_refused_outside_versions_and_credentials(env):
    client, _, _, pending = env
    assert client.get("/ocpi/versions", headers=tok(pending)).status_code == 200
    r = client.get("/ocpi/cpo/2.2.1/cdrs", headers=tok(pending))
    assert r.status_code == 401 and "CREDENTIALS_TOKEN_A" in r.json()["status_message"]


@pytest.mark.parametrize("params", [
    {"limit": "abc"}, {"limit": "0"}, {"offset": "-1"}, {"date_from": "yesterday"},
    {"date_from": "2026-01-02T00:00:00Z", "date_to": "2026-01-01T00:00:00Z"}, {"limit": "99999999999999999999"},
    {"date_from": "9999-12-31T23:59:59-05:00"}, {"date_to": "0001-01-01T00:00:00+05:00"},
])
def test_malformed_parameters_are_400_with_status_2001(env, params):
    client, de, _, _ = env
    r = client.get("/ocpi/cpo/2.2.1/cdrs", params=params, headers=tok(de))
    assert r.status_code == 400
    assert r.json()["status_code"] == 2001 and r.json()["status_message"]


def test_versions_and_details_list_our_endpoints(env):
    client, de, _, _ = env
    versions = client.get("/ocpi/versions", headers=tok(de)).json()["data"]
    assert versions == [{"version": "2.2.1", "url": "http://testserver/ocpi/2.2.1"}]
    details = client.get("/ocpi/2.2.1", headers=tok(de)).json()["data"]
    ids = {(e["identifier"], e["role"]) for e in details["endpoints"]}
    assert {("credentials", "SENDER"), ("cdrs", "SENDER"), ("tariffs", "SENDER"), ("cdrs", "RECEIVER")} <= ids


def test_unknown_ocpi_path_is_an_envelope_404(env):
    client, de, _, _ = env
    r = client.get("/ocpi/cpo/2.2.1/nothing", headers=tok(de))
    assert r.status_code == 404 and r.json()["status_code"] == 2000


# ----------------------------------------------------------------------------- receiver

def partner_cdr(cdr_id: str, owner=("DE", "8AA")) -> dict:
    cdr = cdr_json(cdr_id, emsp=("NL", "CLG"))
    cdr["country_code"], cdr["party_id"] = owner
    return cdr


def post(client, token, cdr):
    from schemas.ocpi import ocpi_dumps

    return client.post("/ocpi/emsp/2.2.1/cdrs", content=ocpi_dumps(cdr),
                       headers={**tok(token), "Content-Type": "application/json"})


def test_received_cdr_is_stored_with_location_and_readable(env):
    client, de, fr, _ = env
    r = post(client, de, partner_cdr("P-1"))
    assert r.status_code == 201 and r.json()["status_code"] == 1000
    location = r.headers["Location"]
    assert location == "http://testserver/ocpi/emsp/2.2.1/cdrs/DE/8AA/P-1"
    got = client.get(location, headers=tok(de))
    assert got.status_code == 200
    data = json.loads(got.text, parse_float=Decimal)["data"]
    assert data["id"] == "P-1" and data["total_cost"]["excl_vat"] == Decimal("4.00")
    # the same CDR again: accepted once, same Location
    again = post(client, de, partner_cdr("P-1"))
    assert again.status_code == 200 and again.headers["Location"] == location
    # another party cannot read it
    assert client.get(location, headers=tok(fr)).status_code == 404


def test_received_cdr_cannot_be_replaced(env):
    client, de, _, _ = env
    assert post(client, de, partner_cdr("P-2")).status_code == 201
    changed = partner_cdr("P-2")
    changed["total_cost"]["excl_vat"] = Decimal("5.00")
    r = post(client, de, changed)
    assert r.status_code == 409 and "credit CDR" in r.json()["status_message"]


def test_partner_cannot_push_someone_elses_cdr(env):
    client, _, fr, _ = env
    r = post(client, fr, partner_cdr("P-3", owner=("DE", "8AA")))
    assert r.status_code == 403 and "not one of your parties" in r.json()["status_message"]


def _cdr_with_start(start: str) -> str:
    from schemas.ocpi import ocpi_dumps

    cdr = partner_cdr("P-9")
    cdr["start_date_time"] = start
    return ocpi_dumps(cdr)


@pytest.mark.parametrize("body", ["{not json", "[]", '{"id": "x"}', "", _cdr_with_start("0001-01-01T00:00:00+05:00"),
                                  _cdr_with_start("9999-12-31T23:59:59-05:00")])
def test_invalid_cdr_bodies_are_400_with_2001(env, body):
    client, de, _, _ = env
    r = client.post("/ocpi/emsp/2.2.1/cdrs", content=body, headers={**tok(de), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["status_code"] == 2001


def test_received_cdrs_export_feeds_settlement(env, tmp_path):
    """What partners pushed comes out as an OCPI JSON array that settlement's reader accepts."""
    from settlement.imports import read_partner_cdrs
    from tests.apitools import add_api_key

    client, de, _, _ = env
    assert post(client, de, partner_cdr("EXP-1")).status_code in (200, 201)
    key = add_api_key(client.app.state.sessionmaker, "read")
    r = client.get("/settlement/received-cdrs", params={"party": "DE*8AA"}, headers={"X-API-Key": key})
    assert r.status_code == 200
    docs = json.loads(r.text, parse_float=Decimal)
    assert "EXP-1" in [d["id"] for d in docs]
    path = tmp_path / "partner.json"
    path.write_text(r.text)
    parsed = read_partner_cdrs(path)
    assert "EXP-1" in list(parsed.frame["cdr_id"])
