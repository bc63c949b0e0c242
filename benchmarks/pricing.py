"""Pricing throughput: how many CDRs per second one core prices, and µs per period.

    PYTHONPATH=$PWD /work/venv/bin/python benchmarks/pricing.py [--cdrs 100000] [--profile]

Builds a pool of realistic sessions (5 to 50 charging periods each: meter-value periods of
5-20 minutes, charging then parking, MAX_POWER per period) over four tariffs (day/night,
parking with step_size, step_size on energy and time, power thresholds), then prices
``--cdrs`` of them with ``pricing.price_periods`` (the pool is cycled; every call prices
from scratch). Prints CDRs/s and µs per period (CPU time of this process, so that other load on the
machine distorts the figures less). ``--profile`` prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pricing import price_periods  # noqa: E402
from schemas.ocpi import CdrDimension, CdrDimensionType, ChargingPeriod, Tariff  # noqa: E402

D = Decimal
ZONE = "Europe/Amsterdam"


def _tariff(tid: str, elements: list[dict]) -> Tariff:
    return Tariff.model_validate({"country_code": "NL", "party_id": "CLG", "id": tid, "currency": "EUR",
                                  "elements": elements, "last_updated": "2026-01-01T00:00:00Z"})


def _c(t, price, step=1, vat="21"):
    return {"type": t, "price": D(price), "step_size": step, "vat": D(vat)}


TARIFFS = [
    _tariff("DAYNIGHT", [
        {"price_components": [_c("FLAT", "0.35")]},
        {"price_components": [_c("ENERGY", "0.22")], "restrictions": {"start_time": "23:00", "end_time": "07:00"}},
        {"price_components": [_c("ENERGY", "0.22")], "restrictions": {"day_of_week": ["SATURDAY", "SUNDAY"]}},
        {"price_components": [_c("ENERGY", "0.34")]},
    ]),
    _tariff("PARKING", [
        {"price_components": [_c("ENERGY", "0.39"), _c("FLAT", "0.50")]},
        {"price_components": [_c("PARKING_TIME", "6.00", 300)], "restrictions": {"start_time": "08:00", "end_time": "20:00",
                                                                                  "min_duration": 7200}},
        {"price_components": [_c("PARKING_TIME", "1.20", 900)]},
    ]),
    _tariff("STEPS", [
        {"price_components": [_c("ENERGY", "0.29", 100), _c("TIME", "1.50", 600)], "restrictions": {"max_kwh": 30}},
        {"price_components": [_c("ENERGY", "0.25", 100), _c("TIME", "2.50", 600)]},
    ]),
    _tariff("POWER", [
        {"price_components": [_c("ENERGY", "0.30")], "restrictions": {"max_power": 11}},
        {"price_components": [_c("ENERGY", "0.45")], "restrictions": {"max_power": 50}},
        {"price_components": [_c("ENERGY", "0.59"), _c("TIME", "0.00", 60)]},
        {"price_components": [_c("PARKING_TIME", "9.00", 60)], "restrictions": {"min_duration": 3600}},
    ]),
]


def make_session(rng: random.Random):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
    n = rng.randint(5, 50)
    parking_from = n - rng.randint(0, max(1, n // 4))
    power = D(rng.choice(["3.7", "7.4", "11", "22", "50", "120", "150"]))
    t = start
    periods = []
    for i in range(n):
        minutes = rng.randint(5, 20)
        hours = D(minutes) / D(60)
        if i < parking_from:
            p = (power * D(rng.randint(60, 100)) / D(100)).quantize(D("0.01"))
            dims = [CdrDimension(type=CdrDimensionType.ENERGY, volume=(p * hours).quantize(D("0.001"))),
                    CdrDimension(type=CdrDimensionType.TIME, volume=hours),
                    CdrDimension(type=CdrDimensionType.MAX_POWER, volume=p)]
        else:
            dims = [CdrDimension(type=CdrDimensionType.PARKING_TIME, volume=hours)]
        periods.append(ChargingPeriod(start_date_time=t, dimensions=dims))
        t += timedelta(minutes=minutes)
    return start, t, periods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=100_000)
    parser.add_argument("--pool", type=int, default=2_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the parts: reading the periods, Decimal arithmetic alone, element selection")
    args = parser.parse_args(argv)

    rng = random.Random(20261125)
    pool = [(TARIFFS[i % len(TARIFFS)], *make_session(rng)) for i in range(args.pool)]
    jobs = [pool[i % len(pool)] for i in range(args.cdrs)]
    periods = sum(len(j[3]) for j in jobs)

    def run():
        total = D(0)
        for tariff, start, end, ps in jobs:
            total += price_periods(ps, tariff, time_zone=ZONE, session_start=start, session_end=end).total_cost.excl_vat
        return total

    run_jobs = jobs
    jobs = run_jobs[: min(2000, len(run_jobs))]
    run()  # warm-up: compile tariffs, load zones
    jobs = run_jobs
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
    t0, c0 = time.perf_counter(), time.process_time()
    revenue = run()
    wall, elapsed = time.perf_counter() - t0, time.process_time() - c0
    if args.profile:
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
        print(out.getvalue())
    print(f"priced {args.cdrs} CDRs ({periods} periods, {periods / args.cdrs:.1f} per CDR) in {elapsed:.2f} s "
          f"of CPU on one core ({wall:.2f} s wall); revenue {revenue.quantize(D('0.01'))} EUR excl VAT")
    print(f"{args.cdrs / elapsed:,.0f} CDRs/s")
    print(f"{elapsed / periods * 1e6:.2f} µs per period")
    if args.breakdown:
        breakdown(jobs, periods, elapsed)
    return 0


def breakdown(jobs, periods: int, elapsed: float) -> None:
    """Where the time goes: the same periods through parts of the work, each alone."""
    from decimal import localcontext

    from pricing.engine import PRECISION, cdr_amount
    from pricing.restrictions import PeriodContext, active_element_for, compile_tariff
    from schemas.ocpi import TariffDimensionType

    def reading_only():
        n = 0
        for _, _, _, ps in jobs:
            for p in ps:
                for d in p.dimensions:
                    if d.type is CdrDimensionType.ENERGY:
                        n += 1
        return n

    def decimal_only():
        # the arithmetic per period (quantity x price, VAT, 4 running sums) and the 8
        # roundings per CDR, without anything else
        price, factor = D("0.29"), D("1.21")
        with localcontext() as ctx:
            ctx.prec = PRECISION
            for _, _, _, ps in jobs:
                a = b = c = e = D(0)
                for p in ps:
                    q = p.dimensions[0].volume
                    x = q * price
                    a += x
                    b += x * factor
                    c += q
                    e += q
                for v in (a, b, c, e, a, b, c, e):
                    cdr_amount(v)

    def selection_only():
        energy = TariffDimensionType.ENERGY
        for tariff, start, _, ps in jobs:
            compiled = compile_tariff(tariff)
            for p in ps:
                ctx = PeriodContext(None if not compiled.needs_local_time else p.start_date_time, D(0), D(0), D(10), None)
                active_element_for(energy, compiled, ctx)

    for name, fn in (("reading the periods' dimensions", reading_only),
                     ("Decimal arithmetic alone", decimal_only),
                     ("rule 1 evaluated afresh, one dimension (the engine remembers the choice per "
                      "bucket between the tariff's thresholds and pays this only on a miss)", selection_only)):
        t0 = time.process_time()
        fn()
        part = time.process_time() - t0
        print(f"  {name}: {part / periods * 1e6:.2f} µs per period ({part / elapsed:.0%} of the full pricing)")


if __name__ == "__main__":
    raise SystemExit(main())
