"""CDR push through the outbox to a real HTTP server standing in for the partner: down first,
back later; everything arrives once, in issue order, with exponential backoff between tries."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import select

from api.pusher import CdrPusher, backoff_delay
from storage.api_tables import CdrOutbox
from storage.outbox import enqueue_cdr_push
from tests.apitools import FakePartner, add_partner, cdr_json, insert_cdr, migrated_sessionmaker


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture()
def sm(tmp_path):
    return migrated_sessionmaker(f"sqlite:///{tmp_path / 'push.db'}")


def issue(sm, cdr: dict) -> int:
    """What the pipeline does: the CDR row and its outbox rows in one transaction."""
    with sm() as db:
        row = insert_cdr(db, cdr)
        queued = enqueue_cdr_push(db, row, now=datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc))
        db.commit()
        return queued


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_delay(n, 1.0, 10.0) for n in range(0, 7)] == [0.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_outbox_rows_only_for_registered_partners_of_the_cdrs_emsp(sm):
    add_partner(sm, "DE", [("EMSP", "DE", "8AA")], cdrs_receiver_url="http://127.0.0.1:1/cdrs", token_b="b")
    add_partner(sm, "DE pulls only", [("EMSP", "DE", "8AB")])
    add_partner(sm, "pending", [("EMSP", "FR", "XYZ")], registered=False, cdrs_receiver_url="http://x")
    assert issue(sm, cdr_json("X1", emsp=("DE", "8AA"))) == 1
    assert issue(sm, cdr_json("X2", emsp=("DE", "8AB"))) == 0  # no receiver: it pulls
    assert issue(sm, cdr_json("X3", emsp=("FR", "XYZ"))) == 0  # not registered
    with sm() as db:
        row = db.execute(select(CdrOutbox)).scalar_one()
        assert row.cdr_id == "X1" and row.attempts == 0
        # enqueueing the same CDR again (a reprocessed batch) adds nothing
        from storage.models import CdrRecord

        record = db.execute(select(CdrRecord).where(CdrRecord.id == "X1")).scalar_one()
        assert enqueue_cdr_push(db, record) == 0


def test_partner_down_then_back_receives_everything_once_in_order(sm):
    partner = FakePartner(token="token-b")
    add_partner(sm, "DE", [("EMSP", "DE", "8AA")], cdrs_receiver_url=partner.cdrs_url, token_b="token-b")
    ids = ["P-1", "P-2", "P-2-C", "P-3", "P-4"]
    for cdr_id in ids:
        extra = {"credit_of": "P-2", "excl": "-4.00", "incl": "-4.40"} if cdr_id.endswith("-C") else {}
        assert issue(sm, cdr_json(cdr_id, **extra)) == 1
    clock = Clock()
    with httpx.Client(timeout=5) as http:
        pusher = CdrPusher(sm, http, backoff_base_s=1.0, backoff_max_s=60.0, clock=clock)

        # Down: connection refused. Only the head is tried; it backs off 1 s, 2 s, 4 s.
        waits = []
        for _ in range(3):
            stats = pusher.push_due()
            assert stats.delivered == 0 and stats.failed == 1
            assert pusher.push_due().failed == 0  # not due yet: nothing is tried
            with sm() as db:
                head = db.execute(select(CdrOutbox).order_by(CdrOutbox.id)).scalars().first()
                waits.append((head.next_attempt_at - clock.now).total_seconds())
                assert "ConnectError" in head.last_error
            clock.advance(waits[-1])
        assert waits == [1.0, 2.0, 4.0]
        with sm() as db:
            assert [r.attempts for r in db.execute(select(CdrOutbox).order_by(CdrOutbox.id)).scalars()] == [3, 0, 0, 0, 0]

        # Back, but the first answer is a 503: still nothing delivered, next wait 8 s.
        partner.fail_next = 1
        with partner.serve():
            stats = pusher.push_due()
            assert stats.delivered == 0 and stats.failed == 1 and "HTTP 503" in stats.errors[0]
            clock.advance(8)
            stats = pusher.push_due()
            assert stats.delivered == 5
            assert pusher.push_due().delivered == 0  # nothing is sent twice
        assert [c["id"] for c in partner.received] == ids
        assert partner.received[2]["credit"] is True and partner.received[2]["credit_reference_id"] == "P-2"
        expected_auth = "Token " + base64.b64encode(b"token-b").decode()
        assert all(h["authorization"] == expected_auth for h in partner.headers)
        assert partner.headers[0]["ocpi-to-party-id"] == "8AA" and partner.headers[0]["ocpi-from-party-id"] == "CLG"
    with sm() as db:
        rows = db.execute(select(CdrOutbox).order_by(CdrOutbox.id)).scalars().all()
        assert all(r.delivered_at is not None for r in rows)
        assert rows[0].location == partner.cdrs_url + "/P-1"


def test_a_cdr_the_partner_keeps_refusing_is_parked_and_the_rest_flows(sm):
    partner = FakePartner(token="token-b")
    add_partner(sm, "DE", [("EMSP", "DE", "8AA")], cdrs_receiver_url=partner.cdrs_url, token_b="token-b")
    issue(sm, cdr_json("Q-1"))
    issue(sm, cdr_json("Q-2"))
    clock = Clock()
    partner.fail_next = 3
    with partner.serve(), httpx.Client(timeout=5) as http:
        pusher = CdrPusher(sm, http, backoff_base_s=1.0, max_attempts=3, clock=clock)
        for _ in range(3):
            pusher.push_due()
            clock.advance(60)
        stats = pusher.push_due()
    assert [c["id"] for c in partner.received] == ["Q-2"]
    with sm() as db:
        first = db.execute(select(CdrOutbox).where(CdrOutbox.cdr_id == "Q-1")).scalar_one()
        assert first.dead_at is not None and first.attempts == 3 and "503" in first.last_error


def test_the_api_process_pushes_in_the_background(tmp_path):
    import time

    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.apitools import make_settings

    url = f"sqlite:///{tmp_path / 'bg.db'}"
    sm = migrated_sessionmaker(url)
    partner = FakePartner(token="token-b")
    add_partner(sm, "DE", [("EMSP", "DE", "8AA")], cdrs_receiver_url=partner.cdrs_url, token_b="token-b")
    issue(sm, cdr_json("BG-1"))
    app = create_app(make_settings(url, cdr_push_enabled=True, cdr_push_interval_s=0.05))
    with partner.serve(), TestClient(app):
        deadline = time.monotonic() + 10
        while not partner.received and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [c["id"] for c in partner.received] == ["BG-1"]
