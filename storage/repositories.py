"""Repositories of the pipeline tables: plain functions over a SQLAlchemy ``Session``.

None of these functions commits: the caller (the stream worker's unit of work) decides
what commits together. For the exactly-once effect the worker writes, in ONE transaction,
the raw events, the session states, the CDRs, the dead letters, the counters and the
tracking record (the next offset per partition) of a batch of Kafka records.

Works on SQLite and PostgreSQL (upserts use each dialect's ``ON CONFLICT``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import Select, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from storage.models import (
    CdrRecord,
    DeadLetterRecord,
    EventRecord,
    PipelineCounter,
    SessionRecord,
    TariffRecord,
    TrackingRecord,
)
from storage.types import UtcDateTimeType

COUNTER_NAMES = ("events_in", "applied", "dead_lettered", "duplicates")


#: Outbox rows read at a time (unpublished CDRs / dead letters).
OUTBOX_PAGE = 1000

# Statements of the worker's hot path, built once (Core: no ORM bulk processing).
_INSERT_EVENT = EventRecord.__table__.insert()
_INSERT_DEAD_LETTER = DeadLetterRecord.__table__.insert()
_CDRS = CdrRecord.__table__
#: The columns of an issued CDR row, in the order of :func:`issue_cdrs`' driver-level tuples,
#: and the model's defaults of those a row may leave out (as the Core insert applied them).
CDR_COLUMNS = tuple(c.name for c in _CDRS.c if c.name != "pk")
_CDR_DEFAULTS = {c.name: c.default.arg for c in _CDRS.c if c.default is not None and c.default.is_scalar}


def content_hash(document: str | bytes) -> str:
    """SHA-256 hex digest of a CDR's JSON as published (UTF-8 bytes)."""
    if isinstance(document, str):
        document = document.encode()
    return hashlib.sha256(document).hexdigest()


# --- tracking (exactly-once) -------------------------------------------------------------


def tracked_offsets(session: Session, consumer_group: str, topic: str) -> dict[int, int]:
    """Next offset to consume per partition, as stored with the effects before it."""
    rows = session.execute(
        select(TrackingRecord.partition, TrackingRecord.offset).where(
            TrackingRecord.consumer_group == consumer_group, TrackingRecord.topic == topic
        )
    )
    return {p: o for p, o in rows}


