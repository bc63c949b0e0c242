"""Pipeline tables and repositories on SQLite (the same code runs on PostgreSQL in the
integration tests)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import CdrRecord

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def _cdr(cdr_id="CDR1", total="12.3400", body='{"id": "CDR1"}'):
    return dict(
        country_code="NL", party_id="CLG", id=cdr_id, start_date_time=T0, end_date_time=T0 + timedelta(hours=1),
        currency="EUR", total_cost_excl_vat=Decimal(total), total_cost_incl_vat=None, total_energy=Decimal("20.5"),
        credit=False, last_updated=T0 + timedelta(hours=1), cdr_json=body,
    )


def test_issuing_the_same_cdr_twice_is_a_no_op(db):
    with db.begin() as s:
        assert repo.issue_cdr(s, **_cdr()).inserted
    with db.begin() as s:
        assert not repo.issue_cdr(s, **_cdr()).inserted
    with db() as s:
        row = repo.get_cdr(s, "NL", "CLG", "CDR1")
        assert row.total_cost_excl_vat == Decimal("12.3400")
        assert row.start_date_time == T0  # aware UTC back from SQLite
        assert row.content_hash == repo.content_hash('{"id": "CDR1"}')


def test_a_cdr_id_never_gets_different_content(db):
    with db.begin() as s:
        repo.issue_cdr(s, **_cdr())
    with pytest.raises(repo.ConflictingCdr), db.begin() as s:
        repo.issue_cdr(s, **_cdr(body='{"id": "CDR1", "x": 1}'))


def test_tracking_and_counters_upsert(db):
    with db.begin() as s:
        repo.track(s, "g", "t", 0, 10)
        repo.track(s, "g", "t", 1, 3)
        repo.add_to_counters(s, "g", {"events_in": 5, "applied": 4, "duplicates": 1})
    with db.begin() as s:
        repo.track(s, "g", "t", 0, 12)
        repo.add_to_counters(s, "g", {"events_in": 2, "dead_lettered": 2})
    with db() as s:
        assert repo.tracked_offsets(s, "g", "t") == {0: 12, 1: 3}
        assert repo.read_counters(s, "g") == {"events_in": 7, "applied": 4, "dead_lettered": 2, "duplicates": 1}


def test_tariff_version_valid_at_session_start_known_by_the_events(db):
    v1, v2 = T0 - timedelta(days=30), T0 + timedelta(days=1)
    with db.begin() as s:
        for version, price in ((v1, "0.30"), (v2, "0.35")):
            repo.store_tariff_version(
                s, country_code="NL", party_id="CLG", id="T1", currency="EUR", last_updated=version,
                valid_from=None, valid_to=None, tariff_json=f'{{"price": "{price}"}}',
            )
    with db() as s:
        assert repo.tariff_valid_at(s, "T1", T0, known_at=T0).last_updated == v1
        assert repo.tariff_valid_at(s, "T1", T0, known_at=v2).last_updated == v2
        assert repo.tariff_valid_at(s, "T1", T0).last_updated == v2
        assert repo.tariff_valid_at(s, "T1", T0, known_at=v1 - timedelta(days=1)).last_updated == v1
        assert repo.tariff_valid_at(s, "T2", T0) is None


def test_list_cdrs_filters_by_last_updated_window(db):
    with db.begin() as s:
        repo.issue_cdr(s, **_cdr("A", body="a"))
        b = _cdr("B", body="b")
        b["last_updated"] = T0 + timedelta(days=2)
        repo.issue_cdr(s, **b)
    with db() as s:
        rows, total = repo.list_cdrs(s, date_from=T0 + timedelta(days=1))
        assert [r.id for r in rows] == ["B"] and total == 1
        rows, total = repo.list_cdrs(s, limit=1)
        assert total == 2 and [r.id for r in rows] == ["A"]
        assert isinstance(rows[0], CdrRecord)


# --- raw event rows in driver form (the worker's insert path) -------------------------------

#: received_at values UtcDateTime must store alike whichever path binds them: aware UTC with
#: and without microseconds, another offset, naive (taken as UTC), the smallest datetime.
EVENT_TIMES = [
    datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
    datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 3, 1, 10, 30, 0, 500000, tzinfo=timezone(timedelta(hours=2, minutes=30))),
    datetime(2026, 3, 1, 23, 59, 59, 1),
    datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    None,
]


def event_rows_both_ways(sessions) -> tuple[list, list]:
    """The same events inserted through add_events (SQLAlchemy binds the values) into topic
    "a" and through insert_event_rows (rows in driver form) into topic "b"; returns the
    stored rows of each (without pk and topic), as the driver reads them back."""
    from sqlalchemy import text

    values = [
        dict(partition=p, offset=i, charge_point_id=cp, message_id=mid, ocpp_version=v, action=act,
             received_at=at, raw=raw, outcome=outcome, reason=reason, session_key=key)
        for i, (at, (p, cp, mid, v, act, raw, outcome, reason, key)) in enumerate(zip(EVENT_TIMES * 2, [
            (0, "CP-1", "m1", "1.6", "StartTransaction", b'{"x": 1}', "applied", None, "CP-1/1"),
            (0, "CP-1", "m2", "2.0.1", "TransactionEvent", b"\x00\xff", "duplicate", None, "CP-1/1"),
            (1, None, None, None, None, b"", "dead_lettered", "not an event envelope: x", None),
            (1, "CP-\u00e9", "m3", "2.1", "Heartbeat", b"{}", "dead_lettered", "r\u00e9ason", None),
            (2, "CP-2", "m4", "1.6", "MeterValues", b"[]", "applied", None, "CP-2/7"),
            (2, "\ufffdK", None, None, None, b"not json", "dead_lettered", "bad", None),
        ] * 2))
    ]
    with sessions.begin() as s:
        repo.add_events(s, [dict(topic="a", **v) for v in values])
        binder = repo.event_time_binder(s)
        repo.insert_event_rows(s, [tuple(binder(v[c]) if c == "received_at" else ("b" if c == "topic" else v[c])
                                         for c in repo.EVENT_COLUMNS) for v in values])
    columns = ", ".join(f'"{c}"' for c in repo.EVENT_COLUMNS if c != "topic")
    with sessions() as s:
        def stored(topic):
            if s.get_bind().dialect.name == "sqlite":  # the storage class too (TEXT / BLOB / NULL)
                typed = ", ".join(f'typeof("{c}"), "{c}"' for c in repo.EVENT_COLUMNS if c != "topic")
                query = f"SELECT {typed} FROM events WHERE topic = :t ORDER BY pk"
            else:
                query = f"SELECT {columns} FROM events WHERE topic = :t ORDER BY pk"
            return [tuple(r) for r in s.execute(text(query), {"t": topic})]
        return stored("a"), stored("b")


def test_event_rows_in_driver_form_store_what_sqlalchemy_stores(db):
    through_sqlalchemy, in_driver_form = event_rows_both_ways(db)
    assert len(in_driver_form) == 12
    assert in_driver_form == through_sqlalchemy
    # and what the model reads back is the aware UTC instant
    with db() as s:
        from sqlalchemy import select

        from storage.models import EventRecord
        back = s.scalars(select(EventRecord.received_at).where(EventRecord.topic == "b").order_by(EventRecord.pk)).all()
    expected = [None if t is None else (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC) for t in EVENT_TIMES * 2]
    assert back == expected


def test_event_rows_keep_the_unique_offset_as_a_sqlalchemy_error(db):
    from sqlalchemy.exc import IntegrityError

    row = ("t", 0, 5, "CP", "m", "1.6", "Heartbeat", None, b"{}", "applied", None, None)
    with db.begin() as s:
        repo.insert_event_rows(s, [row])
    with pytest.raises(IntegrityError), db.begin() as s:
        repo.insert_event_rows(s, [row])


def test_event_copy_types_are_the_models_postgresql_types():
    """The binary COPY carries no types: each value must be in its column's binary form."""
    from sqlalchemy.dialects import postgresql

    from storage.models import EventRecord

    names = {"VARCHAR": "varchar", "INTEGER": "int4", "BIGINT": "int8", "TIMESTAMP WITH TIME ZONE": "timestamptz",
             "BYTEA": "bytea", "TEXT": "text"}
    dialect = postgresql.dialect()
    model = [names[EventRecord.__table__.c[c].type.compile(dialect).split("(")[0]] for c in repo.EVENT_COLUMNS]
    assert list(repo._EVENT_PG_TYPES) == model
    assert set(repo.EVENT_COLUMNS) == {c.name for c in EventRecord.__table__.c} - {"pk"}


