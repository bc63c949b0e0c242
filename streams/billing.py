"""From a valid envelope to session state and, when a session completes, issued CDRs.

The thin shell around the pure core: ``sessions.SessionAssembler`` (OCPP validation via
``schemas.ocpp.validate_call``, duplicates, session assembly, corrections) and ``pricing``
(the OCPI tariff engine, through :mod:`streams.cdrs`). It loads session states from SQL
(:class:`SqlSessionStore`), calls the core, and writes the results into the caller's
transaction (:class:`streams.processor.Processor` owns it).

Compute first, write last: an envelope's states and CDRs are only kept once every CDR of
it has been built. If anything fails (no tariff valid at the session's start, a bug), the
states the envelope touched are put back as they were before it (copies taken before the
assembler changed them) and nothing of it is written; the processor dead-letters the
envelope with the error as reason. The states changed by a batch are written once, at the
end of the batch (``end_batch``), in the batch's transaction: the ``sessions`` row gets the
state without its messages (``SessionState.head_json``) and ``version + 1``, and only the
messages recorded since its last write are appended to ``session_messages`` (migration
0102_pipeline_session_messages).

Which tariff: ``settings.default_tariff_id``, the version valid at the session's start
and published by the session's end (:func:`storage.repositories.tariff_valid_at`), so the
choice is a function of the event log and the tariff versions (replay-stable). A later
tariff correction is applied on purpose by ``chargeledger rerate`` (credit + new CDR).
"""

from __future__ import annotations

import copy as _copy
import logging
import threading
from bisect import bisect_right
from collections import OrderedDict
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Callable, Iterable, NamedTuple

from sqlalchemy import event
from sqlalchemy.exc import InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.orm import Session

from chargeledger.settings import Settings
from schemas.envelope import EventEnvelope
from schemas.ocpi import Cdr, CdrLocation, CdrToken, Price, Tariff
from sessions import AssemblerConfig, CompletedSession, SessionAssembler, SessionState
from sessions.assembler import DecodedCall, decode_call
from sessions.identity import session_id_for
from storage import repositories as repo
from storage.models import SessionMessagesRecord, SessionRecord
from storage.outbox import enqueue_cdr_push, enqueue_cdr_row_pushes
from streams.cdrs import cdr_json, credit_for, session_cdr, session_cdr_row, tariff_json
from streams.processor import Outcome


log = logging.getLogger("chargeledger.billing")


class _ChargePointView:
    """The part of a :class:`sessions.SessionStore` ``SessionAssembler.close_idle`` uses
    (``open_sessions``, ``put``), restricted to one charge point's open sessions, so it
    closes only those."""

    def __init__(self, store: "SqlSessionStore", charge_point_id: str) -> None:
        self.store = store
        self.charge_point_id = charge_point_id

    def put(self, state) -> None:
        self.store.put(state)

    def open_sessions(self):
        return self.store.open_sessions_of(self.charge_point_id)


class NoTariff(LookupError):
    """No version of the session's tariff is valid at its start."""


