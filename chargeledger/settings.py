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
    #: Records per worker batch (at most); one database transaction per batch (exactly-once
    #: effect). A poll returns what has arrived, so at a steady rate batches stay small (the
    #: final-event -> CDR latency at 1,000 events/s is the same with 500 and 2000); in a
    #: catch-up, 2000 gives 5-8% more events/s than 500 (fewer commits, fewer rewrites of a
    #: session's state: benchmarks/pipeline.py, CHARGELEDGER_WORKER_BATCH_SIZE=500|2000).
    worker_batch_size: int = 2000
    #: The tariff that prices sessions (until locations carry their own tariff ids).
    default_tariff_id: str = "CLG-AC-DC-STD"
    #: The location sessions are recorded at (OCPI Location.id) and its IANA time zone,
    #: in which tariff restrictions (time of day, day of week) are read.
    location_id: str = "LOC-CLG-0001"
    location_time_zone: str = "Europe/Amsterdam"
    #: Port for the worker's Prometheus metrics (0: no HTTP endpoint).
    metrics_port: int = 0
    #: Static consumer-group membership id of this worker (Kafka group.instance.id); a
    #: restarted worker with the same id gets its partitions back at once instead of after
    #: the session timeout. Empty: dynamic membership.
    worker_instance_id: str = ""
    #: OCPP-J gateway (gateway/): listen address, heartbeat interval it tells chargers,
    #: OCPP 1.6 transaction ids reserved per database round trip, and how long it waits
    #: for Kafka to acknowledge a message before answering the charger with a CALLERROR.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 9000
    gateway_heartbeat_interval_s: int = 300
    gateway_transaction_id_block: int = 100
    gateway_publish_timeout_s: float = 10.0

    # --- api (appended by the api work) ---
    #: Public base URL of the API for OCPI links (versions, Link headers); empty: taken from the request.
    api_public_url: str = ""
    #: Largest OCPI page we serve (X-Limit); a client asking for more gets this many.
    ocpi_page_limit: int = 100
    #: Our business name in the OCPI credentials object.
    business_name: str = "chargeledger"
    #: Timeout of each reachability check in GET /health, seconds.
    health_timeout_s: float = 2.0
    #: Run the CDR push loop (outbox -> partners' CDR receivers) inside the API process.
    cdr_push_enabled: bool = True
    #: Poll interval of the push loop and its exponential backoff bounds, seconds.
    cdr_push_interval_s: float = 1.0
    cdr_push_backoff_base_s: float = 1.0
    cdr_push_backoff_max_s: float = 600.0
    #: After this many failed attempts a CDR is parked (dead) and the next one is tried.
    cdr_push_max_attempts: int = 30
    #: Finance reports are cached and brought up to date from new CDRs; recomputed in full
    #: after this many seconds (0: no cache). See api/reports.py ReportCache.
    report_cache_ttl_s: float = 300.0
    #: A valid API key / OCPI token (by its SHA-256) is remembered this many seconds per API
    #: process, so a request does not read it from the database (0: no cache). Changes made
    #: through this process (credentials, partner registration) clear it at once; other
    #: processes see them within this time. See api/security.py AuthCache.
    auth_cache_ttl_s: float = 2.0

    # --- pipeline (appended by the perf-state work) ---
    #: Session states the worker keeps parsed between batches (streams.billing.WarmStates):
    #: at most this many, and at most this many MB of their JSON (parsed, a state takes ~7x
    #: its JSON in memory: 8 MB of JSON ~ 60 MB). A kept state is used only when its row
    #: still holds exactly the JSON it was written as. 0: parse every state in every batch.
    worker_state_cache_sessions: int = 4096
    worker_state_cache_json_mb: float = 8.0

    def topic(self, name: str) -> str:
        """Full topic name for a logical topic name, with the configured prefix."""
        return f"{self.topic_prefix}{name}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
