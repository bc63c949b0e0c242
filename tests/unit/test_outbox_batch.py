"""storage/outbox.py enqueue_cdr_pushes: a batch of CDRs of several eMSPs queues, with one
partner query, exactly the rows that enqueueing them one by one queues, in CDR order."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from storage.api_tables import CdrOutbox
from storage.outbox import enqueue_cdr_push, enqueue_cdr_pushes, enqueue_cdr_row_pushes
from tests.apitools import add_partner, cdr_json, insert_cdr, migrated_sessionmaker

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
#: (CDR id, eMSP of its token)
BATCH = [("B1", ("DE", "8AA")), ("B2", ("FR", "XYZ")), ("B3", ("DE", "XYZ")), ("B4", ("NL", "TNM")),
         ("B5", ("DE", "8AA")), ("B6", ("fr", "xyz")), ("B7", ("BE", "ALL"))]


def _partners(sm) -> dict[str, int]:
    ids = {}
    ids["de"], _ = add_partner(sm, "DE", [("EMSP", "DE", "8AA")], cdrs_receiver_url="http://de/cdrs")
    # acts for two parties; a CDR of DE*XYZ is neither (the pair must match, not each half)
    ids["multi"], _ = add_partner(sm, "multi", [("EMSP", "FR", "XYZ"), ("EMSP", "DE", "8AB")],
                                  cdrs_receiver_url="http://multi/cdrs")
    ids["fr2"], _ = add_partner(sm, "FR too", [("HUB", "FR", "XYZ")], cdrs_receiver_url="http://fr2/cdrs")
    add_partner(sm, "NL pulls", [("EMSP", "NL", "TNM")])  # no receiver
    add_partner(sm, "BE pending", [("EMSP", "BE", "ALL")], registered=False, cdrs_receiver_url="http://be")
    return ids


def _queued(sm) -> list[tuple[int, str]]:
    with sm() as db:
        return [(r.partner_id, r.cdr_id) for r in db.scalars(select(CdrOutbox).order_by(CdrOutbox.id))]


def test_a_batch_queues_what_one_by_one_queues_in_order(tmp_path):
    one_by_one = migrated_sessionmaker(f"sqlite:///{tmp_path / 'single.db'}")
    batched = migrated_sessionmaker(f"sqlite:///{tmp_path / 'batch.db'}")
    ids = _partners(one_by_one)
    assert _partners(batched) == ids
    with one_by_one() as db:
        rows = [insert_cdr(db, cdr_json(cdr_id, emsp=emsp)) for cdr_id, emsp in BATCH]
        assert sum(enqueue_cdr_push(db, row, now=NOW) for row in rows) == 6
        db.commit()
    with batched() as db:
        rows = [insert_cdr(db, cdr_json(cdr_id, emsp=emsp)) for cdr_id, emsp in BATCH]
        assert enqueue_cdr_pushes(db, rows, now=NOW) == 6
        assert enqueue_cdr_pushes(db, rows, now=NOW) == 0  # idempotent
        db.commit()
    expected = [(ids["de"], "B1"), (ids["multi"], "B2"), (ids["fr2"], "B2"), (ids["de"], "B5"),
                (ids["multi"], "B6"), (ids["fr2"], "B6")]
    assert _queued(one_by_one) == _queued(batched) == sorted(expected, key=lambda r: (r[1], r[0]))


def test_pipeline_row_values_queue_what_the_records_queue(tmp_path):
    """enqueue_cdr_row_pushes (the worker's ``cdrs`` row dicts) == enqueue_cdr_pushes of the rows."""
    records = migrated_sessionmaker(f"sqlite:///{tmp_path / 'records.db'}")
    values = migrated_sessionmaker(f"sqlite:///{tmp_path / 'values.db'}")
    ids = _partners(records)
    assert _partners(values) == ids
    with records() as db:
        rows = [insert_cdr(db, cdr_json(cdr_id, emsp=emsp)) for cdr_id, emsp in BATCH]
        assert enqueue_cdr_pushes(db, rows, now=NOW) == 6
        db.commit()
    with values() as db:
        rows = [insert_cdr(db, cdr_json(cdr_id, emsp=emsp)) for cdr_id, emsp in BATCH]
        dicts = [{name: getattr(row, name) for name in ("country_code", "party_id", "id", "emsp_country_code",
                                                        "emsp_party_id", "cdr_json", "session_key")} for row in rows]
        assert enqueue_cdr_row_pushes(db, dicts, now=NOW) == 6
        assert enqueue_cdr_row_pushes(db, dicts, now=NOW) == 0  # idempotent
        db.commit()
    with records() as a, values() as b:
        columns = ("partner_id", "cdr_country_code", "cdr_party_id", "cdr_id", "payload", "enqueued_at", "attempts",
                   "next_attempt_at")
        assert ([tuple(getattr(r, c) for c in columns) for r in a.scalars(select(CdrOutbox).order_by(CdrOutbox.id))]
                == [tuple(getattr(r, c) for c in columns) for r in b.scalars(select(CdrOutbox).order_by(CdrOutbox.id))])
    assert len(_queued(values)) == 6


def test_a_batch_without_emsps_queries_nothing(tmp_path):
    sm = migrated_sessionmaker(f"sqlite:///{tmp_path / 'empty.db'}")
    with sm() as db:
        assert enqueue_cdr_pushes(db, [], now=NOW) == 0
