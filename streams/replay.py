"""``chargeledger replay``: rebuild sessions and CDRs from the event log and compare.

The event log is the truth (DESIGN.md): sessions and CDRs are a pure function of the
events, the tariff versions and the location. Replay checks that claim on real data:

1. a fresh database (a temporary SQLite file by default, or ``--into URL``, which must be
   empty) gets the schema and the tariff versions of the source database;
2. the events are applied again, with the same code path as the worker
   (:class:`streams.processor.Processor`), either from the ``ocpp-events`` topic from its
   beginning up to its current end (``--from topic``, the default) or from the raw events
   stored in the source database (``--from db``);
3. every CDR is compared with the source database by its content hash (SHA-256 of the
   published JSON): equal, different, missing from the rebuild, or only in the rebuild.

Progress goes to stderr; the figures (events, sessions, CDRs, mismatches, time) to stdout.
Exit code 0 when nothing differs, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from chargeledger.settings import Settings, get_settings
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import CdrRecord, EventRecord, SessionRecord, TariffRecord
from streams.processor import InRecord, Processor

BATCH = 2000


@dataclass
class ReplayReport:
    events: int = 0
    sessions: int = 0
    cdrs_source: int = 0
    cdrs_rebuilt: int = 0
    equal: int = 0
    different: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def mismatches(self) -> int:
        return len(self.different) + len(self.missing) + len(self.extra)

    def lines(self) -> list[str]:
        out = [
            f"events replayed      {self.events}",
            f"  applied {self.counters.get('applied', 0)}, dead-lettered {self.counters.get('dead_lettered', 0)}, "
            f"duplicates {self.counters.get('duplicates', 0)}",
            f"sessions rebuilt     {self.sessions}",
            f"CDRs in source       {self.cdrs_source}",
            f"CDRs rebuilt         {self.cdrs_rebuilt}",
            f"identical            {self.equal}",
            f"mismatches           {self.mismatches} (different {len(self.different)}, missing {len(self.missing)}, "
            f"extra {len(self.extra)})",
            f"time                 {self.seconds:.1f}s ({self.events / self.seconds if self.seconds else 0:.0f} events/s)",
        ]
        for label, ids in (("different", self.different), ("missing", self.missing), ("extra", self.extra)):
            for cdr_id in ids[:20]:
                out.append(f"  {label}: {cdr_id}")
        return out


def _progress(done: int, total: int | None, t0: float) -> None:
    rate = done / max(time.perf_counter() - t0, 1e-9)
    of = f"/{total}" if total else ""
    print(f"\r  replayed {done}{of} events ({rate:.0f}/s)\033[K", end="", file=sys.stderr, flush=True)


def copy_tariffs(source, target) -> int:
    with source() as src, target.begin() as dst:
        rows = src.scalars(select(TariffRecord).order_by(TariffRecord.pk)).all()
        for t in rows:
            repo.store_tariff_version(
                dst, country_code=t.country_code, party_id=t.party_id, id=t.id, currency=t.currency,
                last_updated=t.last_updated, valid_from=t.valid_from, valid_to=t.valid_to, tariff_json=t.tariff_json,
            )
    return len(rows)


def _processor(settings: Settings, target) -> Processor:
    from streams.billing import Billing

    return Processor(target, Billing(settings), "replay")


def replay_from_db(settings: Settings, source, target, progress: bool = True) -> int:
    processor = _processor(settings, target)
    topic = settings.topic(settings.topic_events)
    t0 = time.perf_counter()
    done = 0
    with source() as src:
        total = src.scalar(select(func.count()).select_from(EventRecord).where(EventRecord.topic == topic))
        batch: list[InRecord] = []
        for ev in repo.stored_events(src, topic=topic):
            batch.append(InRecord(ev.topic, ev.partition, ev.offset, (ev.charge_point_id or "").encode(), ev.raw))
            if len(batch) >= BATCH:
                processor.process_batch(batch)
                done += len(batch)
                batch = []
                if progress:
                    _progress(done, total, t0)
        processor.process_batch(batch)
        done += len(batch)
    if progress:
        _progress(done, total, t0)
        print(file=sys.stderr)
    return done


async def replay_from_topic(settings: Settings, target, progress: bool = True) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    processor = _processor(settings, target)
    topic = settings.topic(settings.topic_events)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        total = sum(end.values())
        t0 = time.perf_counter()
        done = 0
        while True:
            open_tps = [tp for tp in tps if await consumer.position(tp) < end[tp]]
            if not open_tps:
                break
            batches = await consumer.getmany(*open_tps, timeout_ms=1000, max_records=BATCH)
            records = [
                InRecord(r.topic, r.partition, r.offset, r.key, r.value or b"")
                for tp in sorted(batches, key=lambda tp: tp.partition)
                for r in batches[tp] if r.offset < end[tp]
            ]
            if records:
                await asyncio.to_thread(processor.process_batch, records)
                done += len(records)
                if progress:
                    _progress(done, total, t0)
        if progress:
            print(file=sys.stderr)
        return done
    finally:
        await consumer.stop()


def compare(source, target, report: ReplayReport, topic: str) -> None:
    """Compare the CDRs of the sessions whose events came from ``topic`` (a database may
    hold other topics' sessions, e.g. several demo runs)."""
    with source() as src, target() as dst:
        keys = select(EventRecord.session_key).where(EventRecord.topic == topic,
                                                     EventRecord.session_key.is_not(None)).distinct()
        theirs = dict(src.execute(
            select(CdrRecord.id, CdrRecord.content_hash).where(CdrRecord.session_key.in_(keys))).all())
        ours = dict(dst.execute(select(CdrRecord.id, CdrRecord.content_hash)).all())
        report.sessions = int(dst.scalar(select(func.count()).select_from(SessionRecord)) or 0)
        report.counters = repo.read_counters(dst, "replay")
    report.cdrs_source, report.cdrs_rebuilt = len(theirs), len(ours)
    for cdr_id, digest in sorted(theirs.items()):
        if cdr_id not in ours:
            report.missing.append(cdr_id)
        elif ours[cdr_id] != digest:
            report.different.append(cdr_id)
        else:
            report.equal += 1
    report.extra = sorted(set(ours) - set(theirs))


def replay(settings: Settings, *, source_url: str, into_url: str, from_: str = "topic",
           progress: bool = True) -> ReplayReport:
    source = make_sessionmaker(make_engine(source_url))
    upgrade(into_url)
    target = make_sessionmaker(make_engine(into_url))
    with target() as dst:
        if dst.scalar(select(func.count()).select_from(EventRecord)):
            raise SystemExit(f"replay: the target database {into_url} is not empty")
    copy_tariffs(source, target)
    report = ReplayReport()
    t0 = time.perf_counter()
    if from_ == "db":
        report.events = replay_from_db(settings, source, target, progress)
    else:
        report.events = asyncio.run(replay_from_topic(settings, target, progress))
    report.seconds = time.perf_counter() - t0
    compare(source, target, report, settings.topic(settings.topic_events))
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargeledger replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="from_", choices=["topic", "db"], default="topic",
                        help="replay the ocpp-events topic from its beginning (default) or the stored events")
    parser.add_argument("--into", help="URL of an empty database to rebuild into (default: a temporary SQLite file)")
    parser.add_argument("--source", help="database to compare with (default: CHARGELEDGER_DATABASE_URL)")
    args = parser.parse_args(argv)
    settings = get_settings()
    source_url = args.source or settings.database_url
    into_url = args.into or f"sqlite:///{Path(tempfile.mkdtemp(prefix='chargeledger-replay-')) / 'replay.db'}"
    print(f"replaying {settings.topic(settings.topic_events)} from the {args.from_} into {into_url.split('@')[-1]}, "
          f"comparing with {source_url.split('@')[-1]}")
    report = replay(settings, source_url=source_url, into_url=into_url, from_=args.from_)
    for line in report.lines():
        print(line)
    return 0 if report.mismatches == 0 else 1
