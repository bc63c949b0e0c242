"""Pipeline benchmark on the real broker: throughput, CDR latency, and the bare-Kafka ceiling.

    PYTHONPATH=. python benchmarks/pipeline.py [--events 20000] [--rate 1000] [--seconds 10]
                                               [--database-url URL] [--only throughput|latency]

1. **Throughput**: ~``--events`` simulated OCPP events (1.6 and 2.0.1) are put on a fresh
   ``ocpp-events`` topic, then one worker (``streams.worker.Worker``, in this process)
   consumes them: sessions assembled, priced, CDRs written to SQL and produced on ``cdrs``.
   Events/s from the worker's first poll to the last event committed.
2. **Ceiling**: a bare aiokafka loop over the same topic that consumes every record and
   produces it to another topic (idempotent producer, acks=all), like the worker's I/O
   without any processing. Events/s the same way. It runs before and after the pipeline
   (both are printed) and the ratio pipeline / higher ceiling is printed (issue 4 target:
   25 % or better). Both clocks start after the first batch and count the records after it.
3. **Latency** at a steady ``--rate`` events/s for ``--seconds``: a paced producer feeds a
   running worker (a ``chargeledger worker`` process); for every session the time from producing its final event (1.6
   StopTransaction, 2.0.1 TransactionEvent Ended) to its CDR arriving on ``cdrs`` is
   measured; p50 / p99 / max are printed (target: p99 under 500 ms). When the worker cannot
   keep up with the rate, latency grows with the backlog: the report says so.

The database is a fresh SQLite file by default (``--database-url`` for PostgreSQL: give an
empty database). Topics get a fresh prefix per run (``bench-<time>-``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from chargeledger.runtime import tune_gc_for_streaming  # noqa: E402
from chargeledger.settings import Settings, get_settings  # noqa: E402
from sessions.identity import cdr_id_for  # noqa: E402
from storage import repositories as repo  # noqa: E402
from storage.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from streams.simulate import produce, simulate_traffic  # noqa: E402
from streams.tariffs import publish_tariff, sample_tariff_json  # noqa: E402
from streams.topics import ensure_topics  # noqa: E402
from streams.worker import Worker  # noqa: E402


def _traffic(events: int, seed: int, prefix: str, start: datetime | None = None):
    sessions = max(1, events // 9)  # ~9 events per simulated session
    kwargs = {"start": start} if start else {}
    return simulate_traffic(max(2, sessions // 8), sessions, seed=seed, charge_point_prefix=prefix, **kwargs)


async def _setup(settings: Settings, sinks: tuple[str, ...] = ()) -> None:
    await ensure_topics(settings)
    if sinks:  # the bare loop's output topics, partitioned like ``cdrs``
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(settings.topic(n), num_partitions=getattr(settings, "event_partitions", 4),
                                                replication_factor=1) for n in sinks])
        finally:
            await admin.close()
    await publish_tariff(settings.kafka_bootstrap, settings.topic(settings.topic_tariffs), sample_tariff_json())


async def bench_pipeline(settings: Settings, db, records) -> float:
    worker = Worker(settings, sessions=db)
    await worker.start()
    try:
        # The clock starts when the first batch has been applied (the group join and the
        # first fetch are not throughput) and counts only the events applied after that.
        t0 = None
        first = 0
        done = 0
        while done < len(records):
            seen = await worker.run_once(timeout_ms=200)
            if seen and t0 is None:
                t0 = time.perf_counter()
                first = seen
            if seen:
                with db() as s:
                    done = repo.read_counters(s, settings.app_id)["events_in"]
        return (len(records) - first) / (time.perf_counter() - t0)
    finally:
        await worker.stop()


async def bench_bare(settings: Settings, count: int, sink_name: str = "bare-out") -> float:
    source, sink = settings.topic(settings.topic_events), settings.topic(sink_name)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all",
                                linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        tps = [TopicPartition(source, p) for p in sorted(consumer.partitions_for_topic(source) or [])]
        if not tps:
            await consumer._client.force_metadata_update()  # noqa: SLF001
            tps = [TopicPartition(source, p) for p in sorted(consumer.partitions_for_topic(source))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # Measured like the pipeline: from the end of the first batch, the records after it.
        t0 = None
        first = 0
        done = 0
        while done < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            futures = []
            for records in batches.values():
                for r in records:
                    futures.append(await producer.send(sink, value=r.value, key=r.key))
            if futures:
                await asyncio.gather(*futures)
                done += len(futures)
                if t0 is None:
                    t0 = time.perf_counter()
                    first = len(futures)
        return (count - first) / (time.perf_counter() - t0)
    finally:
        await consumer.stop()
        await producer.stop()


def _final_events(records) -> dict[int, str]:
    """index of each session's final event -> that session's CDR id."""
    finals = {}
    for i, r in enumerate(records):
        env = json.loads(r.value)
        p = env["payload"]
        if env["action"] == "StopTransaction":
            finals[i] = cdr_id_for(env["charge_point_id"], str(p["transactionId"]))
        elif env["action"] == "TransactionEvent" and p.get("eventType") == "Ended":
            finals[i] = cdr_id_for(env["charge_point_id"], p["transactionInfo"]["transactionId"])
    return finals


async def bench_latency(settings: Settings, db, records, rate: float) -> dict:
    finals = _final_events(records)
    sent_at: dict[str, float] = {}
    arrived: dict[str, float] = {}
    # The worker runs in its own process (as in production): the paced producer and the
    # CDR consumer here must not compete with it for this interpreter's GIL.
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "CHARGELEDGER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "CHARGELEDGER_DATABASE_URL": settings.database_url,
           "CHARGELEDGER_TOPIC_PREFIX": settings.topic_prefix, "CHARGELEDGER_APP_ID": settings.app_id}
    worker = subprocess.Popen([sys.executable, "-m", "chargeledger.cli", "worker", "--no-migrate"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cdr_consumer = AIOKafkaConsumer(settings.topic(settings.topic_cdrs), bootstrap_servers=settings.kafka_bootstrap,
                                    group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=10)
    await cdr_consumer.start()

    async def collect() -> None:
        while len(arrived) < len(finals):
            batches = await cdr_consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for recs in batches.values():
                for r in recs:
                    arrived.setdefault(r.key.decode(), now)

    collector = asyncio.create_task(collect())
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all",
                                linger_ms=1)
    await producer.start()
    await asyncio.sleep(6)  # the worker starts, joins its group and reads the tariffs
    topic = settings.topic(settings.topic_events)
    t0 = time.perf_counter()
    pending = []
    for i, record in enumerate(records):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        fut = await producer.send(topic, value=record.value, key=record.key)
        if i in finals:
            sent_at[finals[i]] = time.perf_counter()
        pending.append(fut)
    await asyncio.gather(*pending)
    produced_in = time.perf_counter() - t0
    try:
        await asyncio.wait_for(collector, timeout=300)
    except asyncio.TimeoutError:
        pass
    worker.terminate()
    worker.wait(timeout=30)
    await producer.stop()
    await cdr_consumer.stop()
    latencies = sorted((arrived[k] - sent_at[k]) * 1000 for k in sent_at if k in arrived)
    return {
        "events": len(records), "sessions": len(finals), "cdrs": len(latencies), "produced_in": produced_in,
        "achieved_rate": len(records) / produced_in,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000, help="events for the throughput run (default 20000)")
    parser.add_argument("--rate", type=float, default=1000, help="events/s for the latency run (default 1000)")
    parser.add_argument("--seconds", type=float, default=10, help="length of the latency run (default 10)")
    parser.add_argument("--database-url", help="an empty database (default: a fresh SQLite file)")
    parser.add_argument("--only", choices=("throughput", "latency"), help="run one of the two parts")
    args = parser.parse_args(argv)

    # The garbage collector tuned as ``chargeledger worker`` does (the throughput run's worker
    # runs in this process; the latency run's is a ``chargeledger worker`` process).
    tune_gc_for_streaming()
    base = get_settings()
    run = datetime.now(timezone.utc).strftime("%H%M%S")
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='chargeledger-bench-')) / 'bench.db'}"
    upgrade(url)
    db = make_sessionmaker(make_engine(url))
    print(f"database {url.split('@')[-1]}, broker {base.kafka_bootstrap}")

    pipeline_rate = None
    if args.only != "latency":
        s1 = base.model_copy(update={"topic_prefix": f"bench-{run}-tp-", "app_id": f"bench-{run}-tp",
                                     "database_url": url})
        asyncio.run(_setup(s1, ("bare-out-1", "bare-out-2")))
        records = _traffic(args.events, 1, f"B{run}T").records
        asyncio.run(produce(records, s1.kafka_bootstrap, s1.topic(s1.topic_events)))
        # The ceiling is measured before and after the pipeline run (it varies with the
        # broker's state and the machine's load); the ratio is against the higher of the two.
        bare_before = asyncio.run(bench_bare(s1, len(records), "bare-out-1"))
        pipeline_rate = asyncio.run(bench_pipeline(s1, db, records))
        bare_after = asyncio.run(bench_bare(s1, len(records), "bare-out-2"))
        bare_rate = max(bare_before, bare_after)
        print(f"pipeline throughput   {pipeline_rate:8.0f} events/s  ({len(records)} events, one worker)")
        print(f"bare aiokafka ceiling {bare_rate:8.0f} events/s  (consume + produce, acks=all; "
              f"{bare_before:.0f} before, {bare_after:.0f} after the pipeline run)")
        print(f"ratio                 {pipeline_rate / bare_rate:8.1%}  (target >= 25%)")

    if args.only == "throughput":
        return 0
    s2 = base.model_copy(update={"topic_prefix": f"bench-{run}-lat-", "app_id": f"bench-{run}-lat", "database_url": url})
    asyncio.run(_setup(s2))
    # Sessions far enough in the past that nothing is "in the future", one per charge point
    # at a time as in real traffic.
    lat_records = _traffic(int(args.rate * args.seconds), 2, f"B{run}L").records
    figures = asyncio.run(bench_latency(s2, db, lat_records, args.rate))
    print(f"latency run           {figures['events']} events at {figures['achieved_rate']:.0f} events/s "
          f"(asked {args.rate:.0f}), {figures['sessions']} sessions, {figures['cdrs']} CDRs seen")
    print(f"final event -> CDR    p50 {figures['p50']:.0f} ms, p99 {figures['p99']:.0f} ms, max {figures['max']:.0f} ms"
          f"  (target p99 < 500 ms)")
    if pipeline_rate is not None and pipeline_rate < args.rate:
        print(f"note: the worker sustains ~{pipeline_rate:.0f} events/s < {args.rate:.0f} asked, so the backlog and the "
              "latency grow during the run; try --rate below the throughput for the latency of a keeping-up worker")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
