"""Raw event rows on the real PostgreSQL server: the binary COPY of the worker's insert path
(storage.repositories.insert_event_rows) stores exactly what SQLAlchemy's insert stores."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from tests.unit.test_pipeline_storage import EVENT_TIMES, event_rows_both_ways


@pytest.fixture(scope="module")
def pg_sessions(pg_url):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_event_rows_copied_store_what_sqlalchemy_stores(pg_sessions):
    through_sqlalchemy, copied = event_rows_both_ways(pg_sessions)
    assert len(copied) == 2 * len(EVENT_TIMES)
    assert copied == through_sqlalchemy


def test_a_failed_copy_is_a_sqlalchemy_error_and_rolls_back_with_the_batch(pg_sessions):
    row = ("dup", 0, 5, "CP", "m", "1.6", "Heartbeat", None, b"{}", "applied", None, None)
    with pg_sessions.begin() as s:
        repo.insert_event_rows(s, [row])
    with pytest.raises(IntegrityError), pg_sessions.begin() as s:
        repo.add_to_counters(s, "copy-test", {"events_in": 1})
        repo.insert_event_rows(s, [row[:2] + (6,) + row[3:], row])  # offset 6 new, 5 again
    with pg_sessions() as s:
        assert repo.read_counters(s, "copy-test")["events_in"] == 0
        assert [e.offset for e in repo.stored_events(s, "dup")] == [5]
    # the pool's connection is still usable
    with pg_sessions.begin() as s:
        repo.insert_event_rows(s, [row[:2] + (7,) + row[3:]])
