"""Where accepted and refused frames go: ``ocpp-events`` and ``ocpp-events-dlq`` on Kafka.

The gateway answers a charge point only after the broker acknowledged the record
(``acks=all``, idempotent producer, awaited send): an answered message is on the log even
if the gateway dies right after answering. If the broker does not acknowledge within
``timeout_s``, :class:`PublishFailed` is raised and the charger gets a CALLERROR
(InternalError) instead of a CALLRESULT, so it retries; a retry that duplicates a record
that did land after all is dropped downstream by message id.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from gateway.dead_letter import GatewayDeadLetter
from schemas.envelope import EventEnvelope

log = logging.getLogger(__name__)


class PublishFailed(Exception):
    """The event log did not acknowledge a record."""


class EventLog(Protocol):
    async def publish_event(self, envelope: EventEnvelope) -> None: ...

    async def publish_dead_letter(self, record: GatewayDeadLetter) -> None: ...


class KafkaEventLog:
    """aiokafka producer with ``acks=all`` and idempotence; every send is awaited."""

    def __init__(self, bootstrap: str, events_topic: str, dlq_topic: str, *, timeout_s: float = 10.0,
                 linger_ms: int = 2, max_batch_size: int = 512 * 1024) -> None:
        self.events_topic = events_topic
        self.dlq_topic = dlq_topic
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._linger_ms = linger_ms
        self._max_batch_size = max_batch_size
        self._producer = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            # aiokafka appends to one open batch per partition and makes every sender
            # wait while a full batch drains (one request in flight with idempotence):
            # small batches turn thousands of concurrent sends into a retry storm.
            max_batch_size=self._max_batch_size,
            request_timeout_ms=int(self._timeout_s * 1000),
            client_id="chargeledger-gateway",
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> "KafkaEventLog":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
        if self._producer is None:
            raise PublishFailed("producer not started")
        try:
            async with asyncio.timeout(self._timeout_s):  # no extra task per message, unlike wait_for
                await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # KafkaError, TimeoutError, ...
            raise PublishFailed(f"{topic}: {type(exc).__name__}: {exc}") from exc

    async def publish_event(self, envelope: EventEnvelope) -> None:
        await self._send(self.events_topic, envelope.kafka_key(), envelope.to_bytes())

    async def publish_dead_letter(self, record: GatewayDeadLetter) -> None:
        await self._send(self.dlq_topic, record.kafka_key(), record.kafka_value(), record.kafka_headers())


async def ensure_topics(bootstrap: str, topics: dict[str, int], replication_factor: int = 1) -> None:
    """Create the topics that do not exist yet (name -> partitions). An existing topic is
    left as it is. Production clusters create topics in their deployment; this is for
    local runs and tests, where the broker would otherwise auto-create one partition with
    the default retention. Same configuration as the pipeline's (streams/topics.py): the
    event log and its dead letters are kept forever (``retention.ms=-1``)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="chargeledger-gateway-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication_factor, topic_configs={"retention.ms": "-1"})
            for name, partitions in topics.items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:  # created concurrently by another process
                pass
    finally:
        await admin.close()
