"""Records that PostgreSQL could not store as they are must not stop the partition: before
the fix, a NUL character (in the key or the event) or a key longer than 255 characters made
the batch fail on every retry. On the real server, they are dead-lettered (or their key made
storable) and the batch commits with the valid event beside them."""

from __future__ import annotations

import json

from chargeledger.settings import Settings
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import DeadLetterRecord, EventRecord
from streams.billing import Billing
from streams.processor import InRecord, Processor

TOPIC = "poison-records-ev"


def _envelope(charge_point_id: str = "CP-1", id_tag: str = "TAG-1", message_id: str = "m-1") -> bytes:
    return json.dumps({"charge_point_id": charge_point_id, "ocpp_version": "1.6", "action": "Authorize",
                       "message_id": message_id, "received_at": "2026-11-02T08:00:00Z",
                       "payload": {"idTag": id_tag}}).encode()


def test_unstorable_records_are_dead_lettered_and_the_batch_commits(pg_url):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    try:
        sessions = make_sessionmaker(engine)
        processor = Processor(sessions, Billing(Settings(database_url=pg_url)), "poison-records")
        records = [
            InRecord(TOPIC, 0, 0, b"CP\x00X", b"not json"),  # NUL in the key
            InRecord(TOPIC, 0, 1, b"K" * 300, b"not json"),  # key longer than the column
            InRecord(TOPIC, 0, 2, b"CP-1", _envelope(id_tag="TAG\x001")),  # NUL in the payload
            InRecord(TOPIC, 0, 3, b"CP-1", _envelope(charge_point_id="CP\x001")),  # NUL in the envelope
            InRecord(TOPIC, 0, 4, b"CP-1", _envelope(message_id="m-5")),  # valid
        ]
        result = processor.process_batch(records)
        assert dict(result.counters) == {"events_in": 5, "applied": 1, "dead_lettered": 4}
        with sessions() as db:
            letters = {d.source_offset: d for d in db.query(DeadLetterRecord).filter_by(source_topic=TOPIC)}
            events = {e.offset: e for e in db.query(EventRecord).filter_by(topic=TOPIC)}
            assert repo.tracked_offsets(db, "poison-records", TOPIC) == {0: 5}
        assert sorted(letters) == [0, 1, 2, 3]
        assert letters[0].charge_point_id == "CP\\x00X"
        assert letters[1].charge_point_id == "K" * 254 + "…"
        assert letters[2].reason.startswith("unstorable event: payload.idTag contains the NUL character")
        assert letters[3].reason.startswith("unstorable event: charge_point_id contains the NUL character")
        assert [events[o].raw for o in range(5)] == [r.value for r in records]  # kept byte for byte
        assert events[4].outcome == "applied"
    finally:
        engine.dispose()
