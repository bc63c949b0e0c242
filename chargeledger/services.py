"""``chargeledger services start|stop|status [kafka|postgres|all]``: the local services.

A thin shell over ``infra/kafka.sh`` and ``infra/postgres.sh`` (found next to the package
in the source tree), so the scripts stay the one place that knows how to run them. The
demo calls :func:`ensure_kafka` before it produces anything.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parents[1] / "infra"
SCRIPTS = {"kafka": "kafka.sh", "postgres": "postgres.sh"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class ServiceError(RuntimeError):
    """A local service could not be started or reached."""


def _script(service: str) -> Path:
    path = INFRA_DIR / SCRIPTS[service]
    if not path.is_file():
        raise ServiceError(
            f"{path} not found: the local services are started from a source checkout of chargeledger "
            "(pip install -e .); otherwise point CHARGELEDGER_KAFKA_BOOTSTRAP / CHARGELEDGER_DATABASE_URL "
            "at running services"
        )
    return path


def run_script(service: str, action: str, env: dict[str, str] | None = None) -> int:
    """Runs ``bash infra/<service>.sh <action>``, its output going to ours; returns its exit code."""
    return subprocess.call(["bash", str(_script(service)), action], env=env, stdin=subprocess.DEVNULL)


def _split_servers(bootstrap: str) -> list[tuple[str, int]]:
    servers = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        servers.append((host, int(port)))
    return servers


def kafka_reachable(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when one of the bootstrap servers accepts a TCP connection."""
    for host, port in _split_servers(bootstrap):
        try:
            with socket.create_connection((host.strip("[]"), port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def ensure_kafka(bootstrap: str | None = None) -> None:
    """Makes sure a broker answers at ``bootstrap`` (default: the settings' bootstrap).

    A broker that already answers is used as it is (a cluster of your own included). A
    local address with nothing on it gets the broker of ``infra/kafka.sh start`` on that
    port. A remote address that does not answer is an error: we do not start brokers elsewhere.
    """
    if bootstrap is None:
        from chargeledger.settings import get_settings

        bootstrap = get_settings().kafka_bootstrap
    if kafka_reachable(bootstrap):
        return
    host, port = _split_servers(bootstrap)[0]
    if host not in _LOOPBACK:
        raise ServiceError(f"Kafka at {bootstrap} is unreachable (not a local address, so not started here)")
    env = dict(os.environ, CHARGELEDGER_KAFKA_PORT=str(port))
    if run_script("kafka", "start", env=env) != 0:
        raise ServiceError("infra/kafka.sh start failed (its output above says why)")


def ensure_postgres() -> str:
    """Starts the local PostgreSQL (``infra/postgres.sh start``); returns its chargeledger URL."""
    if run_script("postgres", "start") != 0:
        raise ServiceError("infra/postgres.sh start failed (its output above says why)")
    return subprocess.run(
        ["bash", str(_script("postgres")), "url"], check=True, capture_output=True, text=True
    ).stdout.strip()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="chargeledger services",
        description="Start, stop or inspect the local Kafka broker (127.0.0.1:9092) and PostgreSQL (127.0.0.1:5432).",
    )
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("service", nargs="?", default="all", choices=["kafka", "postgres", "all"])
    args = parser.parse_args(argv)
    services = ["postgres", "kafka"] if args.service == "all" else [args.service]
    try:
        codes = [run_script(service, args.action) for service in services]
    except ServiceError as exc:
        print(f"chargeledger services: {exc}")
        return 2
    return max(codes)
