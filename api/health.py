"""``GET /health``: is the Kafka broker reachable, is the database reachable?

No authentication. 200 when both answer, 503 with the failing part's reason otherwise. The
broker check is a real metadata round trip (aiokafka bootstrap), not only a TCP connect.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.jsonutil import ExactJSONResponse

router = APIRouter(tags=["health"])


async def check_kafka(bootstrap: str, timeout_s: float) -> dict:
    """Fetch cluster metadata from ``bootstrap``; report brokers seen or the error."""
    from aiokafka import AIOKafkaClient

    started = time.perf_counter()
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(int(timeout_s * 1000), 100),
        connections_max_idle_ms=max(int(timeout_s * 1000), 1000),
        metadata_max_age_ms=60_000,
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=timeout_s)
        brokers = len(client.cluster.brokers())
        return {"status": "up", "bootstrap": bootstrap, "brokers": brokers,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    except asyncio.TimeoutError:
        return {"status": "down", "bootstrap": bootstrap, "error": f"no metadata within {timeout_s}s"}
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable", with its reason
        return {"status": "down", "bootstrap": bootstrap, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        try:
            await asyncio.wait_for(client.close(), timeout=timeout_s)
        except Exception:  # noqa: BLE001
            pass


def _ping_db(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def check_database(engine, timeout_s: float) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(run_in_threadpool(_ping_db, engine), timeout=timeout_s)
        return {"status": "up", "dialect": engine.dialect.name,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    except asyncio.TimeoutError:
        return {"status": "down", "dialect": engine.dialect.name, "error": f"no answer within {timeout_s}s"}
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "dialect": engine.dialect.name, "error": f"{type(exc).__name__}: {exc}"}


@router.get(
    "/health",
    summary="Broker and database reachability (no authentication)",
    responses={200: {"description": "Both reachable"}, 503: {"description": "Broker or database unreachable"}},
)
async def health(request: Request) -> ExactJSONResponse:
    settings = request.app.state.settings
    kafka, database = await asyncio.gather(
        check_kafka(settings.kafka_bootstrap, settings.health_timeout_s),
        check_database(request.app.state.engine, settings.health_timeout_s),
    )
    ok = kafka["status"] == "up" and database["status"] == "up"
    body = {"status": "up" if ok else "down", "checks": {"kafka": kafka, "database": database}}
    return ExactJSONResponse(body, status_code=200 if ok else 503)
