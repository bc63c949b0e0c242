"""The worker's driver-level SQL (storage.repositories.driver_sql and its users) stores and
reads exactly what the SQLAlchemy Core statements it replaced store and read. On SQLite here;
tests/integration/test_driver_sql_pg.py runs the same checks on the real PostgreSQL server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter
from sqlalchemy import bindparam, or_, select, text, update

from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import SessionMessagesRecord, SessionRecord
from streams import billing
from streams.billing import SqlSessionStore, _SessionRow

UTC = timezone.utc
SESSIONS = SessionRecord.__table__
SESSION_COLUMNS = [c.name for c in SESSIONS.c]
MESSAGES = SessionMessagesRecord.__table__
MESSAGES_COLUMNS = [c.name for c in MESSAGES.c]

#: Times a session row holds, in every form a state may carry them: aware UTC
#: (timezone.utc and pydantic's own UTC tzinfo), with and without microseconds, other
#: offsets (a zone at offset 0 that is not UTC, the same zone in summer), naive (taken as
#: UTC), the smallest datetime, None.
TIMES = [
    datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
    TypeAdapter(datetime).validate_python("2026-03-01T08:00:00.123456Z"),
    datetime(2026, 3, 1, 10, 30, 0, 500000, tzinfo=timezone(timedelta(hours=2, minutes=30))),
    datetime(2026, 1, 15, 9, 0, 0, 5, tzinfo=ZoneInfo("Europe/London")),
    datetime(2026, 7, 15, 9, 0, 0, 5, tzinfo=ZoneInfo("Europe/London")),
    datetime(2026, 3, 1, 23, 59, 59, 1),
    datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    None,
]


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def _state(key: str, i: int, end: datetime | None = None) -> SimpleNamespace:
    """What SqlSessionStore._write_rows reads of a SessionState; with ``end``: issued, its
    transaction ended then (what billing._end_of finds)."""
    cp, _, tx = key.partition("/")
    return SimpleNamespace(
        session_id=key, charge_point_id=cp, transaction_id=tx, ocpp_version=("1.6", "2.0.1", "2.1")[i % 3],
        status=("open", "completed", "incomplete")[i % 3], start_timestamp=TIMES[i % len(TIMES)],
        last_received_at=TIMES[(i + 1) % len(TIMES)], messages=[None] * i,
        issued=[SimpleNamespace(cdr_id=f"CDR{i}")] if end else [], closed_idle=None,
        events=lambda: [SimpleNamespace(type="TransactionEnded", timestamp=end)],
        head_json=lambda: f'{{"k": "{key[4:]}", "\u00e9": {i}}}',
        messages_json=lambda start=0: "[" + ",".join(f'"{key[4:]}:\u00e9{j}"' for j in range(start, i)) + "]",
    )


def _end(i: int) -> datetime | None:
    return TIMES[(i // 2) % len(TIMES)] if i % 2 else None


def _core_values(state: SimpleNamespace, ended_at: datetime | None) -> dict:
    """The row the replaced Core statements wrote for ``state``."""
    return dict(status=state.status, started_at=state.start_timestamp, ended_at=ended_at,
                state_head_json=state.head_json(), event_count=len(state.messages),
                cdr_id=state.issued[-1].cdr_id if state.issued else None, last_event_at=state.last_received_at)


def _stored(sessions, prefix: str) -> list[tuple]:
    """The stored rows whose key starts with ``prefix`` (key without it), as the driver reads
    them back; on SQLite with each value's storage class (TEXT / INTEGER / NULL)."""
    with sessions() as s:
        if s.get_bind().dialect.name == "sqlite":
            columns = ", ".join(f'typeof("{c}"), "{c}"' for c in SESSION_COLUMNS)
        else:
            columns = ", ".join(f'"{c}"' for c in SESSION_COLUMNS)
        rows = s.execute(text(f"SELECT {columns} FROM sessions WHERE session_key LIKE :p ORDER BY session_key"),
                         {"p": prefix + "%"})
        stored = [tuple(v.removeprefix(prefix) if isinstance(v, str) else v for v in row) for row in rows]
        if s.get_bind().dialect.name == "sqlite":
            columns = ", ".join(f'typeof("{c}"), "{c}"' for c in MESSAGES_COLUMNS)
        else:
            columns = ", ".join(f'"{c}"' for c in MESSAGES_COLUMNS)
        rows = s.execute(text(f"SELECT {columns} FROM session_messages WHERE session_key LIKE :p "
                              "ORDER BY session_key, first_index"), {"p": prefix + "%"})
        return stored + [tuple(v.removeprefix(prefix) if isinstance(v, str) else v for v in row) for row in rows]


