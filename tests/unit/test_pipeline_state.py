"""Session state in the worker's unit of work (streams.billing.SqlSessionStore): states are
written once per batch, and an envelope that fails after session assembly changed its
session leaves no trace, whether the session was loaded in the same batch or before it.

Processor-level (SQLite, no Kafka).
"""

import shutil
from datetime import datetime

import pytest

from chargeledger.settings import Settings
from schemas.envelope import EventEnvelope
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from sessions.events import stored_json
from storage.models import CdrRecord, DeadLetterRecord, SessionRecord
from streams.billing import Billing
from streams.processor import InRecord, Processor
from streams.tariffs import sample_tariff_json, store_tariff_json

TX = {"transactionId": "state-1"}


def _event(mid: str, at: str, payload: dict) -> bytes:
    return EventEnvelope(
        charge_point_id="STATE-1", ocpp_version="2.0.1", action="TransactionEvent", message_id=mid,
        received_at=datetime.fromisoformat(at.replace("Z", "+00:00")), payload=payload,
    ).to_bytes()


def _mv(at: str, wh: int, context: str) -> list:
    return [{"timestamp": at, "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register",
                                                "context": context, "unitOfMeasure": {"unit": "Wh"}}]}]


STARTED = _event("s0", "2026-03-04T10:00:00Z", {
    "eventType": "Started", "timestamp": "2026-03-04T10:00:00Z", "triggerReason": "Authorized", "seqNo": 0,
    "transactionInfo": {**TX, "chargingState": "Charging"}, "idToken": {"idToken": "DEEMPC001", "type": "eMAID"},
    "evse": {"id": 1, "connectorId": 1}, "meterValue": _mv("2026-03-04T10:00:00Z", 0, "Transaction.Begin")})
UPDATED = _event("s1", "2026-03-04T10:30:00Z", {
    "eventType": "Updated", "timestamp": "2026-03-04T10:30:00Z", "triggerReason": "MeterValuePeriodic", "seqNo": 1,
    "transactionInfo": {**TX, "chargingState": "Charging"},
    "meterValue": _mv("2026-03-04T10:30:00Z", 5_000, "Sample.Periodic")})
ENDED = _event("s2", "2026-03-04T11:00:00Z", {
    "eventType": "Ended", "timestamp": "2026-03-04T11:00:00Z", "triggerReason": "EVDeparted", "seqNo": 2,
    "transactionInfo": {**TX, "stoppedReason": "EVDisconnected"},
    "meterValue": _mv("2026-03-04T11:00:00Z", 10_000, "Transaction.End")})


