"""The OCPP-J gateway on the real broker and the real PostgreSQL server, driven by the
``ocpp`` package's own ChargePoint clients (1.6 and 2.0.1) over ``websockets``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
import websockets
from aiokafka import AIOKafkaConsumer
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from websockets.exceptions import InvalidStatus

from gateway.auth import basic_authorization_header
from gateway.dead_letter import GatewayDeadLetter
from gateway.event_log import KafkaEventLog, ensure_topics
from gateway.registry import ChargePointRegistry, TransactionIdAllocator
from gateway.server import Gateway
from schemas.envelope import EventEnvelope
from storage.db import make_engine, upgrade

FAST_SCRYPT = 2**10
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


def ts(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def settings(settings):
    """The session's settings with topics of our own: other integration tests read whole
    topics of the session prefix (every record on ocpp-events / the DLQ is theirs)."""
    return settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}gateway-"})


_ENGINES: dict[str, object] = {}


def engine_for(s):
    if s.database_url not in _ENGINES:
        _ENGINES[s.database_url] = make_engine(s.database_url)
    return _ENGINES[s.database_url]


@pytest.fixture(scope="module")
def engine(pg_url):
    upgrade(pg_url)
    return engine_for(SimpleNamespace(database_url=pg_url))


@pytest.fixture(scope="module")
def registry(engine):
    return ChargePointRegistry(engine)


@pytest.fixture
def charger(registry):
    """A freshly registered charge point: (id, password). Unique per test, so the test
    can pick its own records off the shared topics by key."""
    cp_id, password = f"CP-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    registry.register(cp_id, password, scrypt_n=FAST_SCRYPT)
    return SimpleNamespace(id=cp_id, password=password)


@pytest.fixture
async def gateway(settings, engine, registry):
    events, dlq = settings.topic(settings.topic_events), settings.topic(settings.topic_events_dlq)
    await ensure_topics(settings.kafka_bootstrap, {events: settings.event_partitions, dlq: 1})
    event_log = KafkaEventLog(settings.kafka_bootstrap, events, dlq, timeout_s=10)
    await event_log.start()
    allocator = TransactionIdAllocator(engine, block_size=10)
    gw = Gateway(event_log, registry.password_hash, allocator.next_id)
    server = await gw.serve("127.0.0.1", 0).__aenter__()
    port = server.sockets[0].getsockname()[1]
    try:
        yield SimpleNamespace(gateway=gw, port=port, events_topic=events, dlq_topic=dlq)
    finally:
        server.close()
        await server.wait_closed()
        await event_log.stop()


def connect(port: int, cp_id: str, password: str, version: str = "ocpp1.6"):
    return websockets.connect(
        f"ws://127.0.0.1:{port}/ocpp/{cp_id}",
        subprotocols=[version],
        additional_headers={"Authorization": basic_authorization_header(cp_id, password)},
    )


@contextlib.asynccontextmanager
async def ocpp_client(port, charger, cls=ChargePoint16, version="ocpp1.6"):
    async with connect(port, charger.id, charger.password, version) as ws:
        client = cls(charger.id, ws, response_timeout=15)
        reader = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await reader


async def records_for(bootstrap: str, topic: str, key: str, count: int, timeout: float = 30.0) -> list:
    """The first ``count`` records with ``key`` on ``topic`` (from offset 0), in log order."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    found: list[bytes] = []
    try:
        async def collect():
            while len(found) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    found.extend(r for r in records if r.key == key.encode())
        await asyncio.wait_for(collect(), timeout)
    finally:
        await consumer.stop()
    return found[:count]


