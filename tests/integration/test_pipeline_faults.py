"""Crash the worker with kill -9 at random moments; the result equals a clean run.

CI-sized version of issue 4 item 4: a few thousand events, the worker process (``chargeledger
worker``) killed with SIGKILL several times at random moments and restarted each time, on
the real broker and PostgreSQL. Then:

* every input counted exactly once: ``events_in == records produced ==
  applied + dead_lettered + duplicates`` (a batch replayed after a kill must not count twice);
* one CDR per session in PostgreSQL, none missing, none doubled;
* on the ``cdrs`` topic every id carries one content only (a re-send after a kill between
  commit and produce repeats the same bytes), and every stored CDR is there;
* a clean run (``chargeledger replay`` from the topic into a fresh database) yields the same
  CDR ids with the same content hashes.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import CdrRecord
from streams.replay import replay
from streams.simulate import produce, simulate_traffic
from streams.tariffs import publish_tariff, sample_tariff_json
from streams.topics import ensure_topics, read_topic


#: This test's CDRs (the database is shared with the other pipeline tests of the session).
OURS = CdrRecord.session_key.like("FLT%")
ROOT = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("CHARGELEDGER_FAULT_KILLS", "6"))
SESSIONS = int(os.environ.get("CHARGELEDGER_FAULT_SESSIONS", "300"))


def _start_worker(env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "chargeledger.cli", "worker", "--no-migrate"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


@pytest.mark.timeout(300)
def test_kill_9_at_random_moments_changes_nothing(settings, tmp_path):
    s = settings.model_copy(update={
        "topic_prefix": settings.topic_prefix + "faults-",
        "app_id": settings.app_id + "-faults",
        "worker_batch_size": 50,  # many small transactions: kills land inside and between them
    })
    upgrade(s.database_url)
    db = make_sessionmaker(make_engine(s.database_url))
    asyncio.run(ensure_topics(s))
    asyncio.run(publish_tariff(s.kafka_bootstrap, s.topic(s.topic_tariffs), sample_tariff_json()))
    traffic = simulate_traffic(30, SESSIONS, seed=99, malformed=7, duplicates=9, charge_point_prefix="FLT")
    asyncio.run(produce(traffic.records, s.kafka_bootstrap, s.topic(s.topic_events)))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.update({
        "CHARGELEDGER_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "CHARGELEDGER_DATABASE_URL": s.database_url,
        "CHARGELEDGER_TOPIC_PREFIX": s.topic_prefix, "CHARGELEDGER_APP_ID": s.app_id,
        "CHARGELEDGER_WORKER_BATCH_SIZE": str(s.worker_batch_size),
        # Static membership: the restarted worker takes the killed one's place at once.
        "CHARGELEDGER_WORKER_INSTANCE_ID": "fault-worker-1",
    })

    def progress() -> tuple[int, int]:
        with db() as session:
            events = repo.read_counters(session, s.app_id)["events_in"]
            cdrs = int(session.scalar(select(func.count()).select_from(CdrRecord).where(OURS)) or 0)
        return events, cdrs

    rng = random.Random(7)
    kills = 0
    log = open(tmp_path / "worker.log", "ab")
    deadline = time.monotonic() + 240
    worker = _start_worker(env, log)
    try:
        while kills < KILLS and time.monotonic() < deadline:
            before = progress()[0]
            if before >= len(traffic.records):
                break
            if rng.random() < 0.2:
                time.sleep(rng.uniform(0.2, 1.5))  # now and then while it is still starting up
            else:
                # once this worker has committed a batch, at a random moment of the next ones
                while progress()[0] == before and worker.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 0.8))
            if progress()[0] >= len(traffic.records):
                break
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
            worker = _start_worker(env, log)
        while progress() != (len(traffic.records), SESSIONS) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    print(f"{kills} kills; worker log in {tmp_path / 'worker.log'}")
    assert kills >= min(KILLS, 3), "the run ended before enough kills: make it bigger"

    with db() as session:
        counters = repo.read_counters(session, s.app_id)
        rows = session.scalars(select(CdrRecord).where(OURS)).all()
    assert counters["events_in"] == len(traffic.records)
    assert counters["events_in"] == counters["applied"] + counters["dead_lettered"] + counters["duplicates"]
    assert counters["dead_lettered"] == 7 and counters["duplicates"] == 9
    assert len(rows) == SESSIONS
    assert {r.session_key for r in rows} == {f"{x.charge_point_id}/{x.transaction_id}" for x in traffic.sessions}

    on_topic = asyncio.run(read_topic(s.kafka_bootstrap, s.topic(s.topic_cdrs)))
    contents: dict[str, set[bytes]] = {}
    for record in on_topic:
        contents.setdefault(record.key.decode(), set()).add(record.value)
    assert all(len(v) == 1 for v in contents.values()), "a CDR id appeared with different content"
    assert {r.id: r.cdr_json.encode() for r in rows} == {k: next(iter(v)) for k, v in contents.items()}

    clean = replay(s, source_url=s.database_url, into_url=f"sqlite:///{tmp_path / 'clean.db'}", progress=False)
    assert clean.events == len(traffic.records)
    assert (clean.cdrs_rebuilt, clean.equal, clean.mismatches) == (SESSIONS, SESSIONS, 0), clean.lines()
