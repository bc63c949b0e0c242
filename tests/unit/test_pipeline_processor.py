"""The worker's unit of work on SQLite, without Kafka: outcomes, counters, tracking."""

import pytest

from chargeledger.settings import Settings
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import DeadLetterRecord, EventRecord
from streams.billing import Billing
from streams.processor import InRecord, Processor
from streams.simulate import simulate_traffic
from streams.tariffs import sample_tariff_json, store_tariff_json


@pytest.fixture
def processor(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as db:
        store_tariff_json(db, sample_tariff_json())
    return Processor(make_sessionmaker(make_engine(url)), Billing(Settings(database_url=url)), "g")


def _records(traffic):
    return [InRecord("ev", 0, i, r.key, r.value) for i, r in enumerate(traffic.records)]


def test_every_input_is_applied_dead_lettered_or_a_duplicate(processor):
    traffic = simulate_traffic(3, 6, seed=3, malformed=5, duplicates=2)
    processor.process_batch(_records(traffic))
    with processor.sessions() as db:
        counters = repo.read_counters(db, "g")
        letters = db.query(DeadLetterRecord).order_by(DeadLetterRecord.source_offset).all()
        assert db.query(EventRecord).count() == len(traffic.records)
    assert counters["events_in"] == len(traffic.records)
    assert counters["events_in"] == counters["applied"] + counters["dead_lettered"] + counters["duplicates"]
    assert counters["dead_lettered"] == 5, [d.reason for d in letters]
    assert counters["duplicates"] == 2
    reasons = " | ".join(d.reason for d in letters)
    assert "not an event envelope" in reasons
    assert all(d.original for d in letters)


def test_a_batch_below_the_stored_offset_is_not_applied_twice(processor):
    traffic = simulate_traffic(2, 3, seed=4)
    records = _records(traffic)
    processor.process_batch(records[:10])
    again = processor.process_batch(records[:15])  # redelivery after a crash before the seek
    assert again.skipped == 10
    with processor.sessions() as db:
        assert repo.read_counters(db, "g")["events_in"] == 15
        assert repo.tracked_offsets(db, "g", "ev") == {0: 15}


def test_simulated_traffic_is_a_function_of_the_seed():
    a = simulate_traffic(4, 10, seed=7, malformed=2, duplicates=1)
    b = simulate_traffic(4, 10, seed=7, malformed=2, duplicates=1)
    c = simulate_traffic(4, 10, seed=8)
    assert a.records == b.records
    assert a.records != c.records
    assert {s.ocpp_version for s in a.sessions} == {"1.6", "2.0.1"}


def test_a_database_failure_inside_the_handler_fails_the_batch_instead_of_dead_lettering(tmp_path):
    """A dropped connection (PostgreSQL restarted mid-batch) is not the event's fault: the
    batch must fail as a whole, leave nothing behind, and apply normally when retried."""
    from sqlalchemy.exc import OperationalError

    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as db:
        store_tariff_json(db, sample_tariff_json())

    class ConnectionLostOnFifthEvent(Billing):
        calls = 0

        def handle(self, db, envelope):
            type(self).calls += 1
            if type(self).calls == 5:
                raise OperationalError("SELECT 1", {}, Exception("terminating connection due to administrator command"))
            return super().handle(db, envelope)

    traffic = simulate_traffic(3, 6, seed=3, malformed=5, duplicates=2)
    records = _records(traffic)
    failing = Processor(sessions, ConnectionLostOnFifthEvent(Settings(database_url=url)), "g")
    with pytest.raises(OperationalError):
        failing.process_batch(records)
    with sessions() as db:
        assert repo.read_counters(db, "g")["events_in"] == 0
        assert db.query(DeadLetterRecord).count() == 0
        assert repo.tracked_offsets(db, "g", "ev") == {}

    # The restarted worker: a fresh handler, the same batch from the stored (absent) offset.
    Processor(sessions, Billing(Settings(database_url=url)), "g").process_batch(records)
    with sessions() as db:
        counters = repo.read_counters(db, "g")
        assert db.query(DeadLetterRecord).count() == 5
    assert counters["events_in"] == len(traffic.records)
    assert (counters["dead_lettered"], counters["duplicates"]) == (5, 2)


def _envelope_bytes(charge_point_id="CP-1", id_tag="TAG-1") -> bytes:
    import json

    return json.dumps({"charge_point_id": charge_point_id, "ocpp_version": "1.6", "action": "Authorize",
                       "message_id": "m-1", "received_at": "2026-11-02T08:00:00Z",
                       "payload": {"idTag": id_tag}}).encode()


def test_a_nul_character_anywhere_in_the_event_dead_letters_it_naming_where(processor):
    # json.dumps writes U+0000 as the escape \u0000, as any JSON producer must.
    records = [
        InRecord("ev", 0, 0, b"CP-1", _envelope_bytes(id_tag="TAG\x001")),
        InRecord("ev", 0, 1, b"CP-1", _envelope_bytes(charge_point_id="CP\x00-1")),
        InRecord("ev", 0, 2, b"CP-1", _envelope_bytes(id_tag="x\\u0000")),
    ]
    processor.process_batch(records)
    with processor.sessions() as db:
        letters = {d.source_offset: d for d in db.query(DeadLetterRecord)}
        counters = repo.read_counters(db, "g")
    assert letters[0].reason == ("unstorable event: payload.idTag contains the NUL character (U+0000), "
                                 "which text columns cannot store")
    assert letters[1].reason.startswith("unstorable event: charge_point_id contains the NUL character")
    assert letters[0].original == records[0].value  # the record is kept as it came
    assert 2 not in letters  # an escaped backslash followed by u0000 is not a NUL
    assert (counters["events_in"], counters["applied"], counters["dead_lettered"]) == (3, 1, 2)


def test_a_key_that_cannot_be_stored_as_it_is_becomes_a_storable_charge_point_id(processor):
    records = [
        InRecord("ev", 0, 0, b"CP\x00X", b"not json"),
        InRecord("ev", 0, 1, b"K" * 300, b"not json"),
        InRecord("ev", 0, 2, b"CP-\xff", b"not json"),
    ]
    processor.process_batch(records)
    with processor.sessions() as db:
        letters = {d.source_offset: d.charge_point_id for d in db.query(DeadLetterRecord)}
        events = {e.offset: e.charge_point_id for e in db.query(EventRecord)}
    assert letters[0] == "CP\\x00X"  # the four characters backslash, x, 0, 0
    assert letters[1] == "K" * 254 + "…" and len(letters[1]) == 255
    assert letters[2] == "CP-\ufffd"
    assert events == letters


def test_a_time_out_of_range_in_utc_dead_letters_the_event_and_the_batch_commits(processor):
    """0001-01-01T00:00:00+01:00 is a valid RFC 3339 text whose UTC time is before year 1:
    converting it used to raise OverflowError, which the parser did not expect, so the batch
    failed on every retry and its partition stopped. Now it is a dead letter with a reason,
    whether it is the envelope's received_at or a timestamp in the OCPP payload."""
    import json

    def envelope(received_at: str, payload: dict, action: str = "Authorize", version: str = "1.6") -> bytes:
        return json.dumps({"charge_point_id": "CP-1", "ocpp_version": version, "action": action,
                           "message_id": "m-1", "received_at": received_at, "payload": payload}).encode()

    records = [
        InRecord("ev", 0, 0, b"CP-1", envelope("0001-01-01T00:00:00+01:00", {"idTag": "A"})),
        InRecord("ev", 0, 1, b"CP-1", envelope("9999-12-31T23:59:59-01:00", {"idTag": "A"})),
        InRecord("ev", 0, 2, b"CP-1", envelope("2026-11-02T08:00:00Z", {
            "eventType": "Started", "timestamp": "0001-01-01T00:00:00+05:00", "triggerReason": "Authorized",
            "seqNo": 0, "transactionInfo": {"transactionId": "T-1"}}, "TransactionEvent", "2.0.1")),
        InRecord("ev", 0, 3, b"CP-1", _envelope_bytes()),
    ]
    processor.process_batch(records)
    with processor.sessions() as db:
        letters = {d.source_offset: d.reason for d in db.query(DeadLetterRecord)}
        counters = repo.read_counters(db, "g")
        tracked = repo.tracked_offsets(db, "g", "ev")
    assert letters[0] == letters[1] == (
        "not an event envelope: received_at: Value error, received_at is out of range once converted to UTC")
    assert letters[2] == "TransactionEvent: timestamp: out of range once converted to UTC"
    assert 3 not in letters
    assert (counters["events_in"], counters["applied"], counters["dead_lettered"]) == (4, 1, 3)
    assert tracked == {0: 4}


def test_an_unexpected_error_of_the_envelope_parser_dead_letters_the_record(processor, monkeypatch):
    """Whatever the parser raises, the record is dead-lettered with the error, never a batch
    that fails on every retry (which stops the partition)."""
    from schemas.envelope import EventEnvelope

    def broken(raw: bytes):
        if b"boom" in raw:
            raise OverflowError("date value out of range")
        return original(raw)

    original = EventEnvelope.from_bytes
    monkeypatch.setattr(EventEnvelope, "from_bytes", staticmethod(broken))
    processor.process_batch([InRecord("ev", 0, 0, b"CP-1", _envelope_bytes(id_tag="boom")),
                             InRecord("ev", 0, 1, b"CP-1", _envelope_bytes())])
    with processor.sessions() as db:
        letters = {d.source_offset: d.reason for d in db.query(DeadLetterRecord)}
        counters = repo.read_counters(db, "g")
    assert letters == {0: "not an event envelope: OverflowError: date value out of range"}
    assert (counters["events_in"], counters["applied"], counters["dead_lettered"]) == (2, 1, 1)


@pytest.mark.parametrize("error, fails_the_batch", [
    (repo.ConflictingCdr("CDR S1 issued with other content"), True),
    (ValueError("handler bug"), False),
])
def test_what_a_handler_error_does_to_the_batch(tmp_path, error, fails_the_batch):
    """The processor calls the handler inline in its loop (issue 4): a CDR id issued with other
    content fails the batch, any other handler error dead-letters the event with the error."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as db:
        store_tariff_json(db, sample_tariff_json())

    class FailsOnThirdEvent(Billing):
        calls = 0

        def handle(self, db, envelope):
            type(self).calls += 1
            if type(self).calls == 3:
                raise error
            return super().handle(db, envelope)

    records = _records(simulate_traffic(2, 3, seed=5))
    processor = Processor(sessions, FailsOnThirdEvent(Settings(database_url=url)), "g")
    if fails_the_batch:
        with pytest.raises(repo.ConflictingCdr):
            processor.process_batch(records)
        with sessions() as db:
            assert repo.read_counters(db, "g")["events_in"] == 0
        return
    result = processor.process_batch(records)
    # the third record (offset 2): later messages of its session may be dead-lettered too
    reasons = {letter["source_offset"]: letter["reason"] for letter in result.dead_letters}
    assert reasons[2] == "internal error while applying: ValueError: handler bug"
    assert all(offset >= 2 for offset in reasons)
    with sessions() as db:
        assert repo.read_counters(db, "g")["events_in"] == len(records)
