"""CDR documents: CPU µs per CDR to write a CDR as OCPI JSON, and to build one from a session.

    PYTHONPATH=$PWD /work/venv/bin/python benchmarks/cdr_json.py [--sessions 560] [--repeat 5]

Runs seeded simulated traffic (560 sessions on 70 charge points, some MeterValues /
TransactionEvent records delivered after their session's CDR, so credit CDRs are issued too)
once through ``streams.processor.Processor`` + ``streams.billing.Billing`` on a temporary
SQLite database, and keeps every CDR the pipeline wrote and every (session, tariff) it
priced. Then it times, in CPU time of this process (``time.process_time``, less sensitive
to other load on the machine), best of ``--repeat`` rounds:

* ``cdr_json``: ``streams.cdrs.cdr_json`` (``Cdr.model_dump_json``) over all those CDRs;
* ``reference``: the writer before the field-plan encoder (``tests/unit/ocpi_json_reference``)
  on the same CDRs, for the before/after figure in one run (and a byte-equality check);
* ``session_cdr``: ``streams.cdrs.session_cdr`` (price the session + build the CDR), and of
  that, ``price_session`` alone, so the CDR building cost is the difference;
* ``credit_for``: the credit CDR of each issued CDR.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chargeledger.settings import get_settings  # noqa: E402
from pricing import price_session  # noqa: E402
from storage.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
import streams.billing as billing  # noqa: E402
from streams.cdrs import cdr_json, credit_for, session_cdr  # noqa: E402
from streams.processor import InRecord, Processor  # noqa: E402
from streams.simulate import simulate_traffic  # noqa: E402
from streams.tariffs import sample_tariff_json, store_tariff_json  # noqa: E402


def collect(sessions: int):
    """Run the pipeline once; returns (CDRs written, [(session, tariff)] priced, settings)."""
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    db = make_sessionmaker(make_engine(url))
    settings = get_settings().model_copy(update={"database_url": url})
    with db.begin() as d:
        store_tariff_json(d, sample_tariff_json())
    recs = simulate_traffic(70, sessions, seed=7, charge_point_prefix="B").records
    late = [r for i, r in enumerate(recs) if i % 97 == 5 and b"MeterValues" in r.value][:25]
    late_ids = {id(r) for r in late}
    recs = [r for r in recs if id(r) not in late_ids] + late
    cdrs, priced = [], []
    real_json, real_session_cdr = billing.cdr_json, billing.session_cdr

    def spy_json(cdr):
        cdrs.append(cdr)
        return real_json(cdr)

    def spy_session_cdr(session, tariff, settings_):
        priced.append((session, tariff))
        return real_session_cdr(session, tariff, settings_)

    billing.cdr_json, billing.session_cdr = spy_json, spy_session_cdr
    try:
        proc = Processor(db, billing.Billing(settings), "bench")
        ins = [InRecord("ocpp-events", 0, i, r.key, r.value) for i, r in enumerate(recs)]
        for i in range(0, len(ins), 500):
            proc.process_batch(ins[i:i + 500])
    finally:
        billing.cdr_json, billing.session_cdr = real_json, real_session_cdr
    return cdrs, priced, settings


def best_us(fn, items, repeat: int) -> float:
    """Best-of-``repeat`` CPU µs per item of ``fn(item)`` over ``items``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for item in items:
            fn(item)
        best = min(best, time.process_time() - t0)
    return best / len(items) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/cdr_json.py")
    parser.add_argument("--sessions", type=int, default=560)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    cdrs, priced, settings = collect(args.sessions)
    credits = sum(1 for c in cdrs if c.credit)
    size = sum(len(cdr_json(c)) for c in cdrs) / len(cdrs)
    print(f"{len(cdrs)} CDRs written ({credits} credit CDRs), {len(priced)} sessions priced, "
          f"{size:.0f} bytes of JSON per CDR on average")

    figures = {"cdr_json": best_us(cdr_json, cdrs, args.repeat)}
    try:
        sys.path.insert(0, str(ROOT / "tests" / "unit"))
        from ocpi_json_reference import reference_model_dump_json
    except ImportError:  # pragma: no cover - the reference lives with the unit tests
        reference_model_dump_json = None
    if reference_model_dump_json is not None:
        mismatches = sum(1 for c in cdrs if reference_model_dump_json(c) != cdr_json(c))
        figures["reference (old writer)"] = best_us(reference_model_dump_json, cdrs, args.repeat)
        print(f"byte-identical to the reference writer: {len(cdrs) - mismatches}/{len(cdrs)} CDRs")

    zone = settings.location_time_zone
    figures["session_cdr"] = best_us(lambda st: session_cdr(st[0], st[1], settings), priced, args.repeat)
    figures["  of which price_session"] = best_us(
        lambda st: price_session(st[0].readings, st[1], time_zone=zone, session_start=st[0].start,
                                 session_end=st[0].end), priced, args.repeat)
    figures["  of which building the Cdr"] = figures["session_cdr"] - figures["  of which price_session"]
    issued = [c for c in cdrs if not c.credit]
    # the two fields of a CompletedSession that credit_for reads
    credit_session = SimpleNamespace(credit_cdr_id="CREDIT-BENCH", issued_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
    figures["credit_for"] = best_us(lambda c: credit_for(c, credit_session), issued, args.repeat)
    for name, us in figures.items():
        print(f"{name:28s} {us:8.1f} µs per CDR (CPU, best of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
