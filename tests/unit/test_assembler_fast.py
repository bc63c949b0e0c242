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
