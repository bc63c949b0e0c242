"""The unit of work of the worker: a batch of ``ocpp-events`` records in, one transaction out.

For each record, in offset order per partition, exactly one of:

* **dead-lettered** with a reason: the value is not an EventEnvelope, the OCPP payload
  fails its schema (``schemas.ocpp.validate_call``), or session assembly rejects it
  (unknown transaction, implausible timestamp, ...). The original bytes are kept;
* **duplicate**: session assembly has already applied the same message;
* **applied**: the event changed a session (or was a message we keep but do not bill on,
  such as BootNotification); a completed session is priced and its CDR issued.

Everything a batch changes commits in ONE database transaction with the tracking record
(consumer group, topic, partition, next offset) and the counters, so after a crash the
worker resumes exactly after the last committed batch (:mod:`streams.worker` seeks there)
and ``events_in == applied + dead_lettered + duplicates`` holds at every commit. A record
below the stored offset (a zombie consumer, a fetch from before a seek) is skipped, not
applied twice: the tracking row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL) while
the batch is applied.
"""

from __future__ import annotations

import inspect
import json

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.orm import Session, sessionmaker

from schemas.envelope import EventEnvelope
from storage import repositories as repo


class InRecord(NamedTuple):
    """A consumed Kafka record (what the worker hands to the processor). A named tuple: one
    is built per record (a frozen dataclass took ~0.6 µs, this ~0.2)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class Outcome(NamedTuple):
    """What became of one event: ``applied`` | ``duplicate`` | ``dead_lettered`` (a named
    tuple, like :class:`InRecord`: one per record)."""

    kind: str
    reason: str | None = None
    session_key: str | None = None

    @classmethod
    def applied(cls, session_key: str | None = None) -> "Outcome":
        return cls("applied", None, session_key)

    @classmethod
    def duplicate(cls, session_key: str | None = None) -> "Outcome":
        return cls("duplicate", None, session_key)

    @classmethod
    def dead_lettered(cls, reason: str) -> "Outcome":
        return cls("dead_lettered", reason)


class EventHandler(Protocol):
    """Applies one valid envelope to the session state in ``db`` (see :mod:`streams.billing`).

    Optional hooks: ``begin_batch(db)`` before the first record of a batch,
    ``prefetch(db, envelopes)`` with the batch's envelopes before the first is handled
    (a hint for loading state in bulk; it must not change any outcome), and
    ``end_batch(db)`` after the last; it returns the ``cdrs`` rows (column -> value) it
    inserted, which the worker produces on the ``cdrs`` topic after the commit
    (:attr:`BatchResult.cdrs`). ``decode(envelope)``: the pure part of ``handle`` (no
    database, no handler state, never raising), which the processor may compute ahead, in
    any order and while an earlier batch commits; a handler with ``decode`` is called as
    ``handle(db, envelope, decoded)`` with its result.
    """

    def handle(self, db: Session, envelope: EventEnvelope) -> Outcome: ...


@dataclass
class BatchResult:
    counters: Counter = field(default_factory=Counter)
    #: Records skipped because the stored offset was already past them.
    skipped: int = 0
    #: The outbox rows this batch committed, in insertion order: the CDR rows the handler's
    #: ``end_batch`` returned (column -> value) and the dead letters (column -> value). The
    #: worker produces them without reading them back (see streams.worker).
    cdrs: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)


@dataclass
class Published:
    """Outbox rows produced on their topics, to be marked ``published`` in the next batch's
    transaction: CDRs by (country_code, party_id, id), dead letters by (source topic,
    partition, offset)."""

    cdrs: list[tuple[str, str, str]] = field(default_factory=list)
    dead_letters: list[tuple[str, int, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.cdrs or self.dead_letters)


COUNTER_OF = {"applied": "applied", "duplicate": "duplicates", "dead_lettered": "dead_lettered"}


class Decoded(NamedTuple):
    """A record decoded ahead of its batch (:meth:`Processor.decode`, pure): its envelope
    (None when the value is not one), the outcome already known (dead-lettered: not an
    envelope, unstorable) or None, and the handler's ``decode`` of the envelope."""

    record: InRecord
    envelope: EventEnvelope | None
    outcome: Outcome | None
    decoded: object = None


