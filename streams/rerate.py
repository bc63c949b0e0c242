"""``chargeledger rerate``: re-price sessions after a tariff correction.

OCPI pricing rule 10 (docs/ocpi-pricing.md): a later tariff change never alters an issued
CDR; a deliberate re-rating issues a credit CDR and a new one. The corrected tariff is a
new version (a later ``last_updated``) published on the ``tariffs`` topic, which the worker
stores in the ``tariffs`` table. Then::

    chargeledger rerate --tariff CLG-AC-DC-STD --from 2026-03-01 --to 2026-04-01 [--dry-run]

takes every session whose CDR in force was priced with that tariff and started in
[from, to) (UTC dates, ``to`` exclusive), prices it again with the latest version of the
tariff valid at the session's start, and where the total cost changes issues, in one
database transaction: the credit CDR of the CDR in force (``<base>-C<v>``, negated costs,
``credit_reference_id``) and the replacement (``<base>-R<v+1>``); the session's state
records the new version, so a later late event corrects from there. The new CDRs go out
on the ``cdrs`` topic through the same outbox as the worker's. It reports the money moved
per currency (rounded to the currency's minor unit, ROUND_HALF_UP); ``--dry-run`` reports
without issuing anything.

Note: re-rated CDRs are not a function of the OCPP event log alone (they depend on the
rerate decision); ``chargeledger replay`` therefore reports them as missing from the rebuild.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from chargeledger.settings import Settings, get_settings
from schemas.ocpi import Cdr, Tariff
from sessions import AssemblerConfig, SessionState, summarize
from sessions.events import CdrIssued
from storage.db import make_engine, make_sessionmaker
from storage.models import CdrRecord, SessionRecord, TariffRecord
from storage.repositories import session_messages_json
from streams.billing import Billing
from pricing import credit_cdr
from streams.cdrs import session_cdr

MINOR_UNITS = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}


def minor(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2)), rounding=ROUND_HALF_UP)


@dataclass
class RerateReport:
    tariff_id: str
    tariff_version: datetime | None = None
    sessions: int = 0
    changed: int = 0
    issued: list[str] = field(default_factory=list)
    #: currency -> [excl, incl] moved (new minus old)
    moved: dict[str, list[Decimal]] = field(default_factory=lambda: defaultdict(lambda: [Decimal(0), Decimal(0)]))

    def lines(self, dry_run: bool) -> list[str]:
        version = self.tariff_version.isoformat() if self.tariff_version else "none"
        out = [
            f"tariff {self.tariff_id}, version {version}",
            f"sessions checked     {self.sessions}",
            f"sessions re-priced   {self.changed}" + ("  (dry run: nothing issued)" if dry_run else ""),
            f"CDRs issued          {len(self.issued)}",
        ]
        for currency, (excl, incl) in sorted(self.moved.items()):
            out.append(f"money moved {currency}      {minor(excl, currency):+} excl. VAT, {minor(incl, currency):+} incl. VAT")
        return out


def _day(text: str) -> datetime:
    return datetime.combine(datetime.fromisoformat(text).date(), time(0), tzinfo=timezone.utc)


def rerate(settings: Settings, tariff_id: str, date_from: datetime, date_to: datetime, *, dry_run: bool,
           sessions=None) -> RerateReport:
    sessions = sessions or make_sessionmaker(make_engine(settings.database_url))
    config = AssemblerConfig.from_settings(settings)
    billing = Billing(settings)
    report = RerateReport(tariff_id)
    with sessions.begin() as db:
        current = db.scalars(
            select(CdrRecord)
            .join(SessionRecord, SessionRecord.cdr_id == CdrRecord.id)
            .where(CdrRecord.tariff_id == tariff_id, CdrRecord.credit.is_(False),
                   CdrRecord.start_date_time >= date_from, CdrRecord.start_date_time < date_to)
            .order_by(CdrRecord.start_date_time, CdrRecord.id)
        ).all()
        latest = db.scalars(select(TariffRecord).where(TariffRecord.id == tariff_id)
                            .order_by(TariffRecord.last_updated.desc()).limit(1)).first()
        report.tariff_version = latest.last_updated if latest else None
        for row in current:
            report.sessions += 1
            record = db.get(SessionRecord, row.session_key)
            state = SessionState.from_stored(record.state_head_json, session_messages_json(db, row.session_key))
            summary = summarize(state, config)
            version_row = next((v for v in _versions(db, tariff_id, summary.start)), None)
            if version_row is None or version_row.last_updated <= (row.tariff_version or version_row.last_updated):
                continue  # no newer version valid at this session's start
            tariff = Tariff.model_validate_json(version_row.tariff_json)
            next_version = (state.issued[-1].version if state.issued else 0) + 1
            corrected = summary.as_version(next_version)
            old = Cdr.model_validate_json(row.cdr_json)
            # never before the CDR it replaces nor the corrected tariff (partners pull by last_updated)
            when = max(summary.issued_at, old.last_updated, tariff.last_updated)
            new = session_cdr(corrected, tariff, settings).model_copy(update={"last_updated": when})
            if (new.total_cost.excl_vat, new.total_cost.incl_vat) == (old.total_cost.excl_vat, old.total_cost.incl_vat):
                continue
            report.changed += 1
            moved = report.moved[new.currency]
            moved[0] += new.total_cost.excl_vat - old.total_cost.excl_vat
            moved[1] += (new.total_cost.incl_vat or 0) - (old.total_cost.incl_vat or 0)
            if dry_run:
                continue
            credit = credit_cdr(old, id=corrected.credit_cdr_id, last_updated=when)
            report.issued += billing._write(db, corrected, [credit, new])  # noqa: SLF001 - same write path
            state.issued.append(CdrIssued(version=next_version, cdr_id=corrected.cdr_id,
                                          content_hash=summary.content_hash()))
            # Only ``issued`` changed: the messages stay as stored (session_messages).
            record.state_head_json = state.head_json()
            record.cdr_id = corrected.cdr_id
            record.version = SessionRecord.version + 1  # the worker's kept copy is stale now
        if dry_run:
            db.rollback()
    return report


def _versions(db, tariff_id: str, at: datetime):
    """Versions of the tariff valid at ``at``, newest first."""
    from sqlalchemy import or_

    return db.scalars(
        select(TariffRecord).where(
            TariffRecord.id == tariff_id,
            or_(TariffRecord.valid_from.is_(None), TariffRecord.valid_from <= at),
            or_(TariffRecord.valid_to.is_(None), TariffRecord.valid_to > at),
        ).order_by(TariffRecord.last_updated.desc())
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargeledger rerate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tariff", required=True, help="tariff id whose latest version re-prices the sessions")
    parser.add_argument("--from", dest="date_from", required=True, help="first session start date (UTC, inclusive)")
    parser.add_argument("--to", dest="date_to", required=True, help="last session start date (UTC, exclusive)")
    parser.add_argument("--dry-run", action="store_true", help="only report what would change")
    args = parser.parse_args(argv)
    settings = get_settings()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    report = rerate(settings, args.tariff, _day(args.date_from), _day(args.date_to), dry_run=args.dry_run,
                    sessions=sessions)
    for line in report.lines(args.dry_run):
        print(line)
    if report.issued and not args.dry_run:
        from streams.worker import publish_outbox

        published = asyncio.run(publish_outbox(settings, sessions))
        print(f"published {published} CDRs on {settings.topic(settings.topic_cdrs)}")
    return 0
