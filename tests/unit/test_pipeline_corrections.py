"""Corrections: a late event for a session whose CDR was issued, and a tariff correction
(``chargeledger rerate``): credit CDR + replacement, never an edit.

Processor-level (SQLite, no Kafka): the same unit of work the worker runs per batch.
"""

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from chargeledger.settings import Settings
from schemas.envelope import EventEnvelope
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import CdrRecord, SessionRecord
from streams.billing import Billing
from streams.processor import InRecord, Processor
from streams.rerate import rerate
from streams.tariffs import store_tariff_json

#: FLAT EUR 0.50, ENERGY EUR 0.30/kWh, PARKING_TIME EUR 6.00/h, VAT 20 %, no restrictions.
TARIFF = {
    "country_code": "NL", "party_id": "CLG", "id": "TEST-CORR", "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 20.0, "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 20.0, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 20.0, "step_size": 60}]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


def _event(mid: str, at: str, payload: dict, received: str | None = None) -> bytes:
    return EventEnvelope(
        charge_point_id="CORR-1", ocpp_version="2.0.1", action="TransactionEvent", message_id=mid,
        received_at=datetime.fromisoformat((received or at).replace("Z", "+00:00")), payload=payload,
    ).to_bytes()


def _mv(at: str, wh: int, context: str) -> list:
    return [{"timestamp": at, "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register",
                                                "context": context, "unitOfMeasure": {"unit": "Wh"}}]}]


