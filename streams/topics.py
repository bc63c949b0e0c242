"""The pipeline's Kafka topics: names, keys, value schemas, configuration, and creation.

| logical name      | key              | value                                        | cleanup |
| ----------------- | ---------------- | -------------------------------------------- | ------- |
| ocpp-events       | charge point id  | EventEnvelope JSON (schemas/envelope.py)     | delete, retention unlimited (the event log is the truth) |
| ocpp-events-dlq   | source key       | the original bytes; headers: reason, source topic/partition/offset | delete, unlimited |
| tariffs           | tariff id        | OCPI 2.2.1 Tariff JSON                       | compact (latest version per id; the table keeps every version) |
| cdrs              | CDR id           | OCPI 2.2.1 CDR JSON (byte-identical on reprocessing) | delete, unlimited |

Every name goes through ``settings.topic(name)`` (CHARGELEDGER_TOPIC_PREFIX).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from chargeledger.settings import Settings

UNLIMITED = "-1"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    partitions = getattr(settings, "event_partitions", 4)
    return [
        TopicSpec(settings.topic(settings.topic_events), partitions, {"retention.ms": UNLIMITED}),
        TopicSpec(settings.topic(settings.topic_events_dlq), 1, {"retention.ms": UNLIMITED}),
        TopicSpec(settings.topic(settings.topic_tariffs), 1, {"cleanup.policy": "compact"}),
        TopicSpec(settings.topic(settings.topic_cdrs), partitions, {"retention.ms": UNLIMITED}),
    ]


async def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create the pipeline's topics that do not exist yet; returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in topic_specs(settings) if s.name not in existing]
        if wanted:
            await admin.create_topics(
                [NewTopic(s.name, num_partitions=s.partitions, replication_factor=1, topic_configs=s.config)
                 for s in wanted]
            )
            # Wait until the broker knows them (metadata propagation).
            for _ in range(100):
                if {s.name for s in wanted} <= set(await admin.list_topics()):
                    break
                await asyncio.sleep(0.1)
        return [s.name for s in wanted]
    finally:
        await admin.close()


async def read_topic(bootstrap: str, topic: str, timeout_ms: int = 1000) -> list:
    """Every record of ``topic`` from its beginning to its end now (aiokafka records)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public call for it
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out = []
        while True:
            behind = [tp for tp in tps if await consumer.position(tp) < end[tp]]
            if not behind:
                return out
            for records in (await consumer.getmany(*behind, timeout_ms=timeout_ms)).values():
                out.extend(r for r in records if r.offset < end[TopicPartition(r.topic, r.partition)])
    finally:
        await consumer.stop()
