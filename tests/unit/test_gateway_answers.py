"""Every answer the gateway gives is valid against the version's CALLRESULT schema."""

from datetime import datetime, timezone

import pytest

from gateway.answers import ANSWERS_16, ANSWERS_2X, AnswerContext, ocpp_datetime
from gateway.validation import response_errors

NOW = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=timezone.utc)
CTX = AnswerContext(NOW, 300, transaction_id=42)


def test_ocpp_datetime_is_utc_with_milliseconds():
    assert ocpp_datetime(NOW) == "2026-11-25T10:00:00.123Z"


@pytest.mark.parametrize("action", sorted(ANSWERS_16))
def test_16_answers_match_their_response_schema(action):
    for payload in ({}, {"idTag": "TAG"}):
        assert response_errors("1.6", action, ANSWERS_16[action](payload, CTX)) == []


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
@pytest.mark.parametrize("action", sorted(ANSWERS_2X))
def test_2x_answers_match_their_response_schema(version, action):
    for payload in ({}, {"idToken": {"idToken": "T", "type": "ISO14443"}}):
        assert response_errors(version, action, ANSWERS_2X[action](payload, CTX)) == []


def test_start_transaction_answers_with_the_allocated_id():
    assert ANSWERS_16["StartTransaction"]({}, CTX)["transactionId"] == 42


def test_start_transaction_without_an_allocated_id_is_an_error():
    with pytest.raises(ValueError):
        ANSWERS_16["StartTransaction"]({}, AnswerContext(NOW, 300))


def test_boot_notification_is_accepted_with_the_configured_heartbeat_interval():
    assert ANSWERS_16["BootNotification"]({}, CTX) == {
        "status": "Accepted", "currentTime": "2026-11-25T10:00:00.123Z", "interval": 300}
