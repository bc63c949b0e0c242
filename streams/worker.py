"""The stream worker: ``ocpp-events`` -> sessions -> priced CDRs on ``cdrs`` and in SQL.

One process runs:

* a consumer of ``ocpp-events`` in the consumer group ``settings.app_id``, with a
  rebalance listener that seeks every assigned partition to the offset stored in the
  ``tracking`` table (or the beginning when none is stored): the database, not Kafka's
  committed offsets, says where processing resumes;
* a group-less reader of the compacted ``tariffs`` topic, read to its end before the first
  event and polled between batches, storing every tariff version in the ``tariffs`` table;
* per batch of records, :class:`streams.processor.Processor` applies everything in one
  database transaction (exactly-once effect, see there): handled on the event loop's thread,
  and on PostgreSQL written and committed in a committer thread while the loop decodes the
  records already fetched for the next batch (see :meth:`Worker.run_once`);
* after the commit, the transactional outbox: CDRs and dead letters not yet ``published``
  are produced (idempotent producer, acks=all) on ``cdrs`` (key CDR id) and
  ``ocpp-events-dlq`` (key: the source record's key; headers: reason, source topic,
  partition, offset), then marked published. A crash in between produces the same bytes
  again under the same key, which downstream consumers drop by CDR id.

  The outbox of a batch is produced right after its commit from what the batch committed
  (no query), and the rows produced are marked ``published`` in the next batch's
  transaction (no transaction of their own), or when a poll brings nothing. The whole
  outbox is read from SQL (as it always was) at start and every ``OUTBOX_SCAN_S`` seconds:
  that picks up rows this worker did not commit (``chargeledger rerate`` that stopped
  before producing). So after a crash, the rows produced since the last commit are
  produced again at the next start (same bytes, same key).

Why aiokafka here and not a faust agent: see :mod:`streams.app`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import Counter as PromCounter

from chargeledger.settings import Settings
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker
from storage.models import CdrRecord, DeadLetterRecord
from streams.processor import BatchResult, EventHandler, InRecord, Processor, Published

log = logging.getLogger("chargeledger.worker")

#: Read the whole outbox from SQL this often (seconds; and at start).
OUTBOX_SCAN_S = 30.0

EVENTS_IN = PromCounter("chargeledger_events_in", "Records consumed from ocpp-events")
APPLIED = PromCounter("chargeledger_events_applied", "Events applied to a session (or kept)")
DEAD_LETTERED = PromCounter("chargeledger_events_dead_lettered", "Events dead-lettered with a reason")
DUPLICATES = PromCounter("chargeledger_events_duplicates", "Events dropped as duplicates")
CDRS_PUBLISHED = PromCounter("chargeledger_cdrs_published", "CDR records produced on the cdrs topic")
_PROM = {"events_in": EVENTS_IN, "applied": APPLIED, "dead_lettered": DEAD_LETTERED, "duplicates": DUPLICATES}


class WorkerFailed(RuntimeError):
    """A batch of this worker failed; it must be restarted (see :meth:`Worker.run_once`)."""


@dataclass
class WorkerStats:
    batches: int = 0
    records: int = 0
    skipped: int = 0
    cdrs_published: int = 0
    dead_letters_published: int = 0
    tariff_versions: int = 0
    started: float = field(default_factory=time.monotonic)


class _ResumeFromDatabase(ConsumerRebalanceListener):
    """On assignment, seek each partition to the next offset stored in ``tracking``."""

    def __init__(self, worker: "Worker") -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked) -> None:
        # A batch committing in the committer thread finishes first (its transaction holds
        # the positions' locks: it is fenced either way, but the next owner need not wait).
        await self.worker._wait_for_commit()
        # Records read ahead may be of partitions revoked now, and the next assignment resets
        # the positions to the stored ones: fetched again from there.
        self.worker._ahead = None
        if revoked and hasattr(self.worker.handler, "on_partitions_changed"):
            self.worker.handler.on_partitions_changed()

    async def on_partitions_assigned(self, assigned) -> None:
        w = self.worker
        await w._wait_for_commit()
        w._ahead = None  # read before the positions were reset (see on_partitions_revoked)
        if hasattr(w.handler, "on_partitions_changed"):
            w.handler.on_partitions_changed()
        with w.sessions() as db:
            stored = repo.tracked_offsets(db, w.group, w.events_topic)
        for tp in assigned:
            # Kafka's committed offset is informational (committed after the database);
            # seek only where it differs from the stored one, so the fetcher is not reset
            # (and records fetched twice) in the common case where they agree.
            committed = await w.consumer.committed(tp)
            if tp.partition in stored:
                if committed != stored[tp.partition]:
                    w.consumer.seek(tp, stored[tp.partition])
            elif committed is not None:
                await w.consumer.seek_to_beginning(tp)
        log.info("assigned %s, resuming at %s", sorted(tp.partition for tp in assigned), stored)


class Worker:
    def __init__(self, settings: Settings, handler: EventHandler | None = None, sessions=None) -> None:
        self.settings = settings
        self.sessions = sessions or make_sessionmaker(make_engine(settings.database_url))
        if handler is None:
            from streams.billing import Billing

            handler = Billing(settings)
        self.handler = handler
        self.group = settings.app_id
        self.events_topic = settings.topic(settings.topic_events)
        self.tariffs_topic = settings.topic(settings.topic_tariffs)
        self.cdrs_topic = settings.topic(settings.topic_cdrs)
        self.dlq_topic = settings.topic(settings.topic_events_dlq)
        self.processor = Processor(self.sessions, handler, self.group)
        self.stats = WorkerStats()
        self.consumer: AIOKafkaConsumer | None = None
        self.tariff_consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        #: Outbox rows produced and not yet marked published (by the next transaction).
        self._published = Published()
        self._scanned_at = 0.0
        self._committing: asyncio.Task | None = None
        #: Phase B (the writes and COMMIT) in the committer thread, overlapped with reading
        #: ahead (see run_once): on a database server, not on SQLite (in-process: its phase B
        #: holds the GIL nearly throughout, so it only contended with the decoding).
        bind = getattr(self.sessions, "kw", {}).get("bind")
        self._commit_in_thread = bind is None or bind.dialect.name != "sqlite"
        #: Phase B of the batches, one at a time; started at the first batch.
        self._committer: ThreadPoolExecutor | None = None
        #: The running (or last) batch's commit in the committer thread.
        self._committing_batch: Future | None = None
        #: Records fetched and decoded while the last batch committed, for the next batch:
        #: (records, Processor.decode of them, next offset per partition).
        self._ahead: tuple[list[InRecord], list, dict] | None = None
        #: Why a batch failed, once one has: the consumer is past that batch's records (and
        #: those read ahead), which only the stored positions still know, so this worker
        #: applies nothing more (see run_once); a new one resumes from the stored positions.
        self._failed: str | None = None

    async def start(self) -> None:
        bootstrap = self.settings.kafka_bootstrap
        # linger 0: a batch's outbox is sent in one burst without yielding, so it still goes
        # out in one request per partition; a linger would only add its time to every batch
        # (the loop awaits the acks before the next poll).
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                         linger_ms=0)
        await self.producer.start()
        self.tariff_consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                                enable_auto_commit=False, auto_offset_reset="earliest")
        await self.tariff_consumer.start()
        await self._read_tariffs_to_end()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.worker_batch_size,
            isolation_level="read_committed",
            # A fetch with nothing new returns after 100 ms (default 500): a session's final
            # event waits less for its batch.
            fetch_max_wait_ms=100,
            session_timeout_ms=10_000,
            group_instance_id=self.settings.worker_instance_id or None,
            heartbeat_interval_ms=1_000,
        )
        await self.consumer.start()
        self.consumer.subscribe([self.events_topic], listener=_ResumeFromDatabase(self))
        # A previous run may have committed CDRs it did not get to produce.
        await self._publish_outbox()

    async def stop(self) -> None:
        await self._wait_for_commit()  # a cancelled run_once leaves its commit running
        if self._committer is not None:
            self._committer.shutdown(wait=False)
            self._committer = None
        try:
            await self._settle_outbox()
        except Exception:  # noqa: BLE001 - shutting down anyway; the next start produces it again
            log.exception("marking the outbox published while stopping")
        if self._committing is not None:
            await self._committing  # logs its own failure
        for client in (self.consumer, self.tariff_consumer, self.producer):
            if client is not None:
                try:
                    await client.stop()
                except Exception:  # noqa: BLE001 - shutting down anyway
                    log.exception("stopping a Kafka client")

    # --- tariffs ---------------------------------------------------------------------------

    async def _read_tariffs_to_end(self) -> None:
        consumer = self.tariff_consumer
        partitions = None
        for _ in range(50):
            partitions = consumer.partitions_for_topic(self.tariffs_topic)
            if partitions:
                break
            await consumer._client.force_metadata_update()  # noqa: SLF001 - no public API for it
            await asyncio.sleep(0.1)
        if not partitions:
            log.warning("topic %s not found: no tariffs yet", self.tariffs_topic)
            return
        tps = [TopicPartition(self.tariffs_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while True:
            behind = [tp for tp in tps if await consumer.position(tp) < end[tp]]
            if not behind:
                break
            await self._poll_tariffs(timeout_ms=500)

    async def _poll_tariffs(self, timeout_ms: int = 0) -> int:
        if self.tariff_consumer is None or not self.tariff_consumer.assignment():
            return 0
        batches = await self.tariff_consumer.getmany(timeout_ms=timeout_ms, max_records=1000)
        values = [r.value for recs in batches.values() for r in recs if r.value is not None]
        if not values:
            return 0
        stored = await asyncio.to_thread(self._store_tariffs, values)
        self.stats.tariff_versions += stored
        return stored

    def _store_tariffs(self, values: list[bytes]) -> int:
        from streams.tariffs import store_tariff_json

        count = 0
        with self.sessions.begin() as db:
            for value in values:
                try:
                    store_tariff_json(db, value)
                    count += 1
                except ValueError as exc:
                    log.error("ignoring an invalid tariff record: %s", exc)
            if count and hasattr(self.handler, "on_tariffs_changed"):
                self.handler.on_tariffs_changed(db)
        return count

    # --- the loop ----------------------------------------------------------------------------

    async def run_once(self, timeout_ms: int = 500) -> int:
        """One poll: apply one batch of events and publish its outbox. Returns records seen."""
        if self._failed is not None:
            raise WorkerFailed(f"an earlier batch failed ({self._failed}): the consumer is past its records, "
                               "so this worker stops; restart it to resume from the stored positions")
        await self._poll_tariffs()
        ahead, self._ahead = self._ahead, None
        if ahead is not None:  # fetched and decoded while the last batch committed
            records, decoded, offsets = ahead
        else:
            batches = await self.consumer.getmany(timeout_ms=timeout_ms,
                                                  max_records=self.settings.worker_batch_size)
            records, offsets = _in_records(batches), _next_offsets(batches)
            decoded = None
        scan = time.monotonic() - self._scanned_at > OUTBOX_SCAN_S
        if not records:
            await self._settle_outbox(scan=scan)  # idle: mark what was produced now
            return 0
        if scan:
            await self._settle_outbox(scan=True)
        published, self._published = self._published, Published()
        try:
            # Threads. Phase A (Processor.apply: positions locked, every event handled, rows
            # built) runs on the event loop's thread: it is CPU work holding the GIL, and in a
            # thread it gained nothing but GIL hand-offs with the consumer's fetches (measured
            # when the whole batch ran in asyncio.to_thread: SQLite 6,724 / 6,307 events/s
            # against 7,498 / 7,028 inline). Phase B (AppliedBatch.commit: the rows written,
            # COMMIT) runs in the committer thread, because it is mostly waiting: on
            # PostgreSQL ~20% of the loop's time was the connection's wait for the server;
            # sqlite3's stepping and the commit's fsync release the GIL too. Meanwhile this
            # thread takes the records already fetched (getmany with timeout 0: nothing new is
            # awaited while this batch's CDRs wait to be produced) and decodes them for the
            # next batch (Processor.decode: pure; it touches neither this batch's Session nor
            # the handler, and WarmStates' after-commit keeping, in the committer thread, is
            # under its lock). Measured (benchmarks/pipeline.py --only throughput, alternating
            # with the inline commit), PostgreSQL: +18% and +14% events/s in total over 2
            # series of 4 runs on a loaded machine; +6% over 6 pairs on a quiet one, once the
            # COPY inserts had cut the server's time (the server shares the machine's 2 cores
            # with the decoding here; not measured with a server of its own). Not on SQLite:
            # in-process, its phase B holds the GIL nearly throughout (the sqlite3 module
            # binds every row, the state JSON is built there), so the decoding only slowed it
            # down (4 series: -2% to -14% events/s in total); there phase B's writes run
            # inline and only its COMMIT (the fsync, GIL released) runs in the committer
            # thread, overlapping the read-ahead: +1% to +29%, typically +5-8% events/s,
            # ahead in 7 of 8 alternating pairs (quiet machine, 04:36 UTC 2026-11-26).
            # The next batch's phase A starts only after this batch committed (its reads see
            # this batch) and its outbox was produced. A failed commit drops what was read
            # ahead and raises as a failed batch always did (the worker resumes from the
            # stored positions). The loop (heartbeats included) waits for phase A (~0.2 s for
            # 2,000 events); a batch stuck longer than the session timeout (10 s) loses the
            # group membership and its partitions go to another worker, which resumes from
            # the stored positions (exactly-once holds: the tracking rows stay locked until
            # the commit, see Processor). The revoke listener waits for a running commit, so
            # a group rebalance waits for the running batch.
            applied = self.processor.apply(records, published, decoded)
        except BaseException:
            self._hand_back(published)
            raise
        if self._commit_in_thread:
            job = applied.commit
        else:  # SQLite: only the COMMIT (its fsync, GIL released) overlaps the read-ahead
            try:
                applied.write()
            except BaseException:
                self._hand_back(published)
                raise
            job = applied.finish
        if self._committer is None:
            self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chargeledger-commit")
        committing = self._committing_batch = self._committer.submit(job)
        try:
            await self._read_ahead()
        except Exception:  # noqa: BLE001 - the next poll fetches again (and fails as it would have)
            log.debug("reading ahead failed", exc_info=True)
        finally:  # cancelled too: the commit's outcome decides what is handed back
            try:
                result = await _finished(committing)
            except BaseException:
                self._ahead = None  # a failed batch: the next one must not be applied after it
                self._hand_back(published)
                raise
        for name, value in result.counters.items():
            if name in _PROM:
                _PROM[name].inc(value)
        self.stats.batches += 1
        self.stats.records += len(records)
        self.stats.skipped += result.skipped
        if result.cdrs or result.dead_letters:
            # At once, awaited: produced while the next batch is applied, the sends would
            # queue for the GIL behind it (measured: a worse latency tail, no throughput gain).
            await self._produce_batch(result)
        # Informational only (lag monitoring): the resume position is the tracking table.
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_offsets(offsets))
        return len(records)

    def _hand_back(self, published: Published) -> None:
        """A batch failed: what it was to mark published is marked by the next one, and this
        worker applies no further batch (:attr:`_failed`)."""
        exc = sys.exc_info()[1]
        self._failed = f"{type(exc).__name__}: {exc}"[:300] if exc is not None else "unknown error"
        self._published.cdrs[:0], self._published.dead_letters[:0] = published.cdrs, published.dead_letters

    async def _read_ahead(self) -> None:
        """Take the records already fetched (no wait) and decode them for the next batch."""
        batches = await self.consumer.getmany(timeout_ms=0, max_records=self.settings.worker_batch_size)
        records = _in_records(batches)
        if records:
            # Kept before decoding: should decoding fail (it does not raise, but a bug...),
            # the records are not lost (the consumer is past them): applied undecoded.
            self._ahead = (records, None, _next_offsets(batches))
            self._ahead = (records, self.processor.decode(records), self._ahead[2])

    async def _wait_for_commit(self) -> None:
        """Wait for the running batch's commit, if any (its failure is run_once's to raise)."""
        running = self._committing_batch
        if running is not None and not running.done():
            try:
                await _finished(running)
            except BaseException:  # noqa: BLE001 - raised by run_once
                pass

    async def _commit_offsets(self, offsets) -> None:
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - e.g. a rebalance in progress; harmless here
            log.debug("offset commit to Kafka skipped: %s", exc)

    async def _produce_batch(self, result: BatchResult) -> None:
        """Produce the outbox rows a batch committed, and remember them as published."""
        cdrs = [_cdr_message(c["id"], c["cdr_json"], c["content_hash"], c["country_code"], c["party_id"])
                for c in result.cdrs]
        letters = [_letter_message(d["charge_point_id"], d["original"], d["reason"], d["source_topic"],
                                   d["source_partition"], d["source_offset"]) for d in result.dead_letters]
        await self._produce(cdrs, letters)
        self._published.cdrs.extend((c["country_code"], c["party_id"], c["id"]) for c in result.cdrs)
        self._published.dead_letters.extend(
            (d["source_topic"], d["source_partition"], d["source_offset"]) for d in result.dead_letters)

    async def _produce(self, cdrs: list, letters: list) -> None:
        futures = []
        for key, value, headers in cdrs:
            futures.append(await self.producer.send(self.cdrs_topic, value=value, key=key, headers=headers))
        for key, value, headers in letters:
            futures.append(await self.producer.send(self.dlq_topic, value=value, key=key, headers=headers))
        await asyncio.gather(*futures)
        self.stats.cdrs_published += len(cdrs)
        self.stats.dead_letters_published += len(letters)
        CDRS_PUBLISHED.inc(len(cdrs))

    async def _settle_outbox(self, scan: bool = False) -> None:
        """Mark what was produced since the last batch, and (``scan``) produce whatever else
        the outbox table holds."""
        if self._published:
            published, self._published = self._published, Published()
            await asyncio.to_thread(self._mark_published_by_key, published)
        if scan:
            await self._publish_outbox()

    def _mark_published_by_key(self, published: Published) -> None:
        with self.sessions.begin() as db:
            repo.mark_published_by_key(db, published.cdrs, published.dead_letters)

    async def _publish_outbox(self) -> None:
        """Produce every outbox row not marked published, read from SQL page by page."""
        self._scanned_at = time.monotonic()
        while True:
            cdrs, letters = await asyncio.to_thread(self._unpublished)
            if not cdrs and not letters:
                return
            await self._produce([m for _, m in cdrs], [m for _, m in letters])
            await asyncio.to_thread(self._mark_published, [pk for pk, _ in cdrs], [pk for pk, _ in letters])
            if len(cdrs) < repo.OUTBOX_PAGE and len(letters) < repo.OUTBOX_PAGE:
                return  # that was all of it: no second query per batch to learn so

    def _unpublished(self):
        with self.sessions() as db:
            cdrs = [(c.pk, _cdr_message(c.id, c.cdr_json, c.content_hash, c.country_code, c.party_id))
                    for c in repo.unpublished_cdrs(db)]
            letters = [(d.pk, _letter_message(d.charge_point_id, d.original, d.reason, d.source_topic,
                                              d.source_partition, d.source_offset))
                       for d in repo.unpublished_dead_letters(db)]
        return cdrs, letters

    def _mark_published(self, cdr_pks: list[int], letter_pks: list[int]) -> None:
        with self.sessions.begin() as db:
            repo.mark_published(db, CdrRecord, cdr_pks)
            repo.mark_published(db, DeadLetterRecord, letter_pks)

    async def run(self, until: Callable[[], bool] | None = None, stop: asyncio.Event | None = None,
                  on_batch: Callable[["Worker"], None] | None = None) -> WorkerStats:
        """Run until ``until()`` is true (checked after each poll) or ``stop`` is set."""
        await self.start()
        try:
            while not (stop is not None and stop.is_set()):
                seen = await self.run_once()
                if on_batch is not None:
                    on_batch(self)
                if until is not None and seen == 0 and until():
                    break
                if until is not None and seen and until():
                    break
        finally:
            await self.stop()
        return self.stats


async def publish_outbox(settings: Settings, sessions) -> int:
    """Produce every CDR and dead letter not yet published (for batch commands such as
    ``chargeledger rerate``); returns the number of CDRs produced."""
    worker = Worker(settings, sessions=sessions, handler=_NoHandler())
    worker.producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True,
                                       acks="all")
    await worker.producer.start()
    try:
        await worker._publish_outbox()  # noqa: SLF001
    finally:
        await worker.producer.stop()
    return worker.stats.cdrs_published


def _in_records(batches) -> list[InRecord]:
    """A getmany result as the processor's records, partition by partition."""
    return [
        InRecord(r.topic, r.partition, r.offset, r.key, r.value if r.value is not None else b"")
        for tp in sorted(batches, key=lambda tp: tp.partition)
        for r in batches[tp]
    ]


