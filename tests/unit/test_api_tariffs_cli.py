"""OCPI tariffs sender (current version per tariff, owner visibility) and the api CLI."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as api_main
from storage.models import TariffRecord
from tests.apitools import FIXTURES, add_partner, make_settings, migrated_sessionmaker


def tariff(owner, tariff_id, last_updated) -> TariffRecord:
    doc = json.loads((FIXTURES / "tariff_1_simple_2hour.json").read_text())
    doc.update(country_code=owner[0], party_id=owner[1], id=tariff_id, last_updated=last_updated)
    return TariffRecord(country_code=owner[0], party_id=owner[1], id=tariff_id, currency=doc["currency"],
                        last_updated=datetime.fromisoformat(last_updated.replace("Z", "+00:00")),
                        tariff_json=json.dumps(doc))


@pytest.fixture()
def client_and_token(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    sm = migrated_sessionmaker(url)
    _, token = add_partner(sm, "DE", [("EMSP", "DE", "8AA")])
    with sm() as db:
        db.add_all([
            tariff(("NL", "CLG"), "T1", "2026-01-01T00:00:00Z"),
            tariff(("NL", "CLG"), "T1", "2026-02-01T00:00:00Z"),  # newer version of T1
            tariff(("NL", "CLG"), "T2", "2026-01-15T00:00:00Z"),
            tariff(("BE", "OTH"), "T9", "2026-01-20T00:00:00Z"),  # another CPO's: hidden
        ])
        db.commit()
    with TestClient(create_app(make_settings(url))) as client:
        yield client, {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def test_current_versions_of_our_tariffs_only(client_and_token):
    client, h = client_and_token
    r = client.get("/ocpi/cpo/2.2.1/tariffs", headers=h)
    assert r.status_code == 200
    data = r.json()["data"]
    # ordered by last_updated: T2 (Jan 15), then T1's February version
    assert [(t["id"], t["last_updated"]) for t in data] == [("T2", "2026-01-15T00:00:00Z"),
                                                            ("T1", "2026-02-01T00:00:00Z")]
    assert r.headers["X-Total-Count"] == "2"
    r = client.get("/ocpi/cpo/2.2.1/tariffs", params={"date_from": "2026-01-20T00:00:00Z"}, headers=h)
    assert [t["id"] for t in r.json()["data"]] == ["T1"]


def test_cli_creates_an_api_key_that_works(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CHARGELEDGER_DATABASE_URL", url)
    from chargeledger.settings import get_settings

    get_settings.cache_clear()
    try:
        assert api_main(["--create-api-key", "ops", "--role", "admin"]) == 0
    finally:
        get_settings.cache_clear()
    key = capsys.readouterr().out.strip()
    with TestClient(create_app(make_settings(url))) as client:
        r = client.post("/admin/api-keys", json={"name": "reader", "role": "read"}, headers={"X-API-Key": key})
        assert r.status_code == 201
