"""CDR push outbox: who must receive a CDR, written in the CDR's own transaction.

OCPI 2.2.1 mod_cdrs.asciidoc "Push model": the CPO POSTs each new CDR (and each credit CDR)
to the CDRs receiver of the eMSP it concerns. To never lose or double a push, the pipeline
calls :func:`enqueue_cdr_push` inside the transaction that inserts the CDR row; the API's
push loop (``api.pusher``) delivers the rows later, in order per partner, with retries.

Which partners: every *registered* OCPI partner that has a CDRs receiver endpoint and one
of whose agreed parties is the CDR's eMSP (``cdr_token.country_code`` / ``party_id``).
Partners without a receiver pull the CDR through our sender interface instead.

Idempotent by CDR id: the outbox has a unique key (partner, CDR country_code, party_id,
id), and a second enqueue of the same CDR is a no-op (``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from storage.api_tables import PARTNER_REGISTERED, CdrOutbox, Partner, PartnerRole


def _cdr_parts(cdr: Any) -> tuple[str, str, str, str | None, str | None, str]:
    """(country_code, party_id, id, emsp_country_code, emsp_party_id, JSON text) of a CDR
    given as a ``storage.models.CdrRecord`` row, a ``schemas.ocpi.Cdr`` model or a dict."""
    if hasattr(cdr, "cdr_json"):  # the pipeline's CdrRecord row
        return (cdr.country_code, cdr.party_id, cdr.id, cdr.emsp_country_code, cdr.emsp_party_id, cdr.cdr_json)
    if hasattr(cdr, "model_dump_json"):  # schemas.ocpi.Cdr
        return (cdr.country_code, cdr.party_id, cdr.id, cdr.cdr_token.country_code, cdr.cdr_token.party_id,
                cdr.model_dump_json())
    if isinstance(cdr, dict):
        from schemas.ocpi import ocpi_dumps

        token = cdr.get("cdr_token") or {}
        return (cdr["country_code"], cdr["party_id"], cdr["id"], token.get("country_code"), token.get("party_id"),
                ocpi_dumps(cdr))
    raise TypeError(f"cannot enqueue a CDR given as {type(cdr).__name__}")


def _insert_ignoring_duplicates(session: Session, rows: list[dict]) -> int:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - other databases: check first, then insert
        inserted = 0
        for row in rows:
            exists = session.execute(select(CdrOutbox.id).where(
                CdrOutbox.partner_id == row["partner_id"], CdrOutbox.cdr_country_code == row["cdr_country_code"],
                CdrOutbox.cdr_party_id == row["cdr_party_id"], CdrOutbox.cdr_id == row["cdr_id"],
            )).first()
            if exists is None:
                session.add(CdrOutbox(**row))
                inserted += 1
        session.flush()
        return inserted
    stmt = insert(CdrOutbox).values(rows).on_conflict_do_nothing(
        index_elements=["partner_id", "cdr_country_code", "cdr_party_id", "cdr_id"]
    ).returning(CdrOutbox.id)
    return len(session.execute(stmt).all())


def enqueue_cdr_push(session: Session, cdr: Any, now: datetime | None = None) -> int:
    """Queue ``cdr`` for every partner concerned; returns how many pushes were newly queued.

    Call it in the same transaction (``session``) that inserts the CDR row, for new CDRs and
    credit CDRs alike; it only adds rows, and commits nothing itself. Calling it again for
    the same CDR queues nothing new.
    """
    return enqueue_cdr_pushes(session, [cdr], now)


def enqueue_cdr_pushes(session: Session, cdrs: list[Any], now: datetime | None = None) -> int:
    """:func:`enqueue_cdr_push` for many CDRs (in order) with one partner query for all
    their eMSPs and one insert per 500 rows; returns how many pushes were newly queued."""
    return _enqueue(session, [_cdr_parts(cdr) for cdr in cdrs], now)


def enqueue_cdr_row_pushes(session: Session, rows: list[dict], now: datetime | None = None) -> int:
    """:func:`enqueue_cdr_pushes` for CDRs given as the pipeline's ``cdrs`` row values (dicts
    with the keys of ``storage.models.CdrRecord``: ``country_code``, ``party_id``, ``id``,
    ``emsp_country_code``, ``emsp_party_id``, ``cdr_json``), read as ``_cdr_parts`` reads a
    CdrRecord row."""
    return _enqueue(session, [(r["country_code"], r["party_id"], r["id"], r["emsp_country_code"],
                               r["emsp_party_id"], r["cdr_json"]) for r in rows], now)


def _enqueue(session: Session, cdrs: list[tuple], now: datetime | None) -> int:
    """Queue the CDRs given as ``_cdr_parts`` tuples, in order."""
    now = now or datetime.now(timezone.utc)
    parts = []
    for country_code, party_id, cdr_id, emsp_cc, emsp_pid, payload in cdrs:
        if not emsp_cc or not emsp_pid:
            continue
        parts.append((country_code, party_id, cdr_id, (emsp_cc.upper(), emsp_pid.upper()), payload))
    partners = _receivers(session, {key for *_, key, _ in parts})
    rows = []
    for country_code, party_id, cdr_id, key, payload in parts:
        if not partners[key]:
            continue
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8")
        json.loads(payload)  # refuse to queue something that is not JSON
        rows.extend(
            {
                "partner_id": pid,
                "cdr_country_code": country_code,
                "cdr_party_id": party_id,
                "cdr_id": cdr_id,
                "payload": payload,
                "enqueued_at": now,
                "attempts": 0,
                "next_attempt_at": now,
            }
            for pid in partners[key]
        )
    return sum(_insert_ignoring_duplicates(session, rows[i:i + 500]) for i in range(0, len(rows), 500))


def _receivers(session: Session, emsps: set[tuple[str, str]]) -> dict[tuple[str, str], list[int]]:
    """(country_code, party_id) of each eMSP -> ids (ascending, distinct) of the registered
    partners with a CDRs receiver that act for that party; one query for all of them
    (narrowed by country codes and party ids in SQL, the exact pairs picked here)."""
    found: dict[tuple[str, str], set[int]] = {key: set() for key in emsps}
    if emsps:
        result = session.execute(_RECEIVERS, {
            "country_codes": sorted({cc for cc, _ in emsps}),
            "party_ids": sorted({pid for _, pid in emsps}),
        })
        for country_code, party_id, partner_id in result:
            ids = found.get((country_code, party_id))
            if ids is not None:
                ids.add(partner_id)
    return {key: sorted(ids) for key, ids in found.items()}


_PARTNERS = Partner.__table__
_ROLES = PartnerRole.__table__
#: The partner query of :func:`_receivers`, built once (Core: the same SQL as the ORM
#: select of these columns, without building and compiling an ORM statement per batch).
_RECEIVERS = (
    select(_ROLES.c.country_code, _ROLES.c.party_id, _PARTNERS.c.id)
    .select_from(_PARTNERS.join(_ROLES, _ROLES.c.partner_id == _PARTNERS.c.id))
    .where(
        _PARTNERS.c.status == PARTNER_REGISTERED,
        _PARTNERS.c.cdrs_receiver_url.is_not(None),
        _ROLES.c.country_code.in_(bindparam("country_codes", expanding=True)),
        _ROLES.c.party_id.in_(bindparam("party_ids", expanding=True)),
    )
)
