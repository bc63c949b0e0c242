"""One settings object for every process, read from ``CHARGELEDGER_*`` environment variables.

Defaults run locally: a broker on 127.0.0.1:9092 (started by ``infra/kafka.sh``) and the
embedded SQLite database in the working directory.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHARGELEDGER_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = "sqlite:///chargeledger.db"
    #: Prefixed to every topic name; lets tests and parallel demos share one broker.
    topic_prefix: str = ""
    topic_events: str = "ocpp-events"
    topic_events_dlq: str = "ocpp-events-dlq"
    topic_tariffs: str = "tariffs"
    topic_cdrs: str = "cdrs"
    #: Consumer group / faust app id.
    app_id: str = "chargeledger"
    #: Our own OCPI identity as a CPO (country code, party id).
    country_code: str = "NL"
    party_id: str = "CLG"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    #: Sessions without a stop are closed as incomplete after this many seconds of silence.
    session_idle_timeout_s: int = 48 * 3600
    # --- pipeline (streams/) ---
    #: Partitions of ocpp-events and cdrs when the pipeline creates them.
    event_partitions: int = 4
    #: Records per worker batch; one database transaction per batch (exactly-once effect).
    worker_batch_size: int = 500
    #: The tariff that prices sessions (until locations carry their own tariff ids).
    default_tariff_id: str = "CLG-AC-DC-STD"
    #: The location sessions are recorded at (OCPI Location.id) and its IANA time zone,
    #: in which tariff restrictions (time of day, day of week) are read.
    location_id: str = "LOC-CLG-0001"
    location_time_zone: str = "Europe/Amsterdam"
    #: Port for the worker's Prometheus metrics (0: no HTTP endpoint).
    metrics_port: int = 0
    #: OCPP-J gateway (gateway/): listen address, heartbeat interval it tells chargers,
    #: OCPP 1.6 transaction ids reserved per database round trip, and how long it waits
    #: for Kafka to acknowledge a message before answering the charger with a CALLERROR.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 9000
    gateway_heartbeat_interval_s: int = 300
    gateway_transaction_id_block: int = 100
    gateway_publish_timeout_s: float = 10.0

    def topic(self, name: str) -> str:
        """Full topic name for a logical topic name, with the configured prefix."""
        return f"{self.topic_prefix}{name}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