class FailsOnFirstCdr(Billing):
    """Billing with a bug that strikes once, after assembly recorded the stop in the state."""

    failed = False

    def _documents(self, db, session):
        if not self.failed:
            self.failed = True
            raise RuntimeError("pricing bug")
        return super()._documents(db, session)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A migrated SQLite database with the sample tariff, copied per processor (one
    migration run per module instead of one per database)."""
    path = tmp_path_factory.mktemp("state") / "template.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as db:
        store_tariff_json(db, sample_tariff_json())
    engine.dispose()
    return path


def _processor(tmp_path, name: str, handler_class=Billing) -> Processor:
    path = tmp_path / name
    shutil.copyfile(_TEMPLATE[0], path)
    url = f"sqlite:///{path}"
    return Processor(make_sessionmaker(make_engine(url)), handler_class(Settings(database_url=url)), "g")


_TEMPLATE: list = []


@pytest.fixture(autouse=True)
def _template_path(template):
    _TEMPLATE[:] = [template]


def _batches(processor: Processor, *batches: list[bytes]) -> None:
    offset = 0
    for values in batches:
        processor.process_batch([InRecord("ev", 0, offset + i, b"STATE-1", v) for i, v in enumerate(values)])
        offset += len(values)


def _effect(processor: Processor):
    with processor.sessions() as db:
        session = db.get(SessionRecord, "STATE-1/state-1")
        state_json = stored_json(session.state_head_json, repo.session_messages_json(db, session.session_key))
        row = (state_json, session.status, session.event_count, session.cdr_id, session.ended_at)
        cdrs = [(c.id, c.cdr_json) for c in db.query(CdrRecord).order_by(CdrRecord.pk)]
        letters = [d.reason for d in db.query(DeadLetterRecord)]
        return row, cdrs, letters, repo.read_counters(db, "g")


@pytest.mark.parametrize("batches", [
    [[STARTED, UPDATED, ENDED, ENDED]],  # the session is in the batch's cache when the stop fails
    [[STARTED, UPDATED], [ENDED, ENDED]],  # loaded from its row in the failing batch
    [[STARTED], [UPDATED, ENDED], [ENDED]],  # the retry in the next batch
], ids=["same-batch", "next-batch", "retry-later"])
def test_an_envelope_that_fails_after_assembly_leaves_no_trace_in_the_session(tmp_path, batches):
    clean = _processor(tmp_path, "clean.db")
    _batches(clean, [STARTED, UPDATED, ENDED])
    failing = _processor(tmp_path, "failing.db", FailsOnFirstCdr)
    _batches(failing, *batches)

    row, cdrs, letters, counters = _effect(failing)
    clean_row, clean_cdrs, clean_letters, clean_counters = _effect(clean)
    # The resent stop is applied (not a duplicate of the failed one): the session row and
    # its CDR are those of a run in which the failed envelope never happened.
    assert (row, cdrs) == (clean_row, clean_cdrs)
    assert row[1:3] == ("completed", 3)
    assert clean_letters == [] and letters == ["internal error while applying: RuntimeError: pricing bug"]
    assert counters == {"events_in": 4, "applied": 3, "dead_lettered": 1, "duplicates": 0}
    assert clean_counters == {"events_in": 3, "applied": 3, "dead_lettered": 0, "duplicates": 0}


def test_a_session_changed_by_several_envelopes_of_a_batch_is_written_once_with_the_last_state(tmp_path):
    processor = _processor(tmp_path, "once.db")
    _batches(processor, [STARTED, UPDATED, ENDED])
    row, cdrs, _, _ = _effect(processor)
    assert row[1:3] == ("completed", 3)
    assert len(cdrs) == 1 and row[3] == cdrs[0][0]


# --- states kept between batches (WarmStates) ------------------------------------------------


def test_a_kept_state_is_used_only_while_its_row_has_the_version_it_was_kept_with():
    from sessions import SessionState

    from streams.billing import WarmStates

    state = SessionState(session_id="A/1", charge_point_id="A", transaction_id="1", ocpp_version="2.0.1")
    warm = WarmStates(limit=2)
    warm.keep("A/1", 3, 10, state)
    assert warm.holds("A/1", 3) and not warm.holds("A/1", 4)
    assert warm.take("A/1", 4) is None  # another writer changed the row
    assert warm.take("A/1", 3) is None  # taken out by the failed take
    warm.keep("A/1", 3, 10, state)
    assert warm.take("A/1", 3) == (state, 10)
    for key in ("A/1", "A/2", "A/3"):  # the least recently kept goes beyond the limit
        warm.keep(key, 1, 2, state)
    assert len(warm) == 2 and warm.take("A/1", 1) is None and warm.take("A/3", 1) == (state, 2)
    small = WarmStates(limit=10, max_chars=5)  # and beyond max_chars characters of message JSON
    for key in ("B/1", "B/2", "B/3"):
        small.keep(key, 1, 2, state)
    small.keep("B/4", 1, 12, state)  # larger than the whole budget: not kept
    assert len(small) == 2 and small.take("B/1", 1) is None and small.take("B/4", 1) is None
    assert small.take("B/2", 1) == (state, 2) and small.take("B/3", 1) == (state, 2) and len(small) == 0


def test_kept_states_wait_for_the_commit_of_their_own_transaction(tmp_path):
    """WarmStates.keep_after_commit: kept when that transaction commits; not when it rolls
    back, not even if the same Session commits another transaction afterwards."""
    from sqlalchemy import text

    from sessions import SessionState
    from streams.billing import WarmStates

    state = SessionState(session_id="A/1", charge_point_id="A", transaction_id="1", ocpp_version="2.0.1")
    sessions = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'k.db'}"))
    warm = WarmStates(limit=10)
    with sessions.begin() as db:
        db.execute(text("SELECT 1"))
        warm.keep_after_commit(db, [("A/1", 1, 0, state)])
        assert len(warm) == 0  # not before the commit
    assert warm.take("A/1", 1) == (state, 0)
    db = sessions()
    db.execute(text("SELECT 1"))
    warm.keep_after_commit(db, [("A/2", 1, 0, state)])
    db.rollback()
    db.execute(text("SELECT 1"))
    db.commit()  # another transaction of the same Session
    db.close()
    assert len(warm) == 0


def test_a_released_savepoint_keeps_nothing_before_the_batch_commits(tmp_path):
    """A SAVEPOINT released inside the batch also sends ``after_commit``; the batch can
    still roll back then, so nothing is kept until the outer transaction commits."""
    from sqlalchemy import text

    from sessions import SessionState
    from streams.billing import WarmStates

    state = SessionState(session_id="A/1", charge_point_id="A", transaction_id="1", ocpp_version="2.0.1")
    sessions = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'n.db'}"))
    warm = WarmStates(limit=10)
    with pytest.raises(RuntimeError):
        with sessions.begin() as db:
            db.execute(text("SELECT 1"))
            warm.keep_after_commit(db, [("A/1", 7, 0, state)])
            with db.begin_nested():
                db.execute(text("SELECT 1"))
            assert len(warm) == 0
            raise RuntimeError("the batch fails after the savepoint")
    assert len(warm) == 0
    with sessions.begin() as db:
        db.execute(text("SELECT 1"))
        warm.keep_after_commit(db, [("A/1", 7, 0, state)])
        with db.begin_nested():
            db.execute(text("SELECT 1"))
        assert len(warm) == 0
    assert warm.take("A/1", 7) == (state, 0)  # kept at the outer commit


def test_a_stored_state_that_contradicts_its_row_fails_the_batch_instead_of_dead_lettering(tmp_path):
    """The row counts more recorded messages than ``session_messages`` holds (a lost row):
    the batch fails (retried, the partition waits for an operator) like a conflicting CDR,
    rather than dead-lettering every later event of the session as an internal error."""
    from sqlalchemy import text

    processor = _processor(tmp_path, "mismatch.db")
    processor.process_batch([InRecord("ev", 0, 0, b"STATE-1", STARTED)])
    with processor.sessions.begin() as db:
        db.execute(text("UPDATE sessions SET event_count = event_count + 1, version = version + 1"))
    with pytest.raises(repo.StoredStateMismatch, match="recorded messages stored, its row counts 2"):
        processor.process_batch([InRecord("ev", 0, 1, b"STATE-1", UPDATED), InRecord("ev", 0, 2, b"STATE-1", ENDED)])
    row, cdrs, letters, counters = _effect(processor)
    assert letters == [] and counters["events_in"] == 1  # nothing of the failed batch committed


class FailsAfterWritingOnce(Billing):
    """Billing whose second batch fails after end_batch wrote its session rows (the
    database fails before the commit): the batch rolls back."""

    batches = 0

    def end_batch(self, db):
        rows = super().end_batch(db)
        self.batches += 1
        if self.batches == 2:
            from sqlalchemy.exc import OperationalError

            raise OperationalError("COMMIT", {}, RuntimeError("server closed the connection"))
        return rows


def test_a_batch_that_rolls_back_keeps_no_state_even_when_another_writer_reaches_its_version(tmp_path):
    """The rolled-back batch wrote the session at the next version (+1) before failing; a
    second worker then really writes that version with other content (the stop). The first
    worker must read the row, not a state kept from the batch that never committed: the
    resent update is then applied as a late event (a correction), not taken as a duplicate."""
    from sqlalchemy.exc import OperationalError

    first = _processor(tmp_path, "rollback.db", FailsAfterWritingOnce)
    first.process_batch([InRecord("ev", 0, 0, b"STATE-1", STARTED)])
    with pytest.raises(OperationalError):
        first.process_batch([InRecord("ev", 0, 1, b"STATE-1", UPDATED)])
    second = Processor(first.sessions, Billing(Settings(database_url=str(first.sessions.kw["bind"].url))), "g")
    second.process_batch([InRecord("ev", 0, 1, b"STATE-1", ENDED)])
    first.process_batch([InRecord("ev", 0, 2, b"STATE-1", UPDATED)])

    row, cdrs, letters, counters = _effect(first)
    assert counters == {"events_in": 3, "applied": 3, "dead_lettered": 0, "duplicates": 0}
    assert row[1:3] == ("completed", 3) and letters == []
    assert len(cdrs) == 3  # the CDR, its credit and the corrected CDR (the late meter values)
    with first.sessions() as db:
        assert db.get(SessionRecord, "STATE-1/state-1").version == 3  # inserted, +1 by each worker


def test_a_session_written_by_another_worker_meanwhile_is_read_from_its_row(tmp_path):
    """A worker that lost the partition for a while (a zombie, or a rebalance there and
    back) must not apply events to the state it kept: the stop applied by the other worker
    is in the row, so the same stop resent is a duplicate."""
    first = _processor(tmp_path, "takeover.db")
    _batches(first, [STARTED, UPDATED])  # first keeps the open session's state
    second = Processor(first.sessions, Billing(Settings(database_url=str(first.sessions.kw["bind"].url))), "g")
    second.process_batch([InRecord("ev", 0, 2, b"STATE-1", ENDED)])
    first.process_batch([InRecord("ev", 0, 3, b"STATE-1", ENDED)])

    row, cdrs, letters, counters = _effect(first)
    assert counters == {"events_in": 4, "applied": 3, "dead_lettered": 0, "duplicates": 1}
    assert row[1:3] == ("completed", 3) and len(cdrs) == 1 and letters == []


def test_a_late_event_after_a_rerate_credits_the_rerated_cdr(tmp_path):
    """``chargeledger rerate`` (another process) records the re-rated version in the
    session's row; the worker, which kept the state from before, must correct from there."""
    import json

    from streams.rerate import rerate

    processor = _processor(tmp_path, "rerate.db")
    late = _event("s1", "2026-03-04T10:30:00Z", {  # UPDATED, delivered after the stop
        **json.loads(EventEnvelope.from_bytes(UPDATED).model_dump_json())["payload"]})
    late = EventEnvelope.from_bytes(late).model_copy(
        update={"received_at": datetime.fromisoformat("2026-03-04T11:30:00+00:00")}).to_bytes()
    _batches(processor, [STARTED, ENDED])
    corrected = json.loads(sample_tariff_json())
    corrected["elements"][0]["price_components"][0]["price"] = 0.75
    corrected["last_updated"] = "2026-03-10T00:00:00Z"
    with processor.sessions.begin() as db:
        store_tariff_json(db, json.dumps(corrected))
    settings = Settings(database_url=str(processor.sessions.kw["bind"].url))
    done = rerate(settings, settings.default_tariff_id, datetime.fromisoformat("2026-03-01T00:00:00+00:00"),
                  datetime.fromisoformat("2026-04-01T00:00:00+00:00"), dry_run=False, sessions=processor.sessions)
    assert len(done.issued) == 2
    processor.process_batch([InRecord("ev", 0, 2, b"STATE-1", late)])

    with processor.sessions() as db:
        ids = [c.id for c in db.query(CdrRecord).order_by(CdrRecord.pk)]
        credit = db.query(CdrRecord).filter(CdrRecord.id == ids[3]).one()
        assert db.get(SessionRecord, "STATE-1/state-1").cdr_id == ids[4]
    base = ids[0]
    # v0, rerate: credit of v0 + R1, late event: credit of R1 + R2
    assert ids == [base, f"{base}-C0", f"{base}-R1", f"{base}-C1", f"{base}-R2"]
    assert credit.credit_reference_id == f"{base}-R1"