class SqlSessionStore:
    """:class:`sessions.SessionStore` over the ``sessions`` table, cached per batch.

    ``get`` returns the cached state object (the assembler mutates it in place); ``put``
    marks it written by the envelope. Before an envelope first touches a cached state, the
    store notes how to undo it (:class:`_Undo`): :meth:`discard_envelope` puts the states back
    (and forgets states the envelope created or loaded), so a failed envelope leaves no
    trace; :meth:`commit_envelope` keeps its changes. In a batch (``defer_writes``) the
    changed states are serialised and written to their rows once, by :meth:`write_rows`
    at the end of the batch, instead of after every envelope.
    """

    def __init__(self, db: Session, idle_timeout: timedelta, defer_cdrs: bool = False,
                 warm: "WarmStates | None" = None) -> None:
        self.db = db
        #: States kept parsed from earlier batches (see :class:`WarmStates`).
        self.warm = warm
        #: In a batch (``defer_cdrs``), the CDR rows issued, written in one go by
        #: :meth:`Billing.end_batch`; else (``None``) each CDR is written at once.
        self.cdr_rows: list[dict] | None = [] if defer_cdrs else None
        self.idle_timeout = idle_timeout
        self.cache: dict[str, SessionState] = {}
        #: session key -> what this store knows of its row (None: no row).
        self.records: dict[str, _SessionRow | None] = {}
        #: charge point id -> its open session rows, read by :meth:`prefetch` in a batch
        #: (for :meth:`open_sessions_of`).
        self.open_rows: dict[str, list[_SessionRow]] = {}
        #: session key -> the JSON arrays of its stored messages, read for :meth:`_load`.
        self.arrays: dict[str, list[str]] = {}
        #: session key -> characters of its stored messages' JSON (the size of a kept state).
        self.sizes: dict[str, int] = {}
        #: The running envelope's undo: session key -> how to put the state back as it was
        #: before the envelope touched it (:class:`_Undo`), or _NOT_CACHED (created or
        #: loaded by the envelope).
        self.before: dict[str, _Undo | object] = {}
        #: Keys the running envelope put.
        self.put_keys: dict[str, None] = {}
        #: Keys of the states changed by the committed envelopes of the batch (insertion
        #: ordered), written by :meth:`write_rows`.
        self.pending: dict[str, None] = {}
        #: CDR id -> JSON of the CDRs issued in this batch (not flushed before the commit).
        self.issued: dict[str, str] = {}
        #: tariff id -> its stored versions (tariffs change between batches, not within one)
        self.tariff_versions: dict[str, _TariffVersions] = {}
        #: Stream time: received_at of the envelope being applied (for sessions_of).
        self.now: datetime | None = None
        #: The assembler over this store (Billing.handle: one per store, not per envelope).
        self.assembler: SessionAssembler | None = None

    def prefetch(self, keys: Iterable[str], charge_point_ids: Iterable[str] = ()) -> None:
        """Load the rows of these session keys in one query per 500 keys; a key without a
        row is remembered as absent (this store writes every session row of the batch, so
        that stays true until :meth:`write_rows` adds it). Saves a query per session.

        In a batch (:attr:`defer_writes`), also the open session rows of these charge points
        (one query per 500), which :meth:`open_sessions_of` then uses instead of a query per
        charge point: the ``sessions`` table does not change while the batch runs (its rows
        are written by :meth:`write_rows`, at the end), so they are the rows that query
        would read. The recorded messages of all these rows are read in one query per 500
        keys, only for the sessions whose state :attr:`warm` does not hold at the row's version."""
        read: dict[str, _SessionRow] = {}
        wanted = sorted({k for k in keys if k not in self.records})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found = {r.session_key: r for r in self._rows(_ROWS_BY_KEYS, keys=chunk)}
            for key in chunk:
                self.records[key] = found.get(key)
            read.update(found)
        if self.cdr_rows is not None:  # self.defer_writes
            open_rows, records = self.open_rows, self.records
            cps = sorted({cp for cp in charge_point_ids if cp not in open_rows})
            dialect = self.db.get_bind().dialect
            ended = _ended_at_reader(dialect)
            for start in range(0, len(cps), 500):
                chunk = cps[start:start + 500]
                for cp in chunk:
                    open_rows[cp] = []
                sql = repo.driver_sql(dialect, f"sessions.open_of_many:{len(chunk)}",
                                      lambda quote, mark: _open_of_many_sql(quote, mark, len(chunk)))
                for cp, key, version, ended_at, event_count, head_json in repo.query_rows(self.db, sql, tuple(chunk)):
                    row = _SessionRow(key, version, None if ended_at is None else ended(ended_at), event_count,
                                      head_json)
                    open_rows[cp].append(row)
                    records.setdefault(key, row)  # the same row (nothing written in between)
                    read.setdefault(key, row)
        self._read_messages(read.values())

    def _read_messages(self, rows: Iterable["_SessionRow"]) -> None:
        """Read the ``session_messages`` arrays of those of these rows whose state has to
        be parsed (not in the batch's cache, not kept warm at the row's version) into
        :attr:`arrays`, for :meth:`_load`; one query per 500 sessions."""
        warm, cache, arrays = self.warm, self.cache, self.arrays
        cold = [r.session_key for r in rows if r.session_key not in cache and r.session_key not in arrays
                and (warm is None or not warm.holds(r.session_key, r.version))]
        for start in range(0, len(cold), 500):
            chunk = cold[start:start + 500]
            for key in chunk:
                arrays[key] = []
            sql = repo.driver_sql(self.db.get_bind().dialect, f"session_messages.by_keys:{len(chunk)}",
                                  lambda quote, mark: _messages_sql(quote, mark, len(chunk)))
            for key, array in repo.query_rows(self.db, sql, tuple(chunk)):
                arrays[key].append(array)

    def _rows(self, query: "_RowsQuery", **params) -> list["_SessionRow"]:
        """The session rows of one of the ``_ROWS_*`` queries, read at the driver level
        (:func:`storage.repositories.driver_sql`: no ORM, no per-row type processing but
        ``ended_at``'s, converted as the model reads it); written by :meth:`_write_rows`."""
        dialect = self.db.get_bind().dialect
        values: list = []
        count = 0
        for name in query.params:
            value = params[name]
            if name == "keys":
                values.extend(value)
                count = len(value)
            elif name == "since":
                values.append(repo.row_binders(dialect, _SESSIONS, ("last_event_at",))[0](value))
            else:
                values.append(value)
        sql = repo.driver_sql(dialect, f"{query.name}:{count}", lambda quote, mark: query.sql(quote, mark, count))
        ended = _ended_at_reader(dialect)
        return [_SessionRow(key, version, None if ended_at is None else ended(ended_at), event_count, head_json)
                for key, version, ended_at, event_count, head_json in repo.query_rows(self.db, sql, tuple(values))]

    def _record(self, key: str) -> "_SessionRow | None":
        if key not in self.records:
            rows = self._rows(_ROWS_BY_KEYS, keys=[key])
            self.records[key] = rows[0] if rows else None
        return self.records[key]

    def _touch(self, key: str, state: SessionState) -> SessionState:
        """Hand out a cached state: note how to undo the envelope's changes first, for
        :meth:`discard_envelope`."""
        if key not in self.before:
            self.before[key] = _Undo(state)
        return state

    def _load(self, record: "_SessionRow") -> SessionState:
        key = record.session_key
        self.records[key] = record
        state = self.cache.get(key)
        if state is not None:
            return self._touch(key, state)
        kept = self.warm.take(key, record.version) if self.warm is not None else None
        if kept is not None:
            state, self.sizes[key] = kept
        else:
            arrays = self.arrays.pop(key, None)
            if arrays is None:
                self._read_messages([record])
                arrays = self.arrays.pop(key)
            state = SessionState.from_stored(record.head_json, arrays)
            self.sizes[key] = sum(map(len, arrays))
        if len(state.__dict__["messages"]) != record.event_count:
            raise repo.StoredStateMismatch(f"session {key}: {len(state.messages)} recorded messages stored, "
                               f"its row counts {record.event_count}")
        self.cache[key] = state
        self.before.setdefault(key, _NOT_CACHED)
        return state

    def _load_rows(self, rows: list["_SessionRow"]) -> dict[str, SessionState]:
        """session key -> state of each of these rows (messages read in bulk)."""
        self._read_messages(rows)
        return {r.session_key: self._load(r) for r in rows}

    def get(self, session_id: str) -> SessionState | None:
        state = self.cache.get(session_id)
        if state is not None:
            before = self.before
            if session_id not in before:  # self._touch(session_id, state), inline (and _Undo(state))
                fields = state.__dict__
                before[session_id] = _new_tuple(_Undo, (state, fields.copy(), state.__pydantic_fields_set__.copy(),
                                                        len(fields["messages"]), len(fields["issued"])))
            return state
        record = self._record(session_id)
        return None if record is None else self._load(record)

    def put(self, state: SessionState) -> None:
        key = state.session_id
        if key not in self.before:
            cached = self.cache.get(key)
            self.before[key] = _NOT_CACHED if cached is None else _Undo(cached)
        self.cache[key] = state
        self.put_keys[key] = None

    def sessions_of(self, charge_point_id: str) -> Iterable[SessionState]:
        if self.now is None:
            rows = self._rows(_ROWS_OPEN_OF, cp=charge_point_id)
        else:
            rows = self._rows(_ROWS_RECENT_OF, cp=charge_point_id, since=self.now - self.idle_timeout)
        states = self._load_rows(rows)
        for key, state in self.cache.items():
            if state.charge_point_id == charge_point_id:
                states[key] = self._touch(key, state)
        return [states[k] for k in sorted(states)]

    def open_sessions_of(self, charge_point_id: str) -> list[SessionState]:
        rows = self.open_rows.get(charge_point_id)  # read by prefetch (a batch), else now
        if rows is None:
            rows = self._rows(_ROWS_OPEN_OF, cp=charge_point_id)
        states = self._load_rows(rows)
        # every cached state of the batch is looked at: its field read from its __dict__ (a
        # pydantic attribute read takes the generic slow path), touched only when it matches
        states.update({k: self._touch(k, s) for k, s in self.cache.items()
                       if s.__dict__["charge_point_id"] == charge_point_id})
        return [s for k, s in sorted(states.items()) if s.is_open]

    def open_sessions(self) -> Iterable[SessionState]:
        states = self._load_rows(self._rows(_ROWS_OPEN))
        states.update({k: self._touch(k, s) for k, s in self.cache.items()})
        return [s for k, s in sorted(states.items()) if s.is_open]

    @property
    def defer_writes(self) -> bool:
        """In a batch, session rows are written by :meth:`write_rows` (end of the batch)."""
        return self.cdr_rows is not None

    def begin_envelope(self) -> None:
        """Start an envelope's undo record (reads since the last envelope changed nothing)."""
        self.before.clear()
        self.put_keys.clear()

    def commit_envelope(self) -> None:
        """Keep the running envelope's changes (written now, or by :meth:`write_rows`)."""
        if self.cdr_rows is not None:  # self.defer_writes
            self.pending.update(self.put_keys)
        else:
            self._write_rows(self.put_keys)
        self.put_keys.clear()
        self.before.clear()

    def discard_envelope(self) -> None:
        """Undo the running envelope: every state it touched is as it was before it."""
        for key, undo in self.before.items():
            if undo is _NOT_CACHED:
                self.cache.pop(key, None)  # a later get reloads it from its row (or finds none)
            else:
                self.cache[key] = undo.restore()  # type: ignore[union-attr]
        self.put_keys.clear()
        self.before.clear()

    def write_rows(self) -> None:
        """Write the states changed in the batch to their rows, once each; then, once the
        batch's transaction has committed (not before: a rolled-back batch keeps nothing),
        hand every state of the batch to :attr:`warm` with the version its row then has."""
        self._write_rows(self.pending)
        self.pending.clear()
        if self.warm is not None:
            records, sizes = self.records, self.sizes
            kept = [(key, records[key].version, sizes.get(key, 0), state)  # type: ignore[union-attr]
                    for key, state in self.cache.items()]
            self.cache = {}
            if kept:
                self.warm.keep_after_commit(self.db, kept)

    def _write_rows(self, keys: Iterable[str]) -> None:
        """One executemany UPDATE for the rows that exist, one INSERT for the new ones, one
        INSERT of the messages recorded since the row was written (``session_messages``,
        append-only; both inserts a binary COPY on PostgreSQL: :func:`storage.repositories.insert_rows`),
        at the driver level (rows as tuples in driver form:
        :func:`storage.repositories.driver_sql`; the values stored are those of the Core
        statements, tested). Every write adds 1 to the row's ``version``."""
        inserts: list[tuple] = []
        updates: list[tuple] = []
        appended: list[tuple] = []
        dialect = self.db.get_bind().dialect
        utc = repo.row_binders(dialect, _SESSIONS, ("last_event_at",))[0]
        sizes = self.sizes
        for key in keys:
            state = self.cache[key]
            record = self._record(key)
            if record is None:
                ended_at, stored, version = None, 0, 1
            else:
                ended_at, stored, version = record.ended_at, record.event_count, record.version + 1
            if state.issued and ended_at is None:
                ended_at = _end_of(state)
            count = len(state.messages)
            if count > stored:
                array = state.messages_json(stored)
                appended.append((key, stored, array))
                sizes[key] = sizes.get(key, 0) + len(array)
            elif count < stored:  # messages are append-only (sessions.events.SessionState)
                raise repo.StoredStateMismatch(f"session {key}: {count} recorded messages, {stored} already stored")
            head_json = state.head_json()
            start, last = state.start_timestamp, state.last_received_at
            values = (state.status, None if start is None else utc(start), None if ended_at is None else utc(ended_at),
                      head_json, count, state.issued[-1].cdr_id if state.issued else None,
                      None if last is None else utc(last))
            if record is None:
                inserts.append((key, state.charge_point_id, state.transaction_id, state.ocpp_version) + values)
            else:
                updates.append(values + (key,))
            self.records[key] = _SessionRow(key, version, ended_at, count, head_json)
        repo.execute_rows(self.db, repo.driver_sql(dialect, "sessions.update", _UPDATE_SESSION), updates)
        repo.insert_rows(self.db, _SESSIONS, _INSERT_COLUMNS, inserts)  # a COPY on PostgreSQL
        repo.insert_rows(self.db, _MESSAGES, _MESSAGES_COLUMNS, appended)


