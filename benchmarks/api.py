"""Benchmark: the API on 1,000,000 CDRs in PostgreSQL, 50 concurrent clients on loopback.

Measures p50 / p99 latency of
  * the monthly revenue report  GET /reports/revenue?period=month&tz=Europe/Amsterdam
    (first, uncached computation reported separately; then the steady state, where the
    report is served from the cache keyed by the CDR table's version),
  * an OCPI CDR page            GET /ocpi/cpo/2.2.1/cdrs?limit=50&offset=<random 0..5000>
    for a partner who is the eMSP of 1/10 of the CDRs (X-Total-Count counted every time).
Target (issue 6): p99 under 100 ms.

The CDRs are generated (12 months of 2025, 10 eMSPs, 200 locations x 4 EVSEs, 5 tariffs,
EUR and CHF, 1% credit CDRs), each with a complete OCPI CDR JSON, and loaded with COPY
into a fresh database; the API runs as ``chargeledger api`` in its own process (uvicorn,
``--workers`` processes); the load generator is a minimal keep-alive HTTP/1.1 client on
asyncio so that it takes little of the 2 cores from the server.

Run (PostgreSQL up, e.g. ``bash infra/postgres.sh start``):
    PYTHONPATH=$PWD /work/venv/bin/python benchmarks/api.py [--cdrs 1000000] [--clients 50]
        [--requests 3000] [--workers 2] [--rows 200000] [--keep-db] [--url URL] [--rate 100 --rate 200]
The closed-loop figures are the target's; ``--rate`` adds open-loop runs at a fixed offered load.
The admin connection comes from CHARGELEDGER_TEST_DATABASE_URL (default: the local cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_ADMIN_URL = "postgresql+psycopg://chargeledger:chargeledger@127.0.0.1:5432/chargeledger"
EMSPS = [("DE", f"E{i:02d}") for i in range(10)]
COLUMNS = (
    "country_code", "party_id", "id", "start_date_time", "end_date_time", "currency", "total_cost_excl_vat",
    "total_cost_incl_vat", "total_energy", "total_time", "total_parking_time", "credit", "credit_reference_id",
    "emsp_country_code", "emsp_party_id", "location_id", "evse_uid", "tariff_id", "tariff_version",
    "last_updated", "session_key", "cdr_json", "content_hash", "published",
)


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_rows(n: int, seed: int = 7):
    """Rows in COPY text format (tab separated), with the CDR JSON as it would be published."""
    rng = random.Random(seed)
    base = datetime(2025, 1, 1, tzinfo=timezone.utc)
    year_s = 365 * 24 * 3600
    for i in range(n):
        start = base + timedelta(seconds=int(i * year_s / n) + rng.randint(0, 600))
        minutes = rng.randint(10, 300)
        end = start + timedelta(minutes=minutes)
        energy_wh = rng.randint(1_000, 80_000)
        energy = f"{energy_wh / 1000:.3f}"
        currency = "CHF" if i % 10 == 9 else "EUR"
        price = 35 if currency == "EUR" else 42  # cents per kWh
        excl_e4 = energy_wh * price // 10 * 1  # 1e-4 units: Wh * cents/kWh / 10
        credit = i % 100 == 99
        if credit:
            excl_e4 = -excl_e4
        incl_e4 = excl_e4 * 121 // 100
        excl = f"{excl_e4 / 10000:.4f}"
        incl = f"{incl_e4 / 10000:.4f}"
        emsp = EMSPS[i % len(EMSPS)]
        loc = f"LOC{(i * 7) % 200:04d}"
        evse = f"{loc}-E{i % 4}"
        tariff = f"T{i % 5}"
        cdr_id = f"CDR{i:09d}" + ("-C" if credit else "")
        hours = f"{minutes / 60:.6f}"
        doc = (
            '{"country_code":"NL","party_id":"CLG","id":"%s","start_date_time":"%s","end_date_time":"%s",'
            '"cdr_token":{"country_code":"%s","party_id":"%s","uid":"TOK%07d","type":"RFID","contract_id":"%s%s%07d"},'
            '"auth_method":"WHITELIST","cdr_location":{"id":"%s","address":"Stationsplein 1","city":"Utrecht",'
            '"country":"NLD","coordinates":{"latitude":"52.090737","longitude":"5.121420"},"evse_uid":"%s",'
            '"evse_id":"NL*CLG*E%s","connector_id":"1","connector_standard":"IEC_62196_T2",'
            '"connector_format":"SOCKET","connector_power_type":"AC_3_PHASE"},"currency":"%s",'
            '"charging_periods":[{"start_date_time":"%s","dimensions":[{"type":"ENERGY","volume":%s}],'
            '"tariff_id":"%s"}],"total_cost":{"excl_vat":%s,"incl_vat":%s},"total_energy":%s,'
            '"total_time":%s,%s"last_updated":"%s"}'
        ) % (
            cdr_id, _ts(start), _ts(end), emsp[0], emsp[1], i % 10_000_000, emsp[0], emsp[1], i % 10_000_000,
            loc, evse, evse, currency, _ts(start), energy, tariff, excl, incl, energy, hours,
            ('"credit":true,"credit_reference_id":"CDR%09d",' % i) if credit else "", _ts(end),
        )
        yield "\t".join((
            "NL", "CLG", cdr_id, _ts(start), _ts(end), currency, excl, incl, energy, hours, "\\N",
            "t" if credit else "f", f"CDR{i:09d}" if credit else "\\N", emsp[0], emsp[1], loc, evse, tariff,
            "\\N", _ts(end), "\\N", doc.replace("\\", "\\\\"), "0" * 64, "t",
        )) + "\n"


def load(url: str, n: int) -> float:
    import psycopg

    started = time.perf_counter()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY cdrs ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                buffer = io.StringIO()
                for k, line in enumerate(generate_rows(n), 1):
                    buffer.write(line)
                    if k % 20_000 == 0:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                        print(f"\r  loaded {k:,} / {n:,} CDRs", end="", flush=True)
                copy.write(buffer.getvalue())
        conn.commit()
        conn.autocommit = True
        # Index-only scans need the visibility map; retry while another snapshot holds it back.
        for _ in range(10):
            conn.execute("VACUUM ANALYZE cdrs")
            visible, pages = conn.execute(
                "SELECT relallvisible, relpages FROM pg_class WHERE relname = 'cdrs'").fetchone()
            if pages and visible >= 0.95 * pages:
                break
            time.sleep(2)
        print(f"\n  visibility map: {visible:,} of {pages:,} pages all-visible", end="")
    print()
    return time.perf_counter() - started


class Http:
    """Minimal keep-alive HTTP/1.1 GET client (Content-Length bodies)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        # one read for the whole head (cheaper than a readline per header: the client's CPU
        # is taken from the same 2 cores as the server's)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = raw[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        head: dict[str, str] = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            head[k.strip().lower()] = v.strip()
        if "content-length" in head:
            body = await self.reader.readexactly(int(head["content-length"]))
        else:  # chunked
            body = b""
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        return status, head, body


