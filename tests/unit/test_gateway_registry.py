"""Charge point registry and transaction ids on the embedded database (SQLite)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.registry import ChargePointRegistry, TransactionIdAllocator, reserve_block
from storage.db import make_engine, upgrade

FAST = 2**10


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    upgrade(url)
    return make_engine(url)


def test_registered_charge_point_authenticates_only_with_its_password(engine):
    registry = ChargePointRegistry(engine)
    assert registry.register("CP-1", "pw-one", scrypt_n=FAST) is True
    assert registry.authenticate("CP-1", "pw-one")
    assert not registry.authenticate("CP-1", "pw-two")
    assert not registry.authenticate("CP-2", "pw-one")
    assert "pw-one" not in registry.password_hash("CP-1")


def test_re_registering_replaces_the_password(engine):
    registry = ChargePointRegistry(engine)
    registry.register("CP-1", "old", scrypt_n=FAST)
    assert registry.register("CP-1", "new", scrypt_n=FAST) is False
    assert registry.authenticate("CP-1", "new") and not registry.authenticate("CP-1", "old")


def test_a_disabled_charge_point_is_refused(engine):
    registry = ChargePointRegistry(engine)
    registry.register("CP-1", "pw", scrypt_n=FAST)
    assert registry.set_enabled("CP-1", False)
    assert registry.password_hash("CP-1") is None
    assert not registry.set_enabled("CP-404", False)


def test_blocks_reserved_concurrently_never_overlap(engine):
    with ThreadPoolExecutor(8) as pool:
        blocks = list(pool.map(lambda _: reserve_block(engine, 10), range(40)))
    ids = [i for block in blocks for i in block]
    assert len(ids) == len(set(ids)) == 400
    assert min(ids) >= 1


def test_transaction_ids_survive_a_restart_without_reuse(engine):
    async def take(allocator, n):
        return [await allocator.next_id() for _ in range(n)]

    first = asyncio.run(take(TransactionIdAllocator(engine, block_size=5), 7))  # two blocks: 1..10
    assert first == [1, 2, 3, 4, 5, 6, 7]
    # A new process (restart) starts after the last reserved block: 8..10 are skipped, never reused.
    second = asyncio.run(take(TransactionIdAllocator(engine, block_size=5), 3))
    assert second == [11, 12, 13]


def test_concurrent_requests_on_one_allocator_get_distinct_ids(engine):
    async def run():
        allocator = TransactionIdAllocator(engine, block_size=3)
        return await asyncio.gather(*(allocator.next_id() for _ in range(50)))

    ids = asyncio.run(run())
    assert sorted(ids) == list(range(1, 51))
