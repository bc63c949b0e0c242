"""Benchmark of the OCPP-J gateway: connections held by one gateway process, messages/s accepted.

    PYTHONPATH=. python benchmarks/gateway.py --connections 10000 --rate 2000 --duration 30

What it does (loopback only, against the real local Kafka broker):

1. registers N charge points in a fresh SQLite database (scrypt cost ``--scrypt-n``, default
   2**10 so that registering 10,000 takes seconds; production hashes cost 2**14);
2. starts ONE ``chargeledger gateway`` process on a free port with a fresh topic prefix;
3. starts ``--clients`` client processes that open the N WebSocket connections (OCPP 1.6,
   HTTP Basic auth) and send a BootNotification on each: connection figures;
4. all connections stay open; each sends OCPP 1.6 MeterValues (one energy register sample,
   validated, enveloped, acknowledged by Kafka with acks=all before the answer) on its own
   timer so that together they offer ``--rate`` messages/s for ``--duration`` seconds
   (``--saturate``: every connection sends its next message as soon as it got the answer);
5. prints connections held, handshakes/s, messages/s accepted (CALLRESULTs received),
   answer latency percentiles, the gateway's CPU share and memory.

Target (issue 7): 10,000 connections and 2,000 messages/s on one gateway process.
The open-files limit is raised to the hard limit (one socket = one file descriptor) in
this process, the clients and the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-0123456789"


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- client process ---------------------------------------------------------------------------


async def _client_main(ids: list[str], port: int, rate_per_conn: float, duration: float, saturate: bool,
                       connect_concurrency: int, ready, go, out) -> None:
    import websockets

    from gateway.auth import basic_authorization_header

    connections: dict[str, object] = {}
    connect_errors: list[str] = []
    limit = asyncio.Semaphore(connect_concurrency)
    t0 = time.perf_counter()

    async def open_one(cp_id: str) -> None:
        async with limit:
            try:
                ws = await websockets.connect(
                    f"ws://127.0.0.1:{port}/ocpp/{cp_id}", subprotocols=["ocpp1.6"], compression=None,
                    additional_headers={"Authorization": basic_authorization_header(cp_id, PASSWORD)},
                    open_timeout=120, ping_interval=None, max_queue=4)
                await ws.send(json.dumps([2, "boot", "BootNotification",
                                          {"chargePointVendor": "Bench", "chargePointModel": "B1"}]))
                answer = json.loads(await ws.recv())
                if answer[0] != 3:
                    raise RuntimeError(f"BootNotification refused: {answer}")
                connections[cp_id] = ws
            except Exception as exc:  # noqa: BLE001
                connect_errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(open_one(cp) for cp in ids))
    connect_s = time.perf_counter() - t0
    ready.put({"connected": len(connections), "errors": connect_errors[:5], "n_errors": len(connect_errors),
               "connect_s": connect_s})
    while not go.is_set():
        await asyncio.sleep(0.05)

    latencies: list[float] = []
    counts = {"accepted": 0, "errors": 0, "closed": 0}
    end = time.perf_counter() + duration
    interval = 1.0 / rate_per_conn if rate_per_conn > 0 else 0.0

    async def run(cp_id: str, ws) -> None:
        n = 0
        next_at = time.perf_counter() + (0 if saturate else random.random() * interval)
        try:
            while True:
                if not saturate:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += interval
                if time.perf_counter() >= end:
                    return
                n += 1
                mid = f"mv{n}"
                frame = json.dumps([2, mid, "MeterValues", {
                    "connectorId": 1, "transactionId": 1,
                    "meterValue": [{"timestamp": _now(), "sampledValue": [
                        {"value": str(1000 + n), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]}])
                sent = time.perf_counter()
                await ws.send(frame)
                answer = json.loads(await ws.recv())
                if time.perf_counter() <= end + 5:
                    if answer[0] == 3:
                        counts["accepted"] += 1
                        latencies.append(time.perf_counter() - sent)
                    else:
                        counts["errors"] += 1
        except Exception:  # noqa: BLE001
            counts["closed"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(run(cp, ws) for cp, ws in connections.items()))
    elapsed = time.perf_counter() - started
    sample = random.sample(latencies, min(len(latencies), 20000))
    out.put({**counts, "elapsed": elapsed, "latencies": sample})
    await asyncio.gather(*(ws.close() for ws in connections.values()), return_exceptions=True)


def client_process(ids, port, rate_per_conn, duration, saturate, connect_concurrency, ready, go, out) -> None:
    raise_open_files_limit()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_client_main(ids, port, rate_per_conn, duration, saturate, connect_concurrency, ready, go, out))


# -- gateway process ----------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def broker_pid(bootstrap: str) -> int | None:
    """The pid of the local process listening on the broker's port (None if not ours to see)."""
    port = bootstrap.split(",")[0].rsplit(":", 1)[1]
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for part in out.split("pid=")[1:]:
        return int(part.split(",")[0])
    return None


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--rate", type=float, default=2000, help="offered messages/s in total (default 2000)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of message traffic (default 30)")
    parser.add_argument("--saturate", action="store_true", help="closed loop: send again as soon as answered")
    parser.add_argument("--scrypt-n", type=int, default=2**10)
    parser.add_argument("--connect-concurrency", type=int, default=100, help="handshakes in flight per client")
    parser.add_argument("--kafka-bootstrap", default=os.environ.get("CHARGELEDGER_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--keep-topics", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="run the gateway under cProfile, write the stats to FILE")
    args = parser.parse_args()

    nofile = raise_open_files_limit()
    print(f"open files limit: {nofile}; cores: {os.cpu_count()}; python {sys.version.split()[0]}")
    if nofile < args.connections + 1000:
        print(f"warning: the open-files limit {nofile} caps the gateway below {args.connections} connections")

    from gateway.registry import ChargePointRegistry
    from storage.db import make_engine, upgrade

    tmp = tempfile.mkdtemp(prefix="gwbench-")
    db_url = f"sqlite:///{tmp}/gateway.db"
    upgrade(db_url)
    ids = [f"BENCH-{i:05d}" for i in range(args.connections)]
    t0 = time.perf_counter()
    ChargePointRegistry(make_engine(db_url)).register_many({cp: PASSWORD for cp in ids}, scrypt_n=args.scrypt_n)
    print(f"registered {len(ids)} charge points (scrypt n={args.scrypt_n}) in {time.perf_counter() - t0:.1f}s")

    prefix = f"bench-gw-{int(time.time())}-"
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), CHARGELEDGER_DATABASE_URL=db_url, CHARGELEDGER_TOPIC_PREFIX=prefix,
               CHARGELEDGER_KAFKA_BOOTSTRAP=args.kafka_bootstrap, CHARGELEDGER_GATEWAY_PORT=str(port))
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    gateway = subprocess.Popen([sys.executable, *profile, "-m", "chargeledger.cli", "gateway", "--log-level", "WARNING"],
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = gateway.stdout.readline()
        if "listening" not in line:
            print(f"gateway did not start: {line!r}")
            return 1
        print(f"gateway pid {gateway.pid}: {line.strip()} (topics {prefix}*)")
        rss0 = proc_rss_mb(gateway.pid)

        ready, out, go = mp.Queue(), mp.Queue(), mp.Event()
        slices = [ids[i::args.clients] for i in range(args.clients)]
        rate_per_conn = args.rate / args.connections
        workers = [mp.Process(target=client_process, args=(s, port, rate_per_conn, args.duration, args.saturate,
                                                           args.connect_concurrency, ready, go, out))
                   for s in slices]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        reports = [ready.get(timeout=900) for _ in workers]
        connect_s = time.perf_counter() - t0
        connected = sum(r["connected"] for r in reports)
        n_errors = sum(r["n_errors"] for r in reports)
        time.sleep(1)
        rss1 = proc_rss_mb(gateway.pid)
        print(f"connections held: {connected}/{args.connections} (errors {n_errors}"
              f"{': ' + '; '.join(reports[0]['errors'][:2]) if n_errors else ''})")
        print(f"connect + BootNotification: {connect_s:.1f}s = {connected / connect_s:.0f} handshakes/s")
        print(f"gateway memory: {rss0:.0f} MB idle -> {rss1:.0f} MB with {connected} connections "
              f"({(rss1 - rss0) * 1024 / max(connected, 1):.1f} KB per connection)")

        bpid = broker_pid(args.kafka_bootstrap)
        cpu0, w0 = proc_cpu_seconds(gateway.pid), time.perf_counter()
        ccpu0 = sum(proc_cpu_seconds(w.pid) for w in workers)
        bcpu0, host0 = (proc_cpu_seconds(bpid) if bpid else 0.0), host_busy_seconds()
        go.set()
        time.sleep(args.duration)
        cpu1, w1 = proc_cpu_seconds(gateway.pid), time.perf_counter()
        ccpu1 = sum(proc_cpu_seconds(w.pid) for w in workers)
        bcpu1, host1 = (proc_cpu_seconds(bpid) if bpid else 0.0), host_busy_seconds()
        load = os.getloadavg()[0]
        results = [out.get(timeout=600) for _ in workers]
        for w in workers:
            w.join(timeout=60)
        accepted = sum(r["accepted"] for r in results)
        errors = sum(r["errors"] for r in results)
        closed = sum(r["closed"] for r in results)
        lat = sorted(x for r in results for x in r["latencies"])
        mode = "saturating (closed loop)" if args.saturate else f"offered {args.rate:.0f}/s"
        print(f"messages ({mode}, {args.duration:.0f}s, MeterValues over {connected} connections): "
              f"{accepted} accepted = {accepted / args.duration:.0f} messages/s; CALLERRORs {errors}; "
              f"connections lost {closed}")
        if lat:
            q = statistics.quantiles(lat, n=100)
            print(f"answer latency (send -> CALLRESULT, Kafka ack included): p50 {q[49] * 1000:.1f} ms, "
                  f"p95 {q[94] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms")
        wall = w1 - w0
        gw, cl, br, host = ((cpu1 - cpu0) / wall, (ccpu1 - ccpu0) / wall, (bcpu1 - bcpu0) / wall,
                            (host1 - host0) / wall)
        print(f"CPU during the message phase (100% = one core): gateway {gw:.0%}, {args.clients} client processes "
              f"{cl:.0%}, Kafka broker {br:.0%}{'' if bpid else ' (not visible)'}, everything else "
              f"{max(host - gw - cl - br, 0):.0%}; host busy {host:.0%} of {os.cpu_count() * 100}%, "
              f"load average {load:.1f}")
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            tail = gateway.communicate(timeout=60)[0].strip().splitlines()
            if tail:
                print(f"gateway counters: {tail[-1]}")
        except subprocess.TimeoutExpired:
            gateway.kill()
        if not args.keep_topics:
            asyncio.run(_delete_topics(args.kafka_bootstrap, prefix))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


if __name__ == "__main__":
    raise SystemExit(main())
