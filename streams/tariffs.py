"""Tariffs as events: the compacted ``tariffs`` topic (key: tariff id) and the tariffs table.

Every record on the topic is one version of an OCPI 2.2.1 Tariff (mod_tariffs.asciidoc
section 3.1), identified by its ``last_updated``. Compaction keeps the latest version per id
on the topic; the table keeps every version, because a session is priced with the version
valid at its start (:func:`storage.repositories.tariff_valid_at`).
"""

from __future__ import annotations

from importlib import resources

from pydantic import ValidationError
from sqlalchemy.orm import Session

from schemas.ocpi import Tariff
from storage import repositories as repo

SAMPLE_TARIFF = "tariff.json"


def sample_tariff_json() -> bytes:
    """The sample tariff shipped with the package (streams/samples/tariff.json)."""
    return (resources.files("streams") / "samples" / SAMPLE_TARIFF).read_bytes()


def parse_tariff(value: bytes | str) -> Tariff:
    """An OCPI Tariff from JSON; ValueError with the reason when it is not one."""
    try:
        return Tariff.model_validate_json(value)
    except ValidationError as exc:
        raise ValueError(f"not an OCPI 2.2.1 Tariff: {exc.errors()[0].get('loc')}: {exc.errors()[0].get('msg')}") from exc
    except ValueError as exc:
        raise ValueError(f"not an OCPI 2.2.1 Tariff: {exc}") from exc


def store_tariff_json(db: Session, value: bytes | str) -> Tariff:
    """Store one tariff version (idempotent by country, party, id and last_updated)."""
    tariff = parse_tariff(value)
    repo.store_tariff_version(
        db,
        country_code=tariff.country_code,
        party_id=tariff.party_id,
        id=tariff.id,
        currency=tariff.currency,
        last_updated=tariff.last_updated,
        valid_from=tariff.start_date_time,
        valid_to=tariff.end_date_time,
        tariff_json=tariff.model_dump_json(),
    )
    return tariff


async def publish_tariff(bootstrap: str, topic: str, value: bytes | str) -> Tariff:
    """Produce one tariff version on the ``tariffs`` topic, keyed by tariff id."""
    from aiokafka import AIOKafkaProducer

    tariff = parse_tariff(value)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=tariff.model_dump_json().encode(), key=tariff.id.encode())
    finally:
        await producer.stop()
    return tariff
