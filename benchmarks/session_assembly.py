"""Session assembly throughput (pure, in memory): envelopes/s through SessionAssembler.apply.

Usage: PYTHONPATH=. python benchmarks/session_assembly.py [--sessions 2000] [--values 30]
           [--traffic synthetic|simulated] [--repeat 3]

Builds realistic traffic (half OCPP 1.6 Start/MeterValues/Stop, half 2.0.1
TransactionEvent; or with ``--traffic simulated`` the messy traffic of /work/wt/refcheck.py:
streams.simulate with malformed records, duplicates, per-phase values, ...), validates and
assembles it, and prints envelopes/s, the time for schema
validation alone, and the time per completed session. Then the CPU time (process_time, less
noisy than the wall clock on a shared machine; the least of ``--repeat`` runs) per envelope of: schema validation, the
aggregate alone (apply minus validation), writing the session state after every envelope
(its head and the new messages' JSON, as the worker stores it) and reading each written state back (parsed by pydantic).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from schemas.envelope import EventEnvelope
from schemas.ocpp import InvalidMessage, validate_call
from sessions import SessionAssembler, SessionState
from sessions.events import stored_json
from sessions import assembler as assembler_module
from streams.simulate import simulate_traffic

T0 = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def traffic(sessions: int, values: int) -> list[EventEnvelope]:
    out: list[EventEnvelope] = []
    for n in range(sessions):
        cp = f"CP-{n % 500:04d}"
        start = T0 + timedelta(minutes=n)
        wh = 1_000_000 + n * 100

        def env(action: str, payload: dict, ts: datetime, version: str, response: dict | None = None,
                _n: int = n) -> EventEnvelope:
            return EventEnvelope(charge_point_id=cp, ocpp_version=version, action=action,
                                 message_id=f"{_n}-{len(out)}", received_at=ts + timedelta(seconds=1),
                                 payload=payload, response=response)

        if n % 2 == 0:
            out.append(env("StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": wh,
                                                "timestamp": _iso(start)}, start, "1.6",
                           {"transactionId": n, "idTagInfo": {"status": "Accepted"}}))
            for i in range(1, values + 1):
                ts = start + timedelta(minutes=i)
                out.append(env("MeterValues", {"connectorId": 1, "transactionId": n, "meterValue": [
                    {"timestamp": _iso(ts), "sampledValue": [
                        {"value": str(wh + i * 180), "unit": "Wh"},
                        {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"}]}]}, ts, "1.6"))
            end = start + timedelta(minutes=values + 1)
            out.append(env("StopTransaction", {"transactionId": n, "meterStop": wh + (values + 1) * 180,
                                               "timestamp": _iso(end), "reason": "EVDisconnected"}, end, "1.6"))
        else:
            tx = f"tx-{n}"
            for i in range(values + 2):
                ts = start + timedelta(minutes=i)
                kind = "Started" if i == 0 else "Ended" if i == values + 1 else "Updated"
                payload = {"eventType": kind, "timestamp": _iso(ts), "triggerReason": "MeterValuePeriodic",
                           "seqNo": i, "transactionInfo": {"transactionId": tx, "chargingState": "Charging"},
                           "meterValue": [{"timestamp": _iso(ts), "sampledValue": [
                               {"value": wh + i * 180.5, "unitOfMeasure": {"unit": "Wh"}}]}]}
                if kind == "Started":
                    payload["evse"] = {"id": 1, "connectorId": 1}
                out.append(env("TransactionEvent", payload, ts, "2.0.1"))
    return out


def simulated() -> list[EventEnvelope]:
    """refcheck.py's traffic (batch 500 run), the records that decode to an envelope."""
    records = simulate_traffic(70, 560, seed=7, malformed=25, duplicates=40, charge_point_prefix="R").records
    out = []
    for record in records:
        try:
            out.append(EventEnvelope.from_bytes(record.value))
        except ValueError:  # malformed on purpose (pydantic's ValidationError is a ValueError)
            continue
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--values", type=int, default=30)
    parser.add_argument("--traffic", choices=("synthetic", "simulated"), default="synthetic")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    envelopes = traffic(args.sessions, args.values) if args.traffic == "synthetic" else simulated()

    def validate_all() -> None:
        for e in envelopes:
            try:
                validate_call(e.ocpp_version, e.action, e.payload)
            except InvalidMessage:
                pass

    began = time.perf_counter()
    validate_all()
    validation_s = time.perf_counter() - began

    assembler = SessionAssembler()
    began = time.perf_counter()
    completed = 0
    for e in envelopes:
        outcome = assembler.apply(e)
        completed += len(outcome.completed)
    total_s = time.perf_counter() - began

    print(f"envelopes            {len(envelopes)}")
    print(f"sessions completed   {completed}")
    print(f"outcomes             {dict(assembler.counts)}")
    print(f"validation only      {len(envelopes) / validation_s:,.0f} envelopes/s")
    print(f"validate + assemble  {len(envelopes) / total_s:,.0f} envelopes/s ({total_s:.2f} s)")
    print(f"per session          {total_s / max(completed, 1) * 1000:.2f} ms")

    n = len(envelopes)

    def cpu(run: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(args.repeat):
            began = time.process_time()
            run()
            best = min(best, time.process_time() - began)
        return best / n * 1e6

    last_texts: dict[str, str] = {}
    # The aggregate alone: the assembler's validate_call answers from models validated here
    # once (same objects, same exceptions), so the figure excludes OCPP validation.
    validated: dict[int, object] = {}
    for e in envelopes:
        try:
            validated[id(e.payload)] = validate_call(e.ocpp_version, e.action, e.payload)
        except InvalidMessage as exc:
            validated[id(e.payload)] = exc

    def prevalidated(version: str, action: str, payload: dict) -> object:
        found = validated[id(payload)]
        if isinstance(found, InvalidMessage):
            raise found
        return found

    def apply_all() -> None:
        fresh = SessionAssembler()
        for e in envelopes:
            fresh.apply(e)

    dump_s = [0.0]

    def apply_and_dump() -> None:
        # As the worker's store writes a state: its head, and the messages recorded since
        # its last write appended (streams.billing.SqlSessionStore).
        last_texts.clear()
        parts: dict[str, tuple[str, list[str], int]] = {}  # session -> head, arrays, messages stored
        fresh = SessionAssembler()
        clock = time.process_time
        spent = 0.0
        for e in envelopes:
            state = fresh.apply(e).state
            if state is not None:
                began = clock()
                _, arrays, stored = parts.get(state.session_id, ("", [], 0))
                arrays.append(state.messages_json(stored))
                parts[state.session_id] = (state.head_json(), arrays, len(state.messages))
                spent += clock() - began
        for session_id, (head, arrays, _) in parts.items():
            last_texts[session_id] = stored_json(head, arrays)
        dump_s.append(spent)

    def load_all() -> None:
        for text in recent:
            SessionState.model_validate_json(text)

    def per_load(us_per_envelope: float) -> float:
        return us_per_envelope * n / max(len(recent), 1)

    validation_us = cpu(validate_all)
    original, assembler_module.validate_call = assembler_module.validate_call, prevalidated
    try:
        aggregate_us = cpu(apply_all)
        cpu(apply_and_dump)
    finally:
        assembler_module.validate_call = original
    dump_us = min(dump_s[1:]) / n * 1e6
    # the sessions written last (a worker reads back the states of its recent sessions)
    recent = list(last_texts.values())[-256:]
    load_us = per_load(cpu(load_all))
    print(f"CPU per envelope     validation {validation_us:.1f} us, aggregate without validation "
          f"{aggregate_us:.1f} us, state write after each envelope {dump_us:.1f} us")
    print(f"CPU per state read   {load_us:.0f} us (pydantic parse), {len(recent)} states of "
          f"{n // len(last_texts)} messages")


if __name__ == "__main__":
    main()