def sampled(wh: int, minutes: float) -> list[dict]:
    return [{"timestamp": ts(minutes),
             "sampled_value": [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]


async def test_an_ocpp16_session_lands_on_ocpp_events_in_order_with_its_answers(settings, gateway, charger):
    ids = iter(f"m{i}" for i in range(100))
    async with ocpp_client(gateway.port, charger) as cp:
        cp._unique_id_generator = lambda: next(ids)
        boot = await cp.call(call16.BootNotification(charge_point_model="M1", charge_point_vendor="V1"))
        assert boot.status == "Accepted"
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
        auth = await cp.call(call16.Authorize(id_tag="TAG-1"))
        assert auth.id_tag_info["status"] == "Accepted"
        start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=1000,
                                                      timestamp=ts(0)))
        tx = start.transaction_id
        await cp.call(call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=sampled(6000, 30)))
        await cp.call(call16.StopTransaction(meter_stop=11000, timestamp=ts(60), transaction_id=tx,
                                             reason="Local", id_tag="TAG-1"))
        await cp.call(call16.Heartbeat())

    raw = await records_for(settings.kafka_bootstrap, gateway.events_topic, charger.id, 7)
    envelopes = [EventEnvelope.from_bytes(r.value) for r in raw]
    assert [e.action for e in envelopes] == ["BootNotification", "StatusNotification", "Authorize",
                                              "StartTransaction", "MeterValues", "StopTransaction", "Heartbeat"]
    assert [e.message_id for e in envelopes] == [f"m{i}" for i in range(7)]
    assert {e.charge_point_id for e in envelopes} == {charger.id}
    assert {e.ocpp_version for e in envelopes} == {"1.6"}
    assert all(e.received_at.tzinfo is not None for e in envelopes)
    started = envelopes[3]
    assert started.payload == {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": ts(0)}
    assert started.response == {"transactionId": tx, "idTagInfo": {"status": "Accepted"}}
    assert envelopes[4].payload["meterValue"][0]["sampledValue"][0]["value"] == "6000"
    assert envelopes[5].payload["meterStop"] == 11000 and envelopes[5].payload["transactionId"] == tx


async def test_an_ocpp201_session_lands_in_order(settings, gateway, charger):
    def event(kind, seq, minutes, wh, **extra):
        return call201.TransactionEvent(
            event_type=kind, timestamp=ts(minutes), trigger_reason=extra.pop("trigger", "MeterValuePeriodic"),
            seq_no=seq, transaction_info={"transaction_id": "tx-201-a", **extra.pop("info", {})},
            meter_value=[{"timestamp": ts(minutes), "sampled_value": [
                {"value": wh, "measurand": "Energy.Active.Import.Register", "unit_of_measure": {"unit": "Wh"}}]}],
            **extra)

    async with ocpp_client(gateway.port, charger, ChargePoint201, "ocpp2.0.1") as cp:
        boot = await cp.call(call201.BootNotification(
            charging_station={"model": "M2", "vendor_name": "V2"}, reason="PowerUp"))
        assert boot.status == "Accepted"
        r = await cp.call(event("Started", 0, 0, 0, trigger="Authorized",
                                id_token={"id_token": "TOKEN-1", "type": "ISO14443"},
                                info={"charging_state": "Charging"}))
        assert r.id_token_info["status"] == "Accepted"
        await cp.call(event("Updated", 1, 30, 7500))
        await cp.call(event("Ended", 2, 60, 15000, trigger="EVCommunicationLost",
                            info={"stopped_reason": "EVDisconnected"}))

    raw = await records_for(settings.kafka_bootstrap, gateway.events_topic, charger.id, 4)
    envelopes = [EventEnvelope.from_bytes(r.value) for r in raw]
    assert [e.action for e in envelopes] == ["BootNotification"] + ["TransactionEvent"] * 3
    assert [e.payload.get("seqNo") for e in envelopes[1:]] == [0, 1, 2]
    assert [e.payload["eventType"] for e in envelopes[1:]] == ["Started", "Updated", "Ended"]
    assert {e.ocpp_version for e in envelopes} == {"2.0.1"}
    assert envelopes[1].response == {"idTokenInfo": {"status": "Accepted"}}
    assert envelopes[3].payload["meterValue"][0]["sampledValue"][0]["value"] == 15000


async def test_a_reconnect_mid_session_loses_nothing(settings, gateway, charger):
    async with ocpp_client(gateway.port, charger) as cp:
        start = await cp.call(call16.StartTransaction(connector_id=2, id_tag="TAG-2", meter_start=0, timestamp=ts(0)))
        tx = start.transaction_id
        await cp.call(call16.MeterValues(connector_id=2, transaction_id=tx, meter_value=sampled(2000, 10)))
    # The connection dropped (charger lost its network); it comes back and carries on.
    async with ocpp_client(gateway.port, charger) as cp:
        await cp.call(call16.BootNotification(charge_point_model="M1", charge_point_vendor="V1"))
        await cp.call(call16.MeterValues(connector_id=2, transaction_id=tx, meter_value=sampled(4000, 20)))
        stop = await cp.call(call16.StopTransaction(meter_stop=5000, timestamp=ts(30), transaction_id=tx))
        assert stop is not None
    raw = await records_for(settings.kafka_bootstrap, gateway.events_topic, charger.id, 5)
    envelopes = [EventEnvelope.from_bytes(r.value) for r in raw]
    assert [e.action for e in envelopes] == ["StartTransaction", "MeterValues", "BootNotification",
                                              "MeterValues", "StopTransaction"]
    assert envelopes[0].response["transactionId"] == tx
    assert [e.payload["meterValue"][0]["sampledValue"][0]["value"] for e in (envelopes[1], envelopes[3])] == [
        "2000", "4000"]


async def test_transaction_ids_are_unique_across_sessions_and_restarts(settings, gateway, charger, engine):
    async with ocpp_client(gateway.port, charger) as cp:
        a = await cp.call(call16.StartTransaction(connector_id=1, id_tag="T", meter_start=0, timestamp=ts(0)))
        b = await cp.call(call16.StartTransaction(connector_id=2, id_tag="T", meter_start=0, timestamp=ts(0)))
    # A second gateway process on the same database (or this one after a restart).
    after_restart = [await TransactionIdAllocator(engine, block_size=10).next_id() for _ in range(3)]
    ids = [a.transaction_id, b.transaction_id, *after_restart]
    assert len(set(ids)) == 5
    assert min(after_restart) > max(a.transaction_id, b.transaction_id)


async def test_wrong_password_and_unknown_charge_point_are_refused_at_the_handshake(gateway, charger):
    for cp_id, password in ((charger.id, "not-the-password"), ("CP-unregistered", charger.password)):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(gateway.port, cp_id, password):
                pass
        assert refused.value.response.status_code == 401
    async with connect(gateway.port, charger.id, charger.password) as ws:  # the gateway is still fine
        await ws.send('[2,"h1","Heartbeat",{}]')
        assert json.loads(await ws.recv())[:2] == [3, "h1"]


async def test_malformed_frames_get_callerror_and_a_dead_letter_and_the_connection_stays_up(
        settings, gateway, charger):
    bad_schema = ('[2,"bad-1","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":"lots",'
                  '"timestamp":"2026-11-25T09:00:00Z"}]')
    async with connect(gateway.port, charger.id, charger.password) as ws:
        await ws.send("this is not json")
        assert json.loads(await ws.recv())[:3] == [4, "-1", "FormationViolation"]
        await ws.send(bad_schema)
        assert json.loads(await ws.recv())[:3] == [4, "bad-1", "TypeConstraintViolation"]
        await ws.send('[2,"ok-1","Heartbeat",{}]')
        assert json.loads(await ws.recv())[:2] == [3, "ok-1"]
    dead = [GatewayDeadLetter.from_kafka(r.value, r.headers)
            for r in await records_for(settings.kafka_bootstrap, gateway.dlq_topic, charger.id, 2)]
    assert [d.raw for d in dead] == [b"this is not json", bad_schema.encode()]  # the original bytes
    assert [d.error_code for d in dead] == ["FormationViolation", "TypeConstraintViolation"]
    assert dead[1].message_id == "bad-1" and "meterStart" in dead[1].reason
    (ok,) = await records_for(settings.kafka_bootstrap, gateway.events_topic, charger.id, 1)
    assert EventEnvelope.from_bytes(ok.value).message_id == "ok-1"  # the refused ones are not on ocpp-events


async def test_a_message_kafka_does_not_acknowledge_is_answered_with_internal_error(settings, registry, engine,
                                                                                    charger):
    # The broker refuses records for an invalid topic name: the send is not acknowledged.
    event_log = KafkaEventLog(settings.kafka_bootstrap, "invalid topic name!", "invalid dlq!", timeout_s=1.5)
    await event_log.start()
    gw = Gateway(event_log, registry.password_hash, TransactionIdAllocator(engine, 10).next_id)
    server = await gw.serve("127.0.0.1", 0).__aenter__()
    try:
        async with connect(server.sockets[0].getsockname()[1], charger.id, charger.password) as ws:
            await ws.send('[2,"h1","Heartbeat",{}]')
            assert json.loads(await ws.recv())[:3] == [4, "h1", "InternalError"]
            await ws.send('[2,"h2","Heartbeat",{}]')  # connection still up
            assert json.loads(await ws.recv())[:3] == [4, "h2", "InternalError"]
    finally:
        server.close()
        await server.wait_closed()
        await event_log.stop()
    assert gw.stats.publish_failures == 2 and gw.stats.calls_accepted == 0


async def test_simulated_traffic_via_the_gateway_lands_with_gateway_assigned_transaction_ids(
        settings, gateway, registry):
    from gateway.simulate import replay
    from streams.simulate import simulate_traffic

    prefix = f"SIM{uuid.uuid4().hex[:6]}-"
    traffic = simulate_traffic(4, 8, seed=7, malformed=0, charge_point_prefix=prefix)
    cp_ids = {r.key.decode() for r in traffic.records}
    registry.register_many({cp: "sim-password" for cp in cp_ids}, scrypt_n=FAST_SCRYPT)

    result = await replay([(r.key, r.value) for r in traffic.records],
                          f"ws://127.0.0.1:{gateway.port}/ocpp", "sim-password")
    assert result.connection_failures == [] and not result.refused
    assert result.accepted == result.sent == len(traffic.records)

    for cp_id in sorted(cp_ids):
        sent = [EventEnvelope.from_bytes(r.value) for r in traffic.records if r.key.decode() == cp_id]
        landed = [EventEnvelope.from_bytes(r.value)
                  for r in await records_for(settings.kafka_bootstrap, gateway.events_topic, cp_id, len(sent))]
        assert [(e.action, e.message_id) for e in landed] == [(e.action, e.message_id) for e in sent]
        current = None
        for envelope in landed:
            if envelope.ocpp_version == "1.6" and envelope.action == "StartTransaction":
                current = envelope.response["transactionId"]
            elif envelope.ocpp_version == "1.6" and envelope.action in ("MeterValues", "StopTransaction"):
                assert envelope.payload["transactionId"] == current  # the id the gateway assigned


#: A tariff made for hand arithmetic (the pipeline test's): no restrictions, VAT 20 %.
#: FLAT EUR 0.50 per session, ENERGY EUR 0.30/kWh (step 1 Wh), PARKING_TIME EUR 6.00/h (step 60 s).
HAND_TARIFF = {
    "country_code": "NL", "party_id": "CLG", "id": "GW-HAND", "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 20.0, "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 20.0, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 20.0, "step_size": 60}]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


