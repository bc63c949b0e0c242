"""Session assembly: OCPP messages -> billable sessions. Pure (no Kafka, SQL or HTTP).

What the pipeline calls
-----------------------
::

    from sessions import AssemblerConfig, SessionAssembler, InMemorySessionStore

    assembler = SessionAssembler(AssemblerConfig.from_settings(get_settings()), store)
    outcome = assembler.apply(envelope)          # one schemas.envelope.EventEnvelope
    closed = assembler.close_idle(now)           # periodically; list[CompletedSession]

``store`` implements :class:`SessionStore` (``get``, ``put``, ``sessions_of(charge point)``,
``open_sessions()``) over whatever holds :class:`SessionState` objects; a state is plain
JSON (``state.model_dump_json()`` / ``SessionState.model_validate_json(text)``), the list
of recorded messages with their domain events plus the assembler's decisions, so
"state = fold(events)". ``InMemorySessionStore`` serves tests, replay and the demo.

What it gets back (:class:`AssemblyOutcome`, one per envelope)
-------------------------------------------------------------
* ``kind``: exactly one of ``"applied"``, ``"duplicate"``, ``"dead_lettered"``
  (``in == applied + duplicate + dead_lettered``; ``assembler.counts`` keeps the tally);
* ``reason``: why it was dead-lettered (also set for a seqNo duplicate whose content
  differed);
* ``session_id``: ``<charge point id>/<transaction id>`` when the envelope belongs to one;
* ``state``: the session's :class:`SessionState` after the envelope (persist it);
* ``completed``: sessions that just became complete (stop received): version 0, issue a
  CDR with id ``cdr_id``;
* ``corrections``: sessions whose CDR was already issued and that changed (late events):
  issue a credit CDR ``credit_cdr_id`` for ``replaces_cdr_id``, then a CDR ``cdr_id``.

A :class:`CompletedSession` carries: ``session_id``, ``charge_point_id``,
``transaction_id``, ``ocpi_session_id``, ``connector_id``, ``evse_id``, ``id_tag``,
``id_tag_status`` (central system's verdict; not ``Accepted`` is flagged),
``start`` / ``end`` (UTC), ``readings`` (``schemas.readings.MeterReading``, session-relative
kWh, charging flag), ``total_energy_kwh`` (Decimal, exact), ``incomplete``,
``stop_reason``, ``flags`` (:class:`SessionFlag` values), ``remarks`` and ``remark`` (for
the CDR, <= 255 chars), ``version``, ``cdr_id``, ``replaces_cdr_id``, ``credit_cdr_id``,
and ``content_hash()``.

CDR ids: :mod:`sessions.identity` (``cdr_id_for``, ``credit_cdr_id_for``; <= 33 chars).
Rules for energy, resets, baselines, phases, charging vs parking: :mod:`sessions.fold`.
Outcome rules (duplicates, dead letters, matching of unknown stop ids):
:mod:`sessions.assembler`.
"""

from sessions.assembler import (
    AssemblyOutcome,
    InMemorySessionStore,
    SessionAssembler,
    SessionStore,
    fingerprint_of,
    replay,
)
from sessions.config import AssemblerConfig
from sessions.events import SessionState
from sessions.fold import CompletedSession, SessionFlag, summarize
from sessions.identity import cdr_id_for, credit_cdr_id_for, ocpi_session_id_for, session_id_for

__all__ = [
    "AssemblerConfig",
    "AssemblyOutcome",
    "CompletedSession",
    "InMemorySessionStore",
    "SessionAssembler",
    "SessionFlag",
    "SessionState",
    "SessionStore",
    "cdr_id_for",
    "credit_cdr_id_for",
    "fingerprint_of",
    "ocpi_session_id_for",
    "replay",
    "session_id_for",
    "summarize",
]
