"""Shortcuts of sessions/assembler.py that mirror slower code (issue 4)."""

from __future__ import annotations

from datetime import timedelta

from sessions import AssemblerConfig, SessionAssembler
from sessions.assembler import AssemblyOutcome
from tests.unit.test_sessions import envelope, iso, start16


def test_clock_limits_follow_a_replaced_config():
    """The limits are read once per config object: a new config takes effect at once."""
    assembler = SessionAssembler()
    early = start16(7, 0, 1000, received=None)  # stamped at minute 0, received a second later
    assert assembler.apply(early).kind == "applied"
    assembler.config = AssemblerConfig(max_clock_behind=timedelta(milliseconds=10))
    late = envelope("StopTransaction", {"transactionId": 7, "meterStop": 2000, "timestamp": iso(1)}, 1)
    outcome = assembler.apply(late)
    assert outcome.kind == "dead_lettered" and "more than 0:00:00.010000 behind" in outcome.reason
    assembler.config = AssemblerConfig()
    assert assembler.apply(late).kind == "applied"


def test_messages_outside_sessions_share_one_equal_outcome():
    assembler = SessionAssembler()
    boot = envelope("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}, 0)
    first, second = assembler.apply(boot), assembler.apply(boot)
    assert first == second == AssemblyOutcome("applied") and repr(first) == repr(AssemblyOutcome("applied"))
    assert assembler.counts["applied"] == 2


def test_applied_outcomes_equal_the_dataclass_built_ones():
    """_record writes the applied outcome's fields straight into its __dict__: the same value,
    field order and repr as AssemblyOutcome(...) built through the frozen dataclass."""
    import dataclasses

    from tests.unit.traffic_support import simulated_envelopes

    assembler = SessionAssembler()
    checked = 0
    for env in simulated_envelopes(40, 31, "O"):
        outcome = assembler.apply(env)
        if outcome.kind != "applied" or outcome.state is None:
            continue
        built = AssemblyOutcome("applied", session_id=outcome.state.session_id, events=outcome.events,
                                completed=outcome.completed, corrections=outcome.corrections, state=outcome.state)
        assert outcome == built and list(vars(outcome)) == list(vars(built)) == [
            f.name for f in dataclasses.fields(AssemblyOutcome)]
        assert repr(outcome) == repr(built)
        checked += 1
    assert checked > 100