@pytest.mark.timeout(180)
async def test_sessions_through_the_gateway_end_as_cdrs_with_hand_computed_totals(settings, gateway, registry):
    """Two sessions driven by the ocpp package's clients end as CDRs through the worker.

    A, OCPP 1.6 (transaction id assigned by the gateway), charging the whole hour, with a
    reconnect after the first MeterValues:
      meterStart 1,000,000 Wh at T, 1,010,000 Wh at T+30 min, meterStop 1,020,000 Wh at T+60 min
      energy 20 kWh, no parking
      excl = FLAT 0.50 + 20 x 0.30 = 6.50; incl = 6.50 x 1.20 = 7.80
    B, OCPP 2.0.1, charging T..T+60 min, then SuspendedEV (full) until T+90 min:
      register 5,000 Wh at T, 16,000 at T+45, 20,000 at T+60 and at T+90
      energy 15 kWh, parking 0.5 h
      excl = 0.50 + 15 x 0.30 + 0.5 x 6.00 = 0.50 + 4.50 + 3.00 = 8.00; incl = 8.00 x 1.20 = 9.60
    T is three hours before now: the gateway stamps received_at with the wall clock and
    the assembler refuses timestamps too far from it.
    """
    from sqlalchemy import select

    from storage.db import make_sessionmaker
    from storage.models import CdrRecord
    from streams.tariffs import publish_tariff
    from streams.topics import ensure_topics as ensure_pipeline_topics
    from streams.worker import Worker

    s = settings.model_copy(update={"default_tariff_id": "GW-HAND", "app_id": f"{settings.topic_prefix}worker"})
    await ensure_pipeline_topics(s)
    await publish_tariff(s.kafka_bootstrap, s.topic(s.topic_tariffs), json.dumps(HAND_TARIFF))
    t = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=3)

    def at(minutes: int) -> str:
        return (t + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    token = "NLTNMC00000042"
    a = SimpleNamespace(id=f"GWA-{uuid.uuid4().hex[:8]}", password="pw-a")
    b = SimpleNamespace(id=f"GWB-{uuid.uuid4().hex[:8]}", password="pw-b")
    registry.register_many({a.id: a.password, b.id: b.password}, scrypt_n=FAST_SCRYPT)

    def energy(wh: int, minutes: int) -> list[dict]:
        return [{"timestamp": at(minutes), "sampled_value": [
            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh",
             "context": "Sample.Periodic"}]}]

    async with ocpp_client(gateway.port, a) as cp:
        start = await cp.call(call16.StartTransaction(connector_id=1, id_tag=token, meter_start=1_000_000,
                                                      timestamp=at(0)))
        tx = start.transaction_id
        await cp.call(call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=energy(1_010_000, 30)))
    async with ocpp_client(gateway.port, a) as cp:  # reconnected
        await cp.call(call16.StopTransaction(meter_stop=1_020_000, timestamp=at(60), transaction_id=tx,
                                             reason="EVDisconnected", id_tag=token))

    def event(kind, seq, minutes, wh, state, trigger, context, **extra):
        info = {"transaction_id": "gw-b", "charging_state": state, **extra.pop("info", {})}
        return call201.TransactionEvent(
            event_type=kind, timestamp=at(minutes), trigger_reason=trigger, seq_no=seq, transaction_info=info,
            meter_value=[{"timestamp": at(minutes), "sampled_value": [
                {"value": wh, "measurand": "Energy.Active.Import.Register", "context": context,
                 "unit_of_measure": {"unit": "Wh"}}]}], **extra)

    async with ocpp_client(gateway.port, b, ChargePoint201, "ocpp2.0.1") as cp:
        await cp.call(event("Started", 0, 0, 5_000, "Charging", "Authorized", "Transaction.Begin",
                            id_token={"id_token": token, "type": "eMAID"}, evse={"id": 1, "connector_id": 1}))
        await cp.call(event("Updated", 1, 45, 16_000, "Charging", "MeterValuePeriodic", "Sample.Periodic"))
        await cp.call(event("Updated", 2, 60, 20_000, "SuspendedEV", "ChargingStateChanged", "Sample.Periodic"))
        await cp.call(event("Ended", 3, 90, 20_000, "Idle", "EVDeparted", "Transaction.End",
                            info={"stopped_reason": "EVDisconnected"}))

    keys = {f"{a.id}/{tx}", f"{b.id}/gw-b"}
    db = make_sessionmaker(engine_for(s))

    def cdrs() -> dict[str, CdrRecord]:
        with db() as session:
            return {r.session_key: r for r in session.scalars(select(CdrRecord).where(CdrRecord.session_key.in_(keys)))}

    await asyncio.wait_for(Worker(s, sessions=db).run(until=lambda: len(cdrs()) == 2), timeout=150)
    rows = cdrs()
    ra, rb = rows[f"{a.id}/{tx}"], rows[f"{b.id}/gw-b"]
    assert (ra.total_energy, ra.total_cost_excl_vat, ra.total_cost_incl_vat) == (
        Decimal("20"), Decimal("6.50"), Decimal("7.80"))
    assert (rb.total_energy, rb.total_cost_excl_vat, rb.total_cost_incl_vat) == (
        Decimal("15"), Decimal("8.00"), Decimal("9.60"))
    assert rb.total_parking_time == Decimal("0.5")


async def test_ocpp21_chargers_are_answered_and_logged_as_2_1(settings, gateway, charger):
    from ocpp.v21 import ChargePoint as ChargePoint21
    from ocpp.v21 import call as call21

    async with ocpp_client(gateway.port, charger, ChargePoint21, "ocpp2.1") as cp:
        boot = await cp.call(call21.BootNotification(charging_station={"model": "M3", "vendor_name": "V3"},
                                                     reason="PowerUp"))
        assert boot.status == "Accepted"
        await cp.call(call21.Heartbeat())
    raw = await records_for(settings.kafka_bootstrap, gateway.events_topic, charger.id, 2)
    envelopes = [EventEnvelope.from_bytes(r.value) for r in raw]
    assert [(e.action, e.ocpp_version) for e in envelopes] == [("BootNotification", "2.1"), ("Heartbeat", "2.1")]
