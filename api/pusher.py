"""The CDR push loop: delivers ``cdr_outbox`` rows to partners' CDRs receivers.

OCPI 2.2.1 mod_cdrs.asciidoc "Push model" / "POST Method": each CDR is POSTed to the eMSP's
CDRs endpoint; the answer carries a ``Location`` we keep. Guarantees:

* **in order per partner**: a partner's rows go out strictly in outbox ``id`` order (the
  order the CDRs were issued in). While the oldest undelivered row of a partner fails, the
  partner's later rows wait (head-of-line), so a partner that was down receives the backlog
  in the original order once it is back;
* **retries with exponential backoff**: after the n-th failed attempt the row waits
  ``min(backoff_max, backoff_base * 2**(n-1))`` seconds; after ``max_attempts`` it is parked
  (``dead_at``) so one poisoned CDR cannot block a partner forever; the partner can still
  pull it (and an admin sees it);
* **once**: a row is marked delivered in the database right after the partner accepted it;
  the CDR id is the idempotency key on the receiving side (OCPI CDRs cannot be replaced,
  our own receiver answers a repeated identical POST with 200 and the same Location).

One push loop per database: run it in one API process (``--workers 1`` or a dedicated
``chargeledger api`` with push enabled).
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import httpx
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from storage.api_tables import PARTNER_REGISTERED, CdrOutbox, Partner, PartnerRole

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def backoff_delay(attempts: int, base_s: float, max_s: float) -> float:
    """Seconds to wait after the ``attempts``-th failure: base, 2*base, 4*base, ... capped."""
    if attempts <= 0:
        return 0.0
    return min(max_s, base_s * (2 ** min(attempts - 1, 40)))


@dataclass
class PushStats:
    delivered: int = 0
    failed: int = 0
    parked: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Delivery:
    row_id: int
    attempts: int
    payload: str
    cdr_country_code: str
    cdr_party_id: str
    url: str
    token_b: str
    plain: bool
    to_country_code: str | None
    to_party_id: str | None


class CdrPusher:
    def __init__(
        self,
        sessionmaker_: sessionmaker,
        http: httpx.Client,
        *,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 600.0,
        max_attempts: int = 30,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker_
        self.http = http
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_attempts = max_attempts
        self.clock = clock

    def push_due(self) -> PushStats:
        """One pass: for each partner with pending rows, deliver due rows in order until one fails."""
        stats = PushStats()
        with self.sessionmaker() as db:
            partner_ids = db.execute(
                select(CdrOutbox.partner_id)
                .where(CdrOutbox.delivered_at.is_(None), CdrOutbox.dead_at.is_(None))
                .distinct()
            ).scalars().all()
        for partner_id in sorted(partner_ids):
            self._push_partner(partner_id, stats)
        return stats

    def _next_delivery(self, partner_id: int) -> _Delivery | None:
        with self.sessionmaker() as db:
            partner = db.get(Partner, partner_id)
            if partner is None or partner.status != PARTNER_REGISTERED or not partner.cdrs_receiver_url:
                return None
            head = db.execute(
                select(CdrOutbox)
                .where(CdrOutbox.partner_id == partner_id, CdrOutbox.delivered_at.is_(None),
                       CdrOutbox.dead_at.is_(None))
                .order_by(CdrOutbox.id)
                .limit(1)
            ).scalar_one_or_none()
            if head is None or head.next_attempt_at > self.clock():
                return None
            role = db.execute(
                select(PartnerRole).where(PartnerRole.partner_id == partner_id).order_by(PartnerRole.id).limit(1)
            ).scalar_one_or_none()
            return _Delivery(
                row_id=head.id, attempts=head.attempts, payload=head.payload,
                cdr_country_code=head.cdr_country_code, cdr_party_id=head.cdr_party_id,
                url=partner.cdrs_receiver_url, token_b=partner.token_b or "", plain=partner.send_plain_token,
                to_country_code=role.country_code if role else None, to_party_id=role.party_id if role else None,
            )

    def _post(self, d: _Delivery) -> tuple[bool, str | None, str | None]:
        """POST one CDR; (accepted, Location, error)."""
        token = d.token_b if d.plain else base64.b64encode(d.token_b.encode("utf-8")).decode("ascii")
        headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "X-Request-ID": str(uuid.uuid4()),
            # Same correlation id on every retry of this row, so both sides can trace them.
            "X-Correlation-ID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"chargeledger-cdr-push-{d.row_id}")),
            "OCPI-from-country-code": d.cdr_country_code,
            "OCPI-from-party-id": d.cdr_party_id,
        }
        if d.to_country_code and d.to_party_id:
            headers["OCPI-to-country-code"] = d.to_country_code
            headers["OCPI-to-party-id"] = d.to_party_id
        try:
            response = self.http.post(d.url, content=d.payload.encode("utf-8"), headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            return False, None, f"{type(exc).__name__}: {exc}"
        if response.status_code not in (200, 201):
            return False, None, f"HTTP {response.status_code}: {response.text[:300]}"
        try:
            body = response.json()
        except ValueError:
            return False, None, "answer is not JSON"
        status = body.get("status_code") if isinstance(body, dict) else None
        if status != 1000:
            message = body.get("status_message") if isinstance(body, dict) else None
            return False, None, f"OCPI status {status}: {message}"
        return True, response.headers.get("Location"), None

    def _push_partner(self, partner_id: int, stats: PushStats) -> None:
        while True:
            delivery = self._next_delivery(partner_id)
            if delivery is None:
                return
            ok, location, error = self._post(delivery)
            now = self.clock()
            with self.sessionmaker() as db:
                row = db.get(CdrOutbox, delivery.row_id)
                if ok:
                    row.delivered_at = now
                    row.location = location
                    row.attempts = delivery.attempts + 1
                    row.last_error = None
                    stats.delivered += 1
                else:
                    row.attempts = delivery.attempts + 1
                    row.last_error = error
                    if row.attempts >= self.max_attempts:
                        row.dead_at = now
                        stats.parked += 1
                        log.error("CDR push %s to partner %s parked after %d attempts: %s",
                                  row.cdr_id, partner_id, row.attempts, error)
                    else:
                        row.next_attempt_at = now + timedelta(
                            seconds=backoff_delay(row.attempts, self.backoff_base_s, self.backoff_max_s)
                        )
                    stats.failed += 1
                    stats.errors.append(error or "")
                db.commit()
            if not ok:
                return  # later rows of this partner wait: order is kept


def run_pusher_thread(sessionmaker_: sessionmaker, settings, stop: threading.Event) -> threading.Thread:
    """Start the push loop in a daemon thread; it polls every ``cdr_push_interval_s``."""
    http = httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0))
    pusher = CdrPusher(
        sessionmaker_, http,
        backoff_base_s=settings.cdr_push_backoff_base_s,
        backoff_max_s=settings.cdr_push_backoff_max_s,
        max_attempts=settings.cdr_push_max_attempts,
    )

    def loop() -> None:
        try:
            while not stop.is_set():
                try:
                    pusher.push_due()
                except Exception:  # noqa: BLE001 - keep pushing after a transient database error
                    log.exception("CDR push pass failed")
                stop.wait(settings.cdr_push_interval_s)
        finally:
            http.close()

    thread = threading.Thread(target=loop, name="cdr-pusher", daemon=True)
    thread.start()
    return thread
