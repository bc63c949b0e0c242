"""``chargeledger demo``: the main job end to end, on simulated traffic.

1. makes sure a Kafka broker answers (starts the local one from ``infra/kafka.sh`` if not);
2. creates this run's topics (a fresh prefix per run, ``demo-<run>-``, so runs never mix);
3. brings the database to the latest schema (SQLite ``chargeledger.db`` by default, or
   ``CHARGELEDGER_DATABASE_URL``);
4. publishes the sample tariff (streams/samples/tariff.json) on the ``tariffs`` topic;
5. simulates a few hundred sessions from OCPP 1.6 and 2.0.1 charge points (plus a few
   retransmitted and a few malformed messages) onto ``ocpp-events``;
6. runs the worker until every simulated session has its CDR, showing progress;
7. prints a summary (sessions, CDRs, kWh, revenue per currency, dead-lettered inputs) and
   where to look next.

Each run uses its own charge point ids (``D<run>-CP0001`` ...) and consumer group, so the
database accumulates runs side by side and the summary counts this run only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select

#: Minor units per currency (ISO 4217) for the revenue report; 2 when not listed.
MINOR_UNITS = {"JPY": 0, "KRW": 0, "HUF": 2, "BHD": 3, "KWD": 3}


def _minor(amount: Decimal, currency: str) -> Decimal:
    """Round a currency total to the currency's minor unit, ROUND_HALF_UP (our report rule)."""
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2)), rounding=ROUND_HALF_UP)


