"""Session state in the worker's unit of work (streams.billing.SqlSessionStore): states are
written once per batch, and an envelope that fails after session assembly changed its
session leaves no trace, whether the session was loaded in the same batch or before it.

Processor-level (SQLite, no Kafka).
"""

from datetime import datetime

import pytest

from chargeledger.settings import Settings
from schemas.envelope import EventEnvelope
from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
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


def _processor(tmp_path, name: str, handler_class=Billing) -> Processor:
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as db:
        store_tariff_json(db, sample_tariff_json())
    return Processor(sessions, handler_class(Settings(database_url=url)), "g")


def _batches(processor: Processor, *batches: list[bytes]) -> None:
    offset = 0
    for values in batches:
        processor.process_batch([InRecord("ev", 0, offset + i, b"STATE-1", v) for i, v in enumerate(values)])
        offset += len(values)


def _effect(processor: Processor):
    with processor.sessions() as db:
        session = db.get(SessionRecord, "STATE-1/state-1")
        row = (session.state_json, session.status, session.event_count, session.cdr_id, session.ended_at)
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