class WarmStates:
    """Session states kept parsed between batches, each with the ``version`` its row had
    when the state was kept, least recently used dropped beyond ``limit`` states or
    ``max_chars`` characters of stored message JSON (a parsed state takes ~7x its JSON in
    memory).

    Parsing a state costs ~85 µs for a finished session (its whole message list), and an
    open session is loaded again in every batch that has one of its events. Safe against
    any other writer of the ``sessions`` table (``chargeledger rerate``, a worker that took
    over the partition meanwhile, a batch that rolled back): a state is kept only after the
    transaction that wrote (or read) its row at that version committed, every write of a
    row adds 1 to its version (in SQL: ``version = version + 1``, so a write the keeper did
    not see still moves it on), and a kept state is only used while the row read in the
    running transaction has exactly that version; else the row is parsed as always. A state
    is taken out while a batch uses it, so a state changed by a batch that fails is never
    kept.
    """

    def __init__(self, limit: int, max_chars: int = 8_000_000) -> None:
        self.limit = limit
        self.max_chars = max_chars
        #: key -> (version, characters, state), least recently kept first. An OrderedDict:
        #: dropping the oldest is O(1) (``next(iter(dict))`` after many removals at the
        #: front of a plain dict scans the removed slots every time).
        self._states: OrderedDict[str, tuple[int, int, SessionState]] = OrderedDict()
        self._chars = 0
        #: clear() may come from the worker's rebalance listener (event loop thread) while
        #: a batch runs in its thread.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._states)

    def holds(self, key: str, version: int) -> bool:
        """A state of ``key`` at ``version`` is kept (a hint: :meth:`take` decides)."""
        kept = self._states.get(key)
        return kept is not None and kept[0] == version

    def take(self, key: str, version: int) -> tuple[SessionState, int] | None:
        """(the kept state of ``key``, its characters) if it was kept at ``version``
        (removed from here either way)."""
        with self._lock:
            kept = self._states.pop(key, None)
            if kept is None:
                return None
            self._chars -= kept[1]
        return (kept[2], kept[1]) if kept[0] == version else None

    def keep(self, key: str, version: int, chars: int, state: SessionState) -> None:
        if self.limit <= 0 or chars > self.max_chars:
            return
        with self._lock:
            old = self._states.pop(key, None)
            if old is not None:
                self._chars -= old[1]
            self._states[key] = (version, chars, state)
            self._chars += chars
            states = self._states
            while len(states) > self.limit or self._chars > self.max_chars:
                self._chars -= states.popitem(last=False)[1][1]

    def keep_after_commit(self, db: Session, kept: list[tuple[str, int, int, SessionState]]) -> None:
        """:meth:`keep` these (key, version, characters, state) once ``db``'s running
        transaction has committed; nothing if it rolls back (see :func:`_keep_committed`)."""
        db.info[_KEEP_AFTER_COMMIT] = (db.get_transaction(), self, kept)

    def _keep_all(self, kept: list[tuple[str, int, int, SessionState]]) -> None:
        """:meth:`keep` each of these in order, under one lock (one call per batch)."""
        if self.limit <= 0:
            return
        try:
            limit, max_chars = self.limit, self.max_chars
            with self._lock:
                states = self._states
                pop, popitem = states.pop, states.popitem
                total = self._chars
                try:
                    for key, version, chars, state in kept:
                        if chars > max_chars:
                            continue
                        old = pop(key, None)
                        if old is not None:
                            total -= old[1]
                        states[key] = (version, chars, state)
                        total += chars
                        while len(states) > limit or total > max_chars:
                            total -= popitem(last=False)[1][1]
                finally:
                    self._chars = total
        except Exception:  # noqa: BLE001 - the batch has committed: never fail it now
            log.exception("keeping session states failed; they are read from their rows")
            self.clear()

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
            self._chars = 0


