"""The faust app of the pipeline, with its four topics.

``app`` declares the topics (``ocpp-events``, ``ocpp-events-dlq``, ``tariffs`` compacted,
``cdrs``) with raw bytes keys and values, names through ``settings.topic()``. Further
Kafka-to-Kafka agents (alerts, projections) can be attached to it with ``@app.agent``.

Why the core loop is not a faust agent (see :mod:`streams.worker`): the money path needs
the exactly-once *effect* in SQL, i.e. for every batch of records the raw events, session
states, CDRs, dead letters, counters and the tracking record (group, topic, partition,
next offset) must commit in ONE database transaction, and on partition assignment the
consumer must seek to the offsets stored in that database, not to the offsets committed
in Kafka. faust commits offsets itself from its own acked-offset bookkeeping and gives an
agent no supported hook to seek on assignment; its ``processing_guarantee=exactly_once``
covers Kafka-to-Kafka only. So the worker runs an aiokafka consumer with a rebalance
listener that seeks to the stored offsets, and one SQL transaction per batch; CDRs and
dead letters go out through a transactional outbox (a ``published`` flag), so a crash
between the commit and the produce only means the same bytes are produced again under
the same key. The topic declarations below stay the single description of the topics.
"""

from __future__ import annotations

import faust

from chargeledger.settings import Settings, get_settings


def make_app(settings: Settings | None = None) -> faust.App:
    settings = settings or get_settings()
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=settings.event_partitions,
        topic_replication_factor=1,
    )
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    app.ocpp_events = app.topic(  # type: ignore[attr-defined]
        settings.topic(settings.topic_events), partitions=settings.event_partitions,
        retention=None, **raw,
    )
    app.ocpp_events_dlq = app.topic(  # type: ignore[attr-defined]
        settings.topic(settings.topic_events_dlq), partitions=1, **raw,
    )
    app.tariffs = app.topic(  # type: ignore[attr-defined]
        settings.topic(settings.topic_tariffs), partitions=1, compacting=True, **raw,
    )
    app.cdrs = app.topic(  # type: ignore[attr-defined]
        settings.topic(settings.topic_cdrs), partitions=settings.event_partitions, **raw,
    )
    return app


#: ``faust -A streams.app`` finds this.
app = make_app()