def locked_positions(session: Session, consumer_group: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """The stored next offsets of these partitions of ``topic`` (those with a tracking row),
    read at the driver level and locked ``FOR UPDATE`` on PostgreSQL until the transaction
    ends: a second worker applying the same partitions waits, then sees the new offsets."""
    partitions = sorted(partitions)
    dialect = session.get_bind().dialect
    lock = " FOR UPDATE" if dialect.name == "postgresql" else ""
    sql = driver_sql(dialect, f"tracking.positions:{len(partitions)}", lambda quote, mark: (
        f"SELECT {quote('partition')}, {quote('offset')} FROM {quote(TrackingRecord.__tablename__)} "
        f"WHERE {quote('consumer_group')} = {mark} AND {quote('topic')} = {mark} "
        f"AND {quote('partition')} IN ({marks(mark, len(partitions))}){lock}"))
    return {p: o for p, o in query_rows(session, sql, (consumer_group, topic, *partitions))}


def track(session: Session, consumer_group: str, topic: str, partition: int, next_offset: int) -> None:
    """Record that every record of the partition before ``next_offset`` has taken effect."""
    track_many(session, consumer_group, {(topic, partition): next_offset})


def track_many(session: Session, consumer_group: str, next_offsets: dict[tuple[str, int], int]) -> None:
    """:func:`track` for several (topic, partition) -> next offset: one driver-level upsert
    executed for all (see :func:`driver_sql`)."""
    if next_offsets:
        execute_rows(session, driver_sql(session.get_bind().dialect, "tracking.upsert", _TRACK_UPSERT), [
            (consumer_group, topic, partition, offset) for (topic, partition), offset in sorted(next_offsets.items())
        ])


def _upsert_sql(table, columns: Sequence[str], keys: Sequence[str], set_: Callable[[Callable[[str], str]], str]):
    """The :func:`driver_sql` builder of ``INSERT ... ON CONFLICT (keys) DO UPDATE SET ...``
    (the same text on SQLite >= 3.24 and PostgreSQL)."""
    def build(quote: Callable[[str], str], mark: str) -> str:
        return (f"{insert_sql(table, columns)(quote, mark)} ON CONFLICT ({', '.join(map(quote, keys))}) "
                f"DO UPDATE SET {set_(quote)}")
    return build


_TRACK_UPSERT = _upsert_sql(TrackingRecord.__table__, ("consumer_group", "topic", "partition", "offset"),
                            ("consumer_group", "topic", "partition"),
                            lambda q: f"{q('offset')} = excluded.{q('offset')}")
_COUNTER_UPSERT = _upsert_sql(PipelineCounter.__table__, ("consumer_group", "name", "value"), ("consumer_group", "name"),
                              lambda q: f"{q('value')} = {q(PipelineCounter.__tablename__)}.{q('value')} "
                                        f"+ excluded.{q('value')}")


# --- counters -----------------------------------------------------------------------------


def add_to_counters(session: Session, consumer_group: str, deltas: dict[str, int]) -> None:
    """Add ``deltas`` to the group's counters: one driver-level upsert executed for all (see
    :func:`track_many`)."""
    rows = [(consumer_group, name, delta) for name, delta in deltas.items() if delta]
    if rows:
        execute_rows(session, driver_sql(session.get_bind().dialect, "counters.upsert", _COUNTER_UPSERT), rows)


def read_counters(session: Session, consumer_group: str | None = None) -> dict[str, int]:
    """events_in / applied / dead_lettered / duplicates (summed over groups when None)."""
    query = select(PipelineCounter.name, func.sum(PipelineCounter.value)).group_by(PipelineCounter.name)
    if consumer_group is not None:
        query = query.where(PipelineCounter.consumer_group == consumer_group)
    counters = {name: 0 for name in COUNTER_NAMES}
    counters.update({name: int(value) for name, value in session.execute(query)})
    return counters


# --- events and dead letters --------------------------------------------------------------


def add_event(session: Session, **fields: Any) -> EventRecord:
    record = EventRecord(**fields)
    session.add(record)
    return record


def add_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert raw events (column -> value, as the model takes them) in one executemany.
    The worker's hot path uses :func:`insert_event_rows` (rows already in driver form)."""
    if rows:
        session.execute(_INSERT_EVENT, rows)


#: The columns of a raw event row, in the order of the tuples :func:`insert_event_rows` takes.
EVENT_COLUMNS = ("topic", "partition", "offset", "charge_point_id", "message_id", "ocpp_version", "action",
                 "received_at", "raw", "outcome", "reason", "session_key")
#: Their PostgreSQL types, for the binary COPY (its rows carry no type information: each
#: value must be in the binary form of its column's type; tested against the model).
_EVENT_PG_TYPES = ("varchar", "int4", "int8", "varchar", "varchar", "varchar", "varchar",
                   "timestamptz", "bytea", "varchar", "text", "varchar")


_NO_OFFSET = timedelta(0)


def _sqlite_utc(value: datetime | None) -> str | None:
    """``received_at`` as :class:`storage.types.UtcDateTimeType` stores it on SQLite: naive
    UTC (a naive value is taken as UTC), in SQLAlchemy's SQLite DATETIME text form
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (always 6 fraction digits), written by :func:`_sqlite_text`
    (what :func:`_sqlite_utc_isoformat` writes)."""
    if value is None:
        return None
    if value.__class__ is not datetime:  # a subclass may format itself otherwise
        return _sqlite_utc_isoformat(value)
    tz = value.tzinfo
    if tz is None or tz is timezone.utc or value.utcoffset() == _NO_OFFSET:
        # naive, an envelope's (see EventEnvelope), pydantic's UTC, any zone at offset 0:
        # the UTC wall time already
        return _sqlite_text(value)
    return _sqlite_text(value.astimezone(timezone.utc))


def _sqlite_utc_isoformat(value: datetime) -> str:
    """:func:`_sqlite_utc` through ``isoformat`` (datetime subclasses; the reference of the
    fast path in tests/unit/test_repositories_fast.py)."""
    tz = value.tzinfo
    if tz is timezone.utc or (tz is not None and value.utcoffset() == _NO_OFFSET):
        return value.isoformat(" ", "microseconds")[:26]  # a 4-digit year: 26 characters before "+00:00"
    if tz is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


#: "00" .. "59" (hours, minutes, seconds of a datetime).
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
#: date ordinal -> "YYYY-MM-DD " (datetime.toordinal); emptied when full.
_SQLITE_DAYS: dict[int, str] = {}


def _sqlite_text(value: datetime) -> str:
    """``value.isoformat(" ", "microseconds")`` without its UTC offset (the first 26
    characters): ``YYYY-MM-DD HH:MM:SS.ffffff``. Issue 4: ``isoformat`` formats through
    ``PyUnicode_FromFormat`` (~13k instructions); the day text comes from a small memo and
    the clock from a table (~6k). tests/unit/test_repositories_fast.py compares both."""
    ordinal = value.toordinal()
    day = _SQLITE_DAYS.get(ordinal)
    if day is None:
        if len(_SQLITE_DAYS) >= 4096:
            _SQLITE_DAYS.clear()
        day = _SQLITE_DAYS[ordinal] = value.date().isoformat() + " "
    two = _TWO_DIGITS
    return f"{day}{two[value.hour]}:{two[value.minute]}:{two[value.second]}.{value.microsecond:06d}"


def _postgresql_utc(value: datetime | None) -> datetime | None:
    """``received_at`` for a ``timestamptz`` column: aware (a naive value is taken as UTC,
    as :class:`storage.types.UtcDateTimeType` does); the server stores the instant."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def utc_binder(dialect) -> Callable[[datetime | None], Any]:
    """The function that puts a value of a UtcDateTime column into the driver's form."""
    return _sqlite_utc if dialect.name == "sqlite" else _postgresql_utc


def event_time_binder(session: Session) -> Callable[[datetime | None], Any]:
    """The function that puts a ``received_at`` into the driver form
    :func:`insert_event_rows` expects on the session's database."""
    return utc_binder(session.get_bind().dialect)


def insert_event_rows(session: Session, rows: list[tuple]) -> None:
    """Insert raw events given as tuples in :data:`EVENT_COLUMNS` order, already in driver
    form (``received_at`` through :func:`event_time_binder`), in the session's transaction.

    The values stored are those of :func:`add_events`, without SQLAlchemy's per-row
    parameter processing (~5 µs per row): on SQLite one driver-level executemany; on
    PostgreSQL one binary ``COPY ... FROM STDIN`` on the transaction's connection (~1.5 µs
    of client CPU per row against ~9 for a pipelined executemany, and less server work).
    Errors come out as SQLAlchemy's (``IntegrityError``, ``OperationalError``, ...), and a
    lost connection is invalidated as SQLAlchemy does.
    """
    insert_rows(session, EventRecord.__table__, EVENT_COLUMNS, rows, _EVENT_PG_TYPES)


def insert_rows(session: Session, table, columns: Sequence[str], rows: Sequence[tuple],
                pg_types: Sequence[str] | None = None) -> None:
    """Insert ``rows`` (tuples in ``columns`` order, in driver form: see :func:`row_binders`)
    into ``table`` in the session's transaction: on SQLite one driver-level executemany of
    an INSERT; on PostgreSQL one binary ``COPY table (columns) FROM STDIN``, which stores
    the same values (the columns left out get their defaults, as in an INSERT) with a
    fraction of the client and server work per row of a pipelined executemany (issue 4:
    2,800 ``session_messages`` rows 145 -> 77 ms, client CPU 30 -> 10 ms). ``pg_types``:
    the PostgreSQL type of each column (the binary rows carry none), by default
    :func:`copy_types` of the model (each value must be of its column's Python type: a
    NUMERIC takes a Decimal or an int, never a float). Errors come out as SQLAlchemy's (``IntegrityError``,
    ``OperationalError``, ...), and a lost connection is invalidated as SQLAlchemy does."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        connection.exec_driver_sql(driver_sql(dialect, f"{table.name}.insert:{','.join(columns)}",
                                              insert_sql(table, columns)), rows)
        return
    key = (table.name, tuple(columns))
    statement = _COPY_SQL.get(key)
    if statement is None:
        quote = dialect.identifier_preparer.quote
        statement = _COPY_SQL[key] = (f"COPY {dialect.identifier_preparer.format_table(table)} "
                                      f"({', '.join(map(quote, columns))}) FROM STDIN (FORMAT BINARY)")
    if pg_types is None:
        pg_types = copy_types(table, columns)
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            copy.set_types(pg_types)
            write = copy.write_row
            for row in rows:
                write(row)
    except dialect.loaded_dbapi.Error as exc:
        disconnect = dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
        if disconnect:
            connection.invalidate(exc)
        raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error,
                                  connection_invalidated=disconnect, dialect=dialect) from exc
    finally:
        cursor.close()


#: (table name, columns) -> the binary COPY statement of :func:`insert_rows` (PostgreSQL).
_COPY_SQL: dict[tuple[str, tuple[str, ...]], str] = {}
#: The PostgreSQL type name (psycopg's) of each SQL type the model's columns compile to.
_PG_COPY_TYPES = {"VARCHAR": "varchar", "TEXT": "text", "INTEGER": "int4", "BIGINT": "int8", "NUMERIC": "numeric",
                  "BOOLEAN": "bool", "BYTEA": "bytea", "TIMESTAMP WITH TIME ZONE": "timestamptz"}
_COPY_TYPES: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}


def copy_types(table, columns: Sequence[str]) -> tuple[str, ...]:
    """The PostgreSQL type names of these columns of the model, for a binary COPY (a type
    modifier such as ``NUMERIC(18, 4)``'s scale is the column's: the server applies it)."""
    key = (table.name, tuple(columns))
    types = _COPY_TYPES.get(key)
    if types is None:
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.dialect()
        types = _COPY_TYPES[key] = tuple(
            _PG_COPY_TYPES[table.c[c].type.compile(dialect).split("(")[0]] for c in columns)
    return types


# --- driver-level statements (the worker's per-batch reads and writes) -----------------------
#
# The statements a batch runs are executed with ``Connection.exec_driver_sql``: the SQL text
# is built once per driver, the parameters are tuples already in the driver's form, the
# result rows come back as the driver returns them. That skips SQLAlchemy's per-statement
# work (ORM session dispatch, cached compile lookup, expanding IN rendering) and per-row work
# (a dict per row, construct_params, type processors through TypeDecorator), ~60-100 µs
# per statement and ~5-10 µs per row, while errors still come out as SQLAlchemy's
# (``IntegrityError``, ``OperationalError``, ...) and a lost connection is invalidated.
# Values are bound with the column types' own bind processors (UtcDateTime through
# :func:`utc_binder`, tested equal), so the rows stored are those of the Core statements.


def driver_sql(dialect, name: str, build: Callable[[Callable[[str], str], str], str]) -> str:
    """The SQL text ``build(quote, mark)`` for the dialect's driver, built once per (driver,
    ``name``): ``quote`` quotes an identifier, ``mark`` is the driver's positional
    parameter marker (sqlite3 ``?``, psycopg ``%s``)."""
    key = (dialect.name, dialect.driver, name)
    sql = _DRIVER_SQL.get(key)
    if sql is None:
        if dialect.paramstyle == "qmark":
            mark = "?"
        elif dialect.paramstyle in ("format", "pyformat"):
            mark = "%s"
        else:  # pragma: no cover - sqlite3 and psycopg are the drivers we support
            raise NotImplementedError(f"driver-level SQL for paramstyle {dialect.paramstyle}")
        sql = _DRIVER_SQL[key] = build(dialect.identifier_preparer.quote, mark)
    return sql


_DRIVER_SQL: dict[tuple[str, str, str], str] = {}


def marks(mark: str, count: int) -> str:
    """``count`` parameter markers separated by commas (an IN list, a VALUES row)."""
    return ", ".join([mark] * count)


def insert_sql(table, columns: Sequence[str]) -> Callable[[Callable[[str], str], str], str]:
    """The :func:`driver_sql` builder of ``INSERT INTO table (columns) VALUES (...)``."""
    return lambda quote, mark: (f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) "
                                f"VALUES ({marks(mark, len(columns))})")


def update_sql(table, columns: Sequence[str], keys: Sequence[str]) -> Callable[[Callable[[str], str], str], str]:
    """The :func:`driver_sql` builder of ``UPDATE table SET columns WHERE keys`` (parameters:
    the columns', then the keys')."""
    def build(quote: Callable[[str], str], mark: str) -> str:
        assignments = ", ".join(f"{quote(c)} = {mark}" for c in columns)
        where = " AND ".join(f"{quote(c)} = {mark}" for c in keys)
        return f"UPDATE {quote(table.name)} SET {assignments} WHERE {where}"
    return build


def execute_rows(session: Session, sql: str, rows: Sequence[tuple]) -> None:
    """Execute ``sql`` once per row (one executemany) in the session's transaction."""
    if rows:
        session.connection().exec_driver_sql(sql, rows)


