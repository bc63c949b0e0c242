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


def test_a_cdr_copied_twice_is_an_integrity_error(pg_sessions):
    """issue_cdrs inserts the new CDRs with a binary COPY on PostgreSQL: a row the unique
    natural key refuses fails the statement (and the batch) as the INSERT did."""
    from datetime import datetime, timezone
    from decimal import Decimal

    when = datetime(2026, 3, 1, tzinfo=timezone.utc)
    row = dict(country_code="NL", party_id="ZCP", id="copy-twice", start_date_time=when, end_date_time=when,
               currency="EUR", total_cost_excl_vat=Decimal("1.2345"), total_cost_incl_vat=None,
               total_energy=Decimal("2.5"), total_time=Decimal("1"), total_parking_time=None, credit=False,
               credit_reference_id=None, emsp_country_code=None, emsp_party_id=None, location_id=None, evse_uid=None,
               tariff_id=None, tariff_version=None, last_updated=when, session_key=None, cdr_json="{}")
    with pg_sessions.begin() as s:
        assert len(repo.issue_cdrs(s, [dict(row)])) == 1
    binders = repo.row_binders(s.get_bind().dialect, repo._CDRS, repo.CDR_COLUMNS)
    values = repo.bound_row(binders, [dict(row, content_hash=repo.content_hash("{}"), published=False)[c]
                                      for c in repo.CDR_COLUMNS])
    with pytest.raises(IntegrityError), pg_sessions.begin() as s:
        repo.insert_rows(s, repo._CDRS, repo.CDR_COLUMNS, [values])
    with pg_sessions.begin() as s:
        assert len(repo.issue_cdrs(s, [dict(row)])) == 0  # already issued, same content
        assert s.get_bind().dialect.name == "postgresql"
        s.execute(repo._CDRS.delete().where(repo._CDRS.c.party_id == "ZCP"))