async def run_load(port: int, clients: int, requests: int, make_request,
                   rate: float | None = None) -> tuple[list[float], int]:
    """``clients`` keep-alive connections. Closed loop (each sends its next request when the
    previous answer is in) unless ``rate`` (requests/s in total) paces them (open loop)."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    interval = clients / rate if rate else 0.0

    async def client(k: int) -> None:
        nonlocal remaining, errors
        http = Http("127.0.0.1", port)
        next_at = time.perf_counter() + (interval * k / clients)
        while remaining > 0:
            if interval:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at += interval
            remaining -= 1
            path, headers = make_request()
            t0 = time.perf_counter()
            status, _, _ = await http.get(path, headers)
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors += 1
        if http.writer:
            http.writer.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    return latencies, errors


def cpu_seconds(root_pid: int) -> float:
    """user+system CPU of a process and its children (the uvicorn workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [root_pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{root_pid}/task/{root_pid}/children").read_text().split()]
    except OSError:
        pass
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _run(coro):
    """asyncio.run on uvloop when it is installed (less client CPU per request)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro) if hasattr(uvloop, "run") else asyncio.run(coro)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cdrs", "--rows", type=int, default=1_000_000,
                    help="CDRs to load (the reported figure is at 1,000,000; e.g. --rows 200000 to iterate)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000, help="requests per scenario")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes of the API")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--access-log", action="store_true", help="keep uvicorn's access log on (off by default)")
    ap.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    ap.add_argument("--url", help="use this existing, loaded database instead of creating one")
    ap.add_argument("--rate", type=float, action="append", default=[],
                    help="also measure open loop at this total request rate (req/s); repeatable")
    args = ap.parse_args(argv)

    from storage.db import make_engine, make_sessionmaker, upgrade
    from api.security import create_api_key, hash_secret, new_token
    from storage.api_tables import PARTNER_REGISTERED, Partner, PartnerRole

    admin_url = make_url(os.environ.get("CHARGELEDGER_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)).set(
        drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = None
    if args.url:
        url = args.url
    else:
        name = f"clbench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
    server = None
    try:
        upgrade(url)
        if not args.url:
            print(f"loading {args.cdrs:,} CDRs into {name} ...")
            print(f"  load + VACUUM ANALYZE: {load(url, args.cdrs):.1f} s")
        if args.url:  # as after the load: earlier runs' inserts clear visibility-map bits
            with create_engine(make_url(url), isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text("VACUUM ANALYZE cdrs"))
        sm = make_sessionmaker(make_engine(url))
        token = new_token()
        now = datetime.now(timezone.utc)
        with sm() as db:
            key = create_api_key(db, f"bench-{uuid.uuid4().hex[:6]}", "read")
            p = Partner(name="bench eMSP", status=PARTNER_REGISTERED, token_hash=hash_secret(token), token_kind="C",
                        allow_plain_token=False, send_plain_token=False, created_at=now, updated_at=now)
            db.add(p)
            db.flush()
            if not db.execute(text("SELECT 1 FROM ocpi_partner_roles WHERE party_id = 'E03'")).first():
                db.add(PartnerRole(partner_id=p.id, role="EMSP", country_code="DE", party_id="E03"))
            else:
                db.execute(text("UPDATE ocpi_partner_roles SET partner_id = :p WHERE party_id = 'E03'"), {"p": p.id})
            db.commit()
            total = db.execute(text("SELECT count(*) FROM cdrs")).scalar_one()
            mine = db.execute(text("SELECT count(*) FROM cdrs WHERE emsp_party_id = 'E03'")).scalar_one()
        print(f"database: {total:,} CDRs, partner DE*E03 is the eMSP of {mine:,}")

        env = dict(os.environ, CHARGELEDGER_DATABASE_URL=url, CHARGELEDGER_CDR_PUSH_ENABLED="false",
                   PYTHONPATH=str(ROOT), CHARGELEDGER_REPORT_CACHE_TTL_S="600")
        server = subprocess.Popen(
            [sys.executable, "-m", "chargeledger.cli", "api", "--port", str(args.port), "--no-push",
             "--workers", str(args.workers)] + ([] if args.access_log else ["--no-access-log"]),
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{args.port}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("API server did not start")
            time.sleep(0.3)
        # every worker process answers once before measuring
        for _ in range(args.workers * 4):
            httpx.get(f"http://127.0.0.1:{args.port}/openapi.json", timeout=5)

        fin = {"X-API-Key": key}
        report_path = "/reports/revenue?period=month&tz=Europe/Amsterdam"
        t0 = time.perf_counter()
        first = httpx.get(f"http://127.0.0.1:{args.port}{report_path}", headers=fin, timeout=120)
        cold_ms = (time.perf_counter() - t0) * 1000
        rows = first.json()["rows"]
        print(f"\nmonthly revenue report, first (uncached) request: {cold_ms:.0f} ms, {len(rows)} rows "
              f"(status {first.status_code})")

        t0 = time.perf_counter()
        again = httpx.get(f"http://127.0.0.1:{args.port}{report_path}", headers=fin, timeout=120)
        print(f"same report again (cached): {(time.perf_counter() - t0) * 1000:.0f} ms (status {again.status_code})")

        ocpi = {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}
        rng = random.Random(1)
        scenarios = [
            ("monthly revenue report (cached)", lambda: (report_path, fin)),
            ("OCPI CDR page (limit 50)",
             lambda: (f"/ocpi/cpo/2.2.1/cdrs?limit=50&offset={rng.randint(0, 5000)}", ocpi)),
        ]
        print(f"\n{args.clients} concurrent clients, {args.requests} requests per scenario, "
              f"API with {args.workers} worker process(es)")
        print(f"{'scenario':40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>8} {'errors':>7} "
              f"{'server CPU ms/req':>18} {'client CPU ms/req':>18}")
        for label, make in scenarios:
            _run(run_load(args.port, args.clients, min(200, args.requests), make))  # warm-up
            t0, cpu0, own0 = time.perf_counter(), cpu_seconds(server.pid), time.process_time()
            latencies, errors = _run(run_load(args.port, args.clients, args.requests, make))
            wall, cpu = time.perf_counter() - t0, cpu_seconds(server.pid) - cpu0
            own = time.process_time() - own0
            print(f"{label:40} {pct(latencies, 50):8.1f} {pct(latencies, 99):8.1f} {max(latencies):8.1f} "
                  f"{len(latencies) / wall:8.0f} {errors:7d} {cpu * 1000 / len(latencies):18.2f} "
                  f"{own * 1000 / len(latencies):18.2f}")
        for rate in args.rate:
            print(f"\nopen loop: {args.clients} clients sending {rate:.0f} req/s in total")
            for label, make in scenarios:
                t0, cpu0, own0 = time.perf_counter(), cpu_seconds(server.pid), time.process_time()
                n = max(args.clients, int(rate * 10))  # about 10 seconds
                latencies, errors = _run(run_load(args.port, args.clients, n, make, rate=rate))
                wall, cpu = time.perf_counter() - t0, cpu_seconds(server.pid) - cpu0
                own = time.process_time() - own0
                print(f"{label:40} {pct(latencies, 50):8.1f} {pct(latencies, 99):8.1f} {max(latencies):8.1f} "
                      f"{len(latencies) / wall:8.0f} {errors:7d} {cpu * 1000 / len(latencies):18.2f} "
                      f"{own * 1000 / len(latencies):18.2f}")
        print(f"(load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")

        # New CDRs arrive: the cached report is brought up to date from the new rows only.
        import psycopg

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as conn:
            conn.execute(
                "INSERT INTO cdrs (country_code, party_id, id, start_date_time, end_date_time, currency, "
                "total_cost_excl_vat, total_cost_incl_vat, total_energy, credit, emsp_country_code, emsp_party_id, "
                "location_id, evse_uid, tariff_id, last_updated, cdr_json, content_hash, published) "
                f"SELECT 'NL', 'CLG', 'N{uuid.uuid4().hex[:8]}-' || g, now(), now(), 'EUR', 1.2345, 1.4937, 3.5, false, 'DE', 'E03', "
                "'LOC0001', 'LOC0001-E1', 'T1', now(), '{}', repeat('0', 64), true FROM generate_series(1, 1000) g")
        for label in ("after 1,000 new CDRs (incremental)", "and once more (cached)"):
            t0 = time.perf_counter()
            r = httpx.get(f"http://127.0.0.1:{args.port}{report_path}", headers=fin, timeout=120)
            print(f"monthly revenue report {label}: {(time.perf_counter() - t0) * 1000:.0f} ms (status {r.status_code})")
        return 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        if name and not args.keep_db:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        elif name:
            print(f"kept database {name}: --url {url}")
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