# --- outbox lookups by natural key ---------------------------------------------------------


def _statements(sessions):
    """The SQL the sessions' engine runs from now on (a list, appended to)."""
    from sqlalchemy import event

    seen: list[str] = []
    event.listen(sessions.kw["bind"], "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


def test_issue_cdrs_looks_up_each_party_by_natural_key(db):
    """Same id under two parties: two different CDRs; the lookup of issued hashes goes by
    party (an index search), and finds what was issued under each."""
    with db.begin() as s:
        assert len(repo.issue_cdrs(s, [dict(_cdr("A"), party_id="P1"), dict(_cdr("A"), party_id="P2")])) == 2
    seen = _statements(db)
    with db.begin() as s:
        again = [dict(_cdr("A"), party_id="P1"), dict(_cdr("A"), party_id="P2"), dict(_cdr("B"), party_id="P2")]
        assert [(r["party_id"], r["id"]) for r in repo.issue_cdrs(s, again)] == [("P2", "B")]
        with pytest.raises(repo.ConflictingCdr):
            repo.issue_cdrs(s, [dict(_cdr("A", body='{"other": 1}'), party_id="P2")])
        lookups = [q for q in seen if q.lstrip().upper().startswith("SELECT") and "content_hash" in q]
        assert lookups
        for query in lookups:
            plan = " ".join(str(r) for r in s.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + query, ("x",) * query.count("?")))
            assert "SEARCH cdrs USING INDEX" in plan and "SCAN cdrs" not in plan, plan