def _core_messages(state: SimpleNamespace, stored: int) -> list[dict]:
    """The session_messages row the store appends for ``state`` when ``stored`` are stored."""
    if len(state.messages) <= stored:
        return []
    return [dict(session_key=state.session_id, first_index=stored, messages_json=state.messages_json(stored))]


def session_rows_both_ways(sessions) -> None:
    """Session rows (and their appended messages) inserted, then updated, through the Core
    statements (keys "drvA...") and through SqlSessionStore._write_rows (keys "drvB..."): the
    stored rows are equal (versions 1, then 2), and the store reads back what the model reads."""
    n = len(TIMES) * 2
    states = {p: [_state(f"{p}CP{i % 4}/{i}", i, _end(i)) for i in range(n)] for p in ("drvA", "drvB")}
    with sessions.begin() as s:
        s.execute(SESSIONS.insert(), [dict(_core_values(st, _end(i)), session_key=st.session_id,
                                           charge_point_id=st.charge_point_id, transaction_id=st.transaction_id,
                                           ocpp_version=st.ocpp_version, version=1)
                                      for i, st in enumerate(states["drvA"])])
        s.execute(MESSAGES.insert(), [row for st in states["drvA"] for row in _core_messages(st, 0)])
        store = SqlSessionStore(s, timedelta(hours=1))
        for st in states["drvB"]:
            store.records[st.session_id] = None  # no row yet
            store.cache[st.session_id] = st
        store._write_rows([st.session_id for st in states["drvB"]])
    assert _stored(sessions, "drvA") == _stored(sessions, "drvB") != []

    # Updates: the ended_at read back from the row is written back as it was; new times,
    # new JSON, another message count.
    with sessions.begin() as s:
        updated = {p: [_state(st.session_id, i + 1, _end(i)) for i, st in enumerate(states[p])] for p in states}
        s.execute(update(SESSIONS).where(SESSIONS.c.session_key == bindparam("key_")).values(
            {c: bindparam(c) for c in ("status", "started_at", "ended_at", "state_head_json", "event_count", "cdr_id",
                                       "last_event_at")} | {"version": SESSIONS.c.version + 1}),
            [dict(_core_values(st, _end(i)), key_=st.session_id) for i, st in enumerate(updated["drvA"])])
        s.execute(MESSAGES.insert(), [row for i, st in enumerate(updated["drvA"]) for row in _core_messages(st, i)])
        store = SqlSessionStore(s, timedelta(hours=1))
        store.prefetch(st.session_id for st in updated["drvB"])
        for key, row in store.records.items():  # what the model reads of the row
            model = s.get(SessionRecord, key)
            assert row == _SessionRow(model.session_key, model.version, model.ended_at, model.event_count,
                                      model.state_head_json)
            assert row.version == 1
        assert sum(row.ended_at is not None for row in store.records.values()) == len(TIMES) - 1
        for st in updated["drvB"]:
            store.cache[st.session_id] = st
        store._write_rows([st.session_id for st in updated["drvB"]])
    assert _stored(sessions, "drvA") == _stored(sessions, "drvB") != []


def test_session_rows_in_driver_form_store_what_core_stores(db):
    session_rows_both_ways(db)


