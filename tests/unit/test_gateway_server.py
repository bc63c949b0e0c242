"""The gateway's frame handling and handshake, with an in-memory event log.

Kafka behaviour (acks, ordering on the real topic) is covered by
tests/integration/test_gateway.py; here the event log is the gateway's own port
(``publish_event`` / ``publish_dead_letter``) recorded in memory.
"""

import asyncio
import json
from datetime import datetime, timezone
from itertools import count

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from gateway.auth import basic_authorization_header, hash_password
from gateway.event_log import PublishFailed
from gateway.server import Gateway, charge_point_id_from_path

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
PASSWORDS = {"CP-1": hash_password("pw-1", n=2**10), "CP 2": hash_password("pw-2", n=2**10)}


class RecordingLog:
    def __init__(self):
        self.events, self.dead_letters = [], []
        self.down = False
        self.gate: asyncio.Event | None = None

    async def publish_event(self, envelope):
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise PublishFailed("broker unreachable")
        self.events.append(envelope)

    async def publish_dead_letter(self, record):
        self.dead_letters.append(record)


def make_gateway(log):
    ids = count(100)

    async def next_id():
        return next(ids)

    return Gateway(log, PASSWORDS.get, next_id, heartbeat_interval_s=60, clock=lambda: NOW)


START = '[2,"m1","StartTransaction",{"connectorId":1,"idTag":"TAG","meterStart":0,"timestamp":"2026-11-25T10:00:00Z"}]'


def test_paths_name_the_charge_point():
    assert charge_point_id_from_path("/ocpp/CP-1") == "CP-1"
    assert charge_point_id_from_path("/ocpp/CP%201/") == "CP 1"
    assert charge_point_id_from_path("/ocpp/CP-1?x=1") == "CP-1"
    for bad in ("/", "/ocpp/", "/ocpp/a/b", "/other/CP-1", "/ocpp/" + "x" * 256):
        assert charge_point_id_from_path(bad) is None


async def test_start_transaction_is_logged_with_its_answer_before_it_is_answered():
    log = RecordingLog()
    reply = await make_gateway(log).handle_frame("CP-1", "1.6", START)
    assert json.loads(reply) == [3, "m1", {"transactionId": 100, "idTagInfo": {"status": "Accepted"}}]
    (envelope,) = log.events
    assert (envelope.charge_point_id, envelope.ocpp_version, envelope.action, envelope.message_id) == (
        "CP-1", "1.6", "StartTransaction", "m1")
    assert envelope.received_at == NOW
    assert envelope.payload["meterStart"] == 0
    assert envelope.response == {"transactionId": 100, "idTagInfo": {"status": "Accepted"}}


async def test_no_answer_leaves_before_the_event_log_acknowledged():
    log = RecordingLog()
    log.gate = asyncio.Event()
    task = asyncio.create_task(make_gateway(log).handle_frame("CP-1", "2.0.1", '[2,"h","Heartbeat",{}]'))
    await asyncio.sleep(0.05)
    assert not task.done()
    log.gate.set()
    assert json.loads(await task)[0] == 3


async def test_an_unacknowledged_message_gets_internal_error_not_a_result():
    log = RecordingLog()
    log.down = True
    gateway = make_gateway(log)
    reply = json.loads(await gateway.handle_frame("CP-1", "1.6", START))
    assert reply[:3] == [4, "m1", "InternalError"]
    assert gateway.stats.publish_failures == 1 and gateway.stats.calls_accepted == 0


async def test_a_schema_violation_is_refused_and_dead_lettered_with_the_original_frame():
    log = RecordingLog()
    raw = START.replace('"meterStart":0', '"meterStart":"zero"')
    reply = json.loads(await make_gateway(log).handle_frame("CP-1", "1.6", raw))
    assert reply[:3] == [4, "m1", "TypeConstraintViolation"]
    assert log.events == []
    (dead,) = log.dead_letters
    assert (dead.charge_point_id, dead.message_id, dead.action, dead.error_code) == (
        "CP-1", "m1", "StartTransaction", "TypeConstraintViolation")
    assert dead.raw == raw.encode() and "meterStart" in dead.reason
    headers = dict(dead.kafka_headers())
    assert headers["error-code"] == b"TypeConstraintViolation" and headers["source"] == b"gateway"


async def test_garbage_is_dead_lettered_byte_for_byte():
    log = RecordingLog()
    reply = json.loads(await make_gateway(log).handle_frame("CP-1", "2.0.1", b"\x00\xffjunk"))
    assert reply[:3] == [4, "-1", "RpcFrameworkError"]
    assert log.dead_letters[0].kafka_value() == b"\x00\xffjunk"
    assert log.dead_letters[0].message_id is None


async def test_central_system_actions_sent_by_a_charger_are_not_supported():
    log = RecordingLog()
    raw = '[2,"r1","RemoteStopTransaction",{"transactionId":1}]'
    reply = json.loads(await make_gateway(log).handle_frame("CP-1", "1.6", raw))
    assert reply[:3] == [4, "r1", "NotSupported"]
    assert log.dead_letters[0].error_code == "NotSupported"