#: ``Session.info`` key of a batch's states to keep warm: (its transaction, the WarmStates,
#: [(key, version, characters, state)]), set by :meth:`WarmStates.keep_after_commit`.
_KEEP_AFTER_COMMIT = "chargeledger.warm_states_after_commit"


@event.listens_for(Session, "after_commit")
def _keep_committed(session: Session) -> None:
    """The states of a batch are kept once its transaction has committed (that very
    transaction: not one that follows a rollback on the same Session). One class-level
    listener: a listener per Session (per batch) cost ~50 µs to register. A released
    SAVEPOINT (``begin_nested``) also sends ``after_commit``, while the batch may still roll
    back: it keeps nothing."""
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_KEEP_AFTER_COMMIT, None)
    if pending is not None and pending[0] is session.get_transaction():
        pending[1]._keep_all(pending[2])  # noqa: SLF001


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_KEEP_AFTER_COMMIT, None)


class _SessionRow(NamedTuple):
    """What the store reads of a ``sessions`` row."""

    session_key: str
    version: int
    ended_at: datetime | None
    #: The number of recorded messages stored.
    event_count: int
    #: The state's JSON without its messages (``SessionState.head_json``).
    head_json: str


_SESSIONS = SessionRecord.__table__


class _RowsQuery(NamedTuple):
    """A query of the rows the store reads: ``SELECT session_key, version, ended_at,
    event_count, state_head_json FROM sessions WHERE <where>``; ``params``: the names of its parameters, in order (``keys``:
    a list, one marker each)."""

    name: str
    where: Callable[[Callable[[str], str], str, int], str]
    params: tuple[str, ...] = ()

    def sql(self, quote: Callable[[str], str], mark: str, count: int) -> str:
        columns = ", ".join(map(quote, ("session_key", "version", "ended_at", "event_count", "state_head_json")))
        return f"SELECT {columns} FROM {quote(_SESSIONS.name)} WHERE {self.where(quote, mark, count)}"