def test_mark_published_by_key_marks_exactly_those_rows(db):
    from sqlalchemy import select

    from storage.models import DeadLetterRecord

    with db.begin() as s:
        repo.issue_cdrs(s, [dict(_cdr(i), party_id=p) for p in ("P1", "P2") for i in ("A", "B", "C")])
        for topic in ("t1", "t2"):
            for partition in (0, 1):
                for offset in (5, 6):
                    repo.add_dead_letter(s, source_topic=topic, source_partition=partition, source_offset=offset,
                                         charge_point_id="CP", reason="r", original=b"x")
    seen = _statements(db)
    with db.begin() as s:
        repo.mark_published_by_key(s, [("NL", "P1", "A"), ("NL", "P2", "C"), ("NL", "P1", "B"), ("NL", "P1", "A")],
                                   [("t1", 1, 6), ("t2", 0, 5), ("t1", 1, 5)])
    with db() as s:
        cdrs = sorted((c.party_id, c.id) for c in s.scalars(select(CdrRecord).where(CdrRecord.published.is_(True))))
        letters = sorted((d.source_topic, d.source_partition, d.source_offset) for d in s.scalars(
            select(DeadLetterRecord).where(DeadLetterRecord.published.is_(True))))
        assert cdrs == [("P1", "A"), ("P1", "B"), ("P2", "C")]
        assert letters == [("t1", 1, 5), ("t1", 1, 6), ("t2", 0, 5)]
        updates = [q for q in seen if q.lstrip().upper().startswith("UPDATE")]
        assert len(updates) == 4  # one per party / partition
        for query in updates:  # a search of the natural-key index, not a scan of the table
            plan = " ".join(str(r) for r in s.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + query, ("x",) * query.count("?")))
            assert "SEARCH" in plan and "SCAN" not in plan, plan


def test_copy_types_of_the_worker_tables_are_their_postgresql_types():
    """insert_rows' binary COPY (cdrs, sessions, session_messages) types each column as the
    model does on PostgreSQL; for events they are the ones insert_event_rows gives."""
    from storage.models import CdrRecord, EventRecord, SessionMessagesRecord, SessionRecord

    assert repo.copy_types(EventRecord.__table__, repo.EVENT_COLUMNS) == repo._EVENT_PG_TYPES
    cdrs = CdrRecord.__table__
    assert dict(zip(repo.CDR_COLUMNS, repo.copy_types(cdrs, repo.CDR_COLUMNS))) == {
        "country_code": "varchar", "party_id": "varchar", "id": "varchar", "start_date_time": "timestamptz",
        "end_date_time": "timestamptz", "currency": "varchar", "total_cost_excl_vat": "numeric",
        "total_cost_incl_vat": "numeric", "total_energy": "numeric", "total_time": "numeric",
        "total_parking_time": "numeric", "credit": "bool", "credit_reference_id": "varchar",
        "emsp_country_code": "varchar", "emsp_party_id": "varchar", "location_id": "varchar", "evse_uid": "varchar",
        "tariff_id": "varchar", "tariff_version": "timestamptz", "last_updated": "timestamptz",
        "session_key": "varchar", "cdr_json": "text", "content_hash": "varchar", "published": "bool"}
    sessions = [c.name for c in SessionRecord.__table__.c]
    assert dict(zip(sessions, repo.copy_types(SessionRecord.__table__, sessions))) == {
        "session_key": "varchar", "charge_point_id": "varchar", "transaction_id": "varchar", "ocpp_version": "varchar",
        "status": "varchar", "started_at": "timestamptz", "ended_at": "timestamptz", "state_head_json": "text",
        "event_count": "int4", "cdr_id": "varchar", "last_event_at": "timestamptz", "version": "int4"}
    messages = [c.name for c in SessionMessagesRecord.__table__.c]
    assert repo.copy_types(SessionMessagesRecord.__table__, messages) == ("varchar", "int4", "text")