@pytest.fixture
def processor(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    db = make_sessionmaker(make_engine(url))
    with db.begin() as s:
        store_tariff_json(s, json.dumps(TARIFF))
    return Processor(db, Billing(Settings(database_url=url, default_tariff_id="TEST-CORR")), "g")


def test_a_late_event_issues_a_credit_and_a_replacement(processor):
    tx = {"transactionId": "late-1"}
    started = _event("m0", "2026-03-04T10:00:00Z", {
        "eventType": "Started", "timestamp": "2026-03-04T10:00:00Z", "triggerReason": "Authorized", "seqNo": 0,
        "transactionInfo": {**tx, "chargingState": "Charging"}, "idToken": {"idToken": "DEEMPC001", "type": "eMAID"},
        "evse": {"id": 1, "connectorId": 1}, "meterValue": _mv("2026-03-04T10:00:00Z", 0, "Transaction.Begin")})
    ended = _event("m2", "2026-03-04T11:00:00Z", {
        "eventType": "Ended", "timestamp": "2026-03-04T11:00:00Z", "triggerReason": "EVDeparted", "seqNo": 2,
        "transactionInfo": {**tx, "stoppedReason": "EVDisconnected"},
        "meterValue": _mv("2026-03-04T11:00:00Z", 10_000, "Transaction.End")})
    # Delivered an hour late (offline queue): at 10:30 the EV was full and stayed parked.
    late = _event("m1", "2026-03-04T10:30:00Z", {
        "eventType": "Updated", "timestamp": "2026-03-04T10:30:00Z", "triggerReason": "ChargingStateChanged",
        "seqNo": 1, "offline": True, "transactionInfo": {**tx, "chargingState": "SuspendedEV"},
        "meterValue": _mv("2026-03-04T10:30:00Z", 10_000, "Sample.Periodic")}, received="2026-03-04T11:30:00Z")

    processor.process_batch([InRecord("ev", 0, 0, b"CORR-1", started), InRecord("ev", 0, 1, b"CORR-1", ended)])
    with processor.sessions() as db:
        (first,) = db.query(CdrRecord).all()
        first_json = first.cdr_json
    # v0: charging the whole hour, 10 kWh: 0.50 + 10 x 0.30 = 3.50 excl, x 1.20 = 4.20 incl
    assert (first.total_cost_excl_vat, first.total_cost_incl_vat) == (Decimal("3.50"), Decimal("4.20"))

    processor.process_batch([InRecord("ev", 0, 2, b"CORR-1", late)])
    with processor.sessions() as db:
        rows = {r.id: r for r in db.query(CdrRecord).order_by(CdrRecord.pk)}
        counters = repo.read_counters(db, "g")
    assert counters == {"events_in": 3, "applied": 3, "dead_lettered": 0, "duplicates": 0}
    original, credit, replacement = rows.values()
    assert original.cdr_json == first_json  # never edited
    assert credit.id == f"{original.id}-C0" and replacement.id == f"{original.id}-R1"
    assert all(len(i) <= 39 for i in rows)
    # credit: the original's costs negated, pointing at it
    assert credit.credit and credit.credit_reference_id == original.id
    assert (credit.total_cost_excl_vat, credit.total_cost_incl_vat) == (Decimal("-3.50"), Decimal("-4.20"))
    assert json.loads(credit.cdr_json)["credit"] is True
    # replacement: charging 10:00-10:30 (10 kWh), parked 10:30-11:00 (0.5 h):
    # 0.50 + 10 x 0.30 + 0.5 x 6.00 = 6.50 excl, x 1.20 = 7.80 incl
    assert not replacement.credit
    assert (replacement.total_cost_excl_vat, replacement.total_cost_incl_vat) == (Decimal("6.50"), Decimal("7.80"))
    assert replacement.total_parking_time == Decimal("0.5")
    # all three wait in the outbox for the cdrs topic, in issue order
    with processor.sessions() as db:
        assert [c.id for c in repo.unpublished_cdrs(db)] == [original.id, credit.id, replacement.id]


def test_issued_cdrs_and_credits_are_queued_for_the_emsps_cdr_receiver(processor):
    # The token DEEMPC001 names the eMSP DE*EMP; a registered partner acting as DE*EMP with
    # a CDR receiver gets every CDR of its customers pushed, the credit CDR included, queued
    # in the transaction that issues the CDR (OCPI mod_cdrs push model, our outbox).
    from storage.api_tables import CdrOutbox
    from tests.apitools import add_partner

    add_partner(processor.sessions, "EMP", [("EMSP", "DE", "EMP")],
                cdrs_receiver_url="http://127.0.0.1:9/ocpi/2.2.1/cdrs", token_b="b")
    add_partner(processor.sessions, "OTHER", [("EMSP", "NL", "XYZ")],
                cdrs_receiver_url="http://127.0.0.1:9/other/cdrs", token_b="b")
    tx = {"transactionId": "push-1"}
    started = _event("p0", "2026-03-04T10:00:00Z", {
        "eventType": "Started", "timestamp": "2026-03-04T10:00:00Z", "triggerReason": "Authorized", "seqNo": 0,
        "transactionInfo": {**tx, "chargingState": "Charging"}, "idToken": {"idToken": "DEEMPC001", "type": "eMAID"},
        "evse": {"id": 1, "connectorId": 1}, "meterValue": _mv("2026-03-04T10:00:00Z", 0, "Transaction.Begin")})
    ended = _event("p2", "2026-03-04T11:00:00Z", {
        "eventType": "Ended", "timestamp": "2026-03-04T11:00:00Z", "triggerReason": "EVDeparted", "seqNo": 2,
        "transactionInfo": {**tx, "stoppedReason": "EVDisconnected"},
        "meterValue": _mv("2026-03-04T11:00:00Z", 10_000, "Transaction.End")})
    late = _event("p1", "2026-03-04T10:30:00Z", {
        "eventType": "Updated", "timestamp": "2026-03-04T10:30:00Z", "triggerReason": "ChargingStateChanged",
        "seqNo": 1, "offline": True, "transactionInfo": {**tx, "chargingState": "SuspendedEV"},
        "meterValue": _mv("2026-03-04T10:30:00Z", 10_000, "Sample.Periodic")}, received="2026-03-04T11:30:00Z")
    processor.process_batch([InRecord("ev", 0, 0, b"CORR-1", started), InRecord("ev", 0, 1, b"CORR-1", ended)])
    processor.process_batch([InRecord("ev", 0, 2, b"CORR-1", late)])
    processor.process_batch([InRecord("ev", 0, 2, b"CORR-1", late)])  # redelivered: nothing new
    with processor.sessions() as db:
        cdr_ids = [r.id for r in db.query(CdrRecord).order_by(CdrRecord.pk)]
        queued = db.query(CdrOutbox).order_by(CdrOutbox.id).all()
    assert len(cdr_ids) == 3  # original, credit, replacement
    assert [q.cdr_id for q in queued] == cdr_ids
    assert len({q.partner_id for q in queued}) == 1  # only DE*EMP's platform, not NL*XYZ's


UTC = timezone.utc


def test_a_corrected_tariff_credits_and_replaces_the_sessions_it_prices(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    db = make_sessionmaker(make_engine(url))
    settings = Settings(database_url=url, default_tariff_id="TEST-CORR")
    with db.begin() as s:
        store_tariff_json(s, json.dumps(TARIFF))
    tx = {"transactionId": "rr-1"}
    records = [
        _event("m0", "2026-03-04T10:00:00Z", {
            "eventType": "Started", "timestamp": "2026-03-04T10:00:00Z", "triggerReason": "Authorized", "seqNo": 0,
            "transactionInfo": {**tx, "chargingState": "Charging"}, "idToken": {"idToken": "DEEMPC001", "type": "eMAID"},
            "meterValue": _mv("2026-03-04T10:00:00Z", 0, "Transaction.Begin")}),
        _event("m1", "2026-03-04T11:00:00Z", {
            "eventType": "Ended", "timestamp": "2026-03-04T11:00:00Z", "triggerReason": "EVDeparted", "seqNo": 1,
            "transactionInfo": tx, "meterValue": _mv("2026-03-04T11:00:00Z", 10_000, "Transaction.End")}),
    ]
    Processor(db, Billing(settings), "g").process_batch(
        [InRecord("ev", 0, i, b"CORR-1", r) for i, r in enumerate(records)])

    # The energy price was wrong: 0.30 -> 0.25 per kWh, published as a new version.
    corrected = json.loads(json.dumps(TARIFF))
    corrected["elements"][1]["price_components"][0]["price"] = 0.25
    corrected["last_updated"] = "2026-03-10T00:00:00Z"
    with db.begin() as s:
        store_tariff_json(s, json.dumps(corrected))

    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    dry = rerate(settings, "TEST-CORR", start, end, dry_run=True, sessions=db)
    # old: 0.50 + 10 x 0.30 = 3.50 excl (4.20 incl); new: 0.50 + 10 x 0.25 = 3.00 excl (3.60 incl)
    assert (dry.sessions, dry.changed, dry.issued) == (1, 1, [])
    assert dry.moved["EUR"] == [Decimal("-0.50"), Decimal("-0.60")]
    with db() as s:
        assert s.query(CdrRecord).count() == 1

    done = rerate(settings, "TEST-CORR", start, end, dry_run=False, sessions=db)
    assert len(done.issued) == 2
    with db() as s:
        original, credit, replacement = s.query(CdrRecord).order_by(CdrRecord.pk).all()
        assert credit.credit and credit.credit_reference_id == original.id
        assert credit.total_cost_excl_vat == Decimal("-3.50")
        assert replacement.total_cost_excl_vat == Decimal("3.00")
        assert replacement.tariff_version == datetime(2026, 3, 10, tzinfo=UTC)
        assert s.get(SessionRecord, "CORR-1/rr-1").cdr_id == replacement.id

    again = rerate(settings, "TEST-CORR", start, end, dry_run=False, sessions=db)
    assert (again.changed, again.issued) == (0, [])  # already priced with the latest version


def test_a_session_that_never_ends_is_closed_when_its_charge_point_is_silent_on_it_for_the_timeout(processor):
    tx = {"transactionId": "never-ends"}
    started = _event("n0", "2026-03-04T10:00:00Z", {
        "eventType": "Started", "timestamp": "2026-03-04T10:00:00Z", "triggerReason": "Authorized", "seqNo": 0,
        "transactionInfo": {**tx, "chargingState": "Charging"}, "idToken": {"idToken": "DEEMPC001", "type": "eMAID"},
        "meterValue": _mv("2026-03-04T10:00:00Z", 0, "Transaction.Begin")})
    sample = _event("n1", "2026-03-04T11:00:00Z", {
        "eventType": "Updated", "timestamp": "2026-03-04T11:00:00Z", "triggerReason": "MeterValuePeriodic", "seqNo": 1,
        "transactionInfo": {**tx, "chargingState": "Charging"},
        "meterValue": _mv("2026-03-04T11:00:00Z", 10_000, "Sample.Periodic")})
    heartbeat = EventEnvelope(  # the same charge point, 47 h and then 49 h after the last message
        charge_point_id="CORR-1", ocpp_version="2.0.1", action="Heartbeat", message_id="hb1",
        received_at=datetime(2026, 3, 6, 10, 0, tzinfo=timezone.utc), payload={}).to_bytes()
    later = EventEnvelope(
        charge_point_id="CORR-1", ocpp_version="2.0.1", action="Heartbeat", message_id="hb2",
        received_at=datetime(2026, 3, 6, 12, 0, tzinfo=timezone.utc), payload={}).to_bytes()
    processor.process_batch([InRecord("ev", 0, i, b"CORR-1", v) for i, v in enumerate([started, sample, heartbeat])])
    with processor.sessions() as db:
        assert db.query(CdrRecord).count() == 0  # 47 h of silence: still open (timeout 48 h)
    processor.process_batch([InRecord("ev", 0, 3, b"CORR-1", later)])
    with processor.sessions() as db:
        (cdr,) = db.query(CdrRecord).all()
        assert db.get(SessionRecord, "CORR-1/never-ends").status == "incomplete"
    # billed on the last reading: 10 kWh, 0.50 + 10 x 0.30 = 3.50 excl
    assert (cdr.total_energy, cdr.total_cost_excl_vat) == (Decimal("10"), Decimal("3.50"))
    assert "incomplete" in json.loads(cdr.cdr_json)["remark"]