# --- the batch's outbox, handed to the worker -------------------------------------------------


def test_a_batch_hands_over_the_outbox_rows_it_committed_and_marks_those_produced_in_the_next(tmp_path):
    from streams.processor import Published

    processor = _processor(tmp_path, "outbox.db")
    first = processor.process_batch([InRecord("ev", 0, 0, b"STATE-1", STARTED), InRecord("ev", 0, 1, b"STATE-1", b"{"),
                                     InRecord("ev", 0, 2, b"STATE-1", ENDED)])
    with processor.sessions() as db:
        outbox_cdrs = [(c.country_code, c.party_id, c.id, c.cdr_json, c.content_hash) for c in repo.unpublished_cdrs(db)]
        outbox_letters = [(d.source_offset, d.original, d.reason) for d in repo.unpublished_dead_letters(db)]
    # What the worker produces without reading the outbox: exactly its unpublished rows.
    assert [(c["country_code"], c["party_id"], c["id"], c["cdr_json"], c["content_hash"]) for c in first.cdrs] \
        == outbox_cdrs and len(outbox_cdrs) == 1
    assert [(d["source_offset"], d["original"], d["reason"]) for d in first.dead_letters] == outbox_letters
    assert [d[0] for d in outbox_letters] == [1]

    produced = Published(cdrs=[c[:3] for c in outbox_cdrs], dead_letters=[("ev", 0, 1)])
    second = processor.process_batch([InRecord("ev", 0, 3, b"STATE-1", ENDED)], produced)  # a resend: duplicate
    assert (second.cdrs, second.dead_letters) == ([], [])
    with processor.sessions() as db:
        assert (repo.unpublished_cdrs(db), repo.unpublished_dead_letters(db)) == ([], [])


