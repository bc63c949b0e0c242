"""``sessions.fold.summarize`` (issue 4 round 3: points as lists, readings and the result
built without validating them again) gives exactly what the fold gave before
(tests/unit/fold_reference.py): equal CompletedSession, the same fields set and field
types, the same JSON and content hash. Over random sessions built to hit every rule of the
fold (resets, drops, outliers, implausible baselines and jumps, unit labels, lifetime
registers, phases, seqNo gaps, offline, idle closes, several stops, readings outside the
session), and over simulated traffic after every applied envelope."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

import fold_reference as reference
from sessions import AssemblerConfig, SessionAssembler, SessionState
from sessions.events import (
    ChargingStateChanged,
    MessageRecorded,
    MeterValuesRecorded,
    Sample,
    SessionClosedIdle,
    TransactionDetailsReported,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from sessions.fold import SessionFlag, summarize
from traffic_support import simulated_envelopes

T0 = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)
CONFIGS = (AssemblerConfig(), AssemblerConfig(max_power_kw=Decimal("11"), jump_slack_kwh=Decimal("0.25")))
CONTEXTS = (None, None, "Sample.Periodic", "Sample.Periodic", "Transaction.Begin", "Transaction.End",
            "Sample.Clock", "")
STATES = ("Charging", "EVConnected", "SuspendedEV", "SuspendedEVSE", "Idle")


def _kwh(rng: random.Random, value: float) -> Decimal:
    return Decimal(f"{value:.{rng.choice((0, 1, 3))}f}")


def _energy_series(rng: random.Random, count: int) -> list[Decimal | None]:
    """Rising kWh registers with the faults the fold handles."""
    value = rng.choice((0.0, 0.0, 5.0, 12345.678, 250.0))
    out: list[Decimal | None] = []
    for _ in range(count):
        value += rng.choice((0.0, 0.4, 1.5, 3.2, 8.0, 60.0))
        fault = rng.random()
        if fault < 0.06:
            out.append(_kwh(rng, value * 1000))  # outlier / Wh labelled as kWh
        elif fault < 0.11:
            value = rng.choice((0.0, 0.3, value / 3))  # reset or drop
            out.append(_kwh(rng, value))
        elif fault < 0.16:
            out.append(None)  # SoC-only sample
        elif fault < 0.19:
            out.append(_kwh(rng, value + 900))  # jump
        else:
            out.append(_kwh(rng, value))
    return out


def _random_state(rng: random.Random) -> SessionState:
    version = rng.choice(("1.6", "2.0.1", "2.1"))
    state = SessionState(session_id=f"CP/{rng.randrange(10**6)}", charge_point_id="CP",
                         transaction_id=str(rng.randrange(10**6)), ocpp_version=version)
    t = T0
    seq = 0
    count = rng.randrange(0, 14)
    energies = _energy_series(rng, count + 2)
    scale = rng.choice((1, 1, 1, 1000, Decimal("0.001")))  # mislabelled periodic units
    relative = version == "1.6" and rng.random() < 0.2  # lifetime Start/Stop, relative samples
    messages: list[list] = []

    def step() -> datetime:
        nonlocal t
        t += timedelta(seconds=rng.choice((0, 0, 30, 60, 900, 900, 3600, 7)))
        return t

    def sample(energy: Decimal | None, context: str | None) -> Sample:
        return Sample(timestamp=rng.choice((t, t, t, t - timedelta(minutes=5), t + timedelta(days=3))),
                      energy_kwh=energy, context=context,
                      power_kw=rng.choice((None, Decimal("0"), Decimal("7.4"), Decimal("22"))),
                      current_a=rng.choice((None, Decimal("16"), Decimal("32.0"))),
                      phases_summed=rng.random() < 0.1)

    start_energy = energies[0]
    if rng.random() < 0.85:
        step()
        if version == "1.6":
            meter_start = start_energy if not relative else Decimal("15234.5")
            events: list = [TransactionStarted(timestamp=t, connector_id=rng.choice((1, 2)), evse_id=1,
                                               id_tag=rng.choice(("TAG", None, "")), meter_start_kwh=meter_start,
                                               id_tag_status=rng.choice(("Accepted", "Blocked", None)))]
        else:
            events = [TransactionStarted(timestamp=t, connector_id=rng.choice((1, None)), evse_id=rng.choice((1, 3)),
                                         id_tag=rng.choice(("TOK", None)), id_tag_status=rng.choice(("Accepted", None)))]
            if rng.random() < 0.7:
                events.append(MeterValuesRecorded(samples=(sample(start_energy, "Transaction.Begin"),)))
        messages.append(events)
    for index in range(count):
        step()
        kind = rng.random()
        if version != "1.6" and kind < 0.15:
            messages.append([ChargingStateChanged(timestamp=t, charging_state=rng.choice(STATES))])
        elif version != "1.6" and kind < 0.22:
            messages.append([TransactionDetailsReported(timestamp=t, connector_id=rng.choice((None, 2)),
                                                        evse_id=rng.choice((None, 2)), id_tag=rng.choice((None, "LATE")),
                                                        id_tag_status=rng.choice((None, "Invalid")))])
        elif version != "1.6" and kind < 0.26:
            messages.append([TransactionUpdated(timestamp=t, trigger_reason="Trigger")])
        else:
            energy = energies[index + 1]
            if energy is not None and scale != 1:
                energy = energy * scale
            if energy is not None and relative:
                energy = energy - (start_energy or 0)
            samples = tuple(sample(energy if i == 0 else energies[index], rng.choice(CONTEXTS))
                            for i in range(rng.choice((1, 1, 2))))
            events = [MeterValuesRecorded(samples=samples, matched_by_connector=rng.random() < 0.05)]
            if version != "1.6" and rng.random() < 0.3:
                events.insert(0, ChargingStateChanged(timestamp=t, charging_state=rng.choice(STATES)))
            messages.append(events)
    stops = rng.choice((0, 1, 1, 1, 2))
    for _ in range(stops):
        step()
        events = []
        end_energy = energies[-1] if energies[-1] is not None else start_energy
        if version == "1.6":
            meter_stop = end_energy if not relative else Decimal("15234.5") + (end_energy or 0)
            if rng.random() < 0.3:
                events.append(MeterValuesRecorded(samples=(sample(end_energy, "Transaction.End"),)))
            events.append(TransactionEnded(timestamp=t, meter_stop_kwh=rng.choice((meter_stop, meter_stop, None)),
                                           reason=rng.choice((None, "Local", "EVDisconnected")),
                                           id_tag=rng.choice((None, "STOPTAG")),
                                           matched_from_transaction_id=rng.choice((None, None, "-1"))))
        else:
            events.append(MeterValuesRecorded(samples=(sample(end_energy, "Transaction.End"),)))
            events.append(TransactionEnded(timestamp=t, reason=rng.choice((None, "Remote")), id_tag=None))
        messages.append(events)
    if not messages:
        messages.append([TransactionUpdated(timestamp=step(), trigger_reason=None)])
    for events in messages:
        seq += rng.choice((1, 1, 1, 2))
        state.messages.append(MessageRecorded(
            message_id=f"m{seq}", action="A", fingerprint=f"{seq}-{rng.random()}",
            received_at=t + timedelta(seconds=rng.randrange(0, 5000)),
            seq_no=None if version == "1.6" else rng.choice((seq, seq, seq, None, seq - 3)),
            offline=version != "1.6" and rng.random() < 0.05, events=tuple(events)))
    if not stops and rng.random() < 0.5:
        state.closed_idle = SessionClosedIdle(closed_at=t + timedelta(hours=48), last_received_at=t)
    return state


def _assert_same(state: SessionState, config: AssemblerConfig) -> tuple[str, ...]:
    ours = summarize(state, config)
    theirs = reference.summarize(state, config)
    assert ours == theirs
    assert ours.model_fields_set == theirs.model_fields_set
    assert [type(v) for v in ours.__dict__.values()] == [type(v) for v in theirs.__dict__.values()]
    assert list(ours.__dict__) == list(theirs.__dict__)
    for mine, old in zip(ours.readings, theirs.readings):
        assert mine.__dict__ == old.__dict__ and mine.model_fields_set == old.model_fields_set
        assert [type(v) for v in mine.__dict__.values()] == [type(v) for v in old.__dict__.values()]
    assert ours.model_dump_json() == theirs.model_dump_json()
    assert ours.content_hash() == theirs.content_hash()
    assert ours.as_version(2) == theirs.as_version(2)
    return ours.flags


def test_random_sessions_fold_as_before():
    rng = random.Random(20261125)
    seen: set[str] = set()
    for _ in range(1500):
        state = _random_state(rng)
        for config in CONFIGS:
            seen.update(_assert_same(state, config))
    # the random sessions reach every rule of the fold (corrected is set by as_version)
    assert seen == {flag.value for flag in SessionFlag} - {SessionFlag.CORRECTED.value}


@pytest.mark.parametrize("seed", [3, 11])
def test_simulated_traffic_folds_as_before_after_every_event(seed):
    assembler = SessionAssembler()
    checked = 0
    for envelope in simulated_envelopes(60, seed, "F"):
        state = assembler.apply(envelope).state
        if state is not None:
            _assert_same(state, assembler.config)
            checked += 1
    assert checked > 200


def test_readings_and_summaries_share_one_fields_set_that_copies_do_not_touch():
    state = _random_state(random.Random(7))
    first, second = summarize(state, CONFIGS[0]), summarize(state, CONFIGS[0])
    assert first.model_fields_set is second.model_fields_set
    copied = first.as_version(3)
    assert "version" in copied.model_fields_set and "version" not in first.model_fields_set
    reading = first.readings[0]
    changed = reading.model_copy(update={"charging": not reading.charging})
    assert changed.model_fields_set is not reading.model_fields_set
    assert reading.model_fields_set == {"timestamp", "energy_kwh", "power_kw", "current_a", "charging"}
