"""GET /pipeline/counters shows the worker's exact counters per consumer group."""

from fastapi.testclient import TestClient

from api.app import create_app
from storage import repositories as repo
from tests.apitools import add_api_key, make_settings, migrated_sessionmaker


def test_counters_per_group_with_the_invariant(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    sm = migrated_sessionmaker(url)
    key = add_api_key(sm, "read")
    with sm.begin() as db:
        repo.add_to_counters(db, "chargeledger", {"events_in": 10, "applied": 7, "dead_lettered": 2, "duplicates": 1})
        repo.add_to_counters(db, "other", {"events_in": 3, "applied": 3})
    with TestClient(create_app(make_settings(url))) as client:
        assert client.get("/pipeline/counters").status_code == 401
        body = client.get("/pipeline/counters", headers={"X-API-Key": key}).json()
    assert body["consumer_groups"]["chargeledger"] == {
        "events_in": 10, "applied": 7, "dead_lettered": 2, "duplicates": 1, "invariant_holds": True}
    assert body["total"]["events_in"] == 13 and body["total"]["invariant_holds"]
