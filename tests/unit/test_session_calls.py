"""The plain calls of the session assembler (sessions.calls, issue 4 fifth wave) read like
the models of validate_call.

``checked_call`` runs validate_call's one-pass check with builders that make the samples and
a tuple of fields instead of the model objects. Wherever it answers with a plain call, the
values must be exactly those the assembler read from validate_call's model (its fields, and
``samples_of`` of its meter values); anything else is validate_call's own answer (the model,
None, or the same refusal). And the assembler decides exactly alike whichever it gets.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import sessions.assembler as assembler_module
from schemas.ocpp import validate_call
from schemas.ocpp_base import InvalidMessage
from sessions import SessionAssembler
from sessions.calls import MeterValuesCall, TransactionEventCall, checked_call
from sessions.samples import samples_of
from payload_mutation import mutate
from test_ocpp_fastbuild import BASES, state
from test_ocpp_onepass import KEYS, ODD, PLAIN
from traffic_support import simulated_envelopes


def expected_plain(model: Any) -> tuple:
    """What the assembler reads of validate_call's model, as the plain call holds it."""
    values = model.__dict__
    samples = samples_of(values["meter_value"])
    if "event_type" in values:  # a TransactionEvent
        id_token = values["id_token"]
        return ("TransactionEventCall", values["event_type"], values["timestamp"], values["trigger_reason"],
                values["seq_no"], values["offline"], values["transaction_info"], values["evse"],
                None if id_token is None else id_token.id_token, samples)
    return ("MeterValuesCall", values["connector_id"], values["transaction_id"], samples)


def answer(fn, version: str, action: str, payload: Any) -> tuple:
    try:
        return "ok", fn(version, action, payload)
    except InvalidMessage as exc:
        return "refused", exc.reason
    except Exception as exc:  # noqa: BLE001
        return "raised", type(exc).__name__


def assert_reads_like_the_model(version: str, action: str, payload: Any) -> bool:
    """checked_call's answer for ``payload`` is validate_call's, or the plain form of its
    model; returns whether it was a plain call."""
    original = copy.deepcopy(payload)
    kind, got = answer(checked_call, version, action, payload)
    assert payload == original  # the caller's payload is never modified
    expected_kind, model = answer(validate_call, version, action, payload)
    assert kind == expected_kind, (payload, got, model)
    if type(got) in (TransactionEventCall, MeterValuesCall):
        assert type(got) is (TransactionEventCall if action == "TransactionEvent" else MeterValuesCall)
        assert state((type(got).__name__, *got)) == state(expected_plain(model)), payload
        return True
    assert state(got) == state(model), payload
    return False


def test_simulated_traffic_reads_like_the_models():
    plain = 0
    for envelope in simulated_envelopes(150, 21, "C"):
        plain += assert_reads_like_the_model(envelope.ocpp_version, envelope.action, envelope.payload)
    assert plain > 1000


def test_bases_read_like_the_models():
    """Per-phase values (these bases have one): the models decide (a plain call would need
    the per-phase pick), still the same values; without the phase, a plain call."""
    for key in (("1.6", "MeterValues"), ("2.0.1", "TransactionEvent"), ("2.1", "TransactionEvent")):
        assert not assert_reads_like_the_model(*key, PLAIN[key])
    assert not assert_reads_like_the_model("2.0.1", "TransactionEvent", BASES["2.0.1", "TransactionEvent"])
    without_phases = copy.deepcopy(PLAIN)
    for key in (("1.6", "MeterValues"), ("2.0.1", "TransactionEvent"), ("2.1", "TransactionEvent")):
        for meter_value in without_phases[key]["meterValue"]:
            for sampled in meter_value["sampledValue"]:
                sampled.pop("phase", None)
        assert assert_reads_like_the_model(*key, without_phases[key])


@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_mutated_payloads_read_like_the_models(data):
    key = data.draw(st.sampled_from([("1.6", "MeterValues"), ("1.6", "StopTransaction"),
                                     ("2.0.1", "TransactionEvent"), ("2.1", "TransactionEvent")]))
    payload = copy.deepcopy(PLAIN[key])
    if data.draw(st.booleans()):
        for meter_value in payload.get("meterValue", ()):
            for sampled in meter_value["sampledValue"]:
                sampled.pop("phase", None)
    mutate(data, payload, ODD, st.sampled_from(KEYS), repeat_items=True)
    assert_reads_like_the_model(*key, payload)


def test_the_assembler_decides_alike_with_plain_calls_and_with_models(monkeypatch):
    """The same messy traffic (duplicates, late and corrected events, bad payloads) through
    an assembler reading plain calls and one reading validate_call's models: the same
    outcomes and the same states, byte for byte."""
    envelopes = simulated_envelopes(120, 29, "P")

    def run() -> list:
        assembler = SessionAssembler()
        seen = []
        for envelope in envelopes:
            outcome = assembler.apply(envelope)
            seen.append((outcome.kind, outcome.reason, outcome.session_id,
                         [e.model_dump_json() for e in outcome.events],
                         [c.model_dump_json() for c in outcome.completed + outcome.corrections],
                         None if outcome.state is None else outcome.state.model_dump_json()))
        return seen

    with_plain = run()
    monkeypatch.setattr(assembler_module, "checked_call", validate_call)
    with_models = run()
    assert with_plain == with_models
    assert sum(kind == "applied" for kind, *_ in with_plain) > 500


def test_implausible_timestamps_are_dead_lettered_alike(monkeypatch):
    """A call's timestamp or one of its meter values' far from received_at: the same reason
    (field path, index) whether the assembler reads the plain call or the model."""
    from datetime import datetime, timezone

    from schemas.envelope import EventEnvelope

    received = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)
    cases = []
    for (version, action), base in sorted(PLAIN.items()):
        if action not in ("MeterValues", "TransactionEvent"):
            continue
        for where in ("timestamp", 0, 1):
            payload = copy.deepcopy(base)
            for meter_value in payload["meterValue"]:
                for sampled in meter_value["sampledValue"]:
                    sampled.pop("phase", None)
            payload["meterValue"] = [copy.deepcopy(payload["meterValue"][0]) for _ in range(2)]
            if where == "timestamp":
                if "timestamp" not in payload:
                    continue
                payload["timestamp"] = "2027-01-01T00:00:00Z"
            else:
                payload["meterValue"][where]["timestamp"] = "2025-01-01T00:00:00.5Z"
            cases.append(EventEnvelope(charge_point_id="CP", ocpp_version=version, action=action,
                                       message_id=f"m{len(cases)}", received_at=received, payload=payload))

    def reasons() -> list:
        return [SessionAssembler().apply(envelope).reason for envelope in cases]

    plain = reasons()
    assert all(type(checked_call(e.ocpp_version, e.action, e.payload)) in (TransactionEventCall, MeterValuesCall)
               for e in cases)
    monkeypatch.setattr(assembler_module, "checked_call", validate_call)
    assert plain == reasons()
    assert all(reason and "charger clock wrong" in reason for reason in plain), plain
    assert any("meterValue[1].timestamp" in reason for reason in plain)