def session_queries_read_what_core_reads(sessions) -> None:
    """The store's row queries (open, open of a charge point, open or recent of a charge
    point) select the rows the Core queries they replaced selected, the boundary included."""
    since = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    rows = []
    for i, (status, last) in enumerate([("open", None), ("open", since - timedelta(days=1)),
                                         ("completed", since), ("completed", since - timedelta(microseconds=1)),
                                         ("incomplete", since + timedelta(microseconds=1)), ("completed", None)]):
        for cp in ("drvQ1", "drvQ2"):
            rows.append(dict(session_key=f"{cp}/{i}", charge_point_id=cp, transaction_id=str(i), ocpp_version="1.6",
                             status=status, started_at=None, ended_at=last, state_head_json="{}", event_count=0,
                             cdr_id=None, last_event_at=last))
    core = select(SESSIONS.c.session_key, SESSIONS.c.version, SESSIONS.c.ended_at, SESSIONS.c.event_count,
                  SESSIONS.c.state_head_json)
    with sessions.begin() as s:
        s.execute(SESSIONS.insert(), rows)
    with sessions() as s:
        store = SqlSessionStore(s, timedelta(hours=1))

        def keys(found):
            return sorted(r.session_key for r in found if r.session_key.startswith("drvQ"))

        def core_keys(query, **params):
            return keys(_SessionRow(*r) for r in s.execute(query, params))

        open_ = core.where(SESSIONS.c.status == "open")
        assert keys(store._rows(billing._ROWS_OPEN)) == core_keys(open_) == [
            "drvQ1/0", "drvQ1/1", "drvQ2/0", "drvQ2/1"]
        assert keys(store._rows(billing._ROWS_OPEN_OF, cp="drvQ2")) == core_keys(
            open_.where(SESSIONS.c.charge_point_id == "drvQ2")) == ["drvQ2/0", "drvQ2/1"]
        recent = core.where(SESSIONS.c.charge_point_id == bindparam("cp"), or_(
            SESSIONS.c.status == "open",
            SESSIONS.c.last_event_at >= bindparam("since", type_=SESSIONS.c.last_event_at.type)))
        for at in (since, since.astimezone(timezone(timedelta(hours=-5))), since.replace(tzinfo=None)):
            assert keys(store._rows(billing._ROWS_RECENT_OF, cp="drvQ1", since=at)) == core_keys(
                recent, cp="drvQ1", since=at) == ["drvQ1/0", "drvQ1/1", "drvQ1/2", "drvQ1/4"]
        found = store._rows(billing._ROWS_BY_KEYS, keys=["drvQ1/2", "drvQ2/5", "nothing"])
        assert sorted(found, key=repr) == sorted((_SessionRow(*r) for r in s.execute(
            core.where(SESSIONS.c.session_key.in_(["drvQ1/2", "drvQ2/5", "nothing"])))), key=repr)
        assert {r.session_key: r.ended_at for r in found} == {"drvQ1/2": since, "drvQ2/5": None}

        # A batch's prefetch: the open rows of several charge points in one query, per charge
        # point the rows _ROWS_OPEN_OF reads (ended_at read alike), none for one without any;
        # outside a batch (rows written per envelope) nothing is read ahead.
        batch = SqlSessionStore(s, timedelta(hours=1), defer_cdrs=True)
        batch.prefetch([], ["drvQ1", "drvQ2", "drvQ3"])
        for cp in ("drvQ1", "drvQ2", "drvQ3"):
            assert sorted(batch.open_rows[cp]) == sorted(store._rows(billing._ROWS_OPEN_OF, cp=cp))
        assert sorted(r.session_key for r in batch.open_rows["drvQ1"]) == ["drvQ1/0", "drvQ1/1"]
        assert batch.open_rows["drvQ3"] == []
        assert {r.session_key: r.ended_at for r in batch.open_rows["drvQ2"]} == {
            "drvQ2/0": None, "drvQ2/1": since - timedelta(days=1)}
        single = SqlSessionStore(s, timedelta(hours=1))
        single.prefetch([], ["drvQ1"])
        assert single.open_rows == {}


def test_session_queries_read_what_core_reads(db):
    session_queries_read_what_core_reads(db)


# --- CDR rows, tracking ------------------------------------------------------------------------


def _cdrs(party: str) -> list[dict]:
    """CDR rows as Billing builds them, and sparser ones as other callers may pass (columns
    left out: NULL, or the model's default for ``credit``)."""
    rows = []
    for i, at in enumerate(TIMES[:-1] * 2):
        rows.append(dict(
            country_code="NL", party_id=party, id=f"C{i}", start_date_time=at,
            end_date_time=at + timedelta(hours=1, microseconds=7), currency="EUR",
            total_cost_excl_vat=Decimal("12345678901234.5678") if i == 0 else Decimal(f"{i}.{i:04d}"),
            total_cost_incl_vat=None if i % 3 == 0 else Decimal("0.0001") * i, total_energy=Decimal("20.123456"),
            total_time=Decimal("1.5"), total_parking_time=None if i % 2 else Decimal("0.000001"),
            credit=bool(i % 2), credit_reference_id=f"C{i - 1}" if i % 2 else None, emsp_country_code="DE",
            emsp_party_id="EMP", location_id="LOC1", evse_uid=f"E{i}", tariff_id="T1",
            tariff_version=None if i % 4 == 0 else at + timedelta(minutes=30), last_updated=at + timedelta(hours=2),
            session_key=f"CP/{i}", cdr_json=f'{{"id": "C{i}", "\u00e9": {i}}}'))
    rows.append(dict(country_code="NL", party_id=party, id="SPARSE", start_date_time=TIMES[0],
                     end_date_time=TIMES[1], currency="EUR", total_cost_excl_vat=Decimal("1"),
                     total_energy=Decimal("2"), last_updated=TIMES[2], cdr_json="{}"))
    return rows


