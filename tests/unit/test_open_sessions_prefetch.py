"""Billing.prefetch reads the open sessions of a batch's charge points in one query
(SqlSessionStore.prefetch -> open_rows) instead of one query per charge point in
open_sessions_of: the effects are those of the per-charge-point reads, in a batch after a
restart (every charge point's deadline index loaded from SQL, open sessions in the
database, some closed idle), and no per-charge-point query runs. Processor-level, SQLite
(the rows of the query itself: tests/unit/test_pipeline_driver_sql.py, also on PostgreSQL)."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import event, text

from chargeledger.settings import Settings
from storage.db import make_engine, make_sessionmaker, upgrade
from streams.billing import Billing
from streams.processor import InRecord, Processor
from streams.simulate import simulate_traffic
from streams.tariffs import sample_tariff_json, store_tariff_json


class PerChargePointReads(Billing):
    """Billing as before the prefetch of open sessions: open_sessions_of queries per charge point."""

    def prefetch(self, db, envelopes):
        self._store(db).prefetch(key for key in map(_hint, envelopes) if key is not None)


def _hint(envelope):
    from streams.billing import _session_key_hint

    return _session_key_hint(envelope)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("open") / "template.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as db:
        store_tariff_json(db, sample_tariff_json())
    engine.dispose()
    return path


def _run(template, tmp_path, name: str, billing_class) -> tuple[dict, list[str]]:
    """The simulated traffic in batches of 150, each by a fresh Billing (a restart before
    every batch); (the tables' contents, the SQL of every statement run)."""
    path = tmp_path / name
    shutil.copyfile(template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, *args: statements.append(sql))
    sessions = make_sessionmaker(engine)
    # idle timeout of 30 minutes: sessions get closed idle, some by a later batch
    settings = Settings(database_url=url, session_idle_timeout_s=1800)
    records = simulate_traffic(10, 80, seed=11, duplicates=6).records
    # every third session never ends: closed idle at a later message of its charge point
    stops = [r for r in records if b"StopTransaction" in r.value or b'"Ended"' in r.value]
    dropped = {id(r) for r in stops[::3]}
    records = [r for r in records if id(r) not in dropped]
    for start in range(0, len(records), 150):
        processor = Processor(sessions, billing_class(settings), "g")
        processor.process_batch([InRecord("ev", 0, start + i, r.key, r.value)
                                 for i, r in enumerate(records[start:start + 150])])
    with engine.connect() as conn:
        tables = {name: conn.execute(text(f"SELECT * FROM {name} ORDER BY 1, 2")).all()
                  for name in ("sessions", "session_messages", "cdrs", "events", "dead_letters", "pipeline_counters")}
    engine.dispose()
    return tables, statements


def test_open_sessions_read_in_bulk_have_the_effects_of_reads_per_charge_point(template, tmp_path):
    bulk, bulk_sql = _run(template, tmp_path, "bulk.db", Billing)
    single, single_sql = _run(template, tmp_path, "single.db", PerChargePointReads)
    assert bulk == single
    assert len(bulk["cdrs"]) > 20
    # the traffic has sessions open across batches and sessions closed idle
    assert any("incomplete" in row for row in bulk["sessions"])
    per_cp = [s for s in single_sql if "status\" = 'open' AND \"charge_point_id\" = " in s
              or "status = 'open' AND charge_point_id = " in s]
    assert len(per_cp) > 10  # the reference path did read per charge point
    assert not [s for s in bulk_sql if s in per_cp]
    assert any("charge_point_id\" IN (" in s or "charge_point_id IN (" in s for s in bulk_sql)
