"""Restart the Kafka broker, then PostgreSQL, while the worker runs; the result equals a clean run.

CI-sized version of issue 4 item 4 (the kill -9 part is tests/integration/test_pipeline_faults.py).
The shared broker (9092) and server (5432) serve other sessions and tests and must not be
restarted, so this module starts a PRIVATE broker and a PRIVATE PostgreSQL server through
infra/kafka.sh and infra/postgres.sh, on free ports, with their data in a temporary folder
(the Kafka jars are shared with the default cache through a symlink), and stops them at the
end, failures included.

Each test: simulated traffic on the topic, ``chargeledger worker`` as a subprocess, the
service restarted (``stop``, a few seconds down, ``start``) once the worker has committed
part of the traffic, then:

* every input counted exactly once: ``events_in == records produced ==
  applied + dead_lettered + duplicates``;
* one CDR per session in PostgreSQL, none missing, none doubled;
* on the ``cdrs`` topic every id carries one content only and every stored CDR is there;
* a clean run (``chargeledger replay`` from the topic into a fresh SQLite database) yields
  the same CDR ids with the same content hashes.

How the worker lives through each outage (what the tests pin):

* broker down: the aiokafka clients reconnect by themselves; the worker process stays up
  and carries on when the broker is back (no restart by the test). Only when the outage
  outlasts the producer's request timeout (40 s) with a CDR produce pending does that
  produce fail and the worker exit non-zero; a restart re-sends the outbox (measured
  outside this test: 42 s down, one exit, same CDRs, none lost or doubled);
* PostgreSQL down: the batch transaction fails, the worker process exits non-zero (its
  in-memory state, e.g. the idle-deadline index of streams.billing, may hold the failed
  batch's changes, so it must not carry on); the test restarts it, as a supervisor
  (systemd, Kubernetes) would, and the new process resumes from the offsets stored in the
  ``tracking`` table. The first restart is made while the worker's batch transaction waits
  on a row lock the test holds, so it certainly breaks a batch in the middle.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from chargeledger.settings import Settings
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import CdrRecord
from streams.replay import replay
from streams.simulate import produce, simulate_traffic
from streams.tariffs import publish_tariff, sample_tariff_json
from streams.topics import ensure_topics, read_topic

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = int(os.environ.get("CHARGELEDGER_RESTART_SESSIONS", "200"))
MALFORMED, DUPLICATES = 5, 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrivateStack:
    """A broker and a PostgreSQL server of this module only (infra scripts, private ports)."""

    root: Path
    kafka_port: int
    controller_port: int
    pg_port: int

    @property
    def env(self) -> dict[str, str]:
        # Not CI's CHARGELEDGER_KAFKA_FRESH=1: the restart would start on empty storage.
        return {
            **{k: v for k, v in os.environ.items() if k != "CHARGELEDGER_KAFKA_FRESH"},
            "CHARGELEDGER_CACHE": str(self.root / "cache"),
            "CHARGELEDGER_KAFKA_PORT": str(self.kafka_port),
            "CHARGELEDGER_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "CHARGELEDGER_KAFKA_HEAP": "384m",
            "CHARGELEDGER_KAFKA_READY_TIMEOUT": "90",
            "CHARGELEDGER_PG_PORT": str(self.pg_port),
            "CHARGELEDGER_PG_DIR": str(self.root / "pg"),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://chargeledger:chargeledger@127.0.0.1:{self.pg_port}/chargeledger"

    def script(self, service: str, command: str) -> subprocess.Popen:
        log = open(self.root / f"{service}-{command}.log", "ab")
        return subprocess.Popen(["bash", str(ROOT / "infra" / f"{service}.sh"), command], env=self.env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def run(self, *calls: tuple[str, str], timeout: float = 150) -> None:
        """Runs the script calls in parallel; fails with their logs when one fails."""
        procs = [(service, command, self.script(service, command)) for service, command in calls]
        failed = []
        for service, command, proc in procs:
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = "timeout"
            if rc != 0:
                failed.append(f"{service}.sh {command}: {rc}\n"
                              + (self.root / f"{service}-{command}.log").read_text(errors="replace")[-3000:])
        if failed:
            raise RuntimeError("\n".join(failed))

    def database(self, name: str) -> str:
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def stack() -> Iterator[PrivateStack]:
    # Not pytest's tmp_path: as root, the server runs as the `postgres` user, which cannot
    # enter /tmp/pytest-of-root (0700).
    root = Path(tempfile.mkdtemp(prefix="chargeledger-restarts-"))
    root.chmod(0o755)
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(_free_port())
    s = PrivateStack(root, *sorted(ports))
    kdir = root / "cache" / "kafka"
    kdir.mkdir(parents=True)
    default_libs = Path(os.environ.get("CHARGELEDGER_CACHE") or Path.home() / ".cache" / "chargeledger") / "kafka" / "libs"
    if (default_libs / ".pom.sha256").is_file():
        # kafka.sh checks the pom stamp in libs/ and only rebuilds it when stale.
        (kdir / "libs").symlink_to(default_libs)
    try:
        s.run(("kafka", "start"), ("postgres", "start"))
        yield s
    finally:
        try:
            s.run(("kafka", "stop"), ("postgres", "stop"), timeout=90)
        finally:
            shutil.rmtree(root, ignore_errors=True)


class Run:
    """One test's topics, database, traffic and worker subprocess on the private stack."""

    def __init__(self, stack: PrivateStack, name: str, tmp_path: Path) -> None:
        tag = f"r{uuid.uuid4().hex[:6]}-{name}-"
        self.settings = Settings(kafka_bootstrap=stack.bootstrap, database_url=stack.database(tag[:-1].replace("-", "_")),
                                 topic_prefix=tag, app_id=f"{tag}chargeledger", worker_batch_size=40)
        s = self.settings
        upgrade(s.database_url)
        self.db = make_sessionmaker(make_engine(s.database_url, pool_pre_ping=True))
        asyncio.run(ensure_topics(s))
        asyncio.run(publish_tariff(s.kafka_bootstrap, s.topic(s.topic_tariffs), sample_tariff_json()))
        self.traffic = simulate_traffic(20, SESSIONS, seed=41, malformed=MALFORMED, duplicates=DUPLICATES,
                                        charge_point_prefix="RST")
        self.total = len(self.traffic.records)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT),
                    "CHARGELEDGER_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "CHARGELEDGER_DATABASE_URL": s.database_url,
                    "CHARGELEDGER_TOPIC_PREFIX": s.topic_prefix, "CHARGELEDGER_APP_ID": s.app_id,
                    "CHARGELEDGER_WORKER_BATCH_SIZE": str(s.worker_batch_size),
                    "CHARGELEDGER_WORKER_INSTANCE_ID": f"{tag}worker"}
        self.log_path = tmp_path / "worker.log"
        self.log = open(self.log_path, "ab")
        self.worker: subprocess.Popen | None = None
        self.exits: list[int] = []

    def produce(self, records) -> None:
        asyncio.run(produce(records, self.settings.kafka_bootstrap, self.settings.topic(self.settings.topic_events)))

    def start_worker(self) -> None:
        self.worker = subprocess.Popen([sys.executable, "-m", "chargeledger.cli", "worker", "--no-migrate"],
                                       cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def supervise(self) -> None:
        """Restarts the worker if it exited (what systemd/Kubernetes would do)."""
        if self.worker is not None and self.worker.poll() is not None:
            self.exits.append(self.worker.returncode)
            self.start_worker()

    def progress(self) -> tuple[int, int] | None:
        """(events_in, CDRs) as committed in the database; None while it cannot be read."""
        try:
            with self.db() as session:
                events = repo.read_counters(session, self.settings.app_id)["events_in"]
                cdrs = int(session.scalar(select(func.count()).select_from(CdrRecord)) or 0)
            return events, cdrs
        except Exception:  # noqa: BLE001 - the server is down during the restart
            return None

    def wait_for(self, done, deadline: float, supervise: bool = True) -> None:
        while time.monotonic() < deadline:
            if supervise:
                self.supervise()
            p = self.progress()
            if p is not None and done(p):
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out at {self.progress()}; worker log: {self.log_path}\n"
                             + self.log_path.read_text(errors="replace")[-4000:])

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        self.log.close()

    def check_against_clean_run(self, tmp_path: Path) -> dict:
        s = self.settings
        with self.db() as session:
            counters = repo.read_counters(session, s.app_id)
            rows = session.scalars(select(CdrRecord)).all()
        assert counters["events_in"] == self.total
        assert counters["events_in"] == counters["applied"] + counters["dead_lettered"] + counters["duplicates"]
        assert (counters["dead_lettered"], counters["duplicates"]) == (MALFORMED, DUPLICATES)
        assert len(rows) == SESSIONS
        assert {r.session_key for r in rows} == {f"{x.charge_point_id}/{x.transaction_id}" for x in self.traffic.sessions}

        on_topic = asyncio.run(read_topic(s.kafka_bootstrap, s.topic(s.topic_cdrs)))
        contents: dict[str, set[bytes]] = {}
        for record in on_topic:
            contents.setdefault(record.key.decode(), set()).add(record.value)
        assert all(len(v) == 1 for v in contents.values()), "a CDR id appeared with different content"
        assert {r.id: r.cdr_json.encode() for r in rows} == {k: next(iter(v)) for k, v in contents.items()}

        clean = replay(s, source_url=s.database_url, into_url=f"sqlite:///{tmp_path / 'clean.db'}", progress=False)
        assert clean.events == self.total
        assert (clean.cdrs_rebuilt, clean.equal, clean.mismatches) == (SESSIONS, SESSIONS, 0), clean.lines()
        return {"events": self.total, "cdrs_compared": clean.equal, "cdr_records_on_topic": len(on_topic),
                "differences": clean.mismatches, "worker_exits": self.exits, **counters}


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_broker_restart_mid_run_changes_nothing(stack, tmp_path):
    run = Run(stack, "kafka", tmp_path)
    first, rest = run.traffic.records[: run.total * 2 // 3], run.traffic.records[run.total * 2 // 3:]
    run.produce(first)
    deadline = time.monotonic() + 180
    run.start_worker()
    try:
        # Mid-run: some batches committed, and the rest of the first part still to come.
        run.wait_for(lambda p: p[0] >= run.total // 5, deadline)
        at_stop = run.progress()
        down = time.monotonic()  # from before the stop: a produce sent just then counts from here
        stack.run(("kafka", "stop"))
        time.sleep(3)
        assert run.worker.poll() is None, "the worker exited while the broker was down"
        stack.run(("kafka", "start"))
        down = time.monotonic() - down
        print(f"broker down {down:.1f}s at progress {at_stop}")
        run.produce(rest)  # work that only a worker which reconnected can do
        # Supervised from here on: a CDR produce pending when the broker went away expires
        # after the producer's request timeout (40 s); the worker then exits non-zero and its
        # restart re-sends the outbox. Only a slow broker start-up (a loaded CI machine) gets
        # there; with a short outage the same process must carry on.
        run.wait_for(lambda p: p == (run.total, SESSIONS), deadline)
    finally:
        run.stop_worker()
    assert at_stop[0] < len(first), "the restart came after the worker had finished: make the run bigger"
    figures = run.check_against_clean_run(tmp_path)
    if down < 25:  # well within the producer's 40 s request timeout
        assert figures["worker_exits"] == [], "the worker exited instead of reconnecting"
    print("broker restart:", figures)


def _hold_tracking_rows_until_the_worker_waits(run: Run, timeout: float = 30):
    """Locks the group's ``tracking`` rows from another connection and returns it once the
    worker's batch transaction waits for them (its ``SELECT ... FOR UPDATE``): a restart
    now is guaranteed to break a batch transaction in the middle, not land between two."""
    engine = create_engine(run.settings.database_url, isolation_level="AUTOCOMMIT")
    conn = engine.connect()
    conn.execute(text("BEGIN"))
    conn.execute(text("SELECT * FROM tracking WHERE consumer_group = :g FOR UPDATE"), {"g": run.settings.app_id})
    end = time.monotonic() + timeout
    watcher = engine.connect()
    try:
        while time.monotonic() < end:
            waiting = watcher.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))
            if waiting:
                return engine, conn
            time.sleep(0.05)
    finally:
        watcher.close()
    raise AssertionError("the worker never reached a locked tracking row")


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_postgres_restart_mid_run_changes_nothing(stack, tmp_path):
    run = Run(stack, "pg", tmp_path)
    run.produce(run.traffic.records)
    deadline = time.monotonic() + 180
    run.start_worker()
    restarts = []
    try:
        # 1. Inside a batch transaction (the worker blocked on its tracking rows).
        run.wait_for(lambda p: p[0] >= run.total // 4, deadline)
        engine, held = _hold_tracking_rows_until_the_worker_waits(run)
        restarts.append(run.progress())
        stack.run(("postgres", "stop"))
        held.invalidate()  # its server is gone: close it without a ROLLBACK
        engine.dispose()
        assert run.worker.wait(timeout=20) != 0, "the worker did not fail with its batch transaction"
        time.sleep(1)
        stack.run(("postgres", "start"))
        # 2. At whatever moment the restarted worker is at.
        run.wait_for(lambda p: p[0] >= run.total // 2, deadline)
        restarts.append(run.progress())
        stack.run(("postgres", "stop"))
        time.sleep(1)
        stack.run(("postgres", "start"))
        run.wait_for(lambda p: p == (run.total, SESSIONS), deadline)
    finally:
        run.stop_worker()
    assert restarts[-1][0] < run.total, "the restart came after the worker had finished: make the run bigger"
    figures = run.check_against_clean_run(tmp_path)
    assert figures["worker_exits"][0] != 0
    print(f"postgres restarts at {restarts}:", figures)