def cdr_rows_both_ways(sessions) -> None:
    """CDRs inserted through the Core insert issue_cdrs used (party "ZDA") and through
    issue_cdrs (party "ZDB"): the stored rows are equal (pk and party apart), and the model
    reads back the values given (Decimal, aware UTC)."""
    from storage import repositories as repo
    from storage.models import CdrRecord

    table = CdrRecord.__table__
    with sessions.begin() as s:
        core = _cdrs("ZDA")
        for row in core:
            row.update(content_hash=repo.content_hash(row["cdr_json"]), published=False)
        s.execute(table.insert(), core[:-1])
        s.execute(table.insert(), core[-1:])  # (Core executemany needs the same keys in every row)
        assert len(repo.issue_cdrs(s, _cdrs("ZDB"))) == len(core)
    columns = [c.name for c in table.c if c.name not in ("pk", "party_id")]
    with sessions() as s:
        def stored(party):
            if s.get_bind().dialect.name == "sqlite":
                typed = ", ".join(f'typeof("{c}"), "{c}"' for c in columns)
            else:
                typed = ", ".join(f'"{c}"' for c in columns)
            return [tuple(r) for r in s.execute(text(f"SELECT {typed} FROM cdrs WHERE party_id = :p ORDER BY pk"),
                                                {"p": party})]
        assert stored("ZDA") == stored("ZDB") != []
        back = s.scalars(select(CdrRecord).where(CdrRecord.party_id == "ZDB").order_by(CdrRecord.pk)).all()
        for given, model in zip(_cdrs("ZDB"), back):
            for name, value in given.items():
                if name in ("start_date_time", "end_date_time", "tariff_version", "last_updated") and value:
                    value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
                if name == "total_cost_excl_vat" and value > 10**12 and s.get_bind().dialect.name == "sqlite":
                    continue  # SQLAlchemy binds Numeric as a float on SQLite: 18 digits do not survive that
                assert getattr(model, name) == value, name
        assert back[-1].credit is False and back[-1].published is False and back[-1].total_time is None


def test_cdr_rows_in_driver_form_store_what_core_stores(db):
    cdr_rows_both_ways(db)


def test_locked_positions_are_the_stored_offsets_of_those_partitions(db):
    from storage import repositories as repo

    with db.begin() as s:
        repo.track_many(s, "g", {("t", 0): 10, ("t", 1): 3, ("t", 7): 1, ("u", 0): 99})
        repo.track_many(s, "h", {("t", 0): 55})
    with db.begin() as s:
        assert repo.locked_positions(s, "g", "t", {0, 1, 2}) == {0: 10, 1: 3}
        assert repo.locked_positions(s, "g", "t", [7]) == {7: 1}
        assert repo.locked_positions(s, "g", "u", {0, 1}) == {0: 99}
        assert repo.locked_positions(s, "x", "t", {0}) == {}


# --- indexes of the events table ---------------------------------------------------------


def test_events_have_only_the_indexes_their_queries_use(tmp_path):
    """Every raw event pays for each index of ``events``: the migrated table has the unique
    (topic, partition, offset) one only, like the model; downgrading 0101 restores the two
    it dropped; the queries on ``events`` (replay's) search that index."""
    from alembic import command
    from sqlalchemy import event, inspect

    from storage.db import alembic_config
    from storage.models import EventRecord
    from storage.repositories import stored_events
    from streams import replay

    url = f"sqlite:///{tmp_path / 'ix.db'}"
    upgrade(url)
    engine = make_engine(url)
    assert inspect(engine).get_indexes("events") == []
    assert [sorted(c["column_names"]) for c in inspect(engine).get_unique_constraints("events")] == [
        ["offset", "partition", "topic"]]
    assert not EventRecord.__table__.indexes
    command.downgrade(alembic_config(url), "0100_pipeline")
    assert sorted(ix["name"] for ix in inspect(engine).get_indexes("events")) == [
        "ix_events_charge_point_id_message_id", "ix_events_session_key"]
    upgrade(url)
    assert inspect(engine).get_indexes("events") == []

    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        list(stored_events(s, "t"))
    replay.compare(sessions, sessions, replay.ReplayReport(), "t")
    queries = [q for q in seen if "FROM events" in q]
    assert len(queries) == 2
    with engine.connect() as c:
        for query in queries:
            plan = " ".join(str(r) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + query,
                                                               ("x",) * query.count("?")))
            assert "SEARCH events USING INDEX sqlite_autoindex_events_1" in plan, plan
