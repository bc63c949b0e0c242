"""Migration 0102_pipeline_session_messages: the stored session states are split into the
row's state without messages and the appended messages, and downgrade joins them again,
without changing a byte of any state's JSON. On SQLite here; the same checks run on the real
PostgreSQL server in tests/integration/test_session_messages_migration_pg.py."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import text

from sessions import SessionAssembler, SessionState
from sessions.events import stored_json
from storage import repositories as repo
from storage.db import alembic_config, make_engine, make_sessionmaker
from streams.billing import SqlSessionStore
from tests.unit.traffic_support import simulated_envelopes

BEFORE = "0101_pipeline_event_indexes"
AFTER = "0102_pipeline_session_messages"


def _states() -> list[SessionState]:
    """States of simulated traffic (open, completed, issued, closed idle ones), one with odd
    identifiers and one without any message."""
    assembler = SessionAssembler()
    for envelope in simulated_envelopes(30, 21, "M"):
        assembler.apply(envelope)
    odd = SessionAssembler()
    for envelope in simulated_envelopes(2, 4, "O"):
        odd.apply(envelope.model_copy(update={"charge_point_id": 'O,"messages":[] \\"\u00e9'}))
    idle = SessionAssembler()  # sessions cut off mid-way, closed by the idle timeout
    envelopes = simulated_envelopes(3, 8, "I")
    for envelope in envelopes[:len(envelopes) // 2]:
        idle.apply(envelope)
    idle.close_idle(envelopes[-1].received_at + timedelta(days=30))
    states = [s for a in (assembler, odd, idle) for s in a.store.states.values()]
    assert any(s.closed_idle for s in states) and any(s.issued for s in states)
    return states + [SessionState.new("E/1", "E", "1", "1.6")]


def migration_keeps_every_state(url: str) -> None:
    """Old rows -> upgrade -> the parts add up to the old text, and the worker's store loads
    the same state; downgrade -> the old text again; upgrade again works."""
    cfg = alembic_config(url)
    command.upgrade(cfg, BEFORE)
    states = _states()
    texts = {s.session_id: s.to_json() for s in states}
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO sessions (session_key, charge_point_id, transaction_id, ocpp_version, status, "
            "state_json, event_count) VALUES (:k, :cp, :tx, :v, :st, :j, :n)"),
            [dict(k=s.session_id, cp=s.charge_point_id, tx=s.transaction_id, v=s.ocpp_version, st=s.status,
                  j=texts[s.session_id], n=len(s.messages)) for s in states])
    command.upgrade(cfg, "heads")
    sessions = make_sessionmaker(engine)
    with sessions() as db:
        rows = db.execute(text("SELECT session_key, state_head_json, version, event_count FROM sessions")).all()
        assert len(rows) == len(states) > 30
        for key, head, version, count in rows:
            assert stored_json(head, repo.session_messages_json(db, key)) == texts[key]
            assert version == 1
        store = SqlSessionStore(db, timedelta(hours=1))
        store.prefetch(texts)
        for state in states:
            loaded = store.get(state.session_id)
            assert loaded == state and loaded.to_json() == texts[state.session_id]
    command.downgrade(cfg, BEFORE)  # (not "{AFTER}@-1": relative to the branch head)
    with engine.connect() as conn:
        assert dict(conn.execute(text("SELECT session_key, state_json FROM sessions")).all()) == texts
        assert "session_messages" not in {r[0] for r in conn.execute(text(
            "SELECT table_name FROM information_schema.tables" if engine.dialect.name == "postgresql"
            else "SELECT name FROM sqlite_master WHERE type = 'table'"))}
    command.upgrade(cfg, "heads")
    with sessions() as db:
        for key, head in db.execute(text("SELECT session_key, state_head_json FROM sessions")).all():
            assert stored_json(head, repo.session_messages_json(db, key)) == texts[key]
    engine.dispose()


def test_migration_keeps_every_state_on_sqlite(tmp_path):
    migration_keeps_every_state(f"sqlite:///{tmp_path / 'm.db'}")
