"""The pipeline end to end on the real broker and PostgreSQL.

Simulated sessions (OCPP 1.6 and 2.0.1) plus two hand-built sessions, a few retransmitted
and a few malformed messages go onto ``ocpp-events``; the worker runs until every session
has its CDR. Then: one CDR per session on the ``cdrs`` topic and in PostgreSQL (the same
bytes), the hand-built sessions' totals equal the figures worked out below, the malformed
inputs are on the DLQ with their reasons and original bytes, and nothing is lost
(``events_in == applied + dead_lettered + duplicates == records produced``). A second
worker in the same group starts where the first stopped and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from schemas.envelope import EventEnvelope
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import CdrRecord
from streams.simulate import SimRecord, produce, simulate_traffic
from streams.tariffs import publish_tariff
from streams.topics import ensure_topics, read_topic
from streams.worker import Worker

UTC = timezone.utc
#: This test's CDRs (the database is shared with the other pipeline tests of the session).
OURS = CdrRecord.session_key.like("SIM%") | CdrRecord.session_key.like("HAND-%")
SIMULATED = 40
MALFORMED = 5
DUPLICATES = 3

#: A tariff made for hand arithmetic: no time-of-day restriction, VAT 20 % everywhere.
#: FLAT EUR 0.50 per session, ENERGY EUR 0.30/kWh (step 1 Wh), PARKING_TIME EUR 6.00/h
#: (step 60 s).
TEST_TARIFF = {
    "country_code": "NL", "party_id": "CLG", "id": "TEST-HAND", "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 20.0, "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 20.0, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 20.0, "step_size": 60}]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


def _envelope(cp: str, version: str, action: str, mid: str, at: str, payload: dict, response=None) -> SimRecord:
    received = datetime.fromisoformat(at.replace("Z", "+00:00"))
    env = EventEnvelope(charge_point_id=cp, ocpp_version=version, action=action, message_id=mid,
                        received_at=received, payload=payload, response=response)
    return SimRecord(env.kafka_key(), env.to_bytes(), "session", received)


def hand_built_sessions() -> list[SimRecord]:
    """Two sessions written out message by message.

    A, OCPP 1.6 on HAND-16 (transaction 501), charging the whole hour:
      meterStart 1,000,000 Wh at 10:00Z, 1,010,000 Wh at 10:30Z, meterStop 1,020,000 Wh at 11:00Z
      energy 20 kWh; no parking (energy flows until the stop)
      excl = FLAT 0.50 + 20 x 0.30 = 0.50 + 6.00 = 6.50
      incl = 6.50 x 1.20 = 7.80
    B, OCPP 2.0.1 on HAND-201 (transaction "hand-b"), charging 12:00Z-13:00Z, then the EV is
    full (SuspendedEV) and stays connected until 13:30Z:
      register 5,000 Wh at 12:00Z, 16,000 Wh at 12:45Z, 20,000 Wh at 13:00Z and at 13:30Z
      energy 15 kWh; parking 30 min = 0.5 h (a multiple of the 60 s step)
      excl = 0.50 + 15 x 0.30 + 0.5 x 6.00 = 0.50 + 4.50 + 3.00 = 8.00
      incl = 8.00 x 1.20 = 9.60
    """
    token = "NLTNMC00000042"
    a = [
        _envelope("HAND-16", "1.6", "StartTransaction", "a1", "2026-03-03T10:00:00Z",
                  {"connectorId": 1, "idTag": token, "meterStart": 1_000_000, "timestamp": "2026-03-03T10:00:00Z"},
                  response={"transactionId": 501, "idTagInfo": {"status": "Accepted"}}),
        _envelope("HAND-16", "1.6", "MeterValues", "a2", "2026-03-03T10:30:00Z",
                  {"connectorId": 1, "transactionId": 501, "meterValue": [{"timestamp": "2026-03-03T10:30:00Z",
                   "sampledValue": [{"value": "1010000", "measurand": "Energy.Active.Import.Register",
                                     "unit": "Wh", "context": "Sample.Periodic"}]}]}),
        _envelope("HAND-16", "1.6", "StopTransaction", "a3", "2026-03-03T11:00:00Z",
                  {"transactionId": 501, "meterStop": 1_020_000, "timestamp": "2026-03-03T11:00:00Z",
                   "reason": "EVDisconnected", "idTag": token}),
    ]

    def mv(at: str, wh: int, context: str) -> list[dict]:
        return [{"timestamp": at, "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register",
                                                    "context": context, "unitOfMeasure": {"unit": "Wh"}}]}]

    tx = {"transactionId": "hand-b"}
    b = [
        _envelope("HAND-201", "2.0.1", "TransactionEvent", "b1", "2026-03-03T12:00:00Z",
                  {"eventType": "Started", "timestamp": "2026-03-03T12:00:00Z", "triggerReason": "Authorized",
                   "seqNo": 0, "transactionInfo": {**tx, "chargingState": "Charging"},
                   "idToken": {"idToken": token, "type": "eMAID"}, "evse": {"id": 1, "connectorId": 1},
                   "meterValue": mv("2026-03-03T12:00:00Z", 5_000, "Transaction.Begin")}),
        _envelope("HAND-201", "2.0.1", "TransactionEvent", "b2", "2026-03-03T12:45:00Z",
                  {"eventType": "Updated", "timestamp": "2026-03-03T12:45:00Z", "triggerReason": "MeterValuePeriodic",
                   "seqNo": 1, "transactionInfo": {**tx, "chargingState": "Charging"},
                   "meterValue": mv("2026-03-03T12:45:00Z", 16_000, "Sample.Periodic")}),
        _envelope("HAND-201", "2.0.1", "TransactionEvent", "b3", "2026-03-03T13:00:00Z",
                  {"eventType": "Updated", "timestamp": "2026-03-03T13:00:00Z", "triggerReason": "ChargingStateChanged",
                   "seqNo": 2, "transactionInfo": {**tx, "chargingState": "SuspendedEV"},
                   "meterValue": mv("2026-03-03T13:00:00Z", 20_000, "Sample.Periodic")}),
        _envelope("HAND-201", "2.0.1", "TransactionEvent", "b4", "2026-03-03T13:30:00Z",
                  {"eventType": "Ended", "timestamp": "2026-03-03T13:30:00Z", "triggerReason": "EVDeparted",
                   "seqNo": 3, "transactionInfo": {**tx, "chargingState": "Idle", "stoppedReason": "EVDisconnected"},
                   "meterValue": mv("2026-03-03T13:30:00Z", 20_000, "Transaction.End")}),
    ]
    return a + b


@pytest.fixture(scope="module")
def pipeline_settings(settings):
    return settings.model_copy(update={"default_tariff_id": "TEST-HAND", "event_partitions": 3})


@pytest.mark.timeout(180)
async def test_sessions_in_cdrs_out_nothing_lost(pipeline_settings):
    s = pipeline_settings
    upgrade(s.database_url)
    db = make_sessionmaker(make_engine(s.database_url))
    await ensure_topics(s)
    await publish_tariff(s.kafka_bootstrap, s.topic(s.topic_tariffs), json.dumps(TEST_TARIFF))

    traffic = simulate_traffic(8, SIMULATED, seed=11, malformed=MALFORMED, duplicates=DUPLICATES,
                               charge_point_prefix="SIM")
    hand = hand_built_sessions()
    records = traffic.records + hand
    await produce(records, s.kafka_bootstrap, s.topic(s.topic_events))
    expected_cdrs = SIMULATED + 2

    def cdrs_in_db() -> int:
        with db() as session:
            return int(session.scalar(select(func.count()).select_from(CdrRecord).where(OURS)) or 0)

    def done() -> bool:
        with db() as session:
            events_in = repo.read_counters(session, s.app_id)["events_in"]
        return events_in >= len(records) and cdrs_in_db() >= expected_cdrs

    stats = await asyncio.wait_for(Worker(s, sessions=db).run(until=done), timeout=120)
    assert stats.records >= len(records)

    # Nothing lost: every input is applied, dead-lettered or counted as a duplicate.
    with db() as session:
        counters = repo.read_counters(session, s.app_id)
        rows = session.scalars(select(CdrRecord).where(OURS)).all()
    assert counters["events_in"] == len(records)
    assert counters["events_in"] == counters["applied"] + counters["dead_lettered"] + counters["duplicates"]
    assert counters["dead_lettered"] == MALFORMED
    assert counters["duplicates"] == DUPLICATES

    # One CDR per session, in PostgreSQL and on the topic, byte for byte the same.
    assert len(rows) == expected_cdrs
    assert all(not r.credit for r in rows)
    keys = {r.session_key for r in rows}
    assert {f"{x.charge_point_id}/{x.transaction_id}" for x in traffic.sessions} <= keys
    on_topic = await read_topic(s.kafka_bootstrap, s.topic(s.topic_cdrs))
    by_id = {r.key.decode(): r.value for r in on_topic}
    assert len(by_id) == expected_cdrs
    for row in rows:
        assert by_id[row.id] == row.cdr_json.encode()
        assert repo.content_hash(by_id[row.id]) == row.content_hash

    # The hand-built sessions, priced by hand in hand_built_sessions().
    hand_rows = {r.session_key: r for r in rows if r.session_key.startswith("HAND-")}
    a, b = hand_rows["HAND-16/501"], hand_rows["HAND-201/hand-b"]
    assert (a.total_energy, a.total_cost_excl_vat, a.total_cost_incl_vat) == (Decimal("20"), Decimal("6.50"), Decimal("7.80"))
    assert (b.total_energy, b.total_cost_excl_vat, b.total_cost_incl_vat) == (Decimal("15"), Decimal("8.00"), Decimal("9.60"))
    assert b.total_parking_time == Decimal("0.5")
    assert (a.emsp_country_code, a.emsp_party_id) == ("NL", "TNM")
    cdr_a = json.loads(a.cdr_json)
    assert cdr_a["total_cost"] == {"excl_vat": 6.5, "incl_vat": 7.8}
    assert cdr_a["last_updated"] == "2026-03-03T11:00:00Z"  # from the events, not the wall clock

    # Malformed inputs: on the DLQ with a reason and their original bytes.
    dlq = await read_topic(s.kafka_bootstrap, s.topic(s.topic_events_dlq))
    malformed = {r.value for r in traffic.records if r.kind == "malformed"}
    assert {r.value for r in dlq} == malformed
    for r in dlq:
        headers = dict(r.headers)
        assert headers["reason"], r.value
    reasons = " | ".join(dict(r.headers)["reason"].decode() for r in dlq)
    assert "not an event envelope" in reasons
    assert "meterStart" in reasons  # the schema violation names the field

    # A restarted worker in the same group resumes after the stored offsets: no change.
    again = Worker(s, sessions=db)
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + 6
    restarted = await asyncio.wait_for(again.run(until=lambda: loop.time() > stop_at), timeout=60)
    assert (restarted.records, restarted.skipped) == (0, 0)  # it sought past everything done
    with db() as session:
        assert repo.read_counters(session, s.app_id) == counters
    assert cdrs_in_db() == expected_cdrs
    assert len(await read_topic(s.kafka_bootstrap, s.topic(s.topic_cdrs))) == len(on_topic)