def query_rows(session: Session, sql: str, params: tuple = ()) -> list[tuple]:
    """The rows of a driver-level query, as the driver returns them."""
    return session.connection().exec_driver_sql(sql, params).fetchall()


def row_binders(dialect, table, columns: Sequence[str]) -> tuple:
    """Per column, the function that puts a value into the driver's form (None: as is): the
    column type's bind processor, UtcDateTime columns through :func:`utc_binder`."""
    key = (dialect.name, dialect.driver, table.name, tuple(columns))
    binders = _BINDERS.get(key)
    if binders is None:
        utc = utc_binder(dialect)
        binders = _BINDERS[key] = tuple(
            utc if isinstance(table.c[c].type, UtcDateTimeType) else
            table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
    return binders


_BINDERS: dict[tuple, tuple] = {}


def bound_row(binders: tuple, values: Iterable[Any]) -> tuple:
    """``values`` (in the binders' column order) in driver form."""
    return tuple([value if bind is None or value is None else bind(value) for bind, value in zip(binders, values)])


def add_dead_letter(session: Session, **fields: Any) -> DeadLetterRecord:
    fields.setdefault("published", False)
    record = DeadLetterRecord(**fields)
    session.add(record)
    return record


def add_dead_letters(session: Session, letters: Sequence[dict[str, Any]]) -> None:
    """:func:`add_dead_letter` for several (column -> value; not changed), in order, in one
    Core executemany: no ORM object per letter, no flush (the rows are not read back)."""
    if letters:
        session.execute(_INSERT_DEAD_LETTER, [dict(letter, published=letter.get("published", False))
                                              for letter in letters])


def unpublished_dead_letters(session: Session, limit: int = OUTBOX_PAGE) -> Sequence[DeadLetterRecord]:
    return session.scalars(
        select(DeadLetterRecord).where(DeadLetterRecord.published.is_(False)).order_by(DeadLetterRecord.pk).limit(limit)
    ).all()


def stored_events(session: Session, topic: str | None = None, batch: int = 5000) -> Iterable[EventRecord]:
    """Every stored raw event in log order (partition, offset), streamed in batches."""
    last: tuple[int, int] = (-1, -1)
    while True:
        query = select(EventRecord).order_by(EventRecord.partition, EventRecord.offset).limit(batch)
        if topic is not None:
            query = query.where(EventRecord.topic == topic)
        query = query.where(
            or_(
                EventRecord.partition > last[0],
                and_(EventRecord.partition == last[0], EventRecord.offset > last[1]),
            )
        )
        rows = session.scalars(query).all()
        if not rows:
            return
        yield from rows
        last = (rows[-1].partition, rows[-1].offset)


# --- sessions -------------------------------------------------------------------------------


def get_session(session: Session, session_key: str) -> SessionRecord | None:
    return session.get(SessionRecord, session_key)


def open_sessions(session: Session) -> Sequence[SessionRecord]:
    return session.scalars(select(SessionRecord).where(SessionRecord.status == "open")).all()


# --- CDRs -----------------------------------------------------------------------------------


class StorageInconsistency(Exception):
    """The stored data contradicts itself: the batch must fail (and its partition wait for
    an operator) rather than dead-letter billable events one by one."""


class ConflictingCdr(StorageInconsistency):
    """A CDR id was about to be issued with content different from the one issued before."""


class StoredStateMismatch(StorageInconsistency):
    """A session's ``sessions`` row and its ``session_messages`` rows disagree (a lost or
    extra messages row, a row written by something that bypassed the store)."""


@dataclass(frozen=True)
class IssueResult:
    record: CdrRecord
    #: True when the row was inserted now; False when the identical CDR was already there.
    inserted: bool


def issue_cdr(session: Session, **fields: Any) -> IssueResult:
    """Insert an issued CDR, idempotently by its natural key (country_code, party_id, id).

    Issuing the same CDR again (a reprocessed batch) is a no-op; issuing the same id with
    different content raises :class:`ConflictingCdr` (an issued CDR is never edited).
    """
    fields.setdefault("content_hash", content_hash(fields["cdr_json"]))
    fields.setdefault("published", False)
    existing = get_cdr(session, fields["country_code"], fields["party_id"], fields["id"])
    if existing is not None:
        if existing.content_hash != fields["content_hash"]:
            raise ConflictingCdr(
                f"CDR {fields['country_code']}*{fields['party_id']}*{fields['id']} already issued with "
                f"hash {existing.content_hash}, new content hashes to {fields['content_hash']}"
            )
        return IssueResult(existing, inserted=False)
    record = CdrRecord(**fields)
    session.add(record)
    session.flush()
    return IssueResult(record, inserted=True)


def issue_cdrs(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`issue_cdr` for many CDRs at once: one query for the ids already issued, one
    insert of the new rows (:func:`insert_rows`: inserted in the given order, so ``pk`` order is issue order).

    Same rules as :func:`issue_cdr`, row by row in order: a CDR already issued with the same
    content (in the database or earlier in ``rows``) is a no-op, one with different content
    raises :class:`ConflictingCdr` before anything is inserted. Returns the rows newly inserted.
    """
    for fields in rows:
        fields.setdefault("content_hash", content_hash(fields["cdr_json"]))
        fields.setdefault("published", False)
    dialect = session.get_bind().dialect
    known: dict[tuple[str, str, str], str] = {}
    for (cc, pid), ids in _by_prefix((f["country_code"], f["party_id"], f["id"]) for f in rows):
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            sql = driver_sql(dialect, f"cdrs.hashes:{len(chunk)}", lambda quote, mark: _cdr_hashes_sql(quote, mark, len(chunk)))
            known.update({(c, p, i): h for c, p, i, h in query_rows(session, sql, (cc, pid, *chunk))})
    new = []
    for fields in rows:
        key = (fields["country_code"], fields["party_id"], fields["id"])
        existing = known.get(key)
        if existing is not None:
            if existing != fields["content_hash"]:
                raise ConflictingCdr(
                    f"CDR {key[0]}*{key[1]}*{key[2]} already issued with "
                    f"hash {existing}, new content hashes to {fields['content_hash']}"
                )
            continue
        known[key] = fields["content_hash"]
        new.append(fields)
    if new:  # at the driver level, values bound by the column types (see driver_sql)
        binders = row_binders(dialect, _CDRS, CDR_COLUMNS)
        defaults = _CDR_DEFAULTS
        insert_rows(session, _CDRS, CDR_COLUMNS,
                    [bound_row(binders, [f.get(c, defaults.get(c)) for c in CDR_COLUMNS]) for f in new])
    return new


def _cdr_hashes_sql(quote: Callable[[str], str], mark: str, count: int) -> str:
    """Issued CDRs' hashes by natural key: one party's ids at a time, so that the lookup is a
    search of the unique (country_code, party_id, id) index (``id IN`` alone scanned the table
    on SQLite and the whole index on PostgreSQL, for every batch)."""
    return (f"SELECT {', '.join(map(quote, ('country_code', 'party_id', 'id', 'content_hash')))} "
            f"FROM {quote(_CDRS.name)} WHERE {quote('country_code')} = {mark} AND {quote('party_id')} = {mark} "
            f"AND {quote('id')} IN ({marks(mark, count)})")


def get_cdr(session: Session, country_code: str, party_id: str, cdr_id: str) -> CdrRecord | None:
    return session.scalars(
        select(CdrRecord).where(
            CdrRecord.country_code == country_code, CdrRecord.party_id == party_id, CdrRecord.id == cdr_id
        )
    ).one_or_none()


def cdrs_of_session(session: Session, session_key: str) -> Sequence[CdrRecord]:
    return session.scalars(select(CdrRecord).where(CdrRecord.session_key == session_key).order_by(CdrRecord.pk)).all()


def unpublished_cdrs(session: Session, limit: int = OUTBOX_PAGE) -> Sequence[CdrRecord]:
    return session.scalars(
        select(CdrRecord).where(CdrRecord.published.is_(False)).order_by(CdrRecord.pk).limit(limit)
    ).all()


def mark_published(session: Session, model, pks: Sequence[int]) -> None:
    """Mark outbox rows (CdrRecord or DeadLetterRecord) as produced on their topic."""
    if pks:
        session.execute(update(model).where(model.pk.in_(list(pks))).values(published=True))


def mark_published_by_key(session: Session, cdrs: Sequence[tuple[str, str, str]],
                          dead_letters: Sequence[tuple[str, int, int]]) -> None:
    """:func:`mark_published` by natural key: CDRs by (country_code, party_id, id), dead
    letters by (source_topic, source_partition, source_offset); one UPDATE per party /
    partition and 500 keys: ``a = ? AND b = ? AND c IN (...)`` is a search of the unique
    index (SQLite scanned the whole table for a row-value ``(a, b, c) IN (VALUES ...)``)."""
    dialect = session.get_bind().dialect
    for table, columns, keys in ((_CDRS, ("country_code", "party_id", "id"), cdrs),
                                 (DeadLetterRecord.__table__, ("source_topic", "source_partition", "source_offset"),
                                  dead_letters)):
        published = row_binders(dialect, table, ("published",))[0]
        for (first, second), lasts in _by_prefix(keys):
            for start in range(0, len(lasts), 500):
                chunk = lasts[start:start + 500]
                sql = driver_sql(dialect, f"{table.name}.mark:{len(chunk)}",
                                 lambda quote, mark: _mark_sql(quote, mark, table, columns, len(chunk)))
                execute_rows(session, sql, [(published(True), first, second, *chunk)])


def _mark_sql(quote: Callable[[str], str], mark: str, table, columns: Sequence[str], count: int) -> str:
    first, second, last = map(quote, columns)
    return (f"UPDATE {quote(table.name)} SET {quote('published')} = {mark} "
            f"WHERE {first} = {mark} AND {second} = {mark} AND {last} IN ({marks(mark, count)})")


def _by_prefix(keys: Iterable[tuple[Any, Any, Any]]) -> list[tuple[tuple[Any, Any], list[Any]]]:
    """Three-part keys grouped by their first two parts: [((a, b), sorted distinct c's)], sorted."""
    groups: dict[tuple[Any, Any], set[Any]] = {}
    for a, b, c in keys:
        groups.setdefault((a, b), set()).add(c)
    return [(prefix, sorted(lasts)) for prefix, lasts in sorted(groups.items())]


def cdr_query(
    *,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    country_code: str | None = None,
    party_id: str | None = None,
    emsp_country_code: str | None = None,
    emsp_party_id: str | None = None,
) -> Select:
    """CDRs filtered like OCPI's GET /cdrs (last_updated window) and by party, oldest first.

    ``date_from`` inclusive, ``date_to`` exclusive (OCPI 2.2.1 transport: pagination).
    """
    query = select(CdrRecord).order_by(CdrRecord.last_updated, CdrRecord.pk)
    if date_from is not None:
        query = query.where(CdrRecord.last_updated >= date_from)
    if date_to is not None:
        query = query.where(CdrRecord.last_updated < date_to)
    if country_code is not None:
        query = query.where(CdrRecord.country_code == country_code)
    if party_id is not None:
        query = query.where(CdrRecord.party_id == party_id)
    if emsp_country_code is not None:
        query = query.where(CdrRecord.emsp_country_code == emsp_country_code)
    if emsp_party_id is not None:
        query = query.where(CdrRecord.emsp_party_id == emsp_party_id)
    return query


def list_cdrs(session: Session, *, offset: int = 0, limit: int = 100, **filters: Any) -> tuple[Sequence[CdrRecord], int]:
    """A page of CDRs plus the total count matching ``filters`` (see :func:`cdr_query`)."""
    query = cdr_query(**filters)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.offset(offset).limit(limit)).all()
    return rows, int(total or 0)


# --- tariffs --------------------------------------------------------------------------------


def store_tariff_version(session: Session, **fields: Any) -> TariffRecord:
    """Store one tariff version; a version already stored (same last_updated) is kept as is."""
    existing = session.scalars(
        select(TariffRecord).where(
            TariffRecord.country_code == fields["country_code"],
            TariffRecord.party_id == fields["party_id"],
            TariffRecord.id == fields["id"],
            TariffRecord.last_updated == fields["last_updated"],
        )
    ).one_or_none()
    if existing is not None:
        return existing
    record = TariffRecord(**fields)
    session.add(record)
    session.flush()
    return record


def tariff_versions(session: Session, tariff_id: str) -> Sequence[TariffRecord]:
    return session.scalars(_TARIFF_VERSIONS, {"tariff_id": tariff_id}).all()


_TARIFF_VERSIONS = select(TariffRecord).where(TariffRecord.id == bindparam("tariff_id")).order_by(
    TariffRecord.last_updated)


def tariff_valid_at(session: Session, tariff_id: str, at: datetime, known_at: datetime | None = None) -> TariffRecord | None:
    """The version of tariff ``tariff_id`` that applies to a session starting at ``at``
    (see :func:`pick_tariff_version`)."""
    return pick_tariff_version(tariff_versions(session, tariff_id), at, known_at)


def pick_tariff_version(versions: Sequence[TariffRecord], at: datetime,
                        known_at: datetime | None = None) -> TariffRecord | None:
    """Among the versions whose validity window (OCPI Tariff.start_date_time /
    end_date_time; start inclusive, end exclusive) contains ``at`` and that were published
    by ``known_at`` (their last_updated; None: any), the most recent. ``known_at`` makes the
    choice a function of the event log: a correction published later does not change what
    a replay prices (``chargeledger rerate`` applies corrections on purpose). When no
    version was published by then (a tariff loaded after the traffic), the first valid one.
    """
    valid = sorted(
        (v for v in versions
         if (v.valid_from is None or v.valid_from <= at) and (v.valid_to is None or v.valid_to > at)),
        key=lambda v: v.last_updated,
    )
    if not valid:
        return None
    if known_at is None:
        return valid[-1]
    known = [v for v in valid if v.last_updated <= known_at]
    return known[-1] if known else valid[0]


def session_messages_json(session: Session, session_key: str) -> list[str]:
    """The JSON arrays of a session's recorded messages, in order (its ``session_messages``
    rows): with the row's ``state_head_json``, ``SessionState.from_stored`` reads the state."""
    from storage.models import SessionMessagesRecord

    return list(session.scalars(
        select(SessionMessagesRecord.messages_json)
        .where(SessionMessagesRecord.session_key == session_key)
        .order_by(SessionMessagesRecord.first_index)))