@pytest.mark.parametrize("batches", [
    [[STARTED, UPDATED, ENDED, ENDED]],
    [[STARTED, UPDATED], [ENDED], [ENDED]],
], ids=["same-batch", "next-batch"])
@pytest.mark.parametrize("writer", ["plain", "model"])
def test_a_cdr_that_fails_to_serialise_leaves_no_trace_either(tmp_path, batches, writer, monkeypatch):
    """The CDR JSON is built before the envelope's states are kept (compute first, write
    last): a failure there dead-letters the envelope and the session is as before it.
    Both writers: the one from plain data (streams.cdrs.session_cdr_row) and the model's
    (taken when the plain one leaves the CDR to build_cdr)."""
    import streams.billing
    import streams.cdrs

    clean = _processor(tmp_path, "clean.db")
    _batches(clean, [STARTED, UPDATED, ENDED])
    calls = []
    if writer == "plain":
        real_plain = streams.cdrs.cdr_json_from_rows

        def fails_once(*args, **kwargs):
            calls.append(kwargs["id"])
            if len(calls) == 1:
                raise ValueError("serialiser bug")
            return real_plain(*args, **kwargs)

        monkeypatch.setattr(streams.cdrs, "cdr_json_from_rows", fails_once)
    else:
        real = streams.billing.cdr_json

        def fails_once(cdr):
            calls.append(cdr.id)
            if len(calls) == 1:
                raise ValueError("serialiser bug")
            return real(cdr)

        monkeypatch.setattr(streams.cdrs, "cdr_json_from_rows", lambda *args, **kwargs: None)
        monkeypatch.setattr(streams.billing, "cdr_json", fails_once)
    failing = _processor(tmp_path, "failing.db")
    _batches(failing, *batches)

    row, cdrs, letters, counters = _effect(failing)
    assert (row, cdrs) == _effect(clean)[:2]
    assert letters == ["internal error while applying: ValueError: serialiser bug"]
    assert counters == {"events_in": 4, "applied": 3, "dead_lettered": 1, "duplicates": 0}


