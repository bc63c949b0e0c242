"""``chargeledger gateway``: run the OCPP-J gateway, and manage the charge points it admits.

    chargeledger gateway [--host H] [--port P]             serve /ocpp/{charge_point_id}
    chargeledger gateway add-charge-point ID [--password P] register (or re-key) a charger
    chargeledger gateway disable-charge-point ID            refuse it from now on
    chargeledger gateway list-charge-points

Charge points live in the database (``CHARGELEDGER_DATABASE_URL``); the schema is brought
up to date (``alembic upgrade heads``) before use. Without ``--password`` a random one is
generated and printed once: only its scrypt hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import signal
import sys

from chargeledger.settings import Settings, get_settings

MANAGE_COMMANDS = ("add-charge-point", "disable-charge-point", "list-charge-points")


def _registry(settings: Settings):
    from gateway.registry import ChargePointRegistry
    from storage.db import make_engine, upgrade

    upgrade(settings.database_url)
    return ChargePointRegistry(make_engine(settings.database_url))


def _manage(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="chargeledger gateway", description="manage charge points")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-charge-point", help="register a charge point (or set a new password)")
    add.add_argument("charge_point_id")
    add.add_argument("--password", help="its Basic auth password (default: generate and print one)")
    add.add_argument("--scrypt-n", type=int, default=None, help=argparse.SUPPRESS)
    dis = sub.add_parser("disable-charge-point", help="refuse a charge point's connections")
    dis.add_argument("charge_point_id")
    sub.add_parser("list-charge-points", help="list registered charge points")
    args = parser.parse_args(argv)
    registry = _registry(settings)
    if args.command == "add-charge-point":
        from gateway.auth import DEFAULT_N
        from gateway.server import MAX_CHARGE_POINT_ID_LENGTH

        cp_id = args.charge_point_id
        if not cp_id or "/" in cp_id or len(cp_id) > MAX_CHARGE_POINT_ID_LENGTH:
            print(f"chargeledger gateway: invalid charge point id {cp_id!r}", file=sys.stderr)
            return 2
        password = args.password or secrets.token_urlsafe(24)
        new = registry.register(cp_id, password, scrypt_n=args.scrypt_n or DEFAULT_N)
        print(f"{'registered' if new else 'updated'} {cp_id}")
        if not args.password:
            print(f"password: {password}")
        return 0
    if args.command == "disable-charge-point":
        if not registry.set_enabled(args.charge_point_id, False):
            print(f"chargeledger gateway: unknown charge point {args.charge_point_id!r}", file=sys.stderr)
            return 1
        print(f"disabled {args.charge_point_id}")
        return 0
    for cp_id, enabled in registry.list_ids():
        print(f"{cp_id}\t{'enabled' if enabled else 'disabled'}")
    return 0


async def serve_forever(settings: Settings, host: str, port: int, stats_interval: float = 0.0,
                        ready: "asyncio.Future[int] | None" = None) -> None:
    """Run the gateway until SIGINT/SIGTERM (or cancellation)."""
    from gateway.event_log import KafkaEventLog, ensure_topics
    from gateway.registry import ChargePointRegistry, TransactionIdAllocator
    from gateway.server import Gateway
    from storage.db import make_engine, upgrade

    await asyncio.to_thread(upgrade, settings.database_url)
    engine = make_engine(settings.database_url)
    registry = ChargePointRegistry(engine)
    allocator = TransactionIdAllocator(engine, settings.gateway_transaction_id_block)
    event_log = KafkaEventLog(
        settings.kafka_bootstrap,
        settings.topic(settings.topic_events),
        settings.topic(settings.topic_events_dlq),
        timeout_s=settings.gateway_publish_timeout_s,
    )
    await ensure_topics(settings.kafka_bootstrap, {event_log.events_topic: settings.event_partitions,
                                                   event_log.dlq_topic: 1})
    gateway = Gateway(event_log, registry.password_hash, allocator.next_id,
                      heartbeat_interval_s=settings.gateway_heartbeat_interval_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    async with event_log:
        async with gateway.serve(host, port) as server:
            bound = server.sockets[0].getsockname()[1]
            logging.getLogger("gateway").info(
                "OCPP-J gateway on ws://%s:%s/ocpp/{charge_point_id} -> %s", host, bound, event_log.events_topic
            )
            print(f"gateway listening on ws://{host}:{bound}/ocpp/{{charge_point_id}}", flush=True)
            if ready is not None:
                ready.set_result(bound)
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), stats_interval or None)
                except asyncio.TimeoutError:
                    print(json.dumps(gateway.stats.as_dict()), flush=True)
            print(json.dumps(gateway.stats.as_dict()), flush=True)


def _raise_open_files_limit() -> None:
    """One connection is one file descriptor: allow as many as the hard limit permits."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        if soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX, or not allowed
        pass


def main(argv: list[str]) -> int:
    settings = get_settings()
    if argv and argv[0] in MANAGE_COMMANDS:
        return _manage(argv, settings)
    parser = argparse.ArgumentParser(
        prog="chargeledger gateway",
        description="OCPP-J gateway: chargers connect to ws://HOST:PORT/ocpp/{charge_point_id} "
        "(subprotocols ocpp1.6, ocpp2.0.1, ocpp2.1; HTTP Basic auth). Every accepted message is "
        "on ocpp-events before the charger gets its answer. Manage chargers with: "
        + ", ".join(MANAGE_COMMANDS),
    )
    parser.add_argument("--host", default=settings.gateway_host)
    parser.add_argument("--port", type=int, default=settings.gateway_port)
    parser.add_argument("--stats-interval", type=float, default=0.0,
                        help="print counters as JSON every N seconds (0: only at exit)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--no-uvloop", action="store_true", help="use the standard asyncio event loop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    _raise_open_files_limit()
    try:
        with asyncio.Runner(loop_factory=None if args.no_uvloop else _uvloop_factory()) as runner:
            runner.run(serve_forever(settings, args.host, args.port, args.stats_interval))
    except KeyboardInterrupt:
        pass
    return 0


def _uvloop_factory():
    """uvloop's event loop when installed (a dependency on POSIX): faster socket I/O for
    thousands of connections; the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return None
    return uvloop.new_event_loop