async def test_unsolicited_answers_from_the_charger_are_dead_lettered_but_not_answered():
    log = RecordingLog()
    gateway = make_gateway(log)
    assert await gateway.handle_frame("CP-1", "1.6", '[3,"x",{}]') is None
    assert await gateway.handle_frame("CP-1", "2.0.1", '[4,"y","GenericError","",{}]') is None
    assert log.events == []
    assert [(d.message_id, d.error_code) for d in log.dead_letters] == [("x", "-"), ("y", "-")]
    assert "unsolicited CALLRESULT" in log.dead_letters[0].reason


# -- handshake over loopback ---------------------------------------------------------------


async def _serve(gateway):
    server = await gateway.serve("127.0.0.1", 0).__aenter__()
    return server, server.sockets[0].getsockname()[1]


def _connect(port, cp_id, password, subprotocols=("ocpp1.6",)):
    return websockets.connect(
        f"ws://127.0.0.1:{port}/ocpp/{cp_id}",
        subprotocols=list(subprotocols),
        additional_headers={"Authorization": basic_authorization_header(cp_id.replace("%20", " "), password)},
    )


async def test_handshake_admits_registered_charge_points_and_picks_the_newest_common_version():
    log = RecordingLog()
    server, port = await _serve(make_gateway(log))
    try:
        async with _connect(port, "CP-1", "pw-1", ("ocpp1.6", "ocpp2.0.1")) as ws:
            assert ws.subprotocol == "ocpp2.0.1"
            await ws.send('[2,"b","Heartbeat",{}]')
            assert json.loads(await ws.recv())[:2] == [3, "b"]
        async with _connect(port, "CP%202", "pw-2") as ws:
            assert ws.subprotocol == "ocpp1.6"
    finally:
        server.close()
        await server.wait_closed()
    assert [e.charge_point_id for e in log.events] == ["CP-1"]


@pytest.mark.parametrize(
    "cp_id, password, subprotocols, status",
    [
        ("CP-1", "wrong", ("ocpp1.6",), 401),
        ("CP-404", "pw-1", ("ocpp1.6",), 401),
        ("CP-1", "pw-1", ("ocpp1.5",), 400),
    ],
)
async def test_handshake_refusals(cp_id, password, subprotocols, status):
    server, port = await _serve(make_gateway(RecordingLog()))
    try:
        with pytest.raises(InvalidStatus) as refused:
            async with _connect(port, cp_id, password, subprotocols):
                pass
        assert refused.value.response.status_code == status
        if status == 401:
            assert refused.value.response.headers["WWW-Authenticate"].startswith("Basic")
    finally:
        server.close()
        await server.wait_closed()


async def test_user_name_must_be_the_charge_point_id_and_the_path_must_be_ocpp():
    server, port = await _serve(make_gateway(RecordingLog()))
    try:
        header = {"Authorization": basic_authorization_header("CP 2", "pw-2")}
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ocpp/CP-1", subprotocols=["ocpp1.6"],
                                          additional_headers=header):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"ws://127.0.0.1:{port}/chargers/CP-1", subprotocols=["ocpp1.6"],
                                          additional_headers=header):
                pass
        assert refused.value.response.status_code == 404
    finally:
        server.close()
        await server.wait_closed()


async def test_a_reconnect_replaces_the_previous_connection():
    gateway = make_gateway(RecordingLog())
    server, port = await _serve(gateway)
    try:
        async with _connect(port, "CP-1", "pw-1") as first:
            async with _connect(port, "CP-1", "pw-1") as second:
                await asyncio.wait_for(first.wait_closed(), 5)
                assert first.close_code == 1001
                await second.send('[2,"h","Heartbeat",{}]')
                assert json.loads(await second.recv())[0] == 3
                assert gateway.connected() == ["CP-1"]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_retried_start_transaction_gets_the_same_transaction_id():
    log = RecordingLog()
    gateway = make_gateway(log)
    first = json.loads(await gateway.handle_frame("CP-1", "1.6", START))
    again = json.loads(await gateway.handle_frame("CP-1", "1.6", START))  # same message id: a retry
    other = json.loads(await gateway.handle_frame("CP-1", "1.6", START.replace('"m1"', '"m2"')))
    assert first[2]["transactionId"] == again[2]["transactionId"] == 100
    assert other[2]["transactionId"] == 101
    # Both copies are on the log (the pipeline drops the duplicate by message id).
    assert [e.response["transactionId"] for e in log.events] == [100, 100, 101]


async def test_a_failing_check_answers_internal_error_and_keeps_the_frame(monkeypatch):
    import gateway.server as server

    def broken(*args):
        raise RuntimeError("bug")

    monkeypatch.setattr(server, "check_call", broken)
    log = RecordingLog()
    reply = json.loads(await make_gateway(log).handle_frame("CP-1", "1.6", START))
    assert reply[:3] == [4, "m1", "InternalError"]
    assert log.dead_letters[0].raw == START.encode() and "bug" in log.dead_letters[0].reason
