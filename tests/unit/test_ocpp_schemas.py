"""Schema validation of inbound OCPP calls: valid messages, invalid ones, and field variants."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from schemas import ocpp16, ocpp201
from schemas.ocpp import InvalidMessage, known_actions, validate_call, validate_response

T0 = "2026-11-01T10:00:00Z"


def _meter_values_16(*sampled, transaction_id=7):
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [{"timestamp": T0, "sampledValue": list(sampled)}],
    }


def _transaction_event(*sampled, **overrides):
    payload = {
        "eventType": "Updated",
        "timestamp": T0,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 3,
        "transactionInfo": {"transactionId": "f1b7c6d2-0a4e-4d2b-9a55-6c1f0e7c2b11"},
        "meterValue": [{"timestamp": T0, "sampledValue": list(sampled)}],
    }
    payload.update(overrides)
    return payload


def _reason(version, action, payload):
    with pytest.raises(InvalidMessage) as info:
        validate_call(version, action, payload)
    return info.value.reason


# --- OCPP 1.6: valid messages -------------------------------------------------------


def test_start_transaction_16_parses_with_utc_timestamp():
    msg = validate_call(
        "1.6",
        "StartTransaction",
        {"connectorId": 2, "idTag": "04A2B3C4D5", "meterStart": 1_234_567,
         "timestamp": "2026-11-01T11:00:00+01:00"},
    )
    assert isinstance(msg, ocpp16.StartTransaction)
    assert msg.connector_id == 2 and msg.id_tag == "04A2B3C4D5" and msg.meter_start == 1_234_567
    assert msg.timestamp == datetime(2026, 11, 1, 10, tzinfo=timezone.utc)


def test_start_transaction_response_16_carries_the_transaction_id():
    msg = validate_response(
        "1.6", "StartTransaction", {"transactionId": 4711, "idTagInfo": {"status": "Accepted"}}
    )
    assert isinstance(msg, ocpp16.StartTransactionResponse)
    assert msg.transaction_id == 4711 and msg.id_tag_info.status == "Accepted"


def test_meter_values_16_string_values_become_exact_decimals_in_kwh():
    msg = validate_call(
        "1.6",
        "MeterValues",
        _meter_values_16(
            {"value": "12345.6", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "32.1", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
            {"value": "80", "measurand": "SoC", "unit": "Percent"},
        ),
    )
    assert isinstance(msg, ocpp16.MeterValues)
    energy, power, current, soc = msg.meter_value[0].sampled_value
    assert energy.energy_kwh() == Decimal("12.3456")  # 12345.6 Wh / 1000
    assert power.power_kw() == Decimal("7.4")  # 7400 W / 1000
    assert current.current_a() == Decimal("32.1") and current.phase == "L1"
    assert soc.value == Decimal("80") and soc.converted is None


def test_meter_values_16_without_measurand_or_unit_is_an_energy_register_in_wh():
    msg = validate_call("1.6", "MeterValues", _meter_values_16({"value": "5000"}))
    assert msg.meter_value[0].sampled_value[0].energy_kwh() == Decimal("5")  # 5000 Wh


def test_stop_transaction_16_with_transaction_data():
    msg = validate_call(
        "1.6",
        "StopTransaction",
        {"transactionId": 4711, "meterStop": 1_250_000, "timestamp": T0, "reason": "EVDisconnected",
         "transactionData": [{"timestamp": T0, "sampledValue": [
             {"value": "1250000", "context": "Transaction.End"}]}]},
    )
    assert isinstance(msg, ocpp16.StopTransaction)
    assert msg.meter_stop == 1_250_000 and msg.reason == "EVDisconnected"
    assert msg.transaction_data[0].sampled_value[0].energy_kwh() == Decimal("1250")


def test_other_known_16_actions_validate_and_return_none():
    assert validate_call("1.6", "Heartbeat", {}) is None
    assert validate_call(
        "1.6", "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Charging"},
    ) is None
    assert validate_call("1.6", "Authorize", {"idTag": "04A2B3C4D5"}) is None
    assert validate_call(
        "1.6", "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X1"}
    ) is None


# --- OCPP 1.6: field variants real chargers send --------------------------------------


def test_numeric_16_value_where_a_string_is_expected_is_accepted_exactly():
    msg = validate_call("1.6", "MeterValues", _meter_values_16(
        {"value": 12345.6, "unit": "Wh"}, {"value": 7400, "measurand": "Power.Active.Import"}))
    energy, power = msg.meter_value[0].sampled_value
    assert energy.value == Decimal("12345.6")  # not 12345.600000000000363797880709171295166015625
    assert power.power_kw() == Decimal("7.4")


def test_kwh_unit_in_16_and_its_case_variants():
    msg = validate_call("1.6", "MeterValues", _meter_values_16(
        {"value": "12.5", "unit": "kWh"}, {"value": "12.5", "unit": "kwh"}, {"value": "12500", "unit": "WH"}))
    assert [s.energy_kwh() for s in msg.meter_value[0].sampled_value] == [Decimal("12.5")] * 3
    assert [s.unit for s in msg.meter_value[0].sampled_value] == ["kWh", "kWh", "Wh"]


def test_integral_float_and_digit_string_meter_start_are_accepted():
    for meter_start in (1234.0, "1234"):
        msg = validate_call("1.6", "StartTransaction", {
            "connectorId": 1, "idTag": "A", "meterStart": meter_start, "timestamp": T0})
        assert msg.meter_start == 1234


def test_fractional_meter_stop_is_rejected_naming_the_field():
    reason = _reason("1.6", "StopTransaction", {"transactionId": 1, "meterStop": 1234.5, "timestamp": T0})
    assert reason == "StopTransaction: meterStop: 1234.5 is not of type 'integer'"


def test_per_phase_16_values_keep_their_phase():
    msg = validate_call("1.6", "MeterValues", _meter_values_16(
        {"value": "1000", "phase": "L1"}, {"value": "1000", "phase": "L2"}, {"value": "1000", "phase": "L3"}))
    assert [s.phase for s in msg.meter_value[0].sampled_value] == ["L1", "L2", "L3"]


def test_signed_16_value_is_kept_as_text_and_not_parsed():
    msg = validate_call("1.6", "MeterValues", _meter_values_16(
        {"value": "AP;0;3;ALCV3ABBBISHMA2RYEGAZE3HV5YQBQRQAEHAR", "format": "SignedData"}))
    sample = msg.meter_value[0].sampled_value[0]
    assert sample.value is None and sample.signed_data.startswith("AP;0;3")


# --- OCPP 1.6: invalid messages -------------------------------------------------------


@pytest.mark.parametrize(
    "sample, expected",
    [
        ({"value": "12,5"}, "'12,5' uses a comma; ambiguous"),
        ({"value": "abc"}, "'abc' is not a decimal number"),
        ({"value": ""}, "empty value"),
        ({"value": "NaN"}, "'NaN' is not a finite number"),
        ({"value": "10", "unit": "A"}, "unit 'A' is not a unit of Energy.Active.Import.Register"),
        ({"value": "10", "unit": "Joule"}, "meterValue[0].sampledValue[0].unit: 'Joule' is not one of"),
        ({"value": "10", "measurand": "Bogus"}, "meterValue[0].sampledValue[0].measurand: 'Bogus' is not one of"),
    ],
)
def test_bad_16_sampled_values_are_rejected_with_the_field(sample, expected):
    reason = _reason("1.6", "MeterValues", _meter_values_16(sample))
    assert reason.startswith("MeterValues: meterValue[0].sampledValue[0]")
    assert expected in reason


def test_missing_required_field_is_named():
    reason = _reason("1.6", "StartTransaction", {"connectorId": 1, "idTag": "A", "timestamp": T0})
    assert reason == "StartTransaction: (payload): 'meterStart' is a required property"


def test_unknown_field_is_rejected():
    reason = _reason("1.6", "Heartbeat", {"foo": 1})
    assert "Additional properties are not allowed ('foo' was unexpected)" in reason


def test_timestamp_without_offset_is_rejected():
    reason = _reason("1.6", "StartTransaction", {
        "connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "2026-11-01T10:00:00"})
    assert reason.startswith("StartTransaction: timestamp:") and "timezone" in reason


def test_unparseable_timestamp_is_rejected():
    reason = _reason("1.6", "StopTransaction", {"transactionId": 1, "meterStop": 0, "timestamp": "yesterday"})
    assert reason.startswith("StopTransaction: timestamp:")


def test_id_tag_longer_than_20_is_rejected():
    reason = _reason("1.6", "StartTransaction", {
        "connectorId": 1, "idTag": "X" * 21, "meterStart": 0, "timestamp": T0})
    assert reason.startswith("StartTransaction: idTag:") and "too long" in reason


def test_unknown_action_and_version_and_non_object_payload():
    assert _reason("1.6", "TransactionEvent", {}) == "unknown action 'TransactionEvent' for OCPP 1.6"
    assert _reason("2.0.1", "StartTransaction", {}) == "unknown action 'StartTransaction' for OCPP 2.0.1"
    assert _reason("1.5", "Heartbeat", {}).startswith("unknown OCPP version '1.5'")
    assert _reason("1.6", "../../etc/passwd", {}) == "malformed action name '../../etc/passwd'"
    assert _reason("1.6", "Heartbeat", []) == "Heartbeat: payload must be a JSON object, got list"


def test_known_actions_come_from_the_shipped_schemas():
    assert {"StartTransaction", "MeterValues", "StopTransaction", "Heartbeat"} <= known_actions("1.6")
    assert {"TransactionEvent", "MeterValues", "Authorize"} <= known_actions("2.0.1")
    assert "TransactionEvent" in known_actions("2.1")


# --- OCPP 2.0.1 / 2.1 ---------------------------------------------------------------


def test_transaction_event_201_started_parses_everything_we_bill_on():
    msg = validate_call("2.0.1", "TransactionEvent", _transaction_event(
        {"value": 1234.5, "context": "Transaction.Begin",
         "unitOfMeasure": {"unit": "Wh", "multiplier": 0}},
        eventType="Started", seqNo=0, triggerReason="Authorized",
        transactionInfo={"transactionId": "tx-1", "chargingState": "Charging"},
        evse={"id": 1, "connectorId": 1}, idToken={"idToken": "04A2B3C4D5", "type": "ISO14443"},
    ))
    assert isinstance(msg, ocpp201.TransactionEvent)
    assert msg.event_type == "Started" and msg.seq_no == 0 and msg.offline is False
    assert msg.transaction_info.transaction_id == "tx-1"
    assert msg.transaction_info.charging_state == "Charging"
    assert msg.evse.id == 1 and msg.id_token.id_token == "04A2B3C4D5"
    assert msg.meter_value[0].sampled_value[0].energy_kwh() == Decimal("1.2345")  # 1234.5 Wh


def test_201_float_value_becomes_its_exact_decimal_text():
    msg = validate_call("2.0.1", "TransactionEvent", _transaction_event({"value": 0.1, "unitOfMeasure": {"unit": "kWh"}}))
    assert msg.meter_value[0].sampled_value[0].value == Decimal("0.1")


@pytest.mark.parametrize(
    "unit_of_measure, value, kwh",
    [
        (None, 12345, Decimal("12.345")),  # default Wh: 12345 Wh = 12.345 kWh
        ({"unit": "kWh"}, 12.345, Decimal("12.345")),
        ({"unit": "Wh", "multiplier": 3}, 12.345, Decimal("12.345")),  # 12.345 * 10^3 Wh
        ({"unit": "kWh", "multiplier": -3}, 12345, Decimal("12.345")),  # 12345 * 10^-3 kWh
        ({"unit": "kwh"}, 12.345, Decimal("12.345")),  # case variant
        ({"multiplier": 1}, 1234.5, Decimal("12.345")),  # 1234.5 * 10 Wh
    ],
)
def test_201_units_and_multipliers_convert_exactly(unit_of_measure, value, kwh):
    sample = {"value": value}
    if unit_of_measure is not None:
        sample["unitOfMeasure"] = unit_of_measure
    msg = validate_call("2.0.1", "TransactionEvent", _transaction_event(sample))
    assert msg.meter_value[0].sampled_value[0].energy_kwh() == kwh


def test_201_power_in_kw_with_multiplier():
    msg = validate_call("2.0.1", "TransactionEvent", _transaction_event(
        {"value": 11, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W", "multiplier": 3}}))
    assert msg.meter_value[0].sampled_value[0].power_kw() == Decimal("11")  # 11 * 10^3 W = 11 kW


def test_201_string_value_where_a_number_is_expected_is_accepted():
    msg = validate_call("2.0.1", "TransactionEvent", _transaction_event({"value": "1500.25"}))
    assert msg.meter_value[0].sampled_value[0].value == Decimal("1500.25")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1,5", "meterValue[0].sampledValue[0].value: '1,5' uses a comma"),
        ("lots", "meterValue[0].sampledValue[0].value: 'lots' is not a decimal number"),
        (True, "meterValue[0].sampledValue[0].value: True is not of type 'number'"),
        (None, "meterValue[0].sampledValue[0].value: None is not of type 'number'"),
    ],
)
def test_bad_201_values_are_rejected(value, expected):
    reason = _reason("2.0.1", "TransactionEvent", _transaction_event({"value": value}))
    assert reason.startswith(f"TransactionEvent: {expected}")


def test_201_energy_in_a_non_energy_unit_is_rejected():
    reason = _reason("2.0.1", "TransactionEvent", _transaction_event({"value": 3, "unitOfMeasure": {"unit": "A"}}))
    assert "unit 'A' is not a unit of Energy.Active.Import.Register" in reason


@pytest.mark.parametrize(
    "sample",
    [
        {"value": 12.5, "unitOfMeasure": {"unit": "Wh", "multiplier": 2000055}},  # past Decimal's Emax: Overflow
        {"value": 12.5, "unitOfMeasure": {"unit": "Wh", "multiplier": -2000055}},  # below Emin: would become 0
        # 31 significant digits: converting would round to 28 (bill approximately)
        {"value": "1234567890123456789012345678901", "unitOfMeasure": {"unit": "Wh", "multiplier": 3}},
    ],
)
def test_201_a_multiplier_that_cannot_be_applied_exactly_is_refused_naming_the_sampled_value(sample):
    reason = _reason("2.0.1", "TransactionEvent", _transaction_event(sample))
    assert reason.startswith("TransactionEvent: meterValue[0].sampledValue[0]: value ")
    assert f"unitOfMeasure.multiplier {sample['unitOfMeasure']['multiplier']} cannot be converted exactly" in reason


def test_201_schema_violations_name_the_field():
    assert _reason("2.0.1", "TransactionEvent", _transaction_event(eventType="Paused")).startswith(
        "TransactionEvent: eventType: 'Paused' is not one of")
    payload = _transaction_event()
    del payload["seqNo"]
    assert _reason("2.0.1", "TransactionEvent", payload) == (
        "TransactionEvent: (payload): 'seqNo' is a required property")
    assert _reason("2.0.1", "TransactionEvent", _transaction_event(
        transactionInfo={"transactionId": "x" * 37})).startswith(
        "TransactionEvent: transactionInfo.transactionId:")


def test_21_transaction_event_parses_like_201_and_accepts_21_fields():
    payload = _transaction_event({"value": 2000}, transactionInfo={
        "transactionId": "tx-21", "chargingState": "SuspendedEV", "operationMode": "ChargingOnly"})
    msg = validate_call("2.1", "TransactionEvent", payload)
    assert isinstance(msg, ocpp201.TransactionEvent)
    assert msg.transaction_info.charging_state == "SuspendedEV"
    assert msg.meter_value[0].sampled_value[0].energy_kwh() == Decimal("2")
    # 2.0.1 does not know operationMode
    assert "operationMode" in _reason("2.0.1", "TransactionEvent", payload)


def test_other_known_201_actions_validate_and_return_none():
    assert validate_call("2.0.1", "Heartbeat", {}) is None
    assert validate_call("2.0.1", "StatusNotification", {
        "timestamp": T0, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}) is None
    assert validate_call("2.0.1", "MeterValues", {
        "evseId": 0, "meterValue": [{"timestamp": T0, "sampledValue": [{"value": 5}]}]}) is None
    assert "connectorStatus" in _reason("2.0.1", "StatusNotification", {
        "timestamp": T0, "connectorStatus": "Busy", "evseId": 1, "connectorId": 1})


def test_validation_does_not_modify_the_callers_payload():
    payload = _meter_values_16({"value": 12.5, "unit": "kwh"})
    validate_call("1.6", "MeterValues", payload)
    assert payload["meterValue"][0]["sampledValue"][0] == {"value": 12.5, "unit": "kwh"}