# The store's statements (SQL text built once per driver and IN-list length).
_ROWS_BY_KEYS = _RowsQuery("sessions.by_keys", lambda q, m, n: f"{q('session_key')} IN ({repo.marks(m, n)})",
                           ("keys",))
_ROWS_OPEN = _RowsQuery("sessions.open", lambda q, m, n: f"{q('status')} = 'open'")
_ROWS_OPEN_OF = _RowsQuery("sessions.open_of", lambda q, m, n: f"{q('status')} = 'open' AND {q('charge_point_id')} = {m}",
                           ("cp",))
#: open, or with an event since ``since`` (sessions_of: "open plus recently completed")
_ROWS_RECENT_OF = _RowsQuery(
    "sessions.recent_of",
    lambda q, m, n: f"{q('charge_point_id')} = {m} AND ({q('status')} = 'open' OR {q('last_event_at')} >= {m})",
    ("cp", "since"))
#: The columns :meth:`SqlSessionStore._write_rows` inserts and updates, in its tuples' order.
#: (``version``: 1 in an INSERT (the model's default), ``version + 1`` in an UPDATE.)
_INSERT_COLUMNS = ("session_key", "charge_point_id", "transaction_id", "ocpp_version",
                   "status", "started_at", "ended_at", "state_head_json", "event_count", "cdr_id", "last_event_at")
_UPDATE_COLUMNS = _INSERT_COLUMNS[4:]


def _UPDATE_SESSION(quote: Callable[[str], str], mark: str) -> str:  # noqa: N802 - a driver_sql builder
    """``UPDATE sessions SET <_UPDATE_COLUMNS>, version = version + 1 WHERE session_key = ?``."""
    assignments = ", ".join(f"{quote(c)} = {mark}" for c in _UPDATE_COLUMNS)
    version = quote("version")
    return (f"UPDATE {quote(_SESSIONS.name)} SET {assignments}, {version} = {version} + 1 "
            f"WHERE {quote('session_key')} = {mark}")


_MESSAGES = SessionMessagesRecord.__table__
_MESSAGES_COLUMNS = ("session_key", "first_index", "messages_json")


def _open_of_many_sql(quote: Callable[[str], str], mark: str, count: int) -> str:
    """(charge point id, then the columns of a _RowsQuery) of the open sessions of ``count``
    charge points: :data:`_ROWS_OPEN_OF` for several at once."""
    columns = ", ".join(map(quote, ("charge_point_id", "session_key", "version", "ended_at", "event_count",
                                    "state_head_json")))
    return (f"SELECT {columns} FROM {quote(_SESSIONS.name)} WHERE {quote('status')} = 'open' "
            f"AND {quote('charge_point_id')} IN ({repo.marks(mark, count)})")


def _messages_sql(quote: Callable[[str], str], mark: str, count: int) -> str:
    """The ``session_messages`` arrays of ``count`` sessions, in order per session."""
    key = quote("session_key")
    return (f"SELECT {key}, {quote('messages_json')} FROM {quote(_MESSAGES.name)} "
            f"WHERE {key} IN ({repo.marks(mark, count)}) ORDER BY {key}, {quote('first_index')}")


def _ended_at_reader(dialect):
    """``sessions.ended_at`` from the driver's form to what the model reads (aware UTC)."""
    reader = _ENDED_AT_READERS.get(dialect.name)
    if reader is None:
        column = _SESSIONS.c.ended_at.type
        reader = _ENDED_AT_READERS[dialect.name] = column.dialect_impl(dialect).result_processor(dialect, None)
    return reader


_ENDED_AT_READERS: dict[str, Callable] = {}

#: Undo marker: the state was not in the batch's cache before the envelope touched it.
_NOT_CACHED = object()


class _Undo(tuple):
    """How to put a state back as it was when the running envelope first touched it
    (:meth:`SqlSessionStore.discard_envelope`), without copying the model (issue 4: a
    ``model_copy`` with its own lists and derived cache cost ~4.4 µs per touched state):
    its field values (a copy of its ``__dict__``), its fields set, and the length of each
    of its lists (the list objects are put back too, cut back to these lengths: the
    assembler only appends to them, in place). The messages and issued versions of a state
    are append-only (:class:`sessions.events.SessionState`) and, like the other field
    values, immutable values: the items before those lengths are the ones the state had.
    A length instead of a copy of the items: O(1) per touched state, not O(messages), for
    every envelope (issue 4, fifth wave).

    The restored state gets a fresh derived-facts cache (rebuilt at the next question).
    """

    __slots__ = ()

    def __new__(cls, state: SessionState) -> "_Undo":
        """(state, a copy of its fields, a copy of its fields set, the lengths of its
        messages and issued lists): a tuple, built inline (``tuple.__new__``) where the
        store hands out a state, without a Python frame per touched state."""
        fields = state.__dict__
        return _new_tuple(cls, (state, fields.copy(), state.__pydantic_fields_set__.copy(),
                                len(fields["messages"]), len(fields["issued"])))

    def restore(self) -> SessionState:
        """The state as it was (the same object; rare: a failed envelope)."""
        state, fields, fields_set, messages, issued = self
        del fields["messages"][messages:]
        del fields["issued"][issued:]
        object.__setattr__(state, "__dict__", fields.copy())
        object.__setattr__(state, "__pydantic_fields_set__", set(fields_set))
        private = state.__pydantic_private__
        if private:
            # A fresh derived-facts cache (copy.copy of one is a new empty one): rebuilt
            # from the restored messages at the next question.
            object.__setattr__(state, "__pydantic_private__", {k: _copy.copy(v) for k, v in private.items()})
        return state


