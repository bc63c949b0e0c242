"""OCPI credentials handshake against a real HTTP server standing in for the partner."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.apitools import FakePartner, add_api_key, make_settings, migrated_sessionmaker


def tok(token: str) -> dict:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


@pytest.fixture()
def ours(tmp_path):
    url = f"sqlite:///{tmp_path / 'cred.db'}"
    sm = migrated_sessionmaker(url)
    admin = add_api_key(sm, "admin")
    with TestClient(create_app(make_settings(url))) as client:
        yield client, admin


def create_partner(client, admin, roles=(("EMSP", "DE", "8AA"),)) -> dict:
    r = client.post("/admin/partners", headers={"X-API-Key": admin}, json={
        "name": "DE eMSP", "roles": [{"role": a, "country_code": b, "party_id": c} for a, b, c in roles]})
    assert r.status_code == 201, r.text
    return r.json()


def credentials(token: str, url: str, party=("DE", "8AA")) -> dict:
    return {"token": token, "url": url, "roles": [
        {"role": "EMSP", "party_id": party[1], "country_code": party[0], "business_details": {"name": "DE eMSP"}}]}


def test_registration_update_and_unregistration(ours):
    client, admin = ours
    created = create_partner(client, admin)
    token_a = created["token_a"]
    assert created["our_versions_url"] == "http://testserver/ocpi/versions"
    partner = FakePartner(token="token-b-1")
    with partner.serve():
        # The partner (Sender) reads our versions with token A, then POSTs its credentials.
        assert client.get("/ocpi/versions", headers=tok(token_a)).status_code == 200
        r = client.post("/ocpi/2.2.1/credentials", headers=tok(token_a),
                        json=credentials("token-b-1", partner.versions_url))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status_code"] == 1000, body
        token_c = body["data"]["token"]
        assert token_c != token_a and body["data"]["url"] == "http://testserver/ocpi/versions"
        assert {(x["role"], x["country_code"], x["party_id"]) for x in body["data"]["roles"]} >= {("CPO", "NL", "CLG")}
        # We fetched its versions and details with token B, Base64-encoded.
        assert partner.seen_auth == ["Token " + base64.b64encode(b"token-b-1").decode()] * 2
        # Token A is gone; token C opens the functional modules.
        assert client.get("/ocpi/versions", headers=tok(token_a)).status_code == 401
        assert client.get("/ocpi/cpo/2.2.1/cdrs", headers=tok(token_c)).status_code == 200
        view = client.get(f"/admin/partners/{created['id']}", headers={"X-API-Key": admin}).json()
        assert view["status"] == "REGISTERED" and view["cdrs_receiver_url"] == partner.cdrs_url
        # GET credentials shows the token the partner uses with us.
        assert client.get("/ocpi/2.2.1/credentials", headers=tok(token_c)).json()["data"]["token"] == token_c
        # Registering again is a 405.
        r = client.post("/ocpi/2.2.1/credentials", headers=tok(token_c),
                        json=credentials("token-b-1", partner.versions_url))
        assert r.status_code == 405 and r.json()["status_code"] == 2000
        # Update: new token B, endpoints fetched again, new token C.
        partner.token = "token-b-2"
        r = client.put("/ocpi/2.2.1/credentials", headers=tok(token_c),
                       json=credentials("token-b-2", partner.versions_url))
        assert r.status_code == 200, r.text
        token_c2 = r.json()["data"]["token"]
        assert token_c2 != token_c
        assert partner.seen_auth[-1] == "Token " + base64.b64encode(b"token-b-2").decode()
        assert client.get("/ocpi/cpo/2.2.1/cdrs", headers=tok(token_c)).status_code == 401
        # Unregister: the token stops working.
        assert client.delete("/ocpi/2.2.1/credentials", headers=tok(token_c2)).json()["status_code"] == 1000
        assert client.get("/ocpi/versions", headers=tok(token_c2)).status_code == 401


def test_put_and_delete_before_registration_are_405(ours):
    client, admin = ours
    token_a = create_partner(client, admin)["token_a"]
    assert client.put("/ocpi/2.2.1/credentials", headers=tok(token_a),
                      json=credentials("b", "http://127.0.0.1:1/v")).status_code == 405
    assert client.delete("/ocpi/2.2.1/credentials", headers=tok(token_a)).status_code == 405


def test_unreachable_partner_gets_3001_and_stays_pending(ours):
    client, admin = ours
    token_a = create_partner(client, admin)["token_a"]
    r = client.post("/ocpi/2.2.1/credentials", headers=tok(token_a),
                    json=credentials("b", "http://127.0.0.1:1/ocpi/versions"))
    assert r.status_code == 200 and r.json()["status_code"] == 3001
    assert "127.0.0.1:1" in r.json()["status_message"]
    assert client.get("/ocpi/versions", headers=tok(token_a)).status_code == 200  # token A still valid


def test_partner_without_2_2_1_gets_3002(ours):
    client, admin = ours
    token_a = create_partner(client, admin)["token_a"]
    partner = FakePartner(token="b")
    partner.app.router.routes = [r for r in partner.app.router.routes if getattr(r, "path", "") != "/ocpi/versions"]

    @partner.app.get("/ocpi/versions")
    def only_old():
        return {"status_code": 1000, "data": [{"version": "2.1.1", "url": "http://x/2.1.1"}],
                "timestamp": "2026-01-01T00:00:00Z"}

    with partner.serve():
        r = client.post("/ocpi/2.2.1/credentials", headers=tok(token_a), json=credentials("b", partner.versions_url))
    assert r.json()["status_code"] == 3002


def test_partner_cannot_claim_a_party_it_was_not_given(ours):
    client, admin = ours
    token_a = create_partner(client, admin)["token_a"]
    partner = FakePartner(token="b")
    with partner.serve():
        r = client.post("/ocpi/2.2.1/credentials", headers=tok(token_a),
                        json=credentials("b", partner.versions_url, party=("FR", "XYZ")))
    assert r.status_code == 400 and "not agreed" in r.json()["status_message"]


@pytest.mark.parametrize("body", [
    {"token": "has space", "url": "http://x/v", "roles": []},
    {"token": "t", "url": "ftp://x", "roles": [{"role": "EMSP"}]},
    {"url": "http://x/v"},
])
def test_malformed_credentials_are_400_2001(ours, body):
    client, admin = ours
    token_a = create_partner(client, admin)["token_a"]
    r = client.post("/ocpi/2.2.1/credentials", headers=tok(token_a), json=body)
    assert r.status_code == 400 and r.json()["status_code"] == 2001


def test_we_register_with_a_partner_as_the_sender(ours, tmp_path):
    client, admin = ours
    created = create_partner(client, admin)
    partner = FakePartner(token="their-token-a")
    with partner.serve():
        r = client.post(f"/admin/partners/{created['id']}/register", headers={"X-API-Key": admin},
                        json={"versions_url": partner.versions_url, "token": "their-token-a"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "REGISTERED" and r.json()["cdrs_receiver_url"] == partner.cdrs_url
        # We sent them a token B and our versions URL; that token B opens our API.
        sent = partner.credentials_posted[0]
        assert sent["url"] == "http://testserver/ocpi/versions"
        assert client.get("/ocpi/cpo/2.2.1/cdrs", headers=tok(sent["token"])).status_code == 200
        # Their old token A is no longer used towards them: a second registration is refused.
        again = client.post(f"/admin/partners/{created['id']}/register", headers={"X-API-Key": admin},
                            json={"versions_url": partner.versions_url, "token": "their-token-a"})
        assert again.status_code == 409


def test_registering_with_an_unreachable_partner_is_a_422_problem(ours):
    client, admin = ours
    created = create_partner(client, admin)
    r = client.post(f"/admin/partners/{created['id']}/register", headers={"X-API-Key": admin},
                    json={"versions_url": "http://127.0.0.1:1/ocpi/versions", "token": "a"})
    assert r.status_code == 422 and "not usable" in r.json()["detail"]