def _next_offsets(batches) -> dict:
    """TopicPartition -> the offset after its last record in a getmany result."""
    return {tp: recs[-1].offset + 1 for tp, recs in batches.items() if recs}


async def _finished(running: Future):
    """The result of a commit in the committer thread, awaited without cancelling it (a
    cancelled waiter leaves it running: :meth:`Worker.stop` waits for it)."""
    return await asyncio.shield(asyncio.wrap_future(running))


def _cdr_message(cdr_id: str, cdr_json: str, content_hash: str, country_code: str, party_id: str):
    """(key, value, headers) of a CDR on the ``cdrs`` topic."""
    return (cdr_id.encode(), cdr_json.encode(),
            [("content-sha256", content_hash.encode()), ("country-code", country_code.encode()),
             ("party-id", party_id.encode())])


def _letter_message(charge_point_id: str | None, original: bytes, reason: str, source_topic: str,
                    source_partition: int, source_offset: int):
    """(key, value, headers) of a dead letter on ``ocpp-events-dlq``."""
    return ((charge_point_id or "").encode() or None, original,
            [("reason", reason.encode()), ("source-topic", source_topic.encode()),
             ("source-partition", str(source_partition).encode()), ("source-offset", str(source_offset).encode())])


class _NoHandler:
    def handle(self, db, envelope):  # pragma: no cover - never consumes
        raise NotImplementedError


async def run_worker(settings: Settings, **kwargs) -> WorkerStats:
    return await Worker(settings).run(**kwargs)