# _Undo cuts back exactly these list fields (the others are immutable values).
assert [name for name, field in SessionState.model_fields.items()
        if getattr(field.annotation, "__origin__", None) is list] == ["messages", "issued"], \
    "update _Undo for SessionState's list fields"


def _session_key_hint(envelope: EventEnvelope) -> str | None:
    """The session key a transaction message most likely names, from the raw payload (not
    validated yet: any wrong guess only loads a row for nothing)."""
    fields = envelope.__dict__  # the envelope's fields (one attribute lookup)
    action = fields["action"]
    try:
        if action == "TransactionEvent":
            transaction_id = fields["payload"]["transactionInfo"]["transactionId"]
        elif action == "MeterValues" or action == "StopTransaction":
            transaction_id = fields["payload"]["transactionId"]
        elif action == "StartTransaction":
            transaction_id = fields["response"]["transactionId"]  # type: ignore[index]
        else:
            return None
    except (KeyError, TypeError):
        return None
    if isinstance(transaction_id, bool) or not isinstance(transaction_id, (str, int)):
        return None
    return session_id_for(fields["charge_point_id"], transaction_id)


class _TariffVersions:
    """The stored versions of one tariff (read once per batch) and
    :func:`storage.repositories.pick_tariff_version` over them, for a session's start and end.

    When no version has a validity window (OCPI Tariff.start_date_time / end_date_time), every
    version is valid at any instant, so the valid versions sorted by ``last_updated`` are the
    same list for every session: kept, and the pick is a bisection of it (the versions
    published by ``known_at`` are a prefix of that sorted list; its last one, or the first
    version when the prefix is empty). With a window, ``pick_tariff_version`` itself runs.
    Each version comes with its Tariff cache key (id, last_updated).
    """

    def __init__(self, versions) -> None:
        self.versions = versions
        self.sorted = None
        if all(v.valid_from is None and v.valid_to is None for v in versions):
            self.sorted = sorted(versions, key=_LAST_UPDATED)
            self.published = [v.last_updated for v in self.sorted]

    def pick(self, at: datetime, known_at: datetime | None):
        """(the version for a session starting ``at``, known by ``known_at``; its cache key),
        or (None, None)."""
        ordered = self.sorted
        if ordered is None:
            record = repo.pick_tariff_version(self.versions, at, known_at=known_at)
        elif not ordered:
            record = None
        elif known_at is None:
            record = ordered[-1]
        else:
            record = ordered[max(bisect_right(self.published, known_at) - 1, 0)]
        return (None, None) if record is None else (record, (record.id, record.last_updated))


_LAST_UPDATED = attrgetter("last_updated")
_new_tuple = tuple.__new__


#: OCPI classes whose instance dict holds every field (validated, copied or constructed by
#: pydantic), read directly by Billing._cdr_rows.
_PLAIN_MODELS = frozenset({Cdr, Price, CdrToken, CdrLocation})


def _model_fields(model) -> dict:
    """The fields of an OCPI model: its instance dict for the classes of _PLAIN_MODELS, else
    read by attribute (a subclass could compute one)."""
    if type(model) in _PLAIN_MODELS:
        return model.__dict__
    return {name: getattr(model, name) for name in type(model).model_fields}


def _end_of(state: SessionState) -> datetime | None:
    ends = [e.timestamp for e in state.events() if getattr(e, "type", None) == "TransactionEnded"]
    if ends:
        return ends[-1]
    return state.closed_idle.last_received_at if state.closed_idle else None


