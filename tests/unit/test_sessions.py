"""Session assembly from realistic OCPP traffic: one test (at least) per row of the table
in docs/ocpp-sessions.md, plus identity, charging/parking, determinism and accounting.

Expected energies are worked out by hand in the comments.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from schemas.envelope import EventEnvelope
from sessions import (
    AssemblerConfig,
    InMemorySessionStore,
    SessionAssembler,
    SessionFlag,
    SessionState,
    cdr_id_for,
    credit_cdr_id_for,
    ocpi_session_id_for,
    replay,
    session_id_for,
)

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
CP = "NL-CLG-0042"
_ids = itertools.count(1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(minutes: float) -> str:
    return at(minutes).isoformat().replace("+00:00", "Z")


def envelope(action, payload, minute, *, version="1.6", response=None, message_id=None,
             received=None, cp=CP):
    """An envelope received ``minute`` minutes after T0 (unless ``received`` says otherwise)."""
    return EventEnvelope(
        charge_point_id=cp,
        ocpp_version=version,
        action=action,
        message_id=message_id or f"msg-{next(_ids)}",
        received_at=received or at(minute) + timedelta(seconds=1),
        payload=payload,
        response=response,
    )


# --- OCPP 1.6 builders -----------------------------------------------------------------


def start16(tx, minute, meter_start_wh, connector=1, id_tag="04A2B3C4D5", **kw):
    return envelope(
        "StartTransaction",
        {"connectorId": connector, "idTag": id_tag, "meterStart": meter_start_wh, "timestamp": iso(minute)},
        minute,
        response={"transactionId": tx, "idTagInfo": {"status": "Accepted"}},
        **kw,
    )


def mv16(tx, minute, *sampled, connector=1, **kw):
    payload = {"connectorId": connector, "meterValue": [{"timestamp": iso(minute), "sampledValue": list(sampled)}]}
    if tx is not None:
        payload["transactionId"] = tx
    return envelope("MeterValues", payload, minute, **kw)


def energy_wh(value):
    return {"value": str(value), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}


def stop16(tx, minute, meter_stop_wh, reason="EVDisconnected", id_tag=None, **kw):
    payload = {"transactionId": tx, "meterStop": meter_stop_wh, "timestamp": iso(minute), "reason": reason}
    if id_tag:
        payload["idTag"] = id_tag
    return envelope("StopTransaction", payload, minute, **kw)


# --- OCPP 2.0.1 builders ---------------------------------------------------------------


def te(tx, seq, minute, event_type="Updated", *, wh=None, state=None, trigger="MeterValuePeriodic",
       context=None, sampled=None, offline=False, stopped_reason=None, version="2.0.1", **kw):
    info = {"transactionId": tx}
    if state:
        info["chargingState"] = state
    if stopped_reason:
        info["stoppedReason"] = stopped_reason
    payload = {"eventType": event_type, "timestamp": iso(minute), "triggerReason": trigger,
               "seqNo": seq, "transactionInfo": info}
    if offline:
        payload["offline"] = True
    if event_type == "Started":
        payload["evse"] = {"id": 2, "connectorId": 1}
        payload["idToken"] = {"idToken": "DE*ABC*C123456*7", "type": "eMAID"}
    values = list(sampled or [])
    if wh is not None:
        sv = {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}
        if context:
            sv["context"] = context
        values.append(sv)
    if values:
        payload["meterValue"] = [{"timestamp": iso(minute), "sampledValue": values}]
    return envelope("TransactionEvent", payload, minute, version=version, **kw)


def run(*envelopes, config=None):
    assembler, outcomes = replay(envelopes, config)
    return assembler, outcomes


def completed_of(outcomes):
    return [c for o in outcomes for c in o.completed]


def corrections_of(outcomes):
    return [c for o in outcomes for c in o.corrections]


def kinds(outcomes):
    return [o.kind for o in outcomes]


# ======================================================================================
# The happy paths
# ======================================================================================


def test_16_session_start_meter_values_stop():
    _, outcomes = run(
        start16(101, 0, 1_000_000),
        mv16(101, 15, energy_wh(1_003_500), {"value": "14.0", "measurand": "Power.Active.Import", "unit": "kW"}),
        mv16(101, 30, energy_wh(1_007_000)),
        stop16(101, 45, 1_010_000),
    )
    assert kinds(outcomes) == ["applied"] * 4
    [session] = completed_of(outcomes)
    # 1,010,000 Wh - 1,000,000 Wh = 10,000 Wh = 10 kWh
    assert session.total_energy_kwh == Decimal("10")
    assert session.session_id == f"{CP}/101" and session.transaction_id == "101"
    assert session.connector_id == 1 and session.id_tag == "04A2B3C4D5"
    assert (session.start, session.end) == (at(0), at(45))
    assert [r.energy_kwh for r in session.readings] == [Decimal(0), Decimal("3.5"), Decimal("7"), Decimal("10")]
    assert session.readings[1].power_kw == Decimal("14.0")
    assert session.incomplete is False and session.flags == () and session.remark is None
    assert session.stop_reason == "EVDisconnected"
    assert session.cdr_id == cdr_id_for(CP, 101) and session.version == 0


def test_201_session_started_updated_ended():
    tx = "7f3e2a10-5b7c-4c1e-9d55-0a2b4c6d8e01"
    _, outcomes = run(
        te(tx, 0, 0, "Started", wh=52_000, context="Transaction.Begin", state="EVConnected", trigger="CablePluggedIn"),
        te(tx, 1, 2, state="Charging", trigger="ChargingStateChanged"),
        te(tx, 2, 32, wh=63_000),
        te(tx, 3, 62, "Ended", wh=74_500, context="Transaction.End", state="EVConnected",
           trigger="EVDeparted", stopped_reason="EVDisconnected"),
    )
    [session] = completed_of(outcomes)
    # 74,500 Wh - 52,000 Wh = 22,500 Wh = 22.5 kWh
    assert session.total_energy_kwh == Decimal("22.5")
    assert session.evse_id == 2 and session.connector_id == 1 and session.id_tag == "DE*ABC*C123456*7"
    assert session.stop_reason == "EVDisconnected" and session.flags == ()


# ======================================================================================
# Row: the same message twice -> apply once; count the duplicate
# ======================================================================================


def test_retried_16_meter_values_with_same_message_id_count_as_duplicate():
    values = mv16(102, 15, energy_wh(2_004_000), message_id="mv-15")
    retry = values.model_copy(update={"received_at": values.received_at + timedelta(seconds=30)})
    _, outcomes = run(start16(102, 0, 2_000_000), values, retry, stop16(102, 30, 2_008_000))
    assert kinds(outcomes) == ["applied", "applied", "duplicate", "applied"]
    [session] = completed_of(outcomes)
    # 2,008,000 - 2,000,000 Wh = 8 kWh; the reading at 15 min appears once (4 kWh)
    assert session.total_energy_kwh == Decimal("8")
    assert [r.energy_kwh for r in session.readings] == [Decimal(0), Decimal(4), Decimal(8)]


def test_stop_resent_after_reboot_with_new_message_id_is_a_duplicate_not_a_correction():
    stop = stop16(103, 30, 3_006_000)
    resent = stop.model_copy(update={"message_id": "after-reboot-1", "received_at": at(40)})
    _, outcomes = run(start16(103, 0, 3_000_000), stop, resent)
    assert kinds(outcomes) == ["applied", "applied", "duplicate"]
    assert len(completed_of(outcomes)) == 1 and corrections_of(outcomes) == []


def test_retried_16_start_transaction_is_a_duplicate():
    start = start16(104, 0, 0, message_id="start-1")
    _, outcomes = run(start, start)
    assert kinds(outcomes) == ["applied", "duplicate"]


def test_201_same_seq_no_resent_offline_is_a_duplicate_with_reason():
    tx = "tx-dup"
    first = te(tx, 1, 10, wh=1_500)
    resent = te(tx, 1, 10, wh=1_500, offline=True)  # resent after reboot, flagged offline
    _, outcomes = run(te(tx, 0, 0, "Started", wh=0, context="Transaction.Begin"), first, resent, first)
    assert kinds(outcomes) == ["applied", "applied", "duplicate", "duplicate"]
    assert "seqNo 1 already recorded with different content" in outcomes[2].reason
    assert outcomes[3].reason is None  # identical content


def test_same_message_id_with_different_content_is_not_a_duplicate():
    # Chargers restart their message-id counter after a reboot: "1" may be reused.
    _, outcomes = run(
        start16(105, 0, 0, message_id="1"),
        mv16(105, 10, energy_wh(1_000), message_id="2"),
        mv16(105, 20, energy_wh(2_000), message_id="2"),
        stop16(105, 30, 3_000, message_id="3"),
    )
    assert kinds(outcomes) == ["applied"] * 4
    # 3,000 Wh - 0 = 3 kWh with both readings present
    assert [r.energy_kwh for r in completed_of(outcomes)[0].readings] == [0, 1, 2, 3]


# ======================================================================================
# Row: 2.0.1 out of order / offline late -> order by seqNo; re-open; record gaps
# ======================================================================================


def _201_in_order(tx="tx-order"):
    return [
        te(tx, 0, 0, "Started", wh=10_000, context="Transaction.Begin", state="Charging"),
        te(tx, 1, 15, wh=15_000),
        te(tx, 2, 30, wh=20_000),
        te(tx, 3, 40, state="SuspendedEV", trigger="ChargingStateChanged", wh=23_000),
        te(tx, 4, 60, "Ended", wh=23_000, context="Transaction.End", stopped_reason="EVDisconnected"),
    ]


def test_201_events_out_of_order_give_the_same_session_as_in_order():
    in_order = _201_in_order()
    shuffled = [in_order[0], in_order[2], in_order[1], in_order[3], in_order[4]]
    [a] = completed_of(run(*in_order)[1])
    [b] = completed_of(run(*shuffled)[1])
    # 23,000 Wh - 10,000 Wh = 13 kWh either way
    assert a.total_energy_kwh == b.total_energy_kwh == Decimal("13")
    assert a.content_hash() == b.content_hash()
    assert SessionFlag.SEQ_NO_GAP.value not in a.flags


def test_201_gap_in_seq_no_is_recorded_and_late_event_reissues():
    events = _201_in_order("tx-gap")
    _, outcomes = run(events[0], events[1], events[3], events[4])  # seqNo 2 missing
    [first] = completed_of(outcomes)
    assert SessionFlag.SEQ_NO_GAP.value in first.flags
    assert "seqNo gap: missing 2" in first.remark
    # 15,000 -> 23,000 (40 min) is plausible; total 23,000 - 10,000 Wh = 13 kWh
    assert first.total_energy_kwh == Decimal("13")

    # the offline event with seqNo 2 arrives a day later: the session re-opens
    assembler, outcomes = run(events[0], events[1], events[3], events[4],
                              te("tx-gap", 2, 30, wh=20_000, offline=True, received=at(60 * 24)))
    [correction] = corrections_of(outcomes)
    assert outcomes[-1].kind == "applied"
    assert correction.version == 1
    assert SessionFlag.SEQ_NO_GAP.value not in correction.flags
    assert SessionFlag.OFFLINE_EVENTS.value in correction.flags
    assert correction.replaces_cdr_id == cdr_id_for(CP, "tx-gap")
    assert correction.credit_cdr_id == credit_cdr_id_for(CP, "tx-gap", 0)
    assert correction.cdr_id == cdr_id_for(CP, "tx-gap", 1)
    assert [r.energy_kwh for r in correction.readings][:4] == [0, 5, 10, 13]
    assert correction.total_energy_kwh == Decimal("13")


def test_201_ended_before_started_completes_then_started_corrects():
    events = _201_in_order("tx-late-start")
    _, outcomes = run(*events[1:], events[0])
    [first] = completed_of(outcomes)
    assert SessionFlag.MISSING_START.value in first.flags
    # without Transaction.Begin the register starts at 15,000 Wh: 23,000 - 15,000 = 8 kWh
    assert first.total_energy_kwh == Decimal("8")
    [correction] = corrections_of(outcomes)
    # with it: 23,000 - 10,000 Wh = 13 kWh
    assert correction.total_energy_kwh == Decimal("13") and correction.start == at(0)
    assert SessionFlag.MISSING_START.value not in correction.flags


# ======================================================================================
# Row: StopTransaction with transactionId -1 or unknown
# ======================================================================================


def test_stop_with_minus_one_is_matched_to_the_only_open_transaction():
    _, outcomes = run(start16(201, 0, 500_000), mv16(201, 20, energy_wh(503_000)), stop16(-1, 40, 506_000))
    assert kinds(outcomes) == ["applied"] * 3
    [session] = completed_of(outcomes)
    assert session.transaction_id == "201"
    # 506,000 - 500,000 Wh = 6 kWh
    assert session.total_energy_kwh == Decimal("6")
    assert SessionFlag.STOP_MATCHED.value in session.flags
    assert "stop with transactionId -1 matched" in session.remark


def test_stop_with_unknown_id_and_two_open_transactions_is_dead_lettered():
    _, outcomes = run(
        start16(202, 0, 0, connector=1, id_tag="AAA"),
        start16(203, 5, 0, connector=2, id_tag="BBB"),
        stop16(999, 40, 1_000),
    )
    assert outcomes[-1].kind == "dead_lettered"
    assert outcomes[-1].reason == (
        f"StopTransaction with unknown transactionId 999 on {CP}: 2 open transactions (202, 203), ambiguous")


def test_stop_with_minus_one_is_matched_by_id_tag_when_several_are_open():
    _, outcomes = run(
        start16(204, 0, 0, connector=1, id_tag="AAA"),
        start16(205, 5, 0, connector=2, id_tag="BBB"),
        stop16(-1, 40, 7_000, id_tag="BBB"),
    )
    [session] = completed_of(outcomes)
    assert session.transaction_id == "205" and session.total_energy_kwh == Decimal("7")  # 7,000 Wh


def test_stop_with_minus_one_and_nothing_open_is_dead_lettered_and_its_resend_is_a_duplicate():
    stop = stop16(-1, 40, 1_000)
    _, outcomes = run(stop)
    assert outcomes[0].kind == "dead_lettered"
    assert outcomes[0].reason == f"StopTransaction with -1 on {CP}: no open transaction to match it to"

    matched = stop16(-1, 40, 1_000)
    _, outcomes = run(start16(206, 0, 0), matched, matched.model_copy(update={"message_id": "resent"}))
    assert kinds(outcomes) == ["applied", "applied", "duplicate"]


# ======================================================================================
# Row: a transaction that never ends -> idle timeout, incomplete, last reading
# ======================================================================================


def test_session_without_stop_is_closed_incomplete_after_idle_timeout_then_corrected_by_late_stop():
    config = AssemblerConfig(idle_timeout=timedelta(hours=48))
    assembler = SessionAssembler(config)
    for env in (start16(301, 0, 40_000), mv16(301, 30, energy_wh(45_000)), mv16(301, 60, energy_wh(49_500))):
        assert assembler.apply(env).kind == "applied"
    assert assembler.close_idle(at(60) + timedelta(hours=47)) == []  # not yet
    [closed] = assembler.close_idle(at(60) + timedelta(hours=48, seconds=1))
    # billed on the last reading: 49,500 - 40,000 Wh = 9.5 kWh, ending at the last reading
    assert closed.incomplete is True and closed.total_energy_kwh == Decimal("9.5")
    assert closed.end == at(60)
    assert closed.issued_at == at(60) + timedelta(hours=48, seconds=1)  # the idle-close time
    assert SessionFlag.CLOSED_IDLE.value in closed.flags
    assert "incomplete: no stop received; closed after 2 days, 0:00:00 without messages" in closed.remark
    assert assembler.close_idle(at(60) + timedelta(days=5)) == []  # closed once

    # the stop arrives three days late: credit + replacement, now complete
    outcome = assembler.apply(stop16(301, 75, 50_000, received=at(60 * 24 * 3)))
    [correction] = outcome.corrections
    assert correction.incomplete is False and correction.total_energy_kwh == Decimal("10")  # 50,000-40,000 Wh
    assert correction.version == 1 and correction.credit_cdr_id == credit_cdr_id_for(CP, 301, 0)
    assert correction.issued_at == at(60 * 24 * 3)  # when the late stop was received


# ======================================================================================
# Row: meterStop below meterStart; a register that resets to 0 after a reboot
# ======================================================================================


def test_meter_stop_below_meter_start_is_a_reset_never_negative():
    _, outcomes = run(start16(401, 0, 5_000), stop16(401, 30, 1_200, reason="Reboot"))
    [session] = completed_of(outcomes)
    # register restarted at 0 and reached 1,200 Wh: 1.2 kWh billed, never 1.2 - 5 = -3.8
    assert session.total_energy_kwh == Decimal("1.2")
    assert SessionFlag.REGISTER_RESET.value in session.flags


def test_register_reset_mid_session_sums_the_segments():
    _, outcomes = run(
        start16(402, 0, 1_000_000),
        mv16(402, 15, energy_wh(1_004_000)),
        mv16(402, 30, energy_wh(1_008_000)),
        mv16(402, 45, energy_wh(500)),  # rebooted: register restarted at 0
        mv16(402, 60, energy_wh(4_500)),
        stop16(402, 75, 8_500, reason="Reboot"),
    )
    [session] = completed_of(outcomes)
    # segment 1: 1,008,000 - 1,000,000 = 8,000 Wh; segment 2: 0 -> 8,500 = 8,500 Wh; 16.5 kWh
    assert session.total_energy_kwh == Decimal("16.5")
    assert [r.energy_kwh for r in session.readings] == [0, 4, 8, Decimal("8.5"), Decimal("12.5"), Decimal("16.5")]
    assert SessionFlag.REGISTER_RESET.value in session.flags
    assert "energy register reset at 2026-11-02T08:45:00Z" in session.remark


def test_small_drop_at_stop_is_not_a_reset():
    _, outcomes = run(start16(403, 0, 100_000), mv16(403, 30, energy_wh(110_500)), stop16(403, 31, 110_480))
    [session] = completed_of(outcomes)
    # 110,500 -> 110,480 Wh is a 20 Wh glitch, not a restart at 0: 10.5 kWh, not 10.5 + 110.48
    assert session.total_energy_kwh == Decimal("10.5")
    assert SessionFlag.REGISTER_DROP.value in session.flags


# ======================================================================================
# Row: kWh values, multipliers, kWh labelled as Wh; implausible jumps flagged
# ======================================================================================


def test_16_meter_values_in_kwh_with_start_stop_in_wh():
    _, outcomes = run(
        start16(501, 0, 1_234_000),
        mv16(501, 20, {"value": "1240.5", "unit": "kWh"}),
        mv16(501, 40, {"value": 1247.25, "unit": "kWh"}),  # numeric where a string is expected
        stop16(501, 60, 1_252_000),
    )
    [session] = completed_of(outcomes)
    # 1,252,000 Wh - 1,234,000 Wh = 18 kWh; readings 6.5 (1240.5 - 1234) and 13.25
    assert session.total_energy_kwh == Decimal("18")
    assert [r.energy_kwh for r in session.readings] == [0, Decimal("6.5"), Decimal("13.25"), 18]
    assert session.flags == ()


def test_201_multiplier_and_kwh_units_convert():
    tx = "tx-mult"
    kwh = lambda v: {"value": v, "unitOfMeasure": {"unit": "kWh"}}  # noqa: E731
    wh_x1000 = lambda v: {"value": v, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}}  # noqa: E731
    _, outcomes = run(
        te(tx, 0, 0, "Started", sampled=[dict(kwh(100.0), context="Transaction.Begin")]),
        te(tx, 1, 30, sampled=[wh_x1000(111.5)]),  # 111.5 * 10^3 Wh = 111.5 kWh
        te(tx, 2, 60, "Ended", sampled=[dict(kwh(120.25), context="Transaction.End")]),
    )
    [session] = completed_of(outcomes)
    # 120.25 - 100 = 20.25 kWh
    assert session.total_energy_kwh == Decimal("20.25")
    assert [r.energy_kwh for r in session.readings] == [0, Decimal("11.5"), Decimal("20.25")]


def test_kwh_labelled_as_wh_sample_is_flagged_and_not_billed():
    # One sample of a 1.6 charger says "15500" labelled kWh while it is Wh: 15,500 kWh.
    _, outcomes = run(
        start16(502, 0, 10_000),
        mv16(502, 15, {"value": "12.5", "unit": "kWh"}),
        mv16(502, 30, {"value": "15500", "unit": "kWh"}),
        mv16(502, 45, {"value": "18.0", "unit": "kWh"}),
        stop16(502, 60, 20_000),
    )
    [session] = completed_of(outcomes)
    # 15,500 kWh within 15 minutes is beyond 400 kW; the next reading (18 kWh) continues
    # from 12.5 kWh, so the sample is an outlier: 20,000 - 10,000 Wh = 10 kWh
    assert session.total_energy_kwh == Decimal("10")
    assert SessionFlag.OUTLIER_IGNORED.value in session.flags
    assert "energy register 15500 kWh at 2026-11-02T08:30:00Z out of line" in session.remark


def test_implausible_jump_for_the_connector_power_is_flagged_and_not_billed():
    _, outcomes = run(
        te("tx-jump", 0, 0, "Started", wh=1_000, context="Transaction.Begin"),
        te("tx-jump", 1, 10, wh=3_000),
        te("tx-jump", 2, 20, wh=3_003_000),  # +3,000 kWh in 10 minutes
        te("tx-jump", 3, 30, wh=3_005_000),
        te("tx-jump", 4, 40, "Ended", wh=3_007_000, context="Transaction.End"),
    )
    [session] = completed_of(outcomes)
    # billed: 1,000 -> 3,000 (2 kWh) + 3,003,000 -> 3,007,000 (4 kWh) = 6 kWh; the jump is not
    assert session.total_energy_kwh == Decimal("6")
    assert SessionFlag.IMPLAUSIBLE_JUMP.value in session.flags


# ======================================================================================
# Row: Transaction.Begin value of 0 after an offline reboot
# ======================================================================================


def test_transaction_begin_zero_after_offline_reboot_is_not_taken_as_baseline():
    tx = "tx-begin-zero"
    _, outcomes = run(
        te(tx, 0, 0, "Started", wh=0, context="Transaction.Begin", offline=True, received=at(20)),
        te(tx, 1, 15, wh=15_230_400, offline=True, received=at(20)),
        te(tx, 2, 30, wh=15_237_900),
        te(tx, 3, 45, "Ended", wh=15_241_400, context="Transaction.End"),
    )
    [session] = completed_of(outcomes)
    # 0 -> 15,230.4 kWh in 15 minutes is impossible: count from 15,230,400 Wh:
    # 15,241,400 - 15,230,400 = 11,000 Wh = 11 kWh (not 15,241.4 kWh)
    assert session.total_energy_kwh == Decimal("11")
    assert SessionFlag.IMPLAUSIBLE_BASELINE.value in session.flags
    assert SessionFlag.OFFLINE_EVENTS.value in session.flags


def test_16_meter_start_zero_with_lifetime_meter_values_prefers_register_continuity():
    _, outcomes = run(
        start16(601, 0, 0),
        mv16(601, 15, energy_wh(8_200_000)),
        mv16(601, 30, energy_wh(8_204_000)),
        stop16(601, 45, 8_207_500),
    )
    [session] = completed_of(outcomes)
    # 8,207,500 - 8,200,000 Wh = 7.5 kWh
    assert session.total_energy_kwh == Decimal("7.5")
    assert SessionFlag.IMPLAUSIBLE_BASELINE.value in session.flags


# ======================================================================================
# Row: batches with no energy reading -> keep the last energy
# ======================================================================================


def test_batches_without_energy_keep_the_last_known_energy():
    soc = lambda v: {"value": str(v), "measurand": "SoC", "unit": "Percent"}  # noqa: E731
    power = lambda v: {"value": str(v), "measurand": "Power.Active.Import", "unit": "W"}  # noqa: E731
    _, outcomes = run(
        start16(701, 0, 300_000),
        mv16(701, 10, energy_wh(302_000), power(11_000)),
        mv16(701, 15, soc(42), power(11_040)),  # SoC-only clock-aligned batch
        mv16(701, 20, soc(45)),
        mv16(701, 30, energy_wh(305_500)),
        stop16(701, 40, 307_000),
    )
    [session] = completed_of(outcomes)
    # 307,000 - 300,000 Wh = 7 kWh; readings at 15 and 20 min keep 2 kWh (never 0)
    assert session.total_energy_kwh == Decimal("7")
    assert [r.energy_kwh for r in session.readings] == [0, 2, 2, 2, Decimal("5.5"), 7]
    assert session.readings[2].power_kw == Decimal("11.04")


def test_201_event_without_meter_values_keeps_energy():
    tx = "tx-nomv"
    _, outcomes = run(
        te(tx, 0, 0, "Started", wh=1_000, context="Transaction.Begin", state="Charging"),
        te(tx, 1, 20, wh=6_000),
        te(tx, 2, 25, trigger="Trigger"),  # no values at all
        te(tx, 3, 40, "Ended", wh=9_000, context="Transaction.End"),
    )
    [session] = completed_of(outcomes)
    # 9,000 - 1,000 Wh = 8 kWh; the reading at 25 min keeps 5 kWh
    assert [r.energy_kwh for r in session.readings] == [0, 5, 5, 8]


# ======================================================================================
# Row: per-phase values only -> sum the phases
# ======================================================================================


def test_per_phase_only_values_are_summed():
    def phases(l1, l2, l3):
        return [{"value": str(v), "phase": p, "unit": "Wh"} for p, v in (("L1", l1), ("L2", l2), ("L3", l3))]

    current = [{"value": "16", "measurand": "Current.Import", "phase": p, "unit": "A"} for p in ("L1", "L2", "L3")]
    _, outcomes = run(
        start16(801, 0, 900_000),
        mv16(801, 30, *phases(301_000, 302_500, 300_500), *current),
        stop16(801, 60, 911_000),
    )
    [session] = completed_of(outcomes)
    # phases: 301,000 + 302,500 + 300,500 = 904,000 Wh -> 4 kWh at 30 min; stop 911,000 -> 11 kWh
    assert [r.energy_kwh for r in session.readings] == [0, 4, 11]
    assert session.readings[1].current_a == Decimal("48")  # 3 x 16 A
    assert SessionFlag.PHASES_SUMMED.value in session.flags


def test_total_wins_over_phases_when_both_are_sent():
    _, outcomes = run(
        start16(802, 0, 0),
        mv16(802, 30, {"value": "900", "phase": "L1"}, energy_wh(2_700), {"value": "900", "phase": "L2"}),
        stop16(802, 60, 5_000),
    )
    [session] = completed_of(outcomes)
    assert session.readings[1].energy_kwh == Decimal("2.7")
    assert SessionFlag.PHASES_SUMMED.value not in session.flags


# ======================================================================================
# Row: lifetime register in Start/Stop, session-relative MeterValues
# ======================================================================================


def test_lifetime_start_stop_with_session_relative_meter_values_is_detected():
    _, outcomes = run(
        start16(901, 0, 1_234_567),
        mv16(901, 20, energy_wh(0)),
        mv16(901, 40, energy_wh(6_100)),
        mv16(901, 60, energy_wh(12_300)),
        stop16(901, 70, 1_248_867),
    )
    [session] = completed_of(outcomes)
    # Start/Stop: 1,248,867 - 1,234,567 = 14,300 Wh = 14.3 kWh; meter values 6.1, 12.3 kWh
    assert session.total_energy_kwh == Decimal("14.3")
    assert [r.energy_kwh for r in session.readings] == [0, 0, Decimal("6.1"), Decimal("12.3"), Decimal("14.3")]
    assert SessionFlag.LIFETIME_REGISTER.value in session.flags
    assert SessionFlag.REGISTER_RESET.value not in session.flags


# ======================================================================================
# Row: timestamps in the far future or past -> dead-letter with the reason
# ======================================================================================


def test_timestamp_far_in_the_future_is_dead_lettered():
    env = envelope("MeterValues", {"connectorId": 1, "transactionId": 1001, "meterValue": [
        {"timestamp": "2036-02-07T06:28:16Z", "sampledValue": [energy_wh(5_000)]}]}, 10)
    _, outcomes = run(start16(1001, 0, 0), env)
    assert outcomes[-1].kind == "dead_lettered"
    assert outcomes[-1].reason.startswith("MeterValues: meterValue[0].timestamp 2036-02-07T06:28:16Z is ")
    assert "after received_at 2026-11-02T08:10:01Z (more than 1:00:00 ahead" in outcomes[-1].reason


def test_timestamp_at_the_epoch_after_a_clock_reset_is_dead_lettered():
    env = envelope("StartTransaction", {"connectorId": 1, "idTag": "X", "meterStart": 0,
                                        "timestamp": "1970-01-01T00:00:12Z"}, 0,
                   response={"transactionId": 1002, "idTagInfo": {"status": "Accepted"}})
    _, outcomes = run(env)
    assert outcomes[0].kind == "dead_lettered"
    assert "StartTransaction: timestamp 1970-01-01T00:00:12Z is " in outcomes[0].reason
    assert "behind; charger clock wrong?" in outcomes[0].reason


def test_offline_events_a_week_late_are_accepted():
    tx = "tx-week"
    late = at(60 * 24 * 7)
    _, outcomes = run(
        te(tx, 0, 0, "Started", wh=0, context="Transaction.Begin", offline=True, received=late),
        te(tx, 1, 60, "Ended", wh=22_000, context="Transaction.End", offline=True, received=late),
    )
    assert kinds(outcomes) == ["applied", "applied"]
    assert completed_of(outcomes)[0].total_energy_kwh == Decimal("22")  # 22,000 Wh


def test_issued_at_is_when_the_last_event_was_received_not_the_chargers_end():
    # The CDR's last_updated: an eMSP pulling with date_from = its last pull must see the
    # CDR of a session whose events arrived a week after the charger ended it.
    tx = "tx-week-issued"
    late = at(60 * 24 * 7)
    _, outcomes = run(
        te(tx, 0, 0, "Started", wh=0, context="Transaction.Begin", offline=True, received=late),
        te(tx, 1, 60, "Ended", wh=22_000, context="Transaction.End", offline=True,
           received=late + timedelta(seconds=5)),
    )
    [session] = completed_of(outcomes)
    assert session.end == at(60)
    assert session.issued_at == late + timedelta(seconds=5)


# ======================================================================================
# Row: an event for a session whose CDR was already issued -> credit + new CDR
# ======================================================================================


def test_late_meter_values_after_issue_produce_a_correction_once():
    assembler = SessionAssembler()
    for env in (start16(1101, 0, 0), stop16(1101, 60, 20_000)):
        assembler.apply(env)
    late = mv16(1101, 30, energy_wh(12_000), received=at(90))
    outcome = assembler.apply(late)
    [correction] = outcome.corrections
    # energy unchanged (20 kWh) but the readings changed: re-issued
    assert correction.total_energy_kwh == Decimal("20")
    assert [r.energy_kwh for r in correction.readings] == [0, 12, 20]
    assert correction.version == 1 and correction.cdr_id.endswith("-R1")
    assert correction.replaces_cdr_id == cdr_id_for(CP, 1101)
    assert SessionFlag.CORRECTED.value in correction.flags
    # the same late message again is a duplicate, not another correction
    assert assembler.apply(late.model_copy(update={"message_id": "again"})).kind == "duplicate"
    # a second change gives version 2, crediting version 1
    outcome = assembler.apply(mv16(1101, 45, energy_wh(16_000), received=at(95)))
    [second] = outcome.corrections
    assert second.version == 2
    assert second.replaces_cdr_id == cdr_id_for(CP, 1101, 1)
    assert second.credit_cdr_id == credit_cdr_id_for(CP, 1101, 1)


def test_late_event_that_changes_nothing_is_applied_without_correction():
    assembler = SessionAssembler()
    assembler.apply(te("tx-same", 0, 0, "Started", wh=0, context="Transaction.Begin"))
    assembler.apply(te("tx-same", 1, 30, "Ended", wh=10_000, context="Transaction.End"))
    # a late event with the same state at the same instant adds nothing billing sees
    outcome = assembler.apply(te("tx-same", 2, 30, wh=10_000, received=at(40)))
    assert outcome.kind == "applied" and outcome.corrections == ()


# ======================================================================================
# 1.6 specifics: dead letters
# ======================================================================================


def test_16_start_transaction_without_answer_is_dead_lettered():
    env = start16(1201, 0, 0).model_copy(update={"response": None})
    _, outcomes = run(env)
    assert outcomes[0].kind == "dead_lettered"
    assert "without the central system's answer" in outcomes[0].reason


def test_16_start_transaction_with_invalid_answer_is_dead_lettered():
    env = start16(1202, 0, 0).model_copy(update={"response": {"idTagInfo": {"status": "Accepted"}}})
    _, outcomes = run(env)
    assert outcomes[0].reason == "StartTransaction answer: StartTransaction: (payload): 'transactionId' is a required property"


def test_meter_values_for_unknown_transaction_are_dead_lettered():
    _, outcomes = run(mv16(1203, 10, energy_wh(1)))
    assert outcomes[0].reason == f"MeterValues for unknown transaction 1203 on {CP} (no StartTransaction applied for it)"


def test_meter_values_without_transaction_id_attach_to_the_open_transaction_on_their_connector():
    _, outcomes = run(
        start16(1204, 0, 10_000, connector=2),
        mv16(None, 5, energy_wh(99_999), connector=1),  # other connector, idle: not billed
        mv16(None, 20, energy_wh(13_000), connector=2),
        mv16(None, 25, energy_wh(50), connector=0),  # main meter
        stop16(1204, 30, 16_000),
    )
    assert kinds(outcomes) == ["applied"] * 5
    assert [o.session_id for o in outcomes] == [f"{CP}/1204", None, f"{CP}/1204", None, f"{CP}/1204"]
    [session] = completed_of(outcomes)
    assert [r.energy_kwh for r in session.readings] == [0, 3, 6]  # 13,000 - 10,000; 16,000 - 10,000 Wh
    assert SessionFlag.METER_VALUES_MATCHED.value in session.flags


def test_conflicting_second_start_for_the_same_transaction_id_is_dead_lettered():
    _, outcomes = run(start16(1205, 0, 0), start16(1205, 10, 5_000))
    assert outcomes[1].kind == "dead_lettered"
    assert "already started with different content" in outcomes[1].reason


def test_schema_violation_is_dead_lettered_with_the_validation_reason():
    env = envelope("StopTransaction", {"transactionId": 1, "timestamp": iso(1)}, 1)
    _, outcomes = run(env)
    assert outcomes[0].reason == "StopTransaction: (payload): 'meterStop' is a required property"


# ======================================================================================
# Charging versus parking
# ======================================================================================


def test_201_charging_state_marks_parking():
    tx = "tx-park"
    _, outcomes = run(
        te(tx, 0, 0, "Started", wh=0, context="Transaction.Begin", state="EVConnected", trigger="CablePluggedIn"),
        te(tx, 1, 1, state="Charging", trigger="ChargingStateChanged"),
        te(tx, 2, 60, wh=30_000, state="SuspendedEV", trigger="ChargingStateChanged"),
        te(tx, 3, 120, "Ended", wh=30_000, context="Transaction.End", state="Idle", trigger="EVDeparted"),
    )
    [session] = completed_of(outcomes)
    assert [(r.timestamp, r.charging) for r in session.readings] == [
        (at(0), False), (at(1), True), (at(60), False), (at(120), False)]
    assert session.total_energy_kwh == Decimal("30")  # 30,000 Wh


def test_201_suspended_evse_is_charging_time_not_parking():
    # OCPI 2.2.1 mod_cdrs: PARKING_TIME is time "during which the vehicle is not requesting
    # power". Under SuspendedEVSE the EV requests power the EVSE withholds (e.g. load
    # balancing): the driver is not parking. Under SuspendedEV the EV stopped asking: parking.
    tx = "tx-evse"
    _, outcomes = run(
        te(tx, 0, 0, "Started", wh=0, context="Transaction.Begin", state="Charging", trigger="CablePluggedIn"),
        te(tx, 1, 30, wh=10_000, state="SuspendedEVSE", trigger="ChargingStateChanged"),
        te(tx, 2, 45, wh=10_000, state="Charging", trigger="ChargingStateChanged"),
        te(tx, 3, 80, wh=20_000, state="SuspendedEV", trigger="ChargingStateChanged"),
        te(tx, 4, 90, "Ended", wh=20_000, context="Transaction.End", state="Idle", trigger="EVDeparted"),
    )
    [session] = completed_of(outcomes)
    assert [(r.timestamp, r.charging) for r in session.readings] == [
        (at(0), True), (at(30), True), (at(45), True), (at(80), False), (at(90), False)]


def test_16_charging_follows_the_energy_flow():
    _, outcomes = run(
        start16(1301, 0, 0),
        mv16(1301, 30, energy_wh(11_000)),
        mv16(1301, 60, energy_wh(20_000)),
        mv16(1301, 90, energy_wh(20_000)),  # battery full, car still plugged in
        stop16(1301, 120, 20_000),
    )
    [session] = completed_of(outcomes)
    assert [r.charging for r in session.readings] == [True, True, False, False, False]


# ======================================================================================
# Identity, state, determinism, accounting
# ======================================================================================


def test_cdr_ids_are_deterministic_and_within_39_characters():
    long_cp = "X" * 255
    long_tx = "f" * 36
    ids = [cdr_id_for(long_cp, long_tx), cdr_id_for(long_cp, long_tx, 99_999),
           credit_cdr_id_for(long_cp, long_tx, 99_999), cdr_id_for(CP, 1)]
    assert all(len(i) <= 39 for i in ids) and len(ocpi_session_id_for(long_cp, long_tx)) <= 36
    assert cdr_id_for(CP, 1) == cdr_id_for(CP, "1") != cdr_id_for(CP, 2)
    assert cdr_id_for("a/b", "c") != cdr_id_for("a", "b/c")
    assert len({cdr_id_for(CP, 1, v) for v in range(5)} | {credit_cdr_id_for(CP, 1, v) for v in range(5)}) == 10
    assert session_id_for(CP, 1) == f"{CP}/1"
    assert session_id_for("a/b", "c") != session_id_for("a", "b/c")
    assert session_id_for("a%2Fb", "c") != session_id_for("a/b", "c")
    with pytest.raises(ValueError):
        cdr_id_for(CP, 1, 100_000)


def _mixed_traffic():
    return [
        start16(1401, 0, 100_000),
        mv16(1401, 10, energy_wh(103_000)),
        mv16(1401, 10, energy_wh(103_000)),  # duplicate (resend, new message id)
        {"bad": "not an OCPP payload"},  # replaced below by an invalid envelope
        stop16(-1, 20, 104_000),  # matched to 1401
        mv16(7777, 21, energy_wh(1)),  # unknown transaction: dead letter
        envelope("Heartbeat", {}, 22),
        envelope("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}, 23),
        te("tx-mix", 0, 0, "Started", wh=0, context="Transaction.Begin"),
        te("tx-mix", 2, 30, wh=9_000),
        te("tx-mix", 1, 15, wh=4_000),
        te("tx-mix", 1, 15, wh=4_000, offline=True),  # duplicate by seqNo
        te("tx-mix", 3, 45, "Ended", wh=12_000, context="Transaction.End"),
        te("tx-mix", 4, 46, wh=12_000, received=at(50)),  # after the end: changes nothing billable
        envelope("TransactionEvent", {"eventType": "Updated"}, 24, version="2.0.1"),  # invalid
        start16(1402, 30, 0).model_copy(update={"response": None}),  # no answer: dead letter
        start16(1403, 31, 0, cp="CP-OTHER"),
    ]


def test_accounting_every_input_is_applied_duplicate_or_dead_lettered():
    traffic = _mixed_traffic()
    traffic[3] = envelope("MeterValues", {"connectorId": "one"}, 11)
    assembler, outcomes = run(*traffic)
    counted = {k: kinds(outcomes).count(k) for k in ("applied", "duplicate", "dead_lettered")}
    assert counted == {"applied": 11, "duplicate": 2, "dead_lettered": 4}
    assert len(traffic) == counted["applied"] + counted["duplicate"] + counted["dead_lettered"]
    assert assembler.counts["in"] == len(traffic) == sum(assembler.counts[k] for k in counted)
    assert all(o.reason for o in outcomes if o.kind == "dead_lettered")
    assert corrections_of(outcomes) == []
    completed = {c.session_id: c.total_energy_kwh for c in completed_of(outcomes)}
    # 104,000 - 100,000 Wh = 4 kWh; 12,000 - 0 Wh = 12 kWh
    assert completed == {f"{CP}/1401": Decimal("4"), f"{CP}/tx-mix": Decimal("12")}


def test_replay_is_deterministic_and_state_round_trips_through_json():
    traffic = _mixed_traffic()
    traffic[3] = envelope("MeterValues", {"connectorId": "one"}, 11)
    _, first = run(*traffic)
    _, second = run(*traffic)
    assert [(o.kind, o.reason, o.session_id) for o in first] == [(o.kind, o.reason, o.session_id) for o in second]
    assert [c.model_dump_json() for c in completed_of(first)] == [c.model_dump_json() for c in completed_of(second)]

    # persist after half of the traffic, rebuild from JSON, continue: same outcome
    assembler, _ = run(*traffic[:9])
    dumped = [s.model_dump_json() for s in assembler.store.states.values()]
    restored = SessionAssembler(store=InMemorySessionStore(SessionState.model_validate_json(d) for d in dumped))
    rest = [restored.apply(e) for e in traffic[9:]]
    assert [c.model_dump_json() for c in completed_of(rest)] == [
        c.model_dump_json() for c in completed_of(first[9:])]


def test_21_transaction_event_assembles_like_201():
    tx = "tx-21"
    _, outcomes = run(
        te(tx, 0, 0, "Started", wh=2_000, context="Transaction.Begin", version="2.1"),
        te(tx, 1, 30, "Ended", wh=9_500, context="Transaction.End", version="2.1"),
    )
    [session] = completed_of(outcomes)
    assert session.ocpp_version == "2.1" and session.total_energy_kwh == Decimal("7.5")  # 9,500 - 2,000 Wh


def test_16_meter_values_in_kwh_labelled_as_wh_are_rescaled_and_flagged():
    # The charger reports kWh figures without a unit (default Wh): "12.5" means 12.5 kWh.
    _, outcomes = run(
        start16(503, 0, 10_000),
        mv16(503, 20, {"value": "12.5"}),
        mv16(503, 40, {"value": "15.0"}),
        stop16(503, 60, 20_000),
    )
    [session] = completed_of(outcomes)
    # readings 12.5 - 10 = 2.5 and 15 - 10 = 5 kWh; total 20,000 - 10,000 Wh = 10 kWh
    assert [r.energy_kwh for r in session.readings] == [0, Decimal("2.5"), 5, 10]
    assert SessionFlag.UNIT_MISLABELLED.value in session.flags
    assert SessionFlag.LIFETIME_REGISTER.value not in session.flags


def test_201_wh_values_labelled_as_kwh_are_rescaled():
    tx = "tx-wh-as-kwh"
    _, outcomes = run(
        te(tx, 0, 0, "Started", wh=10_000, context="Transaction.Begin"),
        te(tx, 1, 30, sampled=[{"value": 14_000, "unitOfMeasure": {"unit": "kWh"}}]),  # 14,000 Wh really
        te(tx, 2, 60, "Ended", wh=18_000, context="Transaction.End"),
    )
    [session] = completed_of(outcomes)
    # 14,000 Wh - 10,000 Wh = 4 kWh at 30 min; 18,000 - 10,000 Wh = 8 kWh total
    assert [r.energy_kwh for r in session.readings] == [0, 4, 8]
    assert SessionFlag.UNIT_MISLABELLED.value in session.flags


def test_negative_energy_register_is_dead_lettered():
    _, outcomes = run(start16(504, 0, 0), mv16(504, 10, energy_wh(-5)))
    assert outcomes[1].kind == "dead_lettered"
    assert "negative energy register value" in outcomes[1].reason
    _, outcomes = run(start16(505, 0, -1))
    assert outcomes[0].reason.startswith("StartTransaction: meterStart:")


# ======================================================================================
# Properties
# ======================================================================================


def test_any_arrival_order_of_201_events_ends_in_the_in_order_content():
    in_order = _201_in_order("tx-perm")
    [reference] = completed_of(run(*in_order)[1])
    for permutation in itertools.permutations(in_order):
        _, outcomes = run(*permutation)
        issued = completed_of(outcomes) + corrections_of(outcomes)
        assert issued, permutation
        # the last version issued bills exactly what in-order delivery bills
        assert issued[-1].content_hash() == reference.content_hash()
        assert issued[-1].total_energy_kwh == Decimal("13")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(
    start_wh=st.integers(min_value=0, max_value=10**9),
    readings_wh=st.lists(st.integers(min_value=0, max_value=10**9), max_size=8),
    stop_wh=st.integers(min_value=0, max_value=10**9),
)
def test_energy_is_never_negative_and_readings_never_decrease(start_wh, readings_wh, stop_wh):
    traffic = [start16(1501, 0, start_wh)]
    traffic += [mv16(1501, 5 * (i + 1), energy_wh(v)) for i, v in enumerate(readings_wh)]
    traffic.append(stop16(1501, 5 * (len(readings_wh) + 1), stop_wh))
    _, outcomes = run(*traffic)
    assert kinds(outcomes) == ["applied"] * len(traffic)
    [session] = completed_of(outcomes)
    energies = [r.energy_kwh for r in session.readings]
    assert session.total_energy_kwh >= 0 and energies[0] == 0
    assert all(a <= b for a, b in zip(energies, energies[1:]))
    assert energies[-1] == session.total_energy_kwh
    # no more than the connector could deliver in the session (400 kW) plus slack per step
    hours = Decimal(5 * (len(readings_wh) + 1)) / 60
    assert session.total_energy_kwh <= Decimal(400) * hours + Decimal("0.5") * (len(readings_wh) + 1)


def test_16_transaction_data_in_kwh_labelled_as_wh_is_rescaled_with_the_meter_values():
    stop = stop16(506, 60, 20_000)
    stop = stop.model_copy(update={"payload": {**stop.payload, "transactionData": [
        {"timestamp": iso(0), "sampledValue": [{"value": "10.0", "context": "Transaction.Begin"}]},
        {"timestamp": iso(60), "sampledValue": [{"value": "20.0", "context": "Transaction.End"}]}]}})
    _, outcomes = run(start16(506, 0, 10_000), mv16(506, 30, {"value": "16.0"}), stop)
    [session] = completed_of(outcomes)
    # every sampled value is kWh labelled (by default) as Wh: 16 - 10 = 6 kWh at 30 min;
    # 20,000 - 10,000 Wh = 10 kWh in total
    assert [r.energy_kwh for r in session.readings] == [0, 6, 10]
    assert SessionFlag.UNIT_MISLABELLED.value in session.flags


def _random_message(draw_kind, tx16, tx201, minute, value, seq, state):
    if draw_kind == "start16":
        return start16(tx16, minute, value)
    if draw_kind == "mv16":
        return mv16(tx16, minute, energy_wh(value))
    if draw_kind == "mv16-none":
        return mv16(None, minute, {"value": str(value), "phase": "L1"}, {"value": str(value), "phase": "L2"})
    if draw_kind == "stop16":
        return stop16(tx16, minute, value)
    if draw_kind == "stop16-unknown":
        return stop16(-1, minute, value)
    if draw_kind == "heartbeat":
        return envelope("Heartbeat", {}, minute)
    if draw_kind == "invalid":
        return envelope("MeterValues", {"connectorId": 1, "meterValue": []}, minute)
    event_type = {"te-start": "Started", "te-end": "Ended"}.get(draw_kind, "Updated")
    return te(tx201, seq, minute, event_type, wh=value, state=state,
              context={"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(event_type))


@settings(max_examples=120, deadline=None)
@given(st.lists(
    st.tuples(
        st.sampled_from(["start16", "mv16", "mv16-none", "stop16", "stop16-unknown", "heartbeat", "invalid",
                         "te-start", "te-update", "te-end"]),
        st.sampled_from([1601, 1602]),
        st.sampled_from(["tx-a", "tx-b"]),
        st.integers(0, 600),
        st.integers(0, 10**8),
        st.integers(0, 6),
        st.sampled_from([None, "Charging", "SuspendedEV", "EVConnected"]),
        st.booleans(),
    ),
    max_size=25,
))
def test_random_traffic_never_crashes_and_every_input_is_accounted_for(steps):
    traffic = []
    for kind, tx16, tx201, minute, value, seq, state, resend in steps:
        env = _random_message(kind, tx16, tx201, minute, value, seq, state)
        traffic.append(env)
        if resend:
            traffic.append(env.model_copy(update={"message_id": env.message_id + "-r"}))
    assembler, outcomes = run(*traffic)
    assert len(outcomes) == len(traffic)
    assert sum(assembler.counts[k] for k in ("applied", "duplicate", "dead_lettered")) == len(traffic)
    assert all(o.reason for o in outcomes if o.kind == "dead_lettered")
    closed = assembler.close_idle(at(600) + timedelta(days=3))
    issued = completed_of(outcomes) + corrections_of(outcomes) + closed
    for session in issued:
        energies = [r.energy_kwh for r in session.readings]
        assert session.total_energy_kwh >= 0 and energies[-1] == session.total_energy_kwh
        assert all(a <= b for a, b in zip(energies, energies[1:]))
        assert session.start <= session.end and len(session.cdr_id) <= 39
    # every session ends up issued exactly once per version, versions consecutive
    versions: dict[str, list[int]] = {}
    for session in issued:
        versions.setdefault(session.session_id, []).append(session.version)
    assert all(v == list(range(len(v))) for v in versions.values())
    # deterministic
    _, again = run(*traffic)
    assert [(o.kind, o.reason) for o in again] == [(o.kind, o.reason) for o in outcomes]


def test_id_tag_rejected_by_the_central_system_is_flagged():
    start = start16(1701, 0, 0).model_copy(update={"response": {"transactionId": 1701, "idTagInfo": {"status": "Blocked"}}})
    _, outcomes = run(start, stop16(1701, 1, 0))
    [session] = completed_of(outcomes)
    assert session.id_tag_status == "Blocked"
    assert SessionFlag.ID_TAG_NOT_ACCEPTED.value in session.flags
    assert "id tag not accepted by the central system (Blocked)" in session.remark

    started = te("tx-tok", 0, 0, "Started", wh=0, context="Transaction.Begin").model_copy(
        update={"response": {"idTokenInfo": {"status": "Accepted"}}})
    _, outcomes = run(started, te("tx-tok", 1, 10, "Ended", wh=1_000, context="Transaction.End"))
    [session] = completed_of(outcomes)
    assert session.id_tag_status == "Accepted" and SessionFlag.ID_TAG_NOT_ACCEPTED.value not in session.flags


def test_201_session_without_any_energy_reading_bills_zero_and_says_so():
    assembler = SessionAssembler()
    assembler.apply(te("tx-none", 0, 0, "Started", state="EVConnected", trigger="CablePluggedIn"))
    [closed] = assembler.close_idle(at(0) + timedelta(days=3))
    assert closed.total_energy_kwh == 0 and closed.incomplete
    assert {SessionFlag.NO_ENERGY_READING.value, SessionFlag.CLOSED_IDLE.value} <= set(closed.flags)
    assert [r.energy_kwh for r in closed.readings] == [0]


def test_second_stop_with_other_values_corrects_and_the_last_stop_counts():
    assembler, outcomes = run(
        start16(1801, 0, 0),
        stop16(1801, 30, 4_000),
        stop16(1801, 32, 4_500, reason="Local", received=at(40)),
    )
    [first] = completed_of(outcomes)
    [second] = corrections_of(outcomes)
    assert first.total_energy_kwh == Decimal("4") and second.total_energy_kwh == Decimal("4.5")
    assert SessionFlag.MULTIPLE_STOPS.value in second.flags and second.end == at(32)


def test_readings_stamped_after_the_stop_are_left_out():
    _, outcomes = run(start16(1901, 0, 0), mv16(1901, 10, energy_wh(2_000)), stop16(1901, 20, 3_000),
                      mv16(1901, 25, energy_wh(3_500), received=at(21)))
    [session] = completed_of(outcomes)
    assert session.total_energy_kwh == Decimal("3")  # 3,000 Wh at the stop
    # the late reading after the stop changes nothing billed: no correction
    assert corrections_of(outcomes) == []
