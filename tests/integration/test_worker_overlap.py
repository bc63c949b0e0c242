"""The worker commits a batch in its committer thread while it reads the next one ahead
(streams.worker.Worker.run_once): a batch that fails in that commit must leave nothing
behind, must not let the batch read ahead be applied after it, and must hand the outbox
marks it carried back; a restarted worker then resumes from the stored positions and ends
where a clean run ends. Real broker, real PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import CdrRecord
from streams.billing import Billing
from streams.simulate import produce, simulate_traffic
from streams.tariffs import publish_tariff, sample_tariff_json
from streams.topics import ensure_topics
from streams.worker import Worker, WorkerFailed

OURS = CdrRecord.session_key.like("OVL%")


class FailsInCommit(Billing):
    """Billing whose end_batch (run in the committer thread) fails once, slowly (so the event
    loop surely reads the next batch ahead meanwhile), when ``armed``."""

    armed = False
    failed = False

    def end_batch(self, db):
        rows = super().end_batch(db)
        if self.armed and not self.failed:
            self.failed = True
            time.sleep(0.5)
            raise RuntimeError("commit phase failed")
        return rows


@pytest.mark.timeout(180)
async def test_a_failed_commit_applies_nothing_after_it_and_hands_the_outbox_marks_back(settings):
    s = settings.model_copy(update={"worker_batch_size": 40, "event_partitions": 2})
    upgrade(s.database_url)
    db = make_sessionmaker(make_engine(s.database_url))
    await ensure_topics(s)
    await publish_tariff(s.kafka_bootstrap, s.topic(s.topic_tariffs), sample_tariff_json())
    traffic = simulate_traffic(4, 30, seed=5, malformed=12, duplicates=3, charge_point_prefix="OVL")
    await produce(traffic.records, s.kafka_bootstrap, s.topic(s.topic_events))

    def stored() -> tuple[int, int, int]:
        with db() as session:
            counters = repo.read_counters(session, s.app_id)
            positions = sum(repo.tracked_offsets(session, s.app_id, s.topic(s.topic_events)).values())
            cdrs = int(session.scalar(select(func.count()).select_from(CdrRecord).where(OURS)) or 0)
        return counters["events_in"], positions, cdrs

    handler = FailsInCommit(s)
    worker = Worker(s, sessions=db, handler=handler)
    carried: list = []
    apply = worker.processor.apply

    def spy(records, published=None, decoded=None):
        # Arm the failure at the first batch that carries outbox marks (rows produced
        # after the previous commit, to be marked published in this batch's transaction).
        if published:
            carried.append((list(published.cdrs), list(published.dead_letters)))
            handler.armed = True
        return apply(records, published, decoded)

    worker.processor.apply = spy
    read_ahead = worker._read_ahead
    ahead_seen: list[bool] = []

    async def spy_read_ahead():
        await read_ahead()
        ahead_seen.append(worker._ahead is not None)

    worker._read_ahead = spy_read_ahead
    await worker.start()
    try:
        with pytest.raises(RuntimeError, match="commit phase failed"):
            for _ in range(200):
                await worker.run_once(timeout_ms=500)
        assert handler.failed and ahead_seen[-1], "the failing batch's commit overlapped a read-ahead"
        # Nothing of the failed batch, nothing of the one read ahead: exactly the batches
        # before it, and the read-ahead is dropped.
        events_in, positions, _ = stored()
        assert events_in == worker.stats.records == positions
        assert events_in < len(traffic.records)
        assert worker._ahead is None
        # The consumer is past the failed batch's records (and those read ahead): this
        # worker applies nothing more, a restarted one resumes from the stored positions.
        with pytest.raises(WorkerFailed, match="restart it to resume from the stored positions"):
            await worker.run_once(timeout_ms=0)
        assert stored()[0] == events_in
        # The outbox marks the failed batch carried are handed back, in order.
        assert carried and (carried[-1][0] or carried[-1][1])
        assert (worker._published.cdrs, worker._published.dead_letters) == carried[-1]
    finally:
        await worker.stop()

    # A restarted worker resumes from the stored positions: every input counted once.
    again = Worker(s, sessions=db)
    await asyncio.wait_for(
        again.run(until=lambda: stored()[0] >= len(traffic.records) and stored()[2] >= 30), timeout=120)
    with db() as session:
        counters = repo.read_counters(session, s.app_id)
    assert counters["events_in"] == len(traffic.records)
    assert counters["events_in"] == counters["applied"] + counters["dead_lettered"] + counters["duplicates"]
    assert (counters["dead_lettered"], counters["duplicates"]) == (12, 3)
    assert stored()[2] == 30
