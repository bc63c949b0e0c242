"""From a valid envelope to session state and, when a session completes, an issued CDR.

This is the thin shell around the pure core: ``schemas.ocpp.validate_call`` (OCPP schema
validation), ``sessions`` (the event-sourced session aggregate) and ``pricing`` (the OCPI
tariff engine). It loads state from SQL, calls the core, and writes the results back in the
caller's transaction (:class:`streams.processor.Processor` owns the transaction). It
computes first and writes last, so an exception leaves nothing half-written.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from chargeledger.settings import Settings
from schemas.envelope import EventEnvelope
from storage.models import EventRecord
from streams.processor import Outcome

try:  # INTEGRATION POINT (ocpp helper): OCPP schema validation
    from schemas.ocpp import InvalidMessage, validate_call
except ImportError:  # pragma: no cover - until schemas/ocpp.py lands
    validate_call = None

    class InvalidMessage(ValueError):  # type: ignore[no-redef]
        reason = ""


class Billing:
    """The :class:`streams.processor.EventHandler` of the worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def handle(self, db: Session, envelope: EventEnvelope) -> Outcome:
        if validate_call is not None:
            try:
                validate_call(envelope.ocpp_version, envelope.action, envelope.payload)
            except InvalidMessage as exc:
                return Outcome.dead_lettered(exc.reason)
        if self._seen(db, envelope):
            return Outcome.duplicate()
        # INTEGRATION POINT (ocpp helper): session assembly from sessions/.
        # INTEGRATION POINT (pricing helper): price completed sessions, issue CDRs.
        return Outcome.applied()

    def _seen(self, db: Session, envelope: EventEnvelope) -> bool:
        """The same OCPP message (charge point id, message id) was applied or counted before."""
        return db.scalar(
            select(EventRecord.pk).where(
                EventRecord.charge_point_id == envelope.charge_point_id,
                EventRecord.message_id == envelope.message_id,
                EventRecord.outcome != "dead_lettered",
            ).limit(1)
        ) is not None

    def on_tariffs_changed(self, db: Session) -> None:
        """New tariff versions arrived: price the sessions that were waiting for one."""
