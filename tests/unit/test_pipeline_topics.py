"""The faust app and the topic specs agree on names, keys and compaction."""

from chargeledger.settings import Settings
from streams.app import make_app
from streams.topics import topic_specs


def test_topics_carry_the_prefix_and_tariffs_are_compacted():
    settings = Settings(topic_prefix="x-", event_partitions=3)
    app = make_app(settings)
    assert app.ocpp_events.get_topic_name() == "x-ocpp-events"
    assert app.ocpp_events_dlq.get_topic_name() == "x-ocpp-events-dlq"
    assert app.cdrs.get_topic_name() == "x-cdrs"
    assert app.tariffs.get_topic_name() == "x-tariffs" and app.tariffs.compacting
    specs = {s.name: s for s in topic_specs(settings)}
    assert specs["x-tariffs"].config == {"cleanup.policy": "compact"}
    assert specs["x-ocpp-events"].partitions == 3 and specs["x-ocpp-events"].config["retention.ms"] == "-1"