class Billing:
    """The :class:`streams.processor.EventHandler` of the worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = AssemblerConfig.from_settings(settings)
        self._stores: dict[int, SqlSessionStore] = {}
        #: Session states kept parsed between batches (validated against their rows).
        self.warm = WarmStates(settings.worker_state_cache_sessions,
                               int(settings.worker_state_cache_json_mb * 1_000_000))
        self._tariffs: dict[tuple, Tariff] = {}
        #: id of a Tariff of ``_tariffs`` (kept there, never changed) -> its OCPI JSON
        self._tariff_texts: dict[int, str] = {}
        #: charge point id -> {open session id: its idle deadline (last received_at +
        #: timeout)}; loaded from SQL on first use, kept up to date per envelope. Only an
        #: index: its content always equals what the sessions table says (see _close_idle_of).
        self._deadlines: dict[str, dict[str, datetime]] = {}

    def on_partitions_changed(self) -> None:
        """Partitions were assigned or revoked (a rebalance): another worker may have applied
        events of these charge points meanwhile. Forget the idle-deadline index (rebuilt from
        SQL at the next message of each charge point) and the kept states (they would only
        be used if their rows are unchanged, but they are likely to be of no more use)."""
        self._deadlines.clear()
        self.warm.clear()

    # --- batch hooks (called by the processor) -------------------------------------------

    def begin_batch(self, db: Session) -> None:
        self._stores[id(db)] = SqlSessionStore(db, self.config.idle_timeout, defer_cdrs=True, warm=self.warm)

    def prefetch(self, db: Session, envelopes: list[EventEnvelope]) -> None:
        """Load the session rows the batch's transaction messages name, in bulk (a hint:
        the assembler still decides which session a message belongs to)."""
        deadlines = self._deadlines
        # and the open sessions of the charge points whose deadline index handle loads from
        # SQL (their first message since a start, a rebalance or a close): one query for all
        self._store(db).prefetch((key for key in map(_session_key_hint, envelopes) if key is not None),
                                 {cp for e in envelopes if (cp := e.charge_point_id) not in deadlines})

    def end_batch(self, db: Session) -> list[dict]:
        """Nothing to do at the end of a batch: idle sessions are closed per charge point
        (:meth:`_close_idle_of`), not at a batch-wide watermark, because partitions are
        consumed unevenly (one can be days ahead of another in a catch-up or a replay).

        The CDRs issued in the batch are written here, in issue order, in one query + one
        insert (a binary COPY on PostgreSQL; :func:`storage.repositories.issue_cdrs`: same idempotence and
        conflict rules as one by one), with their pushes queued in the same transaction.
        Returns the CDR rows newly inserted (the worker produces them on ``cdrs``)."""
        store = self._stores.pop(id(db), None)
        if store is not None:
            store.write_rows()
        if store is not None and store.cdr_rows:
            rows, store.cdr_rows = store.cdr_rows, []
            return self._issue(db, rows)
        return []

    @staticmethod
    def _issue(db: Session, rows: list[dict]) -> list[dict]:
        new = repo.issue_cdrs(db, rows)
        # Every CDR issued (new or already there), like enqueue per issue_cdr: idempotent.
        enqueue_cdr_row_pushes(db, rows)
        return new

    def _close_idle_of(self, db: Session, store: SqlSessionStore, charge_point_id: str, now: datetime) -> None:
        """Close the charge point's sessions silent for the idle timeout at ``now``, the
        ``received_at`` of that charge point's message being applied (docs/ocpp-sessions.md:
        "a transaction that never ends"). Every message of a charge point is a check, so a
        session is closed at the first message of its charge point at or after its deadline:
        a function of that charge point's ordered messages (one partition), and the CDR's
        last_updated (the close time) is the same in a replay. The deadline index only
        avoids a query per message; it is rebuilt from SQL after a restart.
        """
        deadlines = self._deadlines.get(charge_point_id)
        if deadlines is None:
            deadlines = self._deadlines[charge_point_id] = {
                s.session_id: s.last_received_at + self.config.idle_timeout
                for s in store.open_sessions_of(charge_point_id) if s.last_received_at is not None
            }
        if not deadlines or min(deadlines.values()) > now:
            return
        self._deadlines.pop(charge_point_id, None)  # rebuilt from SQL at the next message
        store.begin_envelope()
        try:
            closed = SessionAssembler(self.config, _ChargePointView(store, charge_point_id)).close_idle(now)
            rows = [row for c in closed for row in self._cdr_rows(c, self._documents(db, c))]
        except NoTariff:
            store.discard_envelope()  # closed at a later message, once a tariff is there
            return
        except (OperationalError, InterfaceError, PendingRollbackError):
            store.discard_envelope()
            raise  # the database failed: the processor fails the batch
        except Exception:  # noqa: BLE001
            # A bug closing these sessions must not undo or dead-letter the message that
            # was applied (its effects are kept): the sessions stay open, retried at the
            # charge point's next message.
            store.discard_envelope()
            log.exception("closing idle sessions of %s at %s failed; retried at its next message",
                          charge_point_id, now.isoformat())
            return
        store.commit_envelope()
        self._record_rows(db, rows)

    def _store(self, db: Session) -> SqlSessionStore:
        store = self._stores.get(id(db))
        if store is None:
            store = self._stores[id(db)] = SqlSessionStore(db, self.config.idle_timeout)
        return store

    # --- one envelope ----------------------------------------------------------------------

    #: The state-free part of :meth:`handle` (:func:`sessions.assembler.decode_call`: OCPP
    #: validation and fingerprint), which the processor may run ahead, even while another
    #: thread commits the previous batch: it touches nothing of this handler.
    decode = staticmethod(decode_call)

    def handle(self, db: Session, envelope: EventEnvelope, decoded: DecodedCall | None = None) -> Outcome:
        """Apply one envelope in ``db``'s transaction; ``decoded``: :attr:`decode` of it if
        computed ahead (else computed here)."""
        store = self._stores.get(id(db)) or self._store(db)
        fields = envelope.__dict__  # the envelope's fields (one attribute lookup)
        charge_point_id, now = fields["charge_point_id"], fields["received_at"]
        store.now = now
        store.begin_envelope()
        assembler = store.assembler
        if assembler is None:
            assembler = store.assembler = SessionAssembler(self.config, store)
        try:
            autoflush = db.autoflush  # what ``with db.no_autoflush`` does, without the generator
            if autoflush:  # (the processor's batch runs without autoflush already)
                db.autoflush = False
            try:
                outcome = assembler.apply(envelope, decoded)
                # Every CDR row (JSON included) is built before anything is kept.
                completed, corrections = outcome.completed, outcome.corrections
                rows = [row for c in completed + corrections for row in self._cdr_rows(c, self._documents(db, c))
                        ] if completed or corrections else None
            finally:
                if autoflush:
                    db.autoflush = autoflush
        except NoTariff as exc:
            store.discard_envelope()
            self._deadlines.pop(charge_point_id, None)
            return Outcome.dead_lettered(str(exc))
        except Exception:
            store.discard_envelope()
            self._deadlines.pop(charge_point_id, None)
            raise
        store.commit_envelope()
        if rows:
            self._record_rows(db, rows)
        deadlines = self._deadlines.get(charge_point_id)
        if deadlines is None:  # the index is loaded from SQL (this state included)
            self._close_idle_of(db, store, charge_point_id, now)
        else:
            state = outcome.state
            if state is not None:  # the charge point's deadline index follows the message
                last = state.open_since  # is_open and last_received_at
                if last is not None:
                    deadlines[state.session_id] = last + store.idle_timeout  # = self.config.idle_timeout
                else:
                    deadlines.pop(state.session_id, None)
            if deadlines and min(deadlines.values()) <= now:  # _close_idle_of's own first check
                self._close_idle_of(db, store, charge_point_id, now)
        kind = outcome.kind
        # Outcome(kind, reason, session id) without the named tuple's Python __new__
        return _new_tuple(Outcome, (kind, outcome.reason if kind == "dead_lettered" else None, outcome.session_id))

    def _tariff(self, db: Session, session: CompletedSession):
        cached = self._store(db).tariff_versions
        versions = cached.get(self.settings.default_tariff_id)
        if versions is None:
            versions = _TariffVersions(repo.tariff_versions(db, self.settings.default_tariff_id))
            cached[self.settings.default_tariff_id] = versions
        record, key = versions.pick(session.start, session.end)
        if record is None:
            raise NoTariff(
                f"no version of tariff {self.settings.default_tariff_id} is valid at the session start "
                f"{session.start.isoformat()} ({session.session_id}); load it on the tariffs topic and replay"
            )
        tariff = self._tariffs.get(key)
        if tariff is None:
            tariff = self._tariffs[key] = Tariff.model_validate_json(record.tariff_json)
            self._tariff_texts[id(tariff)] = tariff_json(tariff)
        return tariff

    def _documents(self, db: Session, session: CompletedSession) -> list[Cdr | dict]:
        """The CDRs to issue for this session version: [credit, replacement] or [cdr]. The
        session's own CDR comes as its finished ``cdrs`` row (:func:`streams.cdrs.session_cdr_row`,
        made from plain data), or as the Cdr when that leaves it to the models; the credit
        CDR as a Cdr. :meth:`_cdr_rows` makes the rows of the Cdrs."""
        tariff = self._tariff(db, session)
        cdr = (session_cdr_row(session, tariff, self.settings, self._tariff_texts.get(id(tariff)))
               or session_cdr(session, tariff, self.settings))
        if session.version == 0:
            return [cdr]
        replaced_json = self._store(db).issued.get(session.replaces_cdr_id)
        if replaced_json is None:
            replaced = repo.get_cdr(db, self.settings.country_code, self.settings.party_id, session.replaces_cdr_id)
            if replaced is None:  # pragma: no cover - the replaced version was issued by us
                raise LookupError(f"CDR {session.replaces_cdr_id} to credit is not in the database")
            replaced_json = replaced.cdr_json
        return [credit_for(Cdr.model_validate_json(replaced_json), session), cdr]

    def _write(self, db: Session, session: CompletedSession, documents: list[Cdr]) -> list[str]:
        """Issue these CDRs of the session (see :meth:`_record_rows`); their ids."""
        return self._record_rows(db, self._cdr_rows(session, documents))

    @staticmethod
    def _cdr_rows(session: CompletedSession, documents: list[Cdr | dict]) -> list[dict]:
        """The ``cdrs`` rows of these CDRs (nothing written); a row given (see
        :meth:`_documents`) is taken as it is."""
        rows = []
        for cdr in documents:
            if type(cdr) is dict:
                rows.append(cdr)
                continue
            document = cdr_json(cdr)
            # Fields read from the instance dicts (pydantic models have a ``__getattr__``:
            # each attribute read takes the generic slow path); _model_fields for others.
            fields = _model_fields(cdr)
            tariffs = fields["tariffs"]
            tariff = tariffs[0] if tariffs else None
            total_cost = _model_fields(fields["total_cost"])
            token = _model_fields(fields["cdr_token"])
            location = _model_fields(fields["cdr_location"])
            rows.append({
                "country_code": fields["country_code"],
                "party_id": fields["party_id"],
                "id": fields["id"],
                "start_date_time": fields["start_date_time"],
                "end_date_time": fields["end_date_time"],
                "currency": fields["currency"],
                "total_cost_excl_vat": total_cost["excl_vat"],
                "total_cost_incl_vat": total_cost["incl_vat"],
                "total_energy": fields["total_energy"],
                "total_time": fields["total_time"],
                "total_parking_time": fields["total_parking_time"],
                "credit": bool(fields["credit"]),
                "credit_reference_id": fields["credit_reference_id"],
                "emsp_country_code": token["country_code"],
                "emsp_party_id": token["party_id"],
                "location_id": location["id"],
                "evse_uid": location["evse_uid"],
                "tariff_id": tariff.id if tariff else None,
                "tariff_version": tariff.last_updated if tariff else None,
                "last_updated": fields["last_updated"],
                "session_key": session.session_id,
                "cdr_json": document,
            })
        return rows

    def _record_rows(self, db: Session, rows: list[dict]) -> list[str]:
        """Issue CDR rows: in a batch, kept for :meth:`end_batch`; else written at once."""
        store = self._store(db)
        for row in rows:
            if store.cdr_rows is not None:
                store.cdr_rows.append(row)  # written by end_batch, in this transaction
            else:
                issued = repo.issue_cdr(db, **row)
                # The push to the eMSP's CDR receiver is queued in the same transaction as
                # the CDR row (outbox): no CDR without its push, no push of a CDR rolled back.
                enqueue_cdr_push(db, issued.record)
            store.issued[row["id"]] = row["cdr_json"]
        return [row["id"] for row in rows]
