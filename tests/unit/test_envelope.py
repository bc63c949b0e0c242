from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas.envelope import EventEnvelope


def _envelope(**overrides):
    fields = dict(
        charge_point_id="CP-1",
        ocpp_version="1.6",
        action="Heartbeat",
        message_id="m-1",
        received_at=datetime(2026, 11, 1, 12, tzinfo=timezone(timedelta(hours=1))),
        payload={},
    )
    fields.update(overrides)
    return EventEnvelope(**fields)


def test_envelope_round_trips_through_bytes_and_normalises_to_utc():
    env = _envelope()
    back = EventEnvelope.from_bytes(env.to_bytes())
    assert back == env
    assert back.received_at == datetime(2026, 11, 1, 11, tzinfo=timezone.utc)
    assert env.kafka_key() == b"CP-1"


def test_envelope_rejects_naive_timestamp_and_unknown_version():
    with pytest.raises(ValidationError):
        _envelope(received_at=datetime(2026, 11, 1, 12))
    with pytest.raises(ValidationError):
        _envelope(ocpp_version="1.5")
