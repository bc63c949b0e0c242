"""How simulated records become the frames a charger would send (``simulate --via gateway``)."""

import json
from datetime import datetime, timezone

from gateway.simulate import frame_for, start_before_now
from schemas.envelope import EventEnvelope


def test_an_envelope_becomes_a_call_with_its_message_id_action_and_payload():
    envelope = EventEnvelope(charge_point_id="CP1", ocpp_version="2.0.1", action="Heartbeat", message_id="m-1",
                             received_at=datetime(2026, 1, 1, tzinfo=timezone.utc), payload={})
    frame = frame_for(envelope.to_bytes())
    assert json.loads(frame.text) == [2, "m-1", "Heartbeat", {}]
    assert (frame.message_id, frame.version) == ("m-1", "2.0.1")


def test_broken_records_become_broken_frames():
    assert frame_for(b"\x00not json").message_id is None
    no_id = frame_for(json.dumps({"ocpp_version": "1.6", "action": "Heartbeat", "payload": {}}).encode())
    assert json.loads(no_id.text) == [2, "Heartbeat", {}] and no_id.message_id is None
    unknown = frame_for(json.dumps({"ocpp_version": "2.0.1", "action": "SelfDestruct", "message_id": "x",
                                    "payload": {}, "charge_point_id": "C"}).encode())
    assert json.loads(unknown.text) == [2, "x", "SelfDestruct", {}] and unknown.version == "2.0.1"


def test_replayed_traffic_is_moved_into_the_past():
    start = datetime(2026, 3, 2, 5, 0, tzinfo=timezone.utc)
    last = datetime(2026, 3, 3, 7, 30, 0, 500000, tzinfo=timezone.utc)
    moved = start_before_now(start, last)
    assert moved + (last - start) < datetime.now(timezone.utc)
    assert moved.microsecond == 0
