"""Decoding ahead (issue 4, the worker's overlap of a batch's commit with the next batch's
decoding): the state-free part of applying an envelope (``sessions.assembler.decode_call``,
``Processor.decode``) computed before, even long before, the envelope is applied gives
exactly what applying it computes itself; and a batch that fails in its commit phase keeps
nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chargeledger.settings import Settings
from schemas.envelope import EventEnvelope
from sessions.assembler import DecodedCall, SessionAssembler, decode_call
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import CdrRecord, DeadLetterRecord, EventRecord, SessionRecord
from streams.billing import Billing
from streams.processor import InRecord, Processor, Published
from streams.simulate import simulate_traffic
from streams.tariffs import sample_tariff_json, store_tariff_json


def _messy_records() -> list[InRecord]:
    """Seeded messy traffic: malformed records, duplicates, and a few records delivered late
    (after their session's CDR: corrections with credit CDRs)."""
    records = simulate_traffic(12, 60, seed=21, malformed=9, duplicates=14, charge_point_prefix="DA").records
    late = [r for i, r in enumerate(records)
            if (i % 41 == 5 and b"MeterValues" in r.value)
            or (i % 37 == 3 and b"TransactionEvent" in r.value and b"Updated" in r.value)][:8]
    late_ids = {id(r) for r in late}
    records = [r for r in records if id(r) not in late_ids] + late
    return [InRecord("ev", 0, i, r.key, r.value) for i, r in enumerate(records)]


def _envelopes(records: list[InRecord]) -> list[EventEnvelope]:
    envelopes = []
    for record in records:
        try:
            envelopes.append(EventEnvelope.from_bytes(record.value))
        except Exception:  # noqa: BLE001 - not an envelope: not the assembler's input
            pass
    return envelopes


def _digest(outcome) -> tuple:
    return (outcome.kind, outcome.reason, outcome.session_id, outcome.events,
            tuple((c.cdr_id, c.version, c.content_hash()) for c in outcome.completed),
            tuple((c.cdr_id, c.version, c.replaces_cdr_id, c.content_hash()) for c in outcome.corrections),
            None if outcome.state is None else outcome.state.model_dump_json())


def test_an_assembler_given_every_call_decoded_ahead_decides_exactly_as_without():
    envelopes = _envelopes(_messy_records())
    decoded = [decode_call(envelope) for envelope in envelopes]  # all of them before any is applied
    inline, ahead = SessionAssembler(), SessionAssembler()
    inline_outcomes = [_digest(inline.apply(envelope)) for envelope in envelopes]
    ahead_outcomes = [_digest(ahead.apply(envelope, pre)) for envelope, pre in zip(envelopes, decoded)]
    assert ahead_outcomes == inline_outcomes
    assert inline.counts == ahead.counts
    assert ({k: s.model_dump_json() for k, s in inline.store.states.items()}
            == {k: s.model_dump_json() for k, s in ahead.store.states.items()})
    # the traffic covers what decoding decides: schema violations, duplicates, corrections
    kinds = {outcome[0] for outcome in inline_outcomes}
    assert kinds == {"applied", "duplicate", "dead_lettered"}
    assert any(pre is not None and pre.reason is not None for pre in decoded)
    assert any(outcome[5] for outcome in inline_outcomes)


def test_decode_call_is_what_apply_computes():
    """A schema violation carries the validator's reason; a valid call its model and the
    fingerprint of (action, payload); a message outside sessions neither."""
    from schemas.ocpp import InvalidMessage
    from sessions.assembler import fingerprint_of
    from sessions.calls import checked_call

    for envelope in _envelopes(_messy_records()):
        pre = decode_call(envelope)
        try:
            model = checked_call(envelope.ocpp_version, envelope.action, envelope.payload)
        except InvalidMessage as exc:
            assert pre == DecodedCall(None, exc.reason, None)
            continue
        if model is None:
            assert pre == DecodedCall(None, None, None)
        else:
            assert pre.reason is None and pre.model == model
            assert pre.fingerprint == fingerprint_of(envelope.action, envelope.payload)


def test_decode_call_leaves_a_validator_bug_to_apply(monkeypatch):
    """A validator failing other than with InvalidMessage (a bug): decode_call gives None, so
    apply validates again and raises where it always did (the processor dead-letters it)."""
    import sessions.assembler as assembler

    def broken(*args):
        raise RuntimeError("validator bug")

    monkeypatch.setattr(assembler, "checked_call", broken)
    envelope = next(e for e in _envelopes(_messy_records()) if e.action == "StopTransaction")
    assert decode_call(envelope) is None
    with pytest.raises(RuntimeError, match="validator bug"):
        SessionAssembler().apply(envelope, decode_call(envelope))


def _processor(tmp_path, name: str, handler_class=Billing) -> Processor:
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as db:
        store_tariff_json(db, sample_tariff_json())
    return Processor(sessions, handler_class(Settings(database_url=url)), "g")


def _contents(processor: Processor) -> tuple:
    with processor.sessions() as db:
        return (
            [(c.id, c.content_hash, c.cdr_json) for c in db.scalars(select(CdrRecord).order_by(CdrRecord.id))],
            [(d.source_offset, d.reason) for d in db.scalars(select(DeadLetterRecord).order_by(DeadLetterRecord.pk))],
            [(e.offset, e.outcome, e.session_key, e.reason) for e in db.scalars(select(EventRecord).order_by(EventRecord.offset))],
            [(r.session_key, r.status, r.cdr_id, r.event_count, r.state_head_json)
             for r in db.scalars(select(SessionRecord).order_by(SessionRecord.session_key))],
            sorted(repo.read_counters(db, "g").items()),
        )


def test_batches_decoded_ahead_store_exactly_what_process_batch_stores(tmp_path):
    """Every batch decoded before the first is applied (the worker decodes one batch ahead;
    this is the extreme), then applied and committed in two phases: the same CDRs, dead
    letters, event outcomes, session rows and counters as process_batch."""
    records = _messy_records()
    batches = [records[i:i + 40] for i in range(0, len(records), 40)]
    inline = _processor(tmp_path, "inline.db")
    for batch in batches:
        inline.process_batch(batch)
    ahead = _processor(tmp_path, "ahead.db")
    decoded = [ahead.decode(batch) for batch in batches]
    for batch, pre in zip(batches, decoded):
        ahead.apply(batch, None, pre).commit()
    assert _contents(ahead) == _contents(inline)
    cdrs, letters, _, _, counters = _contents(inline)
    assert letters and any(c[2] and '"credit"' in c[2] for c in cdrs)  # dead letters, corrections
    assert dict(counters)["events_in"] == len(records)


def test_a_handler_overriding_handle_without_decoded_still_gets_every_envelope(tmp_path):
    """A handler whose ``handle`` takes (db, envelope) only is called that way: the
    processor does not decode for it."""
    class TwoArguments(Billing):
        def handle(self, db, envelope):
            return super().handle(db, envelope)

    records = _messy_records()
    inline = _processor(tmp_path, "inline.db")
    inline.process_batch(records)
    other = _processor(tmp_path, "other.db", TwoArguments)
    assert all(item.decoded is None for item in other.decode(records))
    other.process_batch(records)
    assert _contents(other) == _contents(inline)


def test_a_batch_failing_in_its_commit_phase_keeps_nothing(tmp_path):
    """Phase B (AppliedBatch.commit) fails: the transaction is rolled back, nothing of the
    batch is stored (positions, counters, events, outbox marks), the error is raised; the
    batch applied again afterwards stores what it would have."""
    class FailsAtEndOfBatch(Billing):
        fail = True

        def end_batch(self, db):
            rows = super().end_batch(db)
            if self.fail:
                raise RuntimeError("commit phase failed")
            return rows

    records = _messy_records()
    first, second = records[:100], records[100:]
    processor = _processor(tmp_path, "p.db", FailsAtEndOfBatch)
    processor.handler.fail = False
    done = processor.process_batch(first)
    produced = Published(cdrs=[(c["country_code"], c["party_id"], c["id"]) for c in done.cdrs],
                         dead_letters=[(d["source_topic"], d["source_partition"], d["source_offset"])
                                       for d in done.dead_letters])
    assert produced
    before = _contents(processor)
    processor.handler.fail = True
    applied = processor.apply(second, produced, processor.decode(second))
    with pytest.raises(RuntimeError, match="commit phase failed"):
        applied.commit()
    assert _contents(processor) == before
    with processor.sessions() as db:
        assert not db.scalars(select(CdrRecord).where(CdrRecord.published)).all()
        assert repo.tracked_offsets(db, "g", "ev") == {0: 100}
    processor.handler.fail = False
    processor.process_batch(second, produced)
    reference = _processor(tmp_path, "ref.db")
    reference.process_batch(first)
    reference.process_batch(second)
    assert _contents(processor) == _contents(reference)