def _progress(line: str) -> None:
    print(f"\r  {line}\033[K", end="", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargeledger demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=300, help="sessions to simulate (default 300)")
    parser.add_argument("--charge-points", type=int, default=40, help="charge points (default 40)")
    parser.add_argument("--seed", type=int, help="random seed (default: one per run)")
    parser.add_argument("--malformed", type=int, default=6, help="malformed inputs to add (default 6)")
    parser.add_argument("--duplicates", type=int, default=6, help="retransmitted messages (default 6)")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds (default 300)")
    args = parser.parse_args(argv)

    from chargeledger.settings import get_settings

    t_start = time.perf_counter()
    run = datetime.now(timezone.utc).strftime("%y%m%d%H%M%S")
    base = get_settings()
    prefix = f"{base.topic_prefix}demo-{run}-"
    settings = base.model_copy(update={"topic_prefix": prefix, "app_id": f"{prefix}{base.app_id}"})
    seed = args.seed if args.seed is not None else int(run)
    cp_prefix = f"D{run}-CP"

    print(f"chargeledger demo, run {run}")
    print(f"[1/6] Kafka at {settings.kafka_bootstrap}")
    from chargeledger.services import ensure_kafka

    ensure_kafka(settings.kafka_bootstrap)

    from streams.topics import ensure_topics

    print(f"[2/6] topics with prefix {prefix!r}")
    asyncio.run(ensure_topics(settings))

    from storage.db import make_engine, make_sessionmaker, upgrade

    db_label = settings.database_url.split("@")[-1]
    print(f"[3/6] database {db_label}: migrating to the latest schema")
    upgrade(settings.database_url)
    sessions_factory = make_sessionmaker(make_engine(settings.database_url))

    from streams.tariffs import publish_tariff, sample_tariff_json

    tariff = asyncio.run(publish_tariff(settings.kafka_bootstrap, settings.topic(settings.topic_tariffs),
                                        sample_tariff_json()))
    settings = settings.model_copy(update={"default_tariff_id": tariff.id})
    print(f"[4/6] tariff {tariff.country_code}*{tariff.party_id}*{tariff.id} ({tariff.currency}, "
          f"version {tariff.last_updated:%Y-%m-%d}) on {settings.topic(settings.topic_tariffs)}")

    from streams.simulate import produce, simulate_traffic

    traffic = simulate_traffic(args.charge_points, args.sessions, seed=seed, malformed=args.malformed,
                               duplicates=args.duplicates, charge_point_prefix=cp_prefix)
    print(f"[5/6] simulating {len(traffic.sessions)} sessions on {args.charge_points} charge points "
          f"(OCPP 1.6 and 2.0.1): {len(traffic.records)} records incl. {traffic.count('duplicate')} "
          f"retransmissions and {traffic.count('malformed')} malformed")
    asyncio.run(produce(traffic.records, settings.kafka_bootstrap, settings.topic(settings.topic_events),
                        progress=True))

    from storage import repositories as repo
    from storage.models import CdrRecord
    from streams.worker import Worker

    expected_sessions = len(traffic.sessions)
    expected_events = len(traffic.records)
    print(f"[6/6] worker (group {settings.app_id}) until every session has its CDR")
    like = f"{cp_prefix}%"

    def cdr_count(db) -> int:
        return int(db.scalar(select(func.count()).select_from(CdrRecord).where(
            CdrRecord.session_key.like(like), CdrRecord.credit.is_(False))) or 0)

    state = {"done": False, "cdrs": 0, "events": 0}
    deadline = time.monotonic() + args.timeout

    def check() -> bool:
        with sessions_factory() as db:
            state["cdrs"] = cdr_count(db)
            state["events"] = repo.read_counters(db, settings.app_id)["events_in"]
        _progress(f"events {state['events']}/{expected_events}   CDRs {state['cdrs']}/{expected_sessions}   "
                  f"{time.perf_counter() - t_start:5.1f}s")
        state["done"] = state["events"] >= expected_events and state["cdrs"] >= expected_sessions
        return state["done"] or time.monotonic() > deadline

    worker = Worker(settings, sessions=sessions_factory)
    asyncio.run(worker.run(until=check))
    print(file=sys.stderr)

    with sessions_factory() as db:
        rows = db.execute(
            select(CdrRecord.currency, func.count(), func.sum(CdrRecord.total_energy),
                   func.sum(CdrRecord.total_cost_excl_vat), func.sum(CdrRecord.total_cost_incl_vat))
            .where(CdrRecord.session_key.like(like)).group_by(CdrRecord.currency)
        ).all()
        counters = repo.read_counters(db, settings.app_id)
        from storage.models import DeadLetterRecord

        reasons = Counter(
            r.split(":")[0] if r.startswith("not an event envelope") else r
            for r in db.scalars(select(DeadLetterRecord.reason).where(
                DeadLetterRecord.source_topic == settings.topic(settings.topic_events)))
        )
        cdrs = cdr_count(db)

    elapsed = time.perf_counter() - t_start
    print()
    print("Summary")
    print(f"  sessions simulated     {expected_sessions}")
    print(f"  CDRs issued            {cdrs}" + ("" if cdrs >= expected_sessions else "   (INCOMPLETE: timed out)"))
    energy = sum((Decimal(r[2] or 0) for r in rows), Decimal(0))
    print(f"  energy                 {energy.quantize(Decimal('0.001'), rounding=ROUND_HALF_UP)} kWh")
    for currency, count, _, excl, incl in rows:
        excl_s = _minor(Decimal(excl or 0), currency)
        incl_s = _minor(Decimal(incl or 0), currency)
        print(f"  revenue {currency}            {excl_s} excl. VAT, {incl_s} incl. VAT ({count} CDRs)")
    print(f"  inputs                 {counters['events_in']} = {counters['applied']} applied + "
          f"{counters['dead_lettered']} dead-lettered + {counters['duplicates']} duplicates")
    for reason, n in reasons.most_common():
        print(f"    dead-lettered {n}x: {reason}")
    print(f"  wall time              {elapsed:.1f}s")
    print()
    print("Where to look next")
    cli = _cli_path()
    db_env = f"CHARGELEDGER_DATABASE_URL={settings.database_url}"
    base = f"http://{settings.api_host}:{settings.api_port}"
    print(f"  API key: {db_env} {cli} api --create-api-key me --role read   (prints a key, once)")
    print(f"  API:     {db_env} {cli} api   then {base}/health, {base}/docs,")
    print(f"           curl -H 'X-API-Key: <key>' '{base}/cdrs?limit=5'  and  "
          f"'{base}/reports/revenue?period=day&tz=Europe/Amsterdam'")
    print(f"  topics:  {settings.topic(settings.topic_events)} (events), {settings.topic(settings.topic_cdrs)} "
          f"(CDRs), {settings.topic(settings.topic_events_dlq)} (dead letters), "
          f"{settings.topic(settings.topic_tariffs)} (tariffs)")
    print(f"  replay:  {db_env} CHARGELEDGER_TOPIC_PREFIX={prefix} {cli} replay")
    ok = state["done"] and counters["events_in"] == counters["applied"] + counters["dead_lettered"] + counters["duplicates"]
    return 0 if ok else 1


def _cli_path() -> str:
    """How to call the ``chargeledger`` command from here: the script beside this Python
    (``.venv/bin/chargeledger`` after ``infra/demo.sh``) when it is not on PATH."""
    import os
    import shutil
    import sys

    beside = os.path.join(os.path.dirname(sys.executable), "chargeledger")
    if shutil.which("chargeledger") == beside or not os.path.exists(beside):
        return "chargeledger"
    try:
        return os.path.relpath(beside)
    except ValueError:  # pragma: no cover - another drive on Windows
        return beside