def test_a_failure_closing_idle_sessions_keeps_the_message_applied_and_retries_at_the_next(tmp_path, monkeypatch,
                                                                                            caplog):
    import streams.billing

    def heartbeat(mid: str, at: str) -> bytes:
        return EventEnvelope(charge_point_id="STATE-1", ocpp_version="2.0.1", action="Heartbeat", message_id=mid,
                             received_at=datetime.fromisoformat(at.replace("Z", "+00:00")), payload={}).to_bytes()

    import streams.cdrs

    real, calls = streams.cdrs.cdr_json_from_rows, []

    def fails_once(*args, **kwargs):  # the CDR JSON writer of the pipeline (session_cdr_row)
        calls.append(kwargs["id"])
        if len(calls) == 1:
            raise ValueError("serialiser bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(streams.cdrs, "cdr_json_from_rows", fails_once)
    processor = _processor(tmp_path, "idle.db")
    # 48 h idle timeout: both heartbeats come after the session's deadline (10:30 + 48 h)
    _batches(processor, [STARTED, UPDATED], [heartbeat("h1", "2026-03-06T11:00:00Z")])
    with processor.sessions() as db:
        assert db.get(SessionRecord, "STATE-1/state-1").status == "open"
        assert db.query(CdrRecord).count() == 0
        assert repo.read_counters(db, "g") == {"events_in": 3, "applied": 3, "dead_lettered": 0, "duplicates": 0}
    assert "closing idle sessions of STATE-1" in caplog.text
    processor.process_batch([InRecord("ev", 0, 3, b"STATE-1", heartbeat("h2", "2026-03-06T12:00:00Z"))])
    with processor.sessions() as db:
        assert db.get(SessionRecord, "STATE-1/state-1").status == "incomplete"
        (cdr,) = db.query(CdrRecord).all()
    assert '"last_updated":"2026-03-06T12:00:00Z"' in cdr.cdr_json  # closed at the retry


def test_an_undo_puts_the_state_back_as_it_was_derived_facts_included():
    """The store's undo of an envelope (streams.billing._Undo) restores the very state
    object in place: whatever the envelope did to it (appended to its lists, replaced a
    list, assigned a field), the state reads and serialises as before the envelope."""
    from sessions import SessionState
    from sessions.events import CdrIssued, MessageRecorded, SessionClosedIdle, TransactionEnded

    from streams.billing import _Undo

    at = datetime.fromisoformat("2026-03-04T10:00:00+00:00")

    def message(mid: str, ended: bool = False) -> MessageRecorded:
        events = (TransactionEnded(timestamp=at),) if ended else ()
        return MessageRecorded(message_id=mid, action="TransactionEvent", fingerprint=mid, received_at=at,
                               events=events)

    def fresh() -> SessionState:
        return SessionState(session_id="A/1", charge_point_id="A", transaction_id="1", ocpp_version="2.0.1",
                            messages=[message("m0")], issued=[CdrIssued(version=0, cdr_id="C0", content_hash="h0")])

    expected = fresh().model_dump_json()
    for change in ("append", "replace-list", "assign", "all"):
        state = fresh()
        assert state.has_fingerprint("m0") and state.is_open and state.model_dump_json() == expected  # facts built
        messages, issued, fields_set = state.messages, state.issued, set(state.model_fields_set)
        undo = _Undo(state)
        if change in ("append", "all"):
            state.messages.append(message("m1", ended=True))
            state.issued.append(CdrIssued(version=1, cdr_id="C1", content_hash="h1"))
        if change in ("replace-list", "all"):
            state.messages = [message("m2", ended=True)]
        if change in ("assign", "all"):
            state.closed_idle = SessionClosedIdle(closed_at=at, last_received_at=at)
        assert state.model_dump_json() != expected and not state.is_open
        assert undo.restore() is state
        assert state.model_dump_json() == expected, change
        assert state.messages is messages and state.issued is issued and len(messages) == 1 and len(issued) == 1
        assert state.model_fields_set == fields_set
        assert state.has_fingerprint("m0") and not state.has_fingerprint("m1") and not state.has_fingerprint("m2")
        assert state.is_open and state.status == "open" and state.closed_idle is None
        # and it goes on like a state that never saw the envelope
        state.messages.append(message("m3", ended=True))
        assert state.stopped and state.has_fingerprint("m3")



def test_idle_deadlines_follow_each_message_of_the_charge_point(tmp_path):
    """The worker's idle-deadline index (Billing._deadlines) moves with every message of
    the session: a heartbeat after the deadline of the session's first message but before
    that of its last leaves it open; the next one after it closes it (48 h timeout)."""

    def heartbeat(mid: str, at: str) -> bytes:
        return EventEnvelope(charge_point_id="STATE-1", ocpp_version="2.0.1", action="Heartbeat", message_id=mid,
                             received_at=datetime.fromisoformat(at.replace("Z", "+00:00")), payload={}).to_bytes()

    processor = _processor(tmp_path, "deadlines.db")
    # STARTED received 10:00 (deadline 06T10:00), UPDATED 10:30 (deadline 06T10:30)
    _batches(processor, [STARTED, UPDATED, heartbeat("h1", "2026-03-06T10:15:00Z")])
    with processor.sessions() as db:
        assert db.get(SessionRecord, "STATE-1/state-1").status == "open"
    processor.process_batch([InRecord("ev", 0, 3, b"STATE-1", heartbeat("h2", "2026-03-06T10:20:00Z")),
                             InRecord("ev", 0, 4, b"STATE-1", heartbeat("h3", "2026-03-06T10:31:00Z"))])
    with processor.sessions() as db:
        assert db.get(SessionRecord, "STATE-1/state-1").status == "incomplete"
        (cdr,) = db.query(CdrRecord).all()
    assert '"last_updated":"2026-03-06T10:31:00Z"' in cdr.cdr_json  # closed at h3, not before


def test_keeping_a_batch_of_states_at_once_keeps_what_keeping_them_one_by_one_keeps():
    """WarmStates._keep_all (one lock for a batch's states) against WarmStates.keep per
    state: the same states at the same versions in the same least-recently-kept order,
    the same character count, over random batches with re-kept keys and both limits."""
    import random

    from sessions import SessionState

    from streams.billing import WarmStates

    rng = random.Random(7)
    states = [SessionState(session_id=f"A/{i}", charge_point_id="A", transaction_id=str(i), ocpp_version="1.6")
              for i in range(12)]
    for limit, max_chars in ((0, 100), (3, 1_000), (8, 40), (20, 25), (50, 10_000)):
        together, one_by_one = WarmStates(limit, max_chars), WarmStates(limit, max_chars)
        for _ in range(60):
            keys = rng.sample(range(12), rng.randint(0, 6))  # a batch keeps each of its keys once
            kept = [(f"A/{k}", rng.randint(1, 4), rng.randint(0, 30), states[k]) for k in keys]
            together._keep_all(kept)
            for item in kept:
                one_by_one.keep(*item)
            assert list(together._states.items()) == list(one_by_one._states.items())
            assert together._chars == one_by_one._chars == sum(v[1] for v in together._states.values())


def test_an_undo_restores_every_state_of_simulated_traffic_like_a_deep_copy():
    """The undo cuts the state's lists back to their lengths (they are append-only) instead
    of keeping their items: after each envelope of simulated messy traffic (duplicates,
    corrections, late events), undoing it gives exactly the state a deep copy taken before
    the envelope holds (JSON, fields set, derived facts), and the traffic goes on from it."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from traffic_support import simulated_envelopes

    from sessions import SessionAssembler, SessionState

    from streams.billing import _Undo

    def facts(state: SessionState) -> tuple:
        return (state.model_dump_json(), state.model_fields_set, state.status, state.is_open,
                state.last_received_at, state.start_timestamp, state.connector_id, state.start_id_tag,
                sorted(state._derived().fingerprints), state.seq_nos(), state.has_offline_messages)

    assembler = SessionAssembler()
    undone = 0
    for envelope in simulated_envelopes(60, 17, "U"):
        touched = {s.session_id: s for s in assembler.store.states.values()
                   if s.charge_point_id == envelope.charge_point_id}
        copies = {k: s.model_copy(deep=True) for k, s in touched.items()}
        undos = {k: _Undo(s) for k, s in touched.items()}
        outcome = assembler.apply(envelope)
        if outcome.state is None or outcome.state.session_id not in touched:
            continue
        for key, undo in undos.items():
            assert undo.restore() is touched[key]
            assert facts(touched[key]) == facts(copies[key])
        undone += 1
        assert assembler.apply(envelope).kind == outcome.kind  # applied again from the restored state
    assert undone > 200


def test_the_store_notes_the_undo_of_a_cached_state_as_undo_does():
    """SqlSessionStore.get builds the undo of a cached state inline: the same as _Undo(state)."""
    from datetime import timedelta

    from sessions import SessionState
    from sessions.events import CdrIssued

    from streams.billing import SqlSessionStore, _Undo

    state = SessionState(session_id="A/1", charge_point_id="A", transaction_id="1", ocpp_version="2.0.1",
                         issued=[CdrIssued(version=0, cdr_id="C0", content_hash="h0")])
    store = SqlSessionStore(None, timedelta(hours=1))  # type: ignore[arg-type] - no SQL for a cached state
    store.cache["A/1"] = state
    store.begin_envelope()
    assert store.get("A/1") is state
    noted = store.before["A/1"]
    assert type(noted) is _Undo and noted == _Undo(state)
    assert noted[1] is not state.__dict__ and noted[2] is not state.__pydantic_fields_set__
