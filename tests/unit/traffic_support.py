"""Simulated OCPP traffic as envelopes, for tests of the pure session core."""

from __future__ import annotations

from schemas.envelope import EventEnvelope
from streams.simulate import simulate_traffic


def simulated_envelopes(sessions: int, seed: int, prefix: str) -> list[EventEnvelope]:
    """The envelopes of ``simulate_traffic(12, sessions, ...)`` with malformed records and
    duplicates mixed in; the malformed records (not envelopes) are left out."""
    traffic = simulate_traffic(12, sessions, seed=seed, malformed=5, duplicates=8, charge_point_prefix=prefix)
    out = []
    for record in traffic.records:
        try:
            out.append(EventEnvelope.from_bytes(record.value))
        except Exception:  # noqa: BLE001 - malformed records are the simulator's point
            continue
    return out
