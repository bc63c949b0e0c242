"""CPU per event of the worker's unit of work, offline (no Kafka): ``Processor.process_batch``
with ``streams.billing.Billing`` over simulated traffic on a fresh SQLite file (or
``--database-url``, an empty database).

    PYTHONPATH=. python benchmarks/worker_cpu.py [--sessions 1120] [--batch 500] [--gc tuned|default]
                                                 [--database-url URL] [--profile]

Every record is applied exactly as the worker applies a consumed batch (validation, session
assembly, pricing, CDRs, raw events, dead letters, counters, tracking; one transaction per
batch). Prints µs of CPU per event (``time.process_time``: other load on the machine
distorts it less than wall time). ``--gc tuned`` (default) sets the garbage collector as
``chargeledger worker`` does (:mod:`chargeledger.runtime`). This is the part of the
pipeline benchmark (``benchmarks/pipeline.py``) that our code owns; the rest is Kafka I/O.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chargeledger.runtime import tune_gc_for_streaming  # noqa: E402
from chargeledger.settings import get_settings  # noqa: E402
from storage.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from streams.billing import Billing  # noqa: E402
from streams.processor import InRecord, Processor  # noqa: E402
from streams.simulate import simulate_traffic  # noqa: E402
from streams.tariffs import sample_tariff_json, store_tariff_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1120)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--gc", choices=("tuned", "default"), default="tuned")
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    parser.add_argument("--database-url", help="an empty database (default: a fresh SQLite file)")
    args = parser.parse_args(argv)

    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='chargeledger-cpu-')) / 'cpu.db'}"
    upgrade(url)
    db = make_sessionmaker(make_engine(url))
    settings = get_settings().model_copy(update={"database_url": url})
    with db.begin() as s:
        store_tariff_json(s, sample_tariff_json())
    traffic = simulate_traffic(max(2, args.sessions // 8), args.sessions, seed=1, charge_point_prefix="W",
                               malformed=args.sessions // 50, duplicates=args.sessions // 30)
    records = [InRecord("ocpp-events", 0, i, r.key, r.value) for i, r in enumerate(traffic.records)]
    processor = Processor(db, Billing(settings), "bench")
    if args.gc == "tuned":
        tune_gc_for_streaming()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    t0 = time.process_time()
    w0 = time.perf_counter()
    for i in range(0, len(records), args.batch):
        processor.process_batch(records[i:i + args.batch])
    cpu = time.process_time() - t0
    wall = time.perf_counter() - w0
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    print(f"{len(records)} events in batches of {args.batch}, gc {args.gc}: "
          f"{cpu / len(records) * 1e6:.0f} µs CPU per event ({len(records) / cpu:.0f} events per CPU second), "
          f"{len(records) / wall:.0f} events/s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
