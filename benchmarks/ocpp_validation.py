"""Per-event cost of OCPP payload validation and envelope parsing (pure, in memory).

Usage: PYTHONPATH=. python benchmarks/ocpp_validation.py [--sessions 560] [--repeat 5]

Builds the simulator's realistic traffic (:func:`streams.simulate.simulate_traffic`: half
OCPP 1.6 StartTransaction / MeterValues / StopTransaction, half 2.0.1 TransactionEvent,
plus BootNotification / StatusNotification ...) and prints, per event, the CPU time of

* ``EventEnvelope.from_bytes`` (the worker parses every record value), and
* ``schemas.ocpp.validate_call`` (schema check + exact model), overall and per action,
* the same for a set of invalid payloads (the reason-producing path),
* valid traffic with and without the fast model constructors (pydantic builds the models).

Best of ``--repeat`` rounds (CPU time, ``time.process_time``), so other processes on the
machine disturb it little.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from schemas import ocpp
from schemas.envelope import EventEnvelope
from schemas.ocpp import InvalidMessage, validate_call
from streams.simulate import simulate_traffic


def _best(repeat: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        fn()
        best = min(best, time.process_time() - began)
    return best


def _invalid_variants(envelopes: list[EventEnvelope]) -> list[tuple[str, str, dict[str, Any]]]:
    """Broken copies of real payloads: a wrong type, a missing field, an unknown field."""
    out = []
    for e in envelopes[:400]:
        if not e.payload:
            continue
        first = next(iter(e.payload))
        wrong = copy.deepcopy(e.payload)
        wrong[first] = [1]
        missing = copy.deepcopy(e.payload)
        del missing[first]
        extra = {**e.payload, "bogus": 1}
        for payload in (wrong, missing, extra):
            out.append((e.ocpp_version, e.action, payload))
    return out


def _validate_all(calls: list[tuple[str, str, dict[str, Any]]]) -> int:
    refused = 0
    for version, action, payload in calls:
        try:
            validate_call(version, action, payload)
        except InvalidMessage:
            refused += 1
    return refused


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=560)
    parser.add_argument("--charge-points", type=int, default=70)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    records = [r for r in simulate_traffic(args.charge_points, args.sessions, seed=1).records]
    raw = [r.value for r in records]
    envelopes = [EventEnvelope.from_bytes(v) for v in raw]
    calls = [(e.ocpp_version, e.action, e.payload) for e in envelopes]
    n = len(calls)
    assert _validate_all(calls) == 0, "the simulator's traffic should be valid"

    parse_s = _best(args.repeat, lambda: [EventEnvelope.from_bytes(v) for v in raw])
    valid_s = _best(args.repeat, lambda: _validate_all(calls))

    by_action: dict[tuple[str, str], list] = defaultdict(list)
    for call in calls:
        by_action[call[0], call[1]].append(call)

    invalid = _invalid_variants(envelopes)
    refused = _validate_all(invalid)
    invalid_s = _best(args.repeat, lambda: _validate_all(invalid))

    print(f"events                          {n}")
    print(f"EventEnvelope.from_bytes        {parse_s / n * 1e6:7.1f} us/event")
    print(f"validate_call (valid traffic)   {valid_s / n * 1e6:7.1f} us/event")
    for (version, action), group in sorted(by_action.items(), key=lambda kv: -len(kv[1])):
        s = _best(args.repeat, lambda g=group: _validate_all(g))
        print(f"  {version:5} {action:22}  {s / len(group) * 1e6:7.1f} us/call  ({len(group)} calls)")
    print(f"validate_call (invalid)         {invalid_s / max(len(invalid), 1) * 1e6:7.1f} us/call "
          f"({refused} of {len(invalid)} refused)")

    # What the fast model constructors save: the same traffic with them switched off
    # (pydantic model_validate builds every model), interleaved rounds.
    # validate_call's as-received path (ocpp._AS_RECEIVED) keeps only the actions without a
    # model when the constructors are off (as ocpp._plan would have filled it).
    with_fast = dict(ocpp._PLANS)
    without = {key: plan._replace(fast_model=None) for key, plan in with_fast.items()}
    as_received = {version: dict(by_action) for version, by_action in ocpp._AS_RECEIVED.items()}
    as_received_without = {version: {action: plain for action, plain in by_action.items() if plain[1] is None}
                           for version, by_action in as_received.items()}
    for plans, plain, label in ((without, as_received_without, "without fast constructors"),
                                (with_fast, as_received, "with fast constructors")):
        ocpp._PLANS.clear()
        ocpp._PLANS.update(plans)
        ocpp._AS_RECEIVED.clear()
        ocpp._AS_RECEIVED.update(plain)
        s = _best(args.repeat, lambda: _validate_all(calls))
        print(f"validate_call {label:27} {s / n * 1e6:5.1f} us/event")


if __name__ == "__main__":
    main()
