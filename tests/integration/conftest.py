"""Fixtures for integration tests on the real Kafka broker and the real PostgreSQL server.

``bash infra/test.sh`` starts both and exports their addresses; any other way of running
pytest must do the same (see README, "Local services"). Several people and CI runs share
one broker and one server, so every test session gets its own topic prefix, consumer
group / app id and a fresh database, and nothing here depends on what else is on them.

A service that cannot be reached fails the tests that need it, with the reason: an
integration test is never skipped silently.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chargeledger.settings import Settings

DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://chargeledger:chargeledger@127.0.0.1:5432/chargeledger"

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/integration carries the ``integration`` marker.

    Done at collection (not in a fixture) so ``-m "not integration"`` deselects them.
    """
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _reachable(bootstrap: str, timeout: float = 3.0) -> str | None:
    """Returns None when one of the bootstrap servers accepts TCP, else the last error."""
    error = "no server in the bootstrap list"
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return None
        except (OSError, ValueError) as exc:
            error = f"{server}: {exc}"
    return error


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker's bootstrap servers (CHARGELEDGER_KAFKA_BOOTSTRAP, default 127.0.0.1:9092)."""
    bootstrap = os.environ.get("CHARGELEDGER_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP)
    error = _reachable(bootstrap)
    if error is not None:
        pytest.fail(
            f"Kafka broker at {bootstrap} is unreachable ({error}). Integration tests need the real "
            "broker: run them through `bash infra/test.sh`, or start it with `bash infra/kafka.sh start`, "
            "or point CHARGELEDGER_KAFKA_BOOTSTRAP at a running broker.",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture(scope="session")
def topic_prefix() -> str:
    """A prefix unique to this test session for topic names, consumer groups and app ids."""
    return f"t{uuid.uuid4().hex[:8]}-"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped at the end.

    Created through CHARGELEDGER_TEST_DATABASE_URL (a role allowed to CREATE DATABASE);
    yields its SQLAlchemy URL with the psycopg driver, password included.
    """
    admin_url = make_url(os.environ.get("CHARGELEDGER_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))
    if admin_url.drivername in ("postgresql", "postgres"):
        admin_url = admin_url.set(drivername="postgresql+psycopg")
    name = f"cltest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure here means: no database for the tests
        admin.dispose()
        pytest.fail(
            f"cannot create a test database through {admin_url.render_as_string(hide_password=True)} "
            f"({type(exc).__name__}: {exc}). Integration tests need the real PostgreSQL server: run them "
            "through `bash infra/test.sh`, or start it with `bash infra/postgres.sh start`, or point "
            "CHARGELEDGER_TEST_DATABASE_URL at a role with CREATEDB.",
            pytrace=False,
        )
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # FORCE (PostgreSQL 13+): a worker or pool a test left open must not keep it alive.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_pg_url(pg_url: str) -> Iterator[str]:
    """A second fresh database next to the session's, for one test (e.g. one that migrates
    down and up), dropped after it."""
    url = make_url(pg_url)
    name = f"clmig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def settings(request: pytest.FixtureRequest, kafka_bootstrap: str, topic_prefix: str, pg_url: str) -> Settings:
    """Settings pointing at the real services; topics and app id are this test module's own.

    Module-scoped with prefix ``<session prefix><module>-``: two test modules that both
    produce onto ``settings.topic("ocpp-events")`` would otherwise count each other's records
    (it happened: the gateway tests' events showed up in the pipeline's count). Tests in one
    module share topics; give a test its own with ``settings.model_copy(update=...)``.
    The database (``pg_url``) is shared by the whole session.
    """
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_").replace("_", "-")
    prefix = f"{topic_prefix}{module}-"
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=pg_url,
        topic_prefix=prefix,
        app_id=f"{prefix}chargeledger",
    )


@pytest.fixture(scope="module")
def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as CHARGELEDGER_* environment variables, for tests that run a subprocess."""
    env = dict(os.environ)
    env.update(
        CHARGELEDGER_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        CHARGELEDGER_DATABASE_URL=settings.database_url,
        CHARGELEDGER_TOPIC_PREFIX=settings.topic_prefix,
        CHARGELEDGER_APP_ID=settings.app_id,
    )
    return env
