"""The one-pass check-and-build of the billed OCPP calls decides like the two passes it replaces.

``schemas.ocpp`` compiles each billed CALL schema (1.6 StartTransaction / MeterValues /
StopTransaction, 2.0.1 and 2.1 TransactionEvent) with the builders of ``ONE_PASS_BUILDERS``
(``schemas.ocpp_fastcheck.compile_builder``) into one function that checks and builds in the
same pass. It may only build a payload that the generated schema check accepts, and then
exactly the model the fast constructor and pydantic's ``model_validate`` give (values, fields
set, private attributes); for anything else it answers None (or raises) and the detailed path
decides and words the refusal. Refusals (dead-letter reasons) must stay word for word those
of the detailed path (jsonschema + pydantic).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import ocpp201
from schemas.envelope import EventEnvelope
from schemas.ocpp import _AS_RECEIVED, _VERSION_MODULES, _plan
from schemas.ocpp_base import InvalidMessage
from streams.simulate import simulate_traffic
from payload_mutation import mutate
from test_ocpp_fastbuild import BASES, T, assert_same, outcome, reference, state

BILLED = [("1.6", "StartTransaction"), ("1.6", "MeterValues"), ("1.6", "StopTransaction"),
          ("2.0.1", "TransactionEvent"), ("2.1", "TransactionEvent")]


def one_pass(version: str, action: str):
    plan = _plan(version, action, False)
    check, build = _AS_RECEIVED[version][action]
    assert build is True, "the billed action's schema compiles with its builders"
    return check, plan


def assert_sound(version: str, action: str, payload: Any) -> bool:
    """The one pass builds ``payload`` only as the two passes (check, fast constructor) and
    pydantic do; returns whether it built it."""
    build, plan = one_pass(version, action)
    original = copy.deepcopy(payload)
    try:
        built = build(payload)
    except Exception:  # noqa: BLE001 - a builder's refusal: the detailed path decides
        built = None
    assert payload == original  # the caller's payload is never modified
    if built is None:
        return False
    assert plan.fast(payload), payload  # the schema check accepts it
    assert state(built) == state(plan.fast_model(payload)) == state(plan.model.model_validate(payload)), payload
    return True


@pytest.mark.parametrize("key", BILLED)
def test_every_billed_action_compiles_its_one_pass(key):
    one_pass(*key)


@pytest.fixture(scope="module")
def traffic() -> list[EventEnvelope]:
    return [EventEnvelope.from_bytes(r.value) for r in simulate_traffic(20, 120, seed=7).records]


def test_simulated_traffic_is_built_in_one_pass_like_the_two_passes(traffic):
    built = 0
    for e in traffic:
        if (e.ocpp_version, e.action) in BILLED:
            assert assert_sound(e.ocpp_version, e.action, e.payload)
            built += 1
    assert built > 500


@pytest.mark.parametrize("key", sorted(BASES))
def test_bases_are_built_alike(key):
    payload = BASES[key]
    module = _VERSION_MODULES[key[0]]
    built = assert_sound(*key, payload)
    # the 2.0.1 base carries a string value, which normalize_call rewrites: not as received
    assert built == (module.normalize_call(key[1], payload) is payload)
    assert_same(*key, payload)


#: Leaf values of every JSON class, and the near misses of the exact classes the one pass takes.
class _Text(str):
    pass


class _Number(int):
    pass


ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.0, 0.5, -1, 0, Decimal("2"), Decimal("2.5"), Decimal("NaN"), Decimal("-0"), "", "x" * 37,
                     "x" * 21, "Charging", "kWh", "kwh", "W", "A", "Started", "Ended", "12,5", "1e3", " 7 ", "-0",
                     "SignedData", "Raw", "L1", "L2-N", "N", "Upstream", "Inlet", "Power.Active.Import",
                     "Current.Import", "Energy.Active.Import.Register", T, "2026-11-02T08:00:00+05:45",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-02T08:00:00",
                     _Text("Wh"), _Text(T), _Number(3), [], [{}], {}, {"unit": "kWh"}, {"vendorId": "v"},
                     {"vendorId": "v", "x": 1}, {"multiplier": 3}, {"unit": "Wh", "multiplier": -2}]),
    st.text(max_size=25), st.lists(st.integers(), max_size=2),
)
KEYS = ["value", "unit", "multiplier", "measurand", "format", "context", "phase", "location", "unitOfMeasure",
        "timestamp", "seqNo", "offline", "evse", "idToken", "connectorId", "transactionId", "customData",
        "signedData", "signed_data", "seq_no", "meterStart", "reservationId", "sampledValue", "transactionData",
        "meterValue", "signedMeterValue", "additionalInfo", "chargingState", "stoppedReason", "remoteStartId",
        "timeSpentCharging", "operationMode", "numberOfPhasesUsed", "cableMaxCurrent", "id", "type", "x"]


def _plain_bases() -> dict[tuple[str, str], dict[str, Any]]:
    """The bases as a charger sends them (no variant normalize_call rewrites), per billed action."""
    out = {key: copy.deepcopy(BASES[key]) for key in BILLED if key != ("2.0.1", "TransactionEvent")}
    event = copy.deepcopy(BASES["2.0.1", "TransactionEvent"])
    event["meterValue"][0]["sampledValue"][2]["value"] = 16.5
    out["2.0.1", "TransactionEvent"] = event
    # 2.1: every field of the 2.0.1 one, and a property only 2.1 has (checked, not modelled)
    event_21 = copy.deepcopy(event)
    event_21["transactionInfo"]["operationMode"] = "ChargingOnly"
    out["2.1", "TransactionEvent"] = event_21
    return out


PLAIN = _plain_bases()


@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_mutated_payloads_are_built_only_like_the_two_passes(data):
    key = data.draw(st.sampled_from(sorted(PLAIN)))
    payload = copy.deepcopy(PLAIN[key])
    mutate(data, payload, ODD, st.sampled_from(KEYS), repeat_items=True)
    assert_sound(*key, payload)
    assert_same(*key, payload)  # and validate_call decides like the detailed path


def test_plain_bases_are_built_in_one_pass():
    for key, payload in PLAIN.items():
        assert assert_sound(*key, payload), key


def test_shared_transaction_info_and_evse_equal_fresh_models():
    build, plan = one_pass("2.0.1", "TransactionEvent")
    event = {"eventType": "Updated", "timestamp": T, "triggerReason": "MeterValuePeriodic", "seqNo": 1,
             "transactionInfo": {"transactionId": "t-shared", "chargingState": "Charging"}, "evse": {"id": 2}}
    variants = [event, {**event, "transactionInfo": {"transactionId": "t-shared"}},
                {**event, "transactionInfo": {"transactionId": "t-shared", "chargingState": "Charging",
                                              "timeSpentCharging": 0}},
                {**event, "evse": {"id": 2, "connectorId": 1}}, {**event, "evse": {"id": 2, "customData": {
                    "vendorId": "v"}}}]
    for _ in range(2):  # the second round reads the caches
        for payload in variants:
            assert assert_sound("2.0.1", "TransactionEvent", payload)
    first, second = build(event), build(event)
    assert first.transaction_info is second.transaction_info and first.evse is second.evse


def test_caches_stay_bounded():
    build, _ = one_pass("2.0.1", "TransactionEvent")
    for i in range(ocpp201._CACHE_SIZE + 10):
        build({"eventType": "Updated", "timestamp": T, "triggerReason": "Trigger", "seqNo": i,
               "transactionInfo": {"transactionId": f"t{i}"}, "evse": {"id": i}})
        assert len(ocpp201._TRANSACTION_INFO_CACHE) <= ocpp201._CACHE_SIZE
        assert len(ocpp201._EVSE_CACHE) <= ocpp201._CACHE_SIZE


# --- refusals: the same reason, word for word, as the detailed path -------------------------

def _with(key: tuple[str, str], path: tuple, value: Any = None, delete: bool = False) -> dict[str, Any]:
    payload = copy.deepcopy(PLAIN[key])
    parent = payload
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return payload


S16 = ("meterValue", 0, "sampledValue", 0)
S201 = ("meterValue", 0, "sampledValue", 0)
MALFORMED = [
    # 1.6 StartTransaction
    (("1.6", "StartTransaction"), ("connectorId",), "1", False, "'1' is not of type 'integer'"),
    (("1.6", "StartTransaction"), ("meterStart",), True, False, "is not of type 'integer'"),
    (("1.6", "StartTransaction"), ("idTag",), None, True, "'idTag' is a required property"),
    (("1.6", "StartTransaction"), ("idTag",), "x" * 21, False, "is too long"),
    (("1.6", "StartTransaction"), ("bogus",), 1, False, "Additional properties are not allowed"),
    (("1.6", "StartTransaction"), ("meterStart",), -5, False, "greater than or equal to 0"),
    (("1.6", "StartTransaction"), ("timestamp",), "2026-11-02T08:00:00", False, "timezone"),
    (("1.6", "StartTransaction"), ("timestamp",), "0001-01-01T00:00:00+01:00", False, "out of range"),
    # 1.6 MeterValues
    (("1.6", "MeterValues"), S16 + ("value",), "12,5", False, "comma"),
    (("1.6", "MeterValues"), S16 + ("value",), "abc", False, "not a decimal number"),
    (("1.6", "MeterValues"), S16 + ("value",), "NaN", False, "not a finite number"),
    (("1.6", "MeterValues"), S16 + ("value",), "", False, "empty value"),
    (("1.6", "MeterValues"), S16 + ("value",), "-3", False, "negative energy register"),
    (("1.6", "MeterValues"), S16 + ("unit",), "A", False, "is not a unit of"),
    (("1.6", "MeterValues"), S16 + ("measurand",), "Energy.Bogus", False, "is not one of"),
    (("1.6", "MeterValues"), S16 + ("phase",), 1, False, "is not of type 'string'"),
    (("1.6", "MeterValues"), S16 + ("extra",), "x", False, "Additional properties"),
    (("1.6", "MeterValues"), ("meterValue", 0, "timestamp"), "2026-13-02T08:00:00Z", False, "month"),
    (("1.6", "MeterValues"), ("meterValue",), [], False, "should be non-empty"),
    (("1.6", "MeterValues"), ("connectorId",), None, True, "'connectorId' is a required property"),
    # 1.6 StopTransaction
    (("1.6", "StopTransaction"), ("reason",), "Bored", False, "is not one of"),
    (("1.6", "StopTransaction"), ("meterStop",), 12.5, False, "is not of type 'integer'"),
    (("1.6", "StopTransaction"), ("transactionId",), None, True, "'transactionId' is a required property"),
    (("1.6", "StopTransaction"), ("transactionData", 0, "sampledValue", 0, "value"), "1.2.3", False,
     "not a decimal number"),
    (("1.6", "StopTransaction"), ("timestamp",), "9999-12-31T23:59:59-01:00", False, "out of range"),
]
for version in ("2.0.1", "2.1"):
    key = (version, "TransactionEvent")
    MALFORMED += [
        (key, ("eventType",), "Paused", False, "is not one of"),
        (key, ("seqNo",), "1", False, "is not of type 'integer'"),
        (key, ("seqNo",), 1.5, False, "is not of type 'integer'"),
        (key, ("offline",), "no", False, "is not of type 'boolean'"),
        (key, ("triggerReason",), None, True, "'triggerReason' is a required property"),
        (key, ("transactionInfo", "transactionId"), "x" * 37, False, "is too long"),
        (key, ("transactionInfo", "chargingState"), "Flying", False, "is not one of"),
        (key, ("transactionInfo", "bogus"), 1, False, "Additional properties"),
        (key, ("evse", "id"), "1", False, "is not of type 'integer'"),
        (key, ("idToken", "type"), 5, False, "is not of type 'string'"),
        (key, ("timestamp",), "2026-11-02T08:00:00", False, "timezone"),
        (key, ("timestamp",), "0001-01-01T00:00:00+01:00", False, "out of range"),
        (key, S201 + ("value",), "12,5", False, "comma"),
        (key, S201 + ("value",), "x", False, "not a decimal number"),
        (key, S201 + ("value",), -1, False, "negative energy register"),
        (key, S201 + ("value",), True, False, "is not of type 'number'"),
        (key, S201 + ("unitOfMeasure",), {"unit": "A"}, False, "is not a unit of"),
        (key, S201 + ("unitOfMeasure",), {"unit": "x" * 21}, False, "is too long"),
        (key, S201 + ("unitOfMeasure",), {"multiplier": 2000000}, False, "cannot be converted exactly"),
        (key, S201 + ("location",), "Roof", False, "is not one of"),
        (key, S201 + ("bogus",), 1, False, "Additional properties"),
        (key, ("meterValue", 0, "sampledValue"), [], False, "should be non-empty"),
        (key, ("meterValue", 0, "timestamp"), 5, False, "is not of type 'string'"),
    ]


@pytest.mark.parametrize("key, path, value, delete, words", MALFORMED)
def test_refusals_read_like_the_detailed_path(key, path, value, delete, words):
    payload = _with(key, path, value, delete)
    got = outcome(reference, *key, payload)
    assert got[0] == "refused" and words in got[1], got  # the case is really a refusal of that kind
    assert_same(*key, payload)  # validate_call: the same reason, word for word
    assert not assert_sound(*key, payload)


def test_reference_refuses_with_invalid_message():
    with pytest.raises(InvalidMessage):
        reference("2.0.1", "TransactionEvent", _with(("2.0.1", "TransactionEvent"), ("seqNo",), "1"))


# --- property: generated payloads, mostly valid (the mutations above mostly break the schema) --

def _optional(draw, out: dict[str, Any], key: str, strategy) -> None:
    if draw(st.booleans()):
        out[key] = draw(strategy)


def _sometimes_odd(strategy):
    """``strategy``, and now and then (about one draw in 25) an odd value instead."""
    return st.tuples(st.integers(0, 999), strategy, ODD).map(lambda t: t[2] if t[0] % 25 == 7 else t[1])


MEASURANDS = st.sampled_from(["Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage",
                              "Energy.Active.Import.Interval", "SoC"])
PHASES = st.sampled_from(["L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "Lx"])
LOCATIONS = st.sampled_from(["Outlet", "Inlet", "Body", "Cable", "EV", "Upstream"])
CONTEXTS = st.sampled_from(["Sample.Periodic", "Transaction.Begin", "Transaction.End", "Sample.Clock", "Trigger"])
UNITS = st.sampled_from(["Wh", "kWh", "W", "kW", "A", "V", "Celsius", "K", "Percent"])
TIMESTAMPS = _sometimes_odd(st.sampled_from([T, "2026-11-02T08:00:00.5-03:30", "2026-11-02T09:00:00+01:00"]))
TEXT_VALUES = st.one_of(st.from_regex(r"[0-9]{1,8}(\.[0-9]{1,4})?", fullmatch=True),
                        st.sampled_from(["1e3", " 7 ", "12,5", "", "-1", "AP;0;3;ALCV3"]))
NUMBER_VALUES = st.one_of(st.integers(0, 10**9), st.floats(0, 1e9), st.decimals(0, 10**6, places=3),
                          st.sampled_from([Decimal("NaN"), float("inf"), True, -1, -0.5]))
CUSTOM = st.sampled_from([{"vendorId": "v"}, {"vendorId": "v", "x": [1]}, {}])


@st.composite
def sampled_value_16(draw):
    out: dict[str, Any] = {"value": draw(_sometimes_odd(TEXT_VALUES))}
    _optional(draw, out, "context", _sometimes_odd(CONTEXTS))
    _optional(draw, out, "format", _sometimes_odd(st.sampled_from(["Raw", "SignedData"])))
    _optional(draw, out, "measurand", _sometimes_odd(MEASURANDS))
    _optional(draw, out, "phase", _sometimes_odd(PHASES))
    _optional(draw, out, "location", _sometimes_odd(LOCATIONS))
    _optional(draw, out, "unit", _sometimes_odd(UNITS))
    return out


@st.composite
def sampled_value_201(draw):
    out: dict[str, Any] = {"value": draw(_sometimes_odd(NUMBER_VALUES))}
    _optional(draw, out, "context", _sometimes_odd(CONTEXTS))
    _optional(draw, out, "measurand", _sometimes_odd(MEASURANDS))
    _optional(draw, out, "phase", _sometimes_odd(PHASES))
    _optional(draw, out, "location", _sometimes_odd(LOCATIONS))
    if draw(st.booleans()):
        uom: dict[str, Any] = {}
        _optional(draw, uom, "unit", _sometimes_odd(UNITS))
        _optional(draw, uom, "multiplier", _sometimes_odd(st.integers(-3, 3)))
        _optional(draw, uom, "customData", CUSTOM)
        out["unitOfMeasure"] = uom
    _optional(draw, out, "customData", CUSTOM)
    _optional(draw, out, "signedMeterValue", st.sampled_from([
        {"signedMeterData": "d", "signingMethod": "m", "encodingMethod": "e", "publicKey": "k"}, {"x": 1}]))
    return out


def meter_values(sampled):
    return st.lists(st.builds(lambda ts, svs: {"timestamp": ts, "sampledValue": svs},
                              TIMESTAMPS, st.lists(sampled, min_size=1, max_size=4)),
                    min_size=1, max_size=2)


@st.composite
def payload_16(draw, action: str):
    if action == "StartTransaction":
        out = {"connectorId": draw(_sometimes_odd(st.integers(0, 3))), "idTag": draw(_sometimes_odd(st.text(max_size=22))),
               "meterStart": draw(_sometimes_odd(st.integers(-2, 10**9))), "timestamp": draw(TIMESTAMPS)}
        _optional(draw, out, "reservationId", _sometimes_odd(st.integers(-1, 99)))
    elif action == "MeterValues":
        out = {"connectorId": draw(_sometimes_odd(st.integers(0, 3))), "meterValue": draw(meter_values(sampled_value_16()))}
        _optional(draw, out, "transactionId", _sometimes_odd(st.integers(-1, 99)))
    else:
        out = {"transactionId": draw(_sometimes_odd(st.integers(-1, 99))), "timestamp": draw(TIMESTAMPS),
               "meterStop": draw(_sometimes_odd(st.integers(-2, 10**9)))}
        _optional(draw, out, "idTag", _sometimes_odd(st.text(max_size=22)))
        _optional(draw, out, "reason", _sometimes_odd(st.sampled_from(["Local", "EVDisconnected", "Remote"])))
        _optional(draw, out, "transactionData", meter_values(sampled_value_16()))
    return out


@st.composite
def transaction_event(draw):
    info: dict[str, Any] = {"transactionId": draw(_sometimes_odd(st.sampled_from(["tx-1", "tx-2", "x" * 36])))}
    _optional(draw, info, "chargingState", _sometimes_odd(st.sampled_from(["Charging", "Idle", "SuspendedEV"])))
    _optional(draw, info, "timeSpentCharging", _sometimes_odd(st.integers(0, 99)))
    _optional(draw, info, "stoppedReason", _sometimes_odd(st.sampled_from(["Local", "EVDisconnected"])))
    _optional(draw, info, "remoteStartId", _sometimes_odd(st.integers(0, 9)))
    _optional(draw, info, "operationMode", st.sampled_from(["ChargingOnly", "Idle"]))
    _optional(draw, info, "customData", CUSTOM)
    out: dict[str, Any] = {
        "eventType": draw(_sometimes_odd(st.sampled_from(["Started", "Updated", "Ended"]))),
        "timestamp": draw(TIMESTAMPS),
        "triggerReason": draw(_sometimes_odd(st.sampled_from(["Authorized", "MeterValuePeriodic", "EVDeparted"]))),
        "seqNo": draw(_sometimes_odd(st.integers(0, 99))), "transactionInfo": info}
    _optional(draw, out, "offline", _sometimes_odd(st.booleans()))
    _optional(draw, out, "numberOfPhasesUsed", _sometimes_odd(st.integers(0, 3)))
    _optional(draw, out, "cableMaxCurrent", _sometimes_odd(st.integers(0, 63)))
    _optional(draw, out, "reservationId", _sometimes_odd(st.integers(0, 9)))
    evse: dict[str, Any] = {"id": draw(_sometimes_odd(st.integers(0, 3)))}
    _optional(draw, evse, "connectorId", _sometimes_odd(st.integers(0, 3)))
    _optional(draw, out, "evse", st.just(evse))
    _optional(draw, out, "idToken", st.builds(lambda t, k: {"idToken": t, "type": k}, _sometimes_odd(st.text(max_size=5)),
                                               _sometimes_odd(st.sampled_from(["ISO14443", "eMAID", "Central"]))))
    _optional(draw, out, "meterValue", meter_values(sampled_value_201()))
    _optional(draw, out, "customData", CUSTOM)
    return out


GENERATED = st.one_of(
    st.tuples(st.just("1.6"), st.just("StartTransaction"), payload_16("StartTransaction")),
    st.tuples(st.just("1.6"), st.just("MeterValues"), payload_16("MeterValues")),
    st.tuples(st.just("1.6"), st.just("StopTransaction"), payload_16("StopTransaction")),
    st.tuples(st.sampled_from(["2.0.1", "2.1"]), st.just("TransactionEvent"), transaction_event()),
)


@settings(max_examples=1500, deadline=None)
@given(call=GENERATED)
def test_generated_payloads_are_built_only_like_the_two_passes(call):
    version, action, payload = call
    assert_sound(version, action, payload)
    assert_same(version, action, payload)


def test_shared_fields_sets_are_not_changed_by_copies():
    """The one-pass builders share fields sets between models (ocpp_base.fields_set_table):
    the models are frozen and model_copy copies the set before adding to it."""
    build, _ = one_pass("2.0.1", "TransactionEvent")
    first = build(PLAIN["2.0.1", "TransactionEvent"])
    second = build(PLAIN["2.0.1", "TransactionEvent"])
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    before = set(first.__pydantic_fields_set__)
    copied = first.model_copy(update={"seq_no": 99})
    sample = first.meter_value[0].sampled_value[1]
    assert "phase" not in sample.__pydantic_fields_set__
    assert "phase" in sample.model_copy(update={"phase": "L1"}).__pydantic_fields_set__
    assert copied.seq_no == 99 and first.__pydantic_fields_set__ == second.__pydantic_fields_set__ == before
    assert "phase" not in second.meter_value[0].sampled_value[1].__pydantic_fields_set__
    with pytest.raises(Exception):
        first.seq_no = 5  # frozen


@settings(max_examples=800, deadline=None)
@given(text=st.one_of(
    st.from_regex(r"\s{0,2}[+-]?[0-9_]{0,6}(\.[0-9_]{0,4})?([eE][+-]?[0-9]{1,3})?\s{0,2}", fullmatch=True),
    st.sampled_from(["", " ", "12,5", "1,000.5", "NaN", "-nan", "sNaN", "Infinity", "-Inf", "1_000", "_1", "1__0",
                     "\u0661\u0662", "\u00a012\u2003", "\t7\n", "0x10", "1e999999999", "-0", "+.5", "5.", "."]),
    st.text(max_size=8)))
def test_1_6_value_texts_read_like_decimal_from_text(text):
    """The 1.6 builder reads sampledValue.value with Decimal() directly: it must build
    exactly what the fast constructor (decimal_from_text) and pydantic build, or nothing."""
    payload = {"connectorId": 1, "meterValue": [{"timestamp": T, "sampledValue": [
        {"value": text, "measurand": "Voltage"}, {"value": text}]}]}
    assert_sound("1.6", "MeterValues", payload)
    assert_same("1.6", "MeterValues", payload)


def test_unit_of_measure_with_custom_data_shares_the_plain_model():
    """customData is not a UnitOfMeasure field: the shared model of (unit, multiplier) is
    the one pydantic builds with or without it, in either order."""
    def event(*units):
        return {"eventType": "Updated", "timestamp": T, "triggerReason": "MeterValuePeriodic", "seqNo": 1,
                "transactionInfo": {"transactionId": "t-uom"}, "meterValue": [{"timestamp": T, "sampledValue": [
                    {"value": 1, "unitOfMeasure": uom} for uom in units]}]}
    with_custom = {"unit": "kWh", "multiplier": 1, "customData": {"vendorId": "v"}}
    for payload in (event(with_custom, {"unit": "kWh", "multiplier": 1}),
                    event({"unit": "kWh", "multiplier": 1}, with_custom), event(with_custom, with_custom)):
        assert assert_sound("2.0.1", "TransactionEvent", payload)
        assert_same("2.0.1", "TransactionEvent", payload)
