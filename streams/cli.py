"""``chargeledger worker``: run the stream processor until interrupted (or until idle)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time

from chargeledger.settings import get_settings


def worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargeledger worker", description=__doc__)
    parser.add_argument("--no-migrate", action="store_true", help="do not bring the database schema up to date first")
    parser.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                        help="stop after this many seconds without new records (batch mode)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    from chargeledger.runtime import limit_repeated_logs

    limit_repeated_logs()
    settings = get_settings()
    if not args.no_migrate:
        from storage.db import upgrade

        upgrade(settings.database_url)
    from streams.topics import ensure_topics
    from streams.worker import Worker

    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port)

    from chargeledger.runtime import tune_gc_for_streaming

    tune_gc_for_streaming()

    async def run() -> None:
        await ensure_topics(settings)
        worker = Worker(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        last_seen = [time.monotonic(), 0]

        def idle() -> bool:
            if worker.stats.records != last_seen[1]:
                last_seen[:] = [time.monotonic(), worker.stats.records]
            return args.exit_when_idle is not None and time.monotonic() - last_seen[0] > args.exit_when_idle

        stats = await worker.run(until=idle, stop=stop)
        print(f"worker stopped: {stats.records} records in {stats.batches} batches, "
              f"{stats.cdrs_published} CDRs and {stats.dead_letters_published} dead letters published")

    asyncio.run(run())
    return 0
