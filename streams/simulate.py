"""``chargeledger simulate``: realistic OCPP traffic from N charge points onto ``ocpp-events``.

The traffic is a pure function of the options and the seed (:func:`simulate_traffic`), so a
run can be reproduced and a test can compare with what it put in. Half of the charge points
speak OCPP 1.6, the other half OCPP 2.0.1; each runs its sessions one after the other:

* OCPP 1.6: StartTransaction (meterStart from the connector's lifetime register, Wh),
  MeterValues every 15 minutes (Energy.Active.Import.Register as a string, Wh or kWh,
  Power.Active.Import in kW), StopTransaction (meterStop, reason). The simulator plays
  the central system's part: StartTransaction's envelope carries the CALLRESULT with the
  transactionId it assigned (OCPP 1.6 section 6.46), as the gateway does.
* OCPP 2.0.1: TransactionEvent Started / Updated / Ended with seqNo, chargingState
  Charging -> SuspendedEV when the battery is full (parking), meter values with
  unitOfMeasure, Transaction.Begin / Sample.Periodic / Transaction.End contexts.

Session lengths, power (AC 11 kW, AC 22 kW, DC 50 kW), energy and parking time vary.
Tokens are eMSP contract ids ``<country><party>C<digits>`` (e.g. ``NLTNMC00012345``): the
first five characters name the eMSP (OCPI country code + party id), see
:func:`streams.tokens.emsp_of_token`.

``--duplicates K`` re-sends K messages with the same message id (a retry after a lost
reply); ``--malformed K`` adds K broken inputs of several kinds (not JSON, an envelope
without a field, a payload failing its OCPP schema, an unknown action), each of which the
worker must dead-letter with a reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from schemas.envelope import EventEnvelope

UTC = timezone.utc
#: Default first instant of simulated traffic (fixed, so a seed reproduces the bytes).
DEFAULT_START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
SAMPLE_INTERVAL = timedelta(minutes=15)
EMSPS = (("NL", "TNM"), ("DE", "EMP"), ("BE", "ALL"), ("FR", "EVP"))
CONNECTOR_KINDS = (  # (kW, share)
    (Decimal("11"), 5),
    (Decimal("22"), 3),
    (Decimal("50"), 2),
)


@dataclass(frozen=True)
class SimRecord:
    """One Kafka record for ``ocpp-events``: key (charge point id) and value bytes."""

    key: bytes
    value: bytes
    #: What the worker must do with it: ``session`` (part of a session), ``other``
    #: (BootNotification, ...), ``duplicate`` or ``malformed``.
    kind: str
    at: datetime


@dataclass(frozen=True)
class SimSession:
    charge_point_id: str
    ocpp_version: str
    transaction_id: str
    id_tag: str
    start: datetime
    charging_end: datetime
    end: datetime
    energy_wh: int


@dataclass
class SimulatedTraffic:
    records: list[SimRecord] = field(default_factory=list)
    sessions: list[SimSession] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for r in self.records if r.kind == kind)


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _ChargePoint:
    def __init__(self, rng: random.Random, index: int, version: str, start: datetime, prefix: str = "CP") -> None:
        self.rng = rng
        self.id = f"{prefix}{index:04d}" if version == "1.6" else f"{prefix}{index:04d}-V2"
        self.version = version
        kinds = [k for k, share in CONNECTOR_KINDS for _ in range(share)]
        self.max_kw = rng.choice(kinds)
        self.register_wh = rng.randrange(100_000, 50_000_000)
        self.clock = start + timedelta(minutes=rng.randrange(0, 12 * 60))
        self.records: list[SimRecord] = []

    def message_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def emit(self, action: str, payload: dict[str, Any], at: datetime, response: dict | None = None) -> None:
        received = at + timedelta(milliseconds=self.rng.randrange(50, 1500))
        envelope = EventEnvelope(
            charge_point_id=self.id,
            ocpp_version=self.version,  # type: ignore[arg-type]
            action=action,
            message_id=self.message_id(),
            received_at=received,
            payload=payload,
            response=response,
        )
        kind = "session" if action in ("StartTransaction", "MeterValues", "StopTransaction", "TransactionEvent") else "other"
        self.records.append(SimRecord(envelope.kafka_key(), envelope.to_bytes(), kind, received))

    def boot(self) -> None:
        if self.version == "1.6":
            payload = {"chargePointVendor": "Alfen", "chargePointModel": "Eve Single Pro"}
        else:
            payload = {"reason": "PowerUp", "chargingStation": {"model": "Terra 54", "vendorName": "ABB"}}
        self.emit("BootNotification", payload, self.clock)


def _energy_value_16(rng: random.Random, wh: int) -> dict[str, str]:
    # Most 1.6 chargers report Wh; some report kWh with three decimals.
    if rng.random() < 0.2:
        return {"value": str((Decimal(wh) / 1000).quantize(Decimal("0.001"))), "unit": "kWh"}
    return {"value": str(wh), "unit": "Wh"}


def _session(cp: _ChargePoint, next_tx: list[int]) -> SimSession:
    rng = cp.rng
    cp.clock += timedelta(minutes=rng.randrange(10, 180))
    start = cp.clock
    kw = cp.max_kw * Decimal(rng.randrange(60, 101)) / 100  # the car draws 60-100% of the max
    charging = timedelta(minutes=rng.randrange(10, 181))
    parking = timedelta(minutes=rng.choice([0, 0, 0, rng.randrange(5, 121)]))
    charging_end = start + charging
    end = charging_end + parking
    country, party = EMSPS[rng.randrange(len(EMSPS))]
    id_tag = f"{country}{party}C{rng.randrange(10**8):08d}"
    begin_wh = cp.register_wh

    def wh_at(t: datetime) -> int:
        charged = min(t, charging_end) - start
        return begin_wh + int(kw * 1000 * Decimal(charged.total_seconds()) / 3600)

    samples: list[datetime] = []
    t = start + SAMPLE_INTERVAL
    while t < end:
        samples.append(t)
        t += SAMPLE_INTERVAL
    end_wh = wh_at(end)
    cp.register_wh = end_wh

    if cp.version == "1.6":
        next_tx[0] += 1
        tx_id = next_tx[0]
        cp.emit(
            "StartTransaction",
            {"connectorId": 1, "idTag": id_tag, "meterStart": begin_wh, "timestamp": _ts(start)},
            start,
            response={"transactionId": tx_id, "idTagInfo": {"status": "Accepted"}},
        )
        for s in samples:
            power = kw if s < charging_end else Decimal(0)
            cp.emit(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": tx_id,
                    "meterValue": [
                        {
                            "timestamp": _ts(s),
                            "sampledValue": [
                                {"measurand": "Energy.Active.Import.Register", "context": "Sample.Periodic",
                                 "location": "Outlet", **_energy_value_16(rng, wh_at(s))},
                                {"measurand": "Power.Active.Import", "context": "Sample.Periodic",
                                 "unit": "kW", "value": str(power.quantize(Decimal("0.01")))},
                            ],
                        }
                    ],
                },
                s,
            )
        cp.emit(
            "StopTransaction",
            {"transactionId": tx_id, "idTag": id_tag, "meterStop": end_wh, "timestamp": _ts(end),
             "reason": rng.choice(["EVDisconnected", "Local", "Remote"])},
            end,
        )
        transaction_id = str(tx_id)
    else:
        transaction_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        seq = 0
        evse = {"id": 1, "connectorId": 1}

        def meter(t: datetime, context: str, wh: int) -> list[dict]:
            values: list[dict] = [{"value": wh, "measurand": "Energy.Active.Import.Register", "context": context,
                                   "unitOfMeasure": {"unit": "Wh"}}]
            if context == "Sample.Periodic":
                power_w = int(kw * 1000) if t < charging_end else 0
                values.append({"value": power_w, "measurand": "Power.Active.Import", "context": context,
                               "unitOfMeasure": {"unit": "W"}})
            return [{"timestamp": _ts(t), "sampledValue": values}]

        cp.emit("TransactionEvent", {
            "eventType": "Started", "timestamp": _ts(start), "triggerReason": "Authorized", "seqNo": seq,
            "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
            "idToken": {"idToken": id_tag, "type": "eMAID"}, "evse": evse,
            "meterValue": meter(start, "Transaction.Begin", begin_wh),
        }, start)
        events: list[tuple[datetime, str]] = [(s, "sample") for s in samples]
        if parking:
            events.append((charging_end, "suspended"))
        events.sort()
        for t, what in events:
            seq += 1
            if what == "sample":
                state = "Charging" if t < charging_end else "SuspendedEV"
                payload = {"eventType": "Updated", "timestamp": _ts(t), "triggerReason": "MeterValuePeriodic",
                           "seqNo": seq, "transactionInfo": {"transactionId": transaction_id, "chargingState": state},
                           "meterValue": meter(t, "Sample.Periodic", wh_at(t))}
            else:
                payload = {"eventType": "Updated", "timestamp": _ts(t), "triggerReason": "ChargingStateChanged",
                           "seqNo": seq,
                           "transactionInfo": {"transactionId": transaction_id, "chargingState": "SuspendedEV"}}
            cp.emit("TransactionEvent", payload, t)
        seq += 1
        cp.emit("TransactionEvent", {
            "eventType": "Ended", "timestamp": _ts(end), "triggerReason": "EVDeparted", "seqNo": seq,
            "transactionInfo": {"transactionId": transaction_id, "chargingState": "Idle",
                                "stoppedReason": rng.choice(["EVDisconnected", "Local", "Remote"])},
            "meterValue": meter(end, "Transaction.End", end_wh),
        }, end)
    cp.clock = end
    return SimSession(cp.id, cp.version, transaction_id, id_tag, start, charging_end, end, end_wh - begin_wh)


def malformed_records(rng: random.Random, count: int, at: datetime) -> list[SimRecord]:
    """``count`` broken inputs, cycling through the kinds the worker must dead-letter."""
    out: list[SimRecord] = []
    for i in range(count):
        kind = i % 5
        when = at + timedelta(seconds=i)
        base = {
            "charge_point_id": f"CPBAD{i:03d}", "ocpp_version": "1.6", "action": "StartTransaction",
            "message_id": f"bad-{i}", "received_at": _ts(when),
            "payload": {"connectorId": 1, "idTag": "NLTNMC00000001", "meterStart": 0, "timestamp": _ts(when)},
        }
        if kind == 0:
            value = b"\x00not json at all " + str(i).encode()
        elif kind == 1:
            del base["message_id"]
            value = json.dumps(base).encode()
        elif kind == 2:
            base["payload"]["meterStart"] = "abc"
            value = json.dumps(base).encode()
        elif kind == 3:
            base["action"] = "SelfDestruct"
            value = json.dumps(base).encode()
        else:
            base["ocpp_version"] = "2.0.1"
            base["action"] = "TransactionEvent"
            base["payload"] = {"eventType": "Exploded", "timestamp": _ts(when), "triggerReason": "Authorized",
                               "seqNo": 0, "transactionInfo": {"transactionId": "x"}}
            value = json.dumps(base).encode()
        out.append(SimRecord(f"CPBAD{i:03d}".encode(), value, "malformed", when))
    return out


def simulate_traffic(
    charge_points: int,
    sessions: int,
    *,
    seed: int = 1,
    malformed: int = 0,
    duplicates: int = 0,
    start: datetime = DEFAULT_START,
    versions: tuple[str, ...] = ("1.6", "2.0.1"),
    charge_point_prefix: str = "CP",
) -> SimulatedTraffic:
    """The records of ``sessions`` sessions spread over ``charge_points`` charge points.

    Records of one charge point are in its time order; charge points are interleaved by
    time of reception, as a central system would see them.
    """
    if charge_points < 1:
        raise ValueError("need at least one charge point")
    rng = random.Random(seed)
    cps = [_ChargePoint(random.Random(rng.getrandbits(64)), i + 1, versions[i % len(versions)], start,
                        charge_point_prefix) for i in range(charge_points)]
    traffic = SimulatedTraffic()
    for cp in cps:
        cp.boot()
    next_tx = [rng.randrange(1000, 100000)]
    for n in range(sessions):
        traffic.sessions.append(_session(cps[n % charge_points], next_tx))
    records = [r for cp in cps for r in cp.records]
    if duplicates:
        session_records = [r for r in records if r.kind == "session"]
        for original in rng.sample(session_records, min(duplicates, len(session_records))):
            records.append(SimRecord(original.key, original.value, "duplicate", original.at + timedelta(seconds=30)))
    if malformed:
        records.extend(malformed_records(rng, malformed, start))
    # Stable sort: a charge point's own records keep their order.
    records.sort(key=lambda r: r.at)
    traffic.records = records
    return traffic


async def produce(records: list[SimRecord], bootstrap: str, topic: str, progress: bool = False) -> None:
    """Send the records to ``topic`` (idempotent producer, acks=all), in order per key."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        pending = []
        for i, record in enumerate(records, 1):
            pending.append(await producer.send(topic, value=record.value, key=record.key))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
                if progress:
                    print(f"\r  produced {i}/{len(records)} records", end="", file=sys.stderr, flush=True)
        await asyncio.gather(*pending)
        if progress:
            print(f"\r  produced {len(records)}/{len(records)} records", file=sys.stderr, flush=True)
    finally:
        await producer.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargeledger simulate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charge-points", type=int, default=20, help="number of charge points (default 20)")
    parser.add_argument("--sessions", type=int, default=100, help="number of sessions (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; same seed, same bytes (default 1)")
    parser.add_argument("--malformed", type=int, default=0, help="add K malformed inputs (dead-lettered)")
    parser.add_argument("--duplicates", type=int, default=0, help="re-send K messages (counted as duplicates)")
    parser.add_argument("--charge-point-prefix", default="CP", help="charge point ids start with this (default CP)")
    parser.add_argument("--start", help="first instant of the traffic, ISO 8601 UTC (default 2026-03-02T05:00Z)")
    parser.add_argument("--dry-run", action="store_true", help="only print what would be produced")
    parser.add_argument("--via", choices=("kafka", "gateway"), default="kafka",
                        help="kafka: produce envelopes (default); gateway: real OCPP-J connections to a running "
                             "`chargeledger gateway` (see gateway/simulate.py)")
    parser.add_argument("--gateway-url", help="with --via gateway: ws://HOST:PORT/ocpp (default from settings)")
    args = parser.parse_args(argv)
    from chargeledger.settings import get_settings

    settings = get_settings()
    start = datetime.fromisoformat(args.start).astimezone(UTC) if args.start else DEFAULT_START
    traffic = simulate_traffic(args.charge_points, args.sessions, seed=args.seed, malformed=args.malformed,
                               duplicates=args.duplicates, start=start,
                               charge_point_prefix=args.charge_point_prefix)
    topic = settings.topic(settings.topic_events)
    print(f"{len(traffic.records)} records ({len(traffic.sessions)} sessions on {args.charge_points} charge points, "
          f"{traffic.count('duplicate')} duplicates, {traffic.count('malformed')} malformed) -> {topic}")
    if args.dry_run:
        return 0
    if args.via == "gateway":  # the gateway stamps received_at now: keep simulated times in the past
        from gateway.simulate import run_via_gateway, start_before_now

        if not args.start:
            traffic = simulate_traffic(args.charge_points, args.sessions, seed=args.seed, malformed=args.malformed,
                                       duplicates=args.duplicates, charge_point_prefix=args.charge_point_prefix,
                                       start=start_before_now(start, max(r.at for r in traffic.records)))
        return run_via_gateway([(r.key, r.value) for r in traffic.records], settings, args.gateway_url)
    from streams.topics import ensure_topics

    t0 = time.perf_counter()
    asyncio.run(ensure_topics(settings))
    asyncio.run(produce(traffic.records, settings.kafka_bootstrap, topic, progress=True))
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0
