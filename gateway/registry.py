"""Database side of the gateway: registered charge points and OCPP 1.6 transaction ids.

Tables in storage/gateway_tables.py. Synchronous SQLAlchemy; the server calls these from
a worker thread (``asyncio.to_thread``) so the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from sqlalchemy import Engine, select, update

from gateway.auth import DEFAULT_N, hash_password, verify_password
from storage.db import make_sessionmaker
from storage.gateway_tables import GatewayChargePoint, GatewayCounter

TRANSACTION_ID_COUNTER = "transaction_id"


class ChargePointRegistry:
    """Charge points allowed to connect, each with a salted scrypt password hash."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = make_sessionmaker(engine)

    def register(self, charge_point_id: str, password: str, *, scrypt_n: int = DEFAULT_N) -> bool:
        """Register ``charge_point_id`` or replace its password; True when it was new."""
        now = datetime.now(timezone.utc)
        hashed = hash_password(password, n=scrypt_n)
        with self._sessions.begin() as db:
            row = db.get(GatewayChargePoint, charge_point_id)
            if row is None:
                db.add(GatewayChargePoint(charge_point_id=charge_point_id, password_hash=hashed, enabled=True,
                                          created_at=now, updated_at=now))
                return True
            row.password_hash, row.enabled, row.updated_at = hashed, True, now
            return False

    def register_many(self, credentials: dict[str, str], *, scrypt_n: int = DEFAULT_N) -> None:
        """Bulk registration (benchmarks, fleet imports); replaces existing passwords."""
        now = datetime.now(timezone.utc)
        with self._sessions.begin() as db:
            existing = set(db.scalars(select(GatewayChargePoint.charge_point_id).where(
                GatewayChargePoint.charge_point_id.in_(list(credentials)))))
            for cp_id, password in credentials.items():
                hashed = hash_password(password, n=scrypt_n)
                if cp_id in existing:
                    db.execute(update(GatewayChargePoint).where(GatewayChargePoint.charge_point_id == cp_id)
                               .values(password_hash=hashed, enabled=True, updated_at=now))
                else:
                    db.add(GatewayChargePoint(charge_point_id=cp_id, password_hash=hashed, enabled=True,
                                              created_at=now, updated_at=now))

    def set_enabled(self, charge_point_id: str, enabled: bool) -> bool:
        with self._sessions.begin() as db:
            row = db.get(GatewayChargePoint, charge_point_id)
            if row is None:
                return False
            row.enabled, row.updated_at = enabled, datetime.now(timezone.utc)
            return True

    def password_hash(self, charge_point_id: str) -> str | None:
        """The stored hash of an enabled charge point, None when unknown or disabled."""
        with self._sessions() as db:
            row = db.execute(
                select(GatewayChargePoint.password_hash, GatewayChargePoint.enabled).where(
                    GatewayChargePoint.charge_point_id == charge_point_id
                )
            ).first()
        if row is None or not row.enabled:
            return None
        return row.password_hash

    def authenticate(self, charge_point_id: str, password: str) -> bool:
        stored = self.password_hash(charge_point_id)
        return stored is not None and verify_password(password, stored)

    def list_ids(self) -> list[tuple[str, bool]]:
        with self._sessions() as db:
            return [tuple(r) for r in db.execute(
                select(GatewayChargePoint.charge_point_id, GatewayChargePoint.enabled).order_by(
                    GatewayChargePoint.charge_point_id))]


def reserve_block(engine: Engine, size: int, counter: str = TRANSACTION_ID_COUNTER) -> range:
    """Atomically take the next ``size`` values of ``counter``: one ``UPDATE ... RETURNING``.

    Concurrent callers (threads, processes, several gateways on one database) always get
    disjoint ranges: the row update is serialised by the database.
    """
    if size < 1:
        raise ValueError("block size must be positive")
    with make_sessionmaker(engine).begin() as db:
        end = db.execute(
            update(GatewayCounter)
            .where(GatewayCounter.name == counter)
            .values(next_value=GatewayCounter.next_value + size)
            .returning(GatewayCounter.next_value)
        ).scalar_one_or_none()
        if end is None:
            raise LookupError(f"counter {counter!r} missing: run 'chargeledger db upgrade'")
    return range(end - size, end)


class TransactionIdAllocator:
    """Hands out OCPP 1.6 transaction ids from blocks reserved in the database.

    Ids are unique across restarts and processes; the unused rest of a block is skipped
    after a restart (ids are identifiers, not a dense sequence).
    """

    def __init__(self, engine: Engine, block_size: int = 100) -> None:
        self._engine = engine
        self._block_size = block_size
        self._block: range = range(0)
        self._pos = 0
        self._lock = asyncio.Lock()

    async def next_id(self) -> int:
        async with self._lock:
            if self._pos >= len(self._block):
                self._block = await asyncio.to_thread(reserve_block, self._engine, self._block_size)
                self._pos = 0
            value = self._block[self._pos]
            self._pos += 1
            return value
