"""Replay simulated OCPP traffic through the gateway over real OCPP-J connections.

``chargeledger simulate --via gateway`` (streams/simulate.py builds the traffic) hands its
records here. Each charge point gets one WebSocket connection to
``ws://HOST:PORT/ocpp/{charge_point_id}`` with its OCPP version's subprotocol and HTTP
Basic auth, and sends its messages as OCPP-J CALLs in order, waiting for each answer, the
way a charger does. The gateway (not this simulator) then writes ``ocpp-events``.

Two things differ from producing envelopes directly:

* OCPP 1.6 transaction ids are assigned by the gateway: the id in the StartTransaction
  answer replaces the simulated one in that session's MeterValues / StopTransaction.
* Malformed inputs become malformed frames (garbage text, a CALL without message id, a
  payload that fails its schema, an unknown action); the gateway answers them with a
  CALLERROR and dead-letters them.

The charge points are registered in the gateway's database first (one random password
per run, each stored as its own salted hash), unless ``register=False``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from gateway.auth import basic_authorization_header
from schemas.envelope import EventEnvelope

SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}


@dataclass
class ReplayResult:
    sent: int = 0
    accepted: int = 0
    refused: Counter = field(default_factory=Counter)
    #: (charge point id, simulated 1.6 transaction id) -> id the gateway assigned
    transaction_ids: dict[tuple[str, int], int] = field(default_factory=dict)
    connection_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Frame:
    text: str
    message_id: str | None
    version: str
    envelope: EventEnvelope | None


def frame_for(value: bytes) -> _Frame:
    """The OCPP-J frame a charger would have sent for one simulated record."""
    try:
        envelope = EventEnvelope.from_bytes(value)
    except ValueError:
        envelope = None
    if envelope is not None:
        frame = json.dumps([2, envelope.message_id, envelope.action, envelope.payload], separators=(",", ":"))
        return _Frame(frame, envelope.message_id, envelope.ocpp_version, envelope)
    try:
        broken = json.loads(value)
    except ValueError:
        return _Frame(value.decode("utf-8", "replace"), None, "1.6", None)
    if not isinstance(broken, dict):
        return _Frame(value.decode("utf-8", "replace"), None, "1.6", None)
    version = broken.get("ocpp_version") if broken.get("ocpp_version") in SUBPROTOCOL else "1.6"
    message_id = broken.get("message_id")
    if not isinstance(message_id, str):  # a CALL without its message id
        return _Frame(json.dumps([2, broken.get("action"), broken.get("payload")]), None, version, None)
    frame = json.dumps([2, message_id, broken.get("action"), broken.get("payload")])
    return _Frame(frame, message_id, version, None)


def _rewrite_transaction_id(envelope: EventEnvelope, payload: dict[str, Any], cp_id: str,
                            assigned: dict[tuple[str, int], int]) -> dict[str, Any]:
    if envelope.ocpp_version != "1.6" or envelope.action not in ("MeterValues", "StopTransaction"):
        return payload
    simulated = payload.get("transactionId")
    if isinstance(simulated, int) and (cp_id, simulated) in assigned:
        return {**payload, "transactionId": assigned[(cp_id, simulated)]}
    return payload


async def _run_charge_point(cp_id: str, values: list[bytes], url: str, password: str, result: ReplayResult,
                            open_timeout: float) -> None:
    import websockets

    frames = [frame_for(v) for v in values]
    version = next((f.version for f in frames if f.envelope is not None), frames[0].version)
    try:
        async with websockets.connect(
            f"{url.rstrip('/')}/{cp_id}",
            subprotocols=[SUBPROTOCOL[version]],
            additional_headers={"Authorization": basic_authorization_header(cp_id, password)},
            open_timeout=open_timeout,
            compression=None,
        ) as ws:
            for frame in frames:
                text = frame.text
                if frame.envelope is not None:
                    payload = _rewrite_transaction_id(frame.envelope, frame.envelope.payload, cp_id,
                                                      result.transaction_ids)
                    text = json.dumps([2, frame.message_id, frame.envelope.action, payload], separators=(",", ":"))
                await ws.send(text)
                result.sent += 1
                while True:  # the answer to this CALL (a frame without id: whatever comes back)
                    answer = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if frame.message_id is None or answer[1] in (frame.message_id, "-1"):
                        break
                if answer[0] == 3:
                    result.accepted += 1
                    env = frame.envelope
                    if env is not None and env.ocpp_version == "1.6" and env.action == "StartTransaction" \
                            and env.response and "transactionId" in env.response:
                        result.transaction_ids.setdefault((cp_id, env.response["transactionId"]),
                                                          answer[2]["transactionId"])
                else:
                    result.refused[answer[2]] += 1
    except Exception as exc:  # noqa: BLE001 - reported, the other charge points carry on
        result.connection_failures.append(f"{cp_id}: {type(exc).__name__}: {exc}")


def register_charge_points(database_url: str, cp_ids: Iterable[str], password: str, scrypt_n: int = 2**12) -> None:
    from gateway.registry import ChargePointRegistry
    from storage.db import make_engine, upgrade

    upgrade(database_url)
    ChargePointRegistry(make_engine(database_url)).register_many({cp: password for cp in cp_ids}, scrypt_n=scrypt_n)


async def replay(records: list[tuple[bytes, bytes]], url: str, password: str, *, concurrency: int = 100,
                 open_timeout: float = 30.0, progress: bool = False) -> ReplayResult:
    """Send ``(key, value)`` records through the gateway at ``url`` (``ws://host:port/ocpp``),
    one connection per key, keys in parallel (at most ``concurrency`` at a time)."""
    by_cp: dict[str, list[bytes]] = defaultdict(list)
    for key, value in records:
        by_cp[key.decode()].append(value)
    result = ReplayResult()
    limit = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def one(cp_id: str, values: list[bytes]) -> None:
        async with limit:
            await _run_charge_point(cp_id, values, url, password, result, open_timeout)
            if progress:
                print(f"\r  sent {result.sent}/{len(records)} messages through the gateway", end="",
                      file=sys.stderr, flush=True)

    await asyncio.gather(*(one(cp, values) for cp, values in by_cp.items()))
    if progress:
        print(file=sys.stderr)
    result.seconds = time.perf_counter() - started
    return result


def run_via_gateway(records: list[tuple[bytes, bytes]], settings, gateway_url: str | None,
                    register: bool = True, password: str | None = None) -> int:
    """The ``--via gateway`` path of ``chargeledger simulate``; prints a summary."""
    url = gateway_url or f"ws://{settings.gateway_host}:{settings.gateway_port}/ocpp"
    password = password or secrets.token_urlsafe(18)
    if register:
        register_charge_points(settings.database_url, {k.decode() for k, _ in records}, password)
    result = asyncio.run(replay(records, url, password, progress=True))
    refused = ", ".join(f"{n} {code}" for code, n in sorted(result.refused.items())) or "none"
    print(f"{result.sent} messages sent through {url} in {result.seconds:.1f}s: {result.accepted} accepted, "
          f"refused: {refused}")
    for failure in result.connection_failures[:10]:
        print(f"  connection failed: {failure}", file=sys.stderr)
    return 1 if result.connection_failures else 0


def start_before_now(start, last, margin_s: int = 60):
    """A new start for traffic generated from ``start`` whose last record is at ``last``,
    so that the whole run lies in the past (ends ``margin_s`` before now), whole seconds."""
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc).replace(microsecond=0)
    return (now - (last - start) - timedelta(seconds=margin_s)).replace(microsecond=0)