class Processor:
    """Applies batches of records (see the module docstring), in two phases so a caller can
    overlap the second with other work: :meth:`apply` (phase A, on the caller's thread: the
    positions locked, every record handled, the rows built) and :meth:`AppliedBatch.commit`
    (phase B: the rows written, the transaction committed), which may run in another thread
    once phase A returned. :meth:`process_batch` does both in a row. :meth:`decode`, the
    pure per-record start of phase A, may run ahead (even while a batch commits)."""

    def __init__(self, sessions: sessionmaker, handler: EventHandler, consumer_group: str) -> None:
        self.sessions = sessions
        self.handler = handler
        self.consumer_group = consumer_group

    def process_batch(self, records: list[InRecord], published: Published | None = None) -> BatchResult:
        """Apply ``records`` in one transaction (see the module docstring); ``published``:
        outbox rows produced since the last batch, marked in the same transaction."""
        if not records:
            return BatchResult()
        return self.apply(records, published).commit()

    def decode(self, records: list[InRecord]) -> list[Decoded]:
        """The pure part of applying each record: the NUL check, the envelope parsed, the
        handler's ``decode`` (if it has one). No database, no handler state: it can run
        while another thread commits the previous batch."""
        decode = _decoder_of(self.handler)
        parse = EventEnvelope.from_bytes
        todo: list[Decoded] = []
        add_todo = todo.append
        for record in records:
            value = record[4]
            if b"\\u0000" in value and (nul_at := _nul_path(value)) is not None:
                add_todo(Decoded(record, None, Outcome.dead_lettered(
                    f"unstorable event: {nul_at} contains the NUL character (U+0000), "
                    "which text columns cannot store")))
                continue
            try:
                envelope = parse(value)
            except (ValidationError, UnicodeDecodeError, ValueError) as exc:
                add_todo(Decoded(record, None, _not_an_envelope(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the partition
                # (a batch that fails on every retry); the record waits in the dead
                # letters, with the error, for a fixed parser and a replay.
                add_todo(Decoded(record, None, Outcome.dead_lettered(
                    f"not an event envelope: {type(exc).__name__}: {exc}"[:1000])))
                continue
            # The handler's decode never raises for an envelope: what it cannot decode, its
            # handle computes again (and fails there, dead-lettered as always).
            add_todo(Decoded(record, envelope, None, decode(envelope) if decode is not None else None))
        return todo

    def apply(self, records: list[InRecord], published: Published | None = None,
              decoded: list[Decoded] | None = None) -> "AppliedBatch":
        """Phase A: open the batch's transaction, lock the positions, handle every record
        (``decoded``: :meth:`decode` of exactly these ``records``, computed ahead), build the
        rows; returns the batch to commit. Nothing is written yet (the handler writes at
        ``end_batch``); on failure the transaction is rolled back and the error raised."""
        db = self.sessions()
        try:
            transaction = db.begin()
            result = BatchResult()
            by_topic: dict[str, set[int]] = {}
            for r in records:
                by_topic.setdefault(r.topic, set()).add(r.partition)
            positions = {t: repo.locked_positions(db, self.consumer_group, t, ps) for t, ps in by_topic.items()}
            next_offsets: dict[tuple[str, int], int] = {}
            if hasattr(self.handler, "begin_batch"):
                self.handler.begin_batch(db)
            # One flush at the end of the batch (batched INSERTs / UPDATEs) instead of one
            # before every query; handlers keep what they wrote in this batch themselves.
            with db.no_autoflush:
                if decoded is None:
                    decoded = self.decode(records)
                # Records below the stored next offset were applied already (a zombie
                # consumer, a fetch from before a seek): skipped.
                todo = []
                for item in decoded:
                    topic, partition, offset = item[0][:3]
                    if offset < positions[topic].get(partition, -1):
                        result.skipped += 1
                    else:
                        todo.append(item)
                if hasattr(self.handler, "prefetch"):
                    self.handler.prefetch(db, [envelope for _, envelope, _, _ in todo if envelope is not None])
                # The raw event rows, built in their final driver form (one tuple each) and
                # inserted in one statement at commit (see repo.insert_event_rows).
                event_rows: list[tuple] = []
                add_row = event_rows.append
                db_time = repo.event_time_binder(db)
                kinds: dict[str, int] = {}
                handle = self.handler.handle
                with_decoded = _decoder_of(self.handler) is not None
                for record, envelope, outcome, pre in todo:
                    topic, partition, offset, _, value = record
                    if envelope is not None:
                        # A handler bug must not take the batch down: the event is
                        # dead-lettered with the error so it can be replayed once fixed.
                        # Handlers compute first and write last (see streams.billing), so a
                        # failure leaves no partial write behind.
                        try:
                            outcome = handle(db, envelope, pre) if with_decoded else handle(db, envelope)
                        except repo.StorageInconsistency:
                            raise  # never paper over a CDR id issued with other content, nor a broken stored state
                        except _DATABASE_ERRORS:
                            # The database failed (server restarted, connection dropped, SQLite
                            # locked), not the event: fail the whole batch so it is retried from
                            # the stored offsets. As a dead letter, the event would be lost to
                            # billing (and on SQLite, where a failed statement does not abort the
                            # transaction, the batch would even commit that way).
                            raise
                        except Exception as exc:  # noqa: BLE001
                            outcome = _internal_error(exc)
                        kind, reason, session_key = outcome
                        fields = envelope.__dict__  # the envelope's fields (one attribute lookup)
                        add_row((topic, partition, offset, fields["charge_point_id"], fields["message_id"],
                                 fields["ocpp_version"], fields["action"], db_time(fields["received_at"]),
                                 value, kind, reason, session_key))
                    else:
                        kind, reason, session_key = outcome
                        add_row((topic, partition, offset, _key_of(record), None, None, None,
                                 None, value, kind, reason, session_key))
                    kinds[kind] = kinds.get(kind, 0) + 1
                    if kind == "dead_lettered":
                        result.dead_letters.append(_letter(record, envelope, outcome))
                    next_offsets[(topic, partition)] = offset + 1
                if todo:
                    result.counters["events_in"] = len(todo)
                    for kind, count in kinds.items():
                        result.counters[COUNTER_OF[kind]] += count
        except BaseException:
            _close(db, rollback=True)
            raise
        return AppliedBatch(self, db, transaction, result, event_rows, next_offsets, published)


class AppliedBatch:
    """A batch after phase A (:meth:`Processor.apply`): its transaction open, its rows built.
    :meth:`commit` writes them and commits (phase B), from any one thread, once; meanwhile
    nobody else may use its Session, nor the handler."""

    def __init__(self, processor: Processor, db: Session, transaction, result: BatchResult, event_rows: list[tuple],
                 next_offsets: dict[tuple[str, int], int], published: Published | None) -> None:
        self.processor = processor
        self.db = db
        self.transaction = transaction
        self.result = result
        self.event_rows = event_rows
        self.next_offsets = next_offsets
        self.published = published

    def commit(self) -> BatchResult:
        """Phase B: the event rows, dead letters, the handler's ``end_batch``, the outbox
        rows produced marked, the positions and counters; COMMIT. On failure: rolled back,
        the error raised (nothing of the batch kept)."""
        self.write()
        return self.finish()

    def write(self) -> None:
        """Phase B without its COMMIT (:meth:`finish`). On failure: rolled back, raised."""
        db, result, processor = self.db, self.result, self.processor
        try:
            repo.insert_event_rows(db, self.event_rows)
            self.event_rows = []
            repo.add_dead_letters(db, result.dead_letters)
            if hasattr(processor.handler, "end_batch"):
                result.cdrs = processor.handler.end_batch(db) or []
            published = self.published
            if published:
                repo.mark_published_by_key(db, published.cdrs, published.dead_letters)
            repo.track_many(db, processor.consumer_group, self.next_offsets)
            repo.add_to_counters(db, processor.consumer_group, dict(result.counters))
        except BaseException:
            _close(db, rollback=True)
            raise

    def finish(self) -> BatchResult:
        """The COMMIT of a batch :meth:`write` wrote. On failure: rolled back, raised."""
        db = self.db
        try:
            self.transaction.commit()
        except BaseException:
            _close(db, rollback=True)
            raise
        _close(db)
        return self.result


def _close(db: Session, rollback: bool = False) -> None:
    """End ``db`` as ``sessionmaker.begin()`` does: rolled back on failure, then closed."""
    try:
        if rollback:
            db.rollback()
    finally:
        db.close()


def _decoder_of(handler: EventHandler):
    """The handler's ``decode``, if it has one and its ``handle`` takes the result (a
    subclass that overrides ``handle(db, envelope)`` gets it computed by ``handle``)."""
    decode = getattr(handler, "decode", None)
    if decode is None:
        return None
    try:
        parameters = inspect.signature(handler.handle).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_it = len(positional) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in parameters)
    return decode if takes_it else None


#: Failures of the database, not of the event (see :meth:`Processor.process_batch`).
_DATABASE_ERRORS = (OperationalError, InterfaceError, PendingRollbackError)


def _internal_error(exc: Exception) -> Outcome:
    return Outcome.dead_lettered(f"internal error while applying: {type(exc).__name__}: {exc}"[:1000])


def _letter(record: InRecord, envelope: EventEnvelope | None, outcome: Outcome) -> dict:
    """The dead letter (column -> value) of a record the batch dead-lettered."""
    return dict(
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        charge_point_id=envelope.charge_point_id if envelope else _key_of(record),
        message_id=envelope.message_id if envelope else None,
        reason=outcome.reason or "unknown",
        original=record.value,
        received_at=envelope.received_at if envelope else None,
    )


#: Length of the ``charge_point_id`` columns (events, dead letters).
KEY_COLUMN_LENGTH = 255


def _key_of(record: InRecord) -> str | None:
    """The charge point id of a record whose value is not an envelope: its key, if any.

    The key is whatever the producer sent, so it is made storable rather than trusted: bytes
    that are not UTF-8 become U+FFFD, a NUL character (which PostgreSQL text cannot hold)
    is written as the four characters ``\\x00``, and a key longer than the column ends in
    ``…`` at 255 characters. Otherwise one such record would fail its batch on every retry
    and stop the partition. The record itself (``raw`` / ``original``) is kept unchanged,
    and its topic, partition and offset lead to the original key.
    """
    if not record.key:
        return None
    key = record.key.decode(errors="replace")
    if "\x00" in key:
        key = key.replace("\x00", "\\x00")
    if len(key) > KEY_COLUMN_LENGTH:
        key = key[:KEY_COLUMN_LENGTH - 1] + "…"
    return key


def _nul_path(value: bytes) -> str | None:
    """Where the JSON ``value`` holds a string (or an object key) with a NUL character, as
    ``payload.idTag``; None when it holds none (the text ``\\u0000`` was an escaped
    backslash) or is not JSON (the envelope parser then says why).

    PostgreSQL text columns cannot store U+0000, and the envelope's ids and the payload's
    transaction ids are stored as text: such an event would fail its batch on every retry.
    Called only for the rare records whose bytes contain ``\\u0000``.
    """
    try:
        document = json.loads(value)
    except ValueError:
        return None
    todo: list[tuple[str, object]] = [("", document)]
    while todo:
        path, node = todo.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return path or "value"
        elif isinstance(node, dict):
            for key, item in node.items():
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return f"a key in {path or 'the value'}"
                todo.append((where, item))
        elif isinstance(node, list):
            todo.extend((f"{path}[{i}]", item) for i, item in enumerate(node))
    return None


def _not_an_envelope(exc: Exception) -> Outcome:
    """The dead-letter outcome of a record value :meth:`EventEnvelope.from_bytes` rejected."""
    if isinstance(exc, ValidationError):
        return Outcome.dead_lettered(f"not an event envelope: {_first_error(exc)}")
    return Outcome.dead_lettered(f"not an event envelope: {exc}")


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "value"
    return f"{where}: {first.get('msg')}"
