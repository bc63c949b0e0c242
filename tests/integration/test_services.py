"""The local services work the way the rest of the suite relies on: the real broker takes
idempotent and transactional writes (what faust's exactly-once mode needs on one node) and
the real PostgreSQL keeps Numeric money exact as Decimal."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import Column, Integer, MetaData, Numeric, String, Table, func, insert, select

from chargeledger.services import ensure_kafka, kafka_reachable
from storage.db import make_engine


@pytest.mark.timeout(90)
async def test_kafka_transactional_produce_then_consume(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}services-roundtrip"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        enable_idempotence=True,
        transactional_id=f"{topic_prefix}services-tx",
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, key=b"CP-0001", value=b'{"action":"Heartbeat"}')
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic_prefix}services-group",
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # sees the record only because the commit went through
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()

    assert record.topic == topic
    assert record.key == b"CP-0001"
    assert record.value == b'{"action":"Heartbeat"}'
    assert record.offset == 0


def test_postgres_numeric_keeps_decimal_exact(pg_url: str) -> None:
    metadata = MetaData()
    amounts = Table(
        "services_check_amounts",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("currency", String(3), nullable=False),
        Column("amount", Numeric(18, 4), nullable=False),
    )
    engine = make_engine(pg_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                insert(amounts),
                [
                    {"currency": "EUR", "amount": Decimal("0.1000")},
                    {"currency": "EUR", "amount": Decimal("0.2000")},
                    {"currency": "EUR", "amount": Decimal("12345678901234.5678")},
                ],
            )
        with engine.connect() as conn:
            values = conn.execute(select(amounts.c.amount).order_by(amounts.c.id)).scalars().all()
            total = conn.execute(select(func.sum(amounts.c.amount))).scalar_one()
    finally:
        engine.dispose()

    assert all(isinstance(v, Decimal) for v in values)
    assert values == [Decimal("0.1000"), Decimal("0.2000"), Decimal("12345678901234.5678")]
    # By hand: 0.1 + 0.2 + 12345678901234.5678 = 12345678901234.8678 (a float sum gives
    # 12345678901234.867 at best: 17 significant digits do not fit a double).
    assert isinstance(total, Decimal)
    assert total == Decimal("12345678901234.8678")


def test_ensure_kafka_reuses_the_running_broker(kafka_bootstrap: str) -> None:
    ensure_kafka(kafka_bootstrap)  # already up: returns without starting anything
    assert kafka_reachable(kafka_bootstrap)


def test_settings_topics_belong_to_this_module(settings, topic_prefix: str) -> None:
    # Other test modules get "<session prefix><their module>-", so nobody reads our records.
    assert settings.topic_prefix == f"{topic_prefix}services-"
    assert settings.topic("ocpp-events") == f"{topic_prefix}services-ocpp-events"
    assert settings.app_id == f"{topic_prefix}services-chargeledger"
