"""Shortcuts of storage/repositories.py that mirror slower code: each is compared with it."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone, tzinfo

from storage import repositories as repo


class _Zone(tzinfo):
    """A Python tzinfo at offset 0 (not ``timezone``)."""

    def utcoffset(self, dt):
        return timedelta(0)


def _times() -> list[datetime]:
    rng = random.Random(4)
    zones = [None, timezone.utc, timezone(timedelta(0), "Z0"), timezone(timedelta(hours=2)),
             timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(hours=14)), _Zone()]
    times = [datetime(1, 1, 2, 0, 0, 0), datetime(999, 12, 31, 23, 59, 59, 999999),
             datetime(9999, 12, 30, 23, 59, 59, 999999), datetime(2026, 2, 28, 12, 0, 0, 1),
             datetime(2024, 2, 29, 23, 59, 59), datetime(1970, 1, 1)]
    for _ in range(5000):
        times.append(datetime(rng.randint(2, 9998), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                              rng.randint(0, 59), rng.randint(0, 59), rng.choice((0, 0, rng.randint(0, 999999)))))
    return [t.replace(tzinfo=rng.choice(zones)) for t in times]


def test_sqlite_utc_writes_what_isoformat_writes():
    for value in _times():
        assert repo._sqlite_utc(value) == repo._sqlite_utc_isoformat(value), value


def test_sqlite_utc_writes_the_utc_wall_time_with_six_fraction_digits():
    # 12:30 at +02:00 is 10:30 UTC; no fraction -> ".000000"
    assert repo._sqlite_utc(datetime(2026, 3, 2, 12, 30, tzinfo=timezone(timedelta(hours=2)))) == \
        "2026-03-02 10:30:00.000000"
    assert repo._sqlite_utc(datetime(5, 1, 1, 0, 0, 0, 7)) == "0005-01-01 00:00:00.000007"
    assert repo._sqlite_utc(None) is None


def test_sqlite_utc_day_memo_is_bounded_and_right_after_clearing():
    start = datetime(2000, 1, 1, 1, 2, 3, 4, tzinfo=timezone.utc)
    for days in range(0, 10_000, 1):
        value = start + timedelta(days=days)
        assert repo._sqlite_utc(value) == repo._sqlite_utc_isoformat(value)
    assert len(repo._SQLITE_DAYS) <= 4096


def test_sqlite_utc_of_a_datetime_subclass_goes_through_isoformat():
    class Stamp(datetime):
        def isoformat(self, sep="T", timespec="auto"):
            return "custom"

    assert repo._sqlite_utc(Stamp(2026, 1, 1, tzinfo=timezone.utc)) == "custom"[:26]
